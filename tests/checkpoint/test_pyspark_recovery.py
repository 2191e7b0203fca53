"""A PySpark program using getOrCreate ports by changing its imports (recoverable word count)."""

from __future__ import annotations

from runnel.pyspark import SparkConf, SparkContext
from runnel.pyspark.streaming import StreamingContext

RESULTS: dict = {}
CREATED: list = []


class Keep:
    """foreachRDD(Keep()): RESULTS[time] = the counts (module-level, so the recovered copy writes here)."""

    def __call__(self, time, rdd):
        RESULTS[time] = sorted(rdd.collect())


def update(new_values, last_sum):
    return sum(new_values) + (last_sum or 0)


def test_get_or_create_recovers_a_pyspark_program(tmp_path):
    checkpoint = str(tmp_path / "ck")
    lines = [["a b", "b"], ["c a"], ["a"], ["b b"], ["c"]]

    def create_context():                       # PySpark's recoverable_network_wordcount shape
        CREATED.append(1)
        conf = SparkConf().setMaster("local").setAppName("RecoverableWordCount") \
            .set("spark.streaming.clock", "org.apache.spark.util.ManualClock")
        sc = SparkContext.getOrCreate(conf)
        ssc = StreamingContext(sc, 1)
        ssc.checkpoint(checkpoint)
        words = ssc.queueStream([sc.parallelize(b) for b in lines]).flatMap(lambda line: line.split(" "))
        counts = words.map(lambda w: (w, 1)).updateStateByKey(update)
        counts.checkpoint(2)
        counts.foreachRDD(Keep())
        return ssc

    ssc = StreamingContext.getOrCreate(checkpoint, create_context)
    ssc.start()
    ssc.run_batches(3)
    ssc.stop(stopSparkContext=True, stopGraceFully=False)       # the "crash": checkpoint at 2 s
    assert CREATED == [1]
    ssc = StreamingContext.getOrCreate(checkpoint, create_context)
    assert CREATED == [1]                                       # recovered: create_context not called
    ssc.start()
    ssc.run_batches(3)                                          # batch 3 again, then 4 and 5
    ssc.stop(stopSparkContext=True, stopGraceFully=False)
    assert RESULTS[max(RESULTS)] == [("a", 3), ("b", 4), ("c", 2)]
    assert len(RESULTS) == 5
