"""Spare block files: released shared-memory files written again, never under a live view."""

from __future__ import annotations

import fcntl
import os

import numpy as np
import pyarrow as pa
import pytest

from runnel import Context
from runnel.batch import Batch
from runnel.storage import spares as spares_module
from runnel.storage.spares import MIN_BYTES, SpareFiles, unshared
from runnel.storage.store import SharedMemoryStore, shm_directory

pytestmark = pytest.mark.skipif(not hasattr(fcntl, "F_SETLEASE"), reason="write leases (F_SETLEASE) are Linux-only")


def big(seed: int, n: int = 40_000) -> Batch:
    """A block of 640 kB (over MIN_BYTES)."""
    rng = np.random.default_rng(seed)
    return Batch({"key": rng.integers(0, 1000, n), "value": rng.random(n)}, ("key", "value"))


def spare_files(store) -> list[str]:
    return sorted(n for n in store.files() if n.startswith(store.spares.prefix))


@pytest.fixture
def store():
    s = SharedMemoryStore()
    yield s
    s.close()


def test_a_mapping_in_any_open_file_makes_a_file_shared():
    path = os.path.join(shm_directory(), f"runnel-test-lease-{os.getpid()}")
    with open(path, "wb") as f:
        f.write(b"x" * 4096)
    try:
        assert unshared(path)
        mapped = pa.memory_map(path, "r")
        view = np.frombuffer(mapped.read_buffer(), np.uint8)
        mapped.close()                      # the buffer still maps the file
        assert not unshared(path)
        del view
        assert unshared(path)
    finally:
        os.unlink(path)


def test_a_released_block_is_kept_and_written_again(store):
    a, b = big(1), big(2)
    ref = store.put(a)
    store.release([ref])
    assert len(store.spares) == 1 and len(spare_files(store)) == 1
    assert not os.path.exists(os.path.join(store.directory, ref.id))
    ref2 = store.put(b)
    assert store.spares.stats["reused"] == 1 and len(store.spares) == 0
    got = store.get(ref2)
    np.testing.assert_array_equal(got["key"], b["key"])
    np.testing.assert_array_equal(got["value"], b["value"])
    assert os.path.getsize(os.path.join(store.directory, ref2.id)) == ref2.nbytes


def test_a_view_that_outlives_its_block_is_never_overwritten(store):
    a = big(1)
    ref = store.put(a)
    view = store.get(ref)["value"]            # zero-copy: maps the block's file
    store.release([ref])
    ref2 = store.put(big(2))                  # same size: the spare would fit, but it is mapped
    np.testing.assert_array_equal(view, a["value"])
    assert store.spares.stats["reused"] == 0 and store.spares.stats["busy"] >= 1
    np.testing.assert_array_equal(store.get(ref2)["value"], big(2)["value"])
    del view
    ref3 = store.put(big(3))                  # the view is gone: now it is reused
    assert store.spares.stats["reused"] == 1
    np.testing.assert_array_equal(store.get(ref3)["key"], big(3)["key"])


def test_small_blocks_are_unlinked_and_spares_stay_under_the_cap():
    s = SharedMemoryStore(spare_bytes=2 * 700_000)
    try:
        small = s.put(Batch({"value": np.arange(10)}, "value"))
        refs = [s.put(big(i)) for i in range(4)]
        s.release([small] + refs)
        assert len(s.spares) == 2 and s.spares.nbytes <= 2 * 700_000
        assert len(spare_files(s)) == 2       # the others (and the small block) were unlinked
        assert all(r.nbytes >= MIN_BYTES for r in refs)
    finally:
        s.close()
    assert s.files() == []


def test_a_spare_much_bigger_than_the_block_is_left_for_a_big_one(store):
    ref = store.put(big(1, 200_000))          # 3.2 MB
    store.release([ref])
    store.put(big(2, 20_000))                 # 320 kB: written to a fresh file
    assert store.spares.stats["reused"] == 0 and len(store.spares) == 1


def test_no_spares_without_a_cap(tmp_path):
    s = SharedMemoryStore(spare_bytes=0)
    try:
        ref = s.put(big(1))
        s.release([ref])
        assert s.spares is None and s.files() == [s.prefix + "lock"]
    finally:
        s.close()


def test_pool_workers_write_into_lent_spares_and_hand_back_the_rest():
    ctx = Context("local[2]", "spares")
    try:
        store = ctx.executor.store
        data = np.arange(400_000, dtype=np.int64)
        for _ in range(3):
            ds = ctx.parallelize(data, 2).map(lambda x: x * 2)
            assert int(np.sum(np.asarray(ds.to_batch()["value"]))) == 2 * int(data.sum())
        assert store.spares.stats["reused"] > 0
        # every spare is in the driver's pool again or was written; nothing is lost
        on_disk = {n for n in store.files() if n.startswith(store.spares.prefix)}
        assert on_disk == set(store.spares._files)
    finally:
        ctx.stop()


def test_spares_lent_to_a_worker_that_dies_are_removed():
    ctx = Context("local[2]", "spares-death")
    try:
        store = ctx.executor.store
        data = np.arange(400_000, dtype=np.int64)
        ctx.parallelize(data, 2).map(lambda x: x + 1).count()   # leaves spares behind

        def die(x):
            os._exit(3)
        with pytest.raises(Exception, match="died"):
            ctx.parallelize(data, 2).map(die).count()
        on_disk = {n for n in store.files() if n.startswith(store.spares.prefix)}
        assert on_disk == set(store.spares._files)
    finally:
        ctx.stop()


def test_spare_files_pool_order_and_clear(tmp_path):
    pool = SpareFiles(str(tmp_path), "p-", cap=10 * MIN_BYTES)
    paths = []
    for i, size in enumerate([MIN_BYTES, 3 * MIN_BYTES, 2 * MIN_BYTES]):
        p = tmp_path / f"b{i}"
        p.write_bytes(b"\0" * size)
        paths.append(str(p))
        assert pool.keep(str(p), size)
    assert len(pool) == 3 and pool.nbytes == 6 * MIN_BYTES
    [(name, size)] = pool.take(2 * MIN_BYTES)     # best fit: the 2x file
    assert size == 2 * MIN_BYTES
    pool.give([(name, size)])
    taken = pool.take_all()                       # out of the pool, files untouched
    assert sorted(s for _, s in taken) == [MIN_BYTES, 2 * MIN_BYTES, 3 * MIN_BYTES] and len(pool) == 0
    (tmp_path / "b9").write_bytes(b"\0" * MIN_BYTES)
    assert pool.keep(str(tmp_path / "b9"), MIN_BYTES)
    pool.clear()                                  # unlinks what is in the pool: b9's spare only
    assert len(pool) == 0 and sorted(os.listdir(tmp_path)) == sorted(n for n, _ in taken)


def test_spare_files_keep_at_most_max_files_and_fit_by_size(tmp_path, monkeypatch):
    monkeypatch.setattr(spares_module, "MAX_FILES", 3)
    pool = SpareFiles(str(tmp_path), "p-", cap=100 * MIN_BYTES)
    for i, k in enumerate([5, 1, 4, 2]):          # the oldest (5x) goes when the fourth comes
        p = tmp_path / f"b{i}"
        p.write_bytes(b"\0" * (k * MIN_BYTES))
        assert pool.keep(str(p), k * MIN_BYTES)
    assert len(pool) == 3 and pool.nbytes == 7 * MIN_BYTES and len(os.listdir(tmp_path)) == 3
    assert pool.take(3 * MIN_BYTES)[0][1] == 4 * MIN_BYTES   # the smallest that holds it
    assert pool.take(9 * MIN_BYTES)[0][1] == 2 * MIN_BYTES   # none holds it: the largest smaller one
    assert pool.take(100 * MIN_BYTES)[0][1] == MIN_BYTES and len(pool) == 0 and pool.take(MIN_BYTES) == []


def test_a_task_is_lent_a_fit_for_its_input_then_the_spares_kept_last(store):
    from types import SimpleNamespace

    from runnel.executors.pool import LEND_MAX, ProcessPoolExecutor
    refs = [store.put(big(0, 500_000))] + [store.put(big(i)) for i in range(1, 6)]   # 8 MB, then 640 kB x 5
    assert store.spares.stats["fresh"] == 6
    store.release(refs)
    kept_last = [n for n in list(store.spares._files)[-(LEND_MAX - 1):]]
    # a map task of one big input writing small buckets: the big fit, and small spares for its outputs
    lent = ProcessPoolExecutor._lend(SimpleNamespace(store=store), [refs[0].nbytes])
    assert len(lent) == LEND_MAX and lent[0][1] == refs[0].nbytes
    assert sorted(n for n, _ in lent[1:]) == sorted(kept_last) and len(store.spares) == 6 - LEND_MAX
    store.spares.give(lent)
    assert len(store.spares) == 6


def test_put_many_writes_big_blocks_concurrently_and_frees_them_on_failure(store, monkeypatch):
    batches = [big(i, 80_000) for i in range(3)]
    refs = store.put_many(batches)
    assert store._writers is not None               # the threads were used (>= 2 blocks of >= 1 MB)
    for ref, b in zip(refs, batches):
        np.testing.assert_array_equal(store.get(ref)["value"], b["value"])
    live = store.live_blocks()
    put = store.put

    def failing(batch):
        if batch is batches[1]:
            raise OSError("disk full")
        return put(batch)
    monkeypatch.setattr(store, "put", failing)
    with pytest.raises(OSError, match="disk full"):
        store.put_many(batches)
    assert store.live_blocks() == live              # the blocks written before the failure are released
