"""Cumulative and rolling operations per key, carried across batch boundaries.

``sdf.groupby("k")["v"].cumsum()`` (and ``cummax``, ``cummin``, ``cumcount``,
``shift(p)``, ``diff(p)``, ``rolling(n).sum()`` / ``.mean()``) give every row
the value pandas would give it on all the data so far: each key's rows go
through the same shuffle as an aggregation (rows of a key keep their
arrival order), and a per-key *carry* table — a
:class:`~runnel.dstream.stateful.StatefulDStream`'s, checkpointed and
resumed by name — holds what the next batch continues from:

===============  ==============================================
cumsum           the sum so far (NaN rows skipped, as pandas)
cumcount         the rows so far
cummax / cummin  the extreme so far
shift / diff     the last ``p`` values
rolling(n)       the last ``n - 1`` values
ewm              the recursion's variables (``kernels.ewm``)
===============  ==============================================

The carry keeps a row per key for good, unless the GroupBy has a ``ttl``
(``groupby(k).running(ttl=60)``, as a running aggregate's): then it also
keeps each key's last batch time (``_seen``) and a key without rows for
``ttl`` seconds leaves it (in the batch it would leave in, a row of the key
keeps it); the key's next row starts afresh.

Per batch and partition the work is vectorised over rows (running and
rolling sums per key from ``kernels.running``, segment positions from
``kernels.group_segments``);
carried values are prepended to their key's rows as pseudo-rows. cummax and
cummin accumulate per key segment (a NumPy call per key of the batch).
Rows come out grouped by the partition their key hashes to, in arrival order
within each key. ``ewm`` (``ewm.py``) carries the state of pandas' recursion
per key, continued by a Numba kernel (``kernels.ewm``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from runnel import kernels as K

from ..batch import Batch, column_take, concat_columns, object_array
from ..dataset import Dataset
from ..dstream.base import DStream
from ..dstream.stateful import StatefulDStream
from ..listener import ms_to_datetime
from .aggregate import group_codes
from .ewm import ewm_rows
from .schema import empty_column, frame_batch

__all__ = ["Cumulative", "CarryDStream"]

_TAIL = {"shift", "diff", "rolling_sum", "rolling_mean"}


@dataclass(frozen=True)
class Cumulative:
    """What to compute: ``kind`` of ``column`` per key, ``n`` periods / window rows, into ``out``;
    ``params`` of an ewm: (com, adjust, ignore_na, min_periods, bias)."""
    kind: str
    column: str
    n: int
    out: str
    params: tuple = ()

    @property
    def tail(self) -> int:
        """How many last values per key the carry keeps."""
        if self.kind in ("shift", "diff"):
            return self.n
        if self.kind.startswith("rolling"):
            return self.n - 1
        return 0


def _carry_layout(keys: tuple, ttl: bool = False) -> tuple:
    return (keys[0] if len(keys) == 1 else tuple(keys), ("_carry", "_seen") if ttl else ("_carry",))


def empty_carry(keys: tuple, dtypes: dict, ttl: bool = False) -> Batch:
    """The carry table with no key; with ``ttl``, a ``_seen`` column (batch ms of the key's last row)."""
    cols = {k: empty_column(dtypes[k]) for k in keys}
    cols["_carry"] = np.empty(0, dtype=object)
    if ttl:
        cols["_seen"] = np.empty(0, dtype=np.int64)
    return Batch(cols, _carry_layout(keys, ttl))


def fresh(carry: Batch, now: int, ttl_ms: int) -> Batch:
    """The carry without its keys idle for ``ttl_ms`` (no row since ``now - ttl_ms``; 0: all stay)."""
    if not ttl_ms or len(carry) == 0:
        return carry
    keep = now - np.asarray(carry.columns["_seen"], np.int64) < ttl_ms
    return carry if keep.all() else carry.filter(keep)


def _codes(carry: Batch | None, rows: Batch, keys: tuple):
    """Group codes of the carry's keys and the rows' keys (carry keys first, each once)."""
    m = 0 if carry is None else len(carry)
    cols = [rows.columns[k] if carry is None else concat_columns([carry.columns[k], rows.columns[k]]) for k in keys]
    codes, first = group_codes(cols)
    return codes[:m], codes[m:], len(first), cols, first


def _values(rows: Batch, column: str) -> np.ndarray:
    x = rows.columns[column]
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iufb":
        raise TypeError(f"cumulative operations need a numeric column, {column!r} is not")
    return x


def apply(carry: Batch | None, rows: Batch, keys: tuple, spec: Cumulative, now: int = 0,
          ttl_ms: int = 0) -> tuple[Batch, Batch]:
    """(rows with the ``out`` column, the new carry table) for one partition; with ``ttl_ms``, the carry
    keeps each key's last batch time (``_seen``) and leaves out keys idle that long (as a running
    groupby's ``ttl``: a key back in the batch it would leave in stays)."""
    ccodes, rcodes, g, kcols, first = _codes(carry, rows, keys)
    x = _values(rows, spec.column)
    carried = [] if carry is None else carry.columns["_carry"].tolist()
    old = [None] * g
    for c, v in zip(ccodes.tolist(), carried):
        old[c] = v
    if spec.kind.startswith("ewm_"):
        result, new = ewm_rows(x, rcodes, g, ccodes, carried, spec.kind, spec.params)
    elif spec.kind in _TAIL:
        result, new = _with_tail(x, rcodes, g, old, spec)
    else:
        result, new = _running(x, rcodes, g, old, spec)
    out_rows = frame_batch({**rows.columns, spec.out: result})
    keep = np.array([v is not None for v in new], dtype=bool)
    if ttl_ms:
        seen = np.full(g, now, dtype=np.int64)
        seen[ccodes] = carry.columns["_seen"] if carry is not None else seen[ccodes]
        seen[rcodes] = now
        keep &= now - seen < ttl_ms
    idx = np.flatnonzero(keep)
    cols = {k: column_take(c, first[idx]) for k, c in zip(keys, kcols)}
    cols["_carry"] = object_array([new[i] for i in idx.tolist()])
    if ttl_ms:
        cols["_seen"] = seen[idx]
    return out_rows, Batch(cols, _carry_layout(keys, bool(ttl_ms)))


def segments(codes: np.ndarray, g: int):
    """Rows ordered by group (arrival order within one): (order, bounds, group and position in its group
    of each ordered row)."""
    order, bounds = K.group_segments(codes, g)
    sizes = np.diff(bounds)
    seg_code = np.repeat(np.arange(g, dtype=np.int64), sizes)           # group of each sorted row
    pos = np.arange(len(codes), dtype=np.int64) - np.repeat(bounds[:-1], sizes)   # position in its group
    return order, bounds, seg_code, pos


def _running(x: np.ndarray, codes: np.ndarray, g: int, old: list, spec: Cumulative):
    order, bounds, seg, pos = segments(codes, g)
    xs = x[order]
    kind = spec.kind
    new = list(old)
    if kind == "cumcount":
        base = np.array([0 if v is None else v for v in old], dtype=np.int64)
        rs = pos + base[seg]
        for c in np.unique(seg).tolist():
            new[c] = int(base[c] + bounds[c + 1] - bounds[c])
    elif kind == "cumsum":
        isf = xs.dtype.kind == "f"
        if isf:     # one running sum per key: a sum over all keys' rows would let one key's magnitude
            #         swallow another's (kernels.running)
            base = np.array([0.0 if v is None else v for v in old], dtype=np.float64)
            rs, totals = K.group_cumsum(seg, xs, base)
            for c in np.unique(seg).tolist():
                new[c] = totals[c].item()
            rs = np.where(np.isnan(xs), np.nan, rs)
        else:       # integers: the offsets cancel exactly (wrapping as pandas' int64 sums do)
            cs = np.cumsum(xs.astype(np.int64))
            start = np.concatenate([[0], cs])[bounds[:-1]]             # sum before each group's first row
            base = np.array([0 if v is None else v for v in old], dtype=np.int64)
            rs = cs - start[seg] + base[seg]
            ends = bounds[1:] - 1
            for c in np.unique(seg).tolist():
                new[c] = rs[ends[c]].item()
    else:  # cummax, cummin: a NumPy accumulate per key segment
        f = np.fmax if kind == "cummax" else np.fmin
        rs = np.empty(len(xs), dtype=np.float64 if xs.dtype.kind == "f" or any(v is not None and v != v for v in old)
                      else xs.dtype)
        for c in np.unique(seg).tolist():
            a, b = bounds[c], bounds[c + 1]
            seg_vals = xs[a:b]
            if old[c] is not None:
                seg_vals = np.concatenate([[old[c]], seg_vals]).astype(rs.dtype)
                acc = f.accumulate(seg_vals)[1:]
            else:
                acc = f.accumulate(seg_vals)
            if xs.dtype.kind == "f":
                acc = np.where(np.isnan(xs[a:b]), np.nan, acc)
                valid = acc[~np.isnan(acc)]
                new[c] = valid[-1].item() if len(valid) else old[c]
            else:
                new[c] = acc[-1].item()
            rs[a:b] = acc
    result = np.empty_like(rs)
    result[order] = rs
    return result, new


def _with_tail(x: np.ndarray, codes: np.ndarray, g: int, old: list, spec: Cumulative):
    """shift/diff/rolling over each key's carried tail followed by its new rows."""
    tails = [() if v is None else v for v in old]
    tail_codes = np.fromiter(itertools.chain.from_iterable([c] * len(t) for c, t in enumerate(tails)),
                             dtype=np.int64)
    tail_vals = np.fromiter(itertools.chain.from_iterable(tails), dtype=np.float64, count=len(tail_codes))
    n_tail = len(tail_codes)
    ext_codes = np.concatenate([tail_codes, codes])
    ext = np.concatenate([tail_vals, x.astype(np.float64)])
    order, bounds, seg, pos = segments(ext_codes, g)            # tails first within each key (arrival order)
    xs = ext[order]
    p = spec.n
    if spec.kind in ("shift", "diff"):
        prev = np.full(len(xs), np.nan)
        ok = pos >= p
        prev[ok] = xs[np.flatnonzero(ok) - p]
        rs = prev if spec.kind == "shift" else xs - prev
    else:       # pandas' roll_sum within each key's rows (kernels.running): no key's values reach another's
        s, valid = K.segment_rolling_sum(xs, bounds, p)
        full = pos >= p - 1
        rs = np.where(full & (valid == p), s if spec.kind == "rolling_sum" else s / p, np.nan)
    back = np.empty_like(rs)
    back[order] = rs
    result = back[n_tail:]
    m = spec.tail
    new = list(old)
    ends = bounds[1:]
    for c in np.unique(seg[pos >= 0]).tolist():
        a, b = bounds[c], ends[c]
        new[c] = tuple(xs[max(a, b - m):b].tolist()) if m else ()
    return result, new


# --- partition ops and the carry stream --------------------------------------------------------------

@dataclass(eq=False)
class ApplyCarry:
    """Rows of partition i with the cumulative column (``carry=False``) or the new carry table (True)."""
    keys: tuple
    spec: Cumulative
    empty_rows: Batch
    empty_carry: Batch
    has_carry: bool
    carry_out: bool
    now: int = 0              # the batch time (ms)
    ttl_ms: int = 0           # keys idle this long leave the carry (0: never)

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        carry = parts[0] if self.has_carry and len(parts[0]) and "_carry" in parts[0].columns else None
        rows = parts[-1] if len(parts) > int(self.has_carry) else Batch.empty()
        if len(rows) == 0 or self.spec.column not in rows.columns:
            if not self.carry_out:
                return self.empty_rows
            return fresh(carry, self.now, self.ttl_ms) if carry is not None else self.empty_carry
        out, new = apply(carry, rows, self.keys, self.spec, self.now, self.ttl_ms)
        return new if self.carry_out else out


class CarryDStream(StatefulDStream):
    """The per-key carry table after each batch (see the module docstring)."""

    kind = "groupby_cumulative"

    def __init__(self, rows: DStream, keys: tuple, spec: Cumulative, empty_rows: Batch, empty_carry: Batch, n: int,
                 ttl_ms: int = 0):
        super().__init__(rows.ssc, [rows])
        self.keys, self.spec, self.empty_rows, self.empty_carry, self.n = keys, spec, empty_rows, empty_carry, n
        self.ttl_ms = ttl_ms
        self.must_cache = True

    def op(self, t: int, carry_out: bool, has_carry: bool) -> ApplyCarry:
        return ApplyCarry(self.keys, self.spec, self.empty_rows, self.empty_carry, has_carry, carry_out, t,
                          self.ttl_ms)

    def combine(self, t: int, rows: Dataset, carry_out: bool) -> Dataset:
        if not carry_out:
            # the carry at t has no output of its own: defining it here lets the scheduler compute
            # it after the batch (StatefulDStream.settle), so the next batch continues from it
            self.get_or_compute(t)
        prev = self.before(t)
        if prev is None:
            return rows.zip_partitions([], self.op(t, carry_out, False))
        return prev.zip_partitions([rows], self.op(t, carry_out, True))

    def compute(self, t: int) -> Dataset | None:
        rows = self.parents[0].get_or_compute(t)
        if rows is None:
            prev = self.before(t)
            if prev is None or not self.ttl_ms:
                return prev
            return prev.zip_partitions([], self.op(t, True, True))     # no rows: idle keys still leave
        return self.combine(t, rows, True)

    def settle(self, t: int) -> None:
        self.settle_table(t)

    def fall_back(self, t: int) -> str:
        self.generated[t] = self.generated.get(t - self.slide_ms)
        return f"its carry stays at the batch before {ms_to_datetime(t)}"

    def signature(self) -> dict:
        s = self.spec
        return {**super().signature(), "keys": list(self.keys), "cumulative": [s.kind, s.column, s.n, *s.params],
                "ttl_ms": self.ttl_ms}
