"""Per-key state: updateStateByKey and mapWithState on columnar state tables.

The state of a stream is a Dataset of ``numPartitions`` partitions, keyed by
the same stable hash as the shuffle. Every batch::

    state(t - slide) ──────────────────────────┐  (no shuffle: partition i stays i)
    new pairs(t) ── shuffle into numPartitions ─┴─ zip partition by partition ─> state(t)

and the update runs once per partition (``runnel.state_tables``: the built-in
updaters as kernels over columnar tables, any other function on the Python
path, once per key).

Each state Dataset is cached; once computed, its lineage is dropped (the
stream forgets the previous state right after), so a long run holds one or
two state tables, and keys removed (None, timeout, time-to-live) leave the
table. ``state_report(t)`` gives (keys, bytes) for the listener's BatchInfo.

Bad records (``on_bad_record``). A record the update cannot take fails its
batch by default ("fail", Spark's behaviour for a task that raises), and the
state goes on from the last good batch (``StatefulDStream.settle``). With
"dead_letter" such records are left out of the state and come out of
``dead_letters()`` as ``(key, value, error)``: for a built-in updater each
record that is not a number or does not fold (``state_tables.FlagBad``,
before the shuffle), for a Python function every new value of a key whose call raised
(the key keeps its state). An argument, because the choice belongs to an
operator (a counter may drop what a ledger must not), with a conf key for a
program-wide default; a stream, not a file, because a stream goes to any sink
(``save_as_text_files`` writes the file) and is replayed with its batch after
a recovery. Dead letters are never silent: their count is in
``BatchInfo.state_tables`` and each batch that has some logs a warning.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from ..dataset import Dataset
from ..listener import ms_to_datetime
from ..plan import Blocks, ShuffleDep
from ..state_tables import (DropBad, FlagBad, KeyValueOnly, MappedRows, MapWithStateOp, MergeBuiltin, PartialBuckets,
                            PartialReduce, PrepareInitial, StateRows, TakeBad, UpdateByKey)
from ..updaters import StateSpec, Updater
from .base import DStream
from .stateful import StatefulDStream

__all__ = ["update_state_by_key", "map_with_state", "StateDStream", "MapWithStateDStream"]

log = logging.getLogger("runnel.state")

# --- streams ---------------------------------------------------------------------------------

class StateDStream(StatefulDStream):
    """A stream whose Dataset at t is the state table after batch t (cached, one step of lineage)."""

    kind = "update_state_by_key"

    #: Datasets kept per batch time while the program runs (not pickled with the graph)
    _runtime = ("_dead", "_raw")

    def __init__(self, ssc, parent: DStream, n: int, initial: Any):
        super().__init__(ssc, [parent])
        self.n = n
        self.initial = initial
        self.must_cache = True
        self.dead_letter = False  # on_bad_record="dead_letter" (update_state_by_key)
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._dead: dict[int, Dataset] = {}   # batch time -> its dead letters (cached), once asked for
        self._raw: dict[int, Dataset] = {}    # batch time -> the table with its bad rows (the Python path)

    # the update of one batch: build the state Dataset at t from the previous one and the new data
    def new_data(self, ds: Dataset) -> Dataset:
        raise NotImplementedError

    def update(self, prev: Dataset | None, new: Dataset, t: int) -> Dataset:
        raise NotImplementedError

    def prepare_initial(self, t: int):
        return None

    def _initial_dataset(self, t: int) -> Dataset | None:
        if self.initial is None:
            return None
        init = self.initial
        if not isinstance(init, Dataset):
            init = self.ssc.context.parallelize(list(init))
        init = init.hash_partition(self.n)
        op = self.prepare_initial(t)
        return init._narrow(op) if op is not None else init

    def compute(self, t: int) -> Dataset | None:
        s = self.slide_ms
        zero = self.ssc._graph.zero_ms
        restored = self.ssc._graph.restored_ms
        if t - s > zero and not (restored is not None and t - s <= restored and t - s not in self.generated):
            prev = self.get_or_compute(t - s)
        else:   # the first batch, or the first after a recovery that had no state for this operator
            prev = self._initial_dataset(t)
        ds = self.parents[0].get_or_compute(t)
        if ds is None:
            ds = self.ssc.context.empty_dataset(f"{self.parents[0].name} (no data)")
        return self.update(prev, self.new_data(ds), t)

    def table(self, ds: Dataset) -> Dataset:
        """The (key, state) table inside this stream's Dataset."""
        return ds

    # -- a failed batch (StatefulDStream.settle): the state stays at the last good batch ---------
    def settle(self, t: int) -> None:
        self._settle_table(t)
        if self.dead_letter and self.generated.get(t) is not None:
            self._report_dead_letters(t)

    # -- bad records (on_bad_record="dead_letter"): never dropped silently ----------------------
    def dead_letters(self) -> DStream:
        """The records the state update could not take, as ``(key, value, error)`` records.

        Only with ``update_state_by_key(..., on_bad_record="dead_letter")``
        (or the conf key ``runnel.streaming.state.onBadRecord``); each batch's
        bad records are also counted in ``BatchInfo.state_tables[name]
        ["dead_letters"]`` and logged (a warning naming the stream, the batch
        time and the first error), whether or not this stream has an output.

        Examples
        --------
        >>> totals = pairs.update_state_by_key(updaters.running_sum(), on_bad_record="dead_letter")  # doctest: +SKIP
        >>> totals.dead_letters().save_as_text_files("/data/bad/totals")  # doctest: +SKIP
        """
        if not self.dead_letter:
            raise ValueError(f"{self.name}: dead_letters() needs update_state_by_key(..., "
                             f"on_bad_record='dead_letter'); with 'fail' a bad record fails its batch")
        return DeadLettersDStream(self)

    def dead_letters_at(self, t: int) -> Dataset:
        """The (key, value, error) records of batch t the update left out (memoised, cached)."""
        ds = self._dead.get(t)
        if ds is None:
            ds = self._bad_records(t)
            ds = Dataset(ds.ctx, ds.plan, f"{self.name} dead letters at {ms_to_datetime(t)}").cache()
            self._dead[t] = ds
        return ds

    def _bad_records(self, t: int) -> Dataset:
        raise NotImplementedError

    def _report_dead_letters(self, t: int) -> None:
        dead = self.dead_letters_at(t)
        try:
            dead._materialize()
        except Exception:  # noqa: BLE001  (its batch failed: already reported by settle or the outputs)
            log.exception("runnel: %s: the dead letters of the batch at %s could not be computed", self.name,
                          ms_to_datetime(t))
            return
        refs = [r for r in dead.plan.refs if r.nrows]
        if refs:
            key, value, error = self.ssc.context.executor.store.get(refs[0]).to_records()[0]
            log.warning("runnel: %s: %d bad record(s) of the batch at %s went to its dead letters "
                        "(the first: key %r, value %r: %s)", self.name, sum(r.nrows for r in refs),
                        ms_to_datetime(t), key, value, error)

    def forget_before(self, t: int) -> None:
        super().forget_before(t)
        for kept in (self._dead, self._raw):
            for old in [k for k in kept if k <= t - self.remember_ms]:
                del kept[old]

    def state_report(self, t: int) -> dict | None:
        report = super().state_report(t)
        dead = self._dead.get(t)
        if report is not None and self.dead_letter:
            report["dead_letters"] = sum(r.nrows for r in dead.plan.refs) \
                if dead is not None and isinstance(dead.plan, Blocks) else 0
        return report

    def fall_back(self, t: int) -> str:
        s, zero = self.slide_ms, self.ssc._graph.zero_ms
        prev = self.generated.get(t - s) if t - s > zero else None
        if prev is not None and isinstance(prev.plan, Blocks):
            good, what = self.table(prev), f"its state stays at the batch at {ms_to_datetime(t - s)}"
        else:  # the first batch (or the first after a recovery) failed: back to the initial state
            good, what = self._initial_dataset(t), "its state stays at its initial state"
        if good is not None:
            good = Dataset(good.ctx, good.plan, f"{self.name} at {ms_to_datetime(t)}").cache()
            try:
                good._materialize()
            except Exception:  # noqa: BLE001  (an initial state that cannot be computed: none)
                good, what = None, "it starts again from no state"
        self.generated[t] = good
        return what + "; the next batch continues from there"

    # -- memory and observing: StatefulDStream (restart warning, lineage dropped, state_report) --

    def state_at(self, t: int | None = None) -> Dataset:
        """The (key, state) Dataset at batch time t (ms; default the latest remembered)."""
        done = [k for k, v in self.generated.items() if v is not None]
        if not done:
            raise LookupError(f"{self.name} holds no state yet")
        t = max(done) if t is None else t
        if t not in self.generated:
            raise LookupError(f"{self.name}: no state remembered at {t} (remembered: {sorted(done)})")
        return self.table(self.generated[t])._narrow(KeyValueOnly())

    def state_frame(self, t: int | None = None):
        """The state at batch t as a pandas DataFrame with columns key and value (debugging)."""
        import pandas as pd
        recs = self.state_at(t).collect()
        return pd.DataFrame(recs, columns=["key", "value"])

    def state_snapshots(self) -> DStream:
        """A stream of the (key, state) pairs of every key, every batch."""
        return self._transform("state_snapshots", lambda ds: self.table(ds)._narrow(KeyValueOnly()))


class UpdateStateDStream(StateDStream):
    def __init__(self, ssc, parent, fn: Callable, n: int, initial: Any, on_bad_record: str = "fail"):
        super().__init__(ssc, parent, n, initial)
        self.builtin = fn if isinstance(fn, Updater) else None
        self.fn = None if self.builtin else self._ship(fn)
        self.dead_letter = on_bad_record == "dead_letter"
        if self.builtin is not None:
            from runnel.kernels.state import warm
            warm()  # in the driver, before any pool worker needs the kernel (numba#4807)

    def new_data(self, ds: Dataset) -> Dataset:
        if self.builtin is None:
            return ds.group_by_key(self.n)
        kind = self.builtin.kind
        if self.dead_letter:  # the records the updater cannot take stay out of the shuffle
            ds = ds._narrow(FlagBad(kind))._narrow(DropBad())
        return ds._shuffle([ShuffleDep(ds._dep(), PartialBuckets(kind))], self.n, PartialReduce(kind))

    def _bad_records(self, t: int) -> Dataset:
        if self.builtin is not None:  # flagged again from the input: a pass over it, no table
            ds = self.parents[0].get_or_compute(t)
            return ds._narrow(FlagBad(self.builtin.kind))._narrow(TakeBad()) if ds is not None \
                else self.ssc.context.empty_dataset(f"{self.name} (no data)")
        self.get_or_compute(t)
        raw = self._raw.get(t)
        return raw._narrow(TakeBad()) if raw is not None else self.ssc.context.empty_dataset(f"{self.name} (no data)")

    def signature(self) -> dict:
        # a built-in updater's table means what its kind says (a sum is no max); a function: unknown
        return {**super().signature(), "updater": None if self.builtin is None else self.builtin.kind}

    def required_columns(self) -> set[str]:
        need = {"key", "value"}
        if self.builtin is not None and self.builtin.kind == "mean":
            need |= {"_sum", "_count"}
        if self.builtin is not None and self.builtin.ttl_ms:
            need.add("_seen")
        return need

    def prepare_initial(self, t: int):
        if self.builtin is None:
            return None
        return PrepareInitial(self.builtin.kind, t, bool(self.builtin.ttl_ms))

    def update(self, prev, new, t):
        if self.builtin is None:
            op = UpdateByKey(self.fn, prev is not None, self.dead_letter)
        else:
            op = MergeBuiltin(self.builtin.kind, self.builtin.ttl_ms, t, prev is not None)
        out = prev.zip_partitions([new], op) if prev is not None else new.zip_partitions([], op)
        if self.builtin is None and self.dead_letter:
            # the table with the bad rows is computed once (cached, in the same tasks as the table
            # without them, which this stream holds) and kept for dead_letters_at(t)
            self._raw[t] = out.cache()
            out = out._narrow(DropBad())
        return out


class MapWithStateDStream(StateDStream):
    """The internal stream of mapWithState: state rows and mapped records of each batch."""

    kind = "map_with_state"

    def __init__(self, ssc, parent, spec: StateSpec, n: int):
        super().__init__(ssc, parent, n, spec.initial)
        self.fn = self._ship(spec.fn)
        self.timeout_ms = 0 if spec.timeout_s is None else round(spec.timeout_s * 1000)

    def new_data(self, ds):
        return ds.hash_partition(self.n)

    def prepare_initial(self, t):
        return PrepareInitial(None, t, True)

    def update(self, prev, new, t):
        op = MapWithStateOp(self.fn, self.timeout_ms, t, prev is not None)
        return prev.zip_partitions([new], op) if prev is not None else new.zip_partitions([], op)

    def table(self, ds):
        return ds._narrow(StateRows())

    def required_columns(self) -> set[str]:
        return {"key", "value", "_seen"}

    def state_report(self, t):
        ds = self.generated.get(t)
        if ds is None or not isinstance(ds.plan, Blocks):
            return None
        store = self.ssc.context.executor.store
        keys = sum(len(b) - int(np.count_nonzero(b.columns["_m"])) for b in map(store.get, ds.plan.refs)
                   if len(b) and "_m" in b.columns)
        return {"keys": keys, "bytes": sum(r.nbytes for r in ds.plan.refs)}


class MappedDStream(DStream):
    """What mapWithState returns: the mapped records; ``state_snapshots()`` gives the state."""

    kind = "mapped_with_state"

    def __init__(self, ssc, states: MapWithStateDStream):
        super().__init__(ssc, [states])
        self.states = states

    def compute(self, t):
        ds = self.states.get_or_compute(t)
        return None if ds is None else ds._narrow(MappedRows())

    def state_snapshots(self) -> DStream:
        return self.states.state_snapshots()

    def state_frame(self, t: int | None = None):
        return self.states.state_frame(t)



class DeadLettersDStream(DStream):
    """``state.dead_letters()``: the (key, value, error) records each batch's update left out."""

    kind = "dead_letters"

    def __init__(self, states: StateDStream):
        super().__init__(states.ssc, [states])

    def compute(self, t):
        return self.parents[0].dead_letters_at(t)


BAD_RECORD_CONF = "runnel.streaming.state.onBadRecord"
ON_BAD_RECORD = ("fail", "dead_letter")


# --- entry points (the DStream methods call these) ------------------------------------------

def update_state_by_key(stream: DStream, updateFunc: Callable, numPartitions: int | None = None,
                        initialRDD: Any = None, on_bad_record: str | None = None) -> DStream:
    """PySpark's updateStateByKey (see the module docstring and ``runnel.updaters``)."""
    if not callable(updateFunc):
        raise TypeError(f"updateStateByKey expects a function, got {type(updateFunc).__name__}")
    mode = on_bad_record if on_bad_record is not None else stream.ssc.context.conf.get(BAD_RECORD_CONF, "fail")
    if mode not in ON_BAD_RECORD:
        where = "on_bad_record" if on_bad_record is not None else f"conf {BAD_RECORD_CONF}"
        raise ValueError(f"{where} must be 'fail' or 'dead_letter', got {mode!r}")
    return UpdateStateDStream(stream.ssc, stream, updateFunc, stream._n(numPartitions), initialRDD, mode)


def map_with_state(stream: DStream, spec: StateSpec) -> DStream:
    """Spark's mapWithState: the stream of what ``spec``'s function returns per record."""
    if not isinstance(spec, StateSpec):
        raise TypeError(f"mapWithState expects a StateSpec (StateSpec.function(fn)), got {type(spec).__name__}")
    states = MapWithStateDStream(stream.ssc, stream, spec, stream._n(spec.partitions))
    return MappedDStream(stream.ssc, states)
