"""File output operations: one directory per batch, written atomically.

``save_as_text_files``, ``save_as_parquet_files`` and ``save_as_pickle_files``
are output operations (each a :class:`~runnel.dstream.outputs.ForEachDStream`):
for every batch time t of the stream — an empty batch too — they write the
directory ``<prefix>-<t in ms>[.<suffix>]`` (PySpark's ``rddToFileName``)
holding one ``part-NNNNN`` file per partition and a ``_SUCCESS`` marker.

Layout on disk while a batch is written, and after::

    out/.words-2000.tmp-<pid>-<hex>/part-00000   part files first,
    out/.words-2000.tmp-<pid>-<hex>/part-00001
    out/.words-2000.tmp-<pid>-<hex>/_SUCCESS     the marker last,
    out/words-2000/...                           then one rename makes it visible

So a reader never sees half a batch: the directory either does not exist or
is complete. Part files, the marker and both directories are fsynced before
and after the rename, so a batch whose checkpoint survived a power loss has
its output on disk too. The temp directory starts with ``.`` so ``text_file_stream``
and Hadoop-style readers ignore it. When the directory already exists (a
batch recomputed after recovery) it is replaced: the old one is renamed
aside, the new one renamed in, the old one removed. PySpark instead keeps
the old directory (it catches ``FileAlreadyExistsException``); for a
deterministic batch both give the same files, and replacing also repairs
output a different program version left behind.

Part files are written by the driver from the partitions' blocks
(zero-copy from shared memory under ``local[N]``), one partition at a time
for text and pickle, so memory holds one partition, not the whole batch.

Formats
-------
text     one line per record, ``str(record)`` UTF-8 encoded, each line ending
         in ``\\n``; a ``bytes`` record is written as its raw bytes (as
         PySpark's ``saveAsTextFile`` does). Read back with
         ``Context.text_file(directory)``.
parquet  the batch's columns as they are (zstd-compressed), one schema for
         all part files (so the whole batch needs every partition: it is the
         one format that holds a batch, not a partition, in memory); object
         columns go through pyarrow's type inference, and a column it cannot
         type (``1`` and ``"a"`` in one column) is a ``TypeError`` naming the
         stream, batch time and column. The record layout is kept in the
         schema metadata (``runnel.layout``) so :func:`read_parquet_files`
         gives back the same records.
pickle   a stream of pickled lists of up to 1024 records (cloudpickle, so
         instances of classes defined in ``__main__`` work). Read back with
         :func:`read_pickle_files` (``Context.pickle_file``). Like any pickle,
         only read files you trust.
"""

from __future__ import annotations

import json
import os
import pickle
from typing import TYPE_CHECKING, Any, Callable

import cloudpickle
import pyarrow as pa

from ..batch import Batch, infer_column
from ..listener import ms_to_datetime
from ..partfiles import (_partitions, _per_partition, _write_text_part, batch_path, check_path, part_name,
                         write_batch_dir)
from .outputs import ForEachDStream

if TYPE_CHECKING:
    from ..context import Context
    from ..dataset import Dataset
    from .base import DStream

_PICKLE_BATCH = 1024         # records per pickled list (PySpark's batchSize is 10; bigger is faster to load)
_LAYOUT_KEY = b"runnel.layout"


def _save(stream: "DStream", prefix: Any, suffix: str | None, op: str,
          write_parts: Callable[[str, "Dataset", str, int], None]) -> None:
    """Register the output: ``write_parts(tmp_dir, dataset, stream name, t)`` per batch."""
    prefix = check_path(prefix, op, "prefix")
    if suffix is not None and not isinstance(suffix, str):
        raise TypeError(f"{op}: suffix must be a string or None, got {suffix!r}")
    name = stream.name

    def job(t: int, ds: "Dataset") -> None:
        write_batch_dir(batch_path(prefix, suffix, t), lambda tmp: write_parts(tmp, ds, name, t))

    where = f"{prefix}-<time>" + ("" if suffix is None else f".{suffix}")
    ForEachDStream(stream.ssc, stream, job, op, None, f"{op} at {name} to {where}")


def save_as_text_files(stream: "DStream", prefix: str, suffix: str | None = None) -> None:
    """Save every batch as text: directory ``prefix-<time ms>[.suffix]``, one line per record.

    An output operation. Each partition becomes a ``part-NNNNN`` file with
    ``str(record)`` per line (``bytes`` records as they are); ``_SUCCESS``
    is written last and the directory appears atomically. Empty batches
    write a directory too. Read a batch back with ``Context.text_file(dir)``.

    Examples
    --------
    >>> import os, tempfile
    >>> from runnel import StreamingContext, ManualClock
    >>> out = tempfile.mkdtemp()
    >>> ssc = StreamingContext("local", 1, clock=ManualClock())
    >>> ssc.queue_stream([[1, 2], [3]]).map(lambda x: (x, x * x)).save_as_text_files(out + "/sq", "txt")
    >>> ssc.start(); ssc.run_batches(2); ssc.stop(stop_spark_context=False)
    >>> sorted(os.listdir(out))
    ['sq-1000.txt', 'sq-2000.txt']
    >>> with open(out + "/sq-1000.txt/part-00000") as f:
    ...     f.read()
    '(1, 1)\\n(2, 4)\\n'
    >>> ssc.context.text_file(out + "/sq-2000.txt").collect()
    ['(3, 9)']
    >>> ssc.context.stop()
    """
    _save(stream, prefix, suffix, "saveAsTextFiles", _per_partition(_write_text_part))


# -- parquet --------------------------------------------------------------------------------
def _arrow_column(col: Any, name: str, stream: str, t: int, op: str) -> pa.Array:
    if isinstance(col, pa.Array):
        return col
    if col.dtype != object:
        return pa.array(col)
    try:
        return pa.array(col.tolist())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as e:
        kinds = sorted({type(v).__name__ for v in col.tolist()})
        raise TypeError(f"{op}: stream {stream}, batch {ms_to_datetime(t)}: column {name!r} "
                        f"holds values Parquet cannot store in one column (types: {', '.join(kinds)}): {e}. "
                        "Map the records to one type per field first.") from e


def _arrow_table(part: Batch, stream: str, t: int, op: str) -> pa.Table:
    arrays = [_arrow_column(c, n, stream, t, op) for n, c in part.columns.items()]
    return pa.table(arrays, names=list(part.columns))


def _unified_tables(ds: "Dataset", stream: str, t: int,
                    op: str = "saveAsParquetFiles") -> tuple[list[pa.Table], Any]:
    """One table per partition, all with one schema, and the batch's record layout.

    A Parquet dataset needs one schema, but partitions type their columns
    independently (an empty partition has a null column; ints here, floats
    there). Types are unified as pyarrow's permissive promotion does (null
    -> any, int64 + float64 -> float64); partitions whose records have
    different shapes (pairs here, scalars there) are an error.
    """
    tables: list[pa.Table | None] = []
    layout = None
    for part in _partitions(ds):
        if len(part) == 0:
            tables.append(None)
            continue
        if layout is None:
            layout = (part.layout, part.names)
        elif (part.layout, part.names) != layout:
            raise TypeError(f"{op}: stream {stream}, batch {ms_to_datetime(t)}: partitions hold "
                            f"records of different shapes ({layout[0]!r} and {part.layout!r}); one Parquet "
                            "dataset needs one schema")
        tables.append(_arrow_table(part, stream, t, op))
    present = [x for x in tables if x is not None]
    if not present:
        schema = _arrow_table(Batch.empty(), stream, t, op).schema
        return [schema.empty_table() for _ in tables] or [schema.empty_table()], Batch.empty().layout
    try:
        schema = pa.unify_schemas([x.schema for x in present], promote_options="permissive")
        out = [schema.empty_table() if x is None else x.select(schema.names).cast(schema) for x in tables]
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise TypeError(f"{op}: stream {stream}, batch {ms_to_datetime(t)}: partitions have "
                        f"column types Parquet cannot unify: {e}") from e
    return out, layout[0]


def save_as_parquet_files(stream: "DStream", prefix: str, suffix: str | None = None) -> None:
    """Save every batch as a Parquet dataset: directory ``prefix-<time ms>[.suffix]``.

    An output operation. The batch's columns are written as they are, one
    zstd-compressed ``part-NNNNN.parquet`` per partition, all with one
    schema, ``_SUCCESS`` last, the directory appearing atomically. Pairs are
    columns ``key`` and ``value``, n-tuples ``_0`` … ``_{n-1}``, scalars
    ``value``. Object columns go through pyarrow's inference; a column it
    cannot type is a ``TypeError`` naming the stream, batch time and column.
    :func:`read_parquet_files` gives the records back.

    Examples
    --------
    >>> import tempfile, pyarrow.parquet as pq
    >>> from runnel import StreamingContext, ManualClock
    >>> out = tempfile.mkdtemp()
    >>> ssc = StreamingContext("local", 1, clock=ManualClock())
    >>> ssc.queue_stream([[("a", 1), ("b", 2)]]).save_as_parquet_files(out + "/kv")
    >>> ssc.start(); ssc.run_batches(1); ssc.stop()
    >>> pq.read_table(out + "/kv-1000").to_pylist()
    [{'key': 'a', 'value': 1}, {'key': 'b', 'value': 2}]
    """
    import pyarrow.parquet as pq

    def write_parts(tmp: str, ds: "Dataset", name: str, t: int) -> None:
        tables, layout = _unified_tables(ds, name, t)
        meta = {_LAYOUT_KEY: json.dumps(layout).encode()}
        for i, table in enumerate(tables):
            pq.write_table(table.replace_schema_metadata(meta), os.path.join(tmp, part_name(i) + ".parquet"),
                           compression="zstd")

    _save(stream, prefix, suffix, "saveAsParquetFiles", write_parts)


# -- pickle ------------------------------------------------------------------------------------
def _write_pickle_part(path: str, part: Batch) -> None:
    with open(path, "wb") as f:
        for a in range(0, len(part), _PICKLE_BATCH):
            cloudpickle.dump(part.slice(a, a + _PICKLE_BATCH).to_records(), f, protocol=pickle.HIGHEST_PROTOCOL)


def save_as_pickle_files(stream: "DStream", prefix: str, suffix: str | None = None) -> None:
    """Save every batch's records pickled: directory ``prefix-<time ms>[.suffix]``.

    An output operation. Each partition becomes a ``part-NNNNN`` file of
    pickled lists of records (cloudpickle), ``_SUCCESS`` last, the
    directory appearing atomically. Read back with :func:`read_pickle_files`
    (``Context.pickle_file``), which returns the exact records.

    Examples
    --------
    >>> import tempfile
    >>> from runnel import StreamingContext, ManualClock
    >>> from runnel.dstream.savers import read_pickle_files
    >>> out = tempfile.mkdtemp()
    >>> ssc = StreamingContext("local", 1, clock=ManualClock())
    >>> ssc.queue_stream([[{"a": [1, 2]}, (1, "x", None)]]).save_as_pickle_files(out + "/p")
    >>> ssc.start(); ssc.run_batches(1); ssc.stop(stop_spark_context=False)
    >>> read_pickle_files(ssc.context, out + "/p-1000").collect()
    [{'a': [1, 2]}, (1, 'x', None)]
    >>> ssc.context.stop()
    """
    _save(stream, prefix, suffix, "saveAsPickleFiles", _per_partition(_write_pickle_part))


# -- reading back --------------------------------------------------------------------------------
def _data_files(path: str, what: str) -> list[str]:
    """Files of a saved directory (hidden and ``_`` files skipped), or the file itself."""
    if os.path.isdir(path):
        return sorted(os.path.join(path, f) for f in os.listdir(path) if not f.startswith((".", "_")))
    if os.path.exists(path):
        return [path]
    raise FileNotFoundError(f"{what}: no such file or directory: {path}")


def _read_pickled(path: str) -> list:
    out: list = []
    with open(path, "rb") as f:
        while True:
            try:
                chunk = pickle.load(f)
            except EOFError:
                return out
            if not isinstance(chunk, list):
                raise ValueError(f"pickleFile: {path} is not a runnel/PySpark-style pickle file "
                                 f"(found a {type(chunk).__name__}, expected lists of records)")
            out.extend(chunk)


def read_pickle_files(ctx: "Context", path: str, min_partitions: int | None = None) -> "Dataset":
    """Records saved by ``save_as_pickle_files``: one partition per part file.

    ``path`` is a batch directory or one part file (PySpark's
    ``SparkContext.pickleFile``). Only read files you trust.
    """
    ctx._check()
    batches = [Batch.from_records(_read_pickled(f)) for f in _data_files(path, "pickleFile")]
    return ctx.dataset_of(batches or [Batch.empty()], f"pickleFile {path}")


def read_parquet_files(ctx: "Context", path: str) -> "Dataset":
    """Records saved by ``save_as_parquet_files``: one partition per part file.

    The record layout stored in the schema metadata is restored, so pairs
    come back as pairs and tuples as tuples.
    """
    import pyarrow.parquet as pq
    ctx._check()
    batches = []
    for f in _data_files(path, "parquetFile"):
        table = pq.read_table(f)
        meta = table.schema.metadata or {}
        layout = json.loads(meta[_LAYOUT_KEY]) if _LAYOUT_KEY in meta else None
        layout = _tuplify(layout) if layout is not None else None
        cols = {n: (infer_column([]) if table.column(n).type == pa.null() else table.column(n))
                for n in table.column_names}
        batches.append(Batch(cols, layout) if len(table) else Batch.empty())
    return ctx.dataset_of(batches or [Batch.empty()], f"parquetFile {path}")


def _tuplify(layout: Any) -> Any:
    return layout if isinstance(layout, str) else tuple(_tuplify(x) for x in layout)


# -- installing the methods -------------------------------------------------------------------------
_DSTREAM_METHODS = {"save_as_text_files": save_as_text_files, "save_as_parquet_files": save_as_parquet_files,
                    "save_as_pickle_files": save_as_pickle_files}


def install() -> None:
    """Attach the save methods to DStream and ``pickle_file`` to Context (their camelCase
    aliases are in ``runnel.aliases``, installed after this).

    Methods the classes already define (delegating here) are kept as they
    are. Idempotent.
    """
    from ..context import Context
    from .base import DStream
    for snake, fn in _DSTREAM_METHODS.items():
        if snake not in vars(DStream):
            setattr(DStream, snake, fn)
    if "pickle_file" not in vars(Context):
        Context.pickle_file = read_pickle_files
