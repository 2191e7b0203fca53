"""``pyspark.rdd``: ``RDD`` is runnel's :class:`~runnel.dataset.Dataset`; ``portable_hash`` is
``partitionBy``'s default partitioner (:mod:`runnel.partitioners`)."""

from ..dataset import Dataset as RDD
from ..partitioners import portable_hash
from ..statcounter import StatCounter

__all__ = ["RDD", "portable_hash", "StatCounter"]
