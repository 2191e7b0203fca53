"""``pyspark.streaming.context``: :class:`~runnel.streaming.StreamingContext`."""

from ...streaming import StreamingContext
from .. import compat as _compat

_compat.install()

__all__ = ["StreamingContext"]
