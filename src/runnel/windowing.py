"""Window tables: the partition ops of the keyed window reductions.

The engine side of ``runnel.dstream.window`` (the operators, whose module
docstring draws the old window, leaving and entering partials): picklable
ops that run in tasks on co-partitioned window tables and per-slide
partials. ``ZipReduce`` reduces a window from its partials;
``WindowUpdate`` computes ``fn(inv(old, leaving), entering)`` per key of a
partition (:func:`update_window`) and, every ``RECOMPUTE_EVERY`` slides,
overlays the exact values (:func:`overlay_exact`). Recognised pairs run as
kernels (``runnel.kernels.window``): ``add`` with ``sub`` on int64/float64
values — tables sorted by key merge sequentially, keys in a small range by
direct addressing; any pair Numba compiles runs compiled; everything else on
the Python path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import keyed
from .batch import Batch, column_take, column_to_list, concat_batches, concat_columns, infer_column, object_array
from .functions import Reducer

@dataclass(frozen=True)
class Inverse:
    """The inverse function of an incremental window (``reduce_by_key_and_window``'s ``invFunc``) and how
    it runs: ``op="sum"`` (the built-in subtract, with an add reducer), a Numba-compiled ``jitted``
    function, or Python ``fn``. A :class:`~runnel.dstream.window.ReducedWindowedDStream` with an
    Inverse updates each window from the last (old ⊖ leaving ⊕ entering); subclasses that supply their
    own ``update_op`` (``runnel.frame.window``) pass one with their own ``op`` name."""
    fn: Any
    op: str | None = None
    jitted: Any = None


@dataclass(eq=False)
class ZipReduce:
    """Partition i of a window from scratch: its partials' partition i, reduced by key."""
    reducer: Reducer
    sort_keys: bool  # an incremental window's tables: sorted by key (see "Order" in the module docstring)

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        return keyed.merge_reduce(parts, self.reducer, self.sort_keys)


@dataclass(eq=False)
class WindowUpdate:
    """Partition i of ``fn(inv(old, leaving), entering)``; with ``exact`` window partials, recomputed."""
    reducer: Reducer
    inverse: Inverse
    n_leave: int
    n_enter: int

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        old, rest = parts[0], parts[1:]
        leaving, entering = rest[:self.n_leave], rest[self.n_leave:self.n_leave + self.n_enter]
        exact = rest[self.n_leave + self.n_enter:]
        out = update_window(old, concat_batches(leaving), concat_batches(entering), self.reducer, self.inverse)
        if exact:
            out = overlay_exact(out, keyed.merge_reduce(exact, self.reducer, sort_keys=True), self.inverse)
        return out


def _pairs(keys, values) -> Batch:
    return Batch({"key": keys, "value": values}, ("key", "value"))


def _kv(b: Batch):
    return keyed.key_column(b), keyed.value_column(b)


def _int64(col) -> bool:
    return isinstance(col, np.ndarray) and col.dtype == np.int64


def _numeric_dtype(cols: list) -> np.dtype | None:
    """int64 or float64 when every value column is a NumPy int/float column, else None."""
    kinds = set()
    for c in cols:
        if not isinstance(c, np.ndarray) or c.dtype.kind not in "iuf" or (c.dtype.kind == "u" and c.dtype.itemsize == 8):
            return None
        kinds.add("f" if c.dtype.kind == "f" else "i")
    if len(kinds) > 1:  # ints and floats of different partials: Python keeps each key's own type
        return None
    return np.dtype(np.float64) if "f" in kinds else np.dtype(np.int64)


def update_window(old: Batch, leaving: Batch, entering: Batch, reducer: Reducer, inverse: Inverse) -> Batch:
    """``fn(inv(old, leaving), entering)`` per key of one partition (see ``runnel.kernels.window``)."""
    from runnel.kernels import window as KW
    segs = [b for b in (old, leaving, entering) if len(b)]
    if not segs:
        return keyed.empty_pairs()
    kvs = [_kv(b) if len(b) else (None, None) for b in (old, leaving, entering)]
    cols = [kv for kv in kvs if kv[0] is not None]
    vals = [v for _, v in cols]
    dtype = _numeric_dtype(vals)
    counts = (len(old), len(leaving))
    if dtype is not None and inverse.op == "sum" and all(k is None or _int64(k) for k, _ in kvs):
        # int64 keys: tables sorted by key (the partials' and the last window's, on the dense path) merge
        # sequentially; else keys in a small range use direct addressing. Either way the window comes out sorted.
        e = np.empty(0, np.int64)
        seg_keys = [e if k is None else k for k, _ in kvs]
        seg_vals = [np.empty(0, dtype) if v is None else v.astype(dtype, copy=False) for _, v in kvs]
        r = KW.window_update_sorted(seg_keys, seg_vals)
        if r is None:
            r = KW.window_update_dense(seg_keys, seg_vals)
        if r is not None:
            return _pairs(*r)
    keys = concat_columns([k for k, _ in cols]) if len(cols) > 1 else cols[0][0]
    if dtype is not None and (inverse.op == "sum" or (inverse.jitted is not None and reducer.jitted is not None)):
        values = np.concatenate([v.astype(dtype, copy=False) for v in vals])
        codes, first = keyed.factorize(keys)
        if inverse.op == "sum":
            out, present = KW.window_update(codes, len(first), values, counts)
        else:
            out, present = KW.window_update_with(codes, len(first), values, counts, keyed.unship(reducer.jitted),
                                                 keyed.unship(inverse.jitted))
        return _pairs(column_take(keys, first[present]), out[present])
    return _update_python(kvs, keyed.unship(reducer.fn), keyed.unship(inverse.fn))


def _update_python(kvs, fn, inv) -> Batch:
    acc: list[dict] = [{}, {}, {}]
    for seg, (k, v) in enumerate(kvs):
        if k is None:
            continue
        d = acc[seg]
        for key, val in zip(keyed.key_list(k), column_to_list(v)):
            d[key] = fn(d[key], val) if key in d else val
    old, leave, enter = acc
    out = {}
    for key, val in old.items():
        if key in leave:
            val = inv(val, leave[key])
        if key in enter:
            val = fn(val, enter[key])
        out[key] = val
    for key, val in enter.items():
        if key not in out:
            out[key] = val
    if not out:
        return keyed.empty_pairs()
    return _pairs(infer_column(list(out)), infer_column(list(out.values())))


def overlay_exact(window: Batch, exact: Batch, inverse: Inverse) -> Batch:
    """The window's keys with their exact values from ``exact`` (absent keys: 0 for sum)."""
    if len(window) == 0:
        return window
    wk, wv = _kv(window)
    if len(exact):
        ek, ev = _kv(exact)
        codes, _ = keyed.factorize(concat_columns([wk, ek]))
        ecodes = codes[len(wk):]
        keep = ecodes < len(wk)  # keys filtered out of the window stay out (see the module docstring)
    dtype = _numeric_dtype([wv] + ([ev] if len(exact) else []))
    if dtype is None:
        vals = column_to_list(wv)
        if len(exact):
            evals = column_to_list(ev)
            for j in np.flatnonzero(keep).tolist():
                vals[ecodes[j]] = evals[j]
        return _pairs(wk, infer_column(vals))
    if inverse.op == "sum":
        vals = np.zeros(len(wk), dtype=dtype)
    else:
        vals = wv.astype(dtype, copy=True)
    if len(exact):
        vals[ecodes[keep]] = ev[keep]
    return _pairs(wk, vals)


@dataclass(eq=False)
class _PositiveValues:
    """countByValueAndWindow's ``filter(lambda kv: kv[1] > 0)``, columnar."""

    def __call__(self, index: int, batch: Batch) -> Batch:
        if len(batch) == 0:
            return batch
        v = keyed.value_column(batch)
        if isinstance(v, np.ndarray) and v.dtype.kind in "iuf":
            return batch.filter(v > 0)
        return batch.filter(np.array([x > 0 for x in column_to_list(v)], dtype=bool))


@dataclass(eq=False)
class _KeyedByOne:
    """``map(lambda x: (1, x))`` (or ``(1, 1)`` per record with ``count``), columnar."""
    count: bool = False

    def __call__(self, index: int, batch: Batch) -> Batch:
        n = len(batch)
        if n == 0:
            return batch
        if self.count:
            return _pairs(np.ones(1, dtype=np.int64), np.array([n], dtype=np.int64))
        if isinstance(batch.layout, str):
            col = batch.columns[batch.layout]
        else:
            col = object_array(batch.to_records())
        return _pairs(np.ones(n, dtype=np.int64), col)
