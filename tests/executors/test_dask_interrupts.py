"""The Dask executor when a stage is interrupted: it forgets the task events it was waiting for.

Each submitted task's key is registered as an expected event (its description
comes back as a Dask event); an interrupted stage (Ctrl-C, a scheduler that
stays unreachable) kept every key for the life of the executor, and any event
that still came for them was kept too.
"""

from __future__ import annotations

import threading
import time

import pytest

from runnel import Batch, Context
from runnel.executors import Task


@pytest.fixture(scope="module")
def dctx(dask_master):
    c = Context(dask_master, conf={"runnel.executor.inlineBytes": 0})
    yield c
    c.stop()


def slow(index, groups):
    time.sleep(0.5)
    return [Batch.from_values([index])]


class Interrupted(threading.Condition):
    """Ctrl-C arrives while the stage waits for its tasks' events (once)."""

    def __init__(self):
        super().__init__()
        self.armed = True

    def wait(self, timeout=None):
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return super().wait(timeout)


def test_an_interrupted_stage_forgets_the_events_it_expected(dctx, monkeypatch):
    ex = dctx.executor
    cond = Interrupted()
    monkeypatch.setattr(ex, "_inbox_cond", cond)
    with pytest.raises(KeyboardInterrupt):
        ex.run([Task(slow, i, [], f"slow, partition {i}") for i in range(2)])
    assert not cond.armed
    assert ex._expected == set() and ex._inbox == {}
    out = ex.run([Task(slow, i, [], f"again, partition {i}") for i in range(2)])   # the executor still works
    assert [ex.store.get(r).to_records() for [r] in out] == [[0], [1]]
    assert ex._expected == set() and ex._inbox == {}
    ex.store.release([r for refs in out for r in refs])
