"""The planner compiles a Dataset's lineage into a stage DAG without running anything or changing a Dataset."""

import operator

import pytest

from runnel.plan import Blocks, Out, Planner, run_stages


def _pairs(ctx, n=200):
    return ctx.parallelize([(k % 7, k) for k in range(n)], 2)


def test_compiling_runs_nothing_and_changes_no_dataset(ctx, monkeypatch):
    cached = _pairs(ctx).reduce_by_key(operator.add).cache()
    consumer = cached.map_values(lambda v: v + 1).union(_pairs(ctx).reduce_by_key(operator.add))
    plan, blocks = cached.plan, ctx.executor.store.live_blocks()
    monkeypatch.setattr(ctx.executor, "run", lambda *a, **k: pytest.fail("compile ran a stage"))
    graph = Planner(ctx.executor, "consumer").compile(consumer.plan)
    assert cached.plan is plan and not isinstance(cached.plan, Blocks)
    assert ctx.executor.store.live_blocks() == blocks
    # the cached dataset's shuffle, its own stage (adopted), the other shuffle, the result
    assert len(graph.stages) == 4 and graph.result == 3
    [own] = [st for st in graph.stages if st.adopt]
    assert own.reads and all(s < own.id for s in own.reads)
    assert {r.stage for t in graph.stages[3].tasks for g in t.inputs for r in g if isinstance(r, Out)} \
        == set(graph.stages[3].reads)
    text = graph.describe()
    assert text.count("\n") == 3 and "keeps 1 cached" in text and "shuffle map" in text


def test_running_the_graph_gives_the_plan_and_hands_the_cached_blocks_over(ctx):
    cached = _pairs(ctx).reduce_by_key(operator.add).cache()
    consumer = cached.map_values(lambda v: v + 1).union(cached)
    expected = {k: sum(v for v in range(200) if v % 7 == k) for k in range(7)}
    graph = Planner(ctx.executor, "consumer").compile(consumer.plan)
    refs = run_stages(ctx.executor, graph)
    got = [r for ref in refs for r in ctx.executor.store.get(ref).to_records()]
    ctx.executor.store.release(refs)
    assert sorted(got) == sorted([(k, v + 1) for k, v in expected.items()] + list(expected.items()))
    assert isinstance(cached.plan, Blocks)
    assert sorted(cached.collect()) == sorted(expected.items())


def test_a_graph_that_fails_releases_its_temporaries(ctx):
    from runnel.executors import TaskFailed

    def boom(kv):
        raise ValueError("bad record")
    ds = _pairs(ctx).reduce_by_key(operator.add).map(boom)
    live = ctx.executor.store.live_blocks()                  # the input's blocks
    with pytest.raises(TaskFailed, match="bad record"):
        run_stages(ctx.executor, Planner(ctx.executor, "failing").compile(ds.plan))
    assert ctx.executor.store.live_blocks() == live
