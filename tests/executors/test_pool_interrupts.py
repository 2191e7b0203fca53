"""local[N]'s worker processes when a run is interrupted: by Ctrl-C, or by ``close()``.

An interrupted run cannot know what a worker that was sent a task will still
reply, so every such worker is replaced. A worker whose reply was being read
when Ctrl-C arrived used to be left alone: its reply stayed in the pipe and
the next run took it for the answer to its own task. ``close()`` during a
run used to wait for every task of the run to end.
"""

from __future__ import annotations

import os
import threading
import time
from multiprocessing.connection import Connection

import pytest

from runnel.batch import Batch
from runnel.executors import Task
from runnel.executors.parallel import ParallelExecutor


@pytest.fixture(scope="module")
def pool():
    ex = ParallelExecutor(2, stage_kind="processes", inline_bytes=0)
    ex.processes                  # started now: the test counts its workers
    yield ex
    ex.close()


def answer(value):
    def fn(index, groups):
        return [Batch.from_values([value])]
    return fn


def test_ctrl_c_while_a_reply_is_read_replaces_that_worker(pool, monkeypatch):
    real = Connection.recv_bytes
    armed = [True]

    def interrupted(self, *args, **kwargs):   # Ctrl-C arrives as the driver starts reading a reply
        if armed[0]:
            armed[0] = False
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    before = pool.stats["workers_died"], pool.stats["workers_started"]
    monkeypatch.setattr(Connection, "recv_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pool.run([Task(answer("first"), 0, [], "first, partition 0")])
    monkeypatch.setattr(Connection, "recv_bytes", real)
    assert not armed[0]
    assert pool.stats["workers_started"] == before[1] + 1      # the worker whose reply was unread: replaced
    assert pool.store.live_blocks() == 0
    [[ref]] = pool.run([Task(answer("second"), 0, [], "second, partition 0")])
    assert pool.store.get(ref).to_records() == ["second"]      # not the interrupted run's reply
    pool.store.release([ref])


def mark_then_sleep(started, finished, seconds):
    def fn(index, groups):
        import time
        open(started, "w").close()
        time.sleep(seconds)
        open(finished, "w").close()
        return [Batch.from_values([index])]
    return fn


def test_close_during_a_run_ends_the_run_instead_of_waiting_for_its_tasks(tmp_path):
    """``ssc.stop()`` waits 30 s for a running batch, then stops the Context: closing the executor must
    not wait for a task that may never end (it waited for the whole run)."""
    ex = ParallelExecutor(2, stage_kind="processes", inline_bytes=0)
    ex.processes                  # started before the run (it takes a while on a loaded machine)
    started, finished = tmp_path / "started", tmp_path / "finished"
    outcome = {}

    def run():
        try:
            outcome["refs"] = ex.run([Task(mark_then_sleep(str(started), str(finished), 30), 0, [], "slow, partition 0")])
        except BaseException as e:  # noqa: BLE001  (what the run ended with is the point)
            outcome["error"] = e

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline and runner.is_alive(), "the task never started"
        time.sleep(0.01)
    pids, spawned = ex.worker_pids(), ex.stats["workers_started"]
    ex.close()
    assert not finished.exists()                               # close did not wait for the task
    runner.join(30)
    assert not runner.is_alive()
    assert isinstance(outcome.get("error"), RuntimeError) and "closed" in str(outcome["error"]), outcome
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)   # its workers are gone (and reaped),
    assert ex.stats["workers_started"] == spawned                     # none started in their place
    assert not [n for n in os.listdir(ex.store.directory) if n.startswith(ex.store.prefix)]
