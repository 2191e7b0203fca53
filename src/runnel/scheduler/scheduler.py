"""Batch scheduling: one job set per batch time, run one after another.

Two threads, one queue:

    generator thread   waits on the clock for each batch time t (zero + k*interval),
                       asks the graph for jobs (which computes the lazy Datasets
                       and takes inputs' data for t), posts onBatchSubmitted and
                       puts a JobSet on the queue.
    runner thread      takes JobSets in time order and runs their jobs in output
                       order (onBatchStarted, onOutputOperationStarted/Completed,
                       onBatchCompleted), then lets streams forget old Datasets.

When processing lags, JobSets wait in the queue (their scheduling delay grows);
batch generation never waits for processing.

State, and who changes it:

    next_ms      next batch time to generate            generator thread
    queue        JobSets generated, not yet started      generator puts, runner takes
    running      batch time being run, or None           runner
    infos        batch time -> BatchInfo (recent ones)   generator creates, runner completes
    completed    last batch time whose jobs all ran      runner (under ``cond``)
    error        first user error not yet cleared        runner (PySpark re-raises it on
                                                         every awaitTermination)
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from dataclasses import dataclass, field
from typing import Callable

from ..listener import BatchEvent, BatchInfo, OutputOperationEvent

log = logging.getLogger("runnel.scheduler")
_KEEP_INFOS = 1000
_STOP_WAIT = 30.0   # seconds a non-graceful stop waits for the running batch


@dataclass
class JobSet:
    time: int
    jobs: list[tuple[object, Callable[[], None]]]
    info: BatchInfo = field(repr=False, default=None)


class JobScheduler:
    def __init__(self, ssc):
        self.ssc = ssc
        self.clock = ssc.clock
        self.queue: "queue.Queue[JobSet | None]" = queue.Queue()
        self.cond = threading.Condition()
        self.next_ms: int | None = None
        self.running: int | None = None
        self.completed: int | None = None
        self.generated: int | None = None
        self.infos: dict[int, BatchInfo] = {}
        self.error: BaseException | None = None
        self._stop_generating = threading.Event()
        self._generator: threading.Thread | None = None
        self._runner: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self, first_ms: int) -> None:
        self.next_ms = first_ms
        self._runner = threading.Thread(target=self._run_loop, name="runnel-job-runner", daemon=True)
        self._generator = threading.Thread(target=self._generate_loop, name="runnel-job-generator", daemon=True)
        self._runner.start()
        self._generator.start()

    def stop_generating(self) -> None:
        self._stop_generating.set()
        self.clock.wake()
        if self._generator is not None and self._generator is not threading.current_thread():
            self._generator.join()

    def generate_now(self, t: int) -> None:
        """Generate batch t immediately (a graceful stop drains inputs this way)."""
        with self.cond:
            if self.generated is not None and t <= self.generated:
                return
        self._generate(t)

    def stop(self, wait_for_queue: bool, timeout: float | None = None) -> None:
        """Stop generating; run queued batches first if ``wait_for_queue``."""
        self.stop_generating()
        if not wait_for_queue:
            self._drain_queue()
        self.queue.put(None)
        if self._runner is not None and self._runner is not threading.current_thread():
            # a graceful stop waits for every queued batch; otherwise a job stuck in user code
            # must not hang stop() forever (the runner is a daemon thread)
            self._runner.join(timeout if wait_for_queue else (timeout or _STOP_WAIT))
            if self._runner.is_alive():
                log.warning("runnel: stopped while batch %s was still running", self.running)

    def _drain_queue(self) -> None:
        while True:
            try:
                js = self.queue.get_nowait()
            except queue.Empty:
                return
            if js is None:
                return

    # -- generation ------------------------------------------------------------
    def _generate_loop(self) -> None:
        interval = self.ssc.batch_ms
        while not self._stop_generating.is_set():
            t = self.next_ms
            if not self.clock.wait_until(t, self._stop_generating):
                return
            if self._stop_generating.is_set():
                return
            try:
                self._generate(t)
            except Exception as e:  # the engine failed to build batch t: say so, keep generating
                log.exception("runnel: could not generate the batch at %s ms", t)
                self._remember(e)
            self.next_ms = t + interval

    def _generate(self, t: int) -> None:
        graph = self.ssc._graph
        jobs = graph.generate_jobs(t)
        info = BatchInfo.submitted(t, self.clock.now(), graph, [out for out, _ in jobs])
        js = JobSet(t, jobs, info)
        with self.cond:
            self.generated = t
            self.infos[t] = info
            if len(self.infos) > _KEEP_INFOS:
                del self.infos[min(self.infos)]
        self.ssc._bus.post("onBatchSubmitted", BatchEvent(info))
        self.queue.put(js)

    # -- running -------------------------------------------------------------------
    def _run_loop(self) -> None:
        while True:
            js = self.queue.get()
            if js is None:
                return
            try:
                self._run_jobset(js)
            except BaseException:  # never let the runner die silently
                log.exception("runnel: internal error running batch %s", js.time)

    def _run_jobset(self, js: JobSet) -> None:
        bus = self.ssc._bus
        info = js.info
        with self.cond:
            self.running = js.time
        info.processing_start_time = self.clock.now()
        bus.post("onBatchStarted", BatchEvent(info))
        for out, job in js.jobs:
            op = info.output_operation_infos[out.output_id]
            op.start_time = self.clock.now()
            bus.post("onOutputOperationStarted", OutputOperationEvent(op))
            try:
                job()
            except Exception as e:  # a user error fails this output of this batch only
                op.failure_reason = "".join(traceback.format_exception(e))
                self._record_error(e, out, js.time)
            op.end_time = self.clock.now()
            bus.post("onOutputOperationCompleted", OutputOperationEvent(op))
        for e in self.ssc._graph.settle(js.time):  # state a failed output left uncomputed: computed, or fallen back
            log.error("runnel: batch %s: %s", js.time, e)
            self._remember(e)
        info.processing_end_time = self.clock.now()
        for s in self.ssc._graph.streams:  # stateful streams report their tables' keys and bytes
            report = getattr(s, "state_report", None)
            try:
                got = report(js.time) if report is not None else None
            except Exception:  # a report must never stop the batch from completing
                log.exception("runnel: state report of %s failed", s.name)
                got = None
            if got is not None:
                info.state_tables[s.name] = got
        ckpt = self.ssc._checkpointer
        if ckpt is not None:        # snapshot before forgetting: the tables of t must still be held
            ckpt.after_batch(js.time)
        self.ssc._graph.forget_before(js.time)
        bus.post("onBatchCompleted", BatchEvent(info))
        with self.cond:
            self.running = None
            self.completed = js.time
            self.cond.notify_all()

    def _record_error(self, e: Exception, out, t: int) -> None:
        from ..listener import ms_to_datetime
        log.error("runnel: output %s failed for batch %s: %s: %s", out.name, ms_to_datetime(t),
                  type(e).__name__, e)
        self._remember(e)

    def _remember(self, e: BaseException) -> None:
        """Keep the first error for await_termination to re-raise."""
        with self.cond:
            if self.error is None:
                self.error = e
            self.cond.notify_all()

    # -- waiting -------------------------------------------------------------------
    def wait_for_batch(self, t: int, timeout: float) -> None:
        """Block until batch t has completed; TimeoutError after ``timeout`` seconds."""
        with self.cond:
            ok = self.cond.wait_for(lambda: self.completed is not None and self.completed >= t, timeout)
        if not ok:
            raise TimeoutError(f"batch at {t} ms did not complete within {timeout} s "
                               f"(last completed: {self.completed}, running: {self.running}, "
                               f"queued: {self.queue.qsize()})")
