"""``pyspark.streaming.dstream``: :class:`~runnel.dstream.base.DStream` and the transform stream."""

from ...dstream.base import DStream
from ...dstream.transformed import TransformedDStream
from .. import compat as _compat

_compat.install()

__all__ = ["DStream", "TransformedDStream"]
