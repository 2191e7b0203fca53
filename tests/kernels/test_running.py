"""Running sums per group: group_cumsum against a plain per-group loop, segment_rolling_sum against pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runnel.kernels import group_cumsum, group_segments, segment_rolling_sum

#: magnitudes far apart: a sum across groups loses the small groups' values entirely
value_st = st.one_of(st.just(np.nan), st.sampled_from([1e17, -1e17, 1.0, 2.0, 0.5, -3.0]),
                     st.floats(-1e3, 1e3, allow_nan=False))
rows_st = st.lists(st.tuples(st.integers(0, 3), value_st), min_size=0, max_size=40)


@settings(max_examples=150, deadline=None)
@given(rows=rows_st, start=st.lists(st.sampled_from([0.0, 1e17, -2.0]), min_size=4, max_size=4))
def test_group_cumsum_is_a_running_sum_per_group(rows, start):
    codes = np.array([c for c, _ in rows], dtype=np.int64)
    values = np.array([v for _, v in rows], dtype=np.float64)
    out, totals = group_cumsum(codes, values, np.array(start))
    acc = list(start)
    want = []
    for c, v in rows:
        if v == v:
            acc[c] += v
        want.append(acc[c])
    assert out.tolist() == want
    assert totals.tolist() == acc


@settings(max_examples=150, deadline=None)
@given(rows=rows_st, window=st.integers(1, 5))
def test_segment_rolling_sum_equals_pandas_rolling_per_group(rows, window):
    codes = np.array([c for c, _ in rows], dtype=np.int64)
    values = np.array([v for _, v in rows], dtype=np.float64)
    order, bounds = group_segments(codes, 4)
    sums, nobs = segment_rolling_sum(values[order], bounds, window)
    s = pd.Series(values[order])
    by = pd.Series(codes[order])
    want = s.groupby(by).rolling(window, min_periods=window).sum().reset_index(level=0, drop=True).sort_index()
    full = nobs == window
    got = np.where(full, sums, np.nan)
    np.testing.assert_allclose(got, want.to_numpy(), rtol=1e-12, atol=0)
    cnt = s.notna().astype(int).groupby(by).rolling(window, min_periods=1).sum()
    assert nobs.tolist() == cnt.reset_index(level=0, drop=True).sort_index().astype(int).tolist()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="window must be at least 1"):
        segment_rolling_sum(np.zeros(2), np.array([0, 2]), 0)
    with pytest.raises(ValueError, match="bounds must rise"):
        segment_rolling_sum(np.zeros(2), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="codes has length"):
        group_cumsum(np.array([0]), np.zeros(2), np.zeros(1))
    with pytest.raises(ValueError, match="out of range"):
        group_cumsum(np.array([1]), np.zeros(1), np.zeros(1))
