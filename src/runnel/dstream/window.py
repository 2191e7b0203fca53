"""Windows: ``window``, ``countByWindow``, ``reduceByWindow``, ``reduceByKeyAndWindow``,
``countByValueAndWindow``, ``groupByKeyAndWindow`` — PySpark's semantics.

Two operator classes, the rest is composed from them:

* :class:`WindowedDStream` — the records of the parent's Datasets with
  times in ``(t - window, t]`` (times <= zero do not exist, so the first
  windows are partial and the last ones drain), every ``slide``.
* :class:`ReducedWindowedDStream` — a keyed reduction of the window built
  from *per-slide partial aggregates*: each parent batch is reduced by key
  once (``reduceByKey`` into ``numPartitions`` partitions by the stable key
  hash) and cached. Every window table is partitioned the same way, so old
  window, leaving and entering partials are co-partitioned and combined
  per partition with :meth:`Dataset.zip_partitions` — no shuffle.

Incremental (inverse) reduction, as PySpark's ``PythonReducedWindowedDStream``
does it, with ``W`` = window, ``S`` = slide, ``p`` = parent's slide::

      time ->   t-S-W         t-W          t-S            t
                  |            |             |            |
    old window    (=========================]              prev = window at t-S
    leaving       (============]                           partials in (t-S-W, t-W]
    entering                                 (============]  partials in (t-S, t]
    new window                 (==========================]  = fn(inv(prev, leaving), entering)

Like PySpark, the incremental path is only taken when ``W >= 5 S`` ("for a
small window, reduce once is better than twice") and a previous window
exists; otherwise the window is reduced from its partials. A key stays in an
incrementally updated window after its value dropped to the zero
(``("a", 0)``) until ``filterFunc`` removes it; ``filterFunc`` runs on every
new window, and the filtered window is what the next slide updates.

Recognised pairs run as kernels (``runnel.kernels.window``): ``add`` with
``sub`` (``operator.sub``, ``lambda a, b: a - b``, ``numpy.subtract``) on
int64/float64 values; any pair Numba compiles runs compiled; everything else
(lists, strings, mixed values) on the Python path, with the fallback warning.

Float drift and the recomputation period K
------------------------------------------
Adding and subtracting floats does not cancel exactly: after m updates a
window sum carries a rounding error up to about ``m * eps * max|partial sum|``
and it never decays (a key whose records all left shows ``1e-13`` instead of
``0.0``). So every ``K = RECOMPUTE_EVERY = 16`` slides (at times
``zero + k*K*S``) the window's values are recomputed exactly from the cached
partials in ``(t - W, t]``: keys present in the partials get the exact fold,
keys of the incremental window absent from them (their records all left)
get exactly 0 for ``sum`` (their incremental value for other pairs). The
error is then bounded by what at most K slides accumulate, never by the age
of the stream. Cost: one read of W/S partials per K slides, i.e. an
amortised W/(S K) partial reads per slide next to the 2 of the incremental
update (W3: 20/16 ≈ 1.25); K = 16 keeps that below the update itself for
windows up to 32 slides while the drift stays within ~32 roundings.
(Deviation: with a ``filterFunc`` that removes keys whose value is *not* the
zero, PySpark's incremental value of such a key is off when it re-enters;
the periodic recomputation gives it its true window value.)

Order
-----
A window reduced from its partials lists each partition's keys in order of
first appearance, as PySpark's ``reduceByKey`` over the window does. An
incremental window's order is PySpark's cogroup's, i.e. no promise; here,
with int64 keys in a small range (the kernels' dense path), its partials and
tables are kept sorted by key (``reduce_by_key_with(..., sort_keys=True)``),
so a slide is a sequential merge of three sorted tables
(``kernels.window.window_update_sorted``), and every window of the stream
(the first, partial ones too) comes out sorted by key.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

from .. import ops
from ..dataset import Dataset
from ..functions import Reducer, compile_binary, is_subtraction, warn_fallback
from ..windowing import WindowUpdate, ZipReduce, Inverse, _KeyedByOne, _PositiveValues
from .base import DStream, to_ms
from .stateful import StatefulDStream, blocks_report, drop_lineage

#: Every K-th slide the window is recomputed exactly from its partials (see the module docstring).
RECOMPUTE_EVERY = 16
#: PySpark takes the incremental path only for windows of at least this many slides.
INCREMENTAL_MIN_SLIDES = 5

# --- validation ------------------------------------------------------------------

def _durations(stream: DStream, windowDuration: Any, slideDuration: Any) -> tuple[int, int]:
    """(window ms, slide ms), checked against the parent's slide as PySpark does."""
    w = to_ms(windowDuration, "windowDuration")
    s = stream.slide_ms if slideDuration is None else to_ms(slideDuration, "slideDuration")
    base = stream.slide_ms
    if w % base:
        raise ValueError(f"windowDuration must be multiple of the parent dstream's slide (batch) duration "
                         f"({base} ms)")
    if s % base:
        raise ValueError(f"slideDuration must be multiple of the parent dstream's slide (batch) duration "
                         f"({base} ms)")
    return w, s


def _slice(parent: DStream, after: int, upto: int) -> list[Dataset]:
    """The parent's Datasets at times in (after, upto], oldest first; times <= zero do not exist."""
    zero = parent.graph.zero_ms
    step = parent.slide_ms
    t = max(after, zero)
    t = zero + ((t - zero) // step + 1) * step  # the first grid time after both
    out = []
    while t <= upto:  # oldest first: input streams (a queue) must be computed in time order
        ds = parent.get_or_compute(t)
        if ds is not None:
            out.append(ds)
        t += step
    return out


def _held(parent: DStream, after: int, upto: int) -> list[Dataset]:
    """The parent's remembered Datasets at times in (after, upto] — never computes one."""
    return [ds for t, ds in list(parent.generated.items()) if after < t <= upto and ds is not None]


# --- the window primitive ------------------------------------------------------------

class WindowedDStream(StatefulDStream):
    """The parent's records of ``(t - window, t]``, every ``slide``.

    What it keeps is the parent's cached Datasets of the window: it reports
    their records and bytes (``state_report``).
    """

    kind = "window"
    kept = "window"

    def __init__(self, parent: DStream, window_ms: int, slide_ms: int):
        self.window_ms, self._slide = window_ms, slide_ms
        super().__init__(parent.ssc, [parent])
        parent.cache()  # every batch is read by window_ms / slide_ms windows

    @property
    def slide_ms(self) -> int:
        return self._slide

    def parent_remember_ms(self) -> int:
        return self.remember_ms + self.window_ms

    def compute(self, t: int) -> Dataset | None:
        dss = _slice(self.parents[0], t - self.window_ms, t)
        if not dss:
            return self.ssc.context.empty_dataset(f"{self.name} (no data)")
        out = dss[0]
        for d in dss[1:]:
            out = out.union(d)
        return out

    # -- observing (StatefulDStream: restart warning) --------------------------------------
    def state_report(self, t: int) -> dict | None:
        """{"keys": records, "bytes": b} of the parent's cached batches in the window at t."""
        if t not in self.generated:
            return None
        return blocks_report(_held(self.parents[0], t - self.window_ms, t))

    # -- checkpoints: the parent's batches of the window -----------------------------------
    def checkpoint_tables(self, t: int) -> dict:
        return _parent_tables(self.parents[0], t - self.window_ms, t)

    def restore_tables(self, tables: dict) -> None:
        _restore_parent(self.parents[0], tables, lambda ds: ds)

    def signature(self) -> dict:
        return {**super().signature(), "window_ms": self.window_ms}


def _parent_tables(parent: DStream, after: int, upto: int) -> dict:
    """The parent's remembered Datasets of (after, upto], labelled by time, for a checkpoint."""
    return {f"batch@{t}": (t, ds) for t, ds in sorted(parent.generated.items())
            if after < t <= upto and ds is not None}


def _restore_parent(parent: DStream, tables: dict, fit: Callable[[Dataset], Dataset]) -> None:
    for label, (t, ds) in tables.items():
        if label.startswith("batch@"):
            parent.generated[t] = fit(ds)


# --- keyed reduction of windows -----------------------------------------------------------

def _inverse_of(stream: DStream, inv: Callable, reducer: Reducer) -> Inverse:
    if reducer.op == "sum" and is_subtraction(inv):
        return Inverse(stream.ship_function(inv), op="sum")
    jitted = compile_binary(inv)
    if jitted is not None:
        return Inverse(stream.ship_function(inv), jitted=stream.ship_function(jitted))
    warn_fallback(inv, "Numba cannot compile it")
    return Inverse(stream.ship_function(inv))


def _incremental(inverse: Inverse | None, window_ms: int, slide_ms: int) -> bool:
    """Does a window update with the inverse (PySpark: only windows of INCREMENTAL_MIN_SLIDES slides or more)?"""
    return inverse is not None and window_ms >= INCREMENTAL_MIN_SLIDES * slide_ms


class ReducedWindowedDStream(StatefulDStream):
    """A keyed window reduction over cached per-slide partials (see the module docstring).

    What it keeps: the window table (the next slide updates it) and the
    partials of ``(t - window, t]`` (``state_report``: the table's keys, the
    bytes of both).

    A subclass with other partial tables (``runnel.frame.window``) overrides
    :meth:`merge_op` and :meth:`update_op`, the partition ops that build a
    window from its partials and from the last window, and passes an
    :class:`~runnel.windowing.Inverse` when its windows are incremental.
    """

    kind = "reduce_by_key_and_window"
    kept = "window"

    def __init__(self, partials: DStream, reducer: Reducer, inverse: Inverse | None, window_ms: int, slide_ms: int,
                 num_partitions: int, filter_fn: Callable | None):
        self.window_ms, self._slide = window_ms, slide_ms
        super().__init__(partials.ssc, [partials])
        self.reducer, self.inverse, self.n = reducer, inverse, num_partitions
        self.filter_fn = filter_fn
        partials.cache()
        self.must_cache = True  # the next slide updates this window
        if inverse is not None and inverse.op == "sum":
            from runnel.kernels import window as KW
            KW.warm()  # in the driver: workers only read Numba's cache

    @property
    def slide_ms(self) -> int:
        return self._slide

    def parent_remember_ms(self) -> int:
        return self.remember_ms + self.window_ms

    @property
    def incremental(self) -> bool:
        return _incremental(self.inverse, self.window_ms, self._slide)

    def compute(self, t: int) -> Dataset | None:
        parent, W, S = self.parents[0], self.window_ms, self._slide
        zero = self.graph.zero_ms
        prev = self.get_or_compute(t - S) if self.incremental and t - S > zero else None
        if prev is None:
            parts = _slice(parent, t - W, t)
            if not parts:
                return None
            out = parts[0].zip_partitions(parts[1:], self.merge_op())
        else:
            leaving = _slice(parent, t - S - W, t - W)
            entering = _slice(parent, t - S, t)
            exact = _slice(parent, t - W, t) if ((t - zero) // S) % RECOMPUTE_EVERY == 0 else []
            out = prev.zip_partitions(leaving + entering + exact, self.update_op(len(leaving), len(entering)))
        if self.filter_fn is not None:
            out = out.filter(self.filter_fn)
        return out

    # the two zip programs: a subclass reducing other tables (runnel.frame's windows) swaps these only
    def merge_op(self):
        """Partition i of the window reduced from its per-slide partials."""
        return ZipReduce(self.reducer, self.incremental)

    def update_op(self, n_leaving: int, n_entering: int):
        """Partition i of ``old window - leaving + entering`` (or of the exact partials after them)."""
        return WindowUpdate(self.reducer, self.inverse, n_leaving, n_entering)

    # -- a failed batch (StatefulDStream.settle): an incremental window starts afresh ---------
    def settle(self, t: int) -> None:
        if self.incremental:  # only an incremental window builds on the previous one
            self.settle_table(t)

    def fall_back(self, t: int) -> str:
        self.generated[t] = None  # the next window is reduced from its partials
        return "the next window is reduced from its partials (it fails while they hold the bad batch)"

    # -- memory and observing (StatefulDStream) -------------------------------------------
    def forget_before(self, t: int) -> None:
        super().forget_before(t)  # the window tables: lineage dropped (previous window, leaving partials)
        # the partials are this window's own stream: once computed they are their blocks, like the tables
        drop_lineage(self.parents[0].generated.values())

    def state_report(self, t: int) -> dict | None:
        """{"keys": keys of the window table at t, "bytes": b of that table and the window's partials}."""
        if t not in self.generated:
            return None
        return blocks_report([self.generated[t]], _held(self.parents[0], t - self.window_ms, t))

    # -- checkpoints: the window table (the next slide updates it) and the partials ---------
    def checkpoint_tables(self, t: int) -> dict:
        out = _parent_tables(self.parents[0], t - self.window_ms, t)
        if self.incremental and self.generated.get(t) is not None:
            out["window"] = (t, self.generated[t])
        return out

    def restore_tables(self, tables: dict) -> None:
        _restore_parent(self.parents[0], tables, self._fit)
        if "window" in tables:
            t, ds = tables["window"]
            self.generated[t] = self._fit(ds)

    def signature(self) -> dict:
        return {**super().signature(), "window_ms": self.window_ms, "reducer": self.reducer.op,
                "inverse": None if self.inverse is None else (self.inverse.op or "function")}


# --- the operations ------------------------------------------------------------------

def window(stream: DStream, windowDuration: float, slideDuration: float | None = None) -> DStream:
    """All records of ``(t - windowDuration, t]``, every ``slideDuration`` (default: the stream's slide)."""
    w, s = _durations(stream, windowDuration, slideDuration)
    return WindowedDStream(stream, w, s)


def reduce_by_key_and_window(stream: DStream, func: Callable, invFunc: Callable | None, windowDuration: float,
                             slideDuration: float | None, numPartitions: int | None,
                             filterFunc: Callable | None) -> DStream:
    """reduceByKey over a sliding window, incrementally with ``invFunc`` (see the module docstring)."""
    w, s = _durations(stream, windowDuration, slideDuration)
    n = stream.resolve_partitions(numPartitions)
    reducer = Reducer.of(func, stream.ship_function)
    inverse = _inverse_of(stream, invFunc, reducer) if invFunc is not None else None
    # an incremental window's partials are its own tables: sorted by key, merged by the update (see "Order")
    sort_keys = _incremental(inverse, w, s)
    partials = stream.derive("reduce_by_key", lambda ds: ds.reduce_by_key_with(reducer, n, sort_keys=sort_keys))
    f = stream.ship_function(filterFunc) if filterFunc is not None else None
    return ReducedWindowedDStream(partials, reducer, inverse, w, s, n, f)


def reduce_by_window(stream: DStream, reduceFunc: Callable, invReduceFunc: Callable | None, windowDuration: float,
                     slideDuration: float) -> DStream:
    """One record per window: its records reduced (PySpark: keyed by 1 in one partition)."""
    _durations(stream, windowDuration, slideDuration)
    keyed_ = stream.derive("map", lambda ds: ds.narrow(_KeyedByOne()))
    red = reduce_by_key_and_window(keyed_, reduceFunc, invReduceFunc, windowDuration, slideDuration, 1, None)
    return red.derive("map", lambda ds: ds.narrow(ops.Select(1)))


def count_by_window(stream: DStream, windowDuration: float, slideDuration: float) -> DStream:
    """The number of records of each window (``map(lambda x: 1).reduceByWindow(add, sub, ...)``)."""
    _durations(stream, windowDuration, slideDuration)
    ones = stream.derive("map", lambda ds: ds.narrow(_KeyedByOne(count=True)))
    red = reduce_by_key_and_window(ones, operator.add, operator.sub, windowDuration, slideDuration, 1, None)
    return red.derive("map", lambda ds: ds.narrow(ops.Select(1)))


def count_by_value_and_window(stream: DStream, windowDuration: float, slideDuration: float,
                              numPartitions: int | None) -> DStream:
    """(value, count) per window; counts <= 0 are dropped."""
    _durations(stream, windowDuration, slideDuration)
    pairs = stream.derive("map", lambda ds: ds.narrow(ops.PairWithConstant(1)))
    counted = reduce_by_key_and_window(pairs, operator.add, operator.sub, windowDuration, slideDuration,
                                       numPartitions, None)
    return counted.derive("filter", lambda ds: ds.narrow(_PositiveValues()))


def group_by_key_and_window(stream: DStream, windowDuration: float, slideDuration: float,
                            numPartitions: int | None) -> DStream:
    """(key, values of the window in time order).

    Deviation: PySpark's incremental list version keeps ``(k, [])`` for keys
    whose values all left a window of >= 5 slides; here such keys are gone.
    """
    w, s = _durations(stream, windowDuration, slideDuration)
    n = stream.resolve_partitions(numPartitions)
    return WindowedDStream(stream, w, s).derive("group_by_key", lambda ds: ds.group_by_key(n))
