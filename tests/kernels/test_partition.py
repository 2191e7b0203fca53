from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import codes_and_n, int_keys

from runnel.kernels import hash_int64, partition_ids, scatter_order

SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(int_keys, st.integers(1, 17))
def test_partition_ids_is_hash_mod_n(keys, n):
    h = hash_int64(keys)
    ids = partition_ids(h, n)
    assert ids.dtype == np.int64
    assert ids.tolist() == [int(x) % n for x in h.tolist()]


@SETTINGS
@given(codes_and_n)
def test_scatter_order_matches_list_append(case):
    ids, n = case
    ids = np.array(ids, dtype=np.int64)
    order, bounds = scatter_order(ids, n)
    ref_order, ref_bounds = ref.scatter(ids.tolist(), n)
    np.testing.assert_array_equal(order, ref_order)
    np.testing.assert_array_equal(bounds, ref_bounds)
    assert bounds[0] == 0 and bounds[-1] == len(ids) and (np.diff(bounds) >= 0).all()
    assert sorted(order.tolist()) == list(range(len(ids)))
    for p in range(n):
        seg = order[bounds[p]:bounds[p + 1]]
        assert (ids[seg] == p).all() and (np.diff(seg) > 0).all()


def test_scatter_order_empty_and_zero_partitions():
    order, bounds = scatter_order(np.array([], dtype=np.int64), 0)
    assert order.tolist() == [] and bounds.tolist() == [0]
    order, bounds = scatter_order(np.array([], dtype=np.int64), 3)
    assert bounds.tolist() == [0, 0, 0, 0]


def test_partition_errors():
    with pytest.raises(ValueError, match=">= 1"):
        partition_ids(np.zeros(1, np.uint64), 0)
    with pytest.raises(TypeError, match="uint64"):
        partition_ids(np.zeros(1, np.int64), 2)
    with pytest.raises(ValueError, match="out of range"):
        scatter_order(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="out of range"):
        scatter_order(np.array([-1]), 3)
    with pytest.raises(TypeError, match="int"):
        partition_ids(np.zeros(1, np.uint64), 2.0)
