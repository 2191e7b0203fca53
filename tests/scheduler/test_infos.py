"""Listener infos built from the core's records: frozen, each part built once per change
(``runnel.scheduler.infos``), and only for callbacks a listener handles (``ListenerBus.wants``)."""

from __future__ import annotations

import dataclasses
import pickle
from types import SimpleNamespace

import pytest

from runnel.listener import BatchInfo, ListenerBus, OutputOperationInfo, StreamInputInfo, StreamingListener
from runnel.scheduler import core as c
from runnel.scheduler.infos import ListenerInfos

GRAPH = SimpleNamespace(outputs=[SimpleNamespace(op_name="foreachRDD", description="out 0"),
                                 SimpleNamespace(op_name="pprint", description=None)])


def _core_with_batch():
    core = c.SchedulerCore(1000)
    core.handle(c.Start(0))
    core.handle(c.BatchDue(1000))
    core.handle(c.JobsBuilt(1000, 1001, (0, 1), 10, (("in", 10),), ((0, StreamInputInfo(0, 10)),)))
    return core


def test_infos_follow_the_record_and_share_unchanged_parts():
    core = _core_with_batch()
    infos = ListenerInfos(GRAPH)
    rec = core.batches[1000]
    submitted = infos.batch(rec)
    assert (submitted.batch_time, submitted.submission_time, submitted.num_records) == (1000, 1001, 10)
    assert submitted.processing_start_time is None and submitted.schedulingDelay() == -1
    assert submitted.stream_records == {"in": 10} and submitted.numRecords() == 10
    op0 = submitted.output_operation_infos[0]
    assert (op0.id(), op0.name(), op0.description(), op0.startTime()) == (0, "foreachRDD", "out 0", -1)
    assert submitted.output_operation_infos[1].description == ""

    core.handle(c.BatchStarted(1000, 1002))
    started = infos.batch(rec)
    assert started.scheduling_delay == 1 and submitted.scheduling_delay is None   # the snapshot kept its moment
    assert started.output_operation_infos is submitted.output_operation_infos    # no operation changed
    assert started.stream_records is submitted.stream_records

    core.handle(c.JobStarted(1000, 0, 1003))
    op_started = infos.output(rec, 0)
    assert op_started.start_time == 1003 and op_started.end_time is None
    assert infos.output(rec, 0) is op_started                        # built once per change
    error = ValueError("bad record")
    core.handle(c.JobDone(1000, 0, 1004, error))
    op_done = infos.output(rec, 0)
    assert op_done is not op_started and op_done.duration == 1 and "ValueError: bad record" in op_done.failure_reason
    for o, at in ((1, 1005),):
        core.handle(c.JobStarted(1000, o, at))
        core.handle(c.JobDone(1000, o, at + 1))
    core.handle(c.BatchRan(1000, 1007, (("state", {"keys": 3, "bytes": 48}),)))
    completed = infos.batch(rec)
    assert completed.output_operation_infos[0] is op_done            # the event's info, reused
    assert completed.failed and completed.total_delay == 6 and completed.state_tables == {"state": {"keys": 3,
                                                                                                    "bytes": 48}}
    assert op_started.end_time is None and started.processing_end_time is None


def test_infos_are_frozen_copyable_and_picklable():
    core = _core_with_batch()
    info = ListenerInfos(GRAPH).batch(core.batches[1000])
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_records = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.output_operation_infos[0].end_time = 3
    with pytest.raises(TypeError):
        info.stream_records["x"] = 1
    with pytest.raises(TypeError):
        info.output_operation_infos[5] = None
    back = pickle.loads(pickle.dumps(info))
    assert back == info and back.batchTime().milliseconds() == 1000
    assert dataclasses.replace(info, num_records=3).num_records == 3   # a changed copy is a new info


def test_frozen_constructors_match_the_dataclass_and_its_snapshot():
    live = OutputOperationInfo(5, 2, "foreachRDD", None, 6, 9)
    fast = OutputOperationInfo.frozen(5, 2, "foreachRDD", None, 6, 9)
    assert fast == live and fast._frozen and not live._frozen
    assert live.snapshot() == fast and fast.snapshot() is fast
    assert (fast.id(), fast.name(), fast.description(), fast.duration) == (2, "foreachRDD", "", 3)
    info = BatchInfo(7, 8, 2, output_operation_infos={2: live}, stream_records={"s": 2})
    snap = info.snapshot()
    assert snap == info and snap._frozen and snap.snapshot() is snap
    assert snap.output_operation_infos[2] == fast and snap.output_operation_infos[2]._frozen


def test_the_bus_knows_which_callbacks_a_listener_handles():
    bus = ListenerBus()
    assert not bus.wants("onBatchCompleted")

    class Completed(StreamingListener):
        def onBatchCompleted(self, e):
            pass

    class Plain:                     # not a StreamingListener: only what it defines
        def onBatchStarted(self, e):
            pass

    class Proxy:                     # answers any callback (as a py4j-style proxy would)
        def __getattr__(self, name):
            return lambda e: None

    done = Completed()
    bus.add(done)
    assert bus.wants("onBatchCompleted") and not bus.wants("onBatchStarted")
    assert not bus.wants("onOutputOperationStarted")
    plain = Plain()
    bus.add(plain)
    assert bus.wants("onBatchStarted") and not bus.wants("onBatchSubmitted")
    patched = StreamingListener()
    patched.onBatchSubmitted = lambda e: None
    bus.add(patched)
    assert bus.wants("onBatchSubmitted")
    bus.remove(patched)
    bus.remove(plain)
    assert not bus.wants("onBatchSubmitted") and not bus.wants("onBatchStarted")
    bus.add(Proxy())
    assert bus.wants("onOutputOperationCompleted")
