"""Joins of streaming frames: with a static table, with another stream within a window, and as-of
the latest value per key.

All three join columnar: keys of both sides factorized together (``aggregate.group_codes``)
and paired by the engine's hash-join kernel (``kernels.join_indices``); a
missing side (left/outer joins) is NaN for numbers, NaT for datetimes, null
for strings, as pandas' ``merge`` gives. Overlapping non-key columns get
pandas' suffixes ``_x`` / ``_y``.

* **stream–static** (``sdf.merge(df, on=...)``): the static table travels
  to each worker once (shipped like a user function, not with every task);
  given as a function ``load() -> DataFrame`` with ``refresh=seconds``, it is
  reloaded in the driver when that long has passed and shipped anew.
* **stream–stream** (``sdf.merge(other_sdf, on=..., within=seconds)``): rows
  of either side whose batches are less than ``within`` apart; every
  matching pair comes out once, in the batch of its later row; with
  ``how="left"``, a left row that matched nothing comes out (with NaN) once
  no match can arrive any more, ``within`` after its batch. Both sides
  keep the window of ``within`` seconds (the engine's window primitive,
  checkpointed like any window).
* **as-of latest** (``sdf.merge_asof(other_sdf, on=...)``): each row gets the
  latest values of the other stream's key so far (this batch included), a
  running ``last`` aggregation kept in the state tables, joined partition
  by partition with the rows hashed the same way (no shuffle of the state).
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pyarrow as pa

from runnel import kernels as K

from ..batch import Batch, Column, column_take, concat_batches, concat_columns, is_arrow, object_array
from ..executors.shipping import ship
from ..plan import ShuffleDep
from .aggregate import group_codes, partition_partials
from .schema import Schema, frame_batch, to_frame_batch

if TYPE_CHECKING:
    from .frame import StreamingDataFrame

__all__ = ["merge_static", "merge_streams", "merge_latest"]

_HOWS = ("inner", "left")


def take_missing(col: Column, idx: np.ndarray) -> Column:
    """Rows ``idx`` of ``col``; -1 gives pandas' missing value of the column's type."""
    missing = idx < 0
    if not missing.any():
        return column_take(col, idx)
    safe = np.where(missing, 0, idx)
    if is_arrow(col):
        return col.take(pa.array(idx, pa.int64(), mask=missing))
    if len(col) == 0:
        return np.full(len(idx), np.nan) if col.dtype.kind in "iufb" else object_array([None] * len(idx))
    if col.dtype.kind in "iuf":
        out = col[safe].astype(np.float64)
        out[missing] = np.nan
        return out
    if col.dtype.kind == "M":
        out = col[safe].copy()
        out[missing] = np.datetime64("NaT")
        return out
    vals = col[safe].astype(object)
    vals[missing] = None if col.dtype.kind != "b" else np.nan
    return vals


def join_batches(left: Batch, right: Batch, on: tuple, how: str) -> Batch:
    """pandas' ``left.merge(right, on=on, how=how)`` on two frame batches (key columns once, then
    the left's other columns, then the right's; ``_x``/``_y`` where names collide)."""
    lk = [left.columns[k] for k in on]
    rk = [right.columns[k] for k in on]
    both = [concat_columns([a, b]) if len(a) and len(b) else (a if len(a) else b) for a, b in zip(lk, rk)]
    if len(both[0]):
        codes, first = group_codes(both)
        g = len(first)
        # null keys never match (pandas matches NaN with NaN; SQL and Spark do not: we follow pandas)
        lc, rc = codes[:len(left)], codes[len(left):]
        li, ri = K.join_indices(lc, rc, g, how)
    else:
        li = ri = np.empty(0, np.int64)
    lrest = [c for c in left.columns if c not in on]
    rrest = [c for c in right.columns if c not in on]
    clash = set(lrest) & set(rrest)
    out: dict = {}
    for k in on:
        out[k] = column_take(left.columns[k], li) if len(li) else left.columns[k][:0]
    for c in lrest:
        out[c + "_x" if c in clash else c] = column_take(left.columns[c], li)
    for c in rrest:
        out[c + "_y" if c in clash else c] = take_missing(right.columns[c], ri) if len(ri) else \
            _empty_like_missing(right.columns[c])
    return frame_batch(out)


def _empty_like_missing(col: Column) -> Column:
    if isinstance(col, np.ndarray) and col.dtype.kind in "iub":
        return np.empty(0, np.float64)
    return col[:0] if not is_arrow(col) else col.slice(0, 0)


# --- stream-static --------------------------------------------------------------------------------

class StaticTable:
    """A static frame batch, shipped to workers once as a callable returning it."""

    def __init__(self, batch: Batch):
        self.batch = batch

    def __call__(self) -> Batch:
        return self.batch


def _static_batch(df: Any, on: tuple) -> Batch:
    b = to_frame_batch(Batch.coerce(df), None)
    missing = [k for k in on if k not in b.columns]
    if missing:
        raise KeyError(f"merge: the static table has no column(s) {missing} (columns: {list(b.columns)})")
    return b


@dataclass(eq=False)
class JoinStatic:
    table: Callable
    on: tuple
    how: str

    def __call__(self, index: int, batch: Batch) -> Batch:
        return join_batches(batch, self.table(), self.on, self.how)


class _Loader:
    """The static side in the driver: the table shipped now, reloaded every ``refresh`` seconds."""

    def __init__(self, source: Any, on: tuple, refresh: float | None):
        self.source, self.on, self.refresh = source, on, refresh
        self.loaded_at = None
        self.ref = None
        self.load()

    def load(self) -> None:
        df = self.source() if callable(self.source) else self.source
        self.ref = ship(StaticTable(_static_batch(df, self.on)))
        self.loaded_at = _time.monotonic()

    def current(self):
        if self.refresh is not None and callable(self.source) and _time.monotonic() - self.loaded_at >= self.refresh:
            self.load()
        return self.ref


def merge_static(sdf: "StreamingDataFrame", other: Any, on: tuple, how: str, refresh: float | None):
    from .frame import StreamingDataFrame
    from .transformed_frame import transformed
    loader = _Loader(other, on, refresh)
    left = sdf.schema.empty()
    right = loader.ref()
    schema = Schema.of_batch(join_batches(left, right.slice(0, 0), on, how))
    stream = transformed(sdf.stream, "merge", lambda ds, t: ds.narrow(JoinStatic(loader.current(), on, how)))
    return StreamingDataFrame(stream, lambda: schema)


# --- stream-stream within a window of batches -----------------------------------------------------------

_T = "__batch_time"


@dataclass(eq=False)
class TagTime:
    t: int

    def __call__(self, index: int, batch: Batch) -> Batch:
        return frame_batch({**batch.columns, _T: np.full(len(batch), self.t, dtype=np.int64)})


@dataclass(eq=False)
class KeyBuckets:
    on: tuple

    def __call__(self, index: int, batch: Batch, n: int) -> list[Batch]:
        if len(batch) == 0 or _T not in batch.columns:
            return [batch] * n
        return partition_partials(batch, self.on, n)


@dataclass(eq=False)
class JoinWindows:
    """Pairs of the two windows whose later row is of batch ``t`` (so each pair comes out once); for a
    left join, also the left rows of batch ``t - within + slide`` that matched nothing: no right row
    within reach of them can still arrive (the right window reaches back ``2 within - slide``)."""
    on: tuple
    how: str
    t: int
    within_ms: int
    slide_ms: int
    left_empty: Batch
    right_empty: Batch
    result: Batch

    def _fit(self, j: Batch) -> Batch:
        cols = {}
        for n, want in self.result.columns.items():
            c = j.columns[n]
            if isinstance(want, np.ndarray) and isinstance(c, np.ndarray) and want.dtype != c.dtype \
                    and want.dtype.kind == "f" and c.dtype.kind in "iub":
                c = c.astype(want.dtype)
            cols[n] = c
        return frame_batch(cols)

    def __call__(self, index: int, groups: list[list[Batch]]) -> Batch:
        left = _concat_or(groups[0], self.left_empty)
        right = _concat_or(groups[1], self.right_empty)
        if len(left) == 0:
            return self.result
        w, t = self.within_ms, self.t
        j = join_batches(left, right, self.on, "inner")
        lt, rt = j.columns[_T + "_x"], j.columns[_T + "_y"]
        parts = [self._fit(j.filter((np.maximum(lt, rt) == t) & (np.abs(lt - rt) < w)))]
        if self.how == "left":
            old = left.filter(left.columns[_T] == t - w + self.slide_ms)
            if len(old):
                old = frame_batch({**old.columns, _ROW: np.arange(len(old), dtype=np.int64)})
                jo = join_batches(old, right, self.on, "inner")
                near = np.abs(jo.columns[_T + "_x"] - jo.columns[_T + "_y"]) < w
                matched = np.zeros(len(old), dtype=bool)
                matched[np.asarray(jo.columns[_ROW])[near]] = True
                alone = old.filter(~matched)
                alone = frame_batch({n: c for n, c in alone.columns.items() if n != _ROW})
                parts.append(self._fit(join_batches(alone, right.slice(0, 0), self.on, "left")))
        parts = [p for p in parts if len(p)]
        return concat_batches(parts) if parts else self.result


_ROW = "__row"


def _concat_or(parts: list[Batch], empty: Batch) -> Batch:
    parts = [b for b in parts if len(b) and _T in b.columns]
    return concat_batches(parts) if parts else empty


def merge_streams(left: "StreamingDataFrame", right: "StreamingDataFrame", on: tuple, how: str, within: float):
    from ..dstream.base import to_ms
    from .frame import StreamingDataFrame
    ssc = left.stream.ssc
    w = to_ms(within, "within")
    s = left.stream.slide_ms
    if right.stream.slide_ms != s or w % s:
        raise ValueError(f"merge(within=...): both streams need the same batch interval and within a multiple "
                         f"of it ({s} ms), got {right.stream.slide_ms} ms and {w} ms")
    n = ssc.context.default_parallelism
    le = frame_batch({**left.schema.empty().columns, _T: np.empty(0, np.int64)})
    re_ = frame_batch({**right.schema.empty().columns, _T: np.empty(0, np.int64)})
    joined = join_batches(le, re_, on, how)
    result = frame_batch({c: v for c, v in joined.columns.items() if c not in (_T + "_x", _T + "_y")})
    from .transformed_frame import transformed
    reach = w if how == "inner" else 2 * w - s     # see JoinWindows
    lw = transformed(left.stream, "tag_time", lambda ds, t: ds.narrow(TagTime(t))).window(w / 1000, s / 1000)
    rw = transformed(right.stream, "tag_time", lambda ds, t: ds.narrow(TagTime(t))).window(reach / 1000, s / 1000)

    def join(dss, t):
        a, b = dss
        return a.shuffle([ShuffleDep(a.dependency(), KeyBuckets(on)), ShuffleDep(b.dependency(), KeyBuckets(on))], n,
                          JoinWindows(on, how, t, w, s, le, re_, result))
    from ..dstream.transformed import TransformedDStream
    stream = TransformedDStream(ssc, [lw, rw], join, "merge_within")
    schema = Schema.of_batch(result)
    return StreamingDataFrame(stream, lambda: schema)


# --- as-of the latest value per key ------------------------------------------------------------------

@dataclass(eq=False)
class JoinLatest:
    on: tuple
    how: str
    result: Batch

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        rows, latest = parts      # latest: the running table's rows of this partition (its schema when none)
        if len(rows) == 0 or self.on[0] not in rows.columns:
            return self.result
        j = join_batches(rows, latest, self.on, self.how)
        return frame_batch({n: j.columns[n] for n in self.result.columns})


def merge_latest(left: "StreamingDataFrame", right: "StreamingDataFrame", on: tuple, how: str, name: str | None):
    from .buckets import bucket_rows
    from .frame import StreamingDataFrame
    values = [c for c in right.columns if c not in on]
    latest = right.groupby(list(on)).running(name=name).agg(**{c: (c, "last") for c in values})
    n = left.stream.ssc.context.default_parallelism
    rows = left.stream.derive("merge_asof_rows", lambda ds: bucket_rows(ds, on, n))
    result_batch = join_batches(left.schema.empty(), latest.schema.empty(), on, how)
    op = JoinLatest(on, how, result_batch)
    stream = rows.derive_with("merge_asof", latest.stream, lambda a, b: a.zip_partitions([b], op))
    schema = Schema.of_batch(result_batch)
    return StreamingDataFrame(stream, lambda: schema)
