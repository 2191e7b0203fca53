"""``pyspark.streaming.listener``: :class:`~runnel.listener.StreamingListener` to subclass."""

from ...listener import StreamingListener

__all__ = ["StreamingListener"]
