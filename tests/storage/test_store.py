"""Block stores: put/get/release, isolation of object columns, counters, no leftover files."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from runnel.batch import Batch, object_array
from runnel.storage.store import (BlockRef, DiskStore, MemoryStore, SharedMemoryStore, shm_directory,
                                  sweep_dead)

STORES = {
    "memory": MemoryStore,
    "shm": SharedMemoryStore,
    "shm-zstd": lambda: SharedMemoryStore(compression="zstd"),
    "disk": DiskStore,
}


@pytest.fixture(params=list(STORES))
def store(request):
    s = STORES[request.param]()
    yield s
    s.close()


def files_of(store) -> list[str]:
    prefix = getattr(store, "prefix", None)
    if prefix is None or not os.path.isdir(store.directory):
        return []
    return [n for n in os.listdir(store.directory) if n.startswith(prefix)]


def sample() -> Batch:
    return Batch({"k": pa.array(["a", None, "c"]), "v": np.array([1.5, 2.5, -1.0]),
                  "o": object_array([[1], (2, [3]), None])}, ("k", ("v", "o")))


def test_put_get_release(store):
    b = sample()
    ref = store.put(b)
    assert isinstance(ref, BlockRef) and ref.nrows == 3 and ref.nbytes > 0
    assert store.get(ref).to_records() == b.to_records()
    assert store.get(ref).layout == b.layout
    assert store.live_blocks() == 1 and store.live_bytes() == ref.nbytes
    store.release([ref])
    assert store.live_blocks() == 0 and store.live_bytes() == 0
    with pytest.raises(KeyError, match="not in this"):
        store.get(ref)
    store.release([ref])                      # idempotent


def test_object_columns_are_isolated_from_callers(store):
    ref = store.put(sample())
    got = store.get(ref)
    got["o"][0].append(99)
    got["o"][1][1].append(99)
    assert store.get(ref).to_records() == sample().to_records()


def test_counters_drop_to_zero_and_no_files_remain_after_close(store):
    refs = [store.put(sample()) for _ in range(5)]
    assert store.live_blocks() == 5
    assert store.live_bytes() == sum(r.nbytes for r in refs)
    store.release(refs[:2])
    assert store.live_blocks() == 3
    store.close()
    store.close()                             # idempotent
    assert store.live_blocks() == 0 and store.live_bytes() == 0
    assert files_of(store) == []


def test_numeric_columns_from_shared_memory_are_read_only_views():
    with SharedMemoryStore() as s:
        ref = s.put(Batch.from_values(np.arange(10_000)))
        col = s.get(ref)["value"]
        assert not col.flags.writeable and col.base is not None
        assert s.directory == "/dev/shm" or not os.path.isdir("/dev/shm")
        assert ref.id.startswith(f"runnel-{os.getpid()}-")


def test_views_outlive_release():
    with SharedMemoryStore() as s:
        ref = s.put(Batch.from_values(np.arange(1000)))
        col = s.get(ref)["value"]
        s.release([ref])
        assert files_of(s) == [s.prefix + "lock"]
        assert int(col.sum()) == 499500      # the mapping stays valid after unlink


def test_worker_view_writes_blocks_the_driver_adopts():
    with SharedMemoryStore() as driver:
        worker = SharedMemoryStore.attach(driver.directory, driver.prefix, "w7.")
        ref = worker.put(Batch.from_records([1, 2]))
        assert ref.id.startswith(driver.prefix + "w7.")
        driver.adopt([ref])
        worker.forget([ref])
        worker.close()                        # forgets, does not delete adopted blocks
        assert driver.get(ref).to_records() == [1, 2]
        stray = SharedMemoryStore.attach(driver.directory, driver.prefix, "w8.").put(Batch.from_records([3]))
        assert driver.remove_unowned("w8.") == 1
        assert stray.id not in files_of(driver)
        assert driver.live_blocks() == 1


_ORPHAN = """
import os, sys
from runnel.batch import Batch
from runnel.storage.store import SharedMemoryStore
s = SharedMemoryStore()
s.put(Batch.from_records([1, 2, 3]))
print(s.prefix, flush=True)
os.kill(os.getpid(), 9)
"""


def test_new_store_sweeps_segments_of_a_killed_driver():
    proc = subprocess.run([sys.executable, "-c", _ORPHAN], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == -9, proc.stderr
    prefix = proc.stdout.strip()
    directory = shm_directory()
    assert any(n.startswith(prefix) for n in os.listdir(directory))
    with SharedMemoryStore():
        pass
    assert not any(n.startswith(prefix) for n in os.listdir(directory))


def test_sweep_leaves_live_stores_alone():
    with SharedMemoryStore() as s:
        s.put(Batch.from_records([1]))
        sweep_dead(s.directory)
        assert len(files_of(s)) == 2


def test_disk_store_in_a_given_directory_removes_only_its_files(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    s = DiskStore(str(tmp_path))
    s.put(Batch.from_records(["a"]))
    assert len(os.listdir(tmp_path)) == 2
    s.close()
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_memory_store_keeps_numeric_columns_as_is():
    s = MemoryStore()
    b = Batch.from_values(np.arange(5))
    ref = s.put(b)
    assert s.get(ref)["value"] is b["value"]
    s.close()


def test_a_batch_read_from_a_released_block_never_changes():
    # get() of a big block is a zero-copy view of its file; user code may keep it (to_batch, to_pandas)
    # after the block is released, so released files must never be written into again
    s = SharedMemoryStore()
    try:
        n = 200_000
        ref = s.put(Batch.from_pairs(np.arange(n), np.ones(n)))
        view = s.get(ref)
        s.release([ref])
        for i in range(3):
            s.put(Batch.from_pairs(np.full(n, -i - 1), np.zeros(n)))
        assert view["key"][:3].tolist() == [0, 1, 2] and float(view["value"].sum()) == n
    finally:
        s.close()


def test_a_collection_inside_the_store_lock_does_not_deadlock():
    """A garbage collection can run in any allocation, also while this thread holds the store's lock:
    an owner finalized then must not take that lock (it queues the release for the next store call)."""
    import gc
    import threading

    from runnel.dataset import BlockOwner
    store = MemoryStore()
    ref = store.put(Batch.from_values([1, 2, 3]))

    class Cycle:
        pass
    c = Cycle()
    c.me, c.owner = c, BlockOwner(store, [ref])     # only a collection frees it
    del c

    def collect_under_lock():
        with store._lock:
            gc.collect()
    t = threading.Thread(target=collect_under_lock, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "deadlocked"
    assert store.live_blocks() == 0 and ref not in store


@pytest.mark.parametrize("kind", ["shm", "disk"])
def test_block_files_are_owner_only_and_their_names_unguessable(kind, tmp_path):
    import re
    import stat
    old = os.umask(0o022)
    try:
        s = SharedMemoryStore() if kind == "shm" else DiskStore(str(tmp_path / "blocks"))
        small = s.put(Batch.from_records([1, 2]))
        big = s.put(Batch({"v": np.arange(1 << 17, dtype=np.int64)}, "v"))   # Arrow's file writer, 1 MB
        worker = SharedMemoryStore.attach(s.directory, s.prefix, "w3.") if kind == "shm" else None
        made = worker.put(Batch.from_records([3])) if worker else None
    finally:
        os.umask(old)
    try:
        assert re.fullmatch(rf"runnel-{os.getpid()}-[0-9a-f]{{32}}-", s.prefix)   # 128 random bits
        for ref in [small, big] + ([made] if made else []):
            assert stat.S_IMODE(os.stat(os.path.join(s.directory, ref.id)).st_mode) == 0o600, ref.id
        if kind == "disk":
            assert stat.S_IMODE(os.stat(tmp_path / "blocks").st_mode) == 0o700
        else:
            s.adopt([made])
            worker.forget([made])
            worker.close()
        s.release([big])                      # kept as a spare (renamed): still 0600
        assert all(stat.S_IMODE(os.stat(os.path.join(s.directory, n)).st_mode) == 0o600 for n in files_of(s))
    finally:
        s.close()
