"""map_values / filter_mask against a plain Python loop."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runnel.kernels import filter_mask, map_values

SETTINGS = settings(max_examples=60, deadline=None)
ints = st.lists(st.integers(-(2**40), 2**40), max_size=200)
floats = st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=200)

affine = numba.njit(lambda x: 3 * x - 7)
half = numba.njit(lambda x: x / 2)
is_even = numba.njit(lambda x: x % 2 == 0)
positive = numba.njit(lambda x: x > 0)


@SETTINGS
@given(ints)
def test_map_values_on_ints_is_a_python_map(xs):
    a = np.array(xs, dtype=np.int64)
    assert map_values(a, affine, np.int64).tolist() == [3 * x - 7 for x in xs]


@SETTINGS
@given(floats)
def test_map_values_on_floats_keeps_nan_and_signs(xs):
    got = map_values(np.array(xs, dtype=np.float64), half, np.float64)
    want = np.array([x / 2 for x in xs], dtype=np.float64)
    np.testing.assert_array_equal(got, want)


@SETTINGS
@given(ints)
def test_filter_mask_is_a_python_predicate(xs):
    assert filter_mask(np.array(xs, dtype=np.int64), is_even).tolist() == [x % 2 == 0 for x in xs]


@SETTINGS
@given(floats)
def test_filter_mask_on_floats(xs):
    assert filter_mask(np.array(xs, dtype=np.float64), positive).tolist() == [x > 0 for x in xs]


def test_read_only_input_is_accepted():
    a = np.arange(5)
    a.flags.writeable = False
    assert map_values(a, affine, np.int64).tolist() == [3 * x - 7 for x in range(5)]


def test_plain_python_functions_and_non_numeric_columns_are_refused():
    with pytest.raises(TypeError, match="Numba-compiled"):
        map_values(np.arange(3), lambda x: x, np.int64)
    with pytest.raises(TypeError, match="numeric"):
        filter_mask(np.array(["a"], dtype=object), is_even)
