"""kernels.state.merge_state against a dict reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from runnel.kernels.state import match_positions, merge_state

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
