"""local[N] picks a home per stage: threads for kernels, worker processes for user Python,
the calling thread for tiny stages; blocks reach shared memory only when a process reads them."""

import operator
import os
import threading

import numpy as np
import pytest

from runnel import Batch, Context, ManualClock, StreamingContext
from runnel.executors import ship
from runnel.executors.kinds import STAGE_KIND_KEY, runs_python, stage_kind
from runnel.functions import Reducer
from runnel.ops import FilterRecords, MapRecords, PairWithConstant, SplitWords
from runnel.storage.store import HOLD_ALL, SMALL_BLOCK, SharedMemoryStore


@pytest.fixture(scope="module")
def pool_ctx():
    ctx = Context("local[2]")
    yield ctx
    ctx.stop()


@pytest.fixture
def conf(pool_ctx):
    saved = dict(pool_ctx.conf)
    yield pool_ctx.conf
    pool_ctx.conf.clear()
    pool_ctx.conf.update(saved)


def block_files(store) -> list[str]:
    return [n for n in store.files() if not n.endswith("lock")]


@pytest.mark.parametrize("hold", [SMALL_BLOCK, HOLD_ALL])
def test_held_blocks_reach_shared_memory_only_when_spilled(hold):
    store = SharedMemoryStore(hold_bytes=hold)
    try:
        ref = store.put(Batch.from_records([("a", 1), ("b", [2])]))
        path = os.path.join(store.directory, ref.id)
        assert not os.path.exists(path) and store.is_held(ref)
        assert store.spill([ref]) > 0 and os.path.exists(path)
        assert store.spill([ref]) == 0                       # written once
        assert store.get(ref).to_records() == [("a", 1), ("b", [2])]
        store.release([ref])
        assert not os.path.exists(path) and store.live_blocks() == 0
    finally:
        store.close()


def test_holding_every_block_keeps_big_ones_in_memory_and_frees_them_without_files():
    store = SharedMemoryStore(hold_bytes=HOLD_ALL)
    small = SharedMemoryStore(hold_bytes=SMALL_BLOCK)
    try:
        big = Batch.from_values(np.arange(1 << 20))
        ref, ref2 = store.put(big), small.put(big)
        assert store.is_held(ref) and block_files(store) == []
        assert not small.is_held(ref2) and len(block_files(small)) == 1
        assert store.get(ref).columns["value"] is big.columns["value"]   # no copy
        store.release([ref])
        assert store.live_blocks() == 0 and block_files(store) == []
    finally:
        store.close()
        small.close()


def test_held_object_values_are_isolated_from_mutation():
    store = SharedMemoryStore(hold_bytes=HOLD_ALL)
    try:
        ref = store.put(Batch.from_records([[1, 2]]))
        store.get(ref).to_records()[0].append(3)
        assert store.get(ref).to_records() == [[1, 2]]
    finally:
        store.close()


def _uncompilable(x):
    return f"{x:x}"                                          # string formatting: Numba cannot compile it


def test_kernel_ops_run_on_threads_and_user_python_on_processes():
    assert not runs_python(Reducer(operator.add, op="sum"))
    assert runs_python(Reducer(lambda a, b: [a, b]))
    assert not runs_python(PairWithConstant(1))
    assert not runs_python(SplitWords(" ", lambda s: s.split(" ")))   # Arrow kernels; its fallback is rare
    assert runs_python(MapRecords(_uncompilable)) and runs_python(FilterRecords(ship(bool)))
    assert stage_kind([PairWithConstant(1)]) == "threads"
    assert stage_kind([PairWithConstant(1), MapRecords(_uncompilable)]) == "processes"
    assert stage_kind([MapRecords(_uncompilable)], "threads") == "threads"
    with pytest.raises(ValueError, match=STAGE_KIND_KEY.replace(".", r"\.")):
        stage_kind([], "fibers")


def test_each_stage_runs_where_it_pays(pool_ctx, conf):
    ex = pool_ctx.executor
    before = dict(ex.stats)
    small = pool_ctx.parallelize([(i % 3, 1) for i in range(10)], 2).reduce_by_key(operator.add)
    assert sorted(small.collect()) == [(0, 4), (1, 3), (2, 3)]
    assert ex.stats["stages_inline"] > before["stages_inline"]
    assert ex.stats["tasks_sent"] == before["tasks_sent"]

    n = 200_000
    keys = np.arange(n) % 7
    big = pool_ctx.parallelize(Batch.from_pairs(keys, np.ones(n, dtype=np.int64)), 2)
    files = block_files(ex.store)
    assert sorted(big.reduce_by_key(operator.add).collect()) == [(k, int((keys == k).sum())) for k in range(7)]
    assert ex.stats["stages_threads"] > before["stages_threads"]     # the map stage (its reduce reads 7 keys: inline)
    assert ex.stats["tasks_sent"] == before["tasks_sent"]
    assert block_files(ex.store) == files                                # threads copy nothing to /dev/shm

    mapped = big.map(lambda kv: (kv[0], len(_uncompilable(kv[1]))))
    assert sorted(mapped.reduce_by_key(operator.add).collect()) == [(k, int((keys == k).sum())) for k in range(7)]
    assert ex.stats["stages_processes"] > before["stages_processes"]
    assert ex.stats["tasks_sent"] > before["tasks_sent"]

    sent = ex.stats["tasks_sent"]
    conf[STAGE_KIND_KEY] = "processes"                                   # the override, read at every stage
    assert sorted(big.reduce_by_key(operator.add).collect()) == [(k, int((keys == k).sum())) for k in range(7)]
    assert ex.stats["tasks_sent"] >= sent + 2                           # the map stage on the workers


def test_stage_description_names_the_executor_kind(pool_ctx, conf):
    n = 200_000
    big = pool_ctx.parallelize(Batch.from_pairs(np.arange(n) % 7, np.ones(n)), 2)
    text = big.reduce_by_key(operator.add).describe_stages()
    assert "[threads]" in text and "[processes]" not in text and "shuffle map" in text
    text = big.map(lambda kv: (kv[0], _uncompilable(kv[1]))).group_by_key().describe_stages()
    assert "[processes]" in text
    conf[STAGE_KIND_KEY] = "processes"
    assert "[threads]" not in big.reduce_by_key(operator.add).describe_stages()


def test_a_stage_that_runs_inline_is_not_classified(pool_ctx, monkeypatch):
    # the walk over task programs is asked only when the stage does not run inline (W5's tiny batches)
    ex = pool_ctx.executor
    asked = []
    real = type(ex).kind_of
    monkeypatch.setattr(ex, "kind_of", lambda tasks: asked.append(len(tasks)) or real(ex, tasks))
    small = pool_ctx.parallelize([(i % 3, 1) for i in range(10)], 2).reduce_by_key(operator.add)
    before = ex.stats["stages_inline"]
    assert sorted(small.collect()) == [(0, 4), (1, 3), (2, 3)]
    assert ex.stats["stages_inline"] == before + 2 and asked == []
    assert "[threads]" in small.describe_stages() and asked == [2, 2]    # describe still names the kind
    n = 200_000
    big = pool_ctx.parallelize(Batch.from_pairs(np.arange(n) % 7, np.ones(n, dtype=np.int64)), 2)
    asked.clear()
    assert sorted(big.reduce_by_key(operator.add).collect()) == [(k, int((np.arange(n) % 7 == k).sum()))
                                                                 for k in range(7)]
    assert asked == [2]                                                  # the map stage; its tiny reduce ran inline


def test_start_rejects_a_function_that_cannot_reach_the_workers(pool_ctx):
    lock = threading.Lock()

    def holds_a_lock(x):
        with lock:
            return x

    ssc = StreamingContext(pool_ctx, 1, clock=ManualClock())
    ssc.queue_stream([[1]]).map(holds_a_lock).foreach_rdd(lambda rdd: None)
    with pytest.raises(TypeError, match="holds_a_lock"):
        ssc.start()
    ssc.stop(stop_spark_context=False)
