"""ewm_update continues pandas' exponentially weighted recursion per group, from any split of the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from runnel.kernels import EWM_OPS, ewm_state, ewm_update


def pandas_ewm(codes, values, op, com, adjust, ignore_na, min_periods, bias):
    """pandas' groupby(code).ewm(...).<op>() per row, in row order."""
    s = pd.Series(values, dtype="float64")
    e = s.groupby(codes).ewm(com=com, adjust=adjust, ignore_na=ignore_na, min_periods=min_periods)
    r = getattr(e, op)(bias=bias) if op in ("var", "std") else getattr(e, op)()
    return r.reset_index(level=0, drop=True).sort_index().to_numpy()


#: pandas >= 3.0 gives adjust=False with com == 1 (alpha 0.5) a weight of its own after a NaN gap
#: (``new_wt = 1 - old_wt``; pandas-dev/pandas#66523, an open regression), for that one com only
PANDAS_COM1_GAPS = int(pd.__version__.split(".")[0]) >= 3

values_st = st.lists(st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.just(np.nan),
                               st.sampled_from([0.0, 1.0, -2.5])), min_size=0, max_size=40)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), values=values_st, op=st.sampled_from(EWM_OPS), com=st.sampled_from([0.0, 0.5, 1.0, 9.0]),
       adjust=st.booleans(), ignore_na=st.booleans(), min_periods=st.integers(0, 3), bias=st.booleans())
def test_any_split_equals_pandas_on_all_rows(data, values, op, com, adjust, ignore_na, min_periods, bias):
    if op == "sum":
        adjust = True
    # pandas 3.0 weighs a value after a NaN gap differently for com == 1 alone (see the next test)
    assume(not (PANDAS_COM1_GAPS and com == 1.0 and not adjust and not ignore_na and op in ("mean", "sum")
                and any(v != v for v in values)))
    n = len(values)
    codes = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=np.int64)
    x = np.array(values, dtype=np.float64)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, n), max_size=4))) | {0, n})
    state, outs = ewm_state(3, op), []
    for a, b in zip(cuts[:-1], cuts[1:]):
        out, state = ewm_update(codes[a:b], x[a:b], state, op, com, adjust, ignore_na, min_periods, bias)
        outs.append(out)
    got = np.concatenate(outs) if outs else np.empty(0)
    want = pandas_ewm(codes, x, op, com, adjust, ignore_na, min_periods, bias) if n else np.empty(0)
    np.testing.assert_array_equal(got, want)   # the same operations in the same order: bit for bit


def test_after_a_nan_gap_every_com_follows_the_documented_recursion():
    # y = ((1 - a)^gap * y_prev + a * x) / ((1 - a)^gap + a) with adjust=False, ignore_na=False: what pandas
    # computes for every com but 1 (pandas 3 special-cases com == 1; 2.x does not)
    x = np.array([1.0, np.nan, 0.0, 2.0])
    for com in (0.5, 1.0, 3.0):
        a = 1 / (1 + com)
        y2 = (1 - a) ** 2 * 1.0 / ((1 - a) ** 2 + a)
        want = [1.0, 1.0, y2, (1 - a) * y2 + a * 2.0]
        out, _ = ewm_update(np.zeros(4, dtype=np.int64), x, ewm_state(1, "mean"), "mean", com, adjust=False)
        np.testing.assert_allclose(out, want, rtol=1e-15)
        if com != 1.0 or not PANDAS_COM1_GAPS:
            np.testing.assert_array_equal(out, pd.Series(x).ewm(com=com, adjust=False).mean().to_numpy())


def test_state_is_not_modified_and_int_values_are_converted():
    state = ewm_state(1, "mean")
    before = state.copy()
    out, new = ewm_update(np.array([0, 0, 0]), np.array([1, 2, 3]), state, "mean", 1.0)
    np.testing.assert_array_equal(state, before)
    np.testing.assert_allclose(out, pd.Series([1.0, 2, 3]).ewm(com=1.0).mean())
    assert new[0, 2] == 3    # observations so far


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown ewm op"):
        ewm_update(np.array([0]), np.array([1.0]), ewm_state(1, "mean"), "median", 1.0)
    with pytest.raises(ValueError, match="codes must be in"):
        ewm_update(np.array([1]), np.array([1.0]), ewm_state(1, "mean"), "mean", 1.0)
    with pytest.raises(ValueError, match="6 columns"):
        ewm_update(np.array([0]), np.array([1.0]), ewm_state(1, "mean"), "var", 1.0)
    with pytest.raises(ValueError, match="values has length"):
        ewm_update(np.array([0, 0]), np.array([1.0]), ewm_state(1, "mean"), "mean", 1.0)
    with pytest.raises(NotImplementedError, match="adjust=True"):
        ewm_update(np.array([0]), np.array([1.0]), ewm_state(1, "sum"), "sum", 1.0, adjust=False)
    with pytest.raises(ValueError, match="com must be"):
        ewm_update(np.array([0]), np.array([1.0]), ewm_state(1, "mean"), "mean", -1.0)
