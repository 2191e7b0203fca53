"""The scheduler's two threads: the timer runs a batch itself when the other thread is idle, and lends it
the timer meanwhile, so generation never waits for processing (``runnel.scheduler.scheduler``)."""

from __future__ import annotations

import threading

import pytest

from runnel import Context, ManualClock, StreamingContext, StreamingListener
from runnel.clock import SystemClock

WAIT = 30          # seconds any wait in these tests may take at most


@pytest.fixture(scope="module")
def lctx():
    c = Context("local")
    yield c
    c.stop()


class Events(StreamingListener):
    """Which thread posted which event of which batch, in order."""

    def __init__(self):
        self.seen = []
        self.submitted = threading.Condition()

    def _note(self, kind, t):
        with self.submitted:
            self.seen.append((kind, t, threading.current_thread().name))
            self.submitted.notify_all()

    def onBatchSubmitted(self, e):
        self._note("submitted", e.batch_info.batch_time)

    def onBatchStarted(self, e):
        self._note("started", e.batch_info.batch_time)

    def onBatchCompleted(self, e):
        self._note("completed", e.batch_info.batch_time)

    def wait_submitted(self, t):
        with self.submitted:
            assert self.submitted.wait_for(lambda: ("submitted", t) in [s[:2] for s in self.seen], WAIT), \
                f"batch {t} ms was never submitted: {self.seen}"


class NoJumpClock(ManualClock):
    """A manual clock that tells no subscriber when it moves (as a system clock cannot): waiters on their
    own conditions must time their waits (``seconds_until``)."""

    def subscribe(self, fn):
        pass

    def seconds_until(self, target_ms):
        return 0.005


def _stream(lctx, clock, output):
    ssc = StreamingContext(lctx, 1, clock=clock)
    events = Events()
    ssc.add_streaming_listener(events)
    ssc.queue_stream([[1], [2], [3]], one_at_a_time=True).foreach_rdd(output)
    return ssc, events


def _threads_per_batch(events):
    threads = {}
    for kind, t, name in events.seen:
        threads.setdefault(t, set()).add(name)
    return threads


def test_a_batch_runs_on_the_thread_that_generated_it_when_the_other_is_idle(lctx):
    ran = []
    ssc, events = _stream(lctx, ManualClock(), lambda t, rdd: ran.append((t.second, threading.current_thread())))
    ssc.start()
    try:
        for t in (1000, 2000, 3000):         # the clock moved by someone else than run_batches: the timer thread
            ssc.clock.advance(1000)
            ssc._scheduler.wait_for_batch(t, WAIT)
    finally:
        ssc.stop(stop_spark_context=False)
    threads = _threads_per_batch(events)
    assert sorted(threads) == [1000, 2000, 3000]
    for t, names in threads.items():      # submitted, started, completed: one thread per batch, no hand-off
        assert len(names) == 1 and next(iter(names)).startswith("runnel-scheduler-"), (t, names)
    assert [s for s, _ in ran] == [1, 2, 3]
    assert all(th.name == next(iter(threads[1000 * s])) for s, th in ran)


@pytest.mark.parametrize("first", ["run_batches", "clock"])
def test_run_batches_generates_and_runs_the_batches_on_the_calling_thread(lctx, first):
    ran = []
    ssc, events = _stream(lctx, ManualClock(), lambda t, rdd: ran.append((rdd.collect(), threading.current_thread())))
    ssc.start()
    sched = ssc._scheduler
    try:
        if first == "clock":                 # a batch first run by the timer thread, then run_batches takes over
            ssc.clock.advance(1000)
            sched.wait_for_batch(1000, WAIT)
            ssc.run_batches(2)
        else:
            ssc.run_batches(1)
            assert sched.timer is None and sched.lent == 2000    # lent to the next run_batches, or the idle thread
            ssc.run_batches(1)
            ssc.clock.advance(1000)          # moved by someone else: the idle scheduler thread takes the timer
            sched.wait_for_batch(3000, WAIT)
    finally:
        ssc.stop(stop_spark_context=False)
    assert [r for r, _ in ran] == [[1], [2], [3]]
    threads = _threads_per_batch(events)
    main = threading.current_thread().name
    expect = {1000: "runnel-scheduler-", 2000: main, 3000: main} if first == "clock" else \
        {1000: main, 2000: main, 3000: "runnel-scheduler-"}
    for t, names in threads.items():      # submitted, started, completed of a batch: one thread
        assert len(names) == 1 and next(iter(names)).startswith(expect[t]), (t, names)
    assert sched.core.completed == 3000 and not sched._threads[0].is_alive() and not sched._threads[1].is_alive()


def test_stop_from_a_job_run_by_run_batches(lctx):
    ssc = None

    def output(rdd):
        if rdd.collect() == [2]:
            ssc.stop(stop_spark_context=False)

    ssc, events = _stream(lctx, ManualClock(), output)
    ssc.start()
    ssc.run_batches(2)                        # batch 2 stops the context from the calling thread
    ssc.await_termination(WAIT)
    assert ssc._scheduler.core.terminated and ssc._scheduler.core.completed == 2000
    for th in ssc._scheduler._threads:
        th.join(WAIT)
        assert not th.is_alive()
    assert ssc._scheduler.timer is None and ssc._scheduler._driver is None


def test_stop_from_another_thread_while_run_batches_runs_a_batch(lctx):
    inside, release = threading.Event(), threading.Event()

    def output(rdd):
        if rdd.collect() == [1]:
            inside.set()
            assert release.wait(WAIT)

    ssc, events = _stream(lctx, ManualClock(), output)
    ssc.start()
    runner = threading.Thread(target=ssc.run_batches, args=(1,), name="caller")
    runner.start()
    assert inside.wait(WAIT)
    stopper = threading.Thread(target=ssc.stop, kwargs={"stop_spark_context": False})
    stopper.start()                           # it waits for the running batch, not for the timer
    stopper.join(0.2)
    release.set()
    stopper.join(WAIT)
    runner.join(WAIT)
    assert not stopper.is_alive() and not runner.is_alive()
    assert ssc._scheduler.core.terminated and ssc._scheduler.core.completed == 1000
    assert [s[2] for s in events.seen if s[1] == 1000] == ["caller"] * 3


@pytest.mark.parametrize("clock", [ManualClock, NoJumpClock], ids=["clock-tells", "waits-timed"])
def test_the_next_batch_is_generated_while_a_kept_batch_runs(lctx, clock):
    gate, running = threading.Event(), threading.Event()
    order = []

    def output(t, rdd):
        order.append(rdd.collect())
        if len(order) == 1:
            running.set()
            assert gate.wait(WAIT), "the test never released batch 1"

    ssc, events = _stream(lctx, clock(), output)
    ssc.start()
    try:
        ssc.clock.advance(1000)
        assert running.wait(WAIT)
        ssc.clock.advance(1000)
        events.wait_submitted(2000)          # generated by the other thread while batch 1 still runs
        assert ("completed", 1000) not in [s[:2] for s in events.seen]
        gate.set()
        ssc._scheduler.wait_for_batch(2000, WAIT)
        ssc.run_batches(1)                   # and the thread that ran batch 1 goes on running batches
    finally:
        gate.set()
        ssc.stop(stop_spark_context=False)
    assert order == [[1], [2], [3]]
    by_batch = {t: name for kind, t, name in events.seen if kind == "submitted"}
    runs = {t: name for kind, t, name in events.seen if kind == "started"}
    assert by_batch[2000] != runs[1000]      # the timer was with the other thread while batch 1 ran
    assert runs[2000] == runs[1000]          # batch 2 waited for the thread running batch 1


def test_run_batches_returns_after_the_completed_event_was_posted(lctx):
    ssc, events = _stream(lctx, ManualClock(), lambda rdd: None)
    ssc.start()
    try:
        for t in (1000, 2000, 3000):
            ssc.run_batches(1)
            assert [s[:2] for s in events.seen if s[1] == t] == [("submitted", t), ("started", t), ("completed", t)]
    finally:
        ssc.stop(stop_spark_context=False)


def test_stop_from_a_job_of_a_kept_batch(lctx):
    stopped = threading.Event()
    ssc = None

    def output(rdd):
        ssc.stop(stop_spark_context=False)
        stopped.set()

    ssc, events = _stream(lctx, ManualClock(), output)
    ssc.start()
    ssc.clock.advance(1000)
    assert stopped.wait(WAIT)
    ssc.await_termination(WAIT)
    assert ssc._scheduler.core.terminated
    for th in ssc._scheduler._threads:
        th.join(WAIT)
        assert not th.is_alive()
    assert ssc._scheduler.timer is None and ssc._scheduler.lent is None


def test_stop_from_a_listener_on_the_timer_thread(lctx):
    ssc = StreamingContext(lctx, 1, clock=ManualClock())
    ssc.queue_stream([[1], [2]]).foreach_rdd(lambda rdd: None)

    class StopOnSubmit(StreamingListener):
        def onBatchSubmitted(self, e):
            ssc.stop(stop_spark_context=False)

    ssc.add_streaming_listener(StopOnSubmit())
    ssc.start()
    ssc.clock.advance(1000)
    ssc.await_termination(WAIT)
    for th in ssc._scheduler._threads:
        th.join(WAIT)
        assert not th.is_alive()
    assert ssc._scheduler.core.dropped == [1000]


def test_clock_subscribers_and_timed_waits():
    clock, calls = ManualClock(), []
    fn = lambda: calls.append(clock.now())  # noqa: E731
    clock.subscribe(fn)
    clock.advance(5)
    clock.set_time(12)
    clock.unsubscribe(fn)
    clock.unsubscribe(fn)                   # not subscribed any more: no error
    clock.advance(1)
    assert calls == [5, 12]
    assert clock.seconds_until(100) is None   # it jumps: its subscribers are told
    system = SystemClock()
    assert 0 < system.seconds_until(system.now() + 60_000) <= 60 and system.seconds_until(0) == 0


def test_a_graceful_stop_runs_the_drained_batches_one_at_a_time_in_order(lctx):
    ran, inside = [], []

    def output(rdd):
        inside.append(threading.current_thread().name)
        assert len(inside) == 1, f"two batches ran at once: {inside}"
        ran.append(rdd.collect())
        inside.pop()

    ssc = StreamingContext(lctx, 1, clock=ManualClock())
    ssc.queue_stream([[k] for k in range(8)], one_at_a_time=True).foreach_rdd(output)
    ssc.start()
    ssc.run_batches(2)                       # the timer thread kept these; both threads are idle at the stop
    ssc.stop(stop_spark_context=False, stop_gracefully=True)
    assert ran == [[k] for k in range(8)]
    assert ssc._scheduler.core.completed == 8000 and not ssc._scheduler.core.dropped


def test_ctrl_c_in_run_batches_lets_the_running_batch_finish(lctx):
    import os
    import signal
    ran = []

    def output(rdd):
        ran.append(rdd.collect())
        if len(ran) == 1:
            os.kill(os.getpid(), signal.SIGINT)     # Ctrl-C while the calling thread runs batch 1
            ran.append("after")                     # the batch was not cut short

    # Python's own handler, as in a terminal: a job started in the background (CI under `cmd &`)
    # inherits SIGINT ignored, and an ignored Ctrl-C interrupts nothing
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    ssc, events = _stream(lctx, ManualClock(), output)
    ssc.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            ssc.run_batches(3)
        assert ran == [[1], "after"]
        core = ssc._scheduler.core
        assert core.completed == 1000 and core.running is None and not core.queue
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ssc.run_batches(1)                          # the stream goes on from batch 2
        assert ran[-1] == [2]
    finally:
        ssc.stop(stop_spark_context=False)
        signal.signal(signal.SIGINT, previous)


def test_run_batches_inline_false_leaves_the_batches_to_the_scheduler_threads():
    ctx = Context("local", conf={"runnel.streaming.runBatchesInline": "false"})
    try:
        ran = []
        ssc, events = _stream(ctx, ManualClock(), lambda rdd: ran.append(threading.current_thread().name))
        ssc.start()
        try:
            ssc.run_batches(3)
        finally:
            ssc.stop(stop_spark_context=False)
        assert len(ran) == 3 and all(name.startswith("runnel-scheduler-") for name in ran), ran
        assert ssc._scheduler._driver is None
    finally:
        ctx.stop()
