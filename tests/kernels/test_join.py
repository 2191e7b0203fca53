from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from runnel.kernels import JOIN_HOWS, cogroup_segments, factorize_int64, join_indices

SETTINGS = settings(max_examples=200, deadline=None)

sides = st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, n - 1), max_size=25),
    st.lists(st.integers(0, n - 1), max_size=25),
    st.just(n),
))


@SETTINGS
@given(sides, st.sampled_from(JOIN_HOWS))
def test_join_indices_matches_nested_loop(case, how):
    left, right, n = case
    li, ri = join_indices(np.array(left, np.int64), np.array(right, np.int64), n, how)
    ref_li, ref_ri = ref.join(left, right, n, how)
    np.testing.assert_array_equal(li, ref_li)
    np.testing.assert_array_equal(ri, ref_ri)


def test_join_on_keys_through_shared_factorization():
    lkeys = np.array([10, 20, 10, 30])
    rkeys = np.array([20, 40, 10, 20])
    codes, first = factorize_int64(np.concatenate([lkeys, rkeys]))
    lc, rc = codes[: len(lkeys)], codes[len(lkeys):]
    li, ri = join_indices(lc, rc, len(first), "full")
    pairs = [(None if i < 0 else lkeys[i].item(), None if j < 0 else rkeys[j].item()) for i, j in zip(li, ri)]
    assert pairs == [(10, 10), (10, 10), (20, 20), (20, 20), (30, None), (None, 40)]


def test_join_empty_sides():
    empty = np.array([], np.int64)
    for how in JOIN_HOWS:
        li, ri = join_indices(empty, empty, 0, how)
        assert li.tolist() == [] and ri.tolist() == []
    li, ri = join_indices(np.array([0, 0]), empty, 1, "left")
    assert li.tolist() == [0, 1] and ri.tolist() == [-1, -1]
    li, ri = join_indices(np.array([0, 0]), empty, 1, "inner")
    assert li.tolist() == []


def test_join_errors():
    with pytest.raises(ValueError, match="unknown join"):
        join_indices(np.array([0]), np.array([0]), 1, "cross")
    with pytest.raises(ValueError, match="out of range"):
        join_indices(np.array([0]), np.array([1]), 1, "inner")


def test_cogroup_segments():
    lo, lb, ro, rb = cogroup_segments(np.array([1, 0, 1]), np.array([1]), 2)
    assert lo.tolist() == [1, 0, 2] and lb.tolist() == [0, 1, 3]
    assert ro.tolist() == [0] and rb.tolist() == [0, 0, 1]
