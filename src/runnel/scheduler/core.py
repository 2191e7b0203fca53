"""The batch lifecycle as data: events in, instructions out.

:class:`SchedulerCore` is the one home of the scheduling state of a
StreamingContext. It has no threads, no clock and no I/O: whoever observes
something (the scheduler thread holding the timer saw the clock reach a batch
time, a scheduler thread finished a job, the checkpoint writer committed a file, ``stop()`` was
called) turns it into an *event* and calls :meth:`SchedulerCore.handle`,
which updates the state and returns *instructions* for the caller to carry
out, in order (``runnel.scheduler.scheduler.JobScheduler`` does, for the
threads; ``tests/scheduler`` drive the core by hand). Times (``now``) come
in with the events. Dask's ``distributed`` scheduler and ``dask.local`` are
the model.

The lifecycle of one batch time t::

    BatchDue(t) ──> Generate(t) ──> JobsBuilt(t) ──> Post(submitted), Enqueue(t)
                                └─> GenerateFailed(t)       (t is lost, error kept)
    BatchStarted(t) ──> Post(started), RunJob(t, o0)
    JobStarted(t, o) ──> Post(output_started)
    JobDone(t, o) ──> Post(output_completed), RunJob(t, o+1) | FinishBatch(t)
    BatchRan(t) ──> [Snapshot(t)], Forget(t), Post(completed)
    BatchAborted(t) ──> Forget(t), Post(completed)      (failed outside its jobs: no snapshot)

Batches run one at a time in time order; generation never waits for
processing (queued batches wait, their scheduling delay grows).

State, what it maps, who changes it (every change is in :meth:`handle`):

    phase         idle -> active -> draining | stopping -> stopped      Start, StopRequested,
                  (draining: a graceful stop runs every received        DrainDone, BatchRan
                  batch; stopping: runs no queued batch)
    interval      batch interval, ms                                    constructor
    checkpoint    checkpoint interval, ms, or None (no checkpoints)     Start
    unit          grid of checkpointable times (lcm of stateful slides) Start
    zero          zero time: batch times are zero + k * interval        Recovered, Start
    restored      time of the checkpoint a recovery started from        Recovered
    next_ms       next batch time the timer waits for (None: no timer)  Start, JobsBuilt,
                                                                        GenerateFailed, StopRequested
    generating    batch time whose jobs are being built, or None        BatchDue, DrainBatch -> JobsBuilt,
                                                                        GenerateFailed
    generated     last batch time generated (built or lost)             JobsBuilt, GenerateFailed
    queue         batch times built, not started, in time order         JobsBuilt (append),
                                                                        BatchStarted (pop), StopRequested
    running       batch time being run, or None                         BatchStarted -> BatchRan | BatchAborted
    completed     last batch time whose jobs all ran (or were aborted)  BatchRan, BatchAborted
    backlog_warned  a backlog (>= ``backlog`` batches queued, or a     JobsBuilt, BatchStarted
                  scheduling delay of >= ``backlog`` intervals) was
                  reported; cleared when a batch starts with none queued
    batches       batch time -> BatchRecord (the last KEEP_BATCHES):    JobsBuilt, GenerateFailed, BatchStarted,
                  times, records, outputs' times and failures           JobStarted, JobDone, BatchRan, BatchAborted
    drained       a graceful stop has every received record in a batch  DrainDone
    dropped       batch times a non-graceful stop discarded unrun       StopRequested
    error         first error of any batch (PySpark re-raises it on     GenerateFailed, JobDone, BatchRan,
                  every awaitTermination), or None                      BatchAborted
    reported      True once ``error`` reached the user                  ErrorReported
    last_snapshot time of the last snapshot handed to the writer        Start, BatchRan, final stop
    written       time of the last checkpoint committed                 SnapshotWritten
    snapshot_error  the last checkpoint write error, or None            SnapshotWritten, SnapshotFailed

Invariants (``tests/scheduler/test_core_machine.py`` checks them after
every event): batches start and complete in time order, none runs twice;
at most one batch runs; a snapshot at t is taken only when every generated
batch up to t has completed; nothing runs after ``stopped``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

IDLE, ACTIVE, DRAINING, STOPPING, STOPPED = "idle", "active", "draining", "stopping", "stopped"
KEEP_BATCHES = 1000


# -- events ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recovered:
    """Start from the checkpoint at ``time`` (zero time ``zero``); before Start."""
    time: int
    zero: int


@dataclass(frozen=True)
class Start:
    """Begin: batch times from ``now`` on (or after the recovered checkpoint). ``checkpoint``: the
    checkpoint interval in ms (None: no checkpoints); ``unit``: the grid of checkpointable times."""
    now: int
    checkpoint: int | None = None
    unit: int | None = None


@dataclass(frozen=True)
class StartFailed:
    """Carrying out Start's instructions failed: back to idle (a later start may succeed)."""


@dataclass(frozen=True)
class BatchDue:
    """The clock reached batch time ``time``."""
    time: int


@dataclass(frozen=True)
class JobsBuilt:
    time: int
    now: int
    outputs: tuple[int, ...]                       # output ids with a job, in definition order
    num_records: int = 0
    stream_records: tuple[tuple[str, int], ...] = ()
    input_infos: tuple = ()                        # (stream id, what it reported): listener data


@dataclass(frozen=True)
class GenerateFailed:
    time: int
    error: BaseException


@dataclass(frozen=True)
class BatchStarted:
    """A scheduler thread took batch ``time`` off the queue (or kept it) to run it."""
    time: int
    now: int


@dataclass(frozen=True)
class JobStarted:
    time: int
    output: int
    now: int


@dataclass(frozen=True)
class JobDone:
    time: int
    output: int
    now: int
    error: BaseException | None = None


@dataclass(frozen=True)
class BatchRan:
    """A scheduler thread finished batch ``time``: its jobs ran, stateful streams settled (``errors``: those
    that could not compute what the next batch builds on), state reports collected."""
    time: int
    now: int
    state_tables: tuple[tuple[str, dict], ...] = ()
    errors: tuple[BaseException, ...] = ()


@dataclass(frozen=True)
class BatchAborted:
    """Running batch ``time`` failed outside its jobs (an internal error the runner could not carry on
    after): its outputs that did not end fail with ``error`` and the batch completes, so that later
    batches run and a stop is not kept waiting. No snapshot: its state did not settle."""
    time: int
    now: int
    error: BaseException


@dataclass(frozen=True)
class SnapshotWritten:
    time: int


@dataclass(frozen=True)
class SnapshotFailed:
    time: int
    error: BaseException


@dataclass(frozen=True)
class StopRequested:
    graceful: bool


@dataclass(frozen=True)
class DrainBatch:
    """A graceful stop found received data not yet in a batch: generate the next batch now."""


@dataclass(frozen=True)
class DrainDone:
    """A graceful stop has every received record in a generated batch."""


@dataclass(frozen=True)
class ErrorReported:
    """``error`` was raised to the user (await_termination, run_batches, stop)."""


# -- instructions -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartGraph:
    zero: int


@dataclass(frozen=True)
class Restore:
    time: int


@dataclass(frozen=True)
class StartInputs:
    pass


@dataclass(frozen=True)
class WaitUntil:
    time: int


@dataclass(frozen=True)
class Generate:
    time: int


@dataclass(frozen=True)
class Enqueue:
    time: int


@dataclass(frozen=True)
class RunJob:
    time: int
    output: int


@dataclass(frozen=True)
class FinishBatch:
    time: int


@dataclass(frozen=True)
class Snapshot:
    """Take a checkpoint snapshot at ``time``; ``pending``: batches generated after it, not completed.
    ``kind``: "initial" (written at start), "periodic", "final" (graceful stop)."""
    time: int
    zero: int
    pending: tuple[int, ...]
    kind: str = "periodic"


@dataclass(frozen=True)
class Forget:
    """Streams may forget Datasets before ``time``."""
    time: int


@dataclass(frozen=True)
class Post:
    """A listener event: "streaming_started" (time = now), "submitted", "started", "completed",
    "output_started", "output_completed" (output = its id)."""
    kind: str
    time: int
    output: int | None = None


@dataclass(frozen=True)
class StopTimer:
    pass


@dataclass(frozen=True)
class StopInputs:
    graceful: bool


@dataclass(frozen=True)
class Drain:
    """Generate batches (DrainBatch) until every received record is in one, then DrainDone."""


@dataclass(frozen=True)
class WarnBacklog:
    """Batches queue up (processing is slower than the input): say so, once per episode."""
    queued: tuple[int, ...]          # batch times waiting
    delay: int                       # scheduling delay of the batch starting now (or queued longest), ms


@dataclass(frozen=True)
class CloseCheckpoints:
    pass


@dataclass(frozen=True)
class Terminate:
    pass


# -- records ------------------------------------------------------------------------------------------
@dataclass
class OutputRecord:
    start: int | None = None
    end: int | None = None
    error: BaseException | None = None


@dataclass
class BatchRecord:
    """What happened to one batch time (the listener's BatchInfo is built from it)."""
    time: int
    submitted: int | None = None
    started: int | None = None
    ended: int | None = None
    num_records: int = 0
    stream_records: dict[str, int] = field(default_factory=dict)
    input_infos: dict = field(default_factory=dict)
    outputs: dict[int, OutputRecord] = field(default_factory=dict)
    state_tables: dict[str, dict] = field(default_factory=dict)
    error: BaseException | None = None      # the batch's first error (lost, or an output failed)
    lost: bool = False                      # its jobs could not be built


class SchedulerCore:
    """The scheduling state machine (see the module docstring)."""

    def __init__(self, interval: int, backlog: int = 10):
        if interval <= 0:
            raise ValueError(f"the batch interval must be positive, got {interval} ms")
        if backlog < 1:
            raise ValueError(f"the backlog warning threshold must be at least 1 batch, got {backlog}")
        self.interval = interval
        self.backlog = backlog
        self.backlog_warned = False
        self.checkpoint: int | None = None
        self.unit = interval
        self.phase = IDLE
        self.zero: int | None = None
        self.restored: int | None = None
        self.next_ms: int | None = None
        self.generating: int | None = None
        self.generated: int | None = None
        self.queue: deque[int] = deque()
        self.running: int | None = None
        self.completed: int | None = None
        self.batches: dict[int, BatchRecord] = {}
        self.dropped: list[int] = []
        self.error: BaseException | None = None
        self.reported = False
        self.last_snapshot: int | None = None
        self.written: int | None = None
        self.snapshot_error: BaseException | None = None
        self.drained = False

    def handle(self, event) -> list:
        """Apply ``event``; return the instructions to carry out, in order."""
        method = _HANDLERS.get(type(event))
        if method is None:
            raise TypeError(f"the scheduler core takes no {type(event).__name__} event")
        return method(self, event)

    # -- queries ----------------------------------------------------------------------------------
    def is_done(self, t: int) -> bool:
        """Batch t completed or was lost (nothing more will happen to it)."""
        rec = self.batches.get(t)
        return (self.completed is not None and self.completed >= t) or (rec is not None and rec.lost) \
            or t in self.dropped

    def pending(self, after: int) -> tuple[int, ...]:
        """Batch times generated after ``after`` and not completed."""
        times = list(self.queue)
        if self.running is not None:
            times.append(self.running)
        if self.generating is not None:
            times.append(self.generating)
        return tuple(sorted(t for t in times if t > after))

    @property
    def terminated(self) -> bool:
        return self.phase == STOPPED

    # -- starting -----------------------------------------------------------------------------------
    def _on_Recovered(self, ev: Recovered) -> list:
        self._expect(ev, IDLE)
        self.restored, self.zero = ev.time, ev.zero
        return []

    def _on_Start(self, ev: Start) -> list:
        self._expect(ev, IDLE)
        self.checkpoint, self.unit = ev.checkpoint, ev.unit or self.interval
        out = []
        if self.restored is None:
            first = (ev.now // self.interval + 1) * self.interval
            self.zero = first - self.interval
            base = self.zero
        else:
            first = self.restored + self.interval
            base = self.restored
        out.append(StartGraph(self.zero))
        if self.restored is not None:
            out.append(Restore(self.restored))
        out.append(StartInputs())
        if self.checkpoint is not None:
            self.last_snapshot = base
            out.append(Snapshot(base, self.zero, (), "initial"))
        self.phase = ACTIVE
        self.next_ms = first
        out += [Post("streaming_started", ev.now), WaitUntil(first)]
        return out

    def _on_StartFailed(self, ev: StartFailed) -> list:
        self._expect(ev, ACTIVE)
        restored, zero = self.restored, (self.zero if self.restored is not None else None)
        self.__init__(self.interval, self.backlog)
        self.restored, self.zero = restored, zero
        return []

    # -- generating -----------------------------------------------------------------------------------
    def _on_BatchDue(self, ev: BatchDue) -> list:
        if self.phase != ACTIVE or ev.time != self.next_ms or self.generating is not None:
            return []                       # a stale timer (stopped, or already generated)
        self.generating = ev.time
        return [Generate(ev.time)]

    def _on_DrainBatch(self, ev: DrainBatch) -> list:
        self._expect(ev, DRAINING)
        if self.generating is not None:
            return []
        last = self.generated if self.generated is not None else (
            self.restored if self.restored is not None else self.zero)   # a recovered one ran up to its checkpoint
        t = last + self.interval
        self.generating = t
        return [Generate(t)]

    def _built(self, t: int) -> None:
        if self.generating != t:
            raise ValueError(f"batch {t} ms was not being generated (generating: {self.generating})")
        self.generating = None
        self.generated = t
        if self.phase == ACTIVE:
            self.next_ms = t + self.interval

    def _on_JobsBuilt(self, ev: JobsBuilt) -> list:
        self._built(ev.time)
        if self.phase in (STOPPING, STOPPED):
            self.dropped.append(ev.time)
            return self._maybe_terminate()
        rec = self._record(ev.time)
        rec.submitted, rec.num_records = ev.now, ev.num_records
        rec.stream_records = dict(ev.stream_records)
        rec.input_infos = dict(ev.input_infos)
        rec.outputs = {o: OutputRecord() for o in ev.outputs}
        self.queue.append(ev.time)
        out = [Post("submitted", ev.time), Enqueue(ev.time)]
        if len(self.queue) >= self.backlog:
            oldest = self.batches.get(self.queue[0])
            out += self._warn_backlog(ev.now - oldest.submitted if oldest is not None else 0)
        if self.phase == ACTIVE:
            out.append(WaitUntil(self.next_ms))
        return out

    def _warn_backlog(self, delay: int) -> list:
        if self.backlog_warned:
            return []
        self.backlog_warned = True
        return [WarnBacklog(tuple(self.queue), delay)]

    def _on_GenerateFailed(self, ev: GenerateFailed) -> list:
        self._built(ev.time)
        rec = self._record(ev.time)
        rec.lost, rec.error = True, ev.error
        self._keep_error(ev.error)
        out = [WaitUntil(self.next_ms)] if self.phase == ACTIVE else []
        return out + self._maybe_terminate()

    # -- running ------------------------------------------------------------------------------------------
    def _on_BatchStarted(self, ev: BatchStarted) -> list:
        if ev.time in self.dropped:
            return []                       # discarded by a non-graceful stop: it is skipped
        if not self.queue or self.queue[0] != ev.time or self.running is not None:
            raise ValueError(f"batch {ev.time} ms started out of turn (queue: {list(self.queue)}, "
                             f"running: {self.running})")
        self.queue.popleft()
        self.running = ev.time
        rec = self.batches[ev.time]
        rec.started = ev.now
        out = [Post("started", ev.time)]
        if rec.submitted is not None and ev.now - rec.submitted >= self.backlog * self.interval:
            out += self._warn_backlog(ev.now - rec.submitted)
        elif not self.queue:
            self.backlog_warned = False     # caught up: the next backlog is a new episode
        return out + self._next_job(rec, None)

    def _next_job(self, rec: BatchRecord, after: int | None) -> list:
        """Outputs run in definition order (``rec.outputs`` is in that order, from JobsBuilt)."""
        later = next((o for o in rec.outputs if after is None or o > after), None)
        return [RunJob(rec.time, later)] if later is not None else [FinishBatch(rec.time)]

    def _running(self, t: int, output: int) -> BatchRecord:
        if self.running != t:
            raise ValueError(f"a job of batch {t} ms reported, but the running batch is {self.running}")
        rec = self.batches[t]
        if output not in rec.outputs:
            raise ValueError(f"batch {t} ms has no output {output}")
        return rec

    def _on_JobStarted(self, ev: JobStarted) -> list:
        op = self._running(ev.time, ev.output).outputs[ev.output]
        if op.start is not None:
            raise ValueError(f"output {ev.output} of batch {ev.time} ms started twice")
        op.start = ev.now
        return [Post("output_started", ev.time, ev.output)]

    def _on_JobDone(self, ev: JobDone) -> list:
        rec = self._running(ev.time, ev.output)
        op = rec.outputs[ev.output]
        if op.start is None or op.end is not None:
            raise ValueError(f"output {ev.output} of batch {ev.time} ms done, but it was not running")
        op.end, op.error = ev.now, ev.error
        if ev.error is not None:
            if rec.error is None:
                rec.error = ev.error
            self._keep_error(ev.error)
        return [Post("output_completed", ev.time, ev.output)] + self._next_job(rec, ev.output)

    def _on_BatchRan(self, ev: BatchRan) -> list:
        if self.running != ev.time:
            raise ValueError(f"batch {ev.time} ms finished, but the running batch is {self.running}")
        rec = self.batches[ev.time]
        if any(op.end is None for op in rec.outputs.values()):
            raise ValueError(f"batch {ev.time} ms finished before all its outputs ran")
        rec.ended = ev.now
        rec.state_tables = dict(ev.state_tables)
        for e in ev.errors:
            if rec.error is None:
                rec.error = e
            self._keep_error(e)
        out = []
        t = ev.time
        # snapshot before forgetting: the tables of t must still be held
        if self.checkpoint is not None and (t - self.zero) % self.checkpoint == 0 and t != self.last_snapshot:
            self.last_snapshot = t
            out.append(Snapshot(t, self.zero, self.pending(t)))
        out += [Forget(t), Post("completed", t)]
        self.running = None
        self.completed = t
        return out + self._maybe_terminate()

    def _on_BatchAborted(self, ev: BatchAborted) -> list:
        if self.running != ev.time:
            return []                       # it completed after all (the error came later), or never started
        rec = self.batches[ev.time]
        for op in rec.outputs.values():
            if op.end is None:
                op.end, op.error = ev.now, ev.error
        rec.ended = ev.now
        if rec.error is None:
            rec.error = ev.error
        self._keep_error(ev.error)
        self.running = None
        self.completed = ev.time
        return [Forget(ev.time), Post("completed", ev.time)] + self._maybe_terminate()

    # -- checkpoints --------------------------------------------------------------------------------------
    def _on_SnapshotWritten(self, ev: SnapshotWritten) -> list:
        self.written = ev.time if self.written is None else max(self.written, ev.time)
        self.snapshot_error = None
        return []

    def _on_SnapshotFailed(self, ev: SnapshotFailed) -> list:
        self.snapshot_error = ev.error
        return []

    # -- stopping -------------------------------------------------------------------------------------------
    def _on_StopRequested(self, ev: StopRequested) -> list:
        if self.phase == IDLE:
            self.phase = STOPPED
            return [Terminate()]
        if self.phase == STOPPED:
            return []
        if self.phase in (DRAINING, STOPPING):
            if ev.graceful or self.phase == STOPPING:
                return []
            return self._stop_now()         # a forced stop during a graceful one
        self.next_ms = None
        if ev.graceful:
            self.phase = DRAINING
            return [StopTimer(), StopInputs(True), Drain()]
        return [StopTimer(), StopInputs(False)] + self._stop_now()

    def _stop_now(self) -> list:
        self.phase = STOPPING
        self.dropped.extend(self.queue)
        self.queue.clear()
        return self._maybe_terminate()

    def _on_DrainDone(self, ev: DrainDone) -> list:
        if self.phase != DRAINING:
            return []
        self.drained = True
        return self._maybe_terminate()

    def _maybe_terminate(self) -> list:
        idle = self.running is None and not self.queue and self.generating is None
        if self.phase == STOPPING and idle:
            self.phase = STOPPED
            return [CloseCheckpoints(), Terminate()]
        if self.phase == DRAINING and idle and self.drained:
            self.phase = STOPPED
            out = []
            t = self.completed
            if (self.checkpoint is not None and t is not None and (t - self.zero) % self.unit == 0
                    and t != self.last_snapshot):
                self.last_snapshot = t        # everything received is in state: keep it
                out.append(Snapshot(t, self.zero, (), "final"))
            return out + [CloseCheckpoints(), Terminate()]
        return []

    # -- errors --------------------------------------------------------------------------------------------
    def _keep_error(self, e: BaseException) -> None:
        if self.error is None:
            self.error = e
            self.reported = False

    def _on_ErrorReported(self, ev: ErrorReported) -> list:
        if self.error is not None:
            self.reported = True
        return []

    # -- helpers ----------------------------------------------------------------------------------------------
    def _record(self, t: int) -> BatchRecord:
        rec = self.batches[t] = BatchRecord(t)
        if len(self.batches) > KEEP_BATCHES:
            del self.batches[next(iter(self.batches))]   # batch times are generated in time order
        return rec

    def _expect(self, ev, *phases: str) -> None:
        if self.phase not in phases:
            raise ValueError(f"{type(ev).__name__} in phase {self.phase!r} (expected {' or '.join(phases)})")


_HANDLERS = {event: getattr(SchedulerCore, "_on_" + event.__name__)
             for event in (Recovered, Start, StartFailed, BatchDue, JobsBuilt, GenerateFailed, BatchStarted,
                           JobStarted, JobDone, BatchRan, BatchAborted, SnapshotWritten, SnapshotFailed, StopRequested,
                           DrainBatch, DrainDone, ErrorReported)}
