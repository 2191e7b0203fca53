"""Built-in updaters' partition ops: the direct-addressed path (int64 keys) against the hash path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from runnel.batch import Batch
from runnel import state_tables as S

KINDS = ("sum", "count", "mean", "min", "max", "last")


def pairs(keys, values) -> Batch:
    return Batch({"key": np.asarray(keys, np.int64), "value": np.asarray(values)}, ("key", "value"))


def hash_path(monkeypatch):
    monkeypatch.setattr(S, "_sorted_partials", lambda *a: None)
    monkeypatch.setattr(S, "_dense_ready", lambda *a: False)
    monkeypatch.setattr(S.MergeBuiltin, "_merge_sorted", lambda self, state, new: None)


def run(kind, ttl, batches, n, shuffle_state=None):
    """State tables after each batch: map tasks (one per input slice), shuffle into n, merge."""
    state = [None] * n
    out = []
    for t, slices in enumerate(batches, start=1):
        buckets = [S.PartialBuckets(kind)(i, b, n) for i, b in enumerate(slices)]
        for p in range(n):
            new = S.PartialReduce(kind)(p, [[bk[p] for bk in buckets]])
            prev = state[p]
            if prev is not None and shuffle_state is not None and len(prev):
                prev = prev.take(shuffle_state.permutation(len(prev)))  # e.g. restored from a checkpoint
            op = S.MergeBuiltin(kind, ttl, t, prev is not None)
            state[p] = op(p, [prev, new] if prev is not None else [new])
        out.append(state)
        state = list(state)
    return out


def as_dict(tables) -> dict:
    d = {}
    for b in tables:
        if len(b):
            cols = [b.columns[c].tolist() for c in sorted(b.columns) if c != "key"]
            for i, k in enumerate(b.columns["key"].tolist()):
                d[k] = tuple(c[i] for c in cols)
    return d


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array(a[k]).tobytes() == np.array(b[k]).tobytes() for k in a)


batch_lists = st.lists(st.lists(st.tuples(st.integers(0, 50), st.floats(-1e6, 1e6, allow_nan=False)), max_size=30),
                       min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(batch_lists, st.sampled_from(KINDS), st.sampled_from([0, 2]), st.integers(1, 3), st.integers(1, 2),
       st.booleans(), st.randoms())
def test_direct_addressing_equals_hash_path(data, kind, ttl, n, maps, ints, rnd):
    dtype = np.int64 if ints else np.float64
    batches = []
    for recs in data:
        keys, vals = [k for k, _ in recs], np.array([v for _, v in recs], dtype)
        cuts = [0, len(recs) // 2, len(recs)] if maps == 2 else [0, len(recs)]
        batches.append([pairs(keys[a:b], vals[a:b]) for a, b in zip(cuts, cuts[1:])])
    fast = run(kind, ttl, batches, n, np.random.default_rng(rnd.randrange(2**32)))
    with pytest.MonkeyPatch.context() as m:
        hash_path(m)
        slow = run(kind, ttl, batches, n)
    for f, s in zip(fast, slow):
        assert same(as_dict(f), as_dict(s))


def test_tables_come_out_sorted_and_restored_tables_without_extra_columns_merge():
    state = pairs([5, 1, 3], [1.0, 2.0, 3.0])  # unsorted, as a repartitioned restore may give
    new = S.PartialReduce("sum")(0, [[S.PartialBuckets("sum")(0, pairs([3, 9, 1], [1.0, 1.0, 1.0]), 1)[0]]])
    out = S.MergeBuiltin("sum", 0, 2, True)(0, [state, new])
    assert out.columns["key"].tolist() == [1, 3, 5, 9]
    assert out.columns["value"].tolist() == [3.0, 4.0, 1.0, 1.0]
    assert set(out.columns) == {"key", "value"}  # nothing but the table: 16 bytes per key
    # with a ttl, a restored table without _seen counts as seen now
    out = S.MergeBuiltin("sum", 2, 7, True)(0, [state, new])
    assert out.columns["_seen"].tolist() == [7, 7, 7, 7]


@pytest.mark.parametrize("keys", [[0, 2**40], [1.5, 2.5]])
def test_spread_or_float_keys_take_the_hash_path(keys):
    b = Batch({"key": np.array(keys), "value": np.ones(2)}, ("key", "value"))
    assert S._sorted_partials(b, "sum") is None
    out = S.MergeBuiltin("sum", 0, 1, True)(0, [b, b])
    assert sorted(out.columns["value"].tolist()) == [2.0, 2.0]


@pytest.mark.parametrize("kind", KINDS)
def test_dense_partials_of_several_map_tasks_into_a_spread_table_take_the_hash_path(kind):
    # the state's keys spread far (no direct addressing), the new partials dense: PartialReduce
    # leaves one row per map task and key, the hash path must fold them first
    far = [0, 2**40, 2**41]
    batches = [[pairs(far, np.array([1.0, 2.0, 3.0]))],
               [pairs([0, 1, 1], np.array([1.0, 2.0, 3.0])), pairs([1, 0, 2], np.array([4.0, 5.0, 6.0]))]]
    fast = run(kind, 0, batches, 1)
    with pytest.MonkeyPatch.context() as m:
        hash_path(m)
        slow = run(kind, 0, batches, 1)
    for f, s in zip(fast, slow):
        assert same(as_dict(f), as_dict(s))
    assert len(fast[-1][0]) == 5  # keys 0, 1, 2, 2**40, 2**41, once each
