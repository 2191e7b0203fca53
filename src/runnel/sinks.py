"""Exactly-once outputs: sinks that make a re-run batch harmless.

After a driver crash runnel recovers from its checkpoint and runs again the
batches that were pending, so an output can see the same batch time twice —
possibly computed by a newer program, possibly with another partition count.
Three tools make that harmless, all running in the driver, partition by
partition (a batch is never collected whole):

``foreach_partition_transactional(fn)``
    ``fn(batch_time_ms, partition_index, records)``: the pair is the same on
    every run of a batch, so ``fn`` builds a unique id from it and commits the
    id with its writes, skipping what an earlier run committed (Spark's
    "transactional updates" pattern). Exactly once only if a re-run splits the
    batch into the same partitions; otherwise use a sink below, which commits
    a whole batch at once.

``save_to_parquet(path)``
    One Parquet table for the whole stream, a Hive-style directory per batch::

        path/batch_time=1000/part-00000.parquet   one file per non-empty partition
        path/batch_time=1000/_SUCCESS
        path/batch_time=2000/_SUCCESS             an empty batch: no part file
        path/.batch_time=3000.tmp-<pid>-<hex>/    being written (hidden)

    Each batch directory appears with one rename (``partfiles.write_batch_dir``),
    so readers see a batch whole or not at all; a re-run replaces it. While it
    is replaced a reader may briefly see neither version, never both.
    :func:`read_parquet_table` reads every committed batch as one table.
    (``save_as_parquet_files`` writes the same per-batch directories but as
    separate datasets named ``prefix-<time>``, Spark-style.)

``save_to_sqlite(path, table)``
    Rows get a ``batch_time`` column; one transaction deletes the table's
    rows of that batch time, inserts the new ones and records the batch in
    ``_runnel_batches(table_name, batch_time, rows)``.

Both sinks *replace* a re-run batch rather than skip it: for a deterministic
program the two are the same, and replacing also repairs what an older
program version wrote (a changed program re-running a batch wins, as with
``save_as_*_files``). Columns are the batch's: ``value`` for scalars, ``key``
and ``value`` for pairs, ``_0`` ... ``_{n-1}`` for n-tuples, or the names
given as ``columns``.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from itertools import repeat
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import pyarrow as pa

from .batch import Batch, column_to_list, layout_columns
from .dstream.outputs import ForEachDStream
from .dstream.savers import _unified_tables
from .partfiles import _partitions, check_path, part_name, write_batch_dir
from .listener import ms_to_datetime

if TYPE_CHECKING:
    from .dataset import Dataset
    from .dstream.base import DStream

BATCH_COLUMN = "batch_time"
BATCHES_TABLE = "_runnel_batches"
_SQLITE_TYPES = (type(None), int, float, str, bytes)   # bool is an int


# -- per-partition transactions ------------------------------------------------------------
def foreach_partition_transactional(stream: "DStream", fn: Callable[[int, int, Iterator], None]) -> None:
    """Call ``fn(batch_time_ms, partition_index, records)`` for each partition of every batch.

    An output operation, run in the driver one partition at a time, in
    partition order; ``records`` is an iterator over the partition's records.
    ``batch_time_ms`` is the batch time in epoch milliseconds (an ``int``
    rather than ``foreach_rdd``'s datetime, so ids are exact): a batch re-run
    after recovery gets the same times and indices, so ``fn`` can build a
    unique id from them, commit it in the same transaction as its writes and
    skip partitions an earlier run committed. That is exactly once as long as
    a re-run splits the batch the same way (same input, program and partition
    count); if it may not, commit per batch (``save_to_sqlite``,
    ``save_to_parquet``). An exception from ``fn`` fails the batch: later
    partitions are not called.

    Examples
    --------
    >>> import sqlite3
    >>> from runnel import StreamingContext, ManualClock
    >>> db = sqlite3.connect(":memory:", check_same_thread=False)
    >>> _ = db.execute("CREATE TABLE words (word)"), db.execute("CREATE TABLE done (id PRIMARY KEY)")
    >>> def write(time_ms, index, records):
    ...     uid = f"{time_ms}-{index}"
    ...     with db:  # one transaction: the rows and their id commit together
    ...         if db.execute("SELECT 1 FROM done WHERE id = ?", (uid,)).fetchone():
    ...             return  # an earlier run of this batch committed it
    ...         db.executemany("INSERT INTO words VALUES (?)", [(w,) for w in records])
    ...         db.execute("INSERT INTO done VALUES (?)", (uid,))
    >>> for run in range(2):  # the second run re-runs batch 1000, as recovery would
    ...     ssc = StreamingContext("local", 1, clock=ManualClock())
    ...     batch = ssc.context.parallelize(["a", "b", "c"], 2)
    ...     ssc.queue_stream([batch]).foreach_partition_transactional(write)
    ...     ssc.start(); ssc.run_batches(1); ssc.stop()
    >>> db.execute("SELECT id FROM done ORDER BY id").fetchall()
    [('1000-0',), ('1000-1',)]
    >>> db.execute("SELECT word FROM words ORDER BY word").fetchall()
    [('a',), ('b',), ('c',)]
    >>> db.close()
    """
    if not callable(fn):
        raise TypeError(f"foreachPartitionTransactional expects a function, got {type(fn).__name__}")

    def job(t: int, ds: "Dataset") -> None:
        with closing(_partitions(ds)) as parts:
            for i, part in enumerate(parts):
                fn(t, i, iter(part.to_records()))

    ForEachDStream(stream.ssc, stream, job, "foreachPartitionTransactional", fn)


# -- argument checks and column names ------------------------------------------------------
def _check_columns(columns: Sequence[str] | None, op: str) -> tuple[str, ...] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        columns = (columns,)
    names = tuple(columns)
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise TypeError(f"{op}: columns must be distinct non-empty strings, got {columns!r}")
    if BATCH_COLUMN in names:
        raise ValueError(f"{op}: column name {BATCH_COLUMN!r} is the sink's own (the batch time)")
    return names


def _column_names(names: Sequence[str], columns: tuple[str, ...] | None, op: str, stream: str, t: int) -> list[str]:
    """The sink's names for a batch's columns: ``columns`` if given (same count), else the batch's."""
    where = f"{op}: stream {stream}, batch {ms_to_datetime(t)}"
    if columns is not None:
        if len(columns) != len(names):
            raise ValueError(f"{where}: records have {len(names)} fields ({', '.join(names)}) "
                             f"but {len(columns)} column names were given ({', '.join(columns)})")
        return list(columns)
    if BATCH_COLUMN in names:
        raise ValueError(f"{where}: records have a field named {BATCH_COLUMN!r}, the sink's own column; "
                         "pass columns=... to rename the fields")
    return list(names)


# -- Parquet ----------------------------------------------------------------------------------
def save_to_parquet(stream: "DStream", path: Any, columns: Sequence[str] | None = None) -> None:
    """Save every batch into one Parquet table: ``path/batch_time=<ms>/part-NNNNN.parquet``.

    An output operation, exactly once: each batch's directory appears
    atomically and a re-run of the batch replaces it (see the module
    docstring). Object columns go through pyarrow's inference; a column it
    cannot type is a ``TypeError`` naming the stream, batch time and column.
    Read the whole table with :func:`read_parquet_table`.

    Examples
    --------
    >>> import tempfile
    >>> from runnel import StreamingContext, ManualClock
    >>> from runnel.sinks import read_parquet_table
    >>> out = tempfile.mkdtemp() + "/counts"
    >>> for run in range(2):  # the second run re-runs both batches, as recovery would
    ...     ssc = StreamingContext("local", 1, clock=ManualClock())
    ...     ssc.queue_stream([[("a", 1)], [("b", 2), ("c", 3)]]).save_to_parquet(out, columns=("word", "n"))
    ...     ssc.start(); ssc.run_batches(2); ssc.stop()
    >>> read_parquet_table(out).to_pylist()  # doctest: +NORMALIZE_WHITESPACE
    [{'word': 'a', 'n': 1, 'batch_time': 1000}, {'word': 'b', 'n': 2, 'batch_time': 2000},
     {'word': 'c', 'n': 3, 'batch_time': 2000}]
    """
    import pyarrow.parquet as pq
    op = "saveToParquet"
    path = check_path(path, op)
    columns = _check_columns(columns, op)
    name = stream.name

    def write_parts(tmp: str, ds: "Dataset", t: int) -> None:
        tables, layout = _unified_tables(ds, name, t, op)
        fields = layout_columns(layout)  # in record order, as save_to_sqlite names them
        for i, table in enumerate(tables):
            if table.num_rows:  # empty partitions would only add null-typed columns to the table's schema
                table = table.select(fields).rename_columns(_column_names(fields, columns, op, name, t))
                pq.write_table(table, os.path.join(tmp, part_name(i) + ".parquet"), compression="zstd")

    def job(t: int, ds: "Dataset") -> None:
        write_batch_dir(os.path.join(path, f"{BATCH_COLUMN}={t}"), lambda tmp: write_parts(tmp, ds, t))

    ForEachDStream(stream.ssc, stream, job, op, None, f"{op} at {name} to {path}")


def read_parquet_table(path: Any) -> pa.Table:
    """Every committed batch of a ``save_to_parquet`` sink as one ``pyarrow.Table``.

    Rows come in batch-time order, then partition order, with the
    ``batch_time`` column (epoch ms) last. Batches whose columns were typed
    differently (ints in one, floats in the next; a column of ``None`` only)
    are unified as pyarrow's permissive promotion does. Batches being
    written or replaced (hidden directories) are not read.
    """
    import pyarrow.dataset as pads
    path = check_path(path, "read_parquet_table")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"read_parquet_table: no such directory: {path}")
    hive = pads.partitioning(pa.schema([(BATCH_COLUMN, pa.int64())]), flavor="hive")
    # pyarrow takes the schema of the first file it finds; batches may type columns differently
    files = pads.dataset(path, format="parquet", partitioning=hive)
    try:
        schema = pa.unify_schemas([f.physical_schema for f in files.get_fragments()] + [hive.schema],
                                  promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise TypeError(f"read_parquet_table: batches under {path} have column types that cannot be "
                        f"unified into one table: {e}") from e
    table = pads.dataset(path, schema=schema, format="parquet", partitioning=hive).to_table()
    return table.sort_by(BATCH_COLUMN)  # a stable sort: partition order within a batch is kept


# -- SQLite ---------------------------------------------------------------------------------------
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_values(col: Any, column: str, where: str) -> list:
    """The column as values sqlite3 can bind, or a TypeError naming the column and the bad types."""
    values = column_to_list(col)
    if isinstance(col, pa.Array) or col.dtype.kind in "biuf":
        return values
    bad = {type(v) for v in values} - set(_SQLITE_TYPES)
    if bad:
        kinds = ", ".join(sorted(k.__name__ for k in bad))
        raise TypeError(f"{where}: column {column!r} holds values SQLite cannot store ({kinds}); "
                        "map the records to None, int, float, str or bytes fields first")
    return values


def _table_columns(db: sqlite3.Connection, table: str) -> list[str] | None:
    cols = [row[1] for row in db.execute(f"PRAGMA table_info({_quote(table)})")]
    return cols or None


def _create_table(db: sqlite3.Connection, table: str, names: Sequence[str]) -> list[str]:
    # no declared types: SQLite keeps each value's own type (ints stay ints, str stays text)
    cols = list(names) + [BATCH_COLUMN]
    db.execute(f"CREATE TABLE {_quote(table)} ({', '.join(map(_quote, cols))})")
    db.execute(f"CREATE INDEX {_quote(table + '_' + BATCH_COLUMN)} ON {_quote(table)} ({_quote(BATCH_COLUMN)})")
    return cols


def _insert_part(db: sqlite3.Connection, table: str, part: Batch, names: list[str], where: str, t: int) -> None:
    fields = layout_columns(part.layout)
    cols = [_sql_values(part.columns[f], n, where) for f, n in zip(fields, names)]
    sql = (f"INSERT INTO {_quote(table)} ({', '.join(map(_quote, names + [BATCH_COLUMN]))}) "
           f"VALUES ({', '.join('?' * (len(names) + 1))})")
    try:
        db.executemany(sql, zip(*cols, repeat(t)))
    except OverflowError as e:
        raise TypeError(f"{where}: an int outside SQLite's 64-bit range: {e}") from e


def _commit_sqlite(path: str, table: str, columns: tuple[str, ...] | None, stream: str, t: int,
                   ds: "Dataset") -> None:
    op = "saveToSqlite"
    where = f"{op}: stream {stream}, batch {ms_to_datetime(t)}"
    # isolation_level=None: sqlite3 opens no implicit transactions; ours spans the whole batch
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(f"CREATE TABLE IF NOT EXISTS {BATCHES_TABLE} (table_name TEXT NOT NULL, "
                       "batch_time INTEGER NOT NULL, rows INTEGER NOT NULL, PRIMARY KEY (table_name, batch_time))")
            existing = _table_columns(db, table)
            if existing is None and columns is not None:
                existing = _create_table(db, table, columns)
            elif existing is not None:
                if BATCH_COLUMN not in existing:
                    raise ValueError(f"{where}: table {table!r} in {path} has no {BATCH_COLUMN!r} column, "
                                     "so it is not a runnel sink; give another table name")
                db.execute(f"DELETE FROM {_quote(table)} WHERE {_quote(BATCH_COLUMN)} = ?", (t,))
            rows = 0
            with closing(_partitions(ds)) as parts:
                for part in parts:
                    if not len(part):
                        continue
                    names = _column_names(layout_columns(part.layout), columns, op, stream, t)
                    if existing is None:
                        existing = _create_table(db, table, names)
                    elif sorted(names + [BATCH_COLUMN]) != sorted(existing):
                        raise ValueError(f"{where}: records have fields ({', '.join(names)}) but table {table!r} "
                                         f"has columns ({', '.join(existing)}); map the records to one shape "
                                         "or pass columns=...")
                    _insert_part(db, table, part, names, where, t)
                    rows += len(part)
            db.execute(f"INSERT OR REPLACE INTO {BATCHES_TABLE} VALUES (?, ?, ?)", (table, t, rows))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back already (a full disk, say)
                db.execute("ROLLBACK")
            raise


def save_to_sqlite(stream: "DStream", path: Any, table: str, columns: Sequence[str] | None = None) -> None:
    """Save every batch into SQLite table ``table`` of database file ``path``, exactly once.

    An output operation. Each batch is one transaction: it deletes the rows
    an earlier run of the same batch time left, inserts the batch's rows
    (with a ``batch_time`` column, epoch ms) and records the batch in
    ``_runnel_batches(table_name, batch_time, rows)`` — so a re-run batch
    replaces its rows, a failed one leaves nothing, and an empty one is
    recorded too. The table is created on the first batch with records
    (or the first batch at all when ``columns`` is given), with untyped
    columns, so each value keeps its SQLite type. Fields must be ``None``,
    ``int``, ``float``, ``str`` or ``bytes`` (``bool`` is stored as an int);
    anything else is a ``TypeError`` naming the stream, batch time and column.

    Examples
    --------
    >>> import sqlite3, tempfile
    >>> from runnel import StreamingContext, ManualClock
    >>> db = tempfile.mkdtemp() + "/out.db"
    >>> for run in range(2):  # the second run re-runs both batches, as recovery would
    ...     ssc = StreamingContext("local", 1, clock=ManualClock())
    ...     ssc.queue_stream([[("a", 1)], []]).save_to_sqlite(db, "counts", columns=("word", "n"))
    ...     ssc.start(); ssc.run_batches(2); ssc.stop()
    >>> con = sqlite3.connect(db)
    >>> con.execute("SELECT * FROM counts").fetchall()
    [('a', 1, 1000)]
    >>> con.execute("SELECT * FROM _runnel_batches").fetchall()
    [('counts', 1000, 1), ('counts', 2000, 0)]
    >>> con.close()
    """
    op = "saveToSqlite"
    path = check_path(path, op)
    if not isinstance(table, str) or not table:
        raise TypeError(f"{op}: table must be a non-empty string, got {table!r}")
    if table == BATCHES_TABLE:
        raise ValueError(f"{op}: {BATCHES_TABLE!r} is the sink's own table; give another table name")
    columns = _check_columns(columns, op)
    name = stream.name
    ForEachDStream(stream.ssc, stream, lambda t, ds: _commit_sqlite(path, table, columns, name, t, ds), op, None,
                   f"{op} at {name} to {path} table {table}")
