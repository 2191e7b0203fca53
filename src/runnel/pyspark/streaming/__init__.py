"""``pyspark.streaming`` for runnel: StreamingContext, DStream, StreamingListener.

These are runnel's own classes (so ``StreamingContext.getActive()`` sees
every context); importing :mod:`runnel.pyspark` makes them accept PySpark's
keyword spellings (``queueStream(rdds, oneAtATime=False)``,
``stop(stopSparkContext=True, stopGraceFully=False)``).

Examples
--------
>>> from runnel.pyspark import SparkConf, SparkContext
>>> from runnel.pyspark.streaming import StreamingContext
>>> conf = SparkConf().setMaster("local").set("spark.streaming.clock", "org.apache.spark.util.ManualClock")
>>> sc = SparkContext(conf=conf)
>>> ssc = StreamingContext(sc, batchDuration=1)
>>> out = []
>>> ssc.queueStream([sc.parallelize([1, 2]), sc.parallelize([3])], oneAtATime=True).foreachRDD(
...     lambda rdd: out.append(rdd.collect()))
>>> ssc.start(); ssc.run_batches(2); ssc.stop(stopSparkContext=True, stopGraceFully=False)
>>> out
[[1, 2], [3]]
"""

from ...dstream.base import DStream
from ...listener import StreamingListener
from ...streaming import StreamingContext
from .. import compat as _compat

_compat.install()

__all__ = ["StreamingContext", "DStream", "StreamingListener"]
