"""What only the Dask executor has: a Client as master, partition owners, lineage, a worker SIGKILLed mid-stream.

The executor interface itself is checked by the conformance suite (kind ``dask``);
these run on the session's LocalCluster of 2 worker processes (``tests/conftest.py``).
"""

from __future__ import annotations

import operator
import os
import signal
import sys

import pytest

from runnel import Batch, Context, ManualClock, StreamingContext
from runnel.executors import Task, make_executor
from runnel.updaters import running_sum


@pytest.fixture(scope="module")
def dctx(dask_master):
    """A Context of its own on the session's cluster (these tests look at its store and stats)."""
    c = Context(dask_master, conf={"runnel.executor.inlineBytes": 0})
    yield c
    c.stop()


def test_missing_distributed_names_the_extra(monkeypatch):
    import runnel.executors.dask_executor  # noqa: F401  (imported with distributed: other tests use it)
    monkeypatch.setitem(sys.modules, "distributed", None)       # what an install without the extra sees
    with pytest.raises(ImportError, match=r"pip install 'runnel\[dask\]'"):
        make_executor("dask://127.0.0.1:1")


def test_a_client_is_a_master_and_is_left_open(dask_cluster):
    from distributed import Client
    with Client(dask_cluster, set_as_default=False) as client:
        with Context(client) as ctx:
            assert ctx.master == "dask://" + dask_cluster.scheduler_address.split("://")[1]
            assert ctx.default_parallelism == 2                     # 2 workers of one thread
            pairs = ctx.parallelize([(i % 3, i) for i in range(30)], 3)
            assert sorted(pairs.reduce_by_key(operator.add).collect()) == [
                (k, sum(i for i in range(30) if i % 3 == k)) for k in range(3)]
            assert ctx.executor.stats["tasks_sent"] == 0                # tiny stages ran in the driver
        assert client.status == "running"                            # the Context did not close it
        assert client.submit(operator.add, 1, 2).result() == 3


def _owners(executor, refs) -> dict[str, set]:
    """Block id -> the workers holding it."""
    store = executor.store
    futures = {r.id: store.block(r).future for r in refs}
    for f in futures.values():          # the driver hears of a task before its result is registered as in memory
        f.result()
    who = executor.client.who_has(list(futures.values()))
    return {i: set(who[f.key]) for i, f in futures.items()}


@pytest.mark.filterwarnings("ignore:.*no checkpoint directory:RuntimeWarning")
def test_state_partitions_stay_on_their_owner_worker(dctx):
    ex = dctx.executor
    ssc = StreamingContext(dctx, 1, clock=ManualClock())
    tables = []
    states = ssc.queue_stream([[(k, 1) for k in range(40)]] * 4, default=None).update_state_by_key(running_sum())
    def where(rdd):
        refs, owner = rdd.materialize()
        try:
            tables.append((rdd.get_num_partitions(), _owners(ex, refs)))
        finally:
            if owner is not None:
                owner.release()

    states.foreach_rdd(where)
    ssc.start()
    ssc.run_batches(4)
    ssc.stop(stop_spark_context=False)
    assert len(tables) == 4
    for n, owners in tables:
        assert n == 2
        held = list(owners.values())
        assert held == [{ex.owner(0)}, {ex.owner(1)}]             # partition i on worker i, every batch
    assert ex.owner(0) != ex.owner(1)


@pytest.mark.filterwarnings("ignore:.*no checkpoint directory:RuntimeWarning")
def test_lineage_stays_bounded_over_a_long_stateful_run(dctx):
    ex = dctx.executor
    ssc = StreamingContext(dctx, 1, clock=ManualClock())
    out = []
    ssc.queue_stream([[(k, 1) for k in range(10)]] * 30, default=None).update_state_by_key(running_sum()) \
        .foreach_rdd(lambda rdd: out.append(dict(rdd.collect())))
    ssc.start()
    ssc.run_batches(30)
    ssc.stop(stop_spark_context=False)
    assert out[-1] == {k: 30 for k in range(10)}
    # every block deeper than the limit was backed up (cutting its lineage): the depth never grows past it
    depths = [b.depth for b in ex.store._blocks.values()]
    assert max(depths, default=0) <= ex.store.depth_limit + 3


def test_a_deep_lineage_is_backed_up_to_the_driver(dctx):
    ex = dctx.executor
    ref = ex.store.put(Batch.from_values([1]))
    chain = [ref]
    for i in range(ex.store.depth_limit + 2):
        [[nxt]] = ex.run([Task(add_one, 0, [[chain[-1]]], f"step {i}")])
        ex.store.back_up([nxt])
        chain.append(nxt)
    depths = [ex.store.block(r).depth for r in chain]
    assert max(depths) == ex.store.depth_limit
    assert ex.store.block(chain[-1]).frozen is None and ex.store.block(chain[-2]).frozen is not None
    assert ex.store.get(chain[-1]).to_records() == [len(chain)]
    ex.store.release(chain)


def add_one(index, groups):
    return [Batch.from_values([v + 1 for v in groups[0][0].to_records()])]


def test_the_ui_links_to_the_dask_dashboard(dctx):
    from runnel.ui import attach_ui
    from runnel.ui.pages import environment, overview
    ssc = StreamingContext(dctx, 1, clock=ManualClock())
    ui = attach_ui(ssc)
    link = dctx.executor.client.dashboard_link
    assert ui.facts.dashboard == link and link
    assert f'<a id="dashboard" href="{link}"' in environment(ui.status)
    assert f'<a id="dashboard" href="{link}"' in overview(ui.status)
    ssc.stop(stop_spark_context=False)


def test_worker_sigkilled_mid_stream_gives_exact_state_and_windows(dask_master, tmp_path):
    marker = str(tmp_path / "killed-once")
    driver = os.getpid()

    def kill_in_batch_three(kv):
        k, v = kv
        if v == 3 and os.getpid() != driver and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return k % 50, v

    n = 2_000
    batches = [[(k, i + 1) for k in range(n)] for i in range(6)]
    with Context(dask_master, conf={"runnel.executor.inlineBytes": 0}) as ctx:
        before = set(ctx.executor.client.run(os.getpid).values())
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(str(tmp_path / "ck"))
        pairs = ssc.queue_stream(batches).map(kill_in_batch_three)
        totals, windows = [], []
        pairs.update_state_by_key(running_sum()).foreach_rdd(lambda rdd: totals.append(dict(rdd.collect())))
        pairs.reduce_by_key_and_window(operator.add, operator.sub, 5, 1) \
            .foreach_rdd(lambda rdd: windows.append(dict(rdd.collect())))
        ssc.start()
        ssc.run_batches(6)
        ssc.stop(stop_spark_context=False)
        assert os.path.exists(marker)
        after = set(ctx.executor.client.run(os.getpid).values())
        assert len(before - after) == 1                             # one worker process is gone
    per_key = n // 50
    assert totals == [{k: per_key * sum(range(1, i + 2)) for k in range(50)} for i in range(6)]
    assert windows == [{k: per_key * sum(range(max(1, i - 3), i + 2)) for k in range(50)} for i in range(6)]
    ssc.await_termination(timeout=0)                                # no batch failed


def test_stages_are_logged_as_dask_with_their_workers_busy_time(dctx):
    activity = dctx.executor.activity
    busy = activity.busy
    activity.watch()
    try:
        pairs = dctx.parallelize([(i % 5, i) for i in range(100)], 2)
        assert sorted(pairs.reduce_by_key(operator.add).collect()) == [
            (k, sum(range(k, 100, 5))) for k in range(5)]
        runs = list(activity.stages)
    finally:
        activity.unwatch()
    assert [(r.kind, r.tasks) for r in runs] == [("dask", 2), ("dask", 2)]    # shuffle map, then reduce
    assert activity.busy > busy                                              # task time measured on the workers
