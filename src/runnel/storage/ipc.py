"""Batch <-> Arrow IPC *file* format: the on-the-wire and at-rest form of a block.

Used by the block stores (shared memory, disk), and meant to be reused by
checkpoints and the write-ahead log, so the format is documented here.

One Arrow IPC file holds one record batch with one Arrow column per Batch
column, in the batch's column order:

=========================  ============================  ======================================
Batch column               Arrow column                  read back as
=========================  ============================  ======================================
int/uint/float32/float64   same Arrow type               zero-copy read-only NumPy view
bool                       bool (bit-packed)             NumPy bool (one unpacking copy)
datetime64 / timedelta64   timestamp / duration (s..ns)  zero-copy NumPy view; NaT stays NaT
  (s, ms, us, ns)           written from the int64 view   (it is stored as a value, not a null)
any other NumPy dtype      fixed_size_binary(itemsize)   zero-copy ``np.frombuffer`` view
Arrow string/binary(large) the array itself (with nulls)  the Arrow array (zero-copy)
object                     null-typed placeholder        fresh Python objects (unpickled)
=========================  ============================  ======================================

Every NumPy column's field carries ``runnel.numpy = dtype.str`` in its field
metadata, so the exact dtype comes back. The layout (nested tuples of column
names) goes to the schema metadata as JSON (``runnel.layout``; tuples as lists).

Object columns
--------------
An object column is a ``pa.null()`` placeholder (zero bytes for any number of
rows, keeps the column's name and position) plus the whole column pickled as
one list (protocol 5, cloudpickle when plain pickle fails) in the *record
batch's* custom metadata under ``runnel.object.<column index>``. Why there:

* not a binary column: a column must have one slot per row, so a single
  pickle would cost an offsets buffer of 8 bytes a row; one pickle per row is
  ~5x slower to write than one pickle of the list and loses nothing we need;
* not the schema metadata: the IPC file format writes the schema twice
  (header and footer), so the pickle would be stored twice; record-batch
  metadata is written once and belongs to its batch, which also suits a
  multi-batch log;
* with ``compression="zstd"`` the pickle is zstd-compressed by us (Arrow's
  body compression does not cover metadata), flagged by
  ``runnel.object = "pickle+zstd"`` in the field metadata.

Reading unpickles on every call, so callers always get fresh objects: a user
function that mutates a list it was given cannot change a stored block.
Limit: flatbuffer messages are < 2 GiB, so one object column's pickle must be
smaller than that (object columns are the slow fallback anyway).
"""

from __future__ import annotations

import functools
import json
import pickle
from typing import Any

import numpy as np
import pyarrow as pa

from runnel.batch import Batch, Layout, object_array

__all__ = ["write_batch", "batch_to_bytes", "read_batch", "FORMAT_VERSION"]

FORMAT_VERSION = "1"

_K_LAYOUT = b"runnel.layout"
_K_VERSION = b"runnel.format"
_K_NUMPY = b"runnel.numpy"
_K_OBJECT = b"runnel.object"
_TIME_UNITS = ("s", "ms", "us", "ns")
_ARROW_KEPT = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


# -- layout ------------------------------------------------------------------
@functools.lru_cache(maxsize=1024)           # a stream's batches share a few layouts; saves ~10 us a block
def _layout_to_json(layout: Layout) -> str:
    def enc(x):
        return x if isinstance(x, str) else [enc(s) for s in x]
    return json.dumps(enc(layout))


@functools.lru_cache(maxsize=1024)
def _layout_from_json(text: str | bytes) -> Layout:
    def dec(x):
        return x if isinstance(x, str) else tuple(dec(s) for s in x)
    return dec(json.loads(text))


# -- pickling object columns ----------------------------------------------------
def dumps_objects(values: list) -> bytes:
    """Pickle a list of arbitrary values (protocol 5; cloudpickle for lambdas & co)."""
    try:
        return pickle.dumps(values, protocol=5)
    except Exception:
        import cloudpickle
        return cloudpickle.dumps(values, protocol=5)


def _zstd_compress(data: bytes) -> bytes:
    import zstandard
    return zstandard.ZstdCompressor(level=3).compress(data)


def _zstd_decompress(data: bytes) -> bytes:
    import zstandard
    return zstandard.ZstdDecompressor().decompress(data)


# -- encoding ----------------------------------------------------------------------
def _encode_numpy(arr: np.ndarray) -> pa.Array:
    dt = arr.dtype
    if not dt.isnative:
        arr = arr.astype(dt.newbyteorder("="))
    kind = dt.kind
    if kind in "iu" or (kind == "f" and dt.itemsize in (4, 8)):
        return pa.array(arr)                      # zero-copy when contiguous
    if kind == "b":
        return pa.array(arr, pa.bool_())
    if kind in "Mm":
        unit, count = np.datetime_data(dt)
        if count == 1 and unit in _TIME_UNITS:
            typ = pa.timestamp(unit) if kind == "M" else pa.duration(unit)
            # through the int64 view: NaT must stay a value (pa.array would make it null)
            return pa.array(arr.view(np.int64), pa.int64()).view(typ)
    raw = np.ascontiguousarray(arr).view(np.uint8)
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(dt.itemsize), len(arr), [None, pa.py_buffer(raw)])


def _dtype_to_text(dt: np.dtype) -> str:
    """``dtype.str``, or for a structured dtype (whose ``str`` is a bare ``|V<n>``) its JSON ``descr``."""
    return json.dumps(dt.descr) if dt.fields else dt.str


def _dtype_from_text(text: str) -> np.dtype:
    return np.dtype(_descr(json.loads(text))) if text.startswith("[") else np.dtype(text)


def _descr(fields: list) -> list:
    """A ``dtype.descr`` back from JSON: tuples again, nested structures and sub-array shapes too."""
    out = []
    for name, typ, *shape in fields:
        typ = _descr(typ) if isinstance(typ, list) else typ
        out.append((name, typ, tuple(shape[0])) if shape else (name, typ))
    return out


def _to_record_batch(batch: Batch, compression: str | None) -> tuple[pa.RecordBatch, dict]:
    arrays, fields, batch_meta = [], [], {}
    for i, (name, col) in enumerate(batch.columns.items()):
        if isinstance(col, pa.Array):
            if not any(k(col.type) for k in _ARROW_KEPT):
                raise TypeError(f"column {name!r}: unsupported Arrow type {col.type}")
            arrays.append(col)
            fields.append(pa.field(name, col.type))
        elif col.dtype == object:
            blob = dumps_objects(list(col))
            kind = b"pickle"
            if compression == "zstd":
                blob, kind = _zstd_compress(blob), b"pickle+zstd"
            batch_meta[b"runnel.object.%d" % i] = blob
            arrays.append(pa.nulls(len(col)))
            fields.append(pa.field(name, pa.null(), metadata={_K_OBJECT: kind}))
        else:
            a = _encode_numpy(col)
            arrays.append(a)
            fields.append(pa.field(name, a.type, metadata={_K_NUMPY: _dtype_to_text(col.dtype).encode()}))
    schema = pa.schema(fields, metadata={_K_LAYOUT: _layout_to_json(batch.layout).encode(),
                                         _K_VERSION: FORMAT_VERSION.encode()})
    return pa.RecordBatch.from_arrays(arrays, schema=schema), batch_meta


def _write_options(compression: str | None) -> pa.ipc.IpcWriteOptions:
    if compression not in (None, "zstd", "lz4"):
        raise ValueError(f"compression must be None, 'zstd' or 'lz4', got {compression!r}")
    return pa.ipc.IpcWriteOptions(compression=compression)


def write_batch(batch: Batch, sink: Any, compression: str | None = None) -> int:
    """Write ``batch`` as an Arrow IPC file to ``sink``.

    Parameters
    ----------
    batch : Batch
    sink : str, path-like, pyarrow.NativeFile or writable file object
    compression : {None, "zstd", "lz4"}
        Arrow IPC body compression (object-column pickles are zstd-compressed
        by runnel when it is ``"zstd"``).

    Returns
    -------
    int
        Bytes written (when the sink can tell, else -1).
    """
    rb, batch_meta = _to_record_batch(batch, compression)
    with pa.ipc.new_file(sink, rb.schema, options=_write_options(compression)) as writer:
        writer.write_batch(rb, custom_metadata=batch_meta or None)
    try:
        return sink.tell()
    except Exception:
        return -1


def batch_to_buffer(batch: Batch, compression: str | None = None) -> pa.Buffer:
    """Like :func:`batch_to_bytes` without the final copy into ``bytes``."""
    out = pa.BufferOutputStream()
    write_batch(batch, out, compression)
    return out.getvalue()


def batch_to_bytes(batch: Batch, compression: str | None = None) -> bytes:
    """The Arrow IPC file bytes of ``batch``.

    Examples
    --------
    >>> b = Batch.from_records([("a", 1), ("b", [2])])
    >>> read_batch(batch_to_bytes(b)).to_records()
    [('a', 1), ('b', [2])]
    """
    return batch_to_buffer(batch, compression).to_pybytes()


# -- decoding --------------------------------------------------------------------------
def _decode_numpy(col: pa.Array, dtype: np.dtype) -> np.ndarray:
    native = dtype.newbyteorder("=") if not dtype.isnative else dtype
    if pa.types.is_fixed_size_binary(col.type):
        if len(col) == 0:
            out = np.empty(0, native)
        else:
            out = np.frombuffer(col.buffers()[1], dtype=native)[col.offset:col.offset + len(col)]
    elif pa.types.is_boolean(col.type):
        out = col.to_numpy(zero_copy_only=False)
    else:
        out = col.to_numpy(zero_copy_only=True)
        if out.dtype != native:
            out = out.view(native) if out.dtype.itemsize == native.itemsize else out.astype(native)
    if not dtype.isnative:
        out = out.astype(dtype)
    return out


def read_batch(source: Any) -> Batch:
    """Read a Batch from Arrow IPC file data.

    Parameters
    ----------
    source : bytes, memoryview, pyarrow.Buffer, pyarrow.NativeFile (e.g. a
        ``pyarrow.memory_map``) or a path
        With a memory map the NumPy and Arrow columns are zero-copy, read-only
        views of the mapping (they keep it alive); object columns are fresh.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = pa.py_buffer(source)
    elif isinstance(source, str) or hasattr(source, "__fspath__"):
        source = pa.memory_map(str(source), "r")
    reader = pa.ipc.open_file(source)
    schema = reader.schema
    meta = schema.metadata or {}
    if _K_LAYOUT not in meta:
        raise ValueError("not a runnel batch: the Arrow schema has no runnel.layout metadata")
    layout = _layout_from_json(meta[_K_LAYOUT])
    if reader.num_record_batches:
        rb, batch_meta = reader.get_batch_with_custom_metadata(0)
        batch_meta = batch_meta or {}
    else:
        rb, batch_meta = pa.RecordBatch.from_pylist([], schema=schema), {}
    columns: dict[str, Any] = {}
    for i, field in enumerate(schema):
        col = rb.column(i)
        fmeta = field.metadata or {}
        if _K_OBJECT in fmeta:
            blob = batch_meta.get(b"runnel.object.%d" % i)
            if blob is None:
                raise ValueError(f"column {field.name!r}: object column without its pickled values")
            if fmeta[_K_OBJECT] == b"pickle+zstd":
                blob = _zstd_decompress(blob)
            values = pickle.loads(blob)
            columns[field.name] = object_array(values)
        elif _K_NUMPY in fmeta:
            columns[field.name] = _decode_numpy(col, _dtype_from_text(fmeta[_K_NUMPY].decode()))
        else:
            columns[field.name] = col
    return Batch(columns, layout)
