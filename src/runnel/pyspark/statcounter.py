"""``pyspark.statcounter``: what ``rdd.stats()`` returns (:mod:`runnel.statcounter`)."""

from ..statcounter import StatCounter

__all__ = ["StatCounter"]
