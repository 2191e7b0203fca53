"""Exponentially weighted moments per group, continued from a carried state.

pandas' ``groupby(key)[v].ewm(com=...).mean()`` runs one recursion per group
over the group's values in order. A stream sees each group's values a batch
at a time, so the recursion's variables are kept per group between calls
(the *state*, one row per group) and each call continues them::

    state before     rows of the batch (codes, values)     state after
    c0: s0           0 x0, 1 x1, 0 x2                      c0: s0 . x0 . x2
    c1: s1                                                 c1: s1 . x1
    c2: fresh                                              c2: fresh

A call over all the data at once and calls over any split of it (batch
boundaries anywhere) give the same outputs bit for bit: the loop body is
pandas' (``pandas/_libs/window/aggregations.pyx``: ``ewm`` and ``ewmcov``,
with the first row of a group folded into the loop from a fresh state), with
the same floating-point operations in the same order, and no fastmath.

State layouts (float64 columns, :data:`STATE_WIDTH`)::

    mean, sum   weighted, old_wt, nobs
    var, std    mean, cov, sum_wt, sum_wt2, old_wt, nobs

A fresh group's state is ``NaN, 1, 0`` / ``NaN, 0, 1, 1, 1, 0``
(:func:`ewm_state`): NaN means "no observation yet", and the first observed
value becomes the mean.
"""

from __future__ import annotations

import numpy as np

from ._config import jit
from .hashing import _as_1d

__all__ = ["EWM_OPS", "STATE_WIDTH", "ewm_state", "ewm_update", "warm"]

#: The moments :func:`ewm_update` computes.
EWM_OPS = ("mean", "sum", "var", "std")

#: Columns of a group's state for each op.
STATE_WIDTH = {"mean": 3, "sum": 3, "var": 6, "std": 6}

_FRESH = {3: (np.nan, 1.0, 0.0), 6: (np.nan, 0.0, 1.0, 1.0, 1.0, 0.0)}


@jit
def _ewm_mean_worker(codes, x, state, settings, out):
    # settings = (old_wt_factor, new_wt, adjust, ignore_na, min_periods, normalize); normalize False: the sum
    f, new_wt, adjust, ignore_na, minp, normalize = settings
    for i in range(len(codes)):
        c = codes[i]
        weighted = state[c, 0]
        old_wt = state[c, 1]
        nobs = state[c, 2]
        cur = x[i]
        obs = cur == cur
        if obs:
            nobs += 1.0
        if weighted == weighted:
            if obs or not ignore_na:
                if normalize:
                    old_wt *= f
                else:
                    weighted = f * weighted
                if obs:
                    if normalize:
                        if weighted != cur:  # as pandas: a constant series stays exactly constant
                            weighted = old_wt * weighted + new_wt * cur
                            weighted /= (old_wt + new_wt)
                        if adjust:
                            old_wt += new_wt
                        else:
                            old_wt = 1.0
                    else:
                        weighted += cur
        elif obs:
            weighted = cur
        out[i] = weighted if nobs >= minp else np.nan
        state[c, 0] = weighted
        state[c, 1] = old_wt
        state[c, 2] = nobs


@jit
def _ewm_var_worker(codes, x, state, settings, out):
    # settings = (old_wt_factor, new_wt, adjust, ignore_na, min_periods, bias, root); root: the std
    f, new_wt, adjust, ignore_na, minp, bias, root = settings
    for i in range(len(codes)):
        c = codes[i]
        mean = state[c, 0]
        cov = state[c, 1]
        sum_wt = state[c, 2]
        sum_wt2 = state[c, 3]
        old_wt = state[c, 4]
        nobs = state[c, 5]
        cur = x[i]
        obs = cur == cur
        if obs:
            nobs += 1.0
        if mean == mean:
            if obs or not ignore_na:
                sum_wt *= f
                sum_wt2 *= (f * f)
                old_wt *= f
                if obs:
                    old_mean = mean
                    if mean != cur:
                        mean = ((old_wt * old_mean) + (new_wt * cur)) / (old_wt + new_wt)
                    cov = ((old_wt * (cov + ((old_mean - mean) * (old_mean - mean))))
                           + (new_wt * ((cur - mean) * (cur - mean)))) / (old_wt + new_wt)
                    sum_wt += new_wt
                    sum_wt2 += (new_wt * new_wt)
                    old_wt += new_wt
                    if not adjust:
                        sum_wt /= old_wt
                        sum_wt2 /= (old_wt * old_wt)
                        old_wt = 1.0
        elif obs:
            mean = cur
        v = np.nan
        if nobs >= minp:
            if bias:
                v = cov
            else:
                numerator = sum_wt * sum_wt
                denominator = numerator - sum_wt2
                if denominator > 0:
                    v = (numerator / denominator) * cov
        if root and v == v:
            v = np.sqrt(v) if v > 0 else 0.0   # pandas' zsqrt: a negative variance is 0
        out[i] = v
        state[c, 0] = mean
        state[c, 1] = cov
        state[c, 2] = sum_wt
        state[c, 3] = sum_wt2
        state[c, 4] = old_wt
        state[c, 5] = nobs


def ewm_state(ngroups: int, op: str) -> np.ndarray:
    """A fresh state for ``ngroups`` groups: shape ``(ngroups, STATE_WIDTH[op])``, float64.

    Examples
    --------
    >>> from runnel.kernels import ewm_state
    >>> ewm_state(2, "mean").tolist()
    [[nan, 1.0, 0.0], [nan, 1.0, 0.0]]
    """
    _check_op(op)
    w = STATE_WIDTH[op]
    return np.tile(np.array(_FRESH[w], dtype=np.float64), (int(ngroups), 1))


def _check_op(op):
    if op not in EWM_OPS:
        raise ValueError(f"unknown ewm op {op!r}; expected one of {EWM_OPS}")


def ewm_update(codes, values, state, op, com, adjust=True, ignore_na=False, min_periods=1, bias=False):
    """Exponentially weighted ``op`` of each row's group so far, continuing ``state``.

    Parameters
    ----------
    codes : numpy.ndarray
        Integer group code of each row, in ``[0, len(state))``; rows in arrival order.
    values : numpy.ndarray
        The rows' values (converted to float64; NaN is a missing value).
    state : numpy.ndarray
        float64 ``(ngroups, STATE_WIDTH[op])``: each group's recursion so far
        (:func:`ewm_state` for groups not seen before). Not modified.
    op : str
        ``"mean"``, ``"sum"``, ``"var"`` or ``"std"``.
    com : float
        Center of mass (``alpha = 1 / (1 + com)``), at least 0.
    adjust, ignore_na, min_periods, bias
        As in ``pandas.DataFrame.ewm`` (``min_periods`` at least 1; ``bias``
        for var and std only). ``sum`` needs ``adjust=True``.

    Returns
    -------
    out, new_state : numpy.ndarray
        float64 result per row, and the state after the rows.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import ewm_state, ewm_update
    >>> out, st = ewm_update(np.array([0, 0]), np.array([1.0, 2.0]), ewm_state(1, "mean"), "mean", 1.0)
    >>> out.tolist()
    [1.0, 1.6666666666666667]
    >>> ewm_update(np.array([0]), np.array([4.0]), st, "mean", 1.0)[0].tolist()
    [3.0]
    """
    _check_op(op)
    codes = _as_1d(codes, "codes")
    if codes.dtype.kind not in "iu":
        raise TypeError(f"codes must have an integer dtype, got {codes.dtype}")
    codes = codes.astype(np.int64, copy=False)
    values = _as_1d(values, "values")
    if values.shape[0] != codes.shape[0]:
        raise ValueError(f"values has length {values.shape[0]}, codes has {codes.shape[0]}")
    if values.dtype.kind not in "biuf":
        raise TypeError(f"values must be numeric, got {values.dtype}")
    if not isinstance(state, np.ndarray) or state.ndim != 2 or state.shape[1] != STATE_WIDTH[op]:
        raise ValueError(f"state must be a 2-d array with {STATE_WIDTH[op]} columns for {op!r}, got "
                         f"{getattr(state, 'shape', type(state).__name__)}")
    if len(codes) and (codes.min() < 0 or codes.max() >= state.shape[0]):
        raise ValueError(f"codes must be in [0, {state.shape[0]})")
    com = float(com)
    if not com >= 0:
        raise ValueError(f"com must be at least 0, got {com}")
    if op == "sum" and not adjust:
        raise NotImplementedError("an ewm sum needs adjust=True (as pandas)")
    alpha = 1.0 / (1.0 + com)
    f, new_wt = 1.0 - alpha, (1.0 if adjust else alpha)
    x = values.astype(np.float64, copy=False)
    new = np.array(state, dtype=np.float64, order="C", copy=True)
    out = np.empty(len(codes), dtype=np.float64)
    minp = float(max(int(min_periods), 1))
    if STATE_WIDTH[op] == 3:
        _ewm_mean_worker(codes, x, new, (f, new_wt, bool(adjust), bool(ignore_na), minp, op == "mean"), out)
    else:
        _ewm_var_worker(codes, x, new, (f, new_wt, bool(adjust), bool(ignore_na), minp, bool(bias), op == "std"),
                        out)
    return out, new


def warm():
    """Compile the ewm kernels (float64 values, writeable and read-only)."""
    codes = np.array([0, 1, 0], dtype=np.int64)
    v = np.array([1.0, np.nan, 3.0])
    ro = v.copy()
    ro.flags.writeable = False
    for values in (v, ro):
        for op in ("mean", "var"):
            ewm_update(codes, values, ewm_state(2, op), op, 1.0)
