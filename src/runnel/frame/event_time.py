"""Windows on event time: tumbling, hopping, session and count windows, keyed, with a watermark.

::

    agg = (sdf.with_watermark("ts", "10s")
              .groupby("k")
              .event_window(tumbling("1min"), emit="final")
              .agg(total=("v", "sum"), n=("v", "count")))
    agg.late_rows().print()

The result has the key columns, ``window_start`` and ``window_end`` (of the
event-time column's dtype; for count windows one int column ``window``,
each key's windows numbered from 0), then one column per aggregate — every
aggregate of ``groupby.agg`` (``aggregate.py``'s partial tables).
``sdf.event_window(...)`` / ``sdf.count_window(n)`` window all rows, no key:
the rows get a hidden constant key (:data:`GLOBAL`, added to the on-time rows
in the map tasks, so ``late_rows()`` shows the rows as they came), the table
is one partition, and the result has no key columns.

How a batch runs (one :class:`EventWindowDStream`, a keyed state table)::

    rows ──hash by key──> n partitions ─┐
    watermark row of t (copied to n) ───┼─ zip, per partition: late rows out; on-time rows
    window table of t - 1 ──────────────┘  -> windows (kernel) -> partials per (key, window)
                                           merged into the table -> closed windows marked

* window assignment: ``kernels.event_windows.assign_windows`` (a row of a
  hopping window lands in each window holding it); sessions:
  ``kernels.event_windows.merge_intervals`` over the table's open sessions
  and the rows' ``[ts, ts + gap)`` — a row may extend a session, or bridge
  two, of an earlier batch; count windows: each row's position among its
  key's rows so far (arrival order, the shuffle keeps it), ``// n``;
* per-window aggregation: the partial tables of ``aggregate.py``
  (``kernels.reduce_codes`` over group codes of (key, window));
* state: the table holds one row of partials per open (key, window): keyed
  like the rows, checkpointed with the context and restored by the
  operator's name (``name=``), marks ``_updated`` (changed by the batch) and
  ``_closed`` (closed by it: emitted now, gone from the next batch's table).

Emission: ``emit="final"`` gives each window once, in the batch whose
watermark passes ``window end + allowed_lateness`` (a count window: when it
has its n rows); ``emit="update"`` gives, every batch, the windows the batch
changed, with their current values.

Late rows (``watermark.py``): a row whose event time is before the
watermark in force minus ``allowed_lateness`` is late — whatever window it
would fall in — and goes to ``agg.late_rows()``, counted in
``BatchInfo.state_tables[name]["late_rows"]``. Every on-time row therefore
lands in windows that are still open. Count windows ignore event time and
have no late rows. A row with a null key is left out, as in
``groupby.agg`` (pandas' ``dropna=True``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from runnel import kernels as K

from ..batch import Batch, column_take, concat_batches, concat_columns
from ..dataset import Dataset
from ..dstream.base import DStream, to_ms
from ..plan import ShuffleDep
from .aggregate import (AggSpec, empty_partials, finalize, group_codes, merge, partial, partial_by_codes,
                        partition_partials, result_schema_batch)
from .buckets import bucket_rows
from .cumulative import segments
from .schema import Schema, empty_column, frame_batch
from .watermark import (NONE, ByWatermark, EventClock, TableWithLateRows, WatermarkDStream, replicate,
                        watermark_values)
from .window import ROWS

if TYPE_CHECKING:
    from .frame import StreamingDataFrame
    from .groupby import GroupBy

__all__ = ["tumbling", "hopping", "session", "Tumbling", "Hopping", "Session", "EventWindowDStream",
           "window_agg"]

EMITS = ("final", "update")
_MARKS = ("_updated", "_closed", "_seen")     # _seen: count windows with a ttl (batch ms of the key's last row)
#: the hidden key of a keyless window (``sdf.event_window``): every row has it, 0; no result shows it
GLOBAL = "_global"


# --- window specs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tumbling:
    """Windows ``[offset + k * size, offset + (k + 1) * size)``: each row in exactly one."""
    size: Any
    offset: Any = 0

    def units(self, clock: EventClock) -> tuple[int, int, int]:
        size = clock.units(self.size, "window size")
        return size, size, clock.units(self.offset, "window offset", allow_zero=True) % size


@dataclass(frozen=True)
class Hopping:
    """Windows of length ``size`` starting every ``slide``: a row in each window holding it."""
    size: Any
    slide: Any
    offset: Any = 0

    def units(self, clock: EventClock) -> tuple[int, int, int]:
        size, slide = clock.units(self.size, "window size"), clock.units(self.slide, "window slide")
        if slide > size:
            raise ValueError(f"hopping windows: the slide ({self.slide!r}) is longer than the window "
                             f"({self.size!r}): rows between windows would belong to none")
        return size, slide, clock.units(self.offset, "window offset", allow_zero=True) % slide


@dataclass(frozen=True)
class Session:
    """Rows of a key less than ``gap`` apart form one session; it ends ``gap`` after its last row."""
    gap: Any

    def units(self, clock: EventClock) -> tuple[int, int, int]:
        return clock.units(self.gap, "session gap"), 0, 0


def tumbling(size: Any, offset: Any = 0) -> Tumbling:
    """Tumbling event-time windows of ``size`` (seconds, a timedelta or a string like ``"1min"``).

    Examples
    --------
    >>> tumbling("10s")
    Tumbling(size='10s', offset=0)
    """
    return Tumbling(size, offset)


def hopping(size: Any, slide: Any, offset: Any = 0) -> Hopping:
    """Hopping (sliding) event-time windows of ``size``, one starting every ``slide``.

    Examples
    --------
    >>> hopping(10, 5)
    Hopping(size=10, slide=5, offset=0)
    """
    return Hopping(size, slide, offset)


def session(gap: Any) -> Session:
    """Session windows: a key's session closes after ``gap`` of event time without rows.

    Examples
    --------
    >>> session("30s")
    Session(gap='30s')
    """
    return Session(gap)


@dataclass(frozen=True)
class Count:
    """Count windows: every ``n`` rows of a key (in arrival order) make one window."""
    n: int


# --- the state table ------------------------------------------------------------------------------------------

def _layout(keys: tuple, states: tuple) -> tuple:
    return (keys[0] if len(keys) == 1 else tuple(keys), tuple(states))


def _state_names(table: Batch, keys: tuple) -> tuple:
    return tuple(n for n in table.columns if n not in keys and n not in _MARKS)


def strip_marks(table: Batch, keys: tuple) -> Batch:
    states = _state_names(table, keys)
    return Batch({n: table.columns[n] for n in keys + states}, _layout(keys, states))


def with_marks(table: Batch, keys: tuple, updated: np.ndarray, closed: np.ndarray,
               seen: np.ndarray | None = None) -> Batch:
    states = _state_names(table, keys)
    cols = {n: table.columns[n] for n in keys + states}
    cols["_updated"], cols["_closed"] = updated, closed
    if seen is not None:
        cols["_seen"] = seen
    return Batch(cols, _layout(keys, states + tuple(m for m in _MARKS if m in cols)))


def _open(table: Batch | None, keys: tuple) -> Batch | None:
    """The table a batch continues from: the last batch's, without the windows it closed."""
    if table is None or len(table) == 0 or "_closed" not in table.columns:
        return None
    table = table.filter(~np.asarray(table.columns["_closed"], dtype=bool))
    return strip_marks(table, keys) if len(table) else None


def _rows_of(batch: Batch, keys: tuple) -> Batch | None:
    """A bucket's rows, when it has any (an empty bucket may have no columns)."""
    return batch if len(batch) and all(k in batch.columns for k in keys) else None


def _keyed_rows(batch: Batch, keys: tuple) -> Batch:
    """The rows of a keyless window (keys ``(GLOBAL,)``) with the hidden key added; others as they are."""
    if keys != (GLOBAL,) or len(batch) == 0 or GLOBAL in batch.columns:
        return batch
    return frame_batch({**batch.columns, GLOBAL: np.zeros(len(batch), dtype=np.int64)})


def _drop_null_keys(rows: Batch, keys: tuple) -> Batch:
    from .expr import isnull_column
    drop = np.zeros(len(rows), dtype=bool)
    for k in keys:
        drop |= isnull_column(rows.columns[k], len(rows))
    return rows.filter(~drop) if drop.any() else rows


def _needed(rows: Batch, keys: tuple, specs: tuple, extra: dict) -> Batch:
    """Only the columns a partial table is built from (keys, aggregated columns), plus ``extra``."""
    cols = {k: rows.columns[k] for k in keys}
    cols.update({s.column: rows.columns[s.column] for s in specs if s.column is not None})
    cols.update(extra)
    return frame_batch(cols)


def window_partials(rows: Batch, keys: tuple, specs: tuple, bounds: tuple, clock: EventClock) -> Batch | None:
    """Tumbling/hopping: one partial row per (key, window start) of on-time rows.

    ``kernels.window_pairs`` gives each (row, window) pair its group id from the
    row's key code, so the windows are grouped by one dense ``factorize_int64``
    of the ids rather than by factorizing the exploded keys and starts and
    combining their codes; a tumbling window's rows are not copied (each row is
    its own pair).
    """
    rows = _drop_null_keys(rows, keys)
    if len(rows) == 0:
        return None
    size, slide, offset = bounds
    kcodes, _ = group_codes([rows.columns[k] for k in keys])
    try:
        at, starts, pairs = K.window_pairs(kcodes, clock.times(rows), size, slide, offset)
    except OverflowError:     # keys x window slots beyond an int64 id: group the exploded rows instead
        at, starts = K.assign_windows(clock.times(rows), size, slide, offset)
        sub = _needed(rows, keys, specs, {})
        return partial(frame_batch({**sub.take(at).columns, "_wstart": starts}), keys + ("_wstart",), specs)
    codes, first = K.factorize_int64(pairs)
    sub = _needed(rows, keys, specs, {})
    if slide != size:
        sub = sub.take(at)
    key_cols = {k: column_take(rows.columns[k], at[first]) for k in keys}
    key_cols["_wstart"] = starts[first]
    return partial_by_codes(sub.columns, key_cols, specs, codes, len(first))


def session_partials(rows: Batch, keys: tuple, specs: tuple, gap: int, clock: EventClock) -> Batch | None:
    """Sessions of one partition's on-time rows: (key, start) -> partials and ``_wend`` (``merge_intervals``)."""
    ts = clock.times(rows)
    codes, _ = group_codes([rows.columns[k] for k in keys])
    sid, g = K.merge_intervals(codes, ts, ts + gap)
    t = partial(_needed(rows, keys, specs, {"_sid": sid}), keys + ("_sid",), specs)
    if t is None:
        return None
    s = np.asarray(t.columns["_sid"])
    lo, hi = K.reduce_codes(sid, g, ts, "min")[s], K.reduce_codes(sid, g, ts, "max")[s] + gap
    return _session_table(t, keys, lo, hi)


def _session_table(t: Batch, keys: tuple, lo: np.ndarray, hi: np.ndarray) -> Batch:
    """A partial table keyed by (keys, ``_sid``) as a session table: (keys, ``_wstart``), states, ``_wend``."""
    states = tuple(n for n in t.columns if n not in keys and n != "_sid")
    cols = {k: t.columns[k] for k in keys}
    cols["_wstart"] = lo
    cols.update({n: t.columns[n] for n in states})
    cols["_wend"] = hi
    return Batch(cols, _layout(keys + ("_wstart",), states + ("_wend",)))


@dataclass(eq=False)
class WindowPartials:
    """Map half of a time window: partition i's on-time rows as partials per (key, window), hashed by
    key into n buckets (the shuffle carries partials, not rows)."""
    keys: tuple
    specs: tuple
    window: Any
    bounds: tuple
    clock: EventClock
    empty: Batch

    def __call__(self, index: int, batch: Batch, n: int) -> list[Batch]:
        rows = _rows_of(_keyed_rows(batch, self.keys), self.keys)
        table = None
        if rows is not None:
            if isinstance(self.window, Session):
                table = session_partials(rows, self.keys, self.specs, self.bounds[0], self.clock)
            else:
                table = window_partials(rows, self.keys, self.specs, self.bounds, self.clock)
        return partition_partials(table if table is not None else self.empty, self.keys, n)


@dataclass(eq=False)
class IncomingPartials:
    """Reduce half: a bucket's partials, merged per (key, window) (sessions: put together; the update
    merges them with the table's)."""
    keys: tuple
    specs: tuple
    window: Any
    empty: Batch

    def __call__(self, index: int, groups: list[list[Batch]]) -> Batch:
        parts = [b for b in groups[0] if len(b) and "_wstart" in b.columns]
        if not parts:
            return self.empty
        if isinstance(self.window, Session):
            return concat_batches(parts)
        return merge(parts, self.keys + ("_wstart",), self.specs)


@dataclass(eq=False)
class UpdateWindows:
    """Partition i of the window table at t: ``parts`` = [table of t - 1 (if ``has_state``), the batch's
    partials per (key, window) (count windows: its rows), the watermark row (not for count windows)]."""
    keys: tuple            # the user's keys
    specs: tuple
    window: Any            # Tumbling, Hopping, Session or Count
    bounds: tuple          # (size, slide, offset) in event units; (gap, 0, 0) for sessions; () for counts
    lateness: int
    empty: Batch           # the empty state table (keys + window key + partial states)
    has_state: bool
    now: int = 0           # the batch time (ms); count windows with a ttl keep each key's last one
    ttl_ms: int = 0        # count windows: a key without rows this long leaves the table (0: never)

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        counting = isinstance(self.window, Count)
        keys2 = self.keys + ("_widx" if counting else "_wstart",)
        state = seen = None
        if self.has_state and counting:     # a key's last full window stays: it says where the key is
            if len(parts[0]) and "_closed" in parts[0].columns:
                state = strip_marks(parts[0], keys2)
                seen = np.asarray(parts[0].columns["_seen"], np.int64) if self.ttl_ms else None
        elif self.has_state:
            state = _open(parts[0], keys2)
        new = _rows_of(parts[1], keys2) if not counting else _rows_of(_keyed_rows(parts[1], self.keys), self.keys)
        if isinstance(self.window, Session):
            table, updated = _sessions(state, new, self.keys, self.specs)
        elif counting:
            table, updated, seen = self._counts(state, seen, new)
        else:
            table, updated = _merged(state, new, keys2, self.specs)
        if table is None:
            z = np.zeros(0, dtype=bool)
            return with_marks(self.empty, keys2, z, z, np.zeros(0, np.int64) if self.ttl_ms else None)
        if counting:
            closed = np.asarray(table.columns[ROWS.state("n", len(self.specs) - 1)]) >= self.window.n
            if not self.ttl_ms:
                return with_marks(table, keys2, updated, closed)
            # as a running groupby's ttl: a key whose last row is ttl old leaves, its open window unemitted
            keep = self.now - seen < self.ttl_ms
            return with_marks(table.filter(keep), keys2, updated[keep], closed[keep], seen[keep])
        _, now = watermark_values(parts[2])
        if now == NONE:
            closed = np.zeros(len(table), dtype=bool)
        else:
            end = np.asarray(table.columns["_wend"]) if isinstance(self.window, Session) else \
                np.asarray(table.columns["_wstart"]) + self.bounds[0]
            closed = end + self.lateness <= now
        return with_marks(table, keys2, updated, closed)

    # -- count windows ----------------------------------------------------------------------------------
    def _counts(self, state: Batch | None, seen: np.ndarray | None, rows: Batch | None):
        """(table, rows the batch updated, with a ttl each row's key's last batch time)."""
        keys2 = self.keys + ("_widx",)
        n_rows = ROWS.state("n", len(self.specs) - 1)
        if state is not None:      # each key's latest window only: its index and rows say where the key is
            codes, _ = group_codes([state.columns[k] for k in self.keys])
            widx = np.asarray(state.columns["_widx"], np.int64)
            top = K.reduce_codes(codes, int(codes.max()) + 1, widx, "max")
            latest = widx == top[codes]
            state = state.filter(latest)
            seen = seen[latest] if seen is not None else None
        if rows is not None:
            rows = _drop_null_keys(rows, self.keys)
        if rows is None or len(rows) == 0:
            if state is None:
                return None, None, None
            return state, np.zeros(len(state), dtype=bool), seen
        size = self.window.n
        m = 0 if state is None else len(state)
        kcols = [rows.columns[k] if state is None else concat_columns([state.columns[k], rows.columns[k]])
                 for k in self.keys]
        codes, first = group_codes(kcols)
        base = np.zeros(len(first), dtype=np.int64)
        if state is not None:
            base[codes[:m]] = np.asarray(state.columns["_widx"], np.int64) * size + \
                np.asarray(state.columns[n_rows], np.int64)
        rcodes = codes[m:]
        order, _, _, pos = segments(rcodes, len(first))
        rank = np.empty(len(rcodes), dtype=np.int64)
        rank[order] = pos
        widx = (base[rcodes] + rank) // size
        new = partial(_needed(rows, self.keys, self.specs, {"_widx": widx}), keys2, self.specs)
        table, updated = _merged(state, new, keys2, self.specs)
        if not self.ttl_ms:
            return table, updated, None
        last = np.full(len(table), self.now, dtype=np.int64)       # the state's rows come first, in order
        if seen is not None:
            last[:m] = np.where(updated[:m], self.now, seen)
        return table, updated, last


def _sessions(state: Batch | None, new: Batch | None, keys: tuple, specs: tuple):
    """The table's open sessions and the batch's merged where they overlap (``merge_intervals``): a new
    session may extend one of the table, or bridge two."""
    if new is None:
        return state, (np.zeros(len(state), dtype=bool) if state is not None else None)
    both = new if state is None else concat_batches([state, new])
    m = 0 if state is None else len(state)
    codes, _ = group_codes([both.columns[k] for k in keys])
    starts = np.asarray(both.columns["_wstart"], np.int64)
    ends = np.asarray(both.columns["_wend"], np.int64)
    sid, g = K.merge_intervals(codes, starts, ends)
    lo, hi = K.reduce_codes(sid, g, starts, "min"), K.reduce_codes(sid, g, ends, "max")
    by = keys + ("_sid",)

    def keyed_by_sid(t: Batch, ids: np.ndarray) -> Batch:
        cols = {k: t.columns[k] for k in keys}
        cols["_sid"] = ids
        states = tuple(n for n in t.columns if n not in keys and n not in ("_wstart", "_wend"))
        cols.update({n: t.columns[n] for n in states})
        return Batch(cols, _layout(by, states))
    old = keyed_by_sid(state, sid[:m]) if state is not None else None
    table, updated = _merged(old, keyed_by_sid(new, sid[m:]), by, specs, distinct=False)
    s = np.asarray(table.columns["_sid"])
    return _session_table(table, keys, lo[s], hi[s]), updated


def _merged(state: Batch | None, new: Batch | None, keys: tuple, specs: tuple, distinct: bool = True):
    """(state merged with the new partials, which of its rows the new partials touched); ``distinct``:
    the new partials list each key once."""
    codes: list = []
    table = merge([x for x in (state, new) if x is not None], keys, specs, codes, distinct)
    if table is None:
        return None, None
    updated = np.zeros(len(table), dtype=bool)
    if new is not None:
        if codes:
            updated[codes[0][0 if state is None else len(state):]] = True
        else:
            updated[:] = True
    return table, updated


@dataclass(eq=False)
class EmitWindows:
    """A window table's result rows: the windows closed by the batch (final) or changed by it (update)."""
    keys: tuple
    specs: tuple            # the user's aggregates (a hidden row count left out)
    result: Batch           # the empty result frame
    inner: Batch            # the empty finalize() result over (keys, window key)
    window: Any
    size: int
    clock: EventClock | None
    emit: str

    def __call__(self, index: int, table: Batch) -> Batch:
        if len(table) == 0 or "_closed" not in table.columns:
            return self.result
        counting = isinstance(self.window, Count)
        wkey = "_widx" if counting else "_wstart"
        mark = np.asarray(table.columns["_updated"], dtype=bool)
        if self.emit == "final":
            mark = np.asarray(table.columns["_closed"], dtype=bool) & (mark if counting else True)
        if not mark.any():
            return self.result
        table = table.filter(mark)
        keys2 = self.keys + (wkey,)
        got = finalize(strip_marks(table, keys2), keys2, self.specs, self.inner)
        cols = {k: got.columns[k] for k in self.keys if k != GLOBAL}
        if counting:
            cols["window"] = np.asarray(got.columns["_widx"], np.int64)
        else:
            start = np.asarray(got.columns["_wstart"], np.int64)
            end = np.asarray(table.columns["_wend"], np.int64) if isinstance(self.window, Session) \
                else start + self.size
            cols["window_start"], cols["window_end"] = self.clock.column_of(start), self.clock.column_of(end)
        for s in self.specs:
            cols[s.out] = got.columns[s.out]
        return frame_batch(cols)


# --- the operator -----------------------------------------------------------------------------------------

class EventWindowDStream(TableWithLateRows):
    """The window table of a keyed event-time window aggregation (see the module docstring)."""

    kind = "event_window"
    holds = "windows"

    def __init__(self, rows: DStream, watermark: WatermarkDStream | None, keys: tuple, specs: tuple,
                 window: Any, bounds: tuple, lateness: int, empty: Batch, n: int, ttl_ms: int = 0):
        super().__init__(rows.ssc, [rows] + ([watermark] if watermark is not None else []))
        self.watermark, self.ttl_ms = watermark, ttl_ms
        self.keys, self.specs, self.window, self.bounds = keys, specs, window, bounds
        self.lateness, self.empty, self.n = lateness, empty, n

    def counts_late(self) -> bool:
        return self.watermark is not None

    def incoming(self, t: int, rows: Dataset) -> list[Dataset]:
        """What the table at t is updated with: the batch's partials per (key, window) and the watermark
        (count windows: the rows hashed by key); puts the late rows."""
        if self.watermark is None:
            return [bucket_rows(rows, self.keys, self.n, nulls=True)]
        clock, lateness = self.watermark.clock, self.lateness
        wm_t = self.watermark.get_or_compute(t)
        rows = Dataset(rows.ctx, rows.dependency(), f"{self.name} rows").cache()      # read twice: on time, late
        wm = replicate(wm_t, rows.get_num_partitions()).cache()
        self.late.put(t, rows.zip_partitions([wm], ByWatermark(clock, lateness, late=True)))
        on_time = rows.zip_partitions([wm], ByWatermark(clock, lateness, late=False))
        new = on_time.shuffle([ShuffleDep(on_time.dependency(), WindowPartials(self.keys, self.specs, self.window,
                                                                           self.bounds, clock, self.empty))],
                               self.n, IncomingPartials(self.keys, self.specs, self.window, self.empty))
        return [new, replicate(wm_t, self.n)]

    def compute(self, t: int) -> Dataset | None:
        rows = self.parents[0].get_or_compute(t)
        if rows is None:
            rows = self.ssc.context.empty_dataset("no rows")
        inputs = self.incoming(t, rows)
        prev = self.before(t)
        op = UpdateWindows(self.keys, self.specs, self.window, self.bounds, self.lateness, self.empty,
                           prev is not None, t, self.ttl_ms)
        return (prev if prev is not None else inputs[0]).zip_partitions(inputs, op)

    def _fit(self, ds: Dataset) -> Dataset:
        from .groupby import _rehash
        if ds.get_num_partitions() == self.n:
            return ds
        return _rehash(ds, self.keys, self.empty, self.n).cache()

    def signature(self) -> dict:
        return {**super().signature(), "keys": list(self.keys), "window": repr(self.window),
                "aggregates": [[s.out, s.column, s.func] for s in self.specs], "lateness": self.lateness,
                "ttl_ms": self.ttl_ms}


# --- the API (GroupBy.event_window / count_window -> agg) ---------------------------------------------------

@dataclass(frozen=True)
class WindowSpec:
    """What ``GroupBy.event_window`` / ``count_window`` asked for."""
    window: Any
    emit: str = "final"
    lateness: Any = 0
    ttl: Any = None           # count windows: seconds after which a key without rows leaves the table


def check_window(window: Any, emit: str) -> None:
    if not isinstance(window, (Tumbling, Hopping, Session, Count)):
        raise TypeError(f"event_window takes tumbling(size), hopping(size, slide) or session(gap), "
                        f"got {window!r}")
    if emit not in EMITS:
        raise ValueError(f"emit must be 'final' or 'update', got {emit!r}")


def window_agg(gb: "GroupBy", specs: tuple[AggSpec, ...], spec: WindowSpec, name: str | None) -> "StreamingDataFrame":
    """The frame of a keyed window aggregation (``GroupBy.agg`` after ``event_window``/``count_window``)."""
    from .frame import StreamingDataFrame
    sdf = gb._sdf
    window, keys = spec.window, gb.keys or (GLOBAL,)
    dtypes = dict(sdf.dtypes)
    if not gb.keys:
        if GLOBAL in dtypes:
            raise ValueError(f"a window over all rows keys them by a hidden column {GLOBAL!r}, and the frame "
                             f"has a column of that name: rename it")
        dtypes[GLOBAL] = "int64"
    counting = isinstance(window, Count)
    event = sdf._event
    if counting:
        clock, bounds, lateness = None, (), 0
    else:
        if event is None:
            raise ValueError("event_window needs event time: call sdf.with_watermark('ts', delay) first")
        clock = event.clock
        if clock.column not in dtypes:
            raise KeyError(f"event_window: the event-time column {clock.column!r} is not in the frame "
                           f"(columns: {list(dtypes)})")
        bounds = window.units(clock)
        lateness = clock.units(spec.lateness, "allowed_lateness", allow_zero=True)
    kept = specs + ((ROWS,) if counting else ())
    wkey = "_widx" if counting else "_wstart"
    wdtypes = {**dtypes, wkey: "int64"}
    keys2 = keys + (wkey,)
    empty = empty_partials(keys2, kept, wdtypes)
    if isinstance(window, Session):
        empty = Batch({**empty.columns, "_wend": np.empty(0, np.int64)},
                      _layout(keys2, empty.layout[1] + ("_wend",)))
    stream = sdf.stream
    n = stream.resolve_partitions(gb._n) if gb.keys else 1     # one key: one partition holds it
    ttl_ms = to_ms(spec.ttl, "ttl") if spec.ttl is not None else 0
    table = EventWindowDStream(stream, None if counting else event.watermark, keys, kept, window, bounds,
                               lateness, empty, n, ttl_ms)
    if name is not None:
        table.named(name)
    table.rows_schema = sdf._schema_fn
    inner = result_schema_batch(keys2, specs, wdtypes)
    out_cols = {k: empty_column(dtypes[k]) for k in gb.keys}
    if counting:
        out_cols["window"] = empty_column("int64")
    else:
        out_cols["window_start"] = empty_column(clock.dtype)
        out_cols["window_end"] = empty_column(clock.dtype)
    out_cols.update({s.out: inner.columns[s.out] for s in specs})
    result = frame_batch(out_cols)
    op = EmitWindows(keys, specs, result, inner, window, bounds[0] if bounds else 0, clock, spec.emit)
    schema = Schema.of_batch(result)
    out = StreamingDataFrame(table.derive("event_window_result", lambda ds: ds.narrow(op)), lambda: schema)
    out._late = table
    return out
