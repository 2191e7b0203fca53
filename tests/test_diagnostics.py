"""A batch that does not complete in time explains itself (``runnel.diagnostics``): the TimeoutError of
``run_batches`` carries the scheduler's state, the executor's (for worker processes: pid, alive, the task
each runs and for how long) and every driver thread's stack; a busy worker prints its own stacks to stderr."""

from __future__ import annotations

import os
import threading
import time

import pytest

from runnel import Context, ManualClock, StreamingContext
from runnel.diagnostics import thread_stacks

WAIT = 20.0         # seconds a blocked task waits at most for the test to release it


def _block_until_released(flag: str) -> None:
    open(f"{flag}.{os.getpid()}", "w").close()          # tell the test this process is in here
    deadline = time.monotonic() + WAIT
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_thread_stacks_name_every_thread_and_where_it_is():
    release = threading.Event()

    def parked_in_a_named_function():
        release.wait(WAIT)

    t = threading.Thread(target=parked_in_a_named_function, name="parked-thread", daemon=True)
    t.start()
    try:
        text = thread_stacks()
    finally:
        release.set()
        t.join(WAIT)
    assert "--- thread parked-thread (daemon)" in text
    assert "in parked_in_a_named_function" in text
    assert "--- thread MainThread" in text and "in test_thread_stacks_name_every_thread_and_where_it_is" in text


def test_a_batch_stuck_in_an_output_reports_the_scheduler_thread_running_it(ssc, tmp_path):
    flag = str(tmp_path / "release")
    ssc.queue_stream([[1, 2]]).foreach_rdd(lambda rdd: _block_until_released(flag))
    ssc.start()
    try:
        with pytest.raises(TimeoutError) as err:
            ssc.run_batches(1, timeout=0.3)
    finally:
        open(flag, "w").close()
    text = str(err.value)
    assert text.startswith("batch at 1000 ms did not complete within 0.3 s (last completed: None, running: 1000")
    assert "\n\nexecutor: " in text
    # the stuck thread is a scheduler thread, and its stack shows the output function it is in
    stuck = [part for part in text.split("--- thread ") if "in _block_until_released" in part]
    assert len(stuck) == 1 and stuck[0].startswith("runnel-scheduler-"), text


def test_a_task_stuck_in_a_worker_process_names_the_worker_and_its_task(tmp_path, capfd):
    flag = str(tmp_path / "release")
    # started inside the test, so that its workers' stderr is the one capfd reads
    ctx = Context("local[2]", conf={"runnel.executor.stageKind": "processes", "runnel.executor.inlineBytes": 0})
    try:
        pids = ctx.executor.processes.worker_pids()   # the workers, started now
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.queue_stream([[1, 2]]).map(lambda x: _block_until_released(flag) or x).foreach_rdd(lambda rdd: rdd.count())
        ssc.start()
        try:
            with pytest.raises(TimeoutError):
                ssc.run_batches(1, timeout=0.2)
            deadline = time.monotonic() + WAIT         # until both workers are in their task (bounded)
            while not all(os.path.exists(f"{flag}.{pid}") for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.01)
            capfd.readouterr()
            with pytest.raises(TimeoutError) as err:   # the next batch waits behind the stuck one
                ssc.run_batches(1, timeout=0.2)
            text = str(err.value)
            assert text.startswith("batch at 2000 ms did not complete within 0.2 s (last completed: None, "
                                   "running: 1000, queued: [2000]"), text
            # the driver's side: the pool runs both tasks, each worker alive, busy with a named task
            assert "processes: 2 workers, run in progress (2 tasks)" in text, text
            for pid in pids:
                assert f"pid {pid}: alive, running task " in text, text
            assert text.count(", its stacks are on stderr") == 2, text
            assert "at 1970-01-01" in text                      # the task's label names its batch time
            # the workers' side: each prints where it is (faulthandler on SIGUSR1)
            deadline, seen = time.monotonic() + WAIT, ""
            while seen.count("in _block_until_released") < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
                seen += capfd.readouterr().err
            assert seen.count("in _block_until_released") == 2, seen
        finally:
            open(flag, "w").close()
            ssc.stop(stop_spark_context=False)
        assert ctx.executor.worker_pids() == pids              # the signal did not kill them
        assert all(ctx.executor._pool._workers[i].proc.poll() is None for i in range(2))
    finally:
        ctx.stop()


def test_an_internal_error_of_the_scheduler_is_in_the_report(monkeypatch):
    from runnel.scheduler import core

    def broken(self, event):
        raise RuntimeError("the core could not start the batch")

    monkeypatch.setitem(core._HANDLERS, core.BatchStarted, broken)      # a defect of the scheduler itself
    monkeypatch.setattr("runnel.scheduler.scheduler.STOP_WAIT", 0.5)
    ctx = Context("local")
    try:
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.queue_stream([[1]]).foreach_rdd(lambda rdd: None)
        ssc.start()
        try:
            with pytest.raises(TimeoutError) as err:
                ssc.run_batches(1, timeout=0.3)
        finally:
            ssc.stop(stop_spark_context=False)
    finally:
        ctx.stop()
    text = str(err.value)
    assert "(last completed: None, running: None, queued: [1000]" in text
    # which thread, which batch, and the traceback down to where it was raised
    assert "internal error of the scheduler: runnel-scheduler-" in text and ", running batch 1000:\n" in text
    assert "in broken\n" in text and "RuntimeError: the core could not start the batch" in text
