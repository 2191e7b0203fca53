"""Rows hashed by key into n partitions, each keeping arrival order: the shuffle of the per-key operators.

Cumulative carries (``cumulative.py``), count windows (``event_time.py``),
``drop_duplicates`` (``dedup.py``), interval-join buffers
(``interval_join.py``) and ``merge_asof`` (``join.py``) keep per-key state
next to the rows of the same keys: :func:`bucket_rows` puts each key's rows
in the partition the engine's hash gives it (``aggregate.partition_partials``,
the same rule as the partial tables'), rows of a key in the order they came.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..batch import Batch, concat_batches
from ..dataset import Dataset
from ..plan import ShuffleDep
from .aggregate import partition_partials
from .expr import isnull_column

__all__ = ["bucket_rows", "RowBuckets", "ConcatRows"]


@dataclass(eq=False)
class RowBuckets:
    """Map half: rows hashed by key into n buckets (each bucket keeps arrival order); a null key raises
    unless ``nulls`` (the rows of null keys then go where the null hashes)."""
    keys: tuple
    nulls: bool = False

    def __call__(self, index: int, batch: Batch, n: int) -> list[Batch]:
        if len(batch) == 0 or not all(k in batch.columns for k in self.keys):
            return [batch] * n
        if not self.nulls:
            keep = np.ones(len(batch), dtype=bool)
            for k in self.keys:
                keep &= ~isnull_column(batch.columns[k], len(batch))
            if not keep.all():
                raise ValueError(f"operations per key need keys: a row has a null in {list(self.keys)}")
        return partition_partials(batch, self.keys, n)


@dataclass(eq=False)
class ConcatRows:
    """Reduce half: a bucket's rows from every map partition, in partition order."""

    def __call__(self, index: int, groups: list[list[Batch]]) -> Batch:
        parts = [b for b in groups[0] if len(b)]
        return concat_batches(parts) if parts else Batch.empty()


def bucket_rows(ds: Dataset, keys: tuple, n: int, nulls: bool = False) -> Dataset:
    """``ds``'s rows hashed by ``keys`` into ``n`` partitions (see the module docstring); rows with a null
    key raise unless ``nulls``."""
    return ds.shuffle([ShuffleDep(ds.dependency(), RowBuckets(keys, nulls))], n, ConcatRows())
