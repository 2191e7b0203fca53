"""The PySpark surface ported programs touch: module paths, annotations, checkpoints, arity checks.

(No ``from __future__ import annotations`` here: annotations must be evaluated, as in Spark's examples.)
"""

import importlib
import os
from typing import Tuple

import pytest

from runnel import Dataset, DStream as RunnelDStream
from runnel.pyspark import SparkConf, SparkContext
from runnel.pyspark.streaming import StreamingContext

MANUAL = "org.apache.spark.util.ManualClock"


@pytest.fixture
def sc():
    context = SparkContext(conf=SparkConf().setMaster("local").setAppName("surface").set("spark.streaming.clock",
                                                                                           MANUAL))
    yield context
    context.stop()


def test_pyspark_module_paths_import():
    # each line is what a PySpark program writes, with "pyspark" -> "runnel.pyspark"
    from runnel.pyspark.accumulators import AccumulatorParam  # noqa: F401
    from runnel.pyspark.broadcast import Broadcast  # noqa: F401
    from runnel.pyspark.rdd import RDD, portable_hash
    from runnel.pyspark.statcounter import StatCounter  # noqa: F401
    from runnel.pyspark.streaming.context import StreamingContext as SC
    from runnel.pyspark.streaming.dstream import DStream, TransformedDStream  # noqa: F401
    from runnel.pyspark.streaming.listener import StreamingListener
    assert RDD is Dataset and DStream is RunnelDStream and SC is StreamingContext
    assert portable_hash(None) == 0 and callable(StreamingListener().onBatchCompleted)
    for name in ("rdd", "accumulators", "broadcast", "streaming.context", "streaming.dstream", "streaming.listener"):
        assert importlib.import_module(f"runnel.pyspark.{name}").__doc__


def test_dstream_and_rdd_are_subscriptable_for_annotations():
    from runnel.pyspark.rdd import RDD
    from runnel.pyspark.streaming.dstream import DStream

    def annotated(lines: DStream[str]) -> DStream[Tuple[float, str]]:
        return lines

    assert DStream[Tuple[float, str]].__origin__ is DStream and RDD[int].__origin__ is RDD
    assert annotated.__annotations__["lines"] == DStream[str]


def test_set_checkpoint_dir_creates_it(sc, tmp_path):
    sc.setCheckpointDir(str(tmp_path / "rdd-checkpoints"))
    assert os.path.isdir(tmp_path / "rdd-checkpoints")
    assert sc.getCheckpointDir() == str(tmp_path / "rdd-checkpoints")


def test_ssc_checkpoint_creates_the_directory(sc, tmp_path):
    ssc = StreamingContext(sc, 1)
    ssc.checkpoint(str(tmp_path / "a" / "b"))
    assert os.path.isdir(tmp_path / "a" / "b")
    ssc.stop(stopSparkContext=False)


def test_get_or_create_without_checkpoint_calls_setup_then_checkpoints_to_the_path(sc, tmp_path):
    path = str(tmp_path / "ckpt")
    calls = []

    def setup():
        calls.append(1)
        ssc = StreamingContext(sc, 1)
        ssc.queueStream([[1, 2]]).map(lambda x: x * 2).pprint()
        return ssc

    ssc = StreamingContext.getOrCreate(path, setup)
    assert calls == [1] and ssc.checkpoint_dir == os.path.abspath(path) and os.path.isdir(path)
    ssc.start()
    ssc.run_batches(1)
    ssc.stop(stopSparkContext=False, stopGraceFully=True)
    assert os.listdir(path), "the created context wrote no checkpoint"


def test_a_closure_over_the_spark_context_fails_start_naming_it(sc, tmp_path):
    ssc = StreamingContext(sc, 1)
    ssc.checkpoint(str(tmp_path))
    ssc.queueStream([[1]]).foreachRDD(lambda rdd: sc.parallelize([1]).count())
    with pytest.raises(Exception, match="reference SparkContext"):
        ssc.start()
    ssc.stop(stopSparkContext=False)


def test_transform_and_transform_with_check_arity_at_definition(sc):
    ssc = StreamingContext(sc, 1)
    s = ssc.queueStream([[1, 2]])
    other = ssc.queueStream([[3]])
    with pytest.raises(TypeError, match="one or two arguments"):
        s.transform(lambda: None)
    with pytest.raises(TypeError, match="one or two arguments"):
        s.transform(lambda t, rdd, extra: rdd)
    with pytest.raises(TypeError, match="two or three arguments"):
        s.transformWith(lambda rdd: rdd, other)
    with pytest.raises(TypeError, match="two or three arguments"):
        s.transformWith(lambda a, b, c, d: a, other)
    got = []
    s.transform(lambda rdd: rdd.map(lambda x: x + 1)).foreachRDD(lambda rdd: got.append(rdd.collect()))
    s.transform(lambda time, rdd: rdd.map(lambda x: (time.timestamp(), x))).foreachRDD(
        lambda rdd: got.append(rdd.collect()))
    s.transformWith(lambda a, b: a.union(b), other).foreachRDD(lambda rdd: got.append(rdd.collect()))
    s.transformWith(lambda t, a, b: b, other).foreachRDD(lambda rdd: got.append(rdd.collect()))
    ssc.start()
    ssc.run_batches(1)
    ssc.stop(stopSparkContext=False)
    assert got == [[2, 3], [(1.0, 1), (1.0, 2)], [1, 2, 3], [3]]
