"""Watermarks: how far event time has progressed, per batch, and the rows behind it.

``sdf.with_watermark("ts", delay)`` gives a frame whose event-time operators
(``event_time.py``: windows; ``dedup.py``: ``drop_duplicates``) know when
they have seen all the rows of a moment of event time. The watermark is a
:class:`WatermarkDStream`, one row per batch (checkpointed with the context,
restored by the stream's name like any state table)::

    column     meaning (int64, in the event-time column's unit; NONE = no value yet)
    max_ts     the largest event time seen so far (rows of every partition)
    wm_before  the watermark in force while the batch runs (the last batch's wm)
    wm         the watermark after the batch: max(wm_before, max_ts - delay)
    last_ms    batch time of the last batch that brought rows (for idleness)

Per batch t::

    rows of t ──local max per partition──┐
    watermark row of t - 1 ──────────────┴──> watermark row of t  (one partition)

A row of batch t is *late* for an operator when its event time is before
``wm_before - allowed_lateness`` (or is NaT): one rule for every operator, so
the late rows are exactly the rows behind the watermark. A late row is never
dropped silently: it goes to the operator's ``late_rows()`` stream and is
counted in ``BatchInfo.state_tables[operator]["late_rows"]``.

Idle sources: with ``idle_timeout``, once no row has arrived for that long
(batch time), event time is taken to advance with processing time —
``wm = max_ts - delay + (t - last_ms - idle_timeout)`` — so windows close
without new data.

Event times are compared as int64 in the column's unit (:class:`EventClock`):
a ``datetime64`` column's int64 view, or an int column counted in ``unit``
(seconds by default). Durations (delay, window sizes, gaps) are seconds (a
number), a ``datetime.timedelta`` or a pandas Timedelta string ("10s", "5min").
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np

from ..batch import Batch
from ..dataset import Dataset
from ..dstream.base import DStream
from ..dstream.stateful import StatefulDStream
from ..listener import ms_to_datetime
from ..plan import Blocks, ShuffleDep

__all__ = ["EventClock", "EventTime", "WatermarkDStream", "LateRows", "TableWithLateRows", "LateRowsDStream", "NONE",
           "split_late", "replicate", "watermark_values"]

#: "no value yet" in the int64 columns of the watermark table (also a NaT's int64 view)
NONE = np.iinfo(np.int64).min

_UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def duration_ns(value, what: str, allow_zero: bool = False) -> int:
    """A duration as integer nanoseconds: seconds (a number), a timedelta, or a pandas Timedelta string."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be seconds, a timedelta or a string like '10s', got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        ns = round(float(value) * 1e9)
    elif isinstance(value, (_dt.timedelta, np.timedelta64, str)):
        import pandas as pd
        try:
            ns = int(pd.Timedelta(value).value)
        except ValueError as e:
            raise ValueError(f"{what}: cannot read {value!r} as a duration ({e})") from None
    else:
        raise TypeError(f"{what} must be seconds, a timedelta or a string like '10s', got "
                        f"{type(value).__name__}: {value!r}")
    if ns < 0 or (ns == 0 and not allow_zero):
        raise ValueError(f"{what} must be {'at least 0' if allow_zero else 'positive'}, got {value!r}")
    return ns


@dataclass(frozen=True)
class EventClock:
    """How one column holds event time: its dtype and the nanoseconds in one unit of its int64 view."""
    column: str
    dtype: str
    unit_ns: int

    @classmethod
    def of(cls, column: str, dtype: str, unit: str) -> "EventClock":
        if dtype.startswith("datetime64["):
            return cls(column, dtype, _UNITS[np.datetime_data(np.dtype(dtype))[0]])
        if dtype.startswith(("int", "uint")):
            if unit not in _UNITS:
                raise ValueError(f"with_watermark: unit must be one of {sorted(_UNITS)}, got {unit!r}")
            return cls(column, "int64", _UNITS[unit])
        raise TypeError(f"with_watermark: the event-time column {column!r} must hold datetime64 or integer "
                        f"times, it is {dtype}")

    def units(self, value, what: str, allow_zero: bool = False) -> int:
        """A duration in this column's units (it must be a whole number of them)."""
        ns = duration_ns(value, what, allow_zero)
        if ns % self.unit_ns:
            raise ValueError(f"{what} ({value!r}) is not a whole number of the event-time column's unit "
                             f"({self.unit_ns} ns)")
        return ns // self.unit_ns

    def ms_to_units(self, ms: int) -> int:
        return (int(ms) * 10**6) // self.unit_ns

    def times(self, batch: Batch) -> np.ndarray:
        """The column's event times as int64 (NaT as :data:`NONE`)."""
        col = batch.columns.get(self.column)
        if col is None:
            raise KeyError(f"the event-time column {self.column!r} is not in the rows (columns: "
                           f"{list(batch.columns)})")
        col = np.asarray(col)
        if col.dtype.kind == "M":
            return col.view(np.int64)
        return col.astype(np.int64, copy=False)

    def column_of(self, units: np.ndarray) -> np.ndarray:
        """int64 times back as a column of the event-time column's dtype."""
        units = np.asarray(units, dtype=np.int64)
        return units.view(self.dtype) if self.dtype.startswith("datetime64") else units


@dataclass(frozen=True)
class EventTime:
    """What a watermarked frame (and frames derived from it row by row) knows about its event time."""
    clock: EventClock
    watermark: "WatermarkDStream"


# --- partition ops -------------------------------------------------------------------------------------

_TABLE = ("max_ts", "wm_before", "wm", "last_ms")


def _row(**values) -> Batch:
    return Batch({k: np.array([values[k]], dtype=np.int64) for k in _TABLE}, _TABLE)


@dataclass(eq=False)
class LocalMax:
    """Map half: a partition's largest event time and its count of rows with one, as a one-row batch."""
    clock: EventClock

    def __call__(self, index: int, batch: Batch, n: int) -> list[Batch]:
        if len(batch) == 0 or self.clock.column not in batch.columns:
            ts = np.empty(0, np.int64)
        else:
            ts = self.clock.times(batch)
        ok = ts != NONE
        top = ts[ok].max() if ok.any() else NONE
        return [Batch({"max_ts": np.array([top], np.int64), "rows": np.array([int(ok.sum())], np.int64)},
                      ("max_ts", "rows"))] * n


@dataclass(eq=False)
class Keep:
    """Map half for a one-partition table going to one bucket."""

    def __call__(self, index: int, batch: Batch, n: int) -> list[Batch]:
        return [batch] * n


@dataclass(eq=False)
class WatermarkStep:
    """Reduce half: the watermark row of batch ``t`` from the local maxima and the previous row."""
    delay: int
    idle: int | None          # idle timeout, ms of batch time
    clock: EventClock
    t: int
    has_prev: bool

    def __call__(self, index: int, groups: list[list[Batch]]) -> Batch:
        locals_ = [b for b in groups[0] if len(b)]
        top = max((int(b.columns["max_ts"].max()) for b in locals_), default=NONE)
        rows = sum(int(b.columns["rows"].sum()) for b in locals_)
        prev = groups[1][0] if self.has_prev and groups[1] and len(groups[1][0]) else None
        if prev is None:
            max_ts, wm, last = NONE, NONE, NONE
        else:
            max_ts, wm, last = (int(prev.columns[c][0]) for c in ("max_ts", "wm", "last_ms"))
        before = wm
        max_ts = max(max_ts, top)
        if max_ts != NONE:
            wm = max(wm, max_ts - self.delay)
        if rows:
            last = self.t
        elif self.idle is not None and max_ts != NONE and last != NONE and self.t - last > self.idle:
            wm = max(wm, max_ts - self.delay + self.clock.ms_to_units(self.t - last - self.idle))
        return _row(max_ts=max_ts, wm_before=before, wm=wm, last_ms=last)


@dataclass(eq=False)
class First:
    """Reduce half of :func:`replicate`: the one table every bucket got."""

    def __call__(self, index: int, groups: list[list[Batch]]) -> Batch:
        got = [b for b in groups[0] if len(b)]
        return got[0] if got else Batch.empty()


def replicate(table: Dataset, n: int) -> Dataset:
    """A one-partition table as ``n`` partitions, each a copy (to zip with n-partition data)."""
    return table.shuffle([ShuffleDep(table.dependency(), Keep())], n, First())


def watermark_values(table: Batch) -> tuple[int, int]:
    """(wm_before, wm) of a watermark row (NONE, NONE when there is none)."""
    if len(table) == 0 or "wm" not in table.columns:
        return NONE, NONE
    return int(table.columns["wm_before"][0]), int(table.columns["wm"][0])


def split_late(batch: Batch, clock: EventClock, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """(event times, on-time mask) of a batch: on time when not NaT and at or after ``threshold``."""
    ts = clock.times(batch)
    ok = ts != NONE
    if threshold != NONE:
        ok &= ts >= threshold
    return ts, ok


def late_threshold(wm_before: int, lateness: int) -> int:
    """The earliest event time still on time while ``wm_before`` is in force (NONE: all are)."""
    return NONE if wm_before == NONE else wm_before - lateness


@dataclass(eq=False)
class ByWatermark:
    """The rows of partition i behind its watermark (``late``) or the others (``parts``: rows, the
    watermark row)."""
    clock: EventClock
    lateness: int
    late: bool = True

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        rows, wm = parts
        if len(rows) == 0:
            return rows
        before, _ = watermark_values(wm)
        _, ok = split_late(rows, self.clock, late_threshold(before, self.lateness))
        if ok.all():
            return rows.filter(~ok) if self.late else rows
        return rows.filter(~ok if self.late else ok)


# --- the watermark stream ----------------------------------------------------------------------------------

class WatermarkDStream(StatefulDStream):
    """The watermark of a frame stream, one row per batch (see the module docstring)."""

    kind = "watermark"
    kept = "watermark"

    def __init__(self, rows: DStream, clock: EventClock, delay: int, idle_ms: int | None):
        super().__init__(rows.ssc, [rows])
        self.clock, self.delay, self.idle_ms = clock, delay, idle_ms
        self.must_cache = True

    def compute(self, t: int) -> Dataset | None:
        rows = self.parents[0].get_or_compute(t)
        if rows is None:
            rows = self.ssc.context.empty_dataset(f"{self.parents[0].name} (no data)")
        prev = self.before(t)
        deps = [ShuffleDep(rows.dependency(), LocalMax(self.clock))]
        if prev is not None:
            deps.append(ShuffleDep(prev.dependency(), Keep()))
        return rows.shuffle(deps, 1, WatermarkStep(self.delay, self.idle_ms, self.clock, t, prev is not None))

    def settle(self, t: int) -> None:
        self.settle_table(t)

    def fall_back(self, t: int) -> str:
        self.generated[t] = self.generated.get(t - self.slide_ms)
        return f"its watermark stays at the batch before {ms_to_datetime(t)}"

    def value(self, t: int) -> tuple[int, int] | None:
        """(wm_before, wm) at t once computed (NONE for no watermark yet), else None."""
        ds = self.generated.get(t)
        if ds is None or not isinstance(ds.plan, Blocks) or not ds.plan.refs:
            return None
        return watermark_values(self.ssc.context.executor.store.get(ds.plan.refs[0]))

    def state_report(self, t: int) -> dict | None:
        report = super().state_report(t)
        got = self.value(t)
        if report is not None and got is not None and got[1] != NONE:
            report["watermark"] = got[1]
        return report

    def signature(self) -> dict:
        return {**super().signature(), "column": self.clock.column, "unit_ns": self.clock.unit_ns}

    def required_columns(self) -> set[str]:
        return set(_TABLE)


# --- late rows -----------------------------------------------------------------------------------------------

class LateRows:
    """The late rows of one operator per batch: memoised, cached, counted once its batch ran."""

    def __init__(self, stream: DStream):
        self.stream = stream
        self._at: dict[int, Dataset] = {}

    def put(self, t: int, ds: Dataset) -> Dataset:
        ds = Dataset(ds.ctx, ds.plan, f"{self.stream.name} late rows at {ms_to_datetime(t)}").cache()
        self._at[t] = ds
        return ds

    def at(self, t: int) -> Dataset | None:
        if t not in self._at:
            self.stream.get_or_compute(t)       # the operator's compute puts them
        return self._at.get(t)

    def settle(self, t: int) -> None:
        """Compute batch t's late rows if no output did (so they are counted)."""
        ds = self._at.get(t)
        if ds is not None and not isinstance(ds.plan, Blocks):
            ds.materialize()

    def count(self, t: int) -> int:
        ds = self._at.get(t)
        return sum(r.nrows for r in ds.plan.refs) if ds is not None and isinstance(ds.plan, Blocks) else 0

    def forget_through(self, horizon: int) -> None:
        for old in [k for k in list(self._at) if k <= horizon]:
            self._at.pop(old, None)


class TableWithLateRows(StatefulDStream):
    """An event-time operator's table (windows: ``event_time.py``; seen keys: ``dedup.py``; interval-join
    buffers) that also puts each batch's late rows in ``self.late`` (its ``compute`` does). This class
    owns the late rows' bookkeeping: computed when the table is settled, forgotten with the table's
    batches, counted in ``BatchInfo.state_tables[name]["late_rows"]``; and a failed batch's fall-back."""

    #: what the table holds, as the fall-back message says it ("windows", "seen keys", ...)
    holds = "rows"

    def __init__(self, ssc, parents: list):
        super().__init__(ssc, parents)
        self.late = LateRows(self)
        self.must_cache = True

    def counts_late(self) -> bool:
        """Whether the operator can have late rows (not without a watermark: count windows, a join side)."""
        return True

    def settle(self, t: int) -> None:
        self.settle_table(t)
        self.late.settle(t)

    def forget_before(self, t: int) -> None:
        super().forget_before(t)
        self.late.forget_through(t - self.remember_ms)

    def state_report(self, t: int) -> dict | None:
        report = super().state_report(t)
        if report is not None and self.counts_late():
            report["late_rows"] = self.late.count(t)
        return report

    def fall_back(self, t: int) -> str:
        prev = self.generated.get(t - self.slide_ms)
        self.generated[t] = prev
        if prev is None:
            return f"it starts again from no {self.holds}"
        return f"its {self.holds} stay as after the batch at {ms_to_datetime(t - self.slide_ms)}"


class LateRowsDStream(DStream):
    """``sdf.late_rows()``: the rows an event-time operator (or a watermark) found behind the watermark."""

    kind = "late_rows"

    def __init__(self, source: DStream):
        super().__init__(source.ssc, [source])

    def compute(self, t: int) -> Dataset | None:
        return self.parents[0].late.at(t)


class BehindWatermark(DStream):
    """The rows of a watermarked frame behind its watermark, per batch (``late_rows()`` of the frame
    itself; counted in ``BatchInfo.state_tables[name]["late_rows"]``)."""

    kind = "behind_watermark"

    def __init__(self, rows: DStream, watermark: WatermarkDStream):
        super().__init__(rows.ssc, [rows, watermark])
        self.watermark = watermark
        self.must_cache = True

    def compute(self, t: int) -> Dataset | None:
        rows = self.parents[0].get_or_compute(t)
        if rows is None:
            rows = self.ssc.context.empty_dataset(f"{self.parents[0].name} (no data)")
        wm = replicate(self.watermark.get_or_compute(t), rows.get_num_partitions())
        return rows.zip_partitions([wm], ByWatermark(self.watermark.clock, 0))

    def state_report(self, t: int) -> dict | None:
        ds = self.generated.get(t)
        if ds is None or not isinstance(ds.plan, Blocks):
            return None
        return {"keys": 0, "bytes": 0, "late_rows": sum(r.nrows for r in ds.plan.refs)}
