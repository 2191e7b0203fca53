"""Window kernels against a dict reference: fn(inv(old, fold(leaving)), fold(entering)) per key."""

from __future__ import annotations

import doctest

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runnel.kernels import _config
from runnel.kernels import window as KW


def reference(codes, values, counts, fn=lambda a, b: a + b, inv=lambda a, b: a - b):
    n_old, n_leave = counts
    acc = [{}, {}, {}]
    for i, (c, v) in enumerate(zip(codes, values)):
        s = 0 if i < n_old else (1 if i < n_old + n_leave else 2)
        acc[s][c] = fn(acc[s][c], v) if c in acc[s] else v
    out = {}
    for c, v in acc[0].items():
        if c in acc[1]:
            v = inv(v, acc[1][c])
        if c in acc[2]:
            v = fn(v, acc[2][c])
        out[c] = v
    for c, v in acc[2].items():
        out.setdefault(c, v)
    return out


def _as_dict(out, present):
    return {c: out[c] for c in np.flatnonzero(present).tolist()}


@st.composite
def segments(draw, values):
    ng = draw(st.integers(1, 6))
    n = draw(st.integers(0, 30))
    codes = draw(st.lists(st.integers(0, ng - 1), min_size=n, max_size=n))
    vals = draw(st.lists(values, min_size=n, max_size=n))
    n_old = draw(st.integers(0, n))
    n_leave = draw(st.integers(0, n - n_old))
    return np.array(codes, dtype=np.int64), ng, vals, (n_old, n_leave)


@settings(max_examples=150, deadline=None)
@given(segments(st.integers(-2**62, 2**62)))
def test_int_sum_update_matches_dict_reference(seg):
    codes, ng, vals, counts = seg
    values = np.array(vals, dtype=np.int64)
    out, present = KW.window_update(codes, ng, values, counts)
    wrap = lambda x: (x + 2**63) % 2**64 - 2**63  # int64 arithmetic wraps, like the other kernels
    ref = reference(codes.tolist(), vals, counts, lambda a, b: wrap(a + b), lambda a, b: wrap(a - b))
    assert _as_dict(out, present) == ref
    assert out.dtype == np.int64


@settings(max_examples=150, deadline=None)
@given(segments(st.floats(allow_nan=True, allow_infinity=False, width=64)))
def test_float_sum_update_matches_dict_reference(seg):
    codes, ng, vals, counts = seg
    values = np.array(vals, dtype=np.float64)
    with np.errstate(all="ignore"):
        out, present = KW.window_update(codes, ng, values, counts)
        ref = reference(codes.tolist(), [np.float64(v) for v in vals], counts)
    got = _as_dict(out, present)
    assert got.keys() == ref.keys()
    for c in ref:
        assert (np.isnan(got[c]) and np.isnan(ref[c])) or got[c] == ref[c]


def test_edge_shapes():
    empty = np.empty(0, dtype=np.int64)
    out, present = KW.window_update(empty, 0, empty, (0, 0))
    assert len(out) == 0 and len(present) == 0
    # a key only leaving is not present; one only entering is; one in old keeps its zero
    out, present = KW.window_update(np.array([0, 1, 0, 2]), 3, np.array([5, 9, 5, 7]), (2, 2))
    assert present.tolist() == [True, True, False] and out[:2].tolist() == [0, 9]
    out, present = KW.window_update(np.array([0, 1, 2]), 3, np.array([5, 9, 7]), (1, 1))
    assert _as_dict(out, present) == {0: 5, 2: 7}
    out, present = KW.window_update(np.array([0, 0]), 1, np.array([3, 3]), (1, 1))
    assert _as_dict(out, present) == {0: 0}


_MUL = _config.jit(lambda a, b: a * b, cache=False)  # compiled once: a fresh lambda per example recompiles
_DIV = _config.jit(lambda a, b: a / b, cache=False)


@settings(max_examples=60, deadline=None)
@given(segments(st.floats(0.5, 4.0)))
def test_compiled_pair_matches_dict_reference(seg):
    codes, ng, vals, counts = seg
    out, present = KW.window_update_with(codes, ng, np.array(vals), counts, _MUL, _DIV)
    ref = reference(codes.tolist(), vals, counts, lambda a, b: a * b, lambda a, b: a / b)
    got = _as_dict(out, present)
    assert got.keys() == ref.keys()
    assert all(np.isclose(got[c], ref[c], rtol=1e-12) for c in ref)


def test_bad_input_is_refused_with_a_clear_message():
    codes = np.array([0, 1])
    with pytest.raises(ValueError, match="unknown op"):
        KW.window_update(codes, 2, np.array([1, 2]), (1, 0), op="max")
    with pytest.raises(ValueError, match="out of range"):
        KW.window_update(codes, 1, np.array([1, 2]), (1, 0))
    with pytest.raises(ValueError, match="segment counts"):
        KW.window_update(codes, 2, np.array([1, 2]), (2, 1))
    with pytest.raises(TypeError, match="int64 or float64"):
        KW.window_update(codes, 2, np.array(["a", "b"]), (1, 0))
    with pytest.raises(ValueError, match="one value per code"):
        KW.window_update(codes, 2, np.array([1]), (1, 0))
    if not numba.config.DISABLE_JIT:
        with pytest.raises(TypeError, match="Numba-compiled"):
            KW.window_update_with(codes, 2, np.array([1, 2]), (1, 0), lambda a, b: a + b, lambda a, b: a - b)


def test_warm_compiles_read_only_inputs():
    KW.warm()
    ro = np.array([1.0, 2.0])
    ro.flags.writeable = False
    out, present = KW.window_update(np.array([0, 0]), 1, ro, (1, 0))
    assert out.tolist() == [3.0]


@pytest.mark.parametrize("name", ["runnel.kernels.window", "runnel.dstream.window"])
def test_examples_run(name):
    import importlib
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


# --- window_update_dense: int64 keys by direct addressing -------------------------------------

def _split(codes, vals, counts, base, dtype):
    n_old, n_leave = counts
    cuts = [0, n_old, n_old + n_leave, len(codes)]
    keys = [np.array(codes[a:b], dtype=np.int64) + base for a, b in zip(cuts, cuts[1:])]
    return keys, [np.array(vals[a:b], dtype=dtype) for a, b in zip(cuts, cuts[1:])]


@settings(max_examples=150, deadline=None)
@given(segments(st.floats(allow_nan=True, allow_infinity=False, width=64)),
       st.sampled_from([0, -3, 10**15, -(2**63), 2**63 - 6]))
def test_dense_update_equals_the_code_kernel_bit_for_bit_and_is_sorted(seg, base):
    codes, ng, vals, counts = seg
    keys, values = _split(codes, vals, counts, base, np.float64)
    with np.errstate(all="ignore"):
        want_out, present = KW.window_update(codes, ng, np.array(vals, dtype=np.float64), counts)
        k, v = KW.window_update_dense(keys, values)
    want = {c + base: want_out[c] for c in np.flatnonzero(present).tolist()}
    assert k.tolist() == sorted(want)
    assert all(np.array(x).tobytes() == np.array(want[key]).tobytes() for key, x in zip(k.tolist(), v.tolist()))


@settings(max_examples=100, deadline=None)
@given(segments(st.integers(-2**40, 2**40)))
def test_dense_int_update_matches_dict_reference(seg):
    codes, ng, vals, counts = seg
    keys, values = _split(codes, vals, counts, 7, np.int64)
    k, v = KW.window_update_dense(keys, values)
    ref = reference(codes.tolist(), vals, counts)
    assert dict(zip(k.tolist(), v.tolist())) == {c + 7: x for c, x in ref.items()}
    assert v.dtype == np.int64


def test_dense_update_declines_spread_keys_and_refuses_bad_input():
    e, one = np.empty(0, np.int64), np.ones(1)
    assert KW.window_update_dense([np.array([0]), e, np.array([10**12])], [one, e.astype(float), one]) is None
    k, v = KW.window_update_dense([e, e, e], [e, e, e])
    assert len(k) == len(v) == 0
    with pytest.raises(TypeError, match="int64"):
        KW.window_update_dense([np.array([0.5]), e, e], [one, e, e])
    with pytest.raises(TypeError, match="all int64 or all float64"):
        KW.window_update_dense([np.array([0]), e, e], [one, e, e])
    with pytest.raises(ValueError, match="three segments"):
        KW.window_update_dense([e], [e])


# --- window_update_sorted: three sorted tables merged ------------------------------------------

def _unique_sorted(d: dict, base: int, dtype):
    keys = sorted(d)
    return np.array(keys, dtype=np.int64) + base, np.array([d[k] for k in keys], dtype=dtype)


@settings(max_examples=150, deadline=None)
@given(*[st.dictionaries(st.integers(0, 40), st.floats(allow_nan=True, allow_infinity=False, width=64), max_size=25)
         for _ in range(3)],
       st.sampled_from([0, -3, 10**15, -(2**63), 2**63 - 41]))
def test_sorted_update_is_the_dense_update_bit_for_bit(old, leaving, entering, base):
    keys, values = zip(*(_unique_sorted(d, base, np.float64) for d in (old, leaving, entering)))
    with np.errstate(all="ignore"):
        want = KW.window_update_dense(list(keys), list(values))
        got = KW.window_update_sorted(list(keys), list(values))
    assert got[0].tolist() == want[0].tolist()
    assert got[1].tobytes() == want[1].tobytes()  # NaN payloads and the sign of zero included


def test_sorted_update_declines_unsorted_or_repeated_keys():
    e, one = np.empty(0, np.int64), np.ones(2, np.int64)
    for bad in (np.array([3, 1]), np.array([2, 2])):
        assert KW.window_update_sorted([bad, e, e], [one, e, e]) is None
        assert KW.window_update_sorted([e, e, bad], [e, e, one]) is None
    with pytest.raises(TypeError, match="all int64 or all float64"):
        KW.window_update_sorted([np.array([0]), e, e], [np.ones(1), e, e])
