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

Bad records: ``on_bad_record`` and ``dead_letters()`` (``dead_letters.py``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..dataset import Dataset
from ..listener import ms_to_datetime
from ..plan import Blocks, ShuffleDep
from ..state_tables import (DropBad, FlagBad, KeyValueOnly, MappedRows, MapWithStateOp, MergeBuiltin, PartialBuckets,
                            PartialReduce, PrepareInitial, StateRows, TakeBad, UpdateByKey)
from ..updaters import StateSpec, Updater
from .base import DStream
from .dead_letters import DeadLetters, DeadLettersDStream, bad_record_mode
from .stateful import StatefulDStream

__all__ = ["update_state_by_key", "map_with_state", "StateDStream", "MapWithStateDStream"]

# --- streams ---------------------------------------------------------------------------------

class StateDStream(StatefulDStream):
    """A stream whose Dataset at t is the state table after batch t (cached, one step of lineage)."""

    kind = "update_state_by_key"

    def __init__(self, ssc, parent: DStream, n: int, initial: Any):
        super().__init__(ssc, [parent])
        self.n = n
        self.initial = initial
        self.must_cache = True

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
        return init.narrow(op) if op is not None else init

    def compute(self, t: int) -> Dataset | None:
        prev = self.before(t)
        if prev is None:   # the first batch, or the first after a recovery that had no state for this operator
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
        self.settle_table(t)

    def fall_back(self, t: int) -> str:
        s, zero = self.slide_ms, self.graph.zero_ms
        prev = self.generated.get(t - s) if t - s > zero else None
        if prev is not None and isinstance(prev.plan, Blocks):
            good, what = self.table(prev), f"its state stays at the batch at {ms_to_datetime(t - s)}"
        else:  # the first batch (or the first after a recovery) failed: back to the initial state
            good, what = self._initial_dataset(t), "its state stays at its initial state"
        if good is not None:
            good = Dataset(good.ctx, good.plan, f"{self.name} at {ms_to_datetime(t)}").cache()
            try:
                good.materialize()
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
        return self.table(self.generated[t]).narrow(KeyValueOnly())

    def state_frame(self, t: int | None = None):
        """The state at batch t as a pandas DataFrame with columns key and value (debugging)."""
        import pandas as pd
        recs = self.state_at(t).collect()
        return pd.DataFrame(recs, columns=["key", "value"])

    def state_snapshots(self) -> DStream:
        """A stream of the (key, state) pairs of every key, every batch."""
        return self.derive("state_snapshots", lambda ds: self.table(ds).narrow(KeyValueOnly()))


class UpdateStateDStream(StateDStream):
    #: its dead letters hold Datasets while the program runs (not pickled with the graph)
    _runtime = ("_dead",)

    def __init__(self, ssc, parent, fn: Callable, n: int, initial: Any, on_bad_record: str = "fail"):
        super().__init__(ssc, parent, n, initial)
        self.builtin = fn if isinstance(fn, Updater) else None
        self.fn = None if self.builtin else self.ship_function(fn)
        self.dead_letter = on_bad_record == "dead_letter"
        self._init_runtime()
        if self.builtin is not None:
            from runnel.kernels.state import warm
            warm()  # in the driver, before any pool worker needs the kernel (numba#4807)

    def _init_runtime(self) -> None:
        self._dead = DeadLetters(self, self._bad_records)

    def new_data(self, ds: Dataset) -> Dataset:
        if self.builtin is None:
            return ds.group_by_key(self.n)
        kind = self.builtin.kind
        if self.dead_letter:  # the records the updater cannot take stay out of the shuffle
            ds = ds.narrow(FlagBad(kind)).narrow(DropBad())
        return ds.shuffle([ShuffleDep(ds.dependency(), PartialBuckets(kind))], self.n, PartialReduce(kind))

    # -- bad records (on_bad_record="dead_letter"; dead_letters.py) ----------------------------
    def dead_letters(self) -> DStream:
        """The records the state update could not take, as ``(key, value, error)`` records.

        Only with ``update_state_by_key(..., on_bad_record="dead_letter")`` (or
        the conf key ``runnel.streaming.state.onBadRecord``); each batch's bad
        records are also counted in ``BatchInfo.state_tables[name]["dead_letters"]``
        and logged (a warning naming the stream, the batch time and the first
        error), whether or not this stream has an output.

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
        return self._dead.at(t)

    def _bad_records(self, t: int) -> Dataset:
        if self.builtin is not None:  # flagged again from the input: a pass over it, no table
            ds = self.parents[0].get_or_compute(t)
        else:  # the bad rows follow the table's in the Python path's table (update)
            self.get_or_compute(t)
            ds = self._dead.tables.get(t)
        if ds is None:
            return self.ssc.context.empty_dataset(f"{self.name} (no data)")
        return (ds.narrow(FlagBad(self.builtin.kind)) if self.builtin is not None else ds).narrow(TakeBad())

    def settle(self, t: int) -> None:
        super().settle(t)
        if self.dead_letter and self.generated.get(t) is not None:
            self._dead.report(t)

    def forget_before(self, t: int) -> None:
        super().forget_before(t)
        self._dead.forget_through(t - self.remember_ms)

    def state_report(self, t: int) -> dict | None:
        report = super().state_report(t)
        if report is not None and self.dead_letter:
            report["dead_letters"] = self._dead.count(t)
        return report

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
            self._dead.tables[t] = out.cache()
            out = out.narrow(DropBad())
        return out


class MapWithStateDStream(StateDStream):
    """The internal stream of mapWithState: state rows and mapped records of each batch."""

    kind = "map_with_state"

    def __init__(self, ssc, parent, spec: StateSpec, n: int):
        super().__init__(ssc, parent, n, spec.initial)
        self.fn = self.ship_function(spec.fn)
        self.timeout_ms = 0 if spec.timeout_s is None else round(spec.timeout_s * 1000)

    def new_data(self, ds):
        return ds.hash_partition(self.n)

    def prepare_initial(self, t):
        return PrepareInitial(None, t, True)

    def update(self, prev, new, t):
        op = MapWithStateOp(self.fn, self.timeout_ms, t, prev is not None)
        return prev.zip_partitions([new], op) if prev is not None else new.zip_partitions([], op)

    def table(self, ds):
        return ds.narrow(StateRows())

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
        return None if ds is None else ds.narrow(MappedRows())

    def state_snapshots(self) -> DStream:
        return self.states.state_snapshots()

    def state_frame(self, t: int | None = None):
        return self.states.state_frame(t)



# --- entry points (the DStream methods call these) ------------------------------------------

def update_state_by_key(stream: DStream, updateFunc: Callable, numPartitions: int | None = None,
                        initialRDD: Any = None, on_bad_record: str | None = None) -> DStream:
    """PySpark's updateStateByKey (see the module docstring and ``runnel.updaters``)."""
    if not callable(updateFunc):
        raise TypeError(f"updateStateByKey expects a function, got {type(updateFunc).__name__}")
    mode = bad_record_mode(stream, on_bad_record)
    return UpdateStateDStream(stream.ssc, stream, updateFunc, stream.resolve_partitions(numPartitions), initialRDD, mode)


def map_with_state(stream: DStream, spec: StateSpec) -> DStream:
    """Spark's mapWithState: the stream of what ``spec``'s function returns per record."""
    if not isinstance(spec, StateSpec):
        raise TypeError(f"mapWithState expects a StateSpec (StateSpec.function(fn)), got {type(spec).__name__}")
    states = MapWithStateDStream(stream.ssc, stream, spec, stream.resolve_partitions(spec.partitions))
    return MappedDStream(stream.ssc, states)
