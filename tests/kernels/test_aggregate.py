from __future__ import annotations

import math

import numba
import numpy as np
import pyarrow as pa
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import I64_MAX, I64_MIN, byte_keys, codes_and_n, float_keys, int_keys, string_keys
from test_hashing import pack_binary

from runnel.kernels import (
    REDUCE_OPS,
    factorize_arrow,
    factorize_binary,
    factorize_float64,
    factorize_int64,
    group_segments,
    hash_int64,
    reduce_codes,
    reduce_codes_with,
    reduce_int64_dense,
    reduce_int64_dense_partitioned,
    reduce_int64_sorted,
)
from runnel.kernels._config import jit

SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(int_keys)
def test_factorize_int64_matches_dict(keys):
    codes, first = factorize_int64(keys)
    ref_codes, ref_first = ref.factorize(keys.tolist())
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(first, ref_first)


@SETTINGS
@given(st.lists(st.integers(-3, 3), max_size=60), st.sampled_from([1, 2**20, 2**40 + 1]))
def test_factorize_int64_dense_and_hashed_paths_agree(small, scale):
    # scale 1 takes the direct-address path, large scales the hash table.
    keys = np.array(small, dtype=np.int64) * scale
    np.testing.assert_array_equal(factorize_int64(keys)[0], ref.factorize(small)[0])


def test_factorize_int64_grows_past_initial_table():
    keys = (np.arange(5000, dtype=np.int64) * 7919 * 2**33) % (2**61 - 1)
    keys = np.concatenate([keys, keys[::-1]])
    codes, first = factorize_int64(keys)
    assert len(first) == 5000
    np.testing.assert_array_equal(codes[:5000], np.arange(5000))
    np.testing.assert_array_equal(codes[5000:], np.arange(5000)[::-1])


def test_factorize_int64_extremes_and_dtypes():
    keys = np.array([I64_MAX, I64_MIN, I64_MAX, 0, I64_MIN])
    codes, first = factorize_int64(keys)
    assert codes.tolist() == [0, 1, 0, 2, 1] and first.tolist() == [0, 1, 3]
    assert factorize_int64(np.array([True, False, True]))[0].tolist() == [0, 1, 0]
    assert factorize_int64(np.array([], dtype=np.int32))[1].tolist() == []


@SETTINGS
@given(float_keys)
def test_factorize_float64_matches_dict_with_one_nan_group(keys):
    codes, first = factorize_float64(keys)
    ref_codes, ref_first = ref.factorize([ref.dict_key_float(x) for x in keys.tolist()])
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(first, ref_first)


@SETTINGS
@given(string_keys, st.sampled_from([pa.string(), pa.large_string(), pa.binary()]), st.integers(0, 5))
def test_factorize_arrow_matches_dict(values, typ, cut):
    if typ == pa.binary():
        values = [None if v is None else v.encode() for v in values]
    arr = pa.array(values, typ)
    codes, first = factorize_arrow(arr)
    ref_codes, ref_first = ref.factorize(values)  # None is one dict key: nulls form one group
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(first, ref_first)
    # Slices and chunks give the same groups as the plain array of the values.
    cut = min(cut, len(values))
    np.testing.assert_array_equal(factorize_arrow(arr.slice(cut))[0], ref.factorize(values[cut:])[0])
    chunked = pa.chunked_array([arr.slice(0, cut), arr.slice(cut)], typ)
    np.testing.assert_array_equal(factorize_arrow(chunked)[0], ref_codes)


@SETTINGS
@given(byte_keys.filter(bool), st.data(), st.binary(max_size=9), st.sampled_from([b"", b"\xff", b"\xaa" * 20]))
def test_factorize_binary_word_paths_match_dict(pool, data, prefix, suffix):
    # Repeats of short (word-compared) and long (byte-compared) strings,
    # including at the very end of a buffer that ends with the last value.
    values = data.draw(st.lists(st.sampled_from(pool), max_size=60))
    offsets, buf = pack_binary(values, prefix, suffix)
    validity = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))), dtype=bool)
    codes, first = factorize_binary(offsets.astype(np.int32), buf)
    ref_codes, ref_first = ref.factorize(values)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(first, ref_first)
    codes, first = factorize_binary(offsets, buf, validity)
    ref_codes, ref_first = ref.factorize([v if ok else None for v, ok in zip(values, validity)])
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(first, ref_first)


def test_factorize_binary_direct_layout():
    data = np.frombuffer(b"abab", dtype=np.uint8)
    codes, first = factorize_binary(np.array([0, 2, 2, 4, 4], dtype=np.int32), data,
                                    np.array([True, True, False, True]))
    # rows: "ab", "", null (its bytes are ignored), ""
    assert codes.tolist() == [0, 1, 2, 1] and first.tolist() == [0, 1, 2]


VALUES = st.one_of(
    st.lists(st.integers(I64_MIN, I64_MAX), min_size=60, max_size=60).map(lambda x: np.array(x, np.int64)),
    st.lists(st.floats(allow_nan=True, allow_infinity=False), min_size=60, max_size=60).map(np.array),
    st.lists(st.booleans(), min_size=60, max_size=60).map(lambda x: np.array(x, np.bool_)),
)


def _assert_same(got, expected, op, values):
    assert len(got) == len(expected)
    if op == "count" or (op == "sum" and values.dtype.kind in "bi"):
        assert got.dtype == np.int64
    if op == "mean":
        assert got.dtype == np.float64
    for g, e in zip(got.tolist(), expected):
        if values.dtype == np.int64 and op == "sum":
            e = (e + 2**63) % 2**64 - 2**63  # int64 sums wrap like numpy
        if op == "mean" and values.dtype.kind != "f":
            assert g == pytest.approx(e, rel=1e-12, abs=0)
        elif isinstance(e, float) and math.isnan(e):
            assert math.isnan(g)
        else:
            assert g == e and type(g) is type(e) or (op == "sum" and g == e)
            if isinstance(e, float) and e == 0:
                assert math.copysign(1, g) == math.copysign(1, e)  # -0.0 kept exactly


@SETTINGS
@given(codes_and_n, VALUES, st.sampled_from(REDUCE_OPS))
def test_reduce_codes_matches_python_fold(case, values, op):
    codes, n = case
    codes = np.array(codes, dtype=np.int64)
    values = values[: len(codes)]
    present = sorted(set(codes.tolist()))
    # Renumber so every group has rows (the reference folds non-empty groups).
    remap = {c: i for i, c in enumerate(present)}
    codes = np.array([remap[c] for c in codes.tolist()], dtype=np.int64)
    ngroups = len(present)
    got = reduce_codes(codes, ngroups, values, op)
    expected = ref.reduce(codes.tolist(), ngroups, values.tolist(), op)
    if op == "mean" and values.dtype == np.int64:
        # Our int64 sum wraps before dividing; compare where Python's exact
        # sum stays in range.
        sums = ref.reduce(codes.tolist(), ngroups, values.tolist(), "sum")
        keep = [I64_MIN <= s <= I64_MAX for s in sums]
        got = got[np.array(keep, dtype=bool)] if ngroups else got
        expected = [e for e, k in zip(expected, keep) if k]
    _assert_same(got, expected, op, values)


@SETTINGS
@given(st.lists(st.integers(-4, 4), max_size=60), st.sampled_from([0, 2**62]), VALUES,
       st.sampled_from(["sum", "min", "max", "count"]))
def test_reduce_int64_dense_is_factorize_then_reduce_bit_for_bit(small, offset, values, op):
    keys = np.array(small, dtype=np.int64) + offset  # far from 0: direct addressing relative to the minimum
    values = values[: len(keys)]
    keys = keys[: len(values)]
    got = reduce_int64_dense(keys, values, op)
    if len(keys) == 0:
        assert got is None
        return
    codes, first = factorize_int64(keys)
    expected = reduce_codes(codes, len(first), values, op)
    np.testing.assert_array_equal(got[0], keys[first])
    assert got[1].dtype == expected.dtype
    # bit for bit: NaN payloads and the sign of zero included
    np.testing.assert_array_equal(got[1].view(np.uint8), expected.view(np.uint8))


@SETTINGS
@given(st.lists(st.integers(-40, 40), max_size=80), st.sampled_from([0, -(2**62)]), VALUES,
       st.sampled_from(["sum", "min", "max", "count"]), st.integers(1, 5))
def test_reduce_int64_dense_partitioned_is_reduce_then_hash_partition(small, offset, values, op, n):
    keys = np.array(small, dtype=np.int64) + offset
    values = values[: len(keys)]
    keys = keys[: len(values)]
    got = reduce_int64_dense_partitioned(keys, values, op, n)
    if len(keys) == 0:
        assert got is None
        return
    k, v, bounds = got
    uk, uv = reduce_int64_dense(keys, values, op)
    ids = (hash_int64(uk) % np.uint64(n)).astype(np.int64)  # the shuffle rule, in first-appearance order
    assert bounds[0] == 0 and bounds[-1] == len(uk) and len(bounds) == n + 1
    for p in range(n):
        part = ids == p
        np.testing.assert_array_equal(k[bounds[p]:bounds[p + 1]], uk[part])
        np.testing.assert_array_equal(v[bounds[p]:bounds[p + 1]].view(np.uint8), uv[part].view(np.uint8))


def test_reduce_int64_dense_partitioned_checks_n_and_declines_wide_ranges():
    assert reduce_int64_dense_partitioned(np.array([0, 2**40]), np.array([1.0, 2.0]), "sum", 2) is None
    with pytest.raises(ValueError, match="n must be >= 1"):
        reduce_int64_dense_partitioned(np.array([1]), np.array([1.0]), "sum", 0)
    with pytest.raises(TypeError, match="n must be an int"):
        reduce_int64_dense_partitioned(np.array([1]), np.array([1.0]), "sum", 2.0)


def test_reduce_int64_dense_declines_wide_ranges_and_checks_its_arguments():
    assert reduce_int64_dense(np.array([0, 2**40]), np.array([1.0, 2.0]), "sum") is None
    with pytest.raises(ValueError, match="unknown op"):
        reduce_int64_dense(np.array([1]), np.array([1.0]), "mean")
    with pytest.raises(ValueError, match="needs values"):
        reduce_int64_dense(np.array([1]), None, "sum")
    with pytest.raises(ValueError, match="length"):
        reduce_int64_dense(np.array([1, 2]), np.array([1.0]), "sum")
    k, v = reduce_int64_dense(np.array([3, 3, 1], dtype=np.int32), None, "count")
    assert k.tolist() == [3, 1] and v.tolist() == [2, 1]


def test_reduce_codes_empty_groups_and_count_without_values():
    codes = np.array([2, 2, 0])
    assert reduce_codes(codes, 4, None, "count").tolist() == [1, 0, 2, 0]
    assert reduce_codes(codes, 4, np.array([1, 2, 3]), "sum").tolist() == [3, 0, 3, 0]
    mins = reduce_codes(codes, 4, np.array([1.0, 2.0, 3.0]), "min")
    assert mins[0] == 3.0 and math.isnan(mins[1]) and mins[2] == 1.0
    assert reduce_codes(np.array([], np.int64), 0, np.array([], np.float64), "mean").shape == (0,)


def test_reduce_codes_int64_sum_wraps_like_numpy():
    got = reduce_codes(np.array([0, 0]), 1, np.array([I64_MAX, 1]), "sum")
    assert got.tolist() == [I64_MIN]


def test_reduce_codes_errors():
    with pytest.raises(ValueError, match="unknown op"):
        reduce_codes(np.array([0]), 1, np.array([1]), "median")
    with pytest.raises(ValueError, match="out of range"):
        reduce_codes(np.array([0, 1]), 1, np.array([1, 2]), "sum")
    with pytest.raises(ValueError, match="length"):
        reduce_codes(np.array([0, 0]), 1, np.array([1]), "sum")
    with pytest.raises(ValueError, match="needs values"):
        reduce_codes(np.array([0]), 1, None, "sum")
    with pytest.raises(TypeError, match="values must be"):
        reduce_codes(np.array([0]), 1, np.array(["x"]), "sum")
    with pytest.raises(ValueError, match=">= 0"):
        reduce_codes(np.array([], np.int64), -1, None, "count")


@jit(cache=False)
def _sub(a, b):
    return a - b


@numba.njit
def _keep_larger_abs(a, b):
    return a if abs(a) >= abs(b) else b


@SETTINGS
@given(codes_and_n, st.lists(st.integers(-1000, 1000), min_size=60, max_size=60))
def test_reduce_codes_with_folds_left_in_arrival_order(case, values):
    codes, n = case
    codes = np.array(codes, dtype=np.int64)
    values = np.array(values[: len(codes)], dtype=np.int64)
    got = reduce_codes_with(codes, n, values, _sub)
    groups = ref.group_values(codes.tolist(), n, values.tolist())
    for c, g in enumerate(groups):
        expected = 0 if not g else g[0]
        for v in g[1:]:
            expected = expected - v  # non-commutative: order matters
        assert got[c] == expected
    floats = values.astype(np.float64)
    got_f = reduce_codes_with(codes, n, floats, _keep_larger_abs)
    assert got_f.dtype == np.float64


def test_reduce_codes_with_refuses_plain_python():
    if numba.config.DISABLE_JIT:
        pytest.skip("every function is plain Python with NUMBA_DISABLE_JIT")
    with pytest.raises(TypeError, match="Numba-compiled"):
        reduce_codes_with(np.array([0]), 1, np.array([1]), lambda a, b: a + b)


@SETTINGS
@given(codes_and_n)
def test_group_segments_is_scatter_by_code(case):
    codes, n = case
    order, bounds = group_segments(np.array(codes, dtype=np.int64), n)
    ref_order, ref_bounds = ref.scatter(codes, n)
    np.testing.assert_array_equal(order, ref_order)
    np.testing.assert_array_equal(bounds, ref_bounds)


def test_merging_partials_is_factorize_then_reduce_again():
    keys = np.array([1, 2, 1, 3, 2, 1])
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    parts = [(keys[:3], values[:3]), (keys[3:], values[3:])]
    pkeys, psums = [], []
    for k, v in parts:
        codes, first = factorize_int64(k)
        pkeys.append(k[first])
        psums.append(reduce_codes(codes, len(first), v, "sum"))
    codes, first = factorize_int64(np.concatenate(pkeys))
    merged = reduce_codes(codes, len(first), np.concatenate(psums), "sum")
    assert dict(zip(np.concatenate(pkeys)[first].tolist(), merged.tolist())) == {1: 10.0, 2: 7.0, 3: 4.0}


@SETTINGS
@given(st.lists(st.lists(st.integers(-40, 40), max_size=30), min_size=1, max_size=3),
       st.sampled_from([0, 2**62]), VALUES, st.sampled_from(["sum", "min", "max", "count"]), st.integers(1, 4))
def test_reduce_int64_sorted_is_the_dense_reduce_sorted_by_key_in_hash_partitions(segs, offset, values, op, n):
    keys = [np.array(s, dtype=np.int64) + offset for s in segs]
    cuts = np.cumsum([0] + [len(k) for k in keys])
    if cuts[-1] > len(values):
        return
    vals = [values[a:b] for a, b in zip(cuts, cuts[1:])]
    got = reduce_int64_sorted(keys, None if op == "count" else vals, op, n)
    if cuts[-1] == 0:
        assert got is None
        return
    k, v, bounds = got
    uk, uv = reduce_int64_dense(np.concatenate(keys), values[:cuts[-1]], op)  # folded in the same row order
    order = np.argsort(uk, kind="stable")
    ids = (hash_int64(uk[order]) % np.uint64(n)).astype(np.int64)
    assert v.dtype == uv.dtype and bounds[0] == 0 and bounds[-1] == len(uk)
    for p in range(n):
        np.testing.assert_array_equal(k[bounds[p]:bounds[p + 1]], uk[order][ids == p])
        np.testing.assert_array_equal(v[bounds[p]:bounds[p + 1]].view(np.uint8), uv[order][ids == p].view(np.uint8))


def test_reduce_int64_sorted_declines_wide_ranges_and_checks_its_arguments():
    assert reduce_int64_sorted([np.array([0, 2**40])], [np.array([1.0, 2.0])], "sum") is None
    assert reduce_int64_sorted([np.empty(0, np.int64)], [np.empty(0)], "sum") is None
    with pytest.raises(TypeError, match="one dtype"):
        reduce_int64_sorted([np.array([1]), np.array([2])], [np.array([1.0]), np.array([1])], "sum")
    with pytest.raises(ValueError, match="segments"):
        reduce_int64_sorted([np.array([1])], [np.array([1.0]), np.array([1.0])], "sum")
    with pytest.raises(ValueError, match="needs values"):
        reduce_int64_sorted([np.array([1])], None, "max")
