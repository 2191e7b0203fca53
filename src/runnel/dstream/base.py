"""DStream: a stream of Datasets, one per batch time on its slide grid.

Spark's ``compute(time)`` contract: each subclass declares its parents, its
slide duration and ``compute(time) -> Dataset | None``; this base class alone
owns memoising by time, validity of times, remembering and forgetting
generated Datasets (which frees their blocks), and naming.

Times are integer milliseconds. With ``zero`` the context's zero time, a
stream with slide ``s`` produces Datasets only at ``zero + k*s`` (k >= 1);
at other times it produces nothing at all.

Primitives everything is composed from (see ``transformed.py``): a per-batch
Dataset transform of one or more parents (narrow ops fuse into one task per
partition; keyed ops shuffle), inputs (``inputs.py``) and outputs
(``outputs.py``).
"""

from __future__ import annotations

import inspect
import operator
import types
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from .. import ops
from ..dataset import Dataset
from ..executors.shipping import ship
from ..functions import Reducer
from ..listener import ms_to_datetime

if TYPE_CHECKING:
    from ..streaming import StreamingContext


def to_ms(seconds: Any, what: str) -> int:
    """Durations are seconds (int or float); compare them in integer milliseconds."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {type(seconds).__name__}: {seconds!r}")
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"{what} must be positive, got {seconds!r} seconds")
    return ms


def fn_arity(f: Callable) -> int:
    """Number of positional parameters (PySpark checks ``__code__.co_argcount``)."""
    code = getattr(f, "__code__", None)
    if code is not None:
        n = code.co_argcount
        return n - 1 if inspect.ismethod(f) else n
    try:
        return len([p for p in inspect.signature(f).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
    except (TypeError, ValueError):
        return 1


class DStream:
    """A discretised stream: a Dataset per batch time.

    DStreams are created by a :class:`~runnel.streaming.StreamingContext`
    (inputs) and by transformations of other DStreams. PEP 8 method names
    are primary; PySpark's camelCase names are aliases (``aliases.py``).
    """

    kind = "dstream"
    __class_getitem__ = classmethod(types.GenericAlias)   # DStream[Tuple[str, int]] in annotations

    def __init__(self, ssc: "StreamingContext", parents: list["DStream"] | tuple = ()):
        self.ssc = ssc
        self.parents: list[DStream] = list(parents)
        for p in self.parents:
            if p.ssc is not ssc:
                raise ValueError("cannot combine DStreams of different StreamingContexts")
        self.generated: dict[int, Dataset | None] = {}
        self.remember_ms: int = 0
        self.must_cache = False
        self.checkpoint_ms: int | None = None
        self.graph = ssc.graph
        self.name = self.graph.add(self)

    # -- time ---------------------------------------------------------------
    @property
    def slide_ms(self) -> int:
        return self.parents[0].slide_ms

    @property
    def slide_duration(self) -> float:
        return self.slide_ms / 1000.0

    def is_time_valid(self, t: int) -> bool:
        zero = self.graph.zero_ms
        return zero is not None and t > zero and (t - zero) % self.slide_ms == 0

    def compute(self, t: int) -> Dataset | None:
        raise NotImplementedError(f"{type(self).__name__} must implement compute(time)")

    def get_or_compute(self, t: int) -> Dataset | None:
        """The Dataset at time t: memoised; None where the stream produces nothing."""
        if t in self.generated:
            return self.generated[t]
        if not self.is_time_valid(t):
            return None
        restored = self.graph.restored_ms
        if restored is not None and t <= restored:
            return None     # before the checkpoint a recovery started from: only restored tables exist
        ds = self.compute(t)
        if ds is not None:
            # a fresh handle: compute may return a parent's memoised Dataset, whose label we must not change
            ds = Dataset(ds.ctx, ds.plan, f"{self.name} at {ms_to_datetime(t)}")
            if self.must_cache:
                ds.cache()
        self.generated[t] = ds
        return ds

    # -- memory ---------------------------------------------------------------
    def parent_remember_ms(self) -> int:
        """How long parents must remember for this stream (windows add their length)."""
        return self.remember_ms

    def init_remember(self, ms: int) -> None:
        self.remember_ms = max(self.remember_ms, ms, self.slide_ms)
        for p in self.parents:
            p.init_remember(self.parent_remember_ms())

    def forget_before(self, t: int) -> None:
        """Drop Datasets older than t - remember (their blocks are freed with them)."""
        horizon = t - self.remember_ms
        # one scheduler thread forgets while the other (holding the timer) memoises the next batch's Datasets:
        # list() copies the keys without running Python code (so without a thread switch mid-iteration)
        for old in [k for k in list(self.generated) if k <= horizon]:
            self.generated.pop(old, None)

    # -- naming ---------------------------------------------------------------
    def named(self, name: str) -> "DStream":
        """Give this stream a stable name of your choosing (checkpointed state is keyed by it)."""
        self.name = self.graph.rename(self, name)
        return self

    def context(self) -> "StreamingContext":
        return self.ssc

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} slide={self.slide_ms}ms>"

    # -- pickling (runnel.checkpoint stores the graph for getOrCreate) ------------------------
    def __getstate__(self) -> dict:
        """The definition of the stream, without its context and generated Datasets."""
        state = self.__dict__.copy()
        state["ssc"] = state["graph"] = None       # the graph pickles its streams; attach() binds them again
        state["generated"] = {}
        for name in self._runtime:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    #: attributes that live only while the program runs (locks, threads); not pickled
    _runtime: tuple[str, ...] = ()

    def _init_runtime(self) -> None:
        """Recreate the :attr:`_runtime` attributes of an unpickled stream."""

    # -- building blocks ---------------------------------------------------------
    def derive(self, kind: str, fn: Callable[[Dataset], Dataset]) -> "DStream":
        """A stream whose Dataset at each batch is ``fn(this stream's Dataset)``, named after ``kind``.

        The building block of the narrow and keyed operators (and of
        ``runnel.frame``): ``fn`` runs on the driver and composes Dataset
        primitives (:meth:`Dataset.narrow`, :meth:`Dataset.shuffle`, ...).
        """
        from .transformed import TransformedDStream
        return TransformedDStream(self.ssc, [self], lambda dss, t: fn(dss[0]), kind)

    def ship_function(self, fn: Callable):
        """Wrap a user function for the workers (``runnel.executors.shipping``) and remember it as part of
        this graph, so a checkpoint stores it with the graph; what an operator passes to its ops."""
        ref = ship(fn)
        self.graph.functions.append(ref)
        return ref

    def resolve_partitions(self, num_partitions: int | None) -> int:
        """``num_partitions`` checked (at least 1), or the context's default parallelism when None."""
        if num_partitions is None:
            return self.ssc.context.default_parallelism
        if int(num_partitions) < 1:
            raise ValueError(f"numPartitions must be at least 1, got {num_partitions!r}")
        return int(num_partitions)

    # -- narrow transformations ----------------------------------------------------
    def map(self, f: Callable, preservesPartitioning: bool = False) -> "DStream":
        """Apply ``f`` to every record."""
        f = self.ship_function(f)
        return self.derive("map", lambda ds: ds.map(f))

    def flat_map(self, f: Callable, preservesPartitioning: bool = False) -> "DStream":
        """Apply ``f`` to every record and flatten the results."""
        f = self.ship_function(f)
        return self.derive("flat_map", lambda ds: ds.flat_map(f))

    def filter(self, f: Callable) -> "DStream":
        """Keep records for which ``f`` is true."""
        f = self.ship_function(f)
        return self.derive("filter", lambda ds: ds.filter(f))

    def map_partitions(self, f: Callable, preservesPartitioning: bool = False) -> "DStream":
        f = self.ship_function(f)
        return self.derive("map_partitions", lambda ds: ds.map_partitions(f))

    def map_partitions_with_index(self, f: Callable, preservesPartitioning: bool = False) -> "DStream":
        f = self.ship_function(f)
        return self.derive("map_partitions_with_index", lambda ds: ds.map_partitions_with_index(f))

    def map_batches(self, f: Callable, format: str = "pandas") -> "DStream":
        """Apply a vectorised function to each partition (pandas DataFrame in, DataFrame out)."""
        f = self.ship_function(f)
        return self.derive("map_batches", lambda ds: ds.map_batches(f, format))

    def glom(self) -> "DStream":
        return self.derive("glom", lambda ds: ds.glom())

    def map_values(self, f: Callable) -> "DStream":
        f = self.ship_function(f)
        return self.derive("map_values", lambda ds: ds.map_values(f))

    def flat_map_values(self, f: Callable) -> "DStream":
        f = self.ship_function(f)
        return self.derive("flat_map_values", lambda ds: ds.flat_map_values(f))

    def repartition(self, num_partitions: int) -> "DStream":
        n = self.resolve_partitions(num_partitions)
        return self.derive("repartition", lambda ds: ds.repartition(n))

    def cache(self) -> "DStream":
        """Keep each batch's Dataset once computed (several outputs reuse it)."""
        self.must_cache = True
        return self

    def persist(self, storageLevel: Any = None) -> "DStream":
        return self.cache()

    def checkpoint(self, interval: float) -> "DStream":
        """Set how often this stream's state is checkpointed (seconds)."""
        self.checkpoint_ms = to_ms(interval, "checkpoint interval")
        self.cache()
        return self

    # -- aggregations ---------------------------------------------------------------
    def count(self) -> "DStream":
        """A one-record stream: the number of records of each batch ([0] when empty)."""
        return self.derive("count", lambda ds: ds.narrow(ops.CountPartition()).reduce_all(_SUM))

    def reduce(self, f: Callable) -> "DStream":
        """Reduce each batch to one record (an empty batch stays empty)."""
        r = Reducer.of(f, self.ship_function)
        return self.derive("reduce", lambda ds: ds.narrow(ops.ReducePartition(r)).reduce_all(r))

    def count_by_value(self) -> "DStream":
        """(value, count) pairs per batch."""
        return self.derive("count_by_value", lambda ds: ds.count_by_value_stream(None))

    def reduce_by_key(self, func: Callable, numPartitions: int | None = None) -> "DStream":
        """Merge the values of each key with ``func`` (see :meth:`Dataset.reduce_by_key`)."""
        r = Reducer.of(func, self.ship_function)
        n = self.resolve_partitions(numPartitions)
        return self.derive("reduce_by_key", lambda ds: ds.reduce_by_key_with(r, n))

    def group_by_key(self, numPartitions: int | None = None) -> "DStream":
        n = self.resolve_partitions(numPartitions)
        return self.derive("group_by_key", lambda ds: ds.group_by_key(n))

    def combine_by_key(self, createCombiner: Callable, mergeValue: Callable, mergeCombiners: Callable,
                       numPartitions: int | None = None) -> "DStream":
        c, mv, mc = self.ship_function(createCombiner), self.ship_function(mergeValue), self.ship_function(mergeCombiners)
        n = self.resolve_partitions(numPartitions)
        return self.derive("combine_by_key", lambda ds: ds.combine_by_key(c, mv, mc, n))

    def partition_by(self, numPartitions: int, partitionFunc: Callable | None = None) -> "DStream":
        n = self.resolve_partitions(numPartitions)
        pf = self.ship_function(partitionFunc) if partitionFunc is not None else None
        return self.derive("partition_by", lambda ds: ds.partition_by(n, pf))

    # -- combining streams -----------------------------------------------------------
    def derive_with(self, kind: str, other: "DStream", fn: Callable[[Dataset, Dataset], Dataset]) -> "DStream":
        """A stream whose Dataset at each batch is ``fn(this stream's, other's)``: :meth:`derive` for two
        streams of the same slide duration (joins, cogroup)."""
        from .transformed import TransformedDStream
        if not isinstance(other, DStream):
            raise TypeError(f"{kind} expects a DStream, got {type(other).__name__}")
        if other.slide_ms != self.slide_ms:
            raise ValueError(f"{kind}: the two streams have different slide durations "
                             f"({self.slide_ms} ms and {other.slide_ms} ms)")
        return TransformedDStream(self.ssc, [self, other], lambda dss, t: fn(dss[0], dss[1]), kind)

    def union(self, other: "DStream") -> "DStream":
        """Records of this stream, then of ``other``, per batch."""
        from .transformed import UnionDStream
        return UnionDStream(self.ssc, [self, other])

    def join(self, other: "DStream", numPartitions: int | None = None) -> "DStream":
        n = self.resolve_partitions(numPartitions)
        return self.derive_with("join", other, lambda a, b: a.join(b, n))

    def left_outer_join(self, other: "DStream", numPartitions: int | None = None) -> "DStream":
        n = self.resolve_partitions(numPartitions)
        return self.derive_with("left_outer_join", other, lambda a, b: a.left_outer_join(b, n))

    def right_outer_join(self, other: "DStream", numPartitions: int | None = None) -> "DStream":
        n = self.resolve_partitions(numPartitions)
        return self.derive_with("right_outer_join", other, lambda a, b: a.right_outer_join(b, n))

    def full_outer_join(self, other: "DStream", numPartitions: int | None = None) -> "DStream":
        n = self.resolve_partitions(numPartitions)
        return self.derive_with("full_outer_join", other, lambda a, b: a.full_outer_join(b, n))

    def cogroup(self, other: "DStream", numPartitions: int | None = None) -> "DStream":
        n = self.resolve_partitions(numPartitions)
        return self.derive_with("cogroup", other, lambda a, b: a.cogroup(b, n))

    def transform(self, func: Callable) -> "DStream":
        """Apply ``func(rdd)`` or ``func(time, rdd)`` to every batch; it returns a Dataset."""
        from .transformed import TransformedDStream, per_batch_call
        return TransformedDStream(self.ssc, [self], per_batch_call(func, 1, "transform"), "transform", user_fn=func)

    def transform_with(self, func: Callable, other: "DStream", keepSerializer: bool = False) -> "DStream":
        """Apply ``func(rdd_a, rdd_b)`` or ``func(time, rdd_a, rdd_b)`` to both streams' batches."""
        from .transformed import TransformedDStream, per_batch_call
        return TransformedDStream(self.ssc, [self, other], per_batch_call(func, 2, "transformWith"),
                                  "transform_with", user_fn=func)

    # -- windows (window.py) ---------------------------------------------------------------
    def window(self, windowDuration: float, slideDuration: float | None = None) -> "DStream":
        """All records of the last ``windowDuration`` seconds, every ``slideDuration`` seconds."""
        from .window import window
        return window(self, windowDuration, slideDuration)

    def count_by_window(self, windowDuration: float, slideDuration: float) -> "DStream":
        """The number of records in each window (one record per window)."""
        from .window import count_by_window
        return count_by_window(self, windowDuration, slideDuration)

    def reduce_by_window(self, reduceFunc: Callable, invReduceFunc: Callable | None, windowDuration: float,
                         slideDuration: float) -> "DStream":
        """Reduce the records of each window, incrementally when ``invReduceFunc`` is given."""
        from .window import reduce_by_window
        return reduce_by_window(self, reduceFunc, invReduceFunc, windowDuration, slideDuration)

    def reduce_by_key_and_window(self, func: Callable, invFunc: Callable | None = None,
                                 windowDuration: float | None = None, slideDuration: float | None = None,
                                 numPartitions: int | None = None, filterFunc: Callable | None = None) -> "DStream":
        """reduceByKey over a sliding window; with ``invFunc``, incrementally (old ⊕ entering ⊖ leaving)."""
        from .window import reduce_by_key_and_window
        return reduce_by_key_and_window(self, func, invFunc, windowDuration, slideDuration, numPartitions,
                                        filterFunc)

    def count_by_value_and_window(self, windowDuration: float, slideDuration: float,
                                  numPartitions: int | None = None) -> "DStream":
        """(value, count) over a sliding window; counts that drop to 0 are removed."""
        from .window import count_by_value_and_window
        return count_by_value_and_window(self, windowDuration, slideDuration, numPartitions)

    def group_by_key_and_window(self, windowDuration: float, slideDuration: float,
                                numPartitions: int | None = None) -> "DStream":
        """(key, values in time order) over a sliding window."""
        from .window import group_by_key_and_window
        return group_by_key_and_window(self, windowDuration, slideDuration, numPartitions)

    # -- per-key state (state.py) ----------------------------------------------------------------
    def update_state_by_key(self, updateFunc: Callable, numPartitions: int | None = None,
                            initialRDD: Any = None, on_bad_record: str | None = None) -> "DStream":
        """Keep a state per key: ``updateFunc(new values, state or None) -> new state`` (None deletes).

        ``on_bad_record``: what a record the update cannot take does (a None
        for ``updaters.running_sum()``, a value ``updateFunc`` raises on):
        ``"fail"`` (the default, or the conf key
        ``runnel.streaming.state.onBadRecord``) fails its batch, and the state
        goes on from the last good batch; ``"dead_letter"`` leaves it out of
        the state and sends it with its error to ``.dead_letters()``.
        """
        from .state import update_state_by_key
        return update_state_by_key(self, updateFunc, numPartitions, initialRDD, on_bad_record)

    def map_with_state(self, spec: Any) -> "DStream":
        """Spark's mapWithState: ``spec = StateSpec.function(fn)``; fn(key, value, state) per new record."""
        from .state import map_with_state
        return map_with_state(self, spec)

    # -- looking back -------------------------------------------------------------------
    def slice(self, begin: datetime | float, end: datetime | float) -> list[Dataset]:
        """The remembered Datasets with times in [begin, end] (floored to the slide grid)."""
        b, e = _epoch_ms(begin), _epoch_ms(end)
        zero = self.graph.zero_ms
        if zero is None:
            raise RuntimeError(f"{self.name}: slice() needs a started StreamingContext")
        s = self.slide_ms
        first = zero + ((b - zero) // s) * s
        last = zero + ((e - zero) // s) * s
        out = []
        t = first
        while t <= last:
            if t in self.generated and self.generated[t] is not None:
                out.append(self.generated[t])
            t += s
        return out

    # -- the DataFrame face (runnel.frame) -------------------------------------------------------
    def to_frame(self, columns: Any = None, schema: Any = None):
        """A pandas-like :class:`~runnel.frame.StreamingDataFrame` of this stream's records.

        Records may be dicts, tuples (named by ``columns``), or whole batches
        (pandas, Arrow, dicts of NumPy arrays); ``schema`` (``{column: dtype}``)
        is checked on every batch, or inferred from the first batch with rows.
        """
        return self.ssc.frame.stream(self, columns, schema)     # the frame layer's face on the context

    def with_watermark(self, timestamp: Callable, delay: Any, idle_timeout: Any = None, unit: str = "s",
                       schema: Any = None, name: str | None = None, value: Callable | None = None):
        """Keyed ``(key, value)`` records with event time ``timestamp(record)`` and a watermark.

        The DStream face of ``StreamingDataFrame.with_watermark``: a watermarked
        frame with columns ``key``, ``value`` and ``ts`` (the extracted time), on
        which ``groupby("key").event_window(...)``, ``drop_duplicates`` and
        ``late_rows()`` work; ``.to_dstream()`` gives records back (tuples of the
        result's columns). ``schema`` gives the columns' dtypes (default: object
        keys, float64 values, int64 times counted in ``unit``; use
        ``{"ts": "datetime64[ms]"}`` for datetimes). ``value(record)``, if given, is
        the value column instead of the record's value (say, the amount of a
        ``(user, (ts, amount))`` record). The extractors run in Python, once per record.

        Examples
        --------
        >>> from runnel.frame import tumbling
        >>> sums = (pairs.with_watermark(lambda kv: kv[1][0], 5, value=lambda kv: kv[1][1])  # doctest: +SKIP
        ...              .groupby("key").event_window(tumbling(60)).agg(value=("value", "sum"))
        ...              .to_dstream())          # (key, window_start, window_end, sum) records
        """
        want = {"key": "object", "value": "float64", "ts": "int64"}
        want.update(dict(schema or {}))
        if not callable(timestamp):
            raise TypeError(f"with_watermark expects a function record -> event time, got {timestamp!r}")
        stamp = self.ship_function(_WithTime(timestamp, value))
        records = self.derive("with_timestamps", lambda ds: ds.map(stamp))
        frame = self.ssc.frame.stream(records, ("key", "value", "ts"), want)
        return frame.with_watermark("ts", delay, idle_timeout, unit, name)

    # -- outputs (outputs.py) ---------------------------------------------------------------
    def foreach_rdd(self, func: Callable) -> None:
        """Call ``func(rdd)`` or ``func(time, rdd)`` for every batch (an output operation)."""
        from .outputs import ForEachDStream
        if not callable(func):
            raise TypeError(f"foreachRDD expects a function, got {type(func).__name__}")
        if fn_arity(func) == 1:
            fn = (lambda f: lambda t, ds: f(ds))(func)
        else:
            fn = (lambda f: lambda t, ds: f(ms_to_datetime(t), ds))(func)
        ForEachDStream(self.ssc, self, fn, "foreachRDD", func)

    def pprint(self, num: int = 10) -> None:
        """Print the first ``num`` records of every batch (an output operation)."""
        from .outputs import ForEachDStream, pprint_batch
        ForEachDStream(self.ssc, self, lambda t, ds: pprint_batch(t, ds, num), "pprint", None)

    # -- exactly-once outputs (runnel/sinks.py) ------------------------------------------------
    def foreach_partition_transactional(self, fn: Callable) -> None:
        """Call ``fn(batch_time_ms, partition_index, records)`` per partition of every batch, in the driver.

        Time and index are the same when recovery re-runs a batch: build a unique id from
        them to skip work an earlier run committed (:func:`runnel.sinks.foreach_partition_transactional`).
        """
        from ..sinks import foreach_partition_transactional
        foreach_partition_transactional(self, fn)

    def save_to_parquet(self, path: str, columns: Any = None) -> None:
        """Save every batch into one Parquet table, a directory ``path/batch_time=<ms>`` per batch.

        A re-run batch replaces its directory (:func:`runnel.sinks.save_to_parquet`); read the
        table with :func:`runnel.sinks.read_parquet_table`.
        """
        from ..sinks import save_to_parquet
        save_to_parquet(self, path, columns)

    def save_to_sqlite(self, path: str, table: str, columns: Any = None) -> None:
        """Save every batch into SQLite ``table``, its rows and batch id in one transaction.

        A re-run batch replaces its rows (:func:`runnel.sinks.save_to_sqlite`).
        """
        from ..sinks import save_to_sqlite
        save_to_sqlite(self, path, table, columns)

    def save_to_kafka(self, topic: str, kafka_params: dict, *, key_serializer: Callable | None = None,
                      value_serializer: Callable | None = None, exactly_once: bool = True, offsets_from: Any = None,
                      name: str | None = None, lookback: int = 10_000, timeout: float = 60.0) -> None:
        """Write every batch's records to Kafka ``topic``: pairs as key and value, other records as values.

        An output operation on an idempotent producer, exactly once per batch across recoveries
        (records carry their batch and number; a re-run batch writes only what is missing). With
        ``transactional.id`` each batch is a transaction, with ``offsets_from``'s offsets in it.
        ``str`` is written UTF-8, numbers as text, anything else through a serializer.
        See :mod:`runnel.kafka.sink`.
        """
        from ..kafka.sink import KafkaWriter
        from .outputs import ForEachDStream
        writer = KafkaWriter(topic, kafka_params, name or self.name, key_serializer=key_serializer,
                             value_serializer=value_serializer, exactly_once=exactly_once,
                             offsets_from=offsets_from, timeout=timeout, lookback=lookback)
        ForEachDStream(self.ssc, self, writer, "saveToKafka", None, f"saveToKafka at {self.name} to {topic}")


def _epoch_ms(x: datetime | float) -> int:
    if isinstance(x, datetime):
        return int(round(x.timestamp() * 1000))
    return int(round(float(x) * 1000))


_SUM = Reducer(operator.add, op="sum")


class _WithTime:
    """A (key, value) record as (key, value or value(record), event time)."""

    def __init__(self, timestamp: Callable, value: Callable | None):
        self.timestamp, self.value = timestamp, value

    def __call__(self, record):
        key, value = record
        return key, (value if self.value is None else self.value(record)), self.timestamp(record)
