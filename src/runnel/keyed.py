"""Columnar operations on keyed batches: the engine side of the shuffle kernels.

Every function here takes and returns Batches; the per-type choice of kernel
(int64, float64, Arrow strings) and the Python-dict fallback for object keys
(mixed types, tuples, None among numbers) live here and nowhere else.

Hashes must agree across column types: key ``1`` must land in the same
partition whether its partition's key column happened to be int64, float64
or object. The kernels hash integral floats like ints, and the object path
hashes each value with the kernel of its type.

None and NaN keys
-----------------
A partition's key column may be an Arrow string column with nulls in one
partition and an object column of ``None`` in another, so the two rules below
hold in every column type, in the kernels and on every Python path (state
updated by a Python function, mapWithState, windows of Python values,
joins, cogroup, groupByKey):

* every ``None`` key is one key and hashes to ``kernels.NULL_HASH``;
* every float NaN key is one key (all NaNs are equal as keys) and hashes to
  ``kernels.NAN_HASH``. Python paths replace each NaN key by the one object
  :data:`NAN_KEY` (:func:`canonical_key`) before using it as a dict key.

Why NaNs are one key: PySpark's RDD operations use Python dicts, where
``float("nan")`` objects are distinct keys unless they are the same object, so
what PySpark gives depends on object identity (``math.nan`` merges,
``float("nan")`` does not, and a record that crossed a pickle boundary never
does) and is not reproducible. One key is what the columnar kernels
(and Spark SQL, pandas ``groupby(dropna=False)``) do; it is the only rule
under which per-key state and inverse windows of a NaN key stay bounded.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import pyarrow as pa

from runnel import kernels as K

from .executors.shipping import FnRef
from .batch import (Batch, Column, _native_scalar_type, column_take, column_to_list, concat_batches, concat_columns,
                    infer_column, is_arrow, layout_columns, object_array)

_INT_KINDS = "iub"


# --- keys ------------------------------------------------------------------

def key_column(batch: Batch) -> Column:
    """The key of every record of a pair batch, as one column."""
    if not batch.is_pairs:
        if len(batch) == 0:
            return np.empty(0, dtype=np.int64)
        raise TypeError("this operation needs (key, value) pairs, got records like "
                        f"{batch.slice(0, 1).to_records()[0]!r}")
    k = batch.layout[0]
    if isinstance(k, str):
        return batch.columns[k]
    return object_array(batch.sub(k).to_records())


def empty_pairs(layout=("key", "value")) -> Batch:
    """No records, with a keyed result's columns: what a keyed operation gives for an empty
    partition, so that ``map_batches`` sees the columns of the stream's other partitions."""
    return Batch({name: _NO_ROWS for name in layout_columns(layout)}, layout)


_NO_ROWS = np.empty(0, dtype=np.int64)  # of no bytes in a block (an empty object column pickles its list)


def value_column(batch: Batch) -> Column:
    v = batch.layout[1]
    if isinstance(v, str):
        return batch.columns[v]
    return object_array(batch.sub(v).to_records())


#: The one NaN object every NaN key becomes on the Python paths (see "None and NaN keys").
NAN_KEY = float("nan")


def canonical_key(k):
    """``k`` with every float NaN (also inside tuples) replaced by :data:`NAN_KEY`.

    As dict keys, all NaNs are then one key, as in the kernels (see the
    module docstring). Other keys come back as they are.

    >>> d = {canonical_key(float("nan")): 1}
    >>> canonical_key(float("nan")) in d, canonical_key((1, float("nan"))) == (1, NAN_KEY)
    (True, True)
    """
    if isinstance(k, (float, np.floating)):
        return NAN_KEY if k != k else k
    if type(k) is tuple:
        return tuple(map(canonical_key, k))
    return k


def key_list(col: Column) -> list:
    """A key column's values as Python dict keys: native objects, NaNs made one (:func:`canonical_key`)."""
    if isinstance(col, np.ndarray) and col.dtype.kind in _INT_KINDS + "M" or is_arrow(col):
        return column_to_list(col)  # no NaN in these columns
    return [canonical_key(k) for k in column_to_list(col)]


def _hash_object(values: np.ndarray) -> np.ndarray:
    """Stable hashes of arbitrary Python keys, agreeing with the typed kernels."""
    n = len(values)
    out = np.zeros(n, dtype=np.uint64)
    by_type: dict[type, list[int]] = {}
    for i, v in enumerate(values):
        by_type.setdefault(_native_scalar_type(v), []).append(i)
    for t, idx in by_type.items():
        idx = np.asarray(idx, dtype=np.int64)
        vals = [values[i] for i in idx]
        if t is bool or t is int:
            try:
                out[idx] = K.hash_int64(np.array(vals, dtype=np.int64))
                continue
            except OverflowError:
                pass
            out[idx] = K.hash_arrow(pa.array([str(v) for v in vals], pa.string()))
        elif t is float:
            out[idx] = K.hash_float64(np.array(vals, dtype=np.float64))
        elif t is str:
            out[idx] = K.hash_arrow(pa.array(vals, pa.string()))
        elif t is bytes:
            out[idx] = K.hash_arrow(pa.array(vals, pa.binary()))
        elif t is tuple:
            out[idx] = _hash_tuples(vals)
        elif t is type(None):
            out[idx] = K.NULL_HASH  # as a null of an Arrow column: None is one key in every column type
        else:
            # rare key types (frozenset, datetime ...): hash their repr, which is
            # stable across processes for the value types that are hashable
            out[idx] = K.hash_arrow(pa.array([f"{t.__qualname__}:{v!r}" for v in vals], pa.string()))
    return out


def _hash_tuples(vals: list) -> np.ndarray:
    widths = {len(v) for v in vals}
    out = np.empty(len(vals), dtype=np.uint64)
    for w in widths:
        idx = [i for i, v in enumerate(vals) if len(v) == w]
        h = K.hash_int64(np.full(len(idx), w, dtype=np.int64))
        for f in range(w):
            h = K.combine_hashes(h, _hash_object(object_array([vals[i][f] for i in idx])))
        out[idx] = h
    return out


def hash_column(col: Column) -> np.ndarray:
    """Stable uint64 hash of every key in a column."""
    if is_arrow(col):
        return K.hash_arrow(col)
    if col.dtype.kind in _INT_KINDS:
        return K.hash_int64(col)
    if col.dtype.kind == "f":
        return K.hash_float64(col.astype(np.float64, copy=False))
    if col.dtype.kind == "M":
        return K.hash_int64(col.view(np.int64))
    return _hash_object(col)


def factorize(col: Column) -> tuple[np.ndarray, np.ndarray]:
    """Group codes in first-appearance order and each group's first row."""
    if is_arrow(col):
        return K.factorize_arrow(col)
    if col.dtype.kind in _INT_KINDS:
        return K.factorize_int64(col.astype(np.int64, copy=False))
    if col.dtype.kind == "f":
        return K.factorize_float64(col.astype(np.float64, copy=False))
    if col.dtype.kind == "M":
        return K.factorize_int64(col.view(np.int64))
    # object keys: Python equality decides, as a dict would, with all NaNs one key (module docstring)
    seen: dict = {}
    codes = np.empty(len(col), dtype=np.int64)
    first = []
    for i, k in enumerate(col):
        k = canonical_key(k)
        c = seen.get(k)
        if c is None:
            c = seen[k] = len(first)
            first.append(i)
        codes[i] = c
    return codes, np.asarray(first, dtype=np.int64)


def unship(f):
    return f.fn if isinstance(f, FnRef) else f


# --- partitioning ----------------------------------------------------------

def partition_ids(hashes: np.ndarray, n: int) -> np.ndarray:
    """``hashes % n`` as ``kernels.partition_ids``; a power-of-two n masks the low bits instead
    (same ids: a 64-bit division per row cost 3.3 ms per 393k rows, the mask 0.6 ms)."""
    if n > 0 and n & (n - 1) == 0:
        return (hashes & np.uint64(n - 1)).astype(np.int64)
    return K.partition_ids(hashes, n)


def partition(batch: Batch, n: int, keys: Column | None = None) -> list[Batch]:
    """Split a batch into n buckets by the stable hash of its keys, keeping order."""
    if n == 1:
        return [batch]
    if len(batch) == 0:
        return [batch] * n
    keys = key_column(batch) if keys is None else keys
    ids = partition_ids(hash_column(keys), n)
    order, bounds = K.scatter_order(ids, n)
    return [batch.take(order[bounds[p]:bounds[p + 1]]) for p in range(n)]


# --- aggregation -------------------------------------------------------------

_NUMERIC = "iubf"


def _dense_reducible(keys, values, reducer) -> bool:
    """Can ``K.reduce_int64_dense`` (if the key range is small) reduce these pairs?"""
    return isinstance(values, np.ndarray) and values.dtype.kind in _NUMERIC and reducer.op in ("sum", "min", "max") \
        and isinstance(keys, np.ndarray) and keys.dtype == np.int64 \
        and not (values.dtype.kind == "u" and values.dtype.itemsize == 8) \
        and not (reducer.op == "sum" and sum_may_overflow(values))


def reduce_partition(batch: Batch, reducer, n: int, sort_keys: bool = False) -> list[Batch]:
    """``partition(reduce_pairs(batch, reducer), n)``: the map side of reduceByKey.

    ``sort_keys``: the caller does not need first-appearance order (an
    internal table), so int64 keys in a small range come out sorted by key
    in each partition, at a lower cost (``K.reduce_int64_sorted``).
    """
    if (n > 1 or sort_keys) and len(batch):
        keys, values = key_column(batch), value_column(batch)
        if _dense_reducible(keys, values, reducer):
            # one call, no hashes or order: the groups come out split into partitions
            dense = K.reduce_int64_sorted([keys], [values], reducer.op, n) if sort_keys \
                else K.reduce_int64_dense_partitioned(keys, values, reducer.op, n)
            if dense is not None:
                return _split_pairs(*dense)
    return partition(reduce_pairs(batch, reducer), n)


def merge_reduce(parts: list[Batch], reducer, sort_keys: bool = False) -> Batch:
    """``reduce_pairs`` of the concatenated parts (map outputs); ``sort_keys`` as :func:`reduce_partition`."""
    parts = [b for b in parts if len(b)]
    if len(parts) == 1 and not sort_keys:  # one map output: already reduced
        return parts[0]
    if sort_keys and parts:
        kvs = [(key_column(b), value_column(b)) for b in parts]
        if len({getattr(v, "dtype", None) for _, v in kvs}) == 1 and all(_dense_reducible(k, v, reducer) for k, v in kvs):
            dense = K.reduce_int64_sorted([k for k, _ in kvs], [v for _, v in kvs], reducer.op)  # no concatenation
            if dense is not None:
                return _split_pairs(*dense)[0]
    return reduce_pairs(concat_batches(parts), reducer)


def _split_pairs(keys: np.ndarray, values: np.ndarray, bounds: np.ndarray) -> list[Batch]:
    return [Batch({"key": keys[a:b], "value": values[a:b]}, ("key", "value"))
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def reduce_pairs(batch: Batch, reducer) -> Batch:
    """reduceByKey within one batch: unique keys in first-appearance order."""
    if len(batch) == 0:
        return batch if batch.is_pairs else empty_pairs()
    keys = key_column(batch)
    values = value_column(batch)
    numeric = isinstance(values, np.ndarray) and values.dtype.kind in _NUMERIC
    if _dense_reducible(keys, values, reducer):
        dense = K.reduce_int64_dense(keys, values, reducer.op)  # one pass, no group codes
        if dense is not None:
            return Batch({"key": dense[0], "value": dense[1]}, ("key", "value"))
    codes, first = factorize(keys)
    g = len(first)
    out = None
    if numeric:
        if reducer.op == "sum" and sum_may_overflow(values):
            pass  # Python ints do not wrap: fold in Python
        elif reducer.op is not None:
            out = K.reduce_codes(codes, g, values, reducer.op)
            if reducer.op in ("min", "max") and values.dtype.kind == "b":
                out = out.astype(bool)
        elif reducer.jitted is not None and values.dtype.kind in "if":
            # the dispatcher travels to workers inside an FnRef; the kernel wants it bare
            out = K.reduce_codes_with(codes, g, values, unship(reducer.jitted))
    if out is None:
        out = fold_groups(codes, g, column_to_list(values), reducer.fn)
    return Batch({"key": column_take(keys, first), "value": out}, ("key", "value"))


def sum_may_overflow(values: np.ndarray) -> bool:
    """Could an int64 sum of these values wrap (where Python's ints would not)?"""
    if values.dtype.kind not in "iu" or len(values) == 0:
        return False
    return max(abs(int(values.max())), abs(int(values.min()))) * len(values) > np.iinfo(np.int64).max


def fold_groups(codes: np.ndarray, g: int, values: list, fn: Callable) -> Column:
    """Python fold of fn over each group's values in arrival order."""
    order, bounds = K.group_segments(codes, g)
    out = [None] * g
    for c in range(g):
        seg = order[bounds[c]:bounds[c + 1]]
        out[c] = functools.reduce(fn, (values[i] for i in seg))
    return infer_column(out)


def group_pairs(batch: Batch) -> Batch:
    """groupByKey within one batch: (key, [values in arrival order])."""
    if len(batch) == 0:
        return batch if batch.is_pairs else empty_pairs()
    keys = key_column(batch)
    values = column_to_list(value_column(batch))
    codes, first = factorize(keys)
    order, bounds = K.group_segments(codes, len(first))
    groups = [[values[i] for i in order[bounds[c]:bounds[c + 1]]] for c in range(len(first))]
    return Batch({"key": column_take(keys, first), "value": object_array(groups)}, ("key", "value"))


def combine_pairs(batch: Batch, create: Callable | None, merge: Callable) -> Batch:
    """Per key: fold ``merge`` over values, starting from ``create(v0)`` (or v0)."""
    if len(batch) == 0:
        return batch if batch.is_pairs else empty_pairs()
    keys = key_column(batch)
    values = column_to_list(value_column(batch))
    codes, first = factorize(keys)
    order, bounds = K.group_segments(codes, len(first))
    out = [None] * len(first)
    for c in range(len(first)):
        seg = order[bounds[c]:bounds[c + 1]]
        acc = values[seg[0]] if create is None else create(values[seg[0]])
        for i in seg[1:]:
            acc = merge(acc, values[i])
        out[c] = acc
    return Batch({"key": column_take(keys, first), "value": infer_column(out)}, ("key", "value"))


# --- joins ---------------------------------------------------------------------

def take_or_none(col: Column, idx: np.ndarray) -> Column:
    """Take rows; index -1 gives None (never NaN), as PySpark's outer joins do."""
    missing = idx < 0
    if not missing.any():
        return column_take(col, idx)
    if is_arrow(col):
        return col.take(pa.array(idx, pa.int64(), mask=missing))
    vals = column_to_list(col) if len(col) else []
    return object_array([None if i < 0 else vals[i] for i in idx.tolist()])


def _codes_of_two(left: Column, right: Column) -> tuple[np.ndarray, np.ndarray, int]:
    both = concat_columns([left, right]) if len(left) and len(right) else (left if len(left) else right)
    codes, first = factorize(both)
    return codes[:len(left)], codes[len(left):], len(first)


def join_pairs(left: Batch, right: Batch, how: str) -> Batch:
    """(k, (v, w)) for every matching pair; a missing side of an outer join is None."""
    lk = key_column(left) if len(left) else np.empty(0, dtype=np.int64)
    rk = key_column(right) if len(right) else np.empty(0, dtype=np.int64)
    if len(lk) + len(rk) == 0:
        return empty_pairs(_JOINED)
    lc, rc, g = _codes_of_two(lk, rk)
    li, ri = K.join_indices(lc, rc, g, how)
    if len(li) == 0:
        return empty_pairs(_JOINED)
    lv = value_column(left) if len(left) else np.empty(0, dtype=object)
    rv = value_column(right) if len(right) else np.empty(0, dtype=object)
    if (li >= 0).all():
        keys = column_take(lk, li)
    else:  # a right-only key: take it from the right side
        keys = column_take(concat_columns([lk, rk]), np.where(li >= 0, li, len(lk) + ri))
    return Batch({"key": keys, "v": take_or_none(lv, li), "w": take_or_none(rv, ri)}, _JOINED)


_JOINED = ("key", ("v", "w"))


def cogroup_pairs(sides: list[Batch]) -> Batch:
    """(k, (vs, ws, ...)) with a list per side, keys in first-appearance order."""
    keys = [key_column(s) if len(s) else np.empty(0, dtype=np.int64) for s in sides]
    nonempty = [k for k in keys if len(k)]
    if not nonempty:
        return empty_pairs(("key", tuple(f"v{i}" for i in range(len(sides)))))
    allkeys = concat_columns(nonempty) if len(nonempty) > 1 else nonempty[0]
    codes, first = factorize(allkeys)
    g = len(first)
    cols = {"key": column_take(allkeys, first)}
    names = []
    start = 0
    for s_i, (side, k) in enumerate(zip(sides, keys)):
        groups: list[list] = [[] for _ in range(g)]
        if len(k):
            vals = column_to_list(value_column(side))
            for i, c in enumerate(codes[start:start + len(k)].tolist()):
                groups[c].append(vals[i])
        start += len(k)
        name = f"v{s_i}"
        cols[name] = object_array(groups)
        names.append(name)
    return Batch(cols, ("key", tuple(names)))
