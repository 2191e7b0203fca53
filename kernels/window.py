"""Sliding-window kernels: keyed merge/subtract of per-slide partial aggregates.

An incremental window update is one pass over three kinds of rows that the
engine concatenates and factorizes into group codes (one code per key)::

    rows:   [ old window | leaving partials | entering partials ]
    codes:  [ 0 3 1 2    | 1 3              | 0 4 4             ]

Per key the kernel folds each segment (leaving/entering partials of several
slices fold with ``fn``), then combines them exactly as PySpark's
``PythonReducedWindowedDStream`` does::

    new = fn(inv(old, fold(leaving)), fold(entering))

    key only in old              -> inv(old, leaving) or old (kept, even at 0)
    key only in entering         -> fold(entering)
    leaving key absent from old  -> ignored (PySpark's leftOuterJoin)

``window_update`` is the add/subtract kernel (``op="sum"``, int64 or
float64; cached); ``window_update_with`` takes any Numba-compiled pair
``(fn, inv)`` and, like ``aggregate.reduce_codes_with``, is not disk-cached
(a dispatcher argument is typed by the function's identity).

``window_update_dense`` is ``window_update`` for int64 keys in a small range
(W3's 100k keys): no codes, each key has its slot ``key - lo`` in three
accumulators, and scanning the slots in order gives the new window sorted by
key, which makes the next slide's pass over the old window sequential.
"""

from __future__ import annotations

import numpy as np

from ._config import is_jitted, jit
from .aggregate import _check_codes

__all__ = ["window_update", "window_update_with", "window_update_dense", "window_update_sorted", "WINDOW_OPS", "warm"]

#: Invertible built-in pairs of :func:`window_update`.
WINDOW_OPS = ("sum",)


@jit
def _sum_update_worker(codes, values, bounds, acc, seen, out, present):
    # acc/seen rows: 0 old window, 1 leaving, 2 entering (one pass over rows,
    # then one over groups; every slot written is this call's own buffer).
    ng = out.shape[0]
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= ng:
            raise ValueError("codes out of range [0, ngroups)")
        s = 0 if i < bounds[0] else (1 if i < bounds[1] else 2)
        if seen[s, c]:
            acc[s, c] = acc[s, c] + values[i]
        else:
            seen[s, c] = True
            acc[s, c] = values[i]
    for c in range(ng):
        if seen[0, c]:
            x = acc[0, c]
            if seen[1, c]:
                x = x - acc[1, c]
            if seen[2, c]:
                x = x + acc[2, c]
            out[c] = x
            present[c] = True
        elif seen[2, c]:
            out[c] = acc[2, c]
            present[c] = True


# Not cached, as aggregate._fold_worker: typed by the identity of fn and inv.
@jit(cache=False)
def _fn_update_worker(codes, values, bounds, acc, seen, out, present, fn, inv):
    ng = out.shape[0]
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= ng:
            raise ValueError("codes out of range [0, ngroups)")
        s = 0 if i < bounds[0] else (1 if i < bounds[1] else 2)
        if seen[s, c]:
            acc[s, c] = fn(acc[s, c], values[i])
        else:
            seen[s, c] = True
            acc[s, c] = values[i]
    for c in range(ng):
        if seen[0, c]:
            x = acc[0, c]
            if seen[1, c]:
                x = inv(x, acc[1, c])
            if seen[2, c]:
                x = fn(x, acc[2, c])
            out[c] = x
            present[c] = True
        elif seen[2, c]:
            out[c] = acc[2, c]
            present[c] = True


@jit
def _dense_sum_fold_worker(keys, values, lo, acc, seen):
    # keys/values: UniTuples (old, leaving, entering); acc/seen rows as in _sum_update_worker
    ng = 0
    for s in range(3):
        k, v = keys[s], values[s]
        bit = np.uint8(1 << s)
        for i in range(k.shape[0]):
            j = k[i] - lo
            if seen[j] & bit:
                acc[s, j] = acc[s, j] + v[i]
            else:
                if (seen[j] & 5) == 0 and s != 1:  # first time in the old window or entering
                    ng += 1
                seen[j] |= bit
                acc[s, j] = v[i]
    return ng


@jit
def _dense_sum_emit_worker(lo, acc, seen, out_keys, out_vals):
    # One spare output row: every slot is written at g, which advances only past present keys.
    g = 0
    for j in range(seen.shape[0]):
        b = seen[j]
        if b & 1:
            x = acc[0, j]
            if b & 2:
                x = x - acc[1, j]
            if b & 4:
                x = x + acc[2, j]
        else:
            x = acc[2, j]
        out_keys[g] = lo + j
        out_vals[g] = x
        g += (b & 5) != 0


def _check_segments(keys, values):
    if len(keys) != 3 or len(values) != 3:
        raise ValueError("keys and values hold three segments: old window, leaving, entering")
    for k, v in zip(keys, values):
        if not isinstance(k, np.ndarray) or k.ndim != 1 or k.dtype != np.int64:
            raise TypeError(f"keys must be 1-D int64 arrays, got {getattr(k, 'dtype', type(k).__name__)}")
        if not isinstance(v, np.ndarray) or v.shape != k.shape:
            raise ValueError("values must be arrays as long as their keys")
    dtype = values[0].dtype
    if dtype not in (np.int64, np.float64) or any(v.dtype != dtype for v in values):
        raise TypeError(f"values must be all int64 or all float64, got {[str(v.dtype) for v in values]}")
    return tuple(_ro(k) for k in keys), tuple(_ro(v) for v in values), dtype


def _ro(a):
    v = np.ascontiguousarray(a).view()
    v.flags.writeable = False
    return v


def window_update_dense(keys, values, factor=4, slack=1 << 16):
    """:func:`window_update` (``op="sum"``) for int64 keys in a small range — or None.

    Parameters
    ----------
    keys, values : sequence of three numpy.ndarray
        The old window's rows, the leaving partials and the entering partials:
        int64 keys (the old window's unique; leaving/entering may repeat a key
        across slices), values all int64 or all float64.
    factor, slack : int
        Direct addressing only when the keys' range is at most ``factor``
        times the rows plus ``slack`` (else None: use :func:`window_update`).

    Returns
    -------
    (keys, values) or None
        The new window sorted by key: keys of the old window or entering,
        ``old - fold(leaving) + fold(entering)`` folded as :func:`window_update`
        does (bit for bit).

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels.window import window_update_dense
    >>> k = [np.array([7, 3]), np.array([3]), np.array([9, 3])]
    >>> v = [np.array([5.0, 2.0]), np.array([2.0]), np.array([1.0, 4.0])]
    >>> [x.tolist() for x in window_update_dense(k, v)]
    [[3, 7, 9], [4.0, 5.0, 1.0]]
    """
    keys, values, dtype = _check_segments(keys, values)
    present = [k for k in keys if len(k)]
    rows = sum(len(k) for k in keys)
    if not present:
        return np.empty(0, np.int64), np.empty(0, dtype)
    lo = min(int(k.min()) for k in present)
    size = max(int(k.max()) for k in present) - lo + 1
    if size > factor * rows + slack:
        return None
    acc = np.empty((3, size), dtype)
    seen = np.zeros(size, np.uint8)
    ng = _dense_sum_fold_worker(keys, values, np.int64(lo), acc, seen)
    out_keys, out_vals = np.empty(ng + 1, np.int64), np.empty(ng + 1, dtype)
    _dense_sum_emit_worker(np.int64(lo), acc, seen, out_keys, out_vals)
    return out_keys[:ng], out_vals[:ng]


def window_update_sorted(keys, values):
    """:func:`window_update_dense` for three tables each sorted by key — or None.

    When the old window, the leaving partial and the entering partial each
    hold strictly ascending int64 keys (one row per key: the engine's
    windows and partials on its dense path), the update is a three-way
    merge: sequential reads, no table of the key range.

    Parameters
    ----------
    keys, values : sequence of three numpy.ndarray
        Old window, leaving, entering: int64 keys; values all int64 or all
        float64.

    Returns
    -------
    (keys, values) or None
        Exactly what :func:`window_update_dense` returns (sorted by key,
        bit for bit); None when a segment's keys are not strictly ascending.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels.window import window_update_sorted
    >>> k = [np.array([3, 7]), np.array([3, 8]), np.array([3, 9])]
    >>> v = [np.array([2.0, 5.0]), np.array([2.0, 1.0]), np.array([4.0, 1.0])]
    >>> [x.tolist() for x in window_update_sorted(k, v)]
    [[3, 7, 9], [4.0, 5.0, 1.0]]
    """
    keys, values, dtype = _check_segments(keys, values)
    if not all(_strictly_ascending(k) for k in keys):
        return None
    cap = len(keys[0]) + len(keys[2])
    out_keys, out_vals = np.empty(cap, np.int64), np.empty(cap, dtype)
    ng = _sorted_merge_worker(keys[0], values[0], keys[1], values[1], keys[2], values[2], out_keys, out_vals)
    return out_keys[:ng], out_vals[:ng]


@jit
def _strictly_ascending_worker(k):
    for i in range(1, k.shape[0]):
        if k[i] <= k[i - 1]:
            return False
    return True


def _strictly_ascending(k):
    return k.shape[0] < 2 or _strictly_ascending_worker(k)


@jit
def _sorted_merge_worker(ok, ov, lk, lv, ek, ev, out_keys, out_vals):
    # new = old - leaving + entering per key, as _dense_sum_emit_worker; keys only leaving are dropped
    i = j = m = g = 0
    no, nl, ne = ok.shape[0], lk.shape[0], ek.shape[0]
    while i < no or m < ne:
        if m >= ne or (i < no and ok[i] <= ek[m]):
            k = ok[i]
            while j < nl and lk[j] < k:
                j += 1
            x = ov[i]
            if j < nl and lk[j] == k:
                x = x - lv[j]
                j += 1
            if m < ne and ek[m] == k:
                x = x + ev[m]
                m += 1
            i += 1
        else:
            k = ek[m]
            x = ev[m]
            m += 1
        out_keys[g] = k
        out_vals[g] = x
        g += 1
    return g


def _prepare(codes, ngroups, values, counts):
    codes, ngroups = _check_codes(codes, ngroups)
    values = np.asarray(values)
    if values.ndim != 1 or values.shape[0] != codes.shape[0]:
        raise ValueError(f"values must be 1-D with one value per code ({codes.shape[0]}), got shape {values.shape}")
    if values.dtype.kind in "iu" and not (values.dtype.kind == "u" and values.dtype.itemsize == 8):
        values = values.astype(np.int64, copy=False)
    elif values.dtype.kind == "f":
        values = values.astype(np.float64, copy=False)
    else:
        raise TypeError(f"values must be int64 or float64 (or a narrower int/float), got {values.dtype}")
    n_old, n_leave = (int(x) for x in counts)
    if n_old < 0 or n_leave < 0 or n_old + n_leave > codes.shape[0]:
        raise ValueError(f"segment counts {counts!r} do not fit {codes.shape[0]} rows")
    bounds = np.array([n_old, n_old + n_leave], dtype=np.int64)
    acc = np.zeros((3, ngroups), dtype=values.dtype)
    seen = np.zeros((3, ngroups), dtype=np.bool_)
    out = np.zeros(ngroups, dtype=values.dtype)
    present = np.zeros(ngroups, dtype=np.bool_)
    return codes, values, bounds, acc, seen, out, present


def window_update(codes, ngroups, values, counts, op="sum"):
    """New window values from old window, leaving and entering rows.

    Parameters
    ----------
    codes : numpy.ndarray
        int64 group codes in ``[0, ngroups)`` of the concatenated rows
        ``[old window | leaving partials | entering partials]``.
    ngroups : int
        Number of groups.
    values : numpy.ndarray
        int64 or float64 (narrower ints/floats are widened), one per row.
    counts : (int, int)
        Rows of the old window and of the leaving partials; the rest enter.
    op : {"sum"}
        The invertible pair: add / subtract.

    Returns
    -------
    out, present : numpy.ndarray
        ``out[c]`` is group c's new value where ``present[c]`` (it is in the
        old window or enters); groups that only leave are not present.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels.window import window_update
    >>> out, present = window_update(np.array([0, 1, 0, 2]), 3, np.array([5, 1, 5, 7]), (2, 1))
    >>> out[present].tolist(), present.tolist()
    ([0, 1, 7], [True, True, True])
    """
    if op not in WINDOW_OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {', '.join(WINDOW_OPS)}")
    codes, values, bounds, acc, seen, out, present = _prepare(codes, ngroups, values, counts)
    _sum_update_worker(codes, values, bounds, acc, seen, out, present)
    return out, present


def window_update_with(codes, ngroups, values, counts, fn, inv):
    """:func:`window_update` for any Numba-compiled pair ``fn`` / ``inv``.

    ``new = fn(inv(old, fold_fn(leaving)), fold_fn(entering))`` per group;
    results are cast to the values' dtype. Plain Python functions are
    refused (TypeError): the engine runs those on its Python path.

    Examples
    --------
    >>> import numba, numpy as np
    >>> from runnel.kernels.window import window_update_with
    >>> mul = numba.njit(lambda a, b: a * b)
    >>> div = numba.njit(lambda a, b: a / b)
    >>> out, present = window_update_with(np.array([0, 0, 0]), 1, np.array([6.0, 2.0, 5.0]), (1, 1), mul, div)
    >>> out.tolist()
    [15.0]
    """
    for f, what in ((fn, "fn"), (inv, "inv")):
        if not is_jitted(f):
            raise TypeError(f"{what} must be a Numba-compiled function, got "
                            f"{getattr(f, '__qualname__', type(f).__name__)}; use the engine's Python path")
    codes, values, bounds, acc, seen, out, present = _prepare(codes, ngroups, values, counts)
    _fn_update_worker(codes, values, bounds, acc, seen, out, present, fn, inv)
    return out, present


def warm():
    """Compile the cached window kernels (int64, float64; writeable and read-only values)."""
    codes = np.array([0, 1, 0], dtype=np.int64)
    for v in (np.array([1, 2, 3], dtype=np.int64), np.array([1.0, 2.0, 3.0])):
        ro = v.copy()
        ro.flags.writeable = False
        for values in (v, ro):
            window_update(codes, 2, values, (1, 1))
        window_update_dense([codes] * 3, [v] * 3)
        window_update_sorted([codes[:2]] * 3, [v[:2]] * 3)
