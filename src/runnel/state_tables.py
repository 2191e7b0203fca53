"""Per-key state tables: the partition ops of updateStateByKey and mapWithState.

The engine side of ``runnel.dstream.state`` (the operators): picklable ops
that run in tasks, one partition of a state table at a time. The built-in
updaters (``runnel.updaters``) reduce a batch's new values to one partial per
key in the shuffle (``PartialBuckets``, ``PartialReduce``) and merge it into
the table (``MergeBuiltin``) — by direct addressing for int64 keys in a small
range (``kernels.state.sorted_reduce`` / ``merge_dense``: the table stays
sorted by key, no hash table over the state each batch; see "int64 keys in a
small range" below), by hash otherwise (``kernels.state.merge_state``); any
other function runs on the Python path, once per key (``UpdateByKey``).
``MapWithStateOp`` is mapWithState's per-record update; ``FlagBad``,
``DropBad`` and ``TakeBad`` carry bad records (``on_bad_record``).
"""

from __future__ import annotations

import numbers
import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import keyed
from .batch import Batch, column_take, column_to_list, concat_batches, concat_columns, infer_column, object_array
from .functions import Reducer
from .updaters import State, Updater

# --- helpers -------------------------------------------------------------------------------

def _pairs(batch: Batch) -> tuple[list, list]:
    """(keys, values) as Python lists; the keys ready to be dict keys (``keyed.key_list``: NaNs are one key)."""
    if len(batch) == 0:
        return [], []
    return keyed.key_list(keyed.key_column(batch)), column_to_list(keyed.value_column(batch))


def _table(keys: list, values: list, extra: dict | None = None) -> Batch:
    if not keys:
        return keyed.empty_pairs()
    cols = {"key": infer_column(keys), "value": infer_column(values)}
    cols.update(extra or {})
    return Batch(cols, ("key", "value"))


# --- bad records (on_bad_record="dead_letter") -----------------------------------------------
#
# A bad record travels as a row of its batch flagged by a bool column ``_bad``, its error (a
# string) in ``_error``: ``FlagBad`` flags the records a built-in updater cannot take before
# the shuffle, ``UpdateByKey`` flags the values of a key whose function raised; ``DropBad``
# gives the records (or table) without them and ``TakeBad`` the (key, value, error) records
# of ``dead_letters()``.

def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _with_bad(table: Batch, bad: list) -> Batch:
    """``table`` followed by the ``bad`` (key, value, error) rows, flagged (no flag column when none)."""
    if not bad:
        return table
    rows = table.to_records() if len(table) else []
    keys = [k for k, _ in rows] + [k for k, _, _ in bad]
    return Batch({"key": infer_column(keys), "value": infer_column([v for _, v in rows] + [v for _, v, _ in bad]),
                  "_bad": np.arange(len(keys)) >= len(rows),
                  "_error": object_array([None] * len(rows) + [e for _, _, e in bad])}, ("key", "value"))


@dataclass(eq=False)
class FlagBad:
    """Flag the records a built-in updater cannot take (before the shuffle).

    A NumPy number column is taken whole, at no cost. Otherwise a value that
    is not a number (None, a string ...: a sum, min, max or mean over the
    numbers of a key is what the kernels keep) is bad, and so is one that
    raises when folded, in arrival order, into its key's accumulator of the
    partition as the updater's Python function does (``Updater.__call__``).
    """
    kind: str

    def __call__(self, index: int, batch: Batch) -> Batch:
        if len(batch) == 0 or self.kind in ("count", "last"):  # these take any value
            return batch
        values = keyed.value_column(batch)
        if isinstance(values, np.ndarray) and values.dtype.kind in "iufb":
            return batch
        fold = Updater(self.kind)
        acc: dict = {}
        bad = []
        keys, vals = _pairs(batch)
        for k, v in zip(keys, vals):
            if not isinstance(v, numbers.Number):
                bad.append(f"TypeError: {fold!r} takes numbers, not {type(v).__name__}")
                continue
            try:
                acc[k] = fold([v], acc.get(k))
                bad.append(None)
            except Exception as e:  # noqa: BLE001  (the record is bad: dead-lettered with its error)
                bad.append(_describe(e))
        flags = np.array([e is not None for e in bad], dtype=bool)
        if not flags.any():
            return batch
        return Batch({"key": keyed.key_column(batch), "value": values, "_bad": flags, "_error": object_array(bad)},
                     ("key", "value"))


@dataclass(eq=False)
class DropBad:
    """The records (or state rows) that are not flagged bad, with their columns inferred anew."""

    def __call__(self, index: int, batch: Batch) -> Batch:
        if len(batch) == 0 or "_bad" not in batch.columns:
            return batch
        good = batch.filter(~np.asarray(batch.columns["_bad"]))
        if len(good) == 0:
            return keyed.empty_pairs()
        # without the bad values a column of numbers is one again (the kernels take it)
        return Batch({"key": infer_column(column_to_list(good.columns["key"])),
                      "value": infer_column(column_to_list(good.columns["value"]))}, ("key", "value"))


_DEAD = ("key", "value", "error")


@dataclass(eq=False)
class TakeBad:
    """The (key, value, error) records of the rows flagged bad."""

    def __call__(self, index: int, batch: Batch) -> Batch:
        if len(batch) == 0 or "_bad" not in batch.columns:
            return keyed.empty_pairs(_DEAD)
        b = batch.filter(np.asarray(batch.columns["_bad"]))
        return Batch({"key": infer_column(column_to_list(b.columns["key"])),
                      "value": infer_column(column_to_list(b.columns["value"])),
                      "error": infer_column(column_to_list(b.columns["_error"]))}, _DEAD)


@dataclass(eq=False)
class UpdateByKey:
    """updateStateByKey's Python path: ``fn(new values, state or None)`` per key, None drops it.

    With ``dead_letter``, a key whose call raises keeps its state, and its new
    values come out as bad rows (``FlagBad``'s columns) after the table's.
    """
    fn: Callable
    has_state: bool
    dead_letter: bool = False

    def __call__(self, index: int, batches: list[Batch]) -> Batch:
        state, new = batches if self.has_state else (Batch.empty(), batches[0])
        new_keys, groups = _pairs(new)
        fresh = dict(zip(new_keys, groups))
        keys, values, bad = [], [], []
        for k, s in zip(*_pairs(state)):
            r = self._update(k, fresh.pop(k, []), s, bad)
            if r is not None:
                keys.append(k)
                values.append(r)
        for k, vs in fresh.items():
            r = self._update(k, vs, None, bad)
            if r is not None:
                keys.append(k)
                values.append(r)
        return _with_bad(_table(keys, values), bad)

    def _update(self, key, values: list, state, bad: list):
        if not (self.dead_letter and values):  # no new record to blame: an error fails the batch
            return self.fn(values, state)
        try:
            return self.fn(values, state)
        except Exception as e:  # noqa: BLE001  (dead-lettered with its error)
            bad.extend((key, v, _describe(e)) for v in values)
            return state


def _partials(batch: Batch, kind: str) -> Batch:
    """One partial aggregate per key in first-appearance order: (key, value[, _count]) — count/mean
    carry counts (the hash path; int64 keys in a small range take ``_sorted_partials``)."""
    if len(batch) == 0:
        return batch if batch.is_pairs else keyed.empty_pairs()
    if kind in ("count", "mean"):
        keys = keyed.key_column(batch)
        ones = Batch({"key": keys, "value": np.ones(len(keys), np.int64)}, ("key", "value"))
        counts = keyed.reduce_pairs(ones, _REDUCERS["sum"])
        if kind == "count":
            return counts
        sums = keyed.reduce_pairs(batch, _REDUCERS["sum"])  # same keys, same first-appearance order
        return Batch({"key": sums.columns["key"], "value": sums.columns["value"],
                      "_count": counts.columns["value"]}, ("key", "value"))
    return keyed.reduce_pairs(batch, _REDUCERS[_MERGE[kind]])


def _merge_partials(batch: Batch, kind: str) -> Batch:
    """Partials of one key from several map tasks merged (map order = arrival order)."""
    if len(batch) == 0:
        return batch if batch.is_pairs else keyed.empty_pairs()
    out = keyed.reduce_pairs(batch, _REDUCERS[_MERGE[kind]])
    if kind == "mean":
        c = keyed.reduce_pairs(Batch({"key": keyed.key_column(batch), "value": batch.columns["_count"]},
                                     ("key", "value")), _REDUCERS["sum"])
        out = Batch({**out.columns, "_count": c.columns["value"]}, ("key", "value"))
    return out


@dataclass(eq=False)
class PartialBuckets:
    kind: str

    def __call__(self, index, batch, n):
        if len(batch):
            buckets = _sorted_partials(batch, self.kind, n)
            if buckets is not None:
                return buckets if n > 1 else [buckets]
        return keyed.partition(_partials(batch, self.kind), n)


@dataclass(eq=False)
class PartialReduce:
    """The partials of one reduce partition: one row per key, or, for int64 keys and values
    the direct-addressed merge takes, the map tasks' partials one after the other (MergeBuiltin
    folds them in map order together with the table)."""
    kind: str

    def __call__(self, index, groups):
        parts = [b for b in groups[0] if len(b)]
        if len(parts) == 1:
            return parts[0]
        mean, dtype = self.kind == "mean", parts[0].columns.get("value") if parts else None
        if parts and all(_dense_ready(b, "value", mean, getattr(dtype, "dtype", None)) for b in parts):
            both = concat_batches(parts)
            if _dense_keys(both):
                return both
            return _merge_partials(both, self.kind)
        return _merge_partials(concat_batches(parts), self.kind)


# --- int64 keys in a small range: tables merged by direct addressing, kept sorted ------------
#
# Built-in updaters over int64 keys whose range is not much larger than their number (ids,
# counters: W4's 1M keys in [0, 1M)) never build a hash table over the state: each map task
# folds its rows into partials by direct addressing (``kernels.state.sorted_reduce``, sorted
# by key; the shuffle keeps each bucket's order) or, when keys barely repeat, only groups
# them by key range (``kernels.state.split_rows``), and the reduce side merges the map tasks'
# rows, then the table, bucket by bucket of the key range (``kernels.state.merge_dense``).
# The table comes out sorted, so the next batch reads it in order. Nothing marks a table as
# sorted: an unsorted one (restored repartitioned from a checkpoint) merges the same, only
# slower once.
# Keys spread over a large range, other key or value types and int sums that could wrap take
# the hash path below; both give the same values (each key's fold in the same order).

def _is_int64(col) -> bool:
    return isinstance(col, np.ndarray) and col.dtype == np.int64


def _is_value64(col) -> bool:
    return isinstance(col, np.ndarray) and col.dtype in (np.int64, np.float64)


def _sorted_partials(batch: Batch, kind: str, parts: int = 1):
    """The map side on int64 keys in a small range (a list of ``parts`` shuffle buckets), or None.

    Keys that repeat within the batch (a range no wider than the rows) are reduced to partials
    sorted by key; keys that barely repeat go unreduced, grouped by bucket (``split_rows``):
    reducing them would save few rows for a pass of random access over the key range, while
    the merge folds the rows as cheaply as partials. Each key's values fold in arrival order
    either way.
    """
    from runnel.kernels.state import dense_range, sorted_reduce, split_rows
    keys = keyed.key_column(batch)
    if not _is_int64(keys):
        return None
    if kind == "count":
        values = np.ones(len(keys), np.int64)
    else:
        values = keyed.value_column(batch)
        if not _is_value64(values) or (_MERGE[kind] == "sum" and keyed.sum_may_overflow(values)):
            return None
    rng = dense_range([keys], len(keys))
    if rng is None:
        return None
    if rng[1] > len(keys):
        r = [(k, v, np.ones(len(k), np.int64) if kind == "mean" else None) for k, v in split_rows(keys, values, parts)]
    else:
        r = sorted_reduce(keys, values, _MERGE[kind], counts=kind == "mean", parts=parts)
        r = r if parts > 1 else [r]
    out = []
    for k, v, c in r:
        cols = {"key": k, "value": v}
        if c is not None:
            cols["_count"] = c
        out.append(Batch(cols, ("key", "value")))
    return out if parts > 1 else out[0]


def _dense_ready(b: Batch, value: str, mean: bool, dtype=None) -> bool:
    """Are ``b``'s keys int64 and its ``value`` column int64/float64 (of ``dtype``), as merge_dense takes?"""
    k, v = b.columns.get("key"), b.columns.get(value)
    if not (b.layout == ("key", "value") and _is_int64(k) and _is_value64(v)):
        return False
    if mean and not _is_int64(b.columns.get("_count")):
        return False
    return dtype is None or v.dtype == dtype


def _dense_keys(b: Batch) -> bool:
    """Are ``b``'s int64 keys in a range merge_dense addresses directly (see PartialReduce)?"""
    from runnel.kernels.state import dense_range
    return dense_range([b.columns["key"]], len(b)) is not None


def _max_abs(v: np.ndarray) -> int:
    return max(abs(int(v.max())), abs(int(v.min()))) if len(v) else 0


def _numeric(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind in "if" and a.dtype.itemsize == 8


def _merge_column(pos, old, seen, new, op, now, ttl):
    from runnel.kernels.state import merge_state
    if isinstance(old, np.ndarray) and isinstance(new, np.ndarray) and old.dtype.kind == "b":
        old = old.astype(np.int64) if op == "sum" else old
    if isinstance(new, np.ndarray) and new.dtype.kind == "b" and op == "sum":
        new = new.astype(np.int64)
    if _numeric(old) and _numeric(new) and old.dtype == new.dtype and not (
            op == "sum" and old.dtype.kind == "i" and _may_overflow(old, new)):
        return merge_state(pos, old, seen, new, op, now, ttl)
    vals, s, keep = merge_state(pos, object_array(column_to_list(old)), seen, object_array(column_to_list(new)),
                                op, now, ttl)
    return infer_column(vals.tolist()), s, keep


def _may_overflow(a: np.ndarray, b: np.ndarray) -> bool:
    big = max((abs(int(x.max())) + abs(int(x.min())) for x in (a, b) if len(x)), default=0)
    return big * 2 >= np.iinfo(np.int64).max


@dataclass(eq=False)
class MergeBuiltin:
    """A built-in updater's state table (key, value[, _sum, _count][, _seen]) merged with partials."""
    kind: str
    ttl_ms: int
    now: int
    has_state: bool

    def __call__(self, index, batches):
        state, new = batches if self.has_state else (Batch.empty(), batches[0])
        if len(state) == 0 and len(new) == 0:
            return keyed.empty_pairs()
        out = self._merge_sorted(state, new)
        if out is not None:
            return out
        if len(new) and _is_int64(new.columns.get("key")) and _dense_keys(new):
            new = _merge_partials(new, self.kind)  # PartialReduce may have left one row per map task
        m = len(state)
        skeys = keyed.key_column(state) if m else new.columns["key"][:0]
        nkeys = keyed.key_column(new) if len(new) else skeys[:0]
        allkeys = concat_columns([skeys, nkeys]) if m and len(nkeys) else (skeys if m else nkeys)
        codes, _ = keyed.factorize(allkeys)
        from runnel.kernels.state import match_positions
        pos = match_positions(codes, m)
        seen = state.columns["_seen"] if "_seen" in state.columns else np.full(m, self.now, np.int64)
        nv = new.columns["value"] if len(new) else np.empty(0, np.int64)
        if self.kind == "mean":
            ssum = state.columns["_sum"] if m else np.empty(0, nv.dtype)
            scnt = state.columns["_count"] if m else np.empty(0, np.int64)
            ncnt = new.columns["_count"] if len(new) else np.empty(0, np.int64)
            sums, out_seen, keep = _merge_column(pos, ssum, seen, nv, "sum", self.now, self.ttl_ms)
            cnts, _, _ = _merge_column(pos, scnt, seen, ncnt, "sum", self.now, self.ttl_ms)
            sums, cnts = _filter(sums, keep), _filter(cnts, keep)
            if _numeric(sums) and _numeric(cnts):
                value = sums / cnts
            else:
                value = infer_column([s / c for s, c in zip(column_to_list(sums), column_to_list(cnts))])
            extra = {"_sum": sums, "_count": cnts}
        else:
            sv = state.columns["value"] if m else np.empty(0, nv.dtype)
            value, out_seen, keep = _merge_column(pos, sv, seen, nv, _MERGE[self.kind], self.now, self.ttl_ms)
            value = _filter(value, keep)
            extra = {}
        keys = column_take(allkeys, np.concatenate([np.arange(m), m + np.flatnonzero(pos < 0)])
                                 .astype(np.int64)[keep])
        if self.ttl_ms:
            extra["_seen"] = out_seen[keep]
        if len(keys) == 0:
            return keyed.empty_pairs()
        return Batch({"key": keys, "value": value, **extra}, ("key", "value"))

    def _merge_sorted(self, state: Batch, new: Batch) -> Batch | None:
        """The table merged by direct addressing (see above), or None where that path does not apply."""
        from runnel.kernels.state import merge_dense
        mean = self.kind == "mean"
        vcol = "_sum" if mean else "value"
        have = [(b, name) for b, name in ((state, vcol), (new, "value")) if len(b)]
        dtype = have[0][0].columns.get(have[0][1])
        if not all(_dense_ready(b, name, mean, getattr(dtype, "dtype", None)) for b, name in have):
            return None
        dtype = dtype.dtype
        op = _MERGE[self.kind]
        if op == "sum" and dtype.kind == "i" and (
                (_max_abs(state.columns[vcol]) if len(state) else 0) +
                (_max_abs(new.columns["value"]) * len(new) if len(new) else 0) >= np.iinfo(np.int64).max):
            return None  # int64 could wrap (new may hold several partials of a key): Python ints
        empty = (np.empty(0, np.int64), np.empty(0, dtype), np.empty(0, np.int64) if mean else None)
        sk, sv, sc = (state.columns["key"], state.columns[vcol], state.columns.get("_count") if mean else None) \
            if len(state) else empty
        nk, nv, nc = (new.columns["key"], new.columns["value"], new.columns.get("_count") if mean else None) \
            if len(new) else empty
        seen = state.columns.get("_seen") if len(state) else None
        if seen is not None and not _is_int64(seen):
            return None
        r = merge_dense((sk, sv, sc, seen), (nk, nv, nc), op, self.now, self.ttl_ms, seen=bool(self.ttl_ms))
        if r is None:
            return None
        keys, vals, cnts, out_seen = r
        if len(keys) == 0:
            return keyed.empty_pairs()
        cols = {"key": keys, "value": vals / cnts if mean else vals}
        if mean:
            cols["_sum"], cols["_count"] = vals, cnts
        if self.ttl_ms:
            cols["_seen"] = out_seen
        return Batch(cols, ("key", "value"))


def _filter(col, keep: np.ndarray):
    return column_take(col, np.flatnonzero(keep))


@dataclass(eq=False)
class PrepareInitial:
    """Give an initial (key, state) table the columns of a state table."""
    kind: str | None
    seen: int
    with_seen: bool

    def __call__(self, index, batch):
        if len(batch) == 0:
            return keyed.empty_pairs()
        keys, values = keyed.key_column(batch), keyed.value_column(batch)
        cols = {"key": keys, "value": values}
        if self.kind == "mean":  # an initial mean counts as one value
            cols["_sum"] = values
            cols["_count"] = np.ones(len(keys), np.int64)
        if self.with_seen:
            cols["_seen"] = np.full(len(keys), self.seen, np.int64)
        return Batch(cols, ("key", "value"))


@dataclass(eq=False)
class MapWithStateOp:
    """mapWithState per partition: ``fn(key, value, state)`` per record, then timeouts.

    Output: the new state rows (key, value, _seen), then the mapped records
    (key None, value = what fn returned), told apart by the bool ``_m``.
    """
    fn: Callable
    timeout_ms: int
    now: int
    has_state: bool

    def __call__(self, index, batches):
        state, new = batches if self.has_state else (Batch.empty(), batches[0])
        if len(state) and "_m" in state.columns:
            state = state.filter(~np.asarray(state.columns["_m"]))
        skeys, svals = _pairs(state)
        sseen = state.columns["_seen"].tolist() if len(state) else []
        rows = {k: i for i, k in enumerate(skeys)}
        handles: dict = {}
        out: list = []
        f = self.fn
        for k, v in zip(*_pairs(new)):
            st = handles.get(k)
            if st is None:
                i = rows.get(k)
                st = handles[k] = State(True, svals[i]) if i is not None else State()
            out.append(f(k, v, st))
        keys, vals, seen = [], [], []
        for k, s, t in zip(skeys, svals, sseen):
            st = handles.pop(k, None)
            if st is None:
                if self.timeout_ms and self.now - t >= self.timeout_ms:
                    out.append(f(k, None, State(True, s, timing_out=True)))
                    continue
                keys.append(k), vals.append(s), seen.append(t)
            elif st.exists():
                keys.append(k), vals.append(st._value), seen.append(self.now)
        for k, st in handles.items():
            if st.exists():
                keys.append(k), vals.append(st._value), seen.append(self.now)
        n = len(keys)
        allk = keys + [None] * len(out)
        if not allk:
            return Batch.empty()
        return Batch({"key": object_array(allk), "value": object_array(vals + out),
                      "_seen": np.array(seen + [0] * len(out), np.int64),
                      "_m": np.arange(len(allk)) >= n}, ("key", "value"))


@dataclass(eq=False)
class StateRows:
    """The (key, state) pairs of a mapWithState output batch, as tidy columns."""
    def __call__(self, index, batch):
        if len(batch) == 0:
            return keyed.empty_pairs()
        if "_m" not in batch.columns:
            return batch
        b = batch.filter(~np.asarray(batch.columns["_m"]))
        if len(b) == 0:
            return keyed.empty_pairs()
        return Batch({"key": infer_column(column_to_list(b.columns["key"])),
                      "value": infer_column(column_to_list(b.columns["value"])),
                      "_seen": b.columns["_seen"]}, ("key", "value"))


@dataclass(eq=False)
class MappedRows:
    def __call__(self, index, batch):
        if len(batch) == 0 or "_m" not in batch.columns:
            return Batch.empty()
        vals = column_to_list(batch.columns["value"][np.asarray(batch.columns["_m"])])
        return Batch({"value": infer_column(vals)}, "value") if vals else Batch.empty()


@dataclass(eq=False)
class KeyValueOnly:
    def __call__(self, index, batch):
        if len(batch) == 0:
            return batch if batch.is_pairs else keyed.empty_pairs()
        return batch.sub(("key", "value"))


_REDUCERS = {"sum": Reducer(operator.add, op="sum"), "min": Reducer(min, op="min"),
             "max": Reducer(max, op="max"), "last": Reducer(lambda a, b: b, op="last")}
_MERGE = {"sum": "sum", "count": "sum", "mean": "sum", "min": "min", "max": "max", "last": "last"}
