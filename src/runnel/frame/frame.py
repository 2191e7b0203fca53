"""StreamingDataFrame: pandas spellings over a DStream of columnar batches.

Each operation adds a node to the same DStream graph the PySpark-style API
builds: column and row operations are narrow partition ops (``columns.py``,
fused into one task per partition), ``groupby`` aggregations shuffle partial
aggregates by key (``groupby.py``), outputs are the engine's output
operations and exactly-once sinks. Nothing runs until the context starts.

Examples
--------
>>> import pandas as pd
>>> from runnel import StreamingContext, ManualClock
>>> ssc = StreamingContext("local", 1, clock=ManualClock())
>>> sdf = ssc.frame.queue([pd.DataFrame({"k": ["a", "b", "a"], "v": [1, -2, 3]})])
>>> sdf["w"] = sdf["v"] * 10
>>> out = []
>>> sdf[sdf.v > 0].foreach_batch(lambda df, t: out.append(df))
>>> ssc.start(); ssc.run_batches(1); ssc.stop()
>>> out[0]
   k  v   w
0  a  1  10
1  a  3  30
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Callable

from ..batch import Batch, concat_batches
from ..dataset import Dataset
from ..dstream.base import DStream
from . import columns as C
from .expr import Expr, as_expr, col
from .schema import Schema, frame_batch, normalize_dtype

if TYPE_CHECKING:
    from .groupby import GroupBy

__all__ = ["StreamingDataFrame"]


class StreamingDataFrame:
    """A stream of pandas-like frames, one per batch, compiled onto the DStream graph.

    Create one with ``dstream.to_frame(columns=...)`` or ``ssc.frame.queue(...)``
    / ``.rate(...)`` / ``.socket(...)`` / ``.files(...)``.
    """

    def __init__(self, stream: DStream, schema: Callable[[], Schema | None], event: Any = None, late: Any = None):
        self._stream = stream
        self._schema_fn = schema
        self._event = event      # watermark.EventTime: set by with_watermark, kept by row-wise operations
        # what late_rows() gives, kept by row-wise operations: the stream of an event-time operator (its late
        # rows), or a str saying why this frame has none of its own (a join_interval result)
        self._late = late

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def _of_source(cls, source) -> "StreamingDataFrame":
        return cls(source, lambda: source.schema)

    def _derive(self, op: Any, kind: str) -> "StreamingDataFrame":
        parent = self._schema_fn

        def schema() -> Schema | None:
            s = parent()
            return None if s is None else Schema.of_batch(op(0, s.empty()))
        return StreamingDataFrame(self._stream.derive(kind, lambda ds: ds.narrow(op)), schema, self._event, self._late)

    def _ship_expr(self, e: Any) -> Any:
        """Ship the user functions inside an expression (``map``) as the engine ships any function."""
        from .expr import MapFn
        if isinstance(e, MapFn):
            e.fn = self._stream.ship_function(e.fn)
        if isinstance(e, Expr):
            for c in e.children():
                self._ship_expr(c)
        return e

    # -- schema ------------------------------------------------------------------------------------------
    @property
    def schema(self) -> Schema:
        """Column names and dtypes (known once given, or once the first batch fixed them)."""
        s = self._schema_fn()
        if s is None:
            raise RuntimeError(f"the schema of {self._stream.name} is not known yet: it is inferred from the "
                               "first batch with rows (pass schema=... to know it before)")
        return s

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    @property
    def dtypes(self) -> dict[str, str]:
        return dict(self.schema.fields)

    @property
    def stream(self) -> DStream:
        """The DStream of frame batches underneath (records: tuples of the columns)."""
        return self._stream

    @property
    def name(self) -> str:
        return self._stream.name

    def named(self, name: str) -> "StreamingDataFrame":
        """Give the underlying stream a stable name (checkpointed state is keyed by it)."""
        self._stream.named(name)
        return self

    def __repr__(self) -> str:
        s = self._schema_fn()
        cols = ", ".join(f"{n}: {d}" for n, d in s.fields) if s is not None else "schema from the first batch"
        return f"<StreamingDataFrame {self._stream.name} [{cols}]>"

    def _repr_html_(self) -> str:
        s = self._schema_fn()
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{html.escape(d)}</td></tr>" for n, d in s.fields) \
            if s is not None else "<tr><td colspan='2'>inferred from the first batch</td></tr>"
        return (f"<div><b>StreamingDataFrame</b> <code>{html.escape(self._stream.name)}</code>, every "
                f"{self._stream.slide_duration:g} s<table><thead><tr><th>column</th><th>dtype</th></tr></thead>"
                f"<tbody>{rows}</tbody></table></div>")

    # -- columns -------------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Expr:
        if name.startswith("_"):
            raise AttributeError(name)
        s = self.__dict__.get("_schema_fn", lambda: None)()
        if s is not None and name in s.names:
            return col(name)
        raise AttributeError(f"{type(self).__name__} has no attribute or column {name!r}")

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return col(key)
        if isinstance(key, Expr):
            return self._derive(C.Filter(self._ship_expr(key)), "filter")
        if isinstance(key, (list, tuple)):
            return self._derive(C.Select(tuple(str(k) for k in key)), "select")
        raise TypeError(f"sdf[...] takes a column name, a list of names or a boolean expression, got {key!r}")

    def __setitem__(self, name: str, value: Any) -> None:
        new = self.assign(**{str(name): value})
        self._stream, self._schema_fn, self._event = new._stream, new._schema_fn, new._event

    def assign(self, **exprs: Any) -> "StreamingDataFrame":
        """New or replaced columns from expressions, constants, or functions ``f(sdf) -> expression``."""
        resolved = {n: self._ship_expr(as_expr(v(self) if callable(v) and not isinstance(v, Expr) else v))
                    for n, v in exprs.items()}
        return self._derive(C.Assign(resolved), "assign")

    def rename(self, columns: dict | None = None, **kw: Any) -> "StreamingDataFrame":
        mapping = dict(columns or kw.get("mapper") or {})
        return self._derive(C.Rename({str(k): str(v) for k, v in mapping.items()}), "rename")

    def drop(self, columns: Any = None, **kw: Any) -> "StreamingDataFrame":
        columns = kw.get("labels", columns)
        drop = {columns} if isinstance(columns, str) else set(columns or ())
        missing = drop - set(self.columns)
        if missing:
            raise KeyError(f"drop: no column(s) {sorted(missing)} (columns: {self.columns})")
        return self._derive(C.Select(tuple(c for c in self.columns if c not in drop)), "drop")

    def astype(self, dtype: Any) -> "StreamingDataFrame":
        """Convert columns: one dtype for all, or ``{column: dtype}``."""
        spec = dtype if isinstance(dtype, dict) else {c: dtype for c in self.columns}
        return self._derive(C.Assign({c: col(c).astype(normalize_dtype(d)) for c, d in spec.items()}), "astype")

    def fillna(self, value: Any) -> "StreamingDataFrame":
        """Replace nulls: one value for every column, or ``{column: value}``."""
        spec = value if isinstance(value, dict) else {c: value for c in self.columns}
        dtypes = self.dtypes
        spec = {c: v for c, v in spec.items() if _fits(dtypes.get(c), v)}
        return self._derive(C.Assign({c: col(c).fillna(v) for c, v in spec.items()}), "fillna")

    def query(self, expr: str, **values: Any) -> "StreamingDataFrame":
        """Rows matching a boolean expression over the columns, e.g. ``"v > 0 and k != 'x'"``.

        Parsed with :mod:`ast` into the same expression tree as ``sdf[mask]``; names
        that are not columns are looked up in ``values`` (keywords).
        """
        from .query import parse_query
        return self[as_expr(parse_query(expr, self.columns, values))]

    def explode(self, column: str) -> "StreamingDataFrame":
        """One row per element of a list column (from ``.str.split()``)."""
        return self._derive(C.Explode(str(column)), "explode")

    def map_batches(self, fn: Callable) -> "StreamingDataFrame":
        """``fn(pandas DataFrame) -> pandas DataFrame`` on each partition of each batch."""
        if not callable(fn):
            raise TypeError(f"map_batches expects a function, got {type(fn).__name__}")
        return self._derive(C.MapFrames(self._stream.ship_function(fn)), "map_batches")

    def head(self, n: int = 5) -> "StreamingDataFrame":
        """The first ``n`` rows of every batch."""
        n = int(n)
        op = C.Head(n)
        parent = self._schema_fn
        stream = self._stream.derive("head", lambda ds: ds.narrow(op).repartition(1).narrow(op))
        return StreamingDataFrame(stream, parent, self._event, self._late)

    def nlargest(self, n: int, column: str) -> "StreamingDataFrame":
        """The ``n`` rows of every batch with the largest ``column`` (pandas' ``nlargest``)."""
        return self._top(n, column, True)

    def nsmallest(self, n: int, column: str) -> "StreamingDataFrame":
        return self._top(n, column, False)

    def _top(self, n: int, column: str, largest: bool) -> "StreamingDataFrame":
        op = C.SortTop(int(n), str(column), largest)
        stream = self._stream.derive("nlargest" if largest else "nsmallest",
                                         lambda ds: ds.narrow(op).repartition(1).narrow(op))
        return StreamingDataFrame(stream, self._schema_fn, self._event, self._late)

    # -- aggregation -------------------------------------------------------------------------------
    def groupby(self, by: Any, num_partitions: int | None = None) -> "GroupBy":
        """Group rows by one or more key columns (``groupby.GroupBy``)."""
        from .groupby import GroupBy
        keys = (by,) if isinstance(by, str) else tuple(by)
        if not keys:
            raise ValueError("groupby needs at least one key column (pandas: 'No group keys passed!'); for "
                             "windows over all rows use sdf.event_window(...) or sdf.count_window(n)")
        missing = [k for k in keys if k not in self.columns]
        if missing:
            raise KeyError(f"groupby: no column(s) {missing} (columns: {self.columns})")
        return GroupBy(self, keys, num_partitions)

    # -- event time (watermark.py, event_time.py, dedup.py) ---------------------------------------------
    def event_window(self, window: Any, emit: str = "final", allowed_lateness: Any = 0,
                     name: str | None = None) -> "GroupBy":
        """Windows of event time over all rows (no key): ``groupby(k).event_window`` without the groupby.

        Takes what ``GroupBy.event_window`` takes; ``.agg(...)`` (or ``.max()``,
        ``.size()``, ...) then gives one row per window: ``window_start``,
        ``window_end`` and the aggregates (Spark's ``groupBy(window(ts, ...))``,
        pandas' ``resample(..., on=ts)``). The window table is one partition.

        Examples
        --------
        >>> import pandas as pd
        >>> from runnel import StreamingContext, ManualClock
        >>> from runnel.frame import tumbling
        >>> import tempfile
        >>> ssc = StreamingContext("local", 1, clock=ManualClock())
        >>> ssc.checkpoint(tempfile.mkdtemp())
        >>> sdf = ssc.frame.queue([pd.DataFrame({"ts": [1, 4, 12], "price": [5, 9, 2]}),
        ...                        pd.DataFrame({"ts": [30], "price": [1]})])
        >>> top = sdf.with_watermark("ts", 2).event_window(tumbling(10)).agg(maxprice=("price", "max"))
        >>> out = []
        >>> top.foreach_batch(lambda df, t: out.append(df))
        >>> ssc.start(); ssc.run_batches(2); ssc.stop()
        >>> pd.concat(out, ignore_index=True)
           window_start  window_end  maxprice
        0             0          10         9
        1            10          20         2
        """
        from .groupby import GroupBy
        return GroupBy(self, (), None).event_window(window, emit, allowed_lateness, name)

    def count_window(self, n: int, emit: str = "final", name: str | None = None,
                     ttl: float | None = None) -> "GroupBy":
        """Count windows over all rows (no key): every ``n`` rows, in arrival order, make one window
        (``GroupBy.count_window`` without the groupby); the result has ``window`` and the aggregates."""
        from .groupby import GroupBy
        return GroupBy(self, (), None).count_window(n, emit, name, ttl)

    def with_watermark(self, column: str, delay: Any, idle_timeout: Any = None, unit: str = "s",
                       name: str | None = None) -> "StreamingDataFrame":
        """This frame with event time in ``column`` and a watermark ``delay`` behind the latest of it.

        The watermark is the largest event time seen so far minus ``delay``,
        advanced after every batch (``watermark.py``). Event-time operators of the
        returned frame (``groupby(...).event_window(...)``, ``drop_duplicates(...,
        within=...)``) use it to close windows and forget keys; a row behind it is
        late, and goes to ``late_rows()``. ``column`` holds datetime64 values, or
        integers counted in ``unit`` ("s", "ms", "us", "ns"). Durations are seconds,
        timedeltas or strings like ``"10s"``. ``idle_timeout``: once no row has come
        for that long, the watermark advances with processing time, so windows
        close without new rows. ``name``: the watermark's stable name (it is
        checkpointed and resumed by it).

        Examples
        --------
        >>> import pandas as pd
        >>> from runnel import StreamingContext, ManualClock
        >>> from runnel.frame import tumbling
        >>> import tempfile
        >>> ssc = StreamingContext("local", 1, clock=ManualClock())
        >>> ssc.checkpoint(tempfile.mkdtemp())        # the watermark and the windows survive a restart
        >>> sdf = ssc.frame.queue([pd.DataFrame({"k": ["a", "a", "b"], "ts": [1, 4, 12], "v": [1, 2, 3]}),
        ...                        pd.DataFrame({"k": ["a", "b"], "ts": [3, 30], "v": [10, 20]})])
        >>> agg = (sdf.with_watermark("ts", delay=2).groupby("k")
        ...           .event_window(tumbling(10)).agg(total=("v", "sum")))
        >>> out, late = [], []
        >>> agg.foreach_batch(lambda df, t: out.append(df))
        >>> agg.late_rows().foreach_batch(lambda df, t: late.append(df))
        >>> ssc.start(); ssc.run_batches(2); ssc.stop()
        >>> pd.concat(out, ignore_index=True)     # a's window closes once the watermark (12 - 2) passes 10
           k  window_start  window_end  total
        0  a             0          10      3
        1  b            10          20      3
        >>> late[1]                               # 3 is behind the watermark (10) of the second batch
           k  ts   v
        0  a   3  10
        """
        from .watermark import EventClock, EventTime, WatermarkDStream
        if column not in self.columns:
            raise KeyError(f"with_watermark: no column {column!r} (columns: {self.columns})")
        clock = EventClock.of(str(column), self.dtypes[column], unit)
        delay_units = clock.units(delay, "with_watermark delay", allow_zero=True)
        idle_ms = None
        if idle_timeout is not None:
            from .watermark import duration_ns
            idle_ms = duration_ns(idle_timeout, "idle_timeout") // 10**6
        self._stream.cache()      # read by the watermark and by the operators
        watermark = WatermarkDStream(self._stream, clock, delay_units, idle_ms)
        if name is not None:
            watermark.named(name)
        return StreamingDataFrame(self._stream, self._schema_fn, EventTime(clock, watermark))

    def _event_column(self, what: str) -> str:
        """The event-time column, checked to be still in the frame (a select or drop may have left it)."""
        column = self._event.clock.column
        if column not in self.columns:
            raise KeyError(f"{what}: the event-time column {column!r} is not in the frame (columns: "
                           f"{self.columns}); keep it, or call with_watermark on a column the frame has")
        return column

    def late_rows(self) -> "StreamingDataFrame":
        """The rows behind the watermark, per batch, as a frame you can print or sink.

        On the result of an event-time operator: the rows it could not take (its
        windows had closed, or its keys been forgotten); on a watermarked frame:
        its rows behind the watermark in force for their batch. Also counted in
        ``BatchInfo.state_tables[operator]["late_rows"]``. A ``join_interval``
        result has none of its own: its sides' late rows are each side's
        ``late_rows()`` (they have different columns), and it says so.
        """
        from .watermark import BehindWatermark, LateRowsDStream
        if isinstance(self._late, str):
            raise ValueError(self._late)
        if self._late is not None:
            source = self._late
            schema = source.rows_schema
            return StreamingDataFrame(LateRowsDStream(source), schema)
        if self._event is None:
            raise ValueError("late_rows() needs event time: call with_watermark(column, delay) first, or ask "
                             "an event-time operator's result (event_window, drop_duplicates)")
        self._event_column("late_rows()")
        return StreamingDataFrame(BehindWatermark(self._stream, self._event.watermark), self._schema_fn)

    def drop_duplicates(self, subset: Any = None, within: Any = None, name: str | None = None) -> "StreamingDataFrame":
        """Rows whose ``subset`` columns were not seen before, within the watermark (``dedup.py``).

        A key is remembered until the watermark passes its first row's event time
        + ``within`` (needs ``with_watermark``); rows behind the watermark go to
        ``late_rows()``. ``subset``: the key columns (all columns by default);
        ``name``: the stable name of the table of seen keys (checkpointed).
        """
        from .dedup import drop_duplicates
        keys = tuple(self.columns) if subset is None else ((subset,) if isinstance(subset, str) else tuple(subset))
        missing = [k for k in keys if k not in self.columns]
        if missing:
            raise KeyError(f"drop_duplicates: no column(s) {missing} (columns: {self.columns})")
        return drop_duplicates(self, keys, within, name)

    # -- joins (join.py) -------------------------------------------------------------------------------
    def merge(self, right: Any, on: Any, how: str = "inner", within: float | None = None,
              refresh: float | None = None) -> "StreamingDataFrame":
        """Join with a static table or with another streaming frame (pandas' ``merge``, how "inner" or "left").

        ``right`` a pandas DataFrame (or Arrow table, or a function returning one,
        reloaded every ``refresh`` seconds): each batch joins the static table,
        shipped to each worker once. ``right`` a StreamingDataFrame: rows of
        batches less than ``within`` seconds apart are joined, each pair once.
        """
        from .join import merge_static, merge_streams
        keys = (on,) if isinstance(on, str) else tuple(on)
        if how not in ("inner", "left"):
            raise ValueError(f"merge: how must be 'inner' or 'left', got {how!r}")
        missing = [k for k in keys if k not in self.columns]
        if missing:
            raise KeyError(f"merge: no column(s) {missing} on the left (columns: {self.columns})")
        if isinstance(right, StreamingDataFrame):
            if within is None:
                raise ValueError("merge of two streams needs within=seconds: how far apart (in batches of "
                                 "time) matching rows may arrive")
            return merge_streams(self, right, keys, how, within)
        return merge_static(self, right, keys, how, refresh)

    def join_interval(self, right: "StreamingDataFrame", on: Any = None, *, left_on: Any = None,
                      right_on: Any = None, time: Any = None, lower: Any = None, upper: Any = None,
                      inclusive: str = "both", unit: str = "s", name: str | None = None) -> "StreamingDataFrame":
        """Join with another stream on keys and event time: rows pair when their keys are equal and
        ``right.time + lower <= left.time <= right.time + upper`` (``interval_join.py``).

        ``on`` (or ``left_on``/``right_on``): key columns, as in pandas' ``merge``;
        ``time``: the event-time column of both sides (or a pair), by default each
        frame's ``with_watermark`` column; ``lower``/``upper``: signed offsets
        (seconds, timedelta, ``"-10s"``), None for no bound (neither: every pair of
        equal keys); ``inclusive``: "both", "left", "right" or "neither", as
        ``Series.between``; ``unit``: of int time columns without a watermark.
        Every pair comes out once, in the batch of its later row. Each side's rows
        wait in a buffer until the other side's watermark says no row can pair with
        them (with_watermark on both frames bounds the state); rows behind their
        own watermark join nothing (they are that frame's ``late_rows()``, counted
        in ``BatchInfo.state_tables["<name>.left" / "<name>.right"]["late_rows"]``).
        ``name``: the buffers' stable name (checkpointed, resumed by it).

        Examples
        --------
        >>> import pandas as pd, tempfile
        >>> from runnel import StreamingContext, ManualClock
        >>> ssc = StreamingContext("local", 1, clock=ManualClock())
        >>> ssc.checkpoint(tempfile.mkdtemp())           # the buffers survive a restart
        >>> clicks = ssc.frame.queue([pd.DataFrame({"ad": [1, 2], "ts": [5, 9]}),
        ...                           pd.DataFrame({"ad": [1], "ts": [30]})])
        >>> views = ssc.frame.queue([pd.DataFrame({"ad": [1, 2], "ts": [3, 1]}),
        ...                          pd.DataFrame({"ad": [1], "ts": [28]})])
        >>> pairs = clicks.with_watermark("ts", 5).join_interval(
        ...     views.with_watermark("ts", 5), on="ad", lower=0, upper=4)   # a click up to 4 s after its view
        >>> out = []
        >>> pairs.foreach_batch(lambda df, t: out.append(df))
        >>> ssc.start(); ssc.run_batches(2); ssc.stop()
        >>> pd.concat(out, ignore_index=True)
           ad  ts_x  ts_y
        0   1     5     3
        1   1    30    28
        """
        from .interval_join import join_interval
        return join_interval(self, right, on, left_on, right_on, time, lower, upper, inclusive, unit, name)

    def merge_asof(self, right: "StreamingDataFrame", on: Any, how: str = "left",
                   name: str | None = None) -> "StreamingDataFrame":
        """Each row with the latest values of ``right``'s rows of the same key so far (this batch
        included): a running "last" aggregation of ``right`` in the state tables (``name`` resumes it)."""
        from .join import merge_latest
        keys = (on,) if isinstance(on, str) else tuple(on)
        if how not in ("inner", "left"):
            raise ValueError(f"merge_asof: how must be 'inner' or 'left', got {how!r}")
        return merge_latest(self, right, keys, how, name)

    # -- SQL -------------------------------------------------------------------------------------------
    def sql(self, query: str, table: str = "batch") -> "StreamingDataFrame":
        """Run a DuckDB SQL query on every batch, the batch being the table ``batch``
        (the ``runnel[sql]`` extra)."""
        from .sql import SqlOnBatch, check_sql
        op = SqlOnBatch(query, table)
        check_sql(op, self._schema_fn())
        parent = self._schema_fn

        def schema() -> Schema | None:
            s = parent()
            return None if s is None else Schema.of_batch(op(0, s.empty()))
        stream = self._stream.derive("sql", lambda ds: ds.repartition(1).narrow(op))
        return StreamingDataFrame(stream, schema)

    # -- out -----------------------------------------------------------------------------------------------
    def _frame(self, ds: Dataset):
        """A batch's rows as one pandas DataFrame (the schema's columns, also when empty)."""
        parts = [b for b in ds.collect_batches() if len(b)]
        if parts:
            return concat_batches(parts).to_pandas()
        s = self._schema_fn()
        return (s.empty() if s is not None else frame_batch({})).to_pandas()

    def foreach_batch(self, fn: Callable) -> None:
        """Call ``fn(pandas_df, batch_time)`` for every batch (an output operation; batch_time a datetime)."""
        if not callable(fn):
            raise TypeError(f"foreach_batch expects a function, got {type(fn).__name__}")
        self._stream.foreach_rdd(lambda t, ds: fn(self._frame(ds), t))

    def print(self, n: int = 10) -> None:
        """Print the first ``n`` rows of every batch under its time (an output operation)."""
        def show(df, t):
            print("-" * 43)
            print(f"Time: {t}")
            print("-" * 43)
            print(df.head(n).to_string() if len(df) else "(no rows)")
            print()
        self.foreach_batch(show)

    pprint = print

    def to_parquet(self, path: str) -> None:
        """Save every batch into one Parquet table, exactly once (``runnel.sinks.save_to_parquet``)."""
        self._stream.save_to_parquet(path)

    def to_sqlite(self, path: str, table: str) -> None:
        """Save every batch into a SQLite table, exactly once (``runnel.sinks.save_to_sqlite``)."""
        self._stream.save_to_sqlite(path, table)

    def to_dstream(self) -> DStream:
        """The rows as a DStream of records: tuples of the columns (a single column: its values;
        two columns: ``(key, value)`` pairs for the keyed operations)."""
        return self._stream.derive("to_dstream", lambda ds: ds.narrow(_Records()))


def _fits(dtype: str | None, value: Any) -> bool:
    """Does a fillna value suit a column (pandas leaves columns of another type alone)?"""
    if dtype is None:
        return False
    if dtype in ("string", "binary", "object"):
        return dtype == "object" or isinstance(value, (str, bytes))
    return isinstance(value, (int, float, bool)) and not isinstance(value, str)


class _Records:
    """A frame batch as plain records: one column -> scalars, else tuples of the columns."""

    def __call__(self, index: int, batch: Batch) -> Batch:
        names = tuple(batch.columns)
        if len(names) == 1:
            return Batch({"value": batch.columns[names[0]]}, "value")
        return batch
