"""``sdf.groupby(keys).agg(...)``: per batch, running across batches, or over a window of batches.

All three compile onto the engine's keyed machinery with the partial tables
of ``aggregate.py``:

* **per batch** — each map task reduces its partition to partials, the
  shuffle hashes them by key into ``num_partitions``, each reduce task merges
  and finalises (:class:`PartialBuckets`, :class:`MergePartials`);
* **running** (``.running()``) — the per-batch partials (not finalised) are
  merged into a keyed state table, partition by partition with
  ``zip_partitions`` (no shuffle of the state), as ``update_state_by_key``
  does; the table is a :class:`~runnel.dstream.stateful.StatefulDStream`'s:
  checkpointed with the context, restored by the stream's name
  (``.running(name=...)``), a failed batch leaves it at the last good batch,
  and keys idle for ``ttl`` seconds leave it. One sum/count/size (or an
  int column's mean/min/max) of one key runs on the engine's built-in
  updaters instead (``update_state_by_key(updaters.running_*)``), whose
  tables merge int64 keys by direct addressing; so do the tables of
  count/size/sum/mean over one int64 key in a small range
  (``aggregate.merge_key_range``);
* **windowed** (``.window(length, slide)``) — the engine's keyed window
  machinery (``window.WindowAggDStream``, a ``ReducedWindowedDStream``) over
  the cached per-batch partials: incremental (old window ⊖ leaving ⊕
  entering) when every aggregate is invertible (count, size, sum, mean,
  var, std) and the window spans at least 5 slides, else merged from the
  per-slide partials.

Output modes (Structured Streaming's): ``"complete"`` — every key each batch;
``"update"`` — only keys whose aggregate changed in the batch (running);
``"append"`` — rows that never change: windows that do not overlap
(``length == slide``), each emitted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..batch import Batch, concat_batches, concat_columns
from ..dataset import Dataset
from ..dstream.base import DStream, to_ms
from ..dstream.stateful import StatefulDStream
from ..listener import ms_to_datetime
from ..plan import ShuffleDep
from .aggregate import (AggSpec, check_specs, empty_partials, finalize, group_codes, merge, merge_key_range,
                        partial_buckets, partition_partials, result_schema_batch)
from .schema import Schema, frame_batch

if TYPE_CHECKING:
    from .ewm import ExponentialMoving
    from .frame import StreamingDataFrame

__all__ = ["GroupBy"]

_MODES = ("complete", "update", "append")


# --- partition ops --------------------------------------------------------------------------------

@dataclass(eq=False)
class PartialBuckets:
    """Map half: a partition's rows -> partials, hashed by key into n buckets."""
    keys: tuple
    specs: tuple
    empty: Batch

    def __call__(self, index: int, batch: Batch, n: int) -> list[Batch]:
        return partial_buckets(batch, self.keys, self.specs, n, self.empty)


@dataclass(eq=False)
class RehashPartials:
    """Map half for partials (a window's): hashed by key into n buckets."""
    keys: tuple
    empty: Batch

    def __call__(self, index: int, batch: Batch, n: int) -> list[Batch]:
        if len(batch) == 0 or not all(k in batch.columns for k in self.keys):
            return [self.empty] * n
        return partition_partials(batch, self.keys, n)


@dataclass(eq=False)
class MergePartials:
    """Reduce half: a bucket's partials merged; finalised into result rows when ``result`` is given."""
    keys: tuple
    specs: tuple
    empty: Batch
    result: Batch | None = None

    def __call__(self, index: int, groups: list[list[Batch]]) -> Batch:
        m = merge([b for b in groups[0] if len(b) and all(k in b.columns for k in self.keys)], self.keys,
                  self.specs)
        if self.result is None:
            return m if m is not None else self.empty
        return finalize(m, self.keys, self.specs, self.result)


@dataclass(eq=False)
class MergeState:
    """A running table's partition merged with the batch's partials; marks updated keys, drops idle ones."""
    keys: tuple
    specs: tuple
    empty: Batch
    now: int
    ttl_ms: int
    has_state: bool

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        raw = parts[0] if self.has_state and len(parts[0]) and "_updated" in parts[0].columns else None
        state = _strip(raw) if raw is not None else None
        new = parts[-1] if len(parts[-1]) and all(k in parts[-1].columns for k in self.keys) else None
        # each key's batch time of last update is kept only with a ttl (a table restored without one:
        # its keys count as seen now)
        state_seen = raw.columns.get("_seen") if raw is not None and self.ttl_ms else None
        fast = merge_key_range(state, state_seen, new, self.keys, self.specs, self.now, self.ttl_ms)
        if fast is not None:
            return _with_marks(*fast)
        codes: list = []
        m = merge([x for x in (state, new) if x is not None], self.keys, self.specs, codes)
        if m is None:
            return _with_marks(self.empty, np.zeros(0, bool), np.zeros(0, np.int64) if self.ttl_ms else None)
        # the state's keys are distinct and come first: they are the merged table's first rows, in order,
        # and the codes of the new partials' rows say which keys the batch touched (no second hash)
        n_state = 0 if state is None else len(state)
        updated = np.zeros(len(m), dtype=bool)
        if new is not None:
            if codes:
                updated[codes[0][n_state:]] = True
            else:
                updated[:] = True
        if not self.ttl_ms:
            return _with_marks(m, updated, None)
        seen = np.full(len(m), self.now, dtype=np.int64)
        if state_seen is not None:
            seen[:n_state] = state_seen
            seen[updated] = self.now
        return _with_marks(m, updated, seen).filter(self.now - seen < self.ttl_ms)


def _strip(table: Batch) -> Batch:
    """A running table without its marks (what merge takes)."""
    cols = {n: c for n, c in table.columns.items() if n not in ("_updated", "_seen")}
    key, states = table.layout
    return Batch(cols, (key, tuple(s for s in states if s not in ("_updated", "_seen"))))


def _with_marks(table: Batch, updated: np.ndarray, seen: np.ndarray | None) -> Batch:
    """The table with its marks: ``_updated`` (keys the batch changed) and, with a ttl, ``_seen``."""
    key, states = table.layout
    marks = {"_updated": updated} if seen is None else {"_updated": updated, "_seen": seen}
    return Batch({**table.columns, **marks}, (key, tuple(states) + tuple(marks)))


@dataclass(eq=False)
class FinalizeTable:
    """A running table's result rows: every key (complete) or the keys the batch updated (update)."""
    keys: tuple
    specs: tuple
    result: Batch
    only_updated: bool

    def __call__(self, index: int, table: Batch) -> Batch:
        if len(table) == 0 or "_updated" not in table.columns:
            return self.result
        mask = np.asarray(table.columns["_updated"], dtype=bool) if self.only_updated else None
        return finalize(_strip(table), self.keys, self.specs, self.result, mask)


# --- the running table ------------------------------------------------------------------------------

class RunningAggDStream(StatefulDStream):
    """A keyed table of partial aggregates merged batch after batch (see the module docstring)."""

    kind = "running_agg"

    def __init__(self, partials: DStream, keys: tuple, specs: tuple, empty: Batch, n: int, ttl_ms: int):
        super().__init__(partials.ssc, [partials])
        self.keys, self.specs, self.empty, self.n, self.ttl_ms = keys, specs, empty, n, ttl_ms
        self.must_cache = True

    def compute(self, t: int) -> Dataset | None:
        prev = self.before(t)
        new = self.parents[0].get_or_compute(t)
        if new is None:
            new = self.ssc.context.empty_dataset(f"{self.parents[0].name} (no data)")
        if new.get_num_partitions() != self.n:   # no batch: one empty partition
            new = _rehash(new, self.keys, self.empty, self.n)
        if prev is None:
            return new.zip_partitions([], MergeState(self.keys, self.specs, self.empty, t, self.ttl_ms, False))
        return prev.zip_partitions([new], MergeState(self.keys, self.specs, self.empty, t, self.ttl_ms, True))

    def settle(self, t: int) -> None:
        self.settle_table(t)

    def fall_back(self, t: int) -> str:
        s = self.slide_ms
        prev = self.generated.get(t - s)
        self.generated[t] = prev
        if prev is None:
            return "it starts again from no state"
        return f"its table stays at the batch at {ms_to_datetime(t - s)}; the next batch continues from there"

    def signature(self) -> dict:
        return {**super().signature(), "keys": list(self.keys),
                "aggregates": [[s.out, s.column, s.func] for s in self.specs], "ttl_ms": self.ttl_ms}

    def _fit(self, ds: Dataset) -> Dataset:
        if ds.get_num_partitions() == self.n:
            return ds
        return _rehash(ds, self.keys, self.empty, self.n).cache()


def _rehash(ds: Dataset, keys: tuple, empty: Batch, n: int) -> Dataset:
    return ds.shuffle([ShuffleDep(ds.dependency(), RehashPartials(keys, empty))], n, _Concat())


@dataclass(eq=False)
class _Concat:
    def __call__(self, index: int, groups: list[list[Batch]]) -> Batch:
        parts = [b for b in groups[0] if len(b)]
        return concat_batches(parts) if parts else Batch.empty()


# --- the API ---------------------------------------------------------------------------------------------

def _specs(named: dict) -> tuple[AggSpec, ...]:
    out = []
    for name, spec in named.items():
        if isinstance(spec, tuple) and len(spec) == 2:
            column, func = spec
        else:
            raise TypeError(f"agg: {name}= must be a (column, aggregate) pair like ('v', 'sum'), got {spec!r}")
        out.append(AggSpec(str(name), None if func == "size" else column, str(func)))
    return tuple(out)


class GroupBy:
    """Rows of a frame grouped by key columns; ``agg`` makes a frame of one row per key.

    ``groupby(k)`` aggregates each batch on its own; ``.running()`` over all
    batches so far; ``.window(length, slide)`` over the batches of a window.

    Examples
    --------
    >>> totals = sdf.groupby("k").running(name="totals").agg(total=("v", "sum"), n=("v", "count"))  # doctest: +SKIP
    """

    def __init__(self, sdf: "StreamingDataFrame", keys: tuple, num_partitions: int | None = None,
                 scope: str = "batch", mode: str = "complete", ttl: float | None = None, name: str | None = None,
                 window: tuple[int, int] | None = None, column: str | None = None, event: Any = None):
        self._sdf, self.keys, self._n = sdf, tuple(keys), num_partitions
        self._scope, self._mode, self._ttl, self._name, self._window = scope, mode, ttl, name, window
        self._column, self._event = column, event

    def _with(self, **kw: Any) -> "GroupBy":
        if not self.keys and kw.get("scope", self._scope) != "event":
            raise ValueError("a frame's rows without keys aggregate over event-time or count windows only "
                             "(sdf.event_window(...), sdf.count_window(n)); group by a column for the others")
        args = dict(scope=self._scope, mode=self._mode, ttl=self._ttl, name=self._name, window=self._window,
                    column=self._column, event=self._event)
        args.update(kw)
        return GroupBy(self._sdf, self.keys, self._n, **args)

    def running(self, mode: str = "complete", ttl: float | None = None, name: str | None = None) -> "GroupBy":
        """Aggregate over every batch so far (keyed state; checkpointed, resumed by ``name``).

        ``mode``: "complete" (every key each batch) or "update" (keys the batch changed);
        ``ttl``: seconds after which a key without new rows leaves the table. ``name`` and
        ``ttl`` hold for the per-key carries of ``cumsum``, ``shift``, ``rolling``, ``ewm`` ...
        too (``groupby(k).running(ttl=60)["v"].cumsum()``): an idle key's carry is dropped and
        the key starts afresh.
        """
        if mode not in ("complete", "update"):
            raise ValueError(f"running(): mode must be 'complete' or 'update' ('append' needs rows that never "
                             f"change: use window(length) with non-overlapping windows), got {mode!r}")
        if ttl is not None:
            to_ms(ttl, "ttl")
        return self._with(scope="running", mode=mode, ttl=ttl, name=name)

    def window(self, length: float, slide: float | None = None, mode: str = "complete",
               name: str | None = None) -> "GroupBy":
        """Aggregate over the batches of the last ``length`` seconds, every ``slide`` seconds.

        The window keeps the partials of its batches (checkpointed, resumed by ``name``);
        ``mode``: "complete" (every key of the window) or "append" (windows that do not overlap).
        """
        stream = self._sdf.stream
        w = to_ms(length, "window length")
        s = stream.slide_ms if slide is None else to_ms(slide, "window slide")
        if w % stream.slide_ms or s % stream.slide_ms:
            raise ValueError(f"window length and slide must be multiples of the batch interval "
                             f"({stream.slide_ms} ms), got {w} ms and {s} ms")
        if mode not in ("complete", "append"):
            raise ValueError(f"window(): mode must be 'complete' or 'append', got {mode!r}")
        if mode == "append" and w != s:
            raise ValueError("window(mode='append') needs windows that do not overlap (length == slide): "
                             "rows of overlapping windows change from one slide to the next")
        return self._with(scope="window", window=(w, s), mode=mode, name=name)

    def event_window(self, window: Any, emit: str = "final", allowed_lateness: Any = 0,
                     name: str | None = None) -> "GroupBy":
        """Aggregate over windows of event time (``event_time.py``); needs ``sdf.with_watermark`` first.

        ``window``: ``tumbling(size)``, ``hopping(size, slide)`` or ``session(gap)``
        (``runnel.frame``); ``emit``: "final" (each window once, when the watermark
        passes its end + ``allowed_lateness``) or "update" (every batch, the windows
        it changed); ``allowed_lateness``: how far behind the watermark a row may
        still be taken (rows further behind go to ``late_rows()`` of the result);
        ``name``: the stable name the window table is checkpointed and resumed by.
        The result has the keys, ``window_start``, ``window_end`` and the aggregates.

        Examples
        --------
        >>> from runnel.frame import tumbling
        >>> agg = (sdf.with_watermark("ts", "10s").groupby("k")             # doctest: +SKIP
        ...           .event_window(tumbling("1min")).agg(total=("v", "sum")))
        """
        from .event_time import WindowSpec, check_window
        check_window(window, emit)
        return self._with(scope="event", event=WindowSpec(window, emit, allowed_lateness), name=name)

    def count_window(self, n: int, emit: str = "final", name: str | None = None,
                     ttl: float | None = None) -> "GroupBy":
        """Aggregate every ``n`` rows of a key (in arrival order) into one window (``event_time.py``).

        The result has the keys, ``window`` (each key's windows numbered from 0) and the
        aggregates; ``emit`` "final" gives a window once it has its ``n`` rows, "update"
        every batch the windows it changed (the last one possibly not full yet).
        The table keeps each key's latest window (where its count goes on); ``ttl``:
        seconds (batch time) after which a key without new rows leaves it, as ``running(ttl=)``:
        its open window is dropped unemitted, and a row of it later starts at window 0.
        """
        from .event_time import Count, WindowSpec, check_window
        if int(n) < 1:
            raise ValueError(f"count_window: n must be at least 1 row, got {n!r}")
        check_window(Count(int(n)), emit)
        if ttl is not None:
            to_ms(ttl, "ttl")
        return self._with(scope="event", event=WindowSpec(Count(int(n)), emit, ttl=ttl), name=name)

    def __getitem__(self, column: str) -> "GroupBy":
        if column not in self._sdf.columns:
            raise KeyError(f"groupby: no column {column!r} (columns: {self._sdf.columns})")
        return self._with(column=column)

    # -- shorthands ------------------------------------------------------------------------------------
    def _all(self, func: str) -> "StreamingDataFrame":
        cols = [self._column] if self._column else [c for c in self._sdf.columns if c not in self.keys]
        return self.agg(**{c: (c, func) for c in cols})

    def sum(self): return self._all("sum")
    def count(self): return self._all("count")
    def mean(self): return self._all("mean")
    def min(self): return self._all("min")
    def max(self): return self._all("max")
    def first(self): return self._all("first")
    def last(self): return self._all("last")
    def std(self): return self._all("std")
    def var(self): return self._all("var")
    def nunique(self): return self._all("nunique")

    def size(self) -> "StreamingDataFrame":
        """Rows per key, in a column named ``size``."""
        return self.agg(size=(None, "size"))

    def value_counts(self) -> "StreamingDataFrame":
        """Rows per (key, value of the selected column), in a column named ``count``."""
        if self._column is None:
            raise ValueError("value_counts needs a column: sdf.groupby(keys)[column].value_counts()")
        g = GroupBy(self._sdf, self.keys + (self._column,), self._n, self._scope, self._mode, self._ttl,
                    self._name, self._window, event=self._event)
        return g.agg(count=(None, "size"))

    # -- cumulative and rolling per key, across batches (cumulative.py) ---------------------------------
    def _cumulative(self, kind: str, n: int = 0, name: str | None = None, params: tuple = ()) -> "StreamingDataFrame":
        from .buckets import bucket_rows
        from .cumulative import CarryDStream, Cumulative, empty_carry
        from .frame import StreamingDataFrame
        from .transformed_frame import transformed
        if not self.keys:
            raise ValueError(f"{kind} runs per key: sdf.groupby(keys)[column].{kind}(...)")
        if self._column is None:
            raise ValueError(f"{kind} needs a column: sdf.groupby(keys)[column].{kind}(...)")
        dtypes = self._sdf.dtypes
        d = dtypes[self._column]
        if not (d.startswith(("int", "uint", "float")) or d == "bool"):
            raise TypeError(f"{kind} needs a numeric column, {self._column!r} is {d}")
        out = name or f"{self._column}_{kind}"
        spec = Cumulative(kind, self._column, int(n), out, params)
        keys = self.keys
        stream = self._sdf.stream
        n_parts = stream.resolve_partitions(self._n)
        rows = stream.derive("groupby_rows", lambda ds: bucket_rows(ds, keys, n_parts)).cache()
        empty_rows = self._sdf.schema.empty()
        ttl_ms = to_ms(self._ttl, "ttl") if self._ttl is not None else 0
        carry = CarryDStream(rows, keys, spec, empty_rows, empty_carry(keys, dtypes, bool(ttl_ms)), n_parts, ttl_ms)
        if self._name is not None:
            carry.named(self._name)
        out_dtype = "int64" if kind == "cumcount" or (kind == "cumsum" and not d.startswith("float")) else \
            (d if kind in ("cummax", "cummin") else "float64")
        schema = Schema(self._sdf.schema.fields + ((out, out_dtype),))
        result = transformed(rows, kind, lambda ds, t: carry.combine(t, ds, False))
        return StreamingDataFrame(result, lambda: schema)

    def cumsum(self, name: str | None = None) -> "StreamingDataFrame":
        """The frame with a column ``<column>_cumsum``: each key's running sum, carried across batches."""
        return self._cumulative("cumsum", name=name)

    def cummax(self, name: str | None = None) -> "StreamingDataFrame":
        return self._cumulative("cummax", name=name)

    def cummin(self, name: str | None = None) -> "StreamingDataFrame":
        return self._cumulative("cummin", name=name)

    def cumcount(self, name: str | None = None) -> "StreamingDataFrame":
        """The frame with ``<column>_cumcount``: each row's position among its key's rows so far (from 0)."""
        return self._cumulative("cumcount", name=name)

    def shift(self, periods: int = 1, name: str | None = None) -> "StreamingDataFrame":
        """The frame with ``<column>_shift``: the key's value ``periods`` rows before (across batches)."""
        if int(periods) < 1:
            raise ValueError(f"shift: periods must be at least 1, got {periods!r}")
        return self._cumulative("shift", int(periods), name)

    def diff(self, periods: int = 1, name: str | None = None) -> "StreamingDataFrame":
        if int(periods) < 1:
            raise ValueError(f"diff: periods must be at least 1, got {periods!r}")
        return self._cumulative("diff", int(periods), name)

    def rolling(self, window: int) -> "Rolling":
        """Rolling over each key's last ``window`` rows (by count, across batches): ``.sum()``, ``.mean()``."""
        if int(window) < 1:
            raise ValueError(f"rolling: window must be at least 1 row, got {window!r}")
        return Rolling(self, int(window))

    def ewm(self, com: float | None = None, span: float | None = None, halflife: float | None = None,
            alpha: float | None = None, min_periods: int = 0, adjust: bool = True,
            ignore_na: bool = False) -> "ExponentialMoving":
        """Exponentially weighted over each key's rows so far (across batches), as pandas' ``ewm``:
        ``.mean()``, ``.sum()``, ``.std()``, ``.var()`` (see :mod:`runnel.frame.ewm`)."""
        from .ewm import ExponentialMoving, center_of_mass
        return ExponentialMoving(self, center_of_mass(com, span, halflife, alpha), adjust, ignore_na, min_periods)

    # -- the aggregation -----------------------------------------------------------------------------
    def agg(self, **named: Any) -> "StreamingDataFrame":
        """``agg(total=("v", "sum"), n=("v", "count"), ...)``: one row per key, one column per aggregate.

        Aggregates: sum, count, mean, min, max, first, last, std, var (ddof=1), nunique (exact), size.
        Rows with a null key are left out (pandas' ``dropna=True``); nulls in a column are skipped.
        """
        from .frame import StreamingDataFrame
        if not named:
            raise ValueError("agg needs at least one aggregate, e.g. agg(total=('v', 'sum'))")
        specs = _specs(named)
        dtypes = self._sdf.dtypes
        check_specs(specs, dtypes, self.keys)
        keys = self.keys
        result = result_schema_batch(keys, specs, dtypes)
        empty = empty_partials(keys, specs, dtypes)
        stream = self._sdf.stream
        n = stream.resolve_partitions(self._n)
        schema = Schema.of_batch(result)
        if self._scope == "batch":
            out = stream.derive("groupby_agg", lambda ds: ds.shuffle(
                [ShuffleDep(ds.dependency(), PartialBuckets(keys, specs, empty))], n,
                MergePartials(keys, specs, empty, result)))
            return StreamingDataFrame(out, lambda: schema)
        if self._scope == "event":
            from .event_time import window_agg
            return window_agg(self, specs, self._event, self._name)
        if self._scope == "running" and _builtin_running(keys, specs, dtypes, self._mode):
            return self._running_builtin(specs[0], result, n, schema)
        if self._scope == "running":
            partials = self._partials(keys, specs, empty, n)
            ttl_ms = to_ms(self._ttl, "ttl") if self._ttl is not None else 0
            table = RunningAggDStream(partials, keys, specs, empty, n, ttl_ms)
            if self._name is not None:
                table.named(self._name)
            op = FinalizeTable(keys, specs, result, self._mode == "update")
            return StreamingDataFrame(table.derive("groupby_running", lambda ds: ds.narrow(op)),
                                      lambda: schema)
        from .window import WindowAggDStream, window_specs
        kept, invertible = window_specs(specs)
        empty = empty_partials(keys, kept, dtypes)
        w, s = self._window
        table = WindowAggDStream(self._partials(keys, kept, empty, n), keys, kept, empty, invertible, w, s, n)
        if self._name is not None:
            table.named(self._name)
        op = _FinalizeWindow(keys, specs, result)
        return StreamingDataFrame(table.derive("groupby_window", lambda ds: ds.narrow(op)), lambda: schema)

    def _running_builtin(self, spec: AggSpec, result: Batch, n: int, schema: Schema) -> "StreamingDataFrame":
        """One running sum/count/mean/min/max/size of one key column: the engine's built-in updater
        (``updaters.running_*``), whose state table merges int64 keys by direct addressing."""
        from .. import updaters
        from .frame import StreamingDataFrame
        key = self.keys[0]
        to_pairs = ToPairs(key, spec.column, spec.func)
        pairs = self._sdf.stream.derive("groupby_pairs", lambda ds: ds.narrow(to_pairs))
        make = getattr(updaters, _BUILTIN[spec.func])
        table = pairs.update_state_by_key(make(ttl=self._ttl), n)
        if self._name is not None:
            table.named(self._name)
        op = PairsToFrame(key, spec.out, result)
        return StreamingDataFrame(table.derive("groupby_running", lambda ds: ds.narrow(op)), lambda: schema)

    def _partials(self, keys: tuple, specs: tuple, empty: Batch, n: int) -> DStream:
        """Each batch's partial table, hashed by key into n partitions (merged, not finalised)."""
        return self._sdf.stream.derive("groupby_partials", lambda ds: ds.shuffle(
            [ShuffleDep(ds.dependency(), PartialBuckets(keys, specs, empty))], n, MergePartials(keys, specs, empty)))


@dataclass(eq=False)
class _FinalizeWindow:
    """A window table's result rows (its user aggregates; a hidden row count is left out)."""
    keys: tuple
    specs: tuple
    result: Batch

    def __call__(self, index: int, table: Batch) -> Batch:
        if len(table) == 0 or self.keys[0] not in table.columns:
            return self.result
        return finalize(table, self.keys, self.specs, self.result)


class Rolling:
    """``groupby(keys)[column].rolling(n)``: ``sum()`` or ``mean()`` of each key's last n rows
    (NaN until a key has n rows, or when one of them is NaN: pandas' ``min_periods=n``)."""

    def __init__(self, gb: GroupBy, n: int):
        self._gb, self._n = gb, n

    def sum(self, name: str | None = None) -> "StreamingDataFrame":
        return self._gb._cumulative("rolling_sum", self._n, name)

    def mean(self, name: str | None = None) -> "StreamingDataFrame":
        return self._gb._cumulative("rolling_mean", self._n, name)


# --- one running aggregate of one key: the engine's built-in updaters ---------------------------------

_BUILTIN = {"sum": "running_sum", "count": "running_sum", "mean": "running_mean", "min": "running_min",
            "max": "running_max", "size": "running_sum"}


def _builtin_running(keys: tuple, specs: tuple, dtypes: dict, mode: str) -> bool:
    """Can the engine's built-in updater keep this running aggregation (complete mode, one key, one
    of its aggregates over an int/float column)?"""
    if len(keys) != 1 or len(specs) != 1 or mode != "complete" or specs[0].func not in _BUILTIN:
        return False
    d = dtypes.get(specs[0].column, "int64") if specs[0].column else "int64"
    # a key whose float values are all NaN shows NaN for mean/min/max in pandas: the updaters, which
    # never see those rows, would leave the key out; sum and count see them as 0 and not counted
    return d == "int64" or (d == "float64" and specs[0].func in ("sum", "count", "size"))


@dataclass(eq=False)
class ToPairs:
    """Frame rows -> (key, value) pairs for a built-in updater: rows of null keys left out, as pandas'
    groupby does; count and size sum ones (count: for values that are not null)."""
    key: str
    column: str | None
    func: str

    def __call__(self, index: int, batch: Batch) -> Batch:
        from .. import keyed
        from .expr import isnull_column
        if len(batch) == 0 or self.key not in batch.columns:
            return keyed.empty_pairs()
        keep = ~isnull_column(batch.columns[self.key], len(batch))
        if not keep.all():
            batch = batch.filter(keep)
        k = batch.columns[self.key]
        if self.func == "size":
            v = np.ones(len(batch), np.int64)
        elif self.func == "count":
            v = (~isnull_column(batch.columns[self.column], len(batch))).astype(np.int64)
        else:
            v = batch.columns[self.column]
            if v.dtype.kind == "f":   # a sum skips NaN, as pandas': they add nothing
                v = np.where(np.isnan(v), 0.0, v)
        return Batch({"key": k, "value": v}, ("key", "value"))


@dataclass(eq=False)
class PairsToFrame:
    """A built-in updater's (key, value) table as result rows."""
    key: str
    out: str
    result: Batch

    def __call__(self, index: int, batch: Batch) -> Batch:
        if len(batch) == 0 or "key" not in batch.columns:
            return self.result
        v = batch.columns["value"]
        want = self.result.columns[self.out]
        if isinstance(v, np.ndarray) and v.dtype != want.dtype and v.dtype.kind in "iuf" and want.dtype.kind in "iuf":
            v = v.astype(want.dtype)
        return frame_batch({self.key: batch.columns["key"], self.out: v})
