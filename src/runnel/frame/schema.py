"""Schemas of streaming DataFrames: column names and dtypes, inferred or given, checked per batch.

A frame's batch is a :class:`~runnel.batch.Batch` whose layout is the tuple of
its column names. Dtypes are spelled as strings: NumPy's names for numeric,
bool and datetime columns (``"int64"``, ``"float64"``, ``"bool"``,
``"datetime64[ns]"``), ``"string"`` and ``"binary"`` for Arrow columns and
``"object"`` for anything else.

Every batch entering a frame is *conformed* to the schema (:class:`Conform`):
the columns are put in schema order, an int column where the schema says
float is widened (pandas does the same), an object column of ``str``/``None``
becomes Arrow strings; anything else that does not fit fails the batch with a
:class:`SchemaError` naming the column, the stream and the batch time. Rows
are never dropped silently.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..batch import Batch, Column, column_to_list, infer_column, is_arrow, layout_columns, object_array
from ..listener import ms_to_datetime

__all__ = ["Schema", "SchemaError", "dtype_of", "empty_column", "frame_batch", "to_frame_batch"]


class SchemaError(ValueError):
    """A batch does not fit its frame's schema (the message names column, stream and batch time)."""


_ALIASES = {"int": "int64", "float": "float64", "str": "string", "bool": "bool", "object": "object",
            "string": "string", "bytes": "binary", "binary": "binary", "datetime64": "datetime64[ns]",
            "datetime": "datetime64[ns]"}


def normalize_dtype(dtype: Any) -> str:
    """``"int64"``, ``int``, ``np.float64``, ``"str"`` ... as one of the schema's dtype strings."""
    if isinstance(dtype, str) and dtype in _ALIASES:
        return _ALIASES[dtype]
    if dtype is str:
        return "string"
    if dtype is bytes:
        return "binary"
    if dtype is object:
        return "object"
    if isinstance(dtype, pa.DataType):
        if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
            return "string"
        if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
            return "binary"
        dtype = dtype.to_pandas_dtype()
    try:
        return str(np.dtype(dtype))
    except TypeError as e:
        raise TypeError(f"unknown dtype {dtype!r}: use a NumPy dtype, 'string', 'binary' or 'object'") from e


def dtype_of(col: Column) -> str:
    """The schema dtype string of a batch column."""
    if is_arrow(col):
        t = col.type
        return "string" if (pa.types.is_string(t) or pa.types.is_large_string(t)) else "binary"
    return str(col.dtype)


def empty_column(dtype: str) -> Column:
    """A column of no rows of ``dtype``."""
    if dtype == "string":
        return pa.array([], pa.string())
    if dtype == "binary":
        return pa.array([], pa.binary())
    return np.empty(0, dtype=np.dtype(dtype))


@dataclass(frozen=True)
class Schema:
    """Ordered column names and their dtypes.

    Examples
    --------
    >>> s = Schema.of({"k": "string", "v": float})
    >>> s.names, s.dtypes
    (('k', 'v'), ('string', 'float64'))
    """

    fields: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, spec: Any) -> "Schema":
        """From a Schema, a mapping ``{name: dtype}`` or a list of ``(name, dtype)``."""
        if isinstance(spec, Schema):
            return spec
        items = spec.items() if isinstance(spec, Mapping) else spec
        fields = tuple((str(n), normalize_dtype(d)) for n, d in items)
        names = [n for n, _ in fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate column names in schema: {dup}")
        return cls(fields)

    @classmethod
    def of_batch(cls, batch: Batch) -> "Schema":
        return cls(tuple((n, dtype_of(c)) for n, c in batch.columns.items()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.fields)

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(d for _, d in self.fields)

    def empty(self) -> Batch:
        """A batch of no rows with this schema."""
        return frame_batch({n: empty_column(d) for n, d in self.fields})

    def __repr__(self) -> str:
        return "Schema(" + ", ".join(f"{n}: {d}" for n, d in self.fields) + ")"


def frame_batch(columns: Mapping[str, Column]) -> Batch:
    """A Batch laid out as a frame: its records are tuples of all columns in order.

    Arrow large_string/large_binary columns (pandas' pyarrow strings) become
    string/binary, so every string column of a frame has one Arrow type.
    """
    return Batch({n: _narrow_arrow(c) for n, c in columns.items()}, tuple(columns))


def _narrow_arrow(c: Any) -> Any:
    if isinstance(c, pa.ChunkedArray):
        c = c.combine_chunks()
    if isinstance(c, pa.Array):
        if pa.types.is_large_string(c.type):
            return c.cast(pa.string())
        if pa.types.is_large_binary(c.type):
            return c.cast(pa.binary())
    return c


# --- records of any shape -> frame batches ---------------------------------------------------

def _from_dicts(values: list, columns: tuple[str, ...] | None) -> dict[str, Column]:
    names = list(columns) if columns is not None else list(dict.fromkeys(itertools.chain.from_iterable(values)))
    return {n: infer_column([d.get(n) for d in values]) for n in names}


def _from_tuples(values: list, columns: tuple[str, ...] | None) -> dict[str, Column]:
    width = len(values[0])
    names = columns if columns is not None else tuple(f"_{i}" for i in range(width))
    if any(len(v) != len(names) for v in values):
        bad = next(v for v in values if len(v) != len(names))
        raise SchemaError(f"a record {bad!r} has {len(bad)} fields, the frame has {len(names)} columns {list(names)}")
    return {n: infer_column(list(f)) for n, f in zip(names, zip(*values))}


def to_frame_batch(batch: Batch, columns: tuple[str, ...] | None) -> Batch:
    """Turn a batch of any record shape into a frame batch (before the schema is checked).

    Frame-shaped batches (pandas, Arrow, dicts of arrays) keep their columns;
    a stream of dicts or of tuples, a NumPy structured array, or a scalar
    stream become columns. ``columns`` names the columns (by position for
    tuples and scalars, by key for dicts).
    """
    names = layout_columns(batch.layout)
    if not batch.is_scalar and (columns is None or set(names) & set(columns)):
        # named columns (a frame, a table): kept by name; the schema check reports missing or extra ones
        order = list(columns) if columns is not None and set(names) == set(columns) else names
        return frame_batch({n: batch.columns[n] for n in order})
    if batch.is_scalar:
        col = batch.columns[batch.layout]
        if isinstance(col, np.ndarray) and col.dtype.names:   # NumPy structured records
            cols = {n: np.ascontiguousarray(col[n]) for n in col.dtype.names}
            if columns is not None:
                cols = {new: cols[old] for new, old in zip(columns, cols)} if set(columns) - set(cols) else \
                    {n: cols[n] for n in columns}
            return frame_batch(cols)
        if isinstance(col, np.ndarray) and col.dtype == object and len(col):
            values = col.tolist()
            if all(isinstance(v, dict) for v in values):
                return frame_batch(_from_dicts(values, columns))
            if all(isinstance(v, (tuple, list)) for v in values):
                return frame_batch(_from_tuples(values, columns))
        if columns is not None and len(columns) == 1:
            return frame_batch({columns[0]: col})
        if columns is None:
            return frame_batch({batch.layout: col})
        if len(batch) == 0:
            return Batch.empty()
        raise SchemaError(f"records like {column_to_list(col[:1] if not is_arrow(col) else col.slice(0, 1))[0]!r} "
                          f"cannot fill the {len(columns)} columns {list(columns)}")
    if columns is None:
        return frame_batch({n: batch.columns[n] for n in names})
    if len(names) != len(columns):
        raise SchemaError(f"records of {len(names)} fields ({list(names)}) cannot fill the "
                          f"{len(columns)} columns {list(columns)}")
    return frame_batch({new: batch.columns[old] for new, old in zip(columns, names)})


# --- checking ---------------------------------------------------------------------------------

def _fit_column(col: Column, want: str, name: str, where: str) -> Column:
    have = dtype_of(col)
    if have == want:
        return col
    if len(col) == 0:
        return empty_column(want)
    if want == "object":
        return object_array(column_to_list(col))
    if want in ("string", "binary") and isinstance(col, np.ndarray) and col.dtype == object:
        fitted = infer_column(col.tolist())
        if dtype_of(fitted) == want:
            return fitted
    if isinstance(col, np.ndarray) and col.dtype.kind in "iub" and want.startswith(("float", "int")):
        target = np.dtype(want)
        if target.kind == "f" or np.can_cast(col.dtype, target):
            return col.astype(target)
    if isinstance(col, np.ndarray) and col.dtype.kind == "f" and want.startswith("float"):
        return col.astype(want)
    if isinstance(col, np.ndarray) and col.dtype.kind == "M" and want.startswith("datetime64"):
        return col.astype(want)
    raise SchemaError(f"column {name!r} {where}: expected {want}, got {have} "
                      f"(values like {column_to_list(col if not is_arrow(col) else col)[:3]!r})")


@dataclass(eq=False)
class Conform:
    """Partition op: records of any shape -> a frame batch fitting ``schema`` (or SchemaError)."""
    schema: Schema | None
    columns: tuple[str, ...] | None
    stream: str
    time_ms: int

    def where(self) -> str:
        return f"of stream {self.stream} at batch time {ms_to_datetime(self.time_ms)}"

    def __call__(self, index: int, batch: Batch) -> Batch:
        try:
            fb = to_frame_batch(batch, self.columns)
        except SchemaError as e:
            raise SchemaError(f"{e} ({self.where()})") from None
        if self.schema is None:
            return fb
        if len(batch) == 0:
            return self.schema.empty()
        got, want = set(fb.columns), set(self.schema.names)
        if got != want:
            missing, extra = sorted(want - got), sorted(got - want)
            what = "; ".join(x for x in (f"missing column(s) {missing}" if missing else "",
                                         f"unexpected column(s) {extra}" if extra else "") if x)
            raise SchemaError(f"a batch {self.where()} does not fit the schema {self.schema}: {what}")
        return frame_batch({n: _fit_column(fb.columns[n], d, n, self.where()) for n, d in self.schema.fields})
