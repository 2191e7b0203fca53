"""local[N]'s thread team: tasks really run at once, and an interrupt still frees the run's blocks."""

import threading

import pytest

from runnel.batch import Batch
from runnel.executors import Task, TaskFailed
from runnel.executors.threads import ThreadTeam
from runnel.storage.store import MemoryStore


@pytest.fixture
def team():
    t, store = ThreadTeam(1), MemoryStore()
    yield t, store
    t.close()
    store.close()


def test_two_tasks_run_at_the_same_time_on_two_threads(team):
    t, store = team
    barrier = threading.Barrier(2, timeout=30)   # breaks (and the task raises) unless both wait at once
    names = []

    def meet(index, groups):
        barrier.wait()
        names.append(threading.current_thread().name)
        return [Batch.from_values([index])]

    out = t.run(store, [Task(meet, i, [], f"meet, partition {i}") for i in range(2)])
    assert [store.get(r).to_records() for [r] in out] == [[0], [1]]
    assert len(set(names)) == 2


def test_the_first_failing_task_in_task_order_is_reported_after_the_others_finish(team):
    t, store = team
    release = threading.Event()

    def slow_fail_first(index, groups):
        if index == 0:
            release.wait(30)                      # fails last in time, first in task order
            raise ValueError("first")
        if index == 1:
            release.set()
            raise ValueError("second")
        return [Batch.from_values([index])]

    with pytest.raises(TaskFailed, match="partition 0: ValueError: first"):
        t.run(store, [Task(slow_fail_first, i, [], f"fail, partition {i}") for i in range(4)])
    assert store.live_blocks() == 0


def test_an_interrupt_in_a_task_stops_the_run_and_frees_its_blocks(team):
    t, store = team

    def interrupt_second(index, groups):
        if index == 1:
            raise KeyboardInterrupt
        return [Batch.from_values([index])]

    with pytest.raises(KeyboardInterrupt):
        t.run(store, [Task(interrupt_second, i, [], f"partition {i}") for i in range(4)])
    assert store.live_blocks() == 0
    [[ref]] = t.run(store, [Task(lambda i, g: [Batch.from_values([7])], 0, [], "after")])
    assert store.get(ref).to_records() == [7]


def test_a_closed_team_refuses_work():
    t, store = ThreadTeam(1), MemoryStore()
    t.close()
    t.close()
    with pytest.raises(RuntimeError, match="closed"):
        t.run(store, [Task(lambda i, g: [], i, [], "late") for i in range(2)])
    store.close()
