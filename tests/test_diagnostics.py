"""A batch that does not complete in time explains itself (``runnel.diagnostics``): the TimeoutError of
``run_batches`` carries the scheduler's state, the executor's (for worker processes: pid, alive, the task
each runs and for how long) and every driver thread's stack; a busy worker prints its own stacks to stderr."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest

from runnel import Context, ManualClock, StreamingContext
from runnel.diagnostics import hang_report, thread_stacks
from runnel.executors import Task, make_executor

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


def _block_briefly(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_batch_stuck_in_an_output_reports_the_thread_running_it(ssc):
    # the batch outlasts run_batches' timeout, then ends: the report was taken while it was stuck
    ssc.queue_stream([[1, 2]]).foreach_rdd(lambda rdd: _block_briefly(1.5))
    ssc.start()
    with pytest.raises(TimeoutError) as err:
        ssc.run_batches(1, timeout=0.3)
    text = str(err.value)
    assert text.startswith("batch at 1000 ms did not complete within 0.3 s (last completed: None, running: 1000")
    assert "\n\nexecutor: " in text
    # the stuck thread (run_batches' own, or a scheduler thread) and its stack down to the output function
    stuck = [part for part in text.split("--- thread ") if "in _block_briefly" in part]
    assert len(stuck) == 1 and stuck[0].startswith(("MainThread", "runnel-scheduler-")), text
    ssc.run_batches(1)                    # the next batch runs as usual


def test_a_task_stuck_in_a_worker_process_names_the_worker_and_its_task(tmp_path, capfd):
    flag = str(tmp_path / "release")
    # started inside the test, so that its workers' stderr is the one capfd reads
    ex = make_executor("local[2]", stage_kind="processes", inline_bytes=0)
    try:
        pids = ex.processes.worker_pids()
        tasks = [Task(lambda i, groups: _block_until_released(flag) or [], i, [], f"stuck task {i}") for i in range(2)]
        runner = threading.Thread(target=ex.run, args=(tasks,), daemon=True)
        runner.start()
        try:
            deadline = time.monotonic() + WAIT         # until both workers are in their task (bounded)
            while not all(os.path.exists(f"{flag}.{pid}") for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.01)
            capfd.readouterr()
            text = hang_report(ex)
            # the driver's side: the pool runs both tasks, each worker alive, busy with a named task
            assert "processes: 2 workers, run in progress (2 tasks)" in text, text
            for pid in pids:
                assert f"pid {pid}: alive, running task " in text, text
            assert "(stuck task 0) for " in text and "(stuck task 1) for " in text
            assert text.count(", its stacks are on stderr") == 2, text
            assert "--- thread " in text and "in run\n" in text     # the driver thread waiting for them
            # the workers' side: each prints where it is (faulthandler on SIGUSR1). Both print at once
            # into one stderr, interleaved, so ask them again one at a time
            for pid in pids:
                capfd.readouterr()
                deadline, seen = time.monotonic() + WAIT, ""
                assert ex._pool._signal_dump(pid)
                while "in _block_until_released" not in seen and time.monotonic() < deadline:
                    time.sleep(0.05)
                    seen += capfd.readouterr().err
                assert "in _block_until_released" in seen, (pid, seen)
        finally:
            open(flag, "w").close()
            runner.join(WAIT)
        assert not runner.is_alive()
        assert ex.worker_pids() == pids                 # the signal did not kill them
        assert all(w.proc.poll() is None for w in ex._pool._workers)
    finally:
        ex.close()


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
    assert re.search(r"internal error of the scheduler: (MainThread|runnel-scheduler-\d), running batch 1000:\n", text)
    assert "in broken\n" in text and "RuntimeError: the core could not start the batch" in text
