"""Windowed group-by aggregation on the engine's keyed window machinery.

:class:`WindowAggDStream` *is* a :class:`~runnel.dstream.window.ReducedWindowedDStream`
— the same remembering of per-slide partials, checkpointing of the window
table and the partials (restored by name), fall-back after a failed batch,
state report — with the frame's partial tables in place of (key, value)
pairs. Only ``compute`` differs, in the ops it zips the partitions with::

      time ->   t-S-W         t-W          t-S            t
                  |            |             |            |
    old window    (=========================]              the table at t-S
    leaving       (============]                           partials of (t-S-W, t-W]
    entering                                 (============]  partials of (t-S, t]
    new window                 (==========================]  = old ⊖ leaving ⊕ entering

Every partial table is hashed by key into the same ``n`` partitions, so old
window, leaving and entering partials are co-partitioned and combine
partition by partition (``zip_partitions``), without a shuffle.

Incremental (the middle line) when every aggregate is invertible — count,
size, sum, mean, var/std (their moments: count, mean, squared deviations,
taken back out with the inverse of Chan et al.'s merge; a sum of squared
deviations within the rounding noise of the values that passed through the
window since its last exact recomputation counts as 0) — and the window is
at least ``INCREMENTAL_MIN_SLIDES`` slides, as for ``reduce_by_key_and_window``;
a key leaves the window when its rows all left (a hidden row count).
Otherwise (min, max, first, last, nunique, short windows) each window is
merged from its per-slide partials. As in the engine, every
``RECOMPUTE_EVERY``-th slide an incremental window is recomputed exactly
from its partials, so float drift is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..batch import Batch, concat_columns
from ..dstream.window import ReducedWindowedDStream
from ..functions import Reducer
from ..windowing import Inverse
from .aggregate import AGGREGATES, INVERTIBLE, AggSpec, group_codes, merge

__all__ = ["WindowAggDStream", "window_specs"]

#: the hidden aggregate an incremental window counts rows with (a key leaves when it reaches 0)
ROWS = AggSpec("__rows", None, "size")


def window_specs(specs: tuple[AggSpec, ...]) -> tuple[tuple[AggSpec, ...], bool]:
    """The specs a window keeps (with the hidden row count when incremental) and whether it can be."""
    if all(s.func in INVERTIBLE for s in specs):
        return specs + (ROWS,), True
    return specs, False


def subtract(old: Batch, leaving: Batch, keys: tuple, specs: tuple[AggSpec, ...]) -> Batch:
    """``old`` with the rows of ``leaving`` (partials of keys all in ``old``) taken back out."""
    codes, _ = group_codes([concat_columns([old.columns[k], leaving.columns[k]]) for k in keys])
    pos = codes[len(old):]          # old lists each of its keys once, first: codes of leaving point into it
    cols = dict(old.columns)
    for i, s in enumerate(specs):
        name = lambda p: s.state(p, i)  # noqa: E731
        if s.func in ("count", "size", "sum", "mean"):
            for p in AGGREGATES[s.func]:
                v = np.array(cols[name(p)], copy=True)
                v[pos] -= np.asarray(leaving.columns[name(p)], dtype=v.dtype)
                cols[name(p)] = v
        else:   # var, std: the inverse of Chan et al.'s merge of (count, mean, squared deviations)
            c = np.array(cols[name("c")], dtype=np.int64)
            a = np.array(cols[name("a")], dtype=np.float64)
            q = np.array(cols[name("q")], dtype=np.float64)
            c2 = np.asarray(leaving.columns[name("c")], dtype=np.int64)
            a2 = np.nan_to_num(np.asarray(leaving.columns[name("a")], dtype=np.float64))
            q2 = np.asarray(leaving.columns[name("q")], dtype=np.float64)
            cp, ap, qp = c[pos], np.nan_to_num(a[pos]), q[pos]
            c1 = cp - c2
            with np.errstate(invalid="ignore", divide="ignore"):
                a1 = np.where(c1 > 0, (cp * ap - c2 * a2) / c1, np.nan)
                d = np.where(c1 > 0, a2 - a1, 0.0)
                q1 = np.where(c1 > 0, qp - q2 - d * d * c1 * c2 / np.where(cp > 0, cp, 1), 0.0)
            # below the rounding noise of the subtractions so far (~eps * the squares of every value that
            # was in the window since its last exact recomputation, h, which is never subtracted) a sum of
            # squared deviations is 0: else std = sqrt(q / (c - 1)) turns a 1e-15 residue into 1e-8
            h = np.asarray(cols[name("h")], dtype=np.float64)[pos]
            q1 = np.where(q1 <= 64 * np.finfo(np.float64).eps * h, 0.0, q1)
            c[pos], a[pos], q[pos] = c1, a1, q1
            cols[name("c")], cols[name("a")], cols[name("q")] = c, a, q
    rows = np.asarray(cols[ROWS.state("n", len(specs) - 1)])
    return Batch(cols, old.layout).filter(rows > 0)


@dataclass(eq=False)
class MergeWindow:
    """Partition i of a window from scratch: its partials merged."""
    keys: tuple
    specs: tuple
    empty: Batch

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        m = merge([p for p in parts if len(p) and self.keys[0] in p.columns], self.keys, self.specs)
        return m if m is not None else self.empty


@dataclass(eq=False)
class UpdateWindow:
    """Partition i of ``old ⊖ leaving ⊕ entering``; with ``exact`` partials, merged from them instead."""
    keys: tuple
    specs: tuple
    empty: Batch
    n_leave: int
    n_enter: int

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        old, rest = parts[0], parts[1:]
        exact = rest[self.n_leave + self.n_enter:]
        if exact:   # the periodic exact recomputation: no drift carried over
            return MergeWindow(self.keys, self.specs, self.empty)(index, exact)
        ok = lambda b: len(b) and self.keys[0] in b.columns  # noqa: E731
        leaving = merge([b for b in rest[:self.n_leave] if ok(b)], self.keys, self.specs)
        entering = [b for b in rest[self.n_leave:self.n_leave + self.n_enter] if ok(b)]
        table = old if ok(old) else None
        if table is not None and leaving is not None:
            table = subtract(table, leaving, self.keys, self.specs)
        m = merge([b for b in [table] + entering if b is not None and len(b)], self.keys, self.specs)
        return m if m is not None else self.empty


class WindowAggDStream(ReducedWindowedDStream):
    """The window's partial table every slide (see the module docstring)."""

    kind = "groupby_window"

    def __init__(self, partials, keys: tuple, specs: tuple, empty: Batch, invertible: bool, window_ms: int,
                 slide_ms: int, n: int):
        inverse = Inverse(None, op="frame") if invertible else None
        super().__init__(partials, Reducer(None, op="frame"), inverse, window_ms, slide_ms, n, None)
        self.keys, self.specs, self.empty = keys, specs, empty

    def merge_op(self) -> MergeWindow:
        return MergeWindow(self.keys, self.specs, self.empty)

    def update_op(self, n_leaving: int, n_entering: int) -> UpdateWindow:
        return UpdateWindow(self.keys, self.specs, self.empty, n_leaving, n_entering)

    def signature(self) -> dict:
        return {**super().signature(), "keys": list(self.keys),
                "aggregates": [[s.out, s.column, s.func] for s in self.specs]}
