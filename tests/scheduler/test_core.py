"""The scheduler core, driven by hand: no threads, no clock. Every event in every state, the whole state
asserted after each (``runnel.scheduler.core``'s docstring lists the state)."""

from __future__ import annotations

import pytest

from runnel.scheduler import core as c
from runnel.scheduler.core import SchedulerCore

ERR = ZeroDivisionError("boom")
ERR2 = OSError("disk full")
ERR3 = SystemExit(3)          # escaped a batch's run outside its jobs (BatchAborted)


def plain(rec: c.BatchRecord) -> dict:
    """A BatchRecord's fields (errors kept as the very objects, as ``dataclasses.asdict`` would copy them)."""
    fields = dict(vars(rec))
    fields["outputs"] = {o: dict(vars(op)) for o, op in rec.outputs.items()}
    return fields


def state(core: SchedulerCore) -> dict:
    """Every state container of the core, as plain data."""
    return {
        "phase": core.phase, "interval": core.interval, "checkpoint": core.checkpoint, "unit": core.unit,
        "zero": core.zero, "restored": core.restored, "next_ms": core.next_ms, "generating": core.generating,
        "generated": core.generated, "queue": list(core.queue), "running": core.running,
        "completed": core.completed, "batches": {t: plain(r) for t, r in core.batches.items()},
        "dropped": list(core.dropped), "drained": core.drained, "error": core.error, "reported": core.reported,
        "last_snapshot": core.last_snapshot, "written": core.written, "snapshot_error": core.snapshot_error,
        "backlog": core.backlog, "backlog_warned": core.backlog_warned,
    }


def record(t=1000, **changes) -> dict:
    rec = plain(c.BatchRecord(t))
    rec.update(changes)
    return rec


def outputs(**per_output) -> dict:
    """outputs(o0={...}, o1={...}) -> {0: OutputRecord fields, 1: ...}"""
    return {int(k[1:]): {"start": None, "end": None, "error": None, **v} for k, v in per_output.items()}


# -- the states, each reached by events from a fresh core ---------------------------------------------------
BUILT = c.JobsBuilt(1000, 1000, (0, 1), 3, (("q", 3),))
SUBMITTED = record(submitted=1000, num_records=3, stream_records={"q": 3}, outputs=outputs(o0={}, o1={}))
STATES = {
    "idle": [],
    "active": [c.Start(500)],
    "generating": [c.Start(500), c.BatchDue(1000)],
    "queued": [c.Start(500), c.BatchDue(1000), BUILT],
    "running": [c.Start(500), c.BatchDue(1000), BUILT, c.BatchStarted(1000, 1100)],
    "in_job": [c.Start(500), c.BatchDue(1000), BUILT, c.BatchStarted(1000, 1100), c.JobStarted(1000, 0, 1200)],
    "jobs_ran": [c.Start(500), c.BatchDue(1000), BUILT, c.BatchStarted(1000, 1100), c.JobStarted(1000, 0, 1200),
                 c.JobDone(1000, 0, 1300), c.JobStarted(1000, 1, 1300), c.JobDone(1000, 1, 1350)],
    "draining": [c.Start(500), c.BatchDue(1000), BUILT, c.BatchStarted(1000, 1100), c.StopRequested(True)],
    "stopping": [c.Start(500), c.BatchDue(1000), BUILT, c.BatchStarted(1000, 1100), c.StopRequested(False)],
    "generating_stopping": [c.Start(500), c.BatchDue(1000), c.StopRequested(False)],
    "stopped": [c.Start(500), c.StopRequested(False)],
}

EVENTS = {
    "Recovered": c.Recovered(4000, 0),
    "Start": c.Start(500),
    "StartFailed": c.StartFailed(),
    "BatchDue": c.BatchDue(1000),
    "JobsBuilt": BUILT,
    "GenerateFailed": c.GenerateFailed(1000, ERR),
    "BatchStarted": c.BatchStarted(1000, 1100),
    "JobStarted": c.JobStarted(1000, 0, 1200),
    "JobDone": c.JobDone(1000, 0, 1300),
    "JobFailed": c.JobDone(1000, 0, 1300, ERR),
    "BatchRan": c.BatchRan(1000, 1400, (("s", {"keys": 1}),)),
    "BatchAborted": c.BatchAborted(1000, 1500, ERR3),
    "SnapshotWritten": c.SnapshotWritten(0),
    "SnapshotFailed": c.SnapshotFailed(0, ERR2),
    "Stop": c.StopRequested(False),
    "StopGracefully": c.StopRequested(True),
    "DrainBatch": c.DrainBatch(),
    "DrainDone": c.DrainDone(),
    "ErrorReported": c.ErrorReported(),
}

RAISES = "raises"
NOTHING = ([], {})        # no instruction, no state change
STARTED = [c.StartGraph(0), c.StartInputs(), c.Post("streaming_started", 500), c.WaitUntil(1000)]
RESET = ([], {"phase": "idle", "zero": None, "next_ms": None, "generating": None, "generated": None,
              "queue": [], "running": None, "batches": {}})
SNAPSHOTS = {"SnapshotWritten": ([], {"written": 0}), "SnapshotFailed": ([], {"snapshot_error": ERR2})}
STOP_GRACEFULLY = ([c.StopTimer(), c.StopInputs(True), c.Drain()], {"phase": "draining", "next_ms": None})
JOB_DONE = [c.Post("output_completed", 1000, 0), c.RunJob(1000, 1)]
ABORTED = [c.Forget(1000), c.Post("completed", 1000)]


def aborted(**outs) -> dict:
    """The changes of BatchAborted(1000, 1500, ERR3) to a running batch whose outputs were ``outs``."""
    ended = {k: {**v, "end": 1500, "error": ERR3} if "end" not in v else v for k, v in outs.items()}
    return {"running": None, "completed": 1000, "error": ERR3, "batches": {1000: {
        **SUBMITTED, "started": 1100, "ended": 1500, "error": ERR3, "outputs": outputs(**ended)}}}


def table(default, **cells):
    """Outcome of every event in one state: ``default`` unless named."""
    out = {name: default for name in EVENTS}
    out.update(SNAPSHOTS)
    out.update(cells)
    return out


# state -> event -> RAISES, or (instructions, {state container: new value})
TABLE = {
    "idle": table(
        RAISES,
        BatchAborted=NOTHING,
        Recovered=([], {"restored": 4000, "zero": 0}),
        Start=(STARTED, {"phase": "active", "zero": 0, "next_ms": 1000}),
        BatchDue=NOTHING, DrainDone=NOTHING, ErrorReported=NOTHING,
        Stop=([c.Terminate()], {"phase": "stopped"}), StopGracefully=([c.Terminate()], {"phase": "stopped"})),
    "active": table(
        RAISES,
        BatchAborted=NOTHING,
        StartFailed=RESET,
        BatchDue=([c.Generate(1000)], {"generating": 1000}),
        DrainDone=NOTHING, ErrorReported=NOTHING,
        Stop=([c.StopTimer(), c.StopInputs(False), c.CloseCheckpoints(), c.Terminate()],
              {"phase": "stopped", "next_ms": None}),
        StopGracefully=STOP_GRACEFULLY),
    "generating": table(
        RAISES,
        BatchAborted=NOTHING,
        StartFailed=RESET, BatchDue=NOTHING, DrainDone=NOTHING, ErrorReported=NOTHING,
        JobsBuilt=([c.Post("submitted", 1000), c.Enqueue(1000), c.WaitUntil(2000)],
                   {"generating": None, "generated": 1000, "next_ms": 2000, "queue": [1000],
                    "batches": {1000: SUBMITTED}}),
        GenerateFailed=([c.WaitUntil(2000)],
                        {"generating": None, "generated": 1000, "next_ms": 2000, "error": ERR,
                         "batches": {1000: record(lost=True, error=ERR)}}),
        Stop=([c.StopTimer(), c.StopInputs(False)], {"phase": "stopping", "next_ms": None}),
        StopGracefully=STOP_GRACEFULLY),
    "queued": table(
        RAISES,
        BatchAborted=NOTHING,
        StartFailed=RESET, BatchDue=NOTHING, DrainDone=NOTHING, ErrorReported=NOTHING,
        BatchStarted=([c.Post("started", 1000), c.RunJob(1000, 0)],
                      {"queue": [], "running": 1000, "batches": {1000: {**SUBMITTED, "started": 1100}}}),
        Stop=([c.StopTimer(), c.StopInputs(False), c.CloseCheckpoints(), c.Terminate()],
              {"phase": "stopped", "next_ms": None, "queue": [], "dropped": [1000]}),
        StopGracefully=STOP_GRACEFULLY),
    "running": table(
        RAISES,
        BatchAborted=(ABORTED, aborted(o0={}, o1={})),
        StartFailed=RESET, BatchDue=NOTHING, DrainDone=NOTHING, ErrorReported=NOTHING,
        JobStarted=([c.Post("output_started", 1000, 0)],
                    {"batches": {1000: {**SUBMITTED, "started": 1100, "outputs": outputs(o0={"start": 1200}, o1={})}}}),
        Stop=([c.StopTimer(), c.StopInputs(False)], {"phase": "stopping", "next_ms": None}),
        StopGracefully=STOP_GRACEFULLY),
    "in_job": table(
        RAISES,
        BatchAborted=(ABORTED, aborted(o0={"start": 1200}, o1={})),
        StartFailed=RESET, BatchDue=NOTHING, DrainDone=NOTHING, ErrorReported=NOTHING,
        JobDone=(JOB_DONE, {"batches": {1000: {**SUBMITTED, "started": 1100,
                                               "outputs": outputs(o0={"start": 1200, "end": 1300}, o1={})}}}),
        JobFailed=(JOB_DONE, {"error": ERR, "batches": {1000: {
            **SUBMITTED, "started": 1100, "error": ERR,
            "outputs": outputs(o0={"start": 1200, "end": 1300, "error": ERR}, o1={})}}}),
        Stop=([c.StopTimer(), c.StopInputs(False)], {"phase": "stopping", "next_ms": None}),
        StopGracefully=STOP_GRACEFULLY),
    "jobs_ran": table(
        RAISES,
        BatchAborted=(ABORTED, aborted(o0={"start": 1200, "end": 1300}, o1={"start": 1300, "end": 1350})),
        StartFailed=RESET, BatchDue=NOTHING, DrainDone=NOTHING, ErrorReported=NOTHING,
        BatchRan=([c.Forget(1000), c.Post("completed", 1000)],
                  {"running": None, "completed": 1000, "batches": {1000: {
                      **SUBMITTED, "started": 1100, "ended": 1400, "state_tables": {"s": {"keys": 1}},
                      "outputs": outputs(o0={"start": 1200, "end": 1300}, o1={"start": 1300, "end": 1350})}}}),
        Stop=([c.StopTimer(), c.StopInputs(False)], {"phase": "stopping", "next_ms": None}),
        StopGracefully=STOP_GRACEFULLY),
    "draining": table(
        RAISES,
        BatchAborted=(ABORTED, aborted(o0={}, o1={})),     # a graceful stop still drains
        BatchDue=NOTHING, StopGracefully=NOTHING, ErrorReported=NOTHING,
        JobStarted=([c.Post("output_started", 1000, 0)],
                    {"batches": {1000: {**SUBMITTED, "started": 1100, "outputs": outputs(o0={"start": 1200}, o1={})}}}),
        DrainBatch=([c.Generate(2000)], {"generating": 2000}),
        DrainDone=([], {"drained": True}),       # the running batch ends the stop when it completes
        Stop=([], {"phase": "stopping"})),       # a forced stop during a graceful one
    "stopping": table(
        RAISES,
        BatchAborted=(ABORTED + [c.CloseCheckpoints(), c.Terminate()], {**aborted(o0={}, o1={}), "phase": "stopped"}),
        BatchDue=NOTHING, Stop=NOTHING, StopGracefully=NOTHING, DrainDone=NOTHING, ErrorReported=NOTHING,
        JobStarted=([c.Post("output_started", 1000, 0)],
                    {"batches": {1000: {**SUBMITTED, "started": 1100, "outputs": outputs(o0={"start": 1200}, o1={})}}})),
    "generating_stopping": table(
        RAISES,
        BatchAborted=NOTHING,
        BatchDue=NOTHING, Stop=NOTHING, StopGracefully=NOTHING, DrainDone=NOTHING, ErrorReported=NOTHING,
        JobsBuilt=([c.CloseCheckpoints(), c.Terminate()],
                   {"phase": "stopped", "generating": None, "generated": 1000, "dropped": [1000]}),
        GenerateFailed=([c.CloseCheckpoints(), c.Terminate()],
                        {"phase": "stopped", "generating": None, "generated": 1000, "error": ERR,
                         "batches": {1000: record(lost=True, error=ERR)}})),
    "stopped": table(
        RAISES,
        BatchAborted=NOTHING,
        BatchDue=NOTHING, Stop=NOTHING, StopGracefully=NOTHING, DrainDone=NOTHING, ErrorReported=NOTHING),
}


def reach(name: str) -> SchedulerCore:
    core = SchedulerCore(1000)
    for ev in STATES[name]:
        core.handle(ev)
    return core


def test_the_table_covers_every_event_in_every_state():
    assert set(TABLE) == set(STATES)
    for name, row in TABLE.items():
        assert set(row) == set(EVENTS), name


@pytest.mark.parametrize("event", list(EVENTS))
@pytest.mark.parametrize("name", list(STATES))
def test_every_event_in_every_state(name, event):
    core = reach(name)
    before = state(core)
    expected = TABLE[name][event]
    if expected == RAISES:
        with pytest.raises((ValueError, KeyError)):
            core.handle(EVENTS[event])
        return
    instructions, changes = expected
    assert core.handle(EVENTS[event]) == instructions
    assert state(core) == {**before, **changes}


def test_an_event_the_core_does_not_know_is_a_type_error():
    with pytest.raises(TypeError, match="no str event"):
        SchedulerCore(1000).handle("BatchDue")


# -- whole runs -------------------------------------------------------------------------------------------------
def run_batch(core: SchedulerCore, t: int, outputs=(0,), fail: int | None = None) -> list:
    """Generate and run batch t by hand; every instruction the core gave, in order."""
    got = core.handle(c.BatchDue(t))
    got += core.handle(c.JobsBuilt(t, t, tuple(outputs)))
    got += core.handle(c.BatchStarted(t, t))
    for o in outputs:
        got += core.handle(c.JobStarted(t, o, t))
        got += core.handle(c.JobDone(t, o, t, ERR if o == fail else None))
    got += core.handle(c.BatchRan(t, t))
    return got


def test_checkpoints_at_their_times_with_the_batches_still_pending():
    core = SchedulerCore(1000)
    assert core.handle(c.Start(0, checkpoint=2000, unit=1000)) == [
        c.StartGraph(0), c.StartInputs(), c.Snapshot(0, 0, (), "initial"), c.Post("streaming_started", 0),
        c.WaitUntil(1000)]
    assert c.Snapshot(1000, 0, ()) not in run_batch(core, 1000)
    # batch 3000 is generated while 2000 runs: the snapshot at 2000 names it as pending
    core.handle(c.BatchDue(2000))
    core.handle(c.JobsBuilt(2000, 2000, (0,)))
    core.handle(c.BatchDue(3000))
    core.handle(c.JobsBuilt(3000, 3000, (0,)))
    core.handle(c.BatchStarted(2000, 3000))
    core.handle(c.JobStarted(2000, 0, 3000))
    core.handle(c.JobDone(2000, 0, 3000))
    assert core.handle(c.BatchRan(2000, 3000)) == [c.Snapshot(2000, 0, (3000,)), c.Forget(2000),
                                                   c.Post("completed", 2000)]
    assert core.last_snapshot == 2000 and core.written is None
    core.handle(c.SnapshotWritten(2000))
    assert core.written == 2000


def test_a_graceful_stop_drains_then_takes_a_final_checkpoint():
    core = SchedulerCore(1000)
    core.handle(c.Start(0, checkpoint=10_000, unit=1000))
    run_batch(core, 1000)
    assert core.handle(c.StopRequested(True)) == [c.StopTimer(), c.StopInputs(True), c.Drain()]
    assert core.handle(c.DrainBatch()) == [c.Generate(2000)]
    assert core.handle(c.JobsBuilt(2000, 1500, (0,))) == [c.Post("submitted", 2000), c.Enqueue(2000)]
    assert core.handle(c.DrainDone()) == []                     # batch 2000 is still to run
    core.handle(c.BatchStarted(2000, 1500))
    core.handle(c.JobStarted(2000, 0, 1500))
    core.handle(c.JobDone(2000, 0, 1600))
    assert core.handle(c.BatchRan(2000, 1600)) == [
        c.Forget(2000), c.Post("completed", 2000), c.Snapshot(2000, 0, (), "final"), c.CloseCheckpoints(),
        c.Terminate()]
    assert core.phase == "stopped" and core.completed == 2000


def test_a_graceful_stop_of_a_recovered_context_drains_after_its_checkpoint():
    """Stopped before its first batch, a recovered context drains into the batch after the checkpoint (it
    drained into zero + interval, a batch time long past, as if the recovered batches had not run)."""
    core = SchedulerCore(1000)
    core.handle(c.Recovered(10_000, 0))
    core.handle(c.Start(10_500))
    assert core.handle(c.StopRequested(True)) == [c.StopTimer(), c.StopInputs(True), c.Drain()]
    assert core.handle(c.DrainBatch()) == [c.Generate(11_000)]
    core.handle(c.JobsBuilt(11_000, 10_500, (0,)))
    assert core.handle(c.DrainBatch()) == [c.Generate(12_000)]


def test_a_recovered_start_continues_after_the_checkpoint():
    core = SchedulerCore(1000)
    core.handle(c.Recovered(4000, 0))
    assert core.handle(c.Start(9000, checkpoint=2000)) == [
        c.StartGraph(0), c.Restore(4000), c.StartInputs(), c.Snapshot(4000, 0, (), "initial"),
        c.Post("streaming_started", 9000), c.WaitUntil(5000)]     # the batches missed while down run again
    assert (core.zero, core.restored, core.next_ms, core.last_snapshot) == (0, 4000, 5000, 4000)


def test_errors_are_kept_first_and_reported_once():
    core = SchedulerCore(1000)
    core.handle(c.Start(0))
    run_batch(core, 1000, outputs=(0, 1), fail=1)
    later = ValueError("later")
    core.handle(c.BatchDue(2000))
    core.handle(c.GenerateFailed(2000, later))
    assert core.error is ERR and not core.reported
    assert core.batches[1000].error is ERR and core.batches[2000].error is later
    assert core.is_done(2000) and core.batches[2000].lost
    core.handle(c.ErrorReported())
    assert core.reported


def test_a_backlog_is_reported_once_per_episode():
    core = SchedulerCore(1000, backlog=3)
    core.handle(c.Start(0))
    warned = []
    for t in (1000, 2000, 3000, 4000):             # none runs: they queue
        core.handle(c.BatchDue(t))
        warned += [i for i in core.handle(c.JobsBuilt(t, t, (0,))) if isinstance(i, c.WarnBacklog)]
    assert warned == [c.WarnBacklog((1000, 2000, 3000), 2000)]
    for t in (1000, 2000, 3000, 4000):             # catching up; a batch that waited 3 intervals
        got = core.handle(c.BatchStarted(t, 4000))
        assert not any(isinstance(i, c.WarnBacklog) for i in got)
        core.handle(c.JobStarted(t, 0, 4000))
        core.handle(c.JobDone(t, 0, 4000))
        core.handle(c.BatchRan(t, 4000))
    assert not core.backlog_warned                 # the queue emptied: the episode is over
    core.handle(c.BatchDue(5000))
    core.handle(c.JobsBuilt(5000, 5000, (0,)))
    assert core.handle(c.BatchStarted(5000, 8000))[-2:] == [c.WarnBacklog((), 3000), c.RunJob(5000, 0)]
