"""A PySpark StreamingListener works unchanged: py4j-shaped accessors, frozen per-event infos."""

from __future__ import annotations

import copy
import dataclasses
import logging
import pickle
from types import SimpleNamespace

import pytest

from runnel.listener import input_infos
from runnel.pyspark import SparkConf, SparkContext
from runnel.pyspark.streaming import StreamingContext
from runnel.pyspark.streaming.listener import StreamingListener

MANUAL = "org.apache.spark.util.ManualClock"


@pytest.fixture(params=["local", "local[2]"])
def sc(request):
    context = SparkContext(conf=SparkConf().setMaster(request.param).setAppName("listen")
                           .set("spark.streaming.clock", MANUAL))
    yield context
    context.stop()


class BatchRecorder(StreamingListener):
    """Written as for PySpark: everything through accessor calls."""

    def __init__(self):
        self.rows = []
        self.infos = {}

    def _row(self, kind, info):
        self.infos.setdefault(kind, []).append(info)
        ops = [(op.id(), op.name(), op.description(), op.startTime() >= 0, op.endTime() >= 0,
                op.failureReason()) for op in info.outputOperationInfos().values()]
        inputs = {sid: (i.inputStreamId(), i.numRecords()) for sid, i in info.streamIdToInputInfo().items()}
        self.rows.append((kind, info.batchTime().milliseconds(), info.numRecords(), inputs,
                          info.schedulingDelay(), info.processingDelay(), info.totalDelay(), ops))

    def onBatchSubmitted(self, batchSubmitted):
        self._row("submitted", batchSubmitted.batchInfo())

    def onBatchStarted(self, batchStarted):
        self._row("started", batchStarted.batchInfo())

    def onBatchCompleted(self, batchCompleted):
        self._row("completed", batchCompleted.batchInfo())


def test_pyspark_listener_reads_batch_infos_through_accessors(sc):
    ssc = StreamingContext(sc, 1)
    rec = BatchRecorder()
    ssc.addStreamingListener(rec)
    queue = ssc.queueStream([sc.parallelize([1, 2, 3])])
    rate = ssc.rate_stream("ints", records_per_batch=5)
    queue.union(rate).count().pprint()
    ssc.start()
    ssc.run_batches(1)
    ssc.stop(stopSparkContext=False)
    desc = rec.rows[0][-1][0][2]
    assert "pprint" in desc
    # queue stream (id 0) reports nothing, as in Spark; the rate stream (id 1) reports its 5 records
    assert rec.rows == [
        ("submitted", 1000, 5, {1: (1, 5)}, -1, -1, -1, [(0, "pprint", desc, False, False, None)]),
        ("started", 1000, 5, {1: (1, 5)}, 0, -1, -1, [(0, "pprint", desc, False, False, None)]),
        ("completed", 1000, 5, {1: (1, 5)}, 0, 0, 0, [(0, "pprint", desc, True, True, None)]),
    ]
    submitted, completed = rec.infos["submitted"][0], rec.infos["completed"][0]
    # runnel's own attributes are still there: every input's records, plain values
    assert submitted.num_records == 8 and submitted.batch_time == 1000 and submitted.scheduling_delay is None
    op = completed.output_operation_infos[0]
    assert op.id == 0 and op.name == "pprint" and op.batchTime().milliseconds() == 1000 and op.duration == 0


def test_each_event_gets_its_own_frozen_info(sc):
    ssc = StreamingContext(sc, 1)
    rec = BatchRecorder()
    ssc.addStreamingListener(rec)

    def fail(rdd):
        raise ValueError("output broke")

    ssc.queueStream([[1], [2]]).foreachRDD(fail)
    ssc.start()
    with pytest.raises(ValueError, match="output broke"):
        ssc.run_batches(2)
    ssc.stop(stopSparkContext=False)
    submitted = rec.infos["submitted"]
    completed = rec.infos["completed"]
    assert [i.batchTime() for i in submitted] == [1000, 2000]
    # held past later events, a submitted info still shows the batch as it was when submitted
    assert all(i.schedulingDelay() == -1 and i.processingStartTime() == -1 for i in submitted)
    assert all(op.failureReason() is None and op.endTime() == -1
               for i in submitted for op in i.outputOperationInfos().values())
    assert all("output broke" in op.failureReason() for i in completed for op in i.outputOperationInfos().values())
    assert submitted[0] is not rec.infos["started"][0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        submitted[0].processing_start_time = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        completed[0].output_operation_infos[0].failure_reason = None
    with pytest.raises(TypeError):
        completed[0].outputOperationInfos()[0] = None
    # a listener may keep copies of what it got (pickled to a monitor, deep-copied)
    for info in (pickle.loads(pickle.dumps(completed[1])), copy.deepcopy(completed[1])):
        assert info == completed[1] and info.outputOperationInfos()[0].name() == "foreachRDD"
        assert info.outputOperationInfos()[0].id() == 0 and info.batchTime().milliseconds() == 2000
    with pytest.raises(ValueError, match="output broke"):
        ssc.awaitTerminationOrTimeout(0)


def test_unknown_times_read_minus_one_through_pysparks_accessors_and_none_as_fields(sc):
    # PySpark's JavaStreamingListenerWrapper turns an unknown time into -1 (getOrElse(-1))
    ssc = StreamingContext(sc, 1)
    rec = BatchRecorder()
    ssc.addStreamingListener(rec)
    ssc.queueStream([[1, 2]]).foreachRDD(lambda rdd: rdd.count())
    ssc.start()
    ssc.run_batches(1)
    ssc.stop(stopSparkContext=False)
    info = rec.infos["submitted"][0]
    op = info.outputOperationInfos()[0]
    assert (info.schedulingDelay(), info.processingDelay(), info.totalDelay(), info.processingStartTime(),
            info.processingEndTime(), op.startTime(), op.endTime(), op.failureReason()) == (-1,) * 7 + (None,)
    assert (info.processing_start_time, info.processing_end_time, info.scheduling_delay, op.start_time,
            op.end_time, op.duration) == (None,) * 6
    started = rec.infos["started"][0]
    assert started.processingStartTime() >= 0 and started.processingEndTime() == -1
    done = rec.infos["completed"][0]
    assert done.processingEndTime() >= done.processingStartTime() >= 0
    assert all(o.endTime() >= o.startTime() >= 0 for o in done.outputOperationInfos().values())


def test_num_records_per_input_kind_as_pyspark_reports_it():
    def stream(kind, n):
        return SimpleNamespace(kind=kind, records={7: n})

    infos = input_infos([stream("queue_stream", 3), stream("receiver_stream", 4), stream("text_file_stream", 5),
                         stream("binary_records_stream", 6), stream("rate_stream", 2)], 7)
    assert {sid: i.numRecords() for sid, i in infos.items()} == {1: 4, 2: 0, 3: 0, 4: 2}
    assert infos[1].inputStreamId() == 1 and infos[1].metadata() == {} and infos[1].metadataDescription() is None


def test_later_listener_failures_are_logged_when_the_error_changes_and_summed_when_it_repeats(caplog):
    from runnel.listener import ListenerBus

    class Flaky:
        def __init__(self):
            self.errors = []

        def onBatchCompleted(self, event):
            raise self.errors.pop(0)

        def __eq__(self, other):          # unhashable: the bus keys listeners by identity
            return False

        __hash__ = None

        def __repr__(self):
            return "<Flaky>"

    bus = ListenerBus()
    bus.REPEATS_PER_REPORT = 3
    flaky = Flaky()
    bus.add(flaky)
    flaky.errors = [ValueError("first failure"), ValueError("first failure"), KeyError("a different failure")]
    flaky.errors += [KeyError("a different failure")] * 7
    with caplog.at_level(logging.WARNING, logger="runnel.listener"):
        for _ in range(10):
            bus.post("onBatchCompleted", object())
    got = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert len(got) == 4, got
    assert got[0][0] == "ERROR" and "first failure" in caplog.records[0].exc_text and got[0][2]
    assert got[1][0] == "ERROR" and got[1][2] and "raised a different error" in got[1][1]
    assert "ValueError: first failure, repeated 1 time since" in got[1][1]
    assert "a different failure" in caplog.records[1].exc_text
    # the same error again: one summary line every REPEATS_PER_REPORT repeats, no traceback
    assert got[2] == ("WARNING", "runnel: streaming listener <Flaky>.onBatchCompleted raised 3 more times, "
                                 "last: KeyError('a different failure')", False)
    assert got[3] == got[2]
    bus.remove(flaky)                       # one unreported repeat left: said when the listener goes
    assert caplog.records[-1].getMessage() == ("runnel: streaming listener <Flaky>.onBatchCompleted raised 1 more "
                                               "time, last: KeyError('a different failure')")


def test_a_raising_listener_is_reported_once_with_its_traceback(sc, caplog):
    class Broken(StreamingListener):
        def onBatchCompleted(self, batchCompleted):
            raise KeyError("listener bug")

        def __repr__(self):
            return "<Broken listener>"

    ssc = StreamingContext(sc, 1)
    ssc.addStreamingListener(Broken())
    out = []
    ssc.queueStream([[1], [2], [3]]).foreachRDD(lambda rdd: out.append(rdd.collect()))
    with caplog.at_level(logging.ERROR, logger="runnel.listener"):
        ssc.start()
        ssc.run_batches(3)
        ssc.stop(stopSparkContext=False)
    assert out == [[1], [2], [3]]                      # the job went on
    records = [r for r in caplog.records if r.name == "runnel.listener"]
    assert len(records) == 1
    text = records[0].getMessage()
    assert "<Broken listener>" in text and "onBatchCompleted" in text and "BatchEvent" in text
    assert records[0].exc_info is not None and "listener bug" in caplog.text and "Traceback" in caplog.text
