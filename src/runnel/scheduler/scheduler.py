"""The threads that carry out the scheduler core's instructions.

:class:`~runnel.scheduler.core.SchedulerCore` decides; :class:`JobScheduler`
observes and acts. It owns no scheduling state of its own (read it from
``self.core``) — only the things the core deliberately does not hold:

    jobs        batch time -> [(output stream, job)] built   Generate puts, the runner pops
    runq        batch times the runner takes, in order        Enqueue puts, Terminate puts None
    due         batch time the generator thread waits for    WaitUntil

Two threads and the caller of ``start()``/``stop()`` feed events:

    generator thread   waits on the clock for ``due``, feeds BatchDue and builds
                       the batch's jobs (Generate) -> JobsBuilt / GenerateFailed
    runner thread      takes batch times off ``runq`` and runs their jobs
                       (BatchStarted, JobStarted, JobDone, BatchRan)
    checkpoint writer  (``runnel.checkpoint.checkpointer``) SnapshotWritten / SnapshotFailed

Each ``feed`` applies one event under ``lock`` and then carries out the
instructions *on the calling thread, outside the lock*, in order; an
instruction that feeds a further event (Generate, RunJob, FinishBatch,
Drain) has that event's instructions carried out next (a work list, not
recursion). Listener events are therefore posted by the thread whose event
caused them; per batch they are ordered by the data flow (a batch reaches
the runner only after its ``submitted`` event was posted).
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections import deque
from typing import Callable

from ..listener import (BatchEvent, BatchInfo, ListenerBus, OutputOperationEvent, OutputOperationInfo,
                        StreamingStarted, ms_to_datetime)
from . import core as c

log = logging.getLogger("runnel.scheduler")
STOP_WAIT = 30.0   # seconds a non-graceful stop waits for the running batch
DRAIN_ROUNDS = 10_000


class JobScheduler:
    """Carries out a :class:`SchedulerCore`'s instructions with a generator and a runner thread.

    Parameters
    ----------
    graph : DStreamGraph
        Builds the jobs (``generate_jobs``), lets streams forget (``forget_before``).
    clock : Clock
    bus : ListenerBus
    backlog : int
        Warn when this many batches queue (or wait this many intervals).
    """

    def __init__(self, graph, clock, bus: ListenerBus, backlog: int = 10):
        self.graph = graph
        self.clock = clock
        self.bus = bus
        self.core = c.SchedulerCore(graph.batch_ms, backlog)
        self.lock = threading.Condition(threading.RLock())
        self.checkpointer = None          # set by start() when checkpointing
        self.on_restore: Callable[[int], None] | None = None
        self.on_start_inputs: Callable[[], None] | None = None
        self.jobs: dict[int, list] = {}
        self.runq: "queue.Queue[int | None]" = queue.Queue()
        self.due: int | None = None
        self._stop_timer = threading.Event()
        self._generator: threading.Thread | None = None
        self._runner: threading.Thread | None = None

    # -- feeding events -------------------------------------------------------------------------
    def feed(self, event) -> None:
        """Apply ``event`` and carry out the instructions (and those of the events they feed)."""
        work = deque(self._handle(event))
        while work:
            more = self._do(work.popleft())
            if more:
                work.extendleft(reversed(more))

    def _handle(self, event) -> list:
        with self.lock:
            out = self.core.handle(event)
            if type(event) in _WAKES or getattr(event, "error", None) is not None:
                self.lock.notify_all()       # what waiters wait for: a batch done or lost, an error, a stop
        return out

    def _do(self, ins) -> list | None:
        kind = type(ins)
        if kind is c.Post:
            self._post(ins)
        elif kind is c.RunJob:
            return self._run_job(ins.time, ins.output)
        elif kind is c.Enqueue:
            self.runq.put(ins.time)
        elif kind is c.WaitUntil:
            self.due = ins.time
        elif kind is c.Generate:
            return self._generate(ins.time)
        elif kind is c.FinishBatch:
            return self._finish(ins.time)
        elif kind is c.Forget:
            self.graph.forget_before(ins.time)
        elif kind is c.Snapshot:
            if self.checkpointer is not None:
                self.checkpointer.take(ins)
        elif kind is c.WarnBacklog:
            self._warn_backlog(ins)
        elif kind is c.StartGraph:
            self.graph.start(ins.zero)
        elif kind is c.Restore:
            if self.on_restore is not None:
                self.on_restore(ins.time)
        elif kind is c.StartInputs:
            if self.on_start_inputs is not None:
                self.on_start_inputs()
        elif kind is c.StopTimer:
            self._stop_generating()
        elif kind is c.StopInputs:
            self._stop_inputs(ins.graceful)
        elif kind is c.Drain:
            return self._drain()
        elif kind is c.CloseCheckpoints:
            if self.checkpointer is not None:
                self.checkpointer.stop()
        elif kind is c.Terminate:
            self.runq.put(None)
        else:
            raise TypeError(f"no way to carry out {ins!r}")
        return None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, checkpoint_ms: int | None = None, unit_ms: int | None = None) -> None:
        """Start (StartGraph, Restore, StartInputs, the first checkpoint), then the threads."""
        try:
            self.feed(c.Start(self.clock.now(), checkpoint_ms, unit_ms))
        except BaseException:
            self._handle(c.StartFailed())
            raise
        self._runner = threading.Thread(target=self._run_loop, name="runnel-job-runner", daemon=True)
        self._generator = threading.Thread(target=self._generate_loop, name="runnel-job-generator", daemon=True)
        self._runner.start()
        self._generator.start()

    def on_own_thread(self) -> bool:
        """Called from the generator or runner thread (a job, a transform function, a listener)?"""
        return threading.current_thread() in (self._generator, self._runner)

    def recovered(self, time: int, zero: int) -> None:
        self.feed(c.Recovered(time, zero))

    def stop(self, graceful: bool, timeout: float | None = None) -> None:
        """Stop: a graceful stop runs every received record's batch first; otherwise queued batches
        are dropped and the running one is waited for (at most ``timeout``, default 30 s)."""
        self.feed(c.StopRequested(graceful))
        if self._runner is None or threading.current_thread() is self._runner:
            return        # stopped from a job or listener: the runner terminates after this batch
        wait = timeout if graceful else (timeout or STOP_WAIT)
        with self.lock:
            done = self.lock.wait_for(lambda: self.core.terminated, wait)
        if not done:
            log.warning("runnel: stopped while batch %s was still running", self.core.running)
            if self.checkpointer is not None:
                self.checkpointer.stop()
        self._runner.join(5 if done else 0)

    def _stop_generating(self) -> None:
        self._stop_timer.set()
        self.clock.wake()
        if self._generator is not None and self._generator is not threading.current_thread():
            self._generator.join()

    def _stop_inputs(self, graceful: bool) -> None:
        for i in self.graph.inputs:
            i.stop()
        if not graceful:
            pending = [i.name for i in self.graph.inputs if i.has_pending()]
            if pending:
                log.warning("runnel: stopping without stop_gracefully discards data received but not yet "
                            "processed by %s", ", ".join(pending))

    def _drain(self) -> list:
        rounds = 0
        while any(i.has_pending() for i in self.graph.inputs) and rounds < DRAIN_ROUNDS:
            self.feed(c.DrainBatch())
            rounds += 1
        return self._handle(c.DrainDone())

    # -- generating -------------------------------------------------------------------------------------
    def _generate_loop(self) -> None:
        while not self._stop_timer.is_set():
            t = self.due
            if t is None or not self.clock.wait_until(t, self._stop_timer):
                return
            if self.due != t:
                continue
            self.feed(c.BatchDue(t))
            if self.due == t:         # nothing generated (stopping): no next batch to wait for
                return

    def _generate(self, t: int) -> list:
        graph = self.graph
        try:
            jobs = graph.generate_jobs(t)
            info = BatchInfo.submitted(t, self.clock.now(), graph, [out for out, _ in jobs])
            event = c.JobsBuilt(t, info.submission_time, tuple(info.output_operation_infos), info.num_records,
                                tuple(info.stream_records.items()), tuple(info.stream_input_infos.items()))
        except Exception as e:  # the engine failed to build batch t: say so, keep generating
            log.error("runnel: could not generate the batch at %s: %s", ms_to_datetime(t), _first_line(e))
            return self._handle(c.GenerateFailed(t, e))
        self.jobs[t] = {out.output_id: job for out, job in jobs}
        return self._handle(event)

    # -- running ------------------------------------------------------------------------------------------
    def _run_loop(self) -> None:
        while True:
            t = self.runq.get()
            if t is None:
                return
            try:
                self.feed(c.BatchStarted(t, self.clock.now()))
            except BaseException:  # never let the runner die silently
                log.exception("runnel: internal error running batch %s", t)
            finally:
                self.jobs.pop(t, None)

    def _run_job(self, t: int, output: int) -> list:
        job = self.jobs[t][output]
        self.feed(c.JobStarted(t, output, self.clock.now()))
        error = None
        try:
            job()
        except Exception as e:  # a user error fails this output of this batch only
            error = e
            log.error("runnel: output %s failed for batch %s: %s", self.graph.outputs[output].name,
                      ms_to_datetime(t), _first_line(e))
        return self._handle(c.JobDone(t, output, self.clock.now(), error))

    def _finish(self, t: int) -> list:
        errors = self.graph.settle(t)   # state a failed output left uncomputed: computed, or fallen back
        for e in errors:
            log.error("runnel: batch %s: %s", ms_to_datetime(t), _first_line(e))
        tables = []
        for s in self.graph.streams:  # stateful streams report their tables' keys and bytes
            report = getattr(s, "state_report", None)
            try:
                got = report(t) if report is not None else None
            except Exception:  # a report must never stop the batch from completing
                log.exception("runnel: state report of %s failed", s.name)
                got = None
            if got is not None:
                tables.append((s.name, got))
        return self._handle(c.BatchRan(t, self.clock.now(), tuple(tables), tuple(errors)))

    # -- listener events ------------------------------------------------------------------------------------
    def _post(self, ins: c.Post) -> None:
        kind = ins.kind
        if kind == "streaming_started":
            self.bus.post("onStreamingStarted", StreamingStarted(ins.time))
            return
        if kind in ("output_started", "output_completed"):
            method = "onOutputOperationStarted" if kind == "output_started" else "onOutputOperationCompleted"
            with self.lock:
                op = self._output_info(self.core.batches[ins.time], ins.output)
            self.bus.post(method, OutputOperationEvent(op))
            return
        with self.lock:
            info = self.batch_info(ins.time)
        self.bus.post(_BATCH_EVENTS[kind], BatchEvent(info))

    def batch_info(self, t: int) -> BatchInfo:
        """A listener BatchInfo of batch t as the core records it now (a fresh object per event)."""
        rec = self.core.batches[t]
        info = BatchInfo(batch_time=t, submission_time=rec.submitted, num_records=rec.num_records,
                         processing_start_time=rec.started, processing_end_time=rec.ended,
                         stream_records=dict(rec.stream_records), state_tables=dict(rec.state_tables),
                         stream_input_infos=dict(rec.input_infos))
        for o in rec.outputs:
            info.output_operation_infos[o] = self._output_info(rec, o)
        return info

    def _output_info(self, rec: c.BatchRecord, o: int) -> OutputOperationInfo:
        out, op = self.graph.outputs[o], rec.outputs[o]
        return OutputOperationInfo(rec.time, o, out.op_name, out.description, op.start, op.end,
                                   None if op.error is None else "".join(traceback.format_exception(op.error)))

    def _warn_backlog(self, ins: c.WarnBacklog) -> None:
        q = ins.queued
        log.warning("runnel: batches are queueing: %d wait (%s to %s), scheduling delay %.1f s; processing is "
                    "slower than the input (enable spark.streaming.backpressure.enabled, give batches more "
                    "time or the job more cores)", len(q), ms_to_datetime(q[0]) if q else "-",
                    ms_to_datetime(q[-1]) if q else "-", ins.delay / 1000)

    # -- waiting -------------------------------------------------------------------------------------------
    def wait_for_batch(self, t: int, timeout: float) -> None:
        """Block until batch t has completed (or was lost); TimeoutError after ``timeout`` seconds."""
        with self.lock:
            ok = self.lock.wait_for(lambda: self.core.is_done(t), timeout)
            if not ok:
                raise TimeoutError(f"batch at {t} ms did not complete within {timeout} s "
                                   f"(last completed: {self.core.completed}, running: {self.core.running}, "
                                   f"queued: {list(self.core.queue)})")

    def wait_for_stop_or_error(self, timeout: float | None, stopped: threading.Event) -> None:
        """Block until ``stopped`` is set or a batch fails (at most ``timeout`` seconds)."""
        with self.lock:
            self.lock.wait_for(lambda: stopped.is_set() or self.core.error is not None, timeout)

    def wake(self) -> None:
        with self.lock:
            self.lock.notify_all()

    def take_error(self, only_unreported: bool = False) -> BaseException | None:
        """The first error of any batch (marked reported), or None."""
        with self.lock:
            core = self.core
            if core.error is None or (only_unreported and core.reported):
                return None
            core.handle(c.ErrorReported())
            return core.error

    def batch_error(self, times) -> BaseException | None:
        """The first error among batch times ``times`` (marked reported), or None."""
        with self.lock:
            for t in times:
                rec = self.core.batches.get(t)
                if rec is not None and rec.error is not None:
                    self.core.handle(c.ErrorReported())
                    return rec.error
        return None


_BATCH_EVENTS = {"submitted": "onBatchSubmitted", "started": "onBatchStarted", "completed": "onBatchCompleted"}
_WAKES = (c.BatchRan, c.GenerateFailed, c.JobsBuilt, c.StopRequested, c.DrainDone)


def _first_line(e: BaseException) -> str:
    """``Type: message`` of an error without the traceback a TaskFailed carries (raised to the user once)."""
    text = str(e).split("\n\n", 1)[0]
    return f"{type(e).__name__}: {text}"
