"""Partition operators: the narrow ops and shuffle halves tasks run.

A narrow op is ``op(index, batch) -> batch``; a shuffle has a map half
``map_op(index, batch, n) -> n buckets`` and a reduce half
``reduce_op(index, [buckets of dep 0, ...]) -> batch``. They are small
picklable classes; the user's functions inside are ``FnRef`` handles, so a
task ships only their ids.

The record path (``to_records`` → Python function → ``from_records``) is the
fallback; ops that can stay columnar (keys, values, pair-with-constant, word
splitting, reductions) do so.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runnel.kernels import filter_mask, map_values

from . import keyed
from .batch import Batch, column_to_list, concat_batches, infer_column, is_arrow, object_array
from .functions import Reducer, compile_unary
from .partitioners import portable_partition_ids


def _records_out(out: list) -> Batch:
    return Batch.from_records(out)


#: A numeric column at least this long runs a map/filter function compiled with Numba
#: (compiling costs ~0.1-0.5 s once per function and process; per record in Python,
#: 1M ints take ~0.2 s, compiled ~2 ms).
COMPILE_MIN_ROWS = 20_000


def _compiled_for(batch: Batch, fn: Callable):
    """(numeric column, compiled fn, result dtype) when fn should run compiled on this batch."""
    if not isinstance(batch.layout, str) or len(batch) < COMPILE_MIN_ROWS:
        return None
    col = batch.columns[batch.layout]
    if not isinstance(col, np.ndarray) or col.dtype.kind not in "biuf":
        return None
    got = compile_unary(fn, col.dtype)
    return None if got is None else (col, *got)


@dataclass(eq=False)
class MapRecords:
    fn: Callable

    def __call__(self, index: int, batch: Batch) -> Batch:
        compiled = _compiled_for(batch, self.fn)
        if compiled is not None:
            col, jf, out_dtype = compiled
            return Batch({"value": map_values(col, jf, out_dtype)}, "value")
        f = self.fn
        return _records_out([f(r) for r in batch.to_records()])


@dataclass(eq=False)
class FilterRecords:
    fn: Callable

    def __call__(self, index, batch):
        compiled = _compiled_for(batch, self.fn)
        if compiled is not None:
            col, jf, _ = compiled
            return batch.filter(filter_mask(col, jf))
        f = self.fn
        mask = np.fromiter((bool(f(r)) for r in batch.to_records()), dtype=bool, count=len(batch))
        return batch.filter(mask)


@dataclass(eq=False)
class FlatMapRecords:
    fn: Callable

    def __call__(self, index, batch):
        f = self.fn
        return _records_out(list(itertools.chain.from_iterable(f(r) for r in batch.to_records())))


@dataclass(eq=False)
class MapPartitionRecords:
    fn: Callable
    with_index: bool = False

    def __call__(self, index, batch):
        it = iter(batch.to_records())
        out = self.fn(index, it) if self.with_index else self.fn(it)
        return _records_out(list(out) if out is not None else [])


@dataclass(eq=False)
class PairWithConstant:
    """``lambda x: (x, c)`` run columnar: the records become keys."""
    const: Any

    def __call__(self, index, batch):
        const = np.full(len(batch), self.const) if type(self.const) is not str else \
            pa.array([self.const] * len(batch), pa.string())
        if isinstance(batch.layout, str):
            return Batch({"key": batch.columns[batch.layout], "value": const}, ("key", "value"))
        name = "_const"
        while name in batch.columns:
            name += "_"
        return Batch({**batch.columns, name: const}, (batch.layout, name))


@dataclass(eq=False)
class SplitWords:
    """``line.split(sep)`` / ``line.split()`` flatMap on an Arrow string column."""
    sep: str | None
    fallback: Callable
    #: columnar (Arrow kernels); the user's function runs only on a non-string column
    runs_python = False

    def __call__(self, index, batch):
        col = batch.columns.get(batch.layout) if isinstance(batch.layout, str) else None
        if col is None or not is_arrow(col) or not pa.types.is_string(col.type) or col.null_count:
            return FlatMapRecords(self.fallback)(index, batch)
        if self.sep is None:
            # Arrow's utf8_split_whitespace reads past the end of the last string and misses
            # its trailing whitespace when the bytes after the buffer are not ASCII (blocks read
            # from shared memory: 'é ' -> ['é ']); an ASCII sentinel string keeps it in bounds
            padded = pa.concat_arrays([col, pa.array([" " * 8], col.type)])
            lists = pc.utf8_split_whitespace(padded).slice(0, len(col))
            # Arrow keeps empty strings between runs of whitespace; Python's split() drops them
            words = pc.list_flatten(lists)
            words = words.filter(pc.not_equal(pc.utf8_length(words), 0))
        else:
            words = pc.list_flatten(pc.split_pattern(col, self.sep))
        if isinstance(words, pa.ChunkedArray):
            words = words.combine_chunks()
        return Batch({"value": words}, "value")


@dataclass(eq=False)
class MapValues:
    fn: Callable

    def __call__(self, index, batch):
        if len(batch) == 0:
            return batch
        f = self.fn
        vals = [f(v) for v in column_to_list(keyed.value_column(batch))]
        return Batch({"key": keyed.key_column(batch), "value": infer_column(vals)}, ("key", "value"))


@dataclass(eq=False)
class FlatMapValues:
    fn: Callable

    def __call__(self, index, batch):
        if len(batch) == 0:
            return batch
        f = self.fn
        keys = column_to_list(keyed.key_column(batch))
        vals = column_to_list(keyed.value_column(batch))
        return _records_out([(k, w) for k, v in zip(keys, vals) for w in f(v)])


@dataclass(eq=False)
class Select:
    """Keys or values of a pair batch, columnar; item 0 or 1 of other records (2-element lists)."""
    side: int

    def __call__(self, index, batch):
        if len(batch) == 0:
            return batch
        if not batch.is_pairs:   # PySpark's keys()/values() index any record: x[0], x[1] (lists too)
            return Batch.from_records([r[self.side] for r in batch.to_records()])
        return batch.keys_batch() if self.side == 0 else batch.values_batch()


@dataclass(eq=False)
class Glom:
    def __call__(self, index, batch):
        return Batch({"value": object_array([batch.to_records()])}, "value")


@dataclass(eq=False)
class MapBatches:
    """A whole-batch function: pandas DataFrame (or dict of arrays) in, same out."""
    fn: Callable
    format: str = "pandas"

    def __call__(self, index, batch):
        if self.format == "pandas":
            arg = batch.to_pandas()
        elif self.format == "arrow":
            arg = batch.to_arrow()
        else:
            arg = dict(batch.columns)
        out = self.fn(arg)
        return Batch.coerce(out)


@dataclass(eq=False)
class ReducePartition:
    """``reduce(f)`` within a partition: zero or one record."""
    reducer: Reducer

    def __call__(self, index, batch):
        if len(batch) == 0:
            return batch
        r = self.reducer
        if batch.is_scalar:
            col = batch.columns[batch.layout]
            if isinstance(col, np.ndarray) and col.dtype.kind in "iuf" and r.op is not None \
                    and not (r.op == "sum" and keyed.sum_may_overflow(col)):
                from runnel import kernels as K
                codes = np.zeros(len(col), dtype=np.int64)
                return Batch({"value": K.reduce_codes(codes, 1, col, r.op)}, "value")
        return _records_out([functools.reduce(r.fn, batch.to_records())])


@dataclass(eq=False)
class ReduceConcat:
    """Reduce half of a global reduce: all buckets into one record."""
    reducer: Reducer

    def __call__(self, index, groups):
        return ReducePartition(self.reducer)(index, concat_batches(groups[0]))


@dataclass(eq=False)
class CountPartition:
    def __call__(self, index, batch):
        return Batch({"value": np.array([len(batch)], dtype=np.int64)}, "value")


@dataclass(eq=False)
class Concat:
    """Reduce half that concatenates buckets in map order (partitionBy, repartition)."""
    def __call__(self, index, groups):
        return concat_batches(groups[0])


# --- keyed shuffle halves ----------------------------------------------------

@dataclass(eq=False)
class HashBuckets:
    """Map half without combining (groupByKey, join, partitionBy)."""
    def __call__(self, index, batch, n):
        return keyed.partition(batch, n)


def _split_by_ids(batch: Batch, ids: np.ndarray, n: int) -> list[Batch]:
    return [batch.filter(ids == p) for p in range(n)]


@dataclass(eq=False)
class FuncBuckets:
    """partitionBy with a user partition function: bucket = fn(key) % n."""
    fn: Callable

    def __call__(self, index, batch, n):
        if len(batch) == 0:
            return [batch] * n
        ids = np.fromiter((self.fn(k) % n for k in column_to_list(keyed.key_column(batch))), dtype=np.int64,
                          count=len(batch))
        return _split_by_ids(batch, ids, n)


@dataclass(eq=False)
class PortableHashBuckets:
    """partitionBy's default: bucket = PySpark's ``portable_hash(key) % n`` (``runnel.partitioners``)."""

    def __call__(self, index, batch, n):
        if len(batch) == 0:
            return [batch] * n
        return _split_by_ids(batch, portable_partition_ids(keyed.key_column(batch), n), n)


@dataclass(eq=False)
class CombineBuckets:
    """Map-side partial aggregation, then hash partitioning (``sort_keys``: see ``keyed.reduce_partition``)."""
    reducer: Reducer
    sort_keys: bool = False

    def __call__(self, index, batch, n):
        return keyed.reduce_partition(batch, self.reducer, n, self.sort_keys)


@dataclass(eq=False)
class MergeReduce:
    reducer: Reducer
    sort_keys: bool = False

    def __call__(self, index, groups):
        return keyed.merge_reduce(groups[0], self.reducer, self.sort_keys)


@dataclass(eq=False)
class GroupReduce:
    def __call__(self, index, groups):
        return keyed.group_pairs(concat_batches(groups[0]))


@dataclass(eq=False)
class CombinerBuckets:
    create: Callable
    merge_value: Callable

    def __call__(self, index, batch, n):
        return keyed.partition(keyed.combine_pairs(batch, self.create, self.merge_value), n)


@dataclass(eq=False)
class CombinerReduce:
    merge_combiners: Callable

    def __call__(self, index, groups):
        return keyed.combine_pairs(concat_batches(groups[0]), None, self.merge_combiners)


@dataclass(eq=False)
class JoinReduce:
    how: str

    def __call__(self, index, groups):
        return keyed.join_pairs(concat_batches(groups[0]), concat_batches(groups[1]), self.how)


@dataclass(eq=False)
class CogroupReduce:
    def __call__(self, index, groups):
        return keyed.cogroup_pairs([concat_batches(g) for g in groups])


@dataclass(eq=False)
class EvenBuckets:
    """Contiguous, nearly equal slices (repartition): order is kept within a bucket."""
    def __call__(self, index, batch, n):
        m = len(batch)
        return [batch.slice(p * m // n, (p + 1) * m // n) for p in range(n)]


@dataclass(eq=False)
class RangeBuckets:
    """sortBy's map half: bucket by precomputed split keys."""
    keyfunc: Callable
    bounds: list
    ascending: bool

    def __call__(self, index, batch, n):
        import bisect
        recs = batch.to_records()
        buckets: list[list] = [[] for _ in range(n)]
        for r in recs:
            p = bisect.bisect_left(self.bounds, self.keyfunc(r))
            buckets[p if self.ascending else n - 1 - p].append(r)
        return [Batch.from_records(b) for b in buckets]


@dataclass(eq=False)
class SortReduce:
    keyfunc: Callable
    ascending: bool

    def __call__(self, index, groups):
        recs = concat_batches(groups[0]).to_records()
        return Batch.from_records(sorted(recs, key=self.keyfunc, reverse=not self.ascending))


@dataclass(eq=False)
class CartesianPair:
    def __call__(self, left: Batch, right: Batch) -> Batch:
        return Batch.from_records([(a, b) for a in left.to_records() for b in right.to_records()])
