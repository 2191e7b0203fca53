"""Partition ops of column and row operations: each is ``op(index, batch) -> batch`` on frame batches.

They are small picklable classes holding expression trees; a chain of them
fuses into one task per partition (the Dataset plan's narrow fusion). Each
also runs on the empty batch of a schema, which is how a frame knows its
output columns and dtypes before any data arrives.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..batch import Batch, column_take, infer_column, is_arrow
from .expr import Expr, as_mask, broadcast, evaluate
from .schema import dtype_of, frame_batch

__all__ = ["Select", "Assign", "Filter", "Rename", "Explode", "MapFrames", "Head", "SortTop"]


def _column(value: Any, batch: Batch) -> Any:
    return broadcast(evaluate(value, batch), len(batch))


@dataclass(eq=False)
class Select:
    """Keep ``names``, in that order."""
    names: tuple[str, ...]

    def __call__(self, index: int, batch: Batch) -> Batch:
        missing = [n for n in self.names if n not in batch.columns]
        if missing:
            raise KeyError(f"no column(s) {missing} (columns: {list(batch.columns)})")
        return frame_batch({n: batch.columns[n] for n in self.names})


@dataclass(eq=False)
class Assign:
    """Add or replace columns: ``{name: expression or constant}``, each evaluated on the input batch."""
    exprs: dict

    def __call__(self, index: int, batch: Batch) -> Batch:
        cols = dict(batch.columns)
        for name, e in self.exprs.items():
            cols[name] = _column(e, batch)
        return frame_batch(cols)


@dataclass(eq=False)
class Filter:
    """Rows where ``mask`` is true (nulls count as false)."""
    mask: Expr

    def __call__(self, index: int, batch: Batch) -> Batch:
        m = as_mask(evaluate(self.mask, batch), len(batch))
        if m.all():
            return batch
        return batch.filter(m)


@dataclass(eq=False)
class Rename:
    mapping: dict

    def __call__(self, index: int, batch: Batch) -> Batch:
        return frame_batch({self.mapping.get(n, n): c for n, c in batch.columns.items()})


@dataclass(eq=False)
class Explode:
    """One row per element of the list column ``name`` (an empty list or null gives one null row)."""
    name: str

    def __call__(self, index: int, batch: Batch) -> Batch:
        c = batch.columns[self.name]
        if not (isinstance(c, np.ndarray) and c.dtype == object):
            return batch
        lists = [v if isinstance(v, (list, tuple)) and len(v) else [None] for v in c.tolist()]
        lengths = np.fromiter((len(v) for v in lists), dtype=np.int64, count=len(lists))
        rows = np.repeat(np.arange(len(lists), dtype=np.int64), lengths)
        flat = infer_column(list(itertools.chain.from_iterable(lists))) if len(lists) else c
        return frame_batch({n: (flat if n == self.name else column_take(col, rows))
                            for n, col in batch.columns.items()})


@dataclass(eq=False)
class MapFrames:
    """``fn(pandas DataFrame) -> pandas DataFrame`` per partition."""
    fn: Callable

    def __call__(self, index: int, batch: Batch) -> Batch:
        import pandas as pd
        out = self.fn(batch.to_pandas())
        if not isinstance(out, pd.DataFrame):
            raise TypeError(f"map_batches: the function must return a pandas DataFrame, got {type(out).__name__}")
        b = Batch.from_pandas(out.reset_index(drop=True))
        return frame_batch(b.columns)


@dataclass(eq=False)
class Head:
    n: int

    def __call__(self, index: int, batch: Batch) -> Batch:
        return batch.slice(0, self.n) if len(batch) > self.n else batch


@dataclass(eq=False)
class SortTop:
    """The ``n`` rows with the largest (``largest``) or smallest values of ``by``, in that order."""
    n: int
    by: str
    largest: bool

    def __call__(self, index: int, batch: Batch) -> Batch:
        if len(batch) == 0:
            return batch
        c = batch.columns[self.by]
        if is_arrow(c) or c.dtype == object:
            raise TypeError(f"nlargest/nsmallest need a numeric column, {self.by!r} is {dtype_of(c)}")
        keys = -c if self.largest and c.dtype.kind in "if" else c
        if self.largest and c.dtype.kind not in "if":
            keys = -c.astype(np.int64)
        if c.dtype.kind == "f":   # NaN last, as pandas drops them from nlargest
            keep = ~np.isnan(c)
            idx = np.flatnonzero(keep)
            order = idx[np.argsort(keys[keep], kind="stable")][:self.n]
        else:
            order = np.argsort(keys, kind="stable")[:self.n]
        return batch.take(order)

