"""local[N]'s worker processes when a run is interrupted (Ctrl-C): no later run reads a stale reply.

An interrupted run cannot know what a worker that was sent a task will still
reply, so every such worker is replaced. A worker whose reply was being read
when Ctrl-C arrived used to be left alone: its reply stayed in the pipe and
the next run took it for the answer to its own task.
"""

from __future__ import annotations

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
