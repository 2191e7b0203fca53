"""kernels.state: merge_state, sorted_reduce and merge_dense against dict references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from runnel.kernels import state as KS
from runnel.kernels.state import match_positions, merge_dense, merge_state, sorted_reduce

OPS = {"sum": lambda a, b: a + b, "min": min, "max": max, "last": lambda a, b: b}


def reference(table: dict, seen: dict, new: dict, op: str, now: int, ttl: int):
    """dict fold: touched keys merged, new keys added, untouched keys expire after ttl."""
    out, out_seen = {}, {}
    for k, v in table.items():
        if k in new:
            out[k], out_seen[k] = OPS[op](v, new[k]), now
        elif ttl <= 0 or now - seen[k] < ttl:
            out[k], out_seen[k] = v, seen[k]
    for k, v in new.items():
        if k not in table:
            out[k], out_seen[k] = v, now
    return out, out_seen


def run_kernel(table: dict, seen: dict, new: dict, op: str, now: int, ttl: int, dtype):
    tkeys, nkeys = list(table), list(new)
    index = {k: i for i, k in enumerate(tkeys)}
    pos = np.array([index.get(k, -1) for k in nkeys], dtype=np.int64)
    vals, s, keep = merge_state(pos, np.array([table[k] for k in tkeys], dtype),
                                np.array([seen[k] for k in tkeys], np.int64),
                                np.array([new[k] for k in nkeys], dtype), op, now, ttl)
    keys = tkeys + [k for k, p in zip(nkeys, pos) if p < 0]
    return ({k: v for k, v, kp in zip(keys, vals.tolist(), keep) if kp},
            {k: int(x) for k, x, kp in zip(keys, s, keep) if kp})


@pytest.fixture(autouse=True, scope="module", params=[None, (2, 4, 64), (2, 4, 2)],
                ids=["as shipped", "4-slot buckets", "4-slot buckets, 2 runs"])
def buckets(request):
    """Every test also with buckets of 4 slots (the small key ranges here then span many
    buckets), and with inputs of more than 2 runs scattered by bucket first."""
    names = ("BUCKET_BITS", "DIRECT_SLOTS", "MAX_RUNS")
    saved = [getattr(KS, n) for n in names]
    for n, v in zip(names, request.param or saved):
        setattr(KS, n, v)
    yield
    for n, v in zip(names, saved):
        setattr(KS, n, v)


values_i = st.integers(-2**40, 2**40)
values_f = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.integers(0, 30), st.tuples(values_f, st.integers(0, 10))),
       st.dictionaries(st.integers(0, 30), values_f), st.sampled_from(sorted(OPS)),
       st.integers(0, 5))
def test_merge_float_matches_dict_fold(table, new, op, ttl):
    vals, seen = {k: v for k, (v, _) in table.items()}, {k: s for k, (_, s) in table.items()}
    got = run_kernel(vals, seen, new, op, 10, ttl, np.float64)
    want = reference(vals, seen, new, op, 10, ttl)
    assert got[1] == want[1]
    assert got[0].keys() == want[0].keys()
    for k in want[0]:
        a, b = got[0][k], want[0][k]
        assert a == b or (a != a and b != b), (k, a, b)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.integers(-5, 30), st.tuples(values_i, st.integers(0, 10))),
       st.dictionaries(st.integers(-5, 30), values_i), st.sampled_from(sorted(OPS)), st.integers(0, 5))
def test_merge_int_and_object_match_dict_fold(table, new, op, ttl):
    vals, seen = {k: v for k, (v, _) in table.items()}, {k: s for k, (_, s) in table.items()}
    want = reference(vals, seen, new, op, 10, ttl)
    assert run_kernel(vals, seen, new, op, 10, ttl, np.int64) == want
    assert run_kernel(vals, seen, new, op, 10, ttl, object) == want


def test_merge_empty_and_one_key():
    e = np.empty(0, np.int64)
    v, s, k = merge_state(e, e, e, e, "sum")
    assert len(v) == len(s) == len(k) == 0
    v, s, k = merge_state(np.array([0]), np.array([5]), np.array([1]), np.array([2]), "sum", now=3, ttl=1)
    assert v.tolist() == [7] and s.tolist() == [3] and k.tolist() == [True]


def test_object_path_does_not_wrap():
    v, _, _ = merge_state(np.array([0]), np.array([2**62], object), np.zeros(1, np.int64),
                          np.array([2**62], object), "sum")
    assert v.tolist() == [2**63]


def test_match_positions():
    assert match_positions(np.array([0, 1, 2, 1, 3]), 3).tolist() == [1, -1]
    with pytest.raises(ValueError, match="cover"):
        match_positions(np.array([0]), 2)


def test_merge_validates_input():
    with pytest.raises(ValueError, match="merge op"):
        merge_state(np.array([0]), np.ones(1), np.zeros(1, np.int64), np.ones(1), "mul")
    with pytest.raises(TypeError, match="dtype"):
        merge_state(np.array([0]), np.ones(1), np.zeros(1, np.int64), np.ones(1, np.int64), "sum")
    with pytest.raises(ValueError, match="past the end"):
        merge_state(np.array([3]), np.ones(1), np.zeros(1, np.int64), np.ones(1), "sum")


# --- direct-addressed kernels (int64 keys in a small range) ------------------------------------

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def same(a, b) -> bool:
    """Equal, NaN equal to NaN, -0.0 told apart from 0.0 (the folds must agree bit for bit)."""
    if isinstance(a, float) or isinstance(b, float):
        return np.array(a, np.float64).tobytes() == np.array(b, np.float64).tobytes() or (a != a and b != b)
    return a == b


def fold_rows(keys, values, op):
    """dict fold in arrival order: {key: (value, rows)}."""
    out: dict = {}
    for k, v in zip(keys, values):
        out[k] = (OPS[op](out[k][0], v), out[k][1] + 1) if k in out else (v, 1)
    return out


# keys near each other (direct addressing applies) or near the int64 extremes
def key_lists(max_size=40):
    base = st.sampled_from([0, -7, 10**12, I64_MIN, I64_MAX - 60])
    return base.flatmap(lambda b: st.lists(st.integers(0, 60).map(lambda d: b + d),
                                           max_size=max_size))


@settings(max_examples=200, deadline=None)
@given(key_lists(), st.data(), st.sampled_from(sorted(OPS)), st.booleans(), st.booleans())
def test_sorted_reduce_matches_dict_fold(keys, data, op, floats, counts):
    vals = data.draw(st.lists(values_f if floats else values_i, min_size=len(keys), max_size=len(keys)))
    dt = np.float64 if floats else np.int64
    k, v, c = sorted_reduce(np.array(keys, np.int64), np.array(vals, dt), op, counts=counts)
    want = fold_rows(keys, vals, op)
    assert k.tolist() == sorted(want)
    assert all(same(a, want[key][0]) for key, a in zip(k.tolist(), v.tolist()))
    assert c is None if not counts else c.tolist() == [want[key][1] for key in k.tolist()]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(-5, 60), st.tuples(values_f, st.integers(0, 10), st.integers(1, 4))),
       st.dictionaries(st.integers(-5, 60), st.tuples(values_f, st.integers(1, 4))),
       st.sampled_from(sorted(OPS)), st.integers(0, 5), st.booleans(), st.booleans(), st.randoms(), st.booleans())
def test_merge_dense_matches_dict_fold(table, new, op, ttl, with_seen, counts, rnd, put_seen):
    tkeys, nkeys = list(table), list(new)
    rnd.shuffle(tkeys)  # any order merges; the result is sorted
    rnd.shuffle(nkeys)
    vals, seen = {k: table[k][0] for k in tkeys}, {k: table[k][1] if with_seen else 10 for k in tkeys}
    want, want_seen = reference(vals, seen, {k: new[k][0] for k in nkeys}, op, 10, ttl)
    a = (np.array(tkeys, np.int64), np.array([vals[k] for k in tkeys], np.float64),
         np.array([table[k][2] for k in tkeys], np.int64) if counts else None,
         np.array([seen[k] for k in tkeys], np.int64) if with_seen else None)
    b = (np.array(nkeys, np.int64), np.array([new[k][0] for k in nkeys], np.float64),
         np.array([new[k][1] for k in nkeys], np.int64) if counts else None)
    # without seen (and ttl 0) a sum merges the table on its branch-free path; touched: the keys b updated
    k, v, c, s, touched = merge_dense(a, b, op, 10, ttl, seen=put_seen, touched=True)
    assert k.tolist() == sorted(want)
    assert all(same(x, want[key]) for key, x in zip(k.tolist(), v.tolist()))
    assert touched.dtype == np.bool_ and touched.tolist() == [key in new for key in k.tolist()]
    if put_seen:
        assert s.tolist() == [want_seen[key] for key in k.tolist()]
    else:
        assert s is None
    if counts:
        assert c.tolist() == [table.get(key, (0, 0, 0))[2] + new.get(key, (0, 0))[1] for key in k.tolist()]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.integers(-5, 30), values_f), st.lists(st.tuples(st.integers(-5, 30), values_f),
                                                                 max_size=30), st.sampled_from(sorted(OPS)))
def test_merge_dense_folds_repeated_partials_in_order_then_the_table(table, rows, op):
    # the partials of several map tasks, one after the other: fold(b) first, then table op fold(b)
    got = merge_dense((np.array(list(table), np.int64), np.array(list(table.values())), None, None),
                      (np.array([k for k, _ in rows], np.int64), np.array([v for _, v in rows]), None), op)
    folded = {k: v for k, (v, _) in fold_rows([k for k, _ in rows], [v for _, v in rows], op).items()}
    want, _ = reference(table, dict.fromkeys(table, 0), folded, op, 0, 0)
    assert got[0].tolist() == sorted(want)
    assert all(same(x, want[k]) for k, x in zip(got[0].tolist(), got[1].tolist()))


@settings(deadline=None)
@given(st.dictionaries(st.integers(-5, 30), values_i), st.dictionaries(st.integers(-5, 30), values_i),
       st.sampled_from(sorted(OPS)))
def test_merge_dense_int_matches_merge_state(table, new, op):
    got = merge_dense((np.array(list(table), np.int64), np.array(list(table.values()), np.int64), None, None),
                      (np.array(list(new), np.int64), np.array(list(new.values()), np.int64), None), op)
    want, _ = reference(table, dict.fromkeys(table, 0), new, op, 0, 0)
    assert dict(zip(got[0].tolist(), got[1].tolist())) == want


def test_dense_kernels_decline_spread_keys_and_repeats():
    keys = np.array([0, 10**12], np.int64)
    assert sorted_reduce(keys, np.ones(2), "sum") is None
    one = (np.array([1], np.int64), np.ones(1))
    assert merge_dense((*one, None, None), (np.array([10**12], np.int64), np.ones(1), None), "sum") is None
    rep = (np.array([1, 1], np.int64), np.ones(2))
    assert merge_dense((*rep, None, None), (*one, None), "sum") is None  # a table repeats no key
    # the range limit is relative to the rows
    n = 10
    wide = np.array([0, KS.DENSE_FACTOR * n + KS.DENSE_SLACK], np.int64)
    assert sorted_reduce(np.concatenate([wide, np.arange(1, n - 1)]), np.ones(n), "sum") is None


def test_dense_kernels_empty_and_validation():
    e, ef = np.empty(0, np.int64), np.empty(0)
    k, v, c = sorted_reduce(e, ef, "sum", counts=True)
    assert len(k) == len(v) == len(c) == 0
    k, v, c, s = merge_dense((e, ef, None, None), (e, ef, None), "max", seen=True)
    assert len(k) == len(v) == len(s) == 0 and c is None
    assert len(merge_dense((e, ef, None, None), (e, ef, None), "sum", touched=True)[4]) == 0
    with pytest.raises(TypeError, match="int64"):
        sorted_reduce(np.array([1.0]), np.ones(1), "sum")
    with pytest.raises(ValueError, match="op"):
        sorted_reduce(e, ef, "mul")
    with pytest.raises(TypeError, match="float64"):
        merge_dense((e, ef, None, None), (e, e, None), "sum")
    with pytest.raises(ValueError, match="both sides"):
        merge_dense((e, ef, e, None), (e, ef, None), "sum")


@settings(max_examples=100, deadline=None)
@given(key_lists(max_size=60), st.integers(1, 5), st.booleans())
def test_sorted_reduce_parts_are_the_shuffle_buckets_in_key_order(keys, parts, counts):
    from runnel.kernels import hash_int64, partition_ids
    keys = np.array(keys, np.int64)
    whole = sorted_reduce(keys, np.ones(len(keys)), "sum", counts=counts)
    split = sorted_reduce(keys, np.ones(len(keys)), "sum", counts=counts, parts=parts)
    if parts == 1:
        split = [split]
    assert len(split) == parts
    ids = partition_ids(hash_int64(whole[0]), parts)
    for p, (k, v, c) in enumerate(split):
        sel = ids == p
        assert k.tolist() == whole[0][sel].tolist() and v.tolist() == whole[1][sel].tolist()
        assert (c is None) if not counts else c.tolist() == whole[2][sel].tolist()


@settings(max_examples=100, deadline=None)
@given(key_lists(max_size=60), st.integers(1, 5))
def test_split_rows_are_the_shuffle_partitions_grouped_by_bucket_in_arrival_order(keys, parts):
    from runnel.kernels import hash_int64, partition_ids
    keys = np.array(keys, np.int64)
    vals = np.arange(len(keys), dtype=np.float64)  # the row numbers: arrival order is visible
    split = KS.split_rows(keys, vals, parts)
    assert len(split) == parts
    ids = partition_ids(hash_int64(keys), parts) if len(keys) else keys
    for p, (k, v) in enumerate(split):
        rows = np.flatnonzero(ids == p)
        bucket = keys[rows] >> KS.BUCKET_BITS
        want = rows[np.argsort(bucket, kind="stable")]  # by bucket, arrival order within
        assert v.tolist() == want.tolist() and k.tolist() == keys[want].tolist()


def test_split_rows_declines_spread_keys():
    assert KS.split_rows(np.array([0, 10**12], np.int64), np.ones(2), 2) is None
    with pytest.raises(ValueError, match="parts"):
        KS.split_rows(np.array([1], np.int64), np.ones(1), 0)
