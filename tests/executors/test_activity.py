"""Executor activity on every kind: task-seconds counted per task, the stage log kept only while watched.

Task functions live at module level so workers import them by reference.
"""

from __future__ import annotations

import time

import pytest

from runnel.batch import Batch
from runnel.executors import Task, TaskFailed
from runnel.executors.activity import Activity, StageRun
from runnel.plan import Blocks, Planner, Shuffled, ShuffleDep

NAP = 0.03


def nap(index, groups):
    """Sleep NAP seconds (a task that occupies its slot without using the CPU)."""
    time.sleep(NAP)
    return [Batch.from_values([index])]


def nap_then_fail(index, groups):
    time.sleep(NAP)
    if index == 1:
        raise ValueError("task 1 fails")
    return [Batch.from_values([index])]


def buckets(index, batch, n):
    """A shuffle map: value v goes to bucket v % n."""
    values = batch.to_records()
    return [Batch.from_values([v for v in values if v % n == j]) for j in range(n)]


def gather(index, groups):
    """A shuffle reduce: the bucket's values, sorted."""
    return Batch.from_values(sorted(v for g in groups for b in g for v in b.to_records()))


def test_busy_counts_every_tasks_time(executor):
    act = executor.activity
    assert isinstance(act, Activity) and act.slots == executor.parallelism
    before = act.busy
    start = time.perf_counter()
    out = executor.run([Task(nap, i, [], f"nap {i}") for i in range(4)])
    wall = time.perf_counter() - start
    busy = act.busy - before
    executor.store.release([r for refs in out for r in refs])
    assert busy >= 4 * NAP * 0.95                   # every task's nap, whichever slot ran it
    assert busy <= wall * act.slots + 0.01          # no more than the slots' time in that span


def test_busy_counts_failing_runs_too(executor):
    act = executor.activity
    before = act.busy
    with pytest.raises(TaskFailed, match="task 1 fails"):
        executor.run([Task(nap_then_fail, i, [], f"task {i}") for i in range(2)])
    assert act.busy - before >= 2 * NAP * 0.95


def test_stage_log_only_while_watched(executor):
    act = executor.activity
    ref = executor.store.put(Batch.from_values([1, 2, 3, 4, 5]))
    shuffled = Shuffled([ShuffleDep(Blocks([ref]), buckets)], 2, gather)     # a map stage and a reduce stage
    graph = Planner(executor, "sum").compile(shuffled)
    assert act.stages is None
    refs = Planner(executor, "sum").materialize(shuffled)      # nobody watches: nothing recorded
    executor.store.release(refs)
    assert act.stages is None
    act.watch()
    try:
        mark = act.recorded
        refs = Planner(executor, "sum").materialize(shuffled)
        assert sorted(v for r in refs for v in executor.store.get(r).to_records()) == [1, 2, 3, 4, 5]
        runs = act.since(mark)
        assert len(runs) == 2
        assert [(r.stage, r.label, r.tasks) for r in runs] == [(s.id, s.label, len(s.tasks)) for s in graph.stages]
        assert [r.reads for r in runs] == [(), (graph.stages[0].id,)]     # the reduce reads the map's buckets
        assert all(isinstance(r, StageRun) and r.seconds >= 0 and not r.failed for r in runs)
        assert {r.kind for r in runs} == {executor.kind}        # where it ran (no stage runs inline here)
        executor.store.release(refs)
    finally:
        act.unwatch()
        executor.store.release([ref])
    assert act.stages is None


def test_watchers_share_one_log():
    act = Activity(2)
    act.watch()
    act.watch()
    act.unwatch()
    assert act.stages is not None              # one watcher left
    act.record(StageRun(0, "s", "threads", 2, 0.0, 0.1, 0.2, 1))
    assert [r.label for r in act.since(0)] == ["s"] and act.since(1) == []
    act.unwatch()
    assert act.stages is None and act.since(0) == []
