"""Porting: a PySpark streaming program runs by changing only its imports.

The program below is PySpark code; the only runnel-specific lines are the
test's driving of the manual clock (selected through Spark's own
``spark.streaming.clock`` setting, as Spark's test suites do).
"""

import inspect
from collections import Counter

import pytest

from runnel import Context, Dataset, DStream, StreamingContext as RunnelStreamingContext
from runnel.pyspark import RDD, SparkConf, SparkContext, StorageLevel
from runnel.pyspark import compat
from runnel.pyspark.streaming import StreamingContext, StreamingListener

LINES = [["to be or", "not to be"], ["be quick", ""], ["a b a"]]
MANUAL = "org.apache.spark.util.ManualClock"


@pytest.fixture(params=["local", "local[2]"])
def master(request):
    return request.param


def word_counts(lines):
    return sorted(Counter(w for line in lines for w in line.split()).items())


def test_pyspark_word_count_program_gives_plain_python_results(master, capsys):
    # --- PySpark program (imports changed, nothing else) ---
    conf = SparkConf().setMaster(master).setAppName("streaming-wordcount").set("spark.streaming.clock", MANUAL)
    sc = SparkContext(conf=conf)
    ssc = StreamingContext(sc, 1)
    rdds = [sc.parallelize(lines) for lines in LINES]
    stream = ssc.queueStream(rdds, oneAtATime=True, default=None)
    counts = stream.flatMap(lambda line: line.split(" ")).filter(lambda w: w) \
        .map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)
    results = []
    counts.foreachRDD(lambda time, rdd: results.append((time, sorted(rdd.collect()))))
    counts.pprint()
    ssc.start()
    # --- test driver: three batches of data, one after the queue ran dry ---
    ssc.run_batches(len(LINES) + 1)
    assert StreamingContext.getActive() is ssc and ssc.awaitTerminationOrTimeout(0) is False
    # --- PySpark program ---
    ssc.stop(stopSparkContext=True, stopGraceFully=False)
    assert ssc.awaitTerminationOrTimeout(0) is True and StreamingContext.getActive() is None
    assert sc.stopped
    assert [r for _, r in results] == [word_counts(lines) for lines in LINES] + [[]]
    assert [t.timestamp() for t, _ in results] == [1.0, 2.0, 3.0, 4.0]
    out = capsys.readouterr().out
    assert out.count("Time: ") == 4 and "('be', 2)" in out


def test_pyspark_keywords_work_on_streaming_context():
    sc = SparkContext("local", "keywords", conf=SparkConf().set("spark.streaming.clock", MANUAL))
    ssc = StreamingContext(sparkContext=sc, batchDuration=1)
    assert ssc.batch_duration == 1.0
    got = []
    ssc.queueStream([[1, 2], [3]], oneAtATime=False).foreachRDD(lambda rdd: got.append(rdd.collect()))
    ssc.queueStream([], default=sc.parallelize([9])).foreachRDD(lambda rdd: got.append(rdd.collect()))
    with pytest.raises(TypeError, match="two spellings"):
        ssc.queueStream([], oneAtATime=True, one_at_a_time=True)
    ssc.start()
    ssc.run_batches(2)
    ssc.stop(stopSparkContext=False, stopGraceFully=True)
    assert got == [[1, 2, 3], [9], [], [9]]
    assert not sc.stopped
    assert sc.parallelize([1, 2]).count() == 2   # after stop(False) the context still runs jobs
    sc.stop()


def test_get_or_create_and_get_active_or_create_take_pyspark_keywords(tmp_path):
    made = []

    def setup():
        ssc = StreamingContext(SparkContext.getOrCreate(SparkConf().setMaster("local")), 1)
        made.append(ssc)
        return ssc

    ssc = StreamingContext.getOrCreate(checkpointPath=str(tmp_path), setupFunc=setup)
    assert made == [ssc]
    assert StreamingContext.getActiveOrCreate(checkpointPath=None, setupFunc=setup) is made[1]
    ssc.stop(stopSparkContext=True, stopGraceFully=False)   # never started: still fine, and idempotent
    ssc.stop(stopSparkContext=True)
    made[1].stop()


def test_every_pyspark_streaming_context_signature_is_accepted():
    """PySpark's parameter names (4.x) for each method are accepted as keywords."""
    pyspark = {
        "queueStream": ["rdds", "oneAtATime", "default"], "stop": ["stopSparkContext", "stopGraceFully"],
        "awaitTermination": ["timeout"], "awaitTerminationOrTimeout": ["timeout"],
        "socketTextStream": ["hostname", "port", "storageLevel"], "textFileStream": ["directory"],
        "binaryRecordsStream": ["directory", "recordLength"], "getOrCreate": ["checkpointPath", "setupFunc"],
        "getActiveOrCreate": ["checkpointPath", "setupFunc"], "getActive": [],
        "addStreamingListener": ["streamingListener"], "transform": ["dstreams", "transformFunc"],
        "remember": ["duration"], "checkpoint": ["directory"], "union": [], "start": [],
    }
    for method, names in pyspark.items():
        fn = inspect.unwrap(getattr(StreamingContext, method))
        ours = set(inspect.signature(fn).parameters)
        spellings = getattr(getattr(StreamingContext, method), "__pyspark_keywords__", {})
        for name in names:
            assert name in ours or spellings.get(name) in ours, f"{method}({name}=...) is not accepted"
        # camelCase names are the same function object as their PEP 8 method
    assert StreamingContext.socketTextStream is StreamingContext.socket_text_stream
    assert StreamingContext.queueStream is StreamingContext.queue_stream
    assert StreamingContext is RunnelStreamingContext


def test_rdd_methods_take_pyspark_keywords():
    sc = SparkContext("local", "rdd")
    rdd = sc.parallelize(c=[("a", 1), ("b", 2), ("a", 3)], numSlices=2)
    assert isinstance(rdd, RDD) and rdd.getNumPartitions() == 2
    assert sorted(rdd.reduceByKey(lambda a, b: a + b, numPartitions=1).collect()) == [("a", 4), ("b", 2)]
    assert rdd.sortBy(lambda kv: kv[1], ascending=False, numPartitions=1).collect() == \
        [("a", 3), ("b", 2), ("a", 1)]
    assert rdd.repartition(numPartitions=3).getNumPartitions() == 3
    assert sc.range(5, numSlices=2).glom().collect() == [[0, 1], [2, 3, 4]]
    sc.stop()


def test_spark_conf_chains_and_keeps_strings():
    conf = SparkConf().setMaster("local[2]").setAppName("app").setAll([("a", 1), ("b", "x")])
    assert conf.set("c", True) is conf
    assert conf.get("a") == "1" and conf.get("c") == "True" and conf.get("nope") is None
    assert conf.get("nope", "dflt") == "dflt"
    assert conf.contains("spark.master") and not conf.contains("nope")
    assert dict(conf.getAll()) == {"spark.master": "local[2]", "spark.app.name": "app", "a": "1", "b": "x",
                                   "c": "True"}
    assert conf.setIfMissing("a", 2).get("a") == "1"


def test_spark_context_honours_master_app_name_and_conf():
    conf = SparkConf().setMaster("local[2]").setAppName("from-conf").set("spark.default.parallelism", 3)
    sc = SparkContext("local", conf=conf)          # the argument wins over spark.master
    try:
        assert isinstance(sc, Context)
        assert (sc.master, sc.appName, sc.defaultParallelism) == ("local", "from-conf", 3)
        assert sc.parallelize([1, 2, 3, 4, 5, 6]).getNumPartitions() == 3
        assert sc.getConf().get("spark.master") == "local"
        assert SparkContext.getOrCreate() is sc
        with pytest.raises(ValueError, match="Cannot run multiple SparkContexts"):
            SparkContext("local")
        sc.setLogLevel("WARN")
        import logging
        assert logging.getLogger("runnel").level == logging.WARNING
        with pytest.raises(ValueError, match="did not match"):
            sc.setLogLevel("LOUD")
        sc.setLogLevel("INFO")
        assert sc.broadcast({"k": 1}).value == {"k": 1}
        assert sc.emptyRDD().collect() == []
    finally:
        logging.getLogger("runnel").setLevel(logging.NOTSET)
        sc.stop()
        sc.stop()
    sc2 = SparkContext.getOrCreate(SparkConf().setMaster("local"))
    assert sc2 is not sc and sc2.appName == "runnel"
    sc2.stop()


def test_storage_level_constants_match_pyspark():
    assert repr(StorageLevel.MEMORY_ONLY) == "StorageLevel(False, True, False, False, 1)"
    assert repr(StorageLevel.MEMORY_AND_DISK) == "StorageLevel(True, True, False, False, 1)"
    assert repr(StorageLevel.MEMORY_ONLY_2) == "StorageLevel(False, True, False, False, 2)"
    assert repr(StorageLevel.MEMORY_AND_DISK_2) == "StorageLevel(True, True, False, False, 2)"
    assert repr(StorageLevel.DISK_ONLY) == "StorageLevel(True, False, False, False, 1)"
    assert repr(StorageLevel.DISK_ONLY_3) == "StorageLevel(True, False, False, False, 3)"
    assert repr(StorageLevel.OFF_HEAP) == "StorageLevel(True, True, True, False, 1)"
    assert repr(StorageLevel.MEMORY_AND_DISK_DESER) == "StorageLevel(True, True, False, True, 1)"
    assert str(StorageLevel.MEMORY_AND_DISK_2) == "Disk Memory Serialized 2x Replicated"
    assert StorageLevel(True, False, False, False, 2) == StorageLevel.DISK_ONLY_2
    assert len({StorageLevel.MEMORY_ONLY, StorageLevel(False, True, False, False)}) == 1


def test_persist_with_storage_level():
    sc = SparkContext("local", "persist", conf=SparkConf().set("spark.streaming.clock", MANUAL))
    rdd = sc.parallelize([1, 2, 3])
    assert rdd.persist(StorageLevel.MEMORY_ONLY) is rdd and rdd.is_cached
    assert rdd.map(lambda x: x * 2).collect() == [2, 4, 6] and rdd.collect() == [1, 2, 3]
    ssc = StreamingContext(sc, 1)
    got = []
    s = ssc.queueStream([rdd]).persist(StorageLevel.MEMORY_AND_DISK)
    assert isinstance(s, DStream)
    s.foreachRDD(lambda r: got.append(r.collect()))
    s.count().foreachRDD(lambda r: got.append(r.collect()))
    ssc.start()
    ssc.run_batches(1)
    ssc.stop()
    assert got == [[1, 2, 3], [3]]


def test_listener_and_text_files_read_back_through_spark_context(tmp_path):
    class Batches(StreamingListener):
        def __init__(self):
            self.done = []

        def onBatchCompleted(self, batchCompleted):
            self.done.append(batchCompleted.batchInfo().batchTime())

    sc = SparkContext(conf=SparkConf().setMaster("local").set("spark.streaming.clock", MANUAL))
    ssc = StreamingContext(sc, 1)
    listener = Batches()
    ssc.addStreamingListener(streamingListener=listener)
    ssc.queueStream([["x", "y"], [1]]).saveAsTextFiles(str(tmp_path / "t"), suffix="txt")
    ssc.start()
    ssc.run_batches(2)
    ssc.stop(stopSparkContext=False)
    assert len(listener.done) == 2
    assert sc.textFile(str(tmp_path / "t-1000.txt")).collect() == ["x", "y"]
    assert sc.textFile(name=str(tmp_path / "t-2000.txt"), minPartitions=1).collect() == ["1"]
    sc.stop()


def test_compat_renames_name_existing_parameters():
    # install() checked them already (it raises on a stale rename); this keeps the table honest in review
    for cls, methods in compat.RENAMES.items():
        for method, renames in methods.items():
            params = inspect.signature(inspect.unwrap(vars(cls)[method])).parameters
            assert set(renames.values()) <= set(params)
    assert compat.camel("stop_spark_context") == "stopSparkContext"
    assert Dataset.reduceByKey is Dataset.reduce_by_key
