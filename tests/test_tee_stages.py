"""A cached Dataset first needed by a co-partitioned consumer is computed inside the consumer's tasks."""

from __future__ import annotations

import operator

import pytest

from runnel.executors.base import TaskFailed
from runnel.plan import Blocks


class Stages:
    """Counts the executor's runs (stages) and their task labels."""

    def __init__(self, ctx, monkeypatch):
        self.labels: list[list[str]] = []
        run = ctx.executor.run

        def counting(tasks, **kw):
            self.labels.append([t.label for t in tasks])
            return run(tasks, **kw)
        monkeypatch.setattr(ctx.executor, "run", counting)


def _pairs(ctx):
    return ctx.parallelize([(k % 7, k) for k in range(200)], 2)


def _add_values(index, parts):
    from runnel.batch import Batch, concat_batches
    whole = concat_batches(parts)
    return Batch({"key": whole["key"], "value": whole["value"]}, ("key", "value"))


def test_a_cached_partial_is_written_by_the_consumer_stage(ctx, monkeypatch):
    partial = _pairs(ctx).reduce_by_key(operator.add).cache()
    other = _pairs(ctx).reduce_by_key(operator.add).cache()
    other.count()                                      # computed: read from its blocks
    consumer = other.zip_partitions([partial], _add_values)
    stages = Stages(ctx, monkeypatch)
    got = sorted(consumer.collect())
    expected = {k: sum(v for v in range(200) if v % 7 == k) for k in range(7)}
    assert got == sorted([(k, v) for k, v in expected.items()] * 2)
    # one map stage (partial's shuffle) and one stage for consumer + partial: no stage of its own
    assert len(stages.labels) == 2
    assert "with" in stages.labels[1][0]
    assert isinstance(partial.plan, Blocks)           # the partial is its blocks now
    assert sorted(partial.collect()) == sorted(expected.items())
    assert len(stages.labels) == 2                    # ... and reading it runs nothing


def test_a_partial_read_twice_by_one_task_is_computed_once(ctx, monkeypatch):
    calls = []

    def count_calls(kv):
        calls.append(kv)
        return kv
    partial = _pairs(ctx).map(count_calls).reduce_by_key(operator.add).cache()
    base = _pairs(ctx).reduce_by_key(operator.add).cache()
    base.count()
    got = base.zip_partitions([partial, partial], _add_values).collect()
    assert len(got) == 3 * 7
    if ctx.executor.parallelism == 1:                 # in-process: the map function's calls are visible
        assert len(calls) == 200


def test_a_union_beside_the_zip_reads_the_partial_at_its_own_index(ctx):
    partial = _pairs(ctx).reduce_by_key(operator.add).cache()
    base = _pairs(ctx).reduce_by_key(operator.add).cache()
    base.count()
    zipped = base.zip_partitions([partial], _add_values)
    both = zipped.union(partial)
    assert sorted(both.collect()) == sorted(partial.collect() * 3)


def test_a_failing_partial_fails_the_consumer_and_stays_uncomputed(ctx):
    def boom(kv):
        raise ValueError("bad record")
    partial = _pairs(ctx).map(boom).reduce_by_key(operator.add).cache()
    base = _pairs(ctx).reduce_by_key(operator.add).cache()
    base.count()
    with pytest.raises(TaskFailed, match="bad record"):
        base.zip_partitions([partial], _add_values).collect()
    assert not isinstance(partial.plan, Blocks)
    with pytest.raises(TaskFailed, match="bad record"):
        partial.collect()


@pytest.mark.filterwarnings("ignore:.*will not survive a restart:RuntimeWarning")
def test_a_window_stage_computes_the_new_partial(ssc, ctx, monkeypatch):
    """reduceByKeyAndWindow: per batch one map stage and one stage for the partial and the window."""
    from collections import deque
    q = deque(ctx.parallelize([(i % 5, 1.0) for i in range(50)], 2) for _ in range(8))
    out = []
    ssc.queue_stream(q).reduce_by_key_and_window(operator.add, operator.sub, 5, 1) \
        .foreach_rdd(lambda ds: out.append(sorted(ds.collect())))
    ssc.start()
    ssc.run_batches(6)
    stages = Stages(ctx, monkeypatch)
    ssc.run_batches(1)
    assert out[-1] == [(k, 50.0) for k in range(5)]   # 5 batches of 10 per key
    window_stages = [ls for ls in stages.labels if "reduce_by_key_and_window" in ls[0]]
    assert len(window_stages) == 2 and "with reduce_by_key" in window_stages[1][0]
