"""Port PySpark streaming programs by changing their imports.

``from pyspark import SparkConf, SparkContext, StorageLevel`` becomes
``from runnel.pyspark import SparkConf, SparkContext, StorageLevel`` and
``from pyspark.streaming import StreamingContext`` becomes
``from runnel.pyspark.streaming import StreamingContext``; the rest of the
program stays as it is. ``RDD`` is runnel's :class:`~runnel.dataset.Dataset`.
PySpark's module paths are here too: ``runnel.pyspark.rdd``,
``.accumulators``, ``.broadcast``, ``.statcounter``, ``.streaming.context``,
``.streaming.dstream``, ``.streaming.listener`` and ``.sql`` (a small
DataFrame over DuckDB, the ``runnel[sql]`` extra).

Importing this package makes runnel's methods accept PySpark's keyword
spellings as well (:mod:`runnel.pyspark.compat`).

Examples
--------
>>> from runnel.pyspark import SparkConf, SparkContext
>>> sc = SparkContext(conf=SparkConf().setMaster("local").setAppName("port"))
>>> sc.parallelize(["a b", "b"]).flatMap(lambda l: l.split()).countByValue()
{'a': 1, 'b': 2}
>>> sc.stop()
"""

from ..accumulators import Accumulator, AccumulatorParam
from ..dataset import Dataset as RDD
from ..statcounter import StatCounter
from . import compat as _compat
from .broadcast import Broadcast
from .conf import SparkConf
from .context import SparkContext
from .storagelevel import StorageLevel

_compat.install()

__all__ = ["SparkConf", "SparkContext", "StorageLevel", "RDD", "Broadcast", "Accumulator", "AccumulatorParam",
           "StatCounter"]
