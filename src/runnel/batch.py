"""Batch: the unit of data — immutable, equally long, named, typed columns.

A column is one of

* a NumPy array of a numeric, bool or datetime dtype (read-only);
* a ``pyarrow.Array`` of string / large_string / binary / large_binary type
  (may hold nulls, which come back as ``None``);
* a NumPy ``object`` array: the fallback for anything else (mixed types,
  ``None`` among numbers, lists, nested tuples, dates ...).

Records are a *view* of the columns, described by the batch's ``layout``:
a column name is a scalar taken from that column, a tuple of layouts is a
Python tuple.  So ``"value"`` is a stream of scalars, ``("key", "value")`` a
stream of pairs, ``("key", ("v", "w"))`` the output of a join.  The layout is
a property of a batch, not of a stream: the next batch of the same stream may
hold strings where this one held ints.

``to_records`` gives back exactly the Python values a PySpark user expects:
``int``/``float``/``bool``/``str``/``bytes``/``tuple``, never NumPy scalars.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np
import pyarrow as pa

Column = Union[np.ndarray, pa.Array]
Layout = Union[str, tuple]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_ARROW_KINDS = (pa.types.is_string, pa.types.is_large_string,
                pa.types.is_binary, pa.types.is_large_binary)


def is_arrow(col: Column) -> bool:
    return isinstance(col, pa.Array)


def is_object(col: Column) -> bool:
    return isinstance(col, np.ndarray) and col.dtype == object


def _freeze(col: Column) -> Column:
    if type(col) is np.ndarray and col.ndim == 1 and col.dtype.kind not in "US":   # most columns: at once
        if col.flags.writeable:
            col = col.view()
            col.flags.writeable = False
        return col
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if isinstance(col, pa.Array):
        if not any(k(col.type) for k in _ARROW_KINDS):
            # numeric Arrow arrays become NumPy (zero-copy when no nulls)
            if col.null_count == 0 and (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                                        or pa.types.is_boolean(col.type) or pa.types.is_timestamp(col.type)):
                return _freeze(col.to_numpy(zero_copy_only=False))
            return _freeze(object_array(col.to_pylist()))
        return col
    col = np.asarray(col)
    if col.ndim != 1:
        raise ValueError(f"a column must be one-dimensional, got shape {col.shape}")
    if col.dtype.kind in "US":
        return pa.array(col.tolist(), pa.string() if col.dtype.kind == "U" else pa.binary())
    if col.flags.writeable:
        col = col.view()
        col.flags.writeable = False
    return col


def object_array(values: Sequence) -> np.ndarray:
    """An object column holding ``values`` as they are (tuples stay scalars)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _native_scalar_type(v: Any) -> type:
    t = type(v)
    if t is int or t is float or t is bool or t is str or t is bytes:
        return t
    if isinstance(v, np.generic):
        if isinstance(v, np.bool_):
            return bool
        if isinstance(v, np.integer):
            return int
        if isinstance(v, np.floating):
            return float
    return t


def infer_column(values: Sequence) -> Column:
    """Build the narrowest column that gives ``values`` back exactly.

    ints -> int64 (if all fit), floats -> float64, bools -> bool, str (and
    None) -> Arrow string, bytes (and None) -> Arrow binary; anything else,
    including ints mixed with floats (``1`` must not come back as ``1.0``),
    -> object.
    """
    n = len(values)
    if n == 0:
        return _freeze(np.empty(0, dtype=object))
    types = set(map(_native_scalar_type, values))
    if len(types) == 1:
        (t,) = types
        if t is float:
            return _freeze(np.array(values, dtype=np.float64))
        if t is bool:
            return _freeze(np.array(values, dtype=np.bool_))
        if t is int:
            try:
                return _freeze(np.array(values, dtype=np.int64))
            except OverflowError:
                return _freeze(object_array(values))
        if t is str:
            return pa.array(values, pa.string())
        if t is bytes:
            return pa.array(values, pa.binary())
    elif len(types) == 2 and type(None) in types:
        if str in types:
            return pa.array(values, pa.string())
        if bytes in types:
            return pa.array(values, pa.binary())
    return _freeze(object_array(values))


def column_to_list(col: Column) -> list:
    """The column's values as native Python objects."""
    if isinstance(col, pa.Array):
        return col.to_pylist()
    if col.dtype == object:
        return col.tolist()
    if col.dtype.kind == "M":
        return [None if np.isnat(x) else x for x in col.astype("datetime64[us]").tolist()]
    return col.tolist()


def column_take(col: Column, indices: np.ndarray) -> Column:
    if isinstance(col, pa.Array):
        return col.take(pa.array(indices, pa.int64()))
    return _freeze(col[indices])


def column_slice(col: Column, start: int, stop: int) -> Column:
    if isinstance(col, pa.Array):
        return col.slice(start, stop - start)
    return col[start:stop]


def _arrow_family(t: pa.DataType) -> str:
    return "str" if (pa.types.is_string(t) or pa.types.is_large_string(t)) else "bin"


def concat_columns(cols: Sequence[Column]) -> Column:
    """Concatenate columns, widening to object when their types differ."""
    cols = [c for c in cols if len(c)] or list(cols[:1])
    if len(cols) == 1:
        return cols[0]
    if all(isinstance(c, pa.Array) for c in cols):
        fams = {_arrow_family(c.type) for c in cols}
        if len(fams) == 1:
            large = any(pa.types.is_large_string(c.type) or pa.types.is_large_binary(c.type) for c in cols)
            fam = fams.pop()
            typ = (pa.large_string() if large else pa.string()) if fam == "str" else \
                  (pa.large_binary() if large else pa.binary())
            return pa.concat_arrays([c.cast(typ) if c.type != typ else c for c in cols])
    elif all(isinstance(c, np.ndarray) for c in cols):
        dts = {c.dtype for c in cols}
        if len(dts) == 1:
            return _freeze(np.concatenate(cols))
    return _freeze(object_array(list(itertools.chain.from_iterable(column_to_list(c) for c in cols))))


def layout_columns(layout: Layout) -> list[str]:
    """Column names a layout refers to, in record order."""
    if isinstance(layout, str):
        return [layout]
    return [name for sub in layout for name in layout_columns(sub)]


def _assemble(batch: "Batch", layout: Layout) -> list:
    if isinstance(layout, str):
        return column_to_list(batch.columns[layout])
    return list(zip(*[_assemble(batch, sub) for sub in layout])) if len(batch) else []


class Batch:
    """An immutable set of equally long, named, typed columns.

    Parameters
    ----------
    columns : mapping of str to array-like
        NumPy arrays, ``pyarrow`` string/binary arrays or object arrays.
    layout : str or tuple, optional
        How columns form records (see the module docstring). Defaults to
        ``"value"`` for a single column named ``value``, ``("key", "value")``
        for exactly those two columns, otherwise a tuple of all columns.

    Examples
    --------
    >>> b = Batch.from_records([("a", 1), ("b", 2)])
    >>> b.layout, len(b)
    (('key', 'value'), 2)
    >>> b.to_records()
    [('a', 1), ('b', 2)]
    """

    __slots__ = ("columns", "layout", "_len")

    def __init__(self, columns: Mapping[str, Any], layout: Layout | None = None):
        cols = {str(k): _freeze(v) for k, v in columns.items()}
        lengths = {len(c) for c in cols.values()}
        if len(lengths) > 1:
            raise ValueError("columns of a batch must have equal lengths, got "
                             + ", ".join(f"{k}={len(c)}" for k, c in cols.items()))
        if layout is None:
            names = tuple(cols)
            layout = names[0] if names == ("value",) else names
        missing = [n for n in layout_columns(layout) if n not in cols]
        if missing:
            raise ValueError(f"layout {layout!r} names missing columns {missing}")
        self.columns: dict[str, Column] = cols
        self.layout: Layout = layout
        self._len = lengths.pop() if lengths else 0

    @classmethod
    def _of_frozen(cls, columns: dict, layout: Layout, length: int) -> "Batch":
        """A batch of columns taken from batches (frozen, ``length`` long, ``layout`` checked): no checks.
        For the block stores, which hand back what they were given."""
        b = object.__new__(cls)
        b.columns, b.layout, b._len = columns, layout, length
        return b

    # -- construction -----------------------------------------------------
    @classmethod
    def empty(cls) -> "Batch":
        return cls({"value": np.empty(0, dtype=object)}, "value")

    @classmethod
    def from_records(cls, records: Iterable) -> "Batch":
        """Infer columns from Python records.

        A list of plain 2-tuples becomes a pair batch (``key``, ``value``);
        plain n-tuples become ``_0`` … ``_{n-1}``; anything else is a stream
        of scalars in one ``value`` column. Namedtuples and lists stay whole
        values, so they come back as they went in.
        """
        records = records if isinstance(records, list) else list(records)
        if not records:
            return cls.empty()
        first = records[0]
        if type(first) is tuple and len(first) > 0:
            width = len(first)
            if all(type(r) is tuple and len(r) == width for r in records):
                names = ("key", "value") if width == 2 else tuple(f"_{i}" for i in range(width))
                fields = list(zip(*records))
                return cls({n: infer_column(f) for n, f in zip(names, fields)}, names)
        return cls({"value": infer_column(records)}, "value")

    @classmethod
    def from_values(cls, values: Any) -> "Batch":
        """A scalar batch from a NumPy array, Arrow array or list."""
        if isinstance(values, (np.ndarray, pa.Array, pa.ChunkedArray)):
            return cls({"value": values}, "value")
        return cls({"value": infer_column(list(values))}, "value")

    @classmethod
    def from_pairs(cls, keys: Any, values: Any) -> "Batch":
        return cls({"key": keys, "value": values}, ("key", "value"))

    @classmethod
    def from_pandas(cls, df: Any, layout: Layout | None = None) -> "Batch":
        """From a pandas DataFrame (or Series, which gives a scalar batch)."""
        import pandas as pd
        if isinstance(df, pd.Series):
            return cls({"value": _from_pandas_column(df)}, "value")
        return cls({str(c): _from_pandas_column(df[c]) for c in df.columns}, layout)

    @classmethod
    def from_arrow(cls, table: Any, layout: Layout | None = None) -> "Batch":
        """From a ``pyarrow.Table`` or ``RecordBatch``."""
        return cls({name: table.column(i) for i, name in enumerate(table.column_names)}, layout)

    @classmethod
    def coerce(cls, data: Any) -> "Batch":
        """Turn whatever a user hands us (records, arrays, frames, tables) into a Batch."""
        if isinstance(data, Batch):
            return data
        if isinstance(data, (pa.Table, pa.RecordBatch)):
            return cls.from_arrow(data)
        if isinstance(data, (np.ndarray, pa.Array, pa.ChunkedArray)):
            return cls.from_values(data)
        mod = type(data).__module__
        if mod.startswith("pandas"):
            return cls.from_pandas(data)
        if mod.startswith("polars"):
            return cls.from_arrow(data.to_arrow())
        if isinstance(data, dict):
            return cls(data)
        return cls.from_records(data)

    # -- access -----------------------------------------------------------
    def __len__(self) -> int:
        return self._len

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def is_pairs(self) -> bool:
        return isinstance(self.layout, tuple) and len(self.layout) == 2

    @property
    def is_scalar(self) -> bool:
        return isinstance(self.layout, str)

    def __getitem__(self, name: str) -> Column:
        return self.columns[name]

    def __repr__(self) -> str:
        cols = ", ".join(f"{k}: {_describe(c)}" for k, c in self.columns.items())
        return f"Batch({self._len} rows; {cols}; layout={self.layout!r})"

    def nbytes(self) -> int:
        total = 0
        for c in self.columns.values():
            total += c.nbytes if isinstance(c, pa.Array) or c.dtype != object else 8 * len(c)
        return total

    # -- records ----------------------------------------------------------
    def to_records(self) -> list:
        """The batch as a list of native Python records."""
        return _assemble(self, self.layout)

    def sub(self, layout: Layout) -> "Batch":
        """A view of part of the records (e.g. keys of a pair batch)."""
        return Batch({n: self.columns[n] for n in layout_columns(layout)}, layout)

    def keys_batch(self) -> "Batch":
        if not self.is_pairs:
            raise TypeError(f"expected key-value pairs, got records of layout {self.layout!r}")
        return self.sub(self.layout[0])

    def values_batch(self) -> "Batch":
        if not self.is_pairs:
            raise TypeError(f"expected key-value pairs, got records of layout {self.layout!r}")
        return self.sub(self.layout[1])

    # -- row selection ----------------------------------------------------
    def take(self, indices: np.ndarray) -> "Batch":
        indices = np.asarray(indices, dtype=np.int64)
        return Batch({k: column_take(c, indices) for k, c in self.columns.items()}, self.layout)

    def slice(self, start: int, stop: int) -> "Batch":
        stop = min(stop, self._len)
        return Batch({k: column_slice(c, start, stop) for k, c in self.columns.items()}, self.layout)

    def filter(self, mask: np.ndarray) -> "Batch":
        return self.take(np.flatnonzero(mask))

    # -- conversion -------------------------------------------------------
    def to_pandas(self):
        """A pandas DataFrame with one column per batch column."""
        import pandas as pd
        data = {}
        for k, c in self.columns.items():
            if isinstance(c, pa.Array):
                data[k] = c.to_pandas()
            else:
                data[k] = pd.Series(c, copy=False)
        return pd.DataFrame(data)

    def to_arrow(self) -> pa.Table:
        """A ``pyarrow.Table`` (object columns are converted by pyarrow's inference)."""
        arrays = [c if isinstance(c, pa.Array) else
                  (pa.array(c.tolist()) if c.dtype == object else pa.array(c))
                  for c in self.columns.values()]
        return pa.table(arrays, names=list(self.columns))


def _describe(c: Column) -> str:
    return str(c.type) if isinstance(c, pa.Array) else str(c.dtype)


def _from_pandas_column(s) -> Column:
    arr = s.array
    if hasattr(arr, "_pa_array") or hasattr(arr, "__arrow_array__"):
        try:
            a = pa.array(arr)
            if isinstance(a, pa.ChunkedArray):
                a = a.combine_chunks()
            if any(k(a.type) for k in _ARROW_KINDS):
                return a
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            pass
    values = s.to_numpy()
    if values.dtype == object:
        return infer_column(values.tolist())
    return values


def concat_batches(batches: Sequence[Batch]) -> Batch:
    """Concatenate batches in order; records of different shapes fall back to objects."""
    batches = [b for b in batches if len(b)]
    if not batches:
        return Batch.empty()
    if len(batches) == 1:
        return batches[0]
    layout = batches[0].layout
    if all(b.layout == layout and b.names == batches[0].names for b in batches):
        return Batch({k: concat_columns([b.columns[k] for b in batches]) for k in batches[0].names}, layout)
    # different record shapes in one partition: keep the records exactly
    return Batch({"value": object_array(list(itertools.chain.from_iterable(b.to_records() for b in batches)))},
                 "value")
