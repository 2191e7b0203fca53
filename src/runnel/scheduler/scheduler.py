"""The threads that carry out the scheduler core's instructions.

:class:`~runnel.scheduler.core.SchedulerCore` decides; :class:`JobScheduler`
observes and acts. It owns no scheduling state of its own (read it from
``self.core``) — only the things the core deliberately does not hold:

    jobs        batch time -> [(output stream, job)] built   Generate puts, _run pops
    runq        what the idle thread takes, in order: batch   Enqueue puts a time (or keeps it, below),
                times, None (exit)                            Terminate puts None per thread
    due         batch time the timer waits for                WaitUntil
    timer       the thread holding the timer, or None         under ``lock``: lent, taken, given up
    lent        while the timer is lent: the time it was      under ``lock``: the timer keeps a batch
                lent until (the next ``due``), else None      (set), takes it back / the other takes it
    busy        a thread runs (or kept) a batch: the other    under ``_work``: kept or taken off runq,
                takes no batch time meanwhile                 cleared when the batch ran
    driver      the thread in ``drive`` (a caller of          ``drive``
                ``run_batches``), or None
    wanted      a caller asks the timer thread for the        under ``lock``: ``drive`` sets, the timer
                timer (``wake_timer`` is set meanwhile)       clears when it hands the timer over

Two scheduler threads and the caller of ``start()``/``stop()`` feed events.
The threads are alike; at any time one of them holds the *timer*:

    the timer          waits on the clock for ``due``, feeds BatchDue and builds
                       the batch's jobs (Generate) -> JobsBuilt / GenerateFailed
    the other          takes batch times off ``runq`` and runs their jobs
                       (BatchStarted, JobStarted, JobDone, BatchRan)
    checkpoint writer  (``runnel.checkpoint.checkpointer``) SnapshotWritten / SnapshotFailed

When the timer builds a batch while the other thread is idle (nothing
queued, nothing running), it keeps the batch and runs it itself, and hands
the timer to the other thread (it is *lent*: the idle thread's wait for
``runq`` returns TIMER once the clock reaches ``lent``): the batch does not wait
for a thread to wake up, and the clock is still watched while it runs, so
generation never waits for processing. Otherwise the batch is queued for the
other thread, as before. A 10-record batch (W5) thus costs one thread
hand-off less.

A caller of ``run_batches`` (a ManualClock: time moves only when it says so)
does the timer's work itself (:meth:`JobScheduler.drive`): it takes the
timer (at once when it is lent, else by asking the timer thread for it),
advances the clock, generates the batches that became due and runs those it
keeps on its own thread, and lends the timer when it returns, so a later
``run_batches`` takes it back with no thread woken at all. Waking a
scheduler thread for each batch and being woken when it is done cost two
thread hand-offs a batch (~0.1-0.3 ms each on a busy 2-core machine, more
than a 10-record batch's work). A batch the caller runs itself is not
bounded by ``timeout``; a Ctrl-C (SIGINT on the main thread) lets the running
batch finish and then raises, a second one raises at once. The conf key
``runnel.streaming.runBatchesInline`` false leaves the batches to the
threads (``run_batches`` only advances the clock and waits): on a machine
whose cores are all busy (load 10-20 on 2 cores), threads that sleep and
wake every batch were measured getting most of a core while one thread
running 200 batches back to back got its fair share (W5 ~10x slower in
wall time, the same CPU time per batch).

Each ``feed`` applies one event under ``lock`` and then carries out the
instructions *on the calling thread, outside the lock*, in order; an
instruction that feeds a further event (Generate, RunJob, FinishBatch,
Drain) has that event's instructions carried out next (a work list, not
recursion). Listener events are therefore posted by the thread whose event
caused them; per batch they are ordered by the data flow (a batch runs only
after its ``submitted`` event was posted).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from collections import deque
from contextlib import contextmanager
from typing import Callable

from ..diagnostics import hang_report
from ..listener import (BatchEvent, BatchInfo, ListenerBus, OutputOperationEvent, StreamingStarted, input_infos,
                        ms_to_datetime)
from . import core as c
from .infos import ListenerInfos

log = logging.getLogger("runnel.scheduler")
WATCH_POLL = 0.1   # seconds between looks of the watchdog at a batch run_batches runs itself
STOP_WAIT = 30.0   # seconds a non-graceful stop waits for the running batch
DRAIN_ROUNDS = 10_000


class JobScheduler:
    """Carries out a :class:`SchedulerCore`'s instructions with two scheduler threads (``runnel-scheduler-1/2``).

    Parameters
    ----------
    graph : DStreamGraph
        Builds the jobs (``generate_jobs``), lets streams forget (``forget_before``).
    clock : Clock
    bus : ListenerBus
    backlog : int
        Warn when this many batches queue (or wait this many intervals).
    executor : Executor, optional
        Runs the jobs' stages; its state is part of a timed-out wait's report.
    """

    def __init__(self, graph, clock, bus: ListenerBus, backlog: int = 10, executor=None):
        self.graph = graph
        self.executor = executor
        self.clock = clock
        self.bus = bus
        self.core = c.SchedulerCore(graph.batch_ms, backlog)
        self.infos = ListenerInfos(graph)
        self.lock = threading.Condition(threading.RLock())
        self.checkpointer = None          # set by start() when checkpointing
        self.on_restore: Callable[[int], None] | None = None
        self.on_start_inputs: Callable[[], None] | None = None
        self.jobs: dict[int, list] = {}
        self.runq: deque = deque()        # under _work
        self._work = threading.Condition(threading.Lock())
        self.due: int | None = None
        self.timer: threading.Thread | None = None
        self.lent: int | None = None
        self._lender: threading.Thread | None = None   # the thread that lent the timer
        self._stop_timer = threading.Event()
        self._wake_timer = threading.Event()   # set with _stop_timer, or while a caller wants the timer
        self._wanted: threading.Thread | None = None
        self._driver: threading.Thread | None = None
        self._threads: tuple[threading.Thread, ...] = ()
        self._idle = 0                    # scheduler threads waiting on runq (under _work)
        self._kept: int | None = None     # a batch the timer keeps to run itself (timer thread only)
        self._busy = False                # a thread runs (or is about to run) a batch (under _work)
        self.internal_errors: deque[str] = deque(maxlen=8)   # the last errors of the scheduler itself
        self._watch: tuple | None = None  # (batch time, deadline, timeout, report) the caller of drive runs
        self._watcher: threading.Thread | None = None

    # -- feeding events -------------------------------------------------------------------------
    def feed(self, event) -> None:
        """Apply ``event`` and carry out the instructions (and those of the events they feed).

        When one raises, the rest are skipped but for the driver's own bookkeeping (queueing a batch,
        setting the timer, posting the listener events, waking the waiters, ending the threads): the core
        has already moved on, and without them a waiter or a stop would wait for ever. The error is raised
        after them."""
        work = deque(self._handle(event))
        while work:
            try:
                more = self._do(work.popleft())
            except BaseException:
                for ins in work:
                    if ins is _WAKE or type(ins) in _BOOKKEEPING or (
                            type(ins) is c.Post and ins.kind != "streaming_started"):   # a failed start did not start
                        self._do(ins)
                raise
            if more:
                work.extendleft(reversed(more))

    def _handle(self, event) -> list:
        with self.lock:
            out = self.core.handle(event)
            kind = type(event)
            if kind in _WAKES or getattr(event, "error", None) is not None or (
                    kind is c.JobsBuilt and self.core.phase in (c.STOPPING, c.STOPPED)):
                out.append(_WAKE)            # what waiters wait for: a batch done, lost or dropped, an error, a stop
        return out

    def _do(self, ins) -> list | None:
        kind = type(ins)
        if kind is c.Post:
            self._post(ins)
        elif ins is _WAKE:
            self._wake_waiters()
        elif kind is c.RunJob:
            return self._run_job(ins.time, ins.output)
        elif kind is c.Enqueue:
            self._enqueue(ins.time)
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
            for _ in range(max(1, len(self._threads))):
                self._put(None)
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
        self._threads = tuple(threading.Thread(target=self._serve, args=(i == 0,), name=f"runnel-scheduler-{i + 1}",
                                               daemon=True) for i in range(2))
        self.timer = self._threads[0]
        self.clock.subscribe(self._clock_moved)
        for t in self._threads:
            t.start()

    def on_own_thread(self) -> bool:
        """Called from a thread running the scheduler's work (a job, a transform function, a listener)?"""
        me = threading.current_thread()
        return me in self._threads or me is self._driver

    def recovered(self, time: int, zero: int) -> None:
        self.feed(c.Recovered(time, zero))

    def stop(self, graceful: bool, timeout: float | None = None) -> None:
        """Stop: a graceful stop runs every received record's batch first; otherwise queued batches
        are dropped and the running one is waited for (at most ``timeout``, default 30 s)."""
        self.feed(c.StopRequested(graceful))
        if not self._threads or self.on_own_thread():
            return        # stopped from a job or listener: the threads end after this batch
        wait = timeout if graceful else (timeout or STOP_WAIT)
        with self.lock:
            done = self.lock.wait_for(lambda: self.core.terminated, wait)
        if not done:
            log.warning("runnel: stopped while batch %s was still running", self.core.running)
            if self.checkpointer is not None:
                self.checkpointer.stop()
        for t in self._threads:
            t.join(5 if done else 0)

    def _stop_generating(self) -> None:
        """Stop the timer; return once no thread generates a batch on its behalf (the calling one may)."""
        me = threading.current_thread()
        with self.lock:
            self._stop_timer.set()
            self._wake_timer.set()
            self.lent = None                  # neither thread takes a lent timer now
            if self.timer is me:
                self.timer = None
        self.clock.unsubscribe(self._clock_moved)
        self.clock.wake()
        with self.lock:
            self.lock.wait_for(lambda: self.timer is None)

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

    def _wake_waiters(self) -> None:
        """The event's instructions are carried out (its listener events posted): wake the waiters. A thread
        that lent the timer to run a batch takes it back first, so that a waiter who moves the clock next
        finds it with the timer, not the idle thread (which would have to wake up)."""
        me = threading.current_thread()
        with self.lock:
            if self.lent is not None and self._lender is me:
                self.lent, self.timer = None, me
            self.lock.notify_all()

    # -- the scheduler threads -------------------------------------------------------------------------
    def _serve(self, timer: bool) -> None:
        """A scheduler thread: the timer's loop while it holds the timer, else runs what ``runq`` gives."""
        me = threading.current_thread()
        while True:
            if timer:
                kept = self._tick()
                if kept is None:
                    continue
                if kept is _GIVEN_UP:
                    timer = False
                    continue
                self._run(kept)
                timer = self._take_back()
                continue
            item = self._take()
            if item is None:
                return
            if item is _TIMER:
                with self.lock:               # the lent timer, unless it was taken back or stopped
                    timer = self.lent is not None
                    if timer:
                        self.lent, self.timer = None, me
                continue
            self._run(item)

    def _tick(self):
        """The timer: wait for ``due`` and generate it. Returns a batch time this thread kept to run
        (the timer is lent meanwhile), _GIVEN_UP (the timer stopped), or None (keep timing)."""
        t = self.due
        if t is None or self._stop_timer.is_set():
            return self._give_up()
        if not self.clock.wait_until(t, self._wake_timer):
            return self._give_up() if self._stop_timer.is_set() else self._hand_over()
        if self.due != t:
            return None
        try:
            self.feed(c.BatchDue(t))
        except BaseException:  # never let a scheduler thread die silently
            self._internal_error(f"generating the batch at {t}")
        kept, self._kept = self._kept, None
        if kept is not None:
            self._lend_while_running()
            return kept
        if self.due == t:                     # nothing generated (stopping): no next batch to wait for
            return self._give_up()
        return None

    def _lend_while_running(self) -> None:
        """This thread keeps a batch to run: lend the timer meanwhile, until the next due time."""
        me = threading.current_thread()
        with self.lock:
            lent = self.timer is me
            if lent:
                self.timer, self.lent, self._lender = None, self.due, me
                if self._stop_timer.is_set():
                    self.lock.notify_all()    # a stop waits for the timer to be free
        if lent and self.clock.seconds_until(self.due) is not None:
            with self._work:                  # a clock that does not jump: the idle thread times its wait
                self._work.notify()

    def _take_back(self) -> bool:
        """After running a kept batch: take the lent timer back unless another thread took it. Held?"""
        me = threading.current_thread()
        with self.lock:
            if self.lent is not None and self._lender is me:
                self.lent, self.timer = None, me
            return self.timer is me

    def _give_up(self):
        with self.lock:
            if self.timer is threading.current_thread():
                self.timer = None
                self.lock.notify_all()
        return _GIVEN_UP

    def _hand_over(self):
        """The timer thread, woken by a caller of ``drive`` that wants the timer: hand it over."""
        with self.lock:
            if self._stop_timer.is_set():
                return self._give_up()
            self._wake_timer.clear()
            if self._wanted is None or self.timer is not threading.current_thread():
                return None if self.timer is threading.current_thread() else _GIVEN_UP
            self.timer, self._wanted = self._wanted, None
            self.lock.notify_all()
        return _GIVEN_UP

    # -- a caller driving a ManualClock ------------------------------------------------------------------
    def drive(self, n: int, advance: Callable[[], int], timeout: float, inline: bool = True) -> list[int]:
        """``run_batches``: n times, ``advance()`` the clock (it returns the batch time now due) and
        see that batch done, generating and running due batches on this thread while it holds the
        timer (see the module docstring; not with ``inline`` false). Returns the n batch times."""
        me = threading.current_thread()
        with self.lock:
            drives = inline and not self.on_own_thread() and self._driver is None and self._threads != ()
            if drives:
                self._driver = me
        if not drives:                  # from a job, or a second caller at once: wait as before
            return [self._wait_after(advance(), timeout) for _ in range(n)]
        times = []
        try:
            with _sigint_deferred() as interrupted:
                for _ in range(n):
                    held = self._take_timer(timeout)
                    t = advance()
                    if held:
                        with self._watchdog(t, timeout) as late:   # this thread runs them: nobody else times it
                            self._generate_due()
                        self._lend_timer()
                        if late:
                            raise TimeoutError(late[0])
                    times.append(self._wait_after(t, timeout))
                    if interrupted:
                        raise KeyboardInterrupt
        finally:
            self._lend_timer()
            self._driver = None
        return times

    def _wait_after(self, t: int, timeout: float) -> int:
        self.wait_for_batch(t, timeout)
        return t

    def _take_timer(self, timeout: float) -> bool:
        """Hold the timer: take it when lent, else ask the thread holding it. False: not had (stopping)."""
        me = threading.current_thread()
        with self.lock:
            if self._stop_timer.is_set():
                return False
            if self.timer is me:
                return True
            if self.lent is None:
                if self.timer is None:
                    return False
                self._wanted = me
                self._wake_timer.set()
        if self._wanted is me:
            self.clock.wake()
        with self.lock:
            self.lock.wait_for(lambda: self.timer is me or self.lent is not None or self._stop_timer.is_set(),
                               timeout)
            if self._wanted is me:
                self._wanted = None
            if self.timer is not me and self.lent is not None and not self._stop_timer.is_set():
                self.lent, self.timer = None, me
            return self.timer is me

    def _generate_due(self) -> None:
        """The timer's work on the caller's thread: generate every batch due by now, run those kept."""
        while not self._stop_timer.is_set():
            t = self.due
            if t is None or self.clock.now() < t:
                return
            self.feed(c.BatchDue(t))
            kept, self._kept = self._kept, None
            if kept is not None:
                self._lend_while_running()
                self._run(kept)
                if not self._take_back():     # the idle thread took it (someone moved the clock), or a stop
                    return
            elif self.due == t:               # nothing generated (stopping)
                return

    def _lend_timer(self) -> None:
        """Give up the timer the caller holds: lent until the next due time, for a later ``drive``
        or, when someone else moves the clock there, for the idle scheduler thread."""
        me = threading.current_thread()
        with self.lock:
            if self.timer is not me:
                return
            self.timer = None
            if self._stop_timer.is_set():
                self.lock.notify_all()        # a stop waits for the timer to be free
            elif self.due is not None:
                self.lent, self._lender = self.due, None
            lent = self.lent
        if lent is not None and (self.clock.now() >= lent or self.clock.seconds_until(lent) is not None):
            with self._work:                  # the clock moved on, or does not tell when it does: the idle
                self._work.notify()           # thread looks (and times its wait)

    def _internal_error(self, what: str) -> None:
        """Log the error being handled, and keep it for the report of a wait that times out: the
        instructions after it were not carried out, so a batch may never complete."""
        log.exception("runnel: internal error %s", what)
        self.internal_errors.append(f"{threading.current_thread().name}, {what}:\n{traceback.format_exc()}")

    def _enqueue(self, t: int) -> None:
        """Queue batch t for the idle thread, or keep it (see the module docstring)."""
        if self.timer is threading.current_thread() and not self._stop_timer.is_set() and self._kept is None:
            with self._work:
                if self._idle and not self.runq and not self._busy:   # the other thread waits with nothing to do
                    self._kept, self._busy = t, True
                    return
        self._put(t)

    def _put(self, item) -> None:
        with self._work:
            self.runq.append(item)
            self._work.notify_all()

    def _take(self):
        """The next item of ``runq``; _TIMER when the lent timer's time came (the clock reached ``lent``)."""
        clock, runq = self.clock, self.runq
        with self._work:
            self._idle += 1
            try:
                # a batch time waits while the other thread runs a batch: batches run one at a time, in order
                while not runq or (self._busy and runq[0] is not None and runq[0] is not _TIMER):
                    lent = self.lent
                    if lent is not None and clock.now() >= lent:
                        return _TIMER
                    self._work.wait(clock.seconds_until(lent) if lent is not None else None)
                item = runq.popleft()
                if item is not None and item is not _TIMER:
                    self._busy = True
                return item
            finally:
                self._idle -= 1

    def _clock_moved(self) -> None:
        """A ManualClock jumped: if the timer is lent, the idle thread looks whether its time came."""
        if self.lent is not None:
            with self._work:
                self._work.notify()

    def _generate(self, t: int) -> list:
        graph = self.graph
        try:
            jobs = graph.generate_jobs(t)
            inputs = graph.inputs
            event = c.JobsBuilt(t, self.clock.now(), tuple(out.output_id for out, _ in jobs), graph.num_records(t),
                                tuple((i.name, i.records.get(t, 0)) for i in inputs),
                                tuple(input_infos(inputs, t).items()))
        except BaseException as e:  # the engine failed to build batch t (SystemExit in a transform too): say so, go on
            log.error("runnel: could not generate the batch at %s: %s", ms_to_datetime(t), _first_line(e))
            return self._handle(c.GenerateFailed(t, e))
        self.jobs[t] = {out.output_id: job for out, job in jobs}
        return self._handle(event)

    # -- running ------------------------------------------------------------------------------------------
    def _run(self, t: int) -> None:
        """Run batch t (this thread set ``_busy`` when it took or kept it)."""
        try:
            self.feed(c.BatchStarted(t, self.clock.now()))
        except BaseException as e:  # never let a scheduler thread die silently
            self._internal_error(f"running batch {t}")
            self._abort(t, e)
        finally:
            self.jobs.pop(t, None)
            with self._work:
                self._busy = False
                if self.runq:
                    self._work.notify_all()

    def _abort(self, t: int, error: BaseException) -> None:
        """Something escaped batch t's run: if it is still running, it completes as failed (BatchAborted),
        else no later batch could ever start and a stop would wait for it for ever."""
        with self.lock:
            running = self.core.running == t
        if running:
            try:
                self.feed(c.BatchAborted(t, self.clock.now(), error))
            except BaseException:
                self._internal_error(f"aborting batch {t}")

    def _run_job(self, t: int, output: int) -> list:
        job = self.jobs[t][output]
        self.feed(c.JobStarted(t, output, self.clock.now()))
        error = None
        try:
            job()
        except BaseException as e:  # a user error (SystemExit too) fails this output of this batch only
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
        method = _EVENTS[kind]
        if self.bus.wants(method):
            with self.lock:
                rec = self.core.batches[ins.time]
                if ins.output is not None:
                    event = OutputOperationEvent(self.infos.output(rec, ins.output))
                else:
                    event = BatchEvent(self.infos.batch(rec))
            self.bus.post(method, event)
        if kind == "completed":
            with self.lock:
                self.infos.forget(ins.time)

    def batch_info(self, t: int) -> BatchInfo:
        """The listener BatchInfo of batch t as the core records it now (frozen)."""
        with self.lock:
            return self.infos.batch(self.core.batches[t])

    def _warn_backlog(self, ins: c.WarnBacklog) -> None:
        q = ins.queued
        log.warning("runnel: batches are queueing: %d wait (%s to %s), scheduling delay %.1f s; processing is "
                    "slower than the input (enable spark.streaming.backpressure.enabled, give batches more "
                    "time or the job more cores)", len(q), ms_to_datetime(q[0]) if q else "-",
                    ms_to_datetime(q[-1]) if q else "-", ins.delay / 1000)

    # -- waiting -------------------------------------------------------------------------------------------
    def wait_for_batch(self, t: int, timeout: float) -> None:
        """Block until batch t has completed (or was lost); TimeoutError after ``timeout`` seconds.

        The error carries the executor's state and every thread's stack (:meth:`timeout_report`): a
        hang seen once under load explains itself.
        """
        with self.lock:
            if self.lock.wait_for(lambda: self.core.is_done(t), timeout):
                return
        raise TimeoutError(self.timeout_report(t, timeout))

    def timeout_report(self, t: int, timeout: float) -> str:
        """Why batch t did not complete within ``timeout`` s: the scheduler's state, its internal errors,
        the executor's state and every thread's stack (:func:`~runnel.diagnostics.hang_report`). Takes
        no lock for more than a second (the stuck thread may hold one)."""
        where = "scheduler state unknown: its lock stayed held"
        if self.lock.acquire(timeout=1.0):
            try:
                core = self.core
                where = (f"last completed: {core.completed}, running: {core.running}, queued: {list(core.queue)}, "
                         f"phase: {core.phase}, timer held by: {getattr(self.timer, 'name', None)}, "
                         f"lent until: {self.lent}, clock at: {self.clock.now()}")
            finally:
                self.lock.release()
        if self._work.acquire(timeout=1.0):
            try:
                where += f", runq: {[_NAMES.get(id(i), i) for i in self.runq]}, busy: {self._busy}, idle: {self._idle}"
            finally:
                self._work.release()
        errors = list(self.internal_errors)
        return (f"batch at {t} ms did not complete within {timeout} s ({where})\n\n"
                + "".join(f"internal error of the scheduler: {e}\n" for e in errors)
                + hang_report(self.executor))

    @contextmanager
    def _watchdog(self, t: int, timeout: float):
        """While the caller runs batches itself (``drive``): if batch t is not done within ``timeout`` s,
        log :meth:`timeout_report` then (the stuck thread's stack in it) and yield it in the list, so
        that the caller raises it once the batches it runs end.

        Arming is an attribute write: one watcher thread per scheduler, started on first use, looks
        every ``WATCH_POLL`` s (a Timer per batch cost ~120 us of CPU, a tenth of a 10-record batch)."""
        report: list[str] = []
        self._watch = (t, time.monotonic() + timeout, timeout, report)
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch_batches, name="runnel-watchdog", daemon=True)
            self._watcher.start()
        try:
            yield report
        finally:
            self._watch = None

    def _watch_batches(self) -> None:
        while not self.core.terminated:
            time.sleep(WATCH_POLL)
            watch = self._watch
            if watch is None or time.monotonic() < watch[1]:
                continue
            t, _, timeout, report = watch
            if self.lock.acquire(timeout=1.0):
                try:
                    done = self.core.is_done(t)
                finally:
                    self.lock.release()
                if done:
                    continue
            if self._watch is watch and not report:
                report.append(self.timeout_report(t, timeout))
                log.error("runnel: %s", report[0])

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


_EVENTS = {"submitted": "onBatchSubmitted", "started": "onBatchStarted", "completed": "onBatchCompleted",
           "output_started": "onOutputOperationStarted", "output_completed": "onOutputOperationCompleted"}
_WAKE = object()           # an instruction of the driver's own: wake the waiters (see _wake_waiters)
_TIMER = object()          # on runq: take the timer
_GIVEN_UP = object()       # _tick: this thread no longer holds the timer
_NAMES = {id(_TIMER): "TIMER", id(None): "None (exit)"}
_WAKES = (c.BatchRan, c.BatchAborted, c.GenerateFailed, c.StopRequested, c.DrainDone)
_BOOKKEEPING = (c.Enqueue, c.WaitUntil, c.Terminate)   # carried out after an instruction raised (feed), as batch events


@contextmanager
def _sigint_deferred():
    """On the main thread with Python's own SIGINT handler: a Ctrl-C marks the yielded list instead of
    raising inside a batch (half-run batches would leave the scheduler waiting for them); the handler is
    restored at once, so a second Ctrl-C raises where it lands. Elsewhere: nothing is deferred."""
    interrupted: list = []
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield interrupted
        return

    def defer(signum, frame):
        interrupted.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, defer)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _first_line(e: BaseException) -> str:
    """``Type: message`` of an error without the traceback a TaskFailed carries (raised to the user once)."""
    text = str(e).split("\n\n", 1)[0]
    return f"{type(e).__name__}: {text}"
