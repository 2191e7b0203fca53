"""Tiny stages run in the driver; small blocks stay in driver memory until a worker needs them."""

import operator
import os
import threading

import numpy as np
import pytest

from runnel import Batch, Context, ManualClock, StreamingContext
from runnel.storage.store import SharedMemoryStore


@pytest.fixture(scope="module")
def pool_ctx():
    ctx = Context("local[2]")
    yield ctx
    ctx.stop()


def test_small_blocks_are_held_until_spilled():
    store = SharedMemoryStore(hold_small=True)
    try:
        ref = store.put(Batch.from_records([("a", 1), ("b", [2])]))
        path = os.path.join(store.directory, ref.id)
        assert not os.path.exists(path)
        store.spill([ref])
        assert os.path.exists(path)
        assert store.get(ref).to_records() == [("a", 1), ("b", [2])]
        store.release([ref])
        assert not os.path.exists(path) and store.live_blocks() == 0
    finally:
        store.close()


def test_held_object_values_are_isolated_from_mutation():
    store = SharedMemoryStore(hold_small=True)
    try:
        ref = store.put(Batch.from_records([[1, 2]]))
        store.get(ref).to_records()[0].append(3)
        assert store.get(ref).to_records() == [[1, 2]]
    finally:
        store.close()


def test_tiny_stage_runs_in_the_driver_and_a_big_one_on_workers(pool_ctx):
    ex = pool_ctx.executor
    sent = ex.stats["tasks_sent"]
    small = pool_ctx.parallelize([(i % 3, 1) for i in range(10)], 2).reduce_by_key(operator.add)
    assert sorted(small.collect()) == [(0, 4), (1, 3), (2, 3)]
    assert ex.stats["tasks_sent"] == sent

    n = 200_000
    keys = np.arange(n) % 7
    big = pool_ctx.parallelize(Batch.from_pairs(keys, np.ones(n, dtype=np.int64)), 2).reduce_by_key(operator.add)
    assert sorted(big.collect()) == [(k, int((keys == k).sum())) for k in range(7)]
    assert ex.stats["tasks_sent"] > sent


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
