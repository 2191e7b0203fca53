"""Running sums per group: cumulative sums and rolling-window sums that never cross groups.

A cumulative sum over all rows sorted by group, minus each group's offset,
lets one group's magnitude leak into another's result (``1e17`` in group
``a`` swallows group ``b``'s ``1 + 2``); these kernels keep one running sum
per group instead::

    codes   0     1    1    1         group_cumsum, start 0:  1e17  1.0  3.0  7.0
    values  1e17  1.0  2.0  4.0       (a sum over all rows would give 1e17 0.0 0.0 0.0)

``segment_rolling_sum`` is pandas' fixed-window ``roll_sum``
(``pandas/_libs/window/aggregations.pyx``: Kahan-compensated add and remove,
a run of equal values as value x count) over each segment of rows sorted by
group, restarting at every segment.
"""

from __future__ import annotations

import numpy as np

from ._config import jit
from .hashing import _as_1d

__all__ = ["group_cumsum", "segment_rolling_sum", "warm"]


@jit
def _group_cumsum_worker(codes, values, acc, out):
    ng = acc.shape[0]
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= ng:
            raise ValueError("codes out of range [0, ngroups)")
        v = values[i]
        if v == v:
            acc[c] += v
        out[i] = acc[c]


def group_cumsum(codes, values, start):
    """Each row's group total so far, NaN values skipped, continuing ``start`` (float64).

    Parameters
    ----------
    codes : numpy.ndarray
        int64 group code of each row, in ``[0, len(start))``; rows in arrival order.
    values : numpy.ndarray
        The rows' values (converted to float64; NaN adds nothing).
    start : numpy.ndarray
        float64 total of each group before these rows. Not modified.

    Returns
    -------
    out, totals : numpy.ndarray
        float64 running total at each row (a NaN row gets its group's total so
        far: the caller masks it), and each group's total after the rows.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import group_cumsum
    >>> out, totals = group_cumsum(np.array([0, 1, 1, 1]), np.array([1e17, 1.0, 2.0, 4.0]), np.zeros(2))
    >>> out.tolist(), totals.tolist()
    ([1e+17, 1.0, 3.0, 7.0], [1e+17, 7.0])
    """
    codes = _as_1d(codes, "codes").astype(np.int64, copy=False)
    values = _as_1d(values, "values").astype(np.float64, copy=False)
    if len(codes) != len(values):
        raise ValueError(f"codes has length {len(codes)}, values has {len(values)}")
    acc = np.array(start, dtype=np.float64, copy=True).reshape(-1)
    out = np.empty(len(codes), dtype=np.float64)
    _group_cumsum_worker(codes, values, acc, out)
    return out, acc


@jit
def _segment_rolling_sum_worker(values, bounds, window, sums, nobs_out):
    for c in range(bounds.shape[0] - 1):
        a = bounds[c]
        b = bounds[c + 1]
        sum_x = 0.0
        comp_add = 0.0
        comp_remove = 0.0
        nobs = 0
        same = 0
        prev = values[a] if b > a else 0.0
        for i in range(a, b):
            lo = i - window             # the row leaving the window [i - window + 1, i]
            if lo >= a:
                v = values[lo]
                if v == v:
                    nobs -= 1
                    y = -v - comp_remove
                    t = sum_x + y
                    comp_remove = t - sum_x - y
                    sum_x = t
            v = values[i]
            if v == v:
                nobs += 1
                y = v - comp_add
                t = sum_x + y
                comp_add = t - sum_x - y
                sum_x = t
                if v == prev:
                    same += 1
                else:
                    same = 1
                prev = v
            nobs_out[i] = nobs
            if nobs == 0:
                sums[i] = 0.0
            elif same >= nobs:          # as pandas: n equal values sum to value * n exactly
                sums[i] = prev * nobs
            else:
                sums[i] = sum_x


def segment_rolling_sum(values, bounds, window):
    """The sum and the count of non-NaN values of each row's last ``window`` rows within its segment.

    Parameters
    ----------
    values : numpy.ndarray
        float64 values, each group's rows contiguous (``group_segments`` order).
    bounds : numpy.ndarray
        int64 segment bounds: segment ``c`` is ``values[bounds[c]:bounds[c + 1]]``.
    window : int
        Rows per window, at least 1 (a segment's first rows have shorter windows).

    Returns
    -------
    sums, nobs : numpy.ndarray
        float64 window sums (0 for a window without values) and int64 counts of
        the values in each window.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import segment_rolling_sum
    >>> sums, nobs = segment_rolling_sum(np.array([1e17, 1.0, 2.0, 4.0]), np.array([0, 1, 4]), 2)
    >>> sums.tolist(), nobs.tolist()
    ([1e+17, 1.0, 3.0, 6.0], [1, 1, 2, 2])
    """
    values = _as_1d(values, "values").astype(np.float64, copy=False)
    bounds = _as_1d(bounds, "bounds").astype(np.int64, copy=False)
    window = int(window)
    if window < 1:
        raise ValueError(f"window must be at least 1 row, got {window}")
    if len(bounds) == 0 or bounds[0] != 0 or bounds[-1] != len(values) or np.any(np.diff(bounds) < 0):
        raise ValueError(f"bounds must rise from 0 to len(values) ({len(values)})")
    sums = np.empty(len(values), dtype=np.float64)
    nobs = np.empty(len(values), dtype=np.int64)
    _segment_rolling_sum_worker(values, bounds, window, sums, nobs)
    return sums, nobs


def warm() -> None:
    """Compile the running-sum kernels (writeable and read-only inputs)."""
    v = np.array([1.0, np.nan, 3.0])
    ro = v.copy()
    ro.flags.writeable = False
    codes = np.array([0, 1, 0], dtype=np.int64)
    for values in (v, ro):
        group_cumsum(codes, values, np.zeros(2))
        segment_rolling_sum(values, np.array([0, 2, 3], dtype=np.int64), 2)
