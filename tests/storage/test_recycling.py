"""The driver's store writes new big blocks into the files of released ones, bounded, and cleans them up."""

import numpy as np

import runnel.storage.store as store_mod
from runnel import Batch
from runnel.storage.store import SharedMemoryStore


def big(n, seed=0):
    rng = np.random.default_rng(seed)
    return Batch.from_pairs(rng.integers(0, 1000, n), rng.random(n))


def test_released_big_block_file_is_reused_for_the_next_put():
    s = SharedMemoryStore()
    try:
        a = s.put(big(100_000))
        s.release([a])
        assert [n for n in s.files() if "spare" in n] and s.live_blocks() == 0
        b = s.put(big(60_000, seed=1))                 # smaller: written in place, file truncated
        assert not [n for n in s.files() if "spare" in n]
        assert s.get(b).to_records() == big(60_000, seed=1).to_records()
        c = s.put(big(150_000, seed=2))                # no spare left: a new file
        assert s.get(c).to_records()[-3:] == big(150_000, seed=2).to_records()[-3:]
    finally:
        s.close()
    assert s.files() == []


def test_spares_are_bounded(monkeypatch):
    monkeypatch.setattr(store_mod, "_SPARE_FILES", 2)
    s = SharedMemoryStore()
    try:
        refs = [s.put(big(20_000, seed=i)) for i in range(5)]
        s.release(refs)
        assert len([n for n in s.files() if "spare" in n]) == 2
    finally:
        s.close()
    assert s.files() == []


def test_small_blocks_are_not_kept_as_spares():
    s = SharedMemoryStore()
    try:
        s.release([s.put(Batch.from_records([1, 2, 3]))])
        assert [n for n in s.files() if not n.endswith("lock")] == []
    finally:
        s.close()
