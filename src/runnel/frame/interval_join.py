"""``left.join_interval(right, on=..., lower=..., upper=...)``: a stream-stream join on event time.

A left row and a right row pair when their keys are equal and::

    right.time + lower  <=  left.time  <=  right.time + upper

(``inclusive`` as pandas' ``Series.between``: "both", "left", "right" or
"neither"); ``lower``/``upper`` are signed offsets (seconds, timedelta,
``"-10s"``), ``None`` for no bound on that side, neither for the
unbounded incremental join (every pair of equal keys, whenever its rows come).
Every pair comes out once, in the batch of its later row. Inner join only.

State: each side's rows wait, per key partition, in a buffer (a
:class:`JoinBufferDStream`: checkpointed, restored by name) for rows of the
other side that may still pair with them. With watermarks
(``with_watermark`` on each frame) the buffers are bounded::

    a left row at time a pairs with right rows in [a - upper, a - lower];
    the right rows still to come are at or after W_right (the right's watermark):
    the left row stays while a - lower >= W_right, a right row at b while b + upper >= W_left

so a buffer holds about (interval width + the other side's watermark delay)
of event time. A side without a watermark keeps the other side's rows for
ever, as does a missing bound.

Per batch t and partition (both sides hashed by key into the same n
partitions; no shuffle of the buffers)::

    left rows of t ──on time?──> L      right rows of t ──on time?──> R
    pairs: (left buffer of t-1 + L) x R   and   L x (right buffer of t-1)
    left buffer of t  = (left buffer of t-1 + L)  less the rows no right row can reach
    right buffer of t = (right buffer of t-1 + R) less the rows no left row can reach

A row behind its own side's watermark (in force for its batch) is late: it
joins nothing; it is in that frame's ``late_rows()``, and counted in
``BatchInfo.state_tables["<buffer name>"]["late_rows"]`` (the buffers are
``<name>.left`` and ``<name>.right``). So the result is exactly the pairs of on-time rows — a
pandas merge of all on-time rows filtered by the interval (the property
tests' oracle). Rows with a null key pair with nothing.

Columns as pandas' ``merge``: the left's, then the right's without keys
shared by name; other names in both get ``_x`` / ``_y``. Event times are
compared as int64 nanoseconds (datetime64 columns of any unit; int columns
counted in ``unit``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from runnel import kernels as K

from ..batch import Batch, column_take, concat_batches, concat_columns, is_arrow
from ..dataset import Dataset
from ..dstream.base import DStream
from ..dstream.transformed import TransformedDStream
from .aggregate import group_codes
from .buckets import bucket_rows
from .expr import isnull_column
from .schema import Schema, frame_batch
from .watermark import NONE, ByWatermark, EventClock, TableWithLateRows, replicate, split_late, watermark_values

if TYPE_CHECKING:
    from .frame import StreamingDataFrame

__all__ = ["join_interval", "JoinBufferDStream"]

INCLUSIVE = ("both", "left", "right", "neither")


def offset_ns(value: Any, what: str) -> int | None:
    """A signed offset as integer nanoseconds (None stays None: no bound)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"join_interval {what} must be seconds, a timedelta or a string like '-10s', got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return round(float(value) * 1e9)
    try:
        return int(pd.Timedelta(value).value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"join_interval {what}: cannot read {value!r} as an offset ({e})") from None


@dataclass(frozen=True)
class Side:
    """How the join reads one side: its key columns, its time column (as ns) and its watermark clock."""
    keys: tuple
    time: str | None
    unit_ns: int             # ns per unit of an int time column (datetime64: read from the dtype)
    clock: EventClock | None  # the side's watermark (None: it has none)

    def times(self, rows: Batch) -> np.ndarray:
        """The time column as int64 ns (NaT as NONE)."""
        return self.times_at(rows, None)

    def times_at(self, rows: Batch, idx: np.ndarray | None) -> np.ndarray:
        """The times of rows ``idx`` (all rows: None) as int64 ns (NaT as NONE)."""
        col = np.asarray(rows.columns[self.time])
        if idx is not None:
            col = col[idx]
        if col.dtype.kind == "M":
            return col.astype("datetime64[ns]").view(np.int64)
        return col.astype(np.int64) * self.unit_ns

    def watermark(self, wm: Batch | None) -> tuple[int, int]:
        """(in force for the batch, after the batch) in ns; NONE when there is none."""
        if self.clock is None or wm is None:
            return NONE, NONE
        return tuple(NONE if v == NONE else v * self.clock.unit_ns for v in watermark_values(wm))

    def on_time(self, rows: Batch, wm: Batch | None) -> Batch | None:
        """The rows that join: keys not null, not behind the side's watermark in force. None if none."""
        if len(rows) == 0 or not all(k in rows.columns for k in self.keys):
            return None
        keep = np.ones(len(rows), dtype=bool)
        for k in self.keys:
            keep &= ~isnull_column(rows.columns[k], len(rows))
        if self.clock is not None and wm is not None:
            before, _ = watermark_values(wm)
            keep &= split_late(rows, self.clock, before)[1]
        if self.time is not None:      # a row without a time (NaT) is in no interval
            keep &= self.times(rows) != NONE
        if not keep.all():
            rows = rows.filter(keep)
        return rows if len(rows) else None


@dataclass(frozen=True)
class Interval:
    """``right.time + lower <= left.time <= right.time + upper`` (ns; None: unbounded)."""
    lower: int | None
    upper: int | None
    inclusive: str

    def holds(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ok = np.ones(len(a), dtype=bool)
        if self.lower is not None:
            ok &= (a >= b + self.lower) if self.inclusive in ("both", "left") else (a > b + self.lower)
        if self.upper is not None:
            ok &= (a <= b + self.upper) if self.inclusive in ("both", "right") else (a < b + self.upper)
        return ok


#: a side this many times smaller than the other first narrows the other to its keys (one vectorised
#: membership test), so a few new rows against a big buffer do not factorize the whole buffer
NARROW_RATIO = 64


def _narrowed(big: Batch, big_keys: tuple, small: Batch, small_keys: tuple) -> np.ndarray | None:
    """Rows of ``big`` whose first key is among ``small``'s (None: all of them, not worth narrowing)."""
    if len(small) * NARROW_RATIO > len(big):
        return None
    col, values = big.columns[big_keys[0]], small.columns[small_keys[0]]
    if is_arrow(col):
        mask = pc.is_in(col, value_set=values).to_numpy(zero_copy_only=False)
    elif col.dtype.kind in "iufbM":
        mask = np.isin(col, np.asarray(values))
    else:
        return None
    return np.flatnonzero(mask)


def pair_rows(left: Batch, right: Batch, ls: Side, rs: Side, interval: Interval) -> tuple[np.ndarray, np.ndarray]:
    """Indices (li, ri) of the pairs of equal keys within the interval."""
    if len(left) == 0 or len(right) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    lsel, rsel = _narrowed(left, ls.keys, right, rs.keys), _narrowed(right, rs.keys, left, ls.keys)
    lk = [left.columns[k] if lsel is None else column_take(left.columns[k], lsel) for k in ls.keys]
    rk = [right.columns[k] if rsel is None else column_take(right.columns[k], rsel) for k in rs.keys]
    n = len(lk[0])
    if n == 0 or len(rk[0]) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    codes, first = group_codes([concat_columns([a, b]) for a, b in zip(lk, rk)])
    li, ri = K.join_indices(codes[:n], codes[n:], len(first), "inner")
    li = li if lsel is None else lsel[li]
    ri = ri if rsel is None else rsel[ri]
    if (interval.lower is not None or interval.upper is not None) and len(li):
        ok = interval.holds(ls.times_at(left, li), rs.times_at(right, ri))
        li, ri = li[ok], ri[ok]
    return li, ri


@dataclass(frozen=True)
class Layout:
    """Output columns: (name, side, column) in pandas' merge order and naming."""
    columns: tuple

    @classmethod
    def of(cls, left_names: tuple, right_names: tuple, ls: Side, rs: Side) -> "Layout":
        shared = {lk for lk, rk in zip(ls.keys, rs.keys) if lk == rk}
        rest = [c for c in right_names if c not in shared]
        clash = (set(left_names) - shared) & set(rest)
        cols = [(c + "_x" if c in clash else c, 0, c) for c in left_names]
        cols += [(c + "_y" if c in clash else c, 1, c) for c in rest]
        return cls(tuple(cols))

    def assemble(self, left: Batch, right: Batch, li: np.ndarray, ri: np.ndarray) -> Batch:
        sides = (left, right)
        idx = (li, ri)
        return frame_batch({out: column_take(sides[s].columns[c], idx[s]) for out, s, c in self.columns})


# --- partition ops ----------------------------------------------------------------------------------

@dataclass(eq=False)
class KeepRows:
    """A side's buffer after batch t, partition i: ``parts`` = [buffer of t-1 (if ``has_prev``), rows of t,
    own watermark row (if any), other side's watermark row (if any)]."""
    side: Side
    other: Side
    reach: int | None        # a row at time x can still pair while x + reach >= the other's watermark
    empty: Batch
    has_prev: bool

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        prev = parts[0] if self.has_prev and len(parts[0]) else None
        i = 2
        own = other = None
        if self.side.clock is not None:
            own, i = parts[i], i + 1
        if self.other.clock is not None:
            other = parts[i]
        rows = self.side.on_time(parts[1], own)
        kept = [b for b in (prev, rows) if b is not None and len(b)]
        if not kept:
            return self.empty
        table = concat_batches(kept) if len(kept) > 1 else kept[0]
        _, now = self.other.watermark(other)
        if self.reach is not None and now != NONE:
            keep = self.side.times(table) + self.reach >= now
            if not keep.all():
                table = table.filter(keep)
        return table if len(table) else self.empty


@dataclass(eq=False)
class JoinPairs:
    """Partition i of the pairs of batch t: ``parts`` = [left rows, right rows, left watermark (if any),
    right watermark (if any), left buffer of t-1 (if any), right buffer of t-1 (if any)]."""
    ls: Side
    rs: Side
    interval: Interval
    layout: Layout
    result: Batch
    has_prev: tuple

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        i = 2
        wl = wr = lprev = rprev = None
        if self.ls.clock is not None:
            wl, i = parts[i], i + 1
        if self.rs.clock is not None:
            wr, i = parts[i], i + 1
        if self.has_prev[0]:
            lprev, i = (parts[i] if len(parts[i]) else None), i + 1
        if self.has_prev[1]:
            rprev = parts[i] if len(parts[i]) else None
        new_l, new_r = self.ls.on_time(parts[0], wl), self.rs.on_time(parts[1], wr)
        out = []
        # each pair once, in the batch of its later row: (old + new left) x new right, new left x old right
        for a, b in ((lprev, new_r), (new_l, new_r), (new_l, rprev)):
            if a is not None and b is not None:
                li, ri = pair_rows(a, b, self.ls, self.rs, self.interval)
                if len(li):
                    out.append(self.layout.assemble(a, b, li, ri))
        return concat_batches(out) if out else self.result


# --- streams --------------------------------------------------------------------------------------

class JoinBufferDStream(TableWithLateRows):
    """One side's rows kept for the other side's rows to come (see the module docstring)."""

    kind = "join_interval_buffer"
    kept = "join buffer"

    def __init__(self, rows: DStream, watermarks: list, side: Side, other: Side, reach: int | None,
                 empty: Batch, n: int):
        super().__init__(rows.ssc, [rows] + [w for w in watermarks if w is not None])
        self.own_wm, self.other_wm = watermarks
        self.side, self.other, self.reach, self.empty, self.n = side, other, reach, empty, n

    def counts_late(self) -> bool:
        return self.own_wm is not None

    def watermark_inputs(self, t: int) -> list[Dataset]:
        return [replicate(w.get_or_compute(t), self.n) for w in (self.own_wm, self.other_wm) if w is not None]

    def compute(self, t: int) -> Dataset | None:
        rows = self.parents[0].get_or_compute(t)
        if rows is None:
            rows = bucket_rows(self.ssc.context.empty_dataset("no rows"), self.side.keys, self.n, nulls=True)
        prev = self.before(t)
        wms = self.watermark_inputs(t)
        if self.own_wm is not None:     # the side's rows behind its watermark, counted on BatchInfo
            self.late.put(t, rows.zip_partitions(wms[:1], ByWatermark(self.own_wm.clock, 0)))
        op = KeepRows(self.side, self.other, self.reach, self.empty, prev is not None)
        return (prev if prev is not None else rows).zip_partitions([rows] + wms, op)

    def _fit(self, ds: Dataset) -> Dataset:
        return ds if ds.get_num_partitions() == self.n else \
            bucket_rows(ds, self.side.keys, self.n, nulls=True).cache()

    def signature(self) -> dict:
        return {**super().signature(), "keys": list(self.side.keys), "time": self.side.time, "reach": self.reach}


@dataclass(eq=False)
class IntervalJoin:
    """Batch t's pairs from both sides' rows, watermarks and buffers of t - 1."""
    buffers: tuple
    op: Any

    def __call__(self, dss: list[Dataset], t: int) -> Dataset:
        lbuf, rbuf = self.buffers
        for b in self.buffers:
            b.get_or_compute(t)       # defined now: the scheduler computes it after the batch if no output did
        prevs = [b.before(t) for b in self.buffers]
        wms = [replicate(w.get_or_compute(t), lbuf.n) for w in (lbuf.own_wm, rbuf.own_wm) if w is not None]
        op = replace(self.op, has_prev=tuple(p is not None for p in prevs))
        return dss[0].zip_partitions([dss[1]] + wms + [p for p in prevs if p is not None], op)


# --- the API ---------------------------------------------------------------------------------------------

def _side(sdf: "StreamingDataFrame", keys: tuple, time: str | None, unit: str, where: str) -> Side:
    missing = [k for k in keys if k not in sdf.columns]
    if missing:
        raise KeyError(f"join_interval: no column(s) {missing} on the {where} (columns: {sdf.columns})")
    event = sdf._event
    if time is None and event is not None:
        time = event.clock.column
    clock = event.clock if event is not None else None
    if time is not None:
        if time not in sdf.columns:
            raise KeyError(f"join_interval: no time column {time!r} on the {where} (columns: {sdf.columns})")
        d = sdf.dtypes[time]
        if not (d.startswith("datetime64") or d.startswith(("int", "uint"))):
            raise TypeError(f"join_interval: the {where} time column {time!r} must hold datetime64 or integer "
                            f"times, it is {d}")
        if clock is not None and clock.column != time:
            raise ValueError(f"join_interval: the {where} frame's watermark is on {clock.column!r}, not on its "
                             f"time column {time!r}: its buffer could not be bounded by it")
    unit_ns = clock.unit_ns if clock is not None and not clock.dtype.startswith("datetime64") else \
        EventClock.of(time or "", "int64", unit).unit_ns
    return Side(keys, time, unit_ns, clock)


def join_interval(left: "StreamingDataFrame", right: "StreamingDataFrame", on: Any = None, left_on: Any = None,
                  right_on: Any = None, time: Any = None, lower: Any = None, upper: Any = None,
                  inclusive: str = "both", unit: str = "s", name: str | None = None) -> "StreamingDataFrame":
    """The frame of ``left.join_interval(right, ...)`` (see the module docstring and
    ``StreamingDataFrame.join_interval``)."""
    from .frame import StreamingDataFrame
    if (on is None) == (left_on is None or right_on is None):
        raise ValueError("join_interval needs on=... (key columns of both sides) or left_on=... and right_on=...")
    as_tuple = lambda k: (k,) if isinstance(k, str) else tuple(k)  # noqa: E731
    lkeys, rkeys = (as_tuple(on), as_tuple(on)) if on is not None else (as_tuple(left_on), as_tuple(right_on))
    if len(lkeys) != len(rkeys) or not lkeys:
        raise ValueError(f"join_interval: left_on {list(lkeys)} and right_on {list(rkeys)} must name as many "
                         f"columns, at least one")
    if inclusive not in INCLUSIVE:
        raise ValueError(f"join_interval: inclusive must be one of {INCLUSIVE}, got {inclusive!r}")
    lo, hi = offset_ns(lower, "lower"), offset_ns(upper, "upper")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"join_interval: lower ({lower!r}) is after upper ({upper!r}): no pair could match")
    ltime, rtime = (time, time) if time is None or isinstance(time, str) else tuple(time)
    bounded = lo is not None or hi is not None
    ls = _side(left, lkeys, ltime, unit, "left")
    rs = _side(right, rkeys, rtime, unit, "right")
    if bounded and (ls.time is None or rs.time is None):
        raise ValueError("join_interval with lower/upper needs the time columns: time='ts' (or a pair), or "
                         "with_watermark on both frames")
    if not bounded:   # no time condition: times are not read
        ls, rs = Side(lkeys, None, 1, ls.clock), Side(rkeys, None, 1, rs.clock)
    ld, rd = left.dtypes, right.dtypes
    for a, b in zip(lkeys, rkeys):
        if ld[a] != rd[b]:
            raise TypeError(f"join_interval: key {a!r} ({ld[a]}) and {b!r} ({rd[b]}) have different dtypes: "
                            f"convert one with astype first")
    interval = Interval(lo, hi, inclusive)
    layout = Layout.of(tuple(left.columns), tuple(right.columns), ls, rs)
    lempty, rempty = left.schema.empty(), right.schema.empty()
    result = layout.assemble(lempty, rempty, np.empty(0, np.int64), np.empty(0, np.int64))
    ssc = left.stream.ssc
    n = left.stream.resolve_partitions(None)
    lrows = left.stream.derive("join_interval_rows", lambda ds: bucket_rows(ds, lkeys, n, nulls=True)).cache()
    rrows = right.stream.derive("join_interval_rows", lambda ds: bucket_rows(ds, rkeys, n, nulls=True)).cache()
    lwm = left._event.watermark if left._event is not None else None
    rwm = right._event.watermark if right._event is not None else None
    # a left row at a pairs with right rows at b <= a - lower; a right row at b with left rows at a <= b + upper
    lbuf = JoinBufferDStream(lrows, [lwm, rwm], ls, rs, None if lo is None else -lo, lempty, n)
    rbuf = JoinBufferDStream(rrows, [rwm, lwm], rs, ls, hi, rempty, n)
    if name is not None:
        lbuf.named(f"{name}.left")
        rbuf.named(f"{name}.right")
    op = JoinPairs(ls, rs, interval, layout, result, (False, False))
    stream = TransformedDStream(ssc, [lrows, rrows], IntervalJoin((lbuf, rbuf), op), "join_interval")
    schema = Schema.of_batch(result)
    where = f"BatchInfo.state_tables['{lbuf.name}' / '{rbuf.name}']['late_rows']"
    why = ("late_rows() of a join_interval result: a row behind its own side's watermark joins nothing, and the "
           "two sides have different columns, so the late rows are each side's: call late_rows() on the left "
           f"and on the right frame (the frames given to join_interval); counted in {where}")
    return StreamingDataFrame(stream, lambda: schema, late=why)
