"""sc.accumulator and sc.broadcast in PySpark programs (imports changed only).

Updates made in tasks on ``local[2]``'s worker processes are merged on the
driver when each task finishes; the driver reads ``.value``.
"""

from __future__ import annotations

import os
import pickle

import pytest

from runnel.pyspark import SparkConf, SparkContext
from runnel.pyspark.accumulators import Accumulator, AccumulatorParam
from runnel.pyspark.broadcast import Broadcast
from runnel.pyspark.streaming import StreamingContext

MANUAL = "org.apache.spark.util.ManualClock"


class SetParam(AccumulatorParam):
    def zero(self, value):
        return set()

    def addInPlace(self, value1, value2):
        value1 |= value2
        return value1


@pytest.fixture(params=["local", "local[2]"])
def sc(request):
    context = SparkContext(conf=SparkConf().setMaster(request.param).setAppName("acc")
                           .set("spark.streaming.clock", MANUAL))
    if request.param == "local[2]":
        context.executor.inline_bytes = 0       # every task on a worker process, however small
    yield context
    context.stop()


def test_task_updates_are_merged_on_the_driver(sc):
    total = sc.accumulator(0)
    floats = sc.accumulator(0.5)
    pids = sc.accumulator(set(), SetParam())

    def count(x):
        total.add(x)
        floats.add(0.25)
        pids.add({os.getpid()})
        return x

    assert sc.parallelize(range(100), 4).map(count).count() == 100
    assert total.value == sum(range(100)) and floats.value == 0.5 + 25.0
    if sc.master == "local[2]":
        assert os.getpid() not in pids.value and len(pids.value) >= 1   # the adds ran on workers
    else:
        assert pids.value == {os.getpid()}
    sc.parallelize([1, 2, 3], 3).foreach(lambda x: total.add(x))          # an action adds once
    assert total.value == sum(range(100)) + 6
    total += 10
    assert total.value == sum(range(100)) + 16 and str(total) == str(total.value)


def test_a_failed_worker_task_adds_nothing_and_tasks_cannot_read_the_value(sc):
    acc = sc.accumulator(0)

    def boom(x):
        acc.add(1)
        if x == 3:
            raise ValueError("bad record")
        return x

    with pytest.raises(Exception, match="bad record"):
        sc.parallelize([3], 1).map(boom).collect()
    # on a worker the failed task's update is dropped; in the driver process it has happened already
    failed = 0 if sc.master == "local[2]" else 1
    assert acc.value == failed
    assert sc.parallelize([1, 2], 1).map(boom).count() == 2
    assert acc.value == failed + 2
    if sc.master == "local[2]":
        with pytest.raises(Exception, match="cannot be accessed inside tasks"):
            sc.parallelize([1], 1).map(lambda x: acc.value).collect()


def test_default_params_and_errors():
    assert Accumulator(1).value == 1
    with pytest.raises(TypeError, match="No default accumulator param"):
        Accumulator([1])
    copy = pickle.loads(pickle.dumps(Accumulator(5)))
    copy.add(2)                      # a task's copy starts at zero and cannot be read
    with pytest.raises(RuntimeError, match="inside tasks"):
        copy.value


def test_guide_accumulator_and_broadcast_in_foreach_rdd(sc):
    # the Streaming Programming Guide's pattern: a broadcast blacklist and an accumulator of dropped words
    blacklist = sc.broadcast(["a", "b", "c"])
    dropped = sc.accumulator(0)
    ssc = StreamingContext(sc, 1)
    lines = ssc.queueStream([sc.parallelize(["a x b", "y c"], 2), sc.parallelize(["z a"], 1)])
    counts = lines.flatMap(lambda line: line.split(" ")).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)
    seen = []

    def filter_func(word_count):
        if word_count[0] in blacklist.value:
            dropped.add(word_count[1])
            return False
        return True

    counts.foreachRDD(lambda time, rdd: seen.append((sorted(rdd.filter(filter_func).collect()), dropped.value)))
    ssc.start()
    ssc.run_batches(2)
    ssc.stop(stopSparkContext=False)
    assert seen == [([("x", 1), ("y", 1)], 3), ([("z", 1)], 4)]


def test_broadcast_value_unpersist_destroy(sc):
    b = sc.broadcast({"k": [1, 2]})
    assert isinstance(b, Broadcast) and b.value == {"k": [1, 2]}
    assert sc.parallelize(["k", "k"], 2).flatMap(lambda w: b.value[w]).collect() == [1, 2, 1, 2]
    b.unpersist()
    assert sc.parallelize(["k"], 1).map(lambda w: len(b.value[w])).collect() == [2]
    b.destroy()
    with pytest.raises(RuntimeError, match="after it was destroyed"):
        b.value
    with pytest.raises(RuntimeError, match="after it was destroyed"):
        pickle.dumps(b)
