"""runnel: micro-batch stream processing for Python.

The Spark Streaming programming model — StreamingContext, DStreams, windows,
state — on columnar NumPy/Arrow batches with Numba kernels on the hot path.
"""

from .batch import Batch
from .clock import ManualClock, SystemClock
from .context import Context
from .dataset import Dataset
from .dstream.base import DStream
from .functions import PythonFallbackWarning
from .listener import BatchInfo, StreamingListener
from .streaming import StreamingContext
from .updaters import StateSpec
from . import updaters
from .dstream import savers as _savers

_savers.install()  # file outputs attach to DStream before the alias table names them

from . import aliases as _aliases  # noqa: E402

_aliases.install()

from .pyspark import compat as _pyspark_compat  # noqa: E402  (PySpark keyword spellings)

_pyspark_compat.install()

from .kernels._config import preload as _preload  # noqa: E402

_preload()  # Numba's compiler state loads in the background, overlapping the program's start

from ._version import __version__  # noqa: E402

__all__ = ["Batch", "Context", "Dataset", "DStream", "ManualClock", "SystemClock", "StreamingContext",
           "StreamingListener", "BatchInfo", "PythonFallbackWarning", "StateSpec", "updaters"]
