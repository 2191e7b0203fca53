"""Dataset: what a DStream holds for one batch time — partitions plus lineage.

The RDD-like API that ``transform`` and ``foreachRDD`` hand to user code.
Transformations are lazy: they build a plan (``runnel.plan``); actions run it
on the context's executor and read the resulting blocks.

Blocks have owners: a :class:`BlockOwner` releases its blocks when the last
plan or Dataset referring to them is gone, so a long run does not grow.
"""

from __future__ import annotations

import copy
import functools
import heapq
import math
import operator
import random
import sys
import types
import weakref
from typing import Any, Callable


import numpy as np

from . import keyed, ops
from .batch import Batch, column_take, column_to_list, concat_batches, infer_column
from .executors.shipping import ship
from .functions import Reducer, pair_with_constant, reducer_op, split_pattern
from .plan import Blocks, Cached, Plan, Planner, Product, ShuffleDep, Shuffled, Union, Zip, narrow
from .statcounter import StatCounter
from .storage.store import BlockRef


class BlockOwner:
    """Owns blocks in a store; releases them when closed, or (soon after) when garbage-collected.

    The garbage-collection path only queues the refs (``store.release_later``):
    a collection can run inside any allocation, including one made while this
    thread holds the store's lock, so a finalizer must never take that lock.
    """

    __slots__ = ("refs", "_store", "_finalizer", "__weakref__")

    def __init__(self, store, refs: list[BlockRef]):
        self.refs = refs
        self._store = store
        self._finalizer = weakref.finalize(self, store.release_later, list(refs))

    def release(self) -> None:
        if self._finalizer.detach() is not None:   # first release only
            self._store.release(self.refs)


class OwnedBlocks(Blocks):
    """A Blocks plan node that keeps its owner alive."""

    def __init__(self, owner: BlockOwner):
        super().__init__(owner.refs)
        self.owner = owner


def _check_fn(fn: Any, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"{what} expects a function, got {type(fn).__name__}: {fn!r}")


class Dataset:
    """A partitioned, immutable collection of records with lineage.

    Created by a :class:`~runnel.context.Context` (``parallelize``,
    ``textFile``) or handed to ``transform`` / ``foreachRDD`` functions.

    Examples
    --------
    >>> from runnel import Context
    >>> ctx = Context("local")
    >>> ds = ctx.parallelize(["a b", "b"], 2)
    >>> sorted(ds.flat_map(lambda l: l.split()).map(lambda w: (w, 1)).reduce_by_key(lambda a, b: a + b).collect())
    [('a', 1), ('b', 2)]
    """

    __class_getitem__ = classmethod(types.GenericAlias)   # RDD[int] in annotations

    def __init__(self, ctx, plan: Plan, label: str = "dataset"):
        self.ctx = ctx
        self.plan = plan
        self.label = label
        self._cache = False
        self._lineage: Plan | None = None  # the plan a cached dataset was computed from

    # -- internals ----------------------------------------------------------
    def _derive(self, plan: Plan) -> "Dataset":
        return Dataset(self.ctx, plan, self.label)

    def dependency(self) -> Plan:
        """The plan datasets derived from this one build on.

        A cached dataset not computed yet is referred to, not copied: the plan
        it is read from is decided when a derived dataset runs, so outputs
        built before the first one ran still read its blocks.
        """
        if self._cache and not isinstance(self.plan, Blocks):
            return Cached(self)
        return self.plan

    def narrow(self, op) -> "Dataset":
        """A Dataset of ``op(index, batch)`` for every partition: the narrow primitive.

        ``op`` is a partition op — a picklable callable taking the partition's
        index and its :class:`~runnel.batch.Batch`, returning a Batch (see
        :mod:`runnel.plan`). Narrow steps chained this way run fused in one task
        per partition.
        """
        return self._derive(narrow(self.dependency(), op))

    def shuffle(self, deps: list[ShuffleDep], n: int, reduce_op) -> "Dataset":
        """A Dataset of ``n`` partitions built by a shuffle: the wide primitive.

        Each :class:`~runnel.plan.ShuffleDep` pairs a parent's plan (its
        :meth:`dependency`) with a map op ``op(index, batch, n)`` returning ``n``
        bucket Batches; partition j of the result is
        ``reduce_op(j, [buckets j of every map task, per dep])``.
        """
        return self._derive(Shuffled(deps, n, reduce_op))

    def materialize(self) -> tuple[list[BlockRef], BlockOwner | None]:
        """Compute the Dataset now: the blocks of every partition, and their owner when they are temporary.

        A cached Dataset becomes its blocks (its plan is then ``Blocks``) and the
        owner is None; otherwise the caller releases the owner (``owner.release()``)
        once it has read the blocks.
        """
        if isinstance(self.plan, Blocks):
            return self.plan.refs, None
        refs = Planner(self.ctx.executor, self.label).materialize(self.plan)
        if self._cache:
            self._adopt(refs)
            return refs, None
        return refs, BlockOwner(self.ctx.executor.store, refs)

    def describe_stages(self) -> str:
        """The stages computing this Dataset, one line each, with the executor kind each runs on.

        Compiling runs nothing. On ``local[N]`` a stage of kernels says
        ``[threads]`` and one running user Python per record ``[processes]``
        (see :mod:`runnel.executors.kinds`).

        Examples
        --------
        >>> from runnel import Context
        >>> ctx = Context("local")
        >>> print(ctx.parallelize([("a", 1), ("b", 2)], 2).reduce_by_key(lambda a, b: a + b).describe_stages())
        stage 0 [serial] parallelize, shuffle map: 2 tasks
        stage 1 [serial] parallelize: 2 tasks <- stage 0
        >>> ctx.stop()
        """
        return Planner(self.ctx.executor, self.label).compile(self.plan).describe()

    def _adopt(self, refs: list[BlockRef]) -> None:
        """Become these blocks (a cached Dataset computed, here or inside another Dataset's tasks)."""
        self._lineage, self.plan = self.plan, OwnedBlocks(BlockOwner(self.ctx.executor.store, refs))

    def collect_batches(self) -> list[Batch]:
        """Compute the Dataset and return its partitions' Batches, in partition order (on the driver)."""
        refs, owner = self.materialize()
        try:
            return [self.ctx.executor.store.get(r) for r in refs]
        finally:
            if owner is not None:
                owner.release()

    def resolve_partitions(self, num_partitions: int | None) -> int:
        """``num_partitions`` checked (at least 1), or this Dataset's own partition count when None."""
        if num_partitions is None:
            return max(1, self.plan.num_partitions)
        n = int(num_partitions)
        if n < 1:
            raise ValueError(f"numPartitions must be at least 1, got {num_partitions!r}")
        return n

    # -- lifecycle ------------------------------------------------------------
    def cache(self) -> "Dataset":
        """Keep this dataset's blocks once computed (until it is garbage)."""
        self._cache = True
        return self

    def persist(self, storage_level: Any = None) -> "Dataset":
        """Same as :meth:`cache` (the block store decides where blocks live)."""
        return self.cache()

    def unpersist(self, blocking: bool = False) -> "Dataset":
        self._cache = False
        if self._lineage is not None:  # drop the cached blocks, recompute from lineage next time
            self.plan.owner.release()
            self.plan, self._lineage = self._lineage, None
        return self

    @property
    def is_cached(self) -> bool:
        return self._cache

    @property
    def context(self):
        """The :class:`~runnel.context.Context` this dataset runs on (PySpark's ``rdd.context``)."""
        return self.ctx

    spark_context = context

    def get_num_partitions(self) -> int:
        """Number of partitions."""
        return self.plan.num_partitions

    # -- narrow transformations -----------------------------------------------
    def map(self, f: Callable) -> "Dataset":
        """Apply ``f`` to every record."""
        _check_fn(f, "map")
        is_pair, const = pair_with_constant(f)
        if is_pair:
            return self.narrow(ops.PairWithConstant(const))
        return self.narrow(ops.MapRecords(ship(f)))

    def flat_map(self, f: Callable) -> "Dataset":
        """Apply ``f`` to every record and flatten the iterables it returns."""
        _check_fn(f, "flatMap")
        is_split, sep = split_pattern(f)
        if is_split:
            return self.narrow(ops.SplitWords(sep, ship(f)))
        return self.narrow(ops.FlatMapRecords(ship(f)))

    def filter(self, f: Callable) -> "Dataset":
        """Keep the records for which ``f`` is true."""
        _check_fn(f, "filter")
        return self.narrow(ops.FilterRecords(ship(f)))

    def map_partitions(self, f: Callable, preserves_partitioning: bool = False) -> "Dataset":
        """Call ``f(iterator)`` once per partition; it returns an iterable."""
        _check_fn(f, "mapPartitions")
        return self.narrow(ops.MapPartitionRecords(ship(f)))

    def map_partitions_with_index(self, f: Callable, preserves_partitioning: bool = False) -> "Dataset":
        """Call ``f(index, iterator)`` once per partition."""
        _check_fn(f, "mapPartitionsWithIndex")
        return self.narrow(ops.MapPartitionRecords(ship(f), with_index=True))

    def map_batches(self, f: Callable, format: str = "pandas") -> "Dataset":
        """Apply a vectorised function to each partition as a whole.

        ``f`` gets a pandas DataFrame (``format="pandas"``), a pyarrow Table
        (``"arrow"``) or a dict of NumPy/Arrow arrays (``"dict"``) and returns
        any of those (or records).
        """
        _check_fn(f, "map_batches")
        if format not in ("pandas", "arrow", "dict"):
            raise ValueError(f"map_batches format must be 'pandas', 'arrow' or 'dict', got {format!r}")
        return self.narrow(ops.MapBatches(ship(f), format))

    def glom(self) -> "Dataset":
        """One list per partition."""
        return self.narrow(ops.Glom())

    def map_values(self, f: Callable) -> "Dataset":
        """Apply ``f`` to the value of every pair, keeping the key."""
        _check_fn(f, "mapValues")
        return self.narrow(ops.MapValues(ship(f)))

    def flat_map_values(self, f: Callable) -> "Dataset":
        _check_fn(f, "flatMapValues")
        return self.narrow(ops.FlatMapValues(ship(f)))

    def keys(self) -> "Dataset":
        return self.narrow(ops.Select(0))

    def values(self) -> "Dataset":
        return self.narrow(ops.Select(1))

    def union(self, other: "Dataset") -> "Dataset":
        """Records of self, then of other (partitions concatenated)."""
        return self._derive(Union([self.dependency(), other.dependency()]))

    def zip_partitions(self, others: list["Dataset"], op) -> "Dataset":
        """Partition i is ``op(i, [partition i of self, of others[0], ...])``, without a shuffle.

        For datasets partitioned alike (the same key hash and count), such as a
        state table and the new data shuffled to join it.
        """
        return self._derive(Zip([self.dependency()] + [o.dependency() for o in others], op))

    def cartesian(self, other: "Dataset") -> "Dataset":
        return self._derive(Product(self.dependency(), other.dependency(), ops.CartesianPair()))

    # -- wide transformations -------------------------------------------------
    def reduce_by_key(self, func: Callable, num_partitions: int | None = None) -> "Dataset":
        """Merge the values of each key with an associative function.

        ``operator.add``, ``lambda a, b: a + b``, ``min`` and ``max`` run as
        kernels; other functions are compiled with Numba when possible.
        """
        _check_fn(func, "reduceByKey")
        return self.reduce_by_key_with(Reducer.of(func, ship), num_partitions)

    def reduce_by_key_with(self, reducer: Reducer, num_partitions: int | None = None,
                           sort_keys: bool = False) -> "Dataset":
        """reduceByKey with a prepared Reducer; ``sort_keys``: partitions may come out sorted by key
        instead of in first-appearance order (internal tables: see ``keyed.reduce_partition``)."""
        n = self.resolve_partitions(num_partitions)
        return self.shuffle([ShuffleDep(self.dependency(), ops.CombineBuckets(reducer, sort_keys))], n,
                             ops.MergeReduce(reducer, sort_keys))

    def group_by_key(self, num_partitions: int | None = None) -> "Dataset":
        """(key, list of values in arrival order)."""
        return self.shuffle([ShuffleDep(self.dependency(), ops.HashBuckets())], self.resolve_partitions(num_partitions), ops.GroupReduce())

    def combine_by_key(self, create_combiner: Callable, merge_value: Callable, merge_combiners: Callable,
                       num_partitions: int | None = None) -> "Dataset":
        for f, w in ((create_combiner, "createCombiner"), (merge_value, "mergeValue"),
                     (merge_combiners, "mergeCombiners")):
            _check_fn(f, w)
        return self.shuffle([ShuffleDep(self.dependency(), ops.CombinerBuckets(ship(create_combiner), ship(merge_value)))],
                             self.resolve_partitions(num_partitions), ops.CombinerReduce(ship(merge_combiners)))

    def partition_by(self, num_partitions: int, partition_func: Callable | None = None) -> "Dataset":
        """Partition pairs by key: ``partition_func(key) % n``, by default PySpark's ``portable_hash``.

        The default puts int, float, None and tuple keys where PySpark does, so
        ``glom()`` shows the same partitions; strings are placed by a stable hash
        instead of PySpark's salted one (:mod:`runnel.partitioners`).
        """
        buckets = ops.PortableHashBuckets() if partition_func is None else ops.FuncBuckets(ship(partition_func))
        return self.shuffle([ShuffleDep(self.dependency(), buckets)], self.resolve_partitions(num_partitions), ops.Concat())

    def hash_partition(self, num_partitions: int) -> "Dataset":
        """Partition pairs by the engine's stable key hash: where reduceByKey, joins and state tables
        put each key, so the result can be zipped with them partition by partition."""
        return self.shuffle([ShuffleDep(self.dependency(), ops.HashBuckets())], self.resolve_partitions(num_partitions), ops.Concat())

    def repartition(self, num_partitions: int) -> "Dataset":
        """Redistribute records into nearly equal partitions, keeping their order."""
        return self.shuffle([ShuffleDep(self.dependency(), ops.EvenBuckets())], self.resolve_partitions(num_partitions), ops.Concat())

    def coalesce(self, num_partitions: int, shuffle: bool = False) -> "Dataset":
        return self.repartition(num_partitions)

    def reduce_all(self, reducer: Reducer) -> "Dataset":
        """One partition holding the reduction of every record (empty if there are none)."""
        return self.shuffle([ShuffleDep(self.dependency(), ops.EvenBuckets())], 1, ops.ReduceConcat(reducer))

    def _join(self, other: "Dataset", how: str, num_partitions: int | None) -> "Dataset":
        n = self.resolve_partitions(num_partitions) if num_partitions else max(self.plan.num_partitions, other.plan.num_partitions, 1)
        deps = [ShuffleDep(self.dependency(), ops.HashBuckets()), ShuffleDep(other.dependency(), ops.HashBuckets())]
        return self.shuffle(deps, n, ops.JoinReduce(how))

    def join(self, other: "Dataset", num_partitions: int | None = None) -> "Dataset":
        """Inner join of pairs: (k, (v, w))."""
        return self._join(other, "inner", num_partitions)

    def left_outer_join(self, other: "Dataset", num_partitions: int | None = None) -> "Dataset":
        return self._join(other, "left", num_partitions)

    def right_outer_join(self, other: "Dataset", num_partitions: int | None = None) -> "Dataset":
        return self._join(other, "right", num_partitions)

    def full_outer_join(self, other: "Dataset", num_partitions: int | None = None) -> "Dataset":
        return self._join(other, "full", num_partitions)

    def cogroup(self, other: "Dataset", num_partitions: int | None = None) -> "Dataset":
        """(k, (values of self, values of other)) with a list per side."""
        n = self.resolve_partitions(num_partitions) if num_partitions else max(self.plan.num_partitions, other.plan.num_partitions, 1)
        deps = [ShuffleDep(self.dependency(), ops.HashBuckets()), ShuffleDep(other.dependency(), ops.HashBuckets())]
        return self.shuffle(deps, n, ops.CogroupReduce())

    def count_by_value_stream(self, num_partitions: int | None = None) -> "Dataset":
        """(value, count) pairs (a transformation; the DStream countByValue)."""
        return self.narrow(ops.PairWithConstant(1)).reduce_by_key_with(Reducer(ship(_add), op="sum"),
                                                                        num_partitions)

    def sort_by(self, keyfunc: Callable, ascending: bool = True, num_partitions: int | None = None) -> "Dataset":
        """Sort records by ``keyfunc``; partitions hold contiguous key ranges."""
        _check_fn(keyfunc, "sortBy")
        n = self.resolve_partitions(num_partitions)
        keys = sorted(keyfunc(r) for r in self.collect())
        bounds = [keys[(i * len(keys)) // n] for i in range(1, n)] if keys else []
        kf = ship(keyfunc)
        return self.shuffle([ShuffleDep(self.dependency(), ops.RangeBuckets(kf, bounds, ascending))], n,
                             ops.SortReduce(kf, ascending))

    def sort_by_key(self, ascending: bool = True, num_partitions: int | None = None,
                    keyfunc: Callable = lambda k: k) -> "Dataset":
        return self.sort_by(lambda kv: keyfunc(kv[0]), ascending, num_partitions)

    # -- actions ----------------------------------------------------------------
    def collect(self) -> list:
        """All records, as native Python values, in partition order."""
        out: list = []
        for b in self.collect_batches():
            out.extend(b.to_records())
        return out

    def to_batch(self) -> Batch:
        """All partitions concatenated into one Batch."""
        return concat_batches(self.collect_batches())

    def to_pandas(self):
        """All records as one pandas DataFrame (columns of the batch)."""
        return self.to_batch().to_pandas()

    def to_arrow(self):
        return self.to_batch().to_arrow()

    def count(self) -> int:
        """Number of records (read from block metadata: no data is moved)."""
        refs, owner = self.materialize()
        try:
            return int(sum(r.nrows for r in refs))
        finally:
            if owner is not None:
                owner.release()

    def take(self, num: int) -> list:
        """The first ``num`` records."""
        out: list = []
        for b in self.collect_batches():
            if len(out) >= num:
                break
            out.extend(b.slice(0, num - len(out)).to_records())
        return out[:num]

    def first(self) -> Any:
        rs = self.take(1)
        if not rs:
            raise ValueError("RDD is empty")
        return rs[0]

    def is_empty(self) -> bool:
        return self.count() == 0

    def reduce(self, f: Callable) -> Any:
        """Reduce all records with ``f``; raises ValueError on an empty dataset."""
        _check_fn(f, "reduce")
        parts = self.narrow(ops.ReducePartition(Reducer.of(f, ship))).collect()
        if not parts:
            raise ValueError("Can not reduce() empty RDD")
        return functools.reduce(f, parts)

    def count_by_value(self) -> dict:
        return dict(self.count_by_value_stream().collect())

    def count_by_key(self) -> dict:
        return dict(self.keys().count_by_value_stream().collect())

    def collect_as_map(self) -> dict:
        return dict(self.collect())

    def foreach(self, f: Callable) -> None:
        for r in self.collect():
            f(r)

    def foreach_partition(self, f: Callable) -> None:
        for part in self.glom().collect():
            f(iter(part))

    # -- PySpark RDD methods, composed from the primitives above ---------------------------
    # Each computes what PySpark's method of the same name computes, the same way where
    # the order of floating-point operations or of equal elements shows (sum, stats, top).

    def key_by(self, f: Callable) -> "Dataset":
        """``(f(x), x)`` for every record."""
        _check_fn(f, "keyBy")
        return self.map(lambda x: (f(x), x))

    def zip_with_index(self) -> "Dataset":
        """``(x, i)``: records numbered in partition order from 0.

        Runs one job to count each partition (read from block metadata), as
        PySpark does, then numbers them lazily.
        """
        refs, owner = self.materialize()
        counts = [r.nrows for r in refs]
        if owner is not None:
            owner.release()
        starts = [0]
        for c in counts[:-1]:
            starts.append(starts[-1] + c)
        return self.map_partitions_with_index(
            lambda k, it: ((x, starts[k] + i) for i, x in enumerate(it)))

    def distinct(self, num_partitions: int | None = None) -> "Dataset":
        """Each distinct record once (a reduce-by-key that keeps the first)."""
        return self.narrow(ops.PairWithConstant(None)).reduce_by_key_with(
            Reducer(ship(_first), op="first"), num_partitions).keys()

    def sample(self, with_replacement: bool, fraction: float, seed: int | None = None) -> "Dataset":
        """A random sample: each record kept with probability ``fraction``, or (with replacement)
        repeated a Poisson(``fraction``) number of times.

        With a seed, partition i draws from ``random.Random(seed ^ i)`` as PySpark
        does, so a seeded sample of the same partitions picks the same records.
        """
        if not fraction >= 0:
            raise ValueError(f"Fraction must be nonnegative, got {fraction!r}")
        seed = random.randint(0, sys.maxsize) if seed is None else int(seed)
        return self.map_partitions_with_index(_Sampler(bool(with_replacement), float(fraction), seed))

    def aggregate_by_key(self, zero_value: Any, seq_func: Callable, comb_func: Callable,
                         num_partitions: int | None = None, partition_func: Callable | None = None) -> "Dataset":
        """Per key: fold values into a copy of ``zero_value`` with ``seq_func`` (per partition),
        merge the partial results with ``comb_func``. ``partition_func`` is accepted for PySpark's
        signature; results are placed by the engine's hash."""
        _check_fn(seq_func, "aggregateByKey")
        _check_fn(comb_func, "aggregateByKey")
        return self.combine_by_key(lambda v: seq_func(copy.deepcopy(zero_value), v), seq_func, comb_func,
                                   num_partitions)

    def fold_by_key(self, zero_value: Any, func: Callable, num_partitions: int | None = None,
                    partition_func: Callable | None = None) -> "Dataset":
        """Per key: fold values into a copy of ``zero_value`` per partition, then merge with ``func``.

        The zero counts once per key and partition, as in PySpark. With an int
        zero of 0 and an addition (``operator.add``, ``lambda a, b: a + b``),
        partitions whose values are numbers are summed on the kernels (0 + v
        is v there, booleans counting as ints); other values are folded in
        Python from the zero, so ``0 + "a"`` raises TypeError as in PySpark.
        """
        _check_fn(func, "foldByKey")
        reducer = Reducer.of(func, ship) if reducer_op(func) == "sum" else None
        if reducer is not None and type(zero_value) is int and zero_value == 0:
            return self.narrow(_FoldFromZero(ship(func))).reduce_by_key_with(reducer, num_partitions)
        return self.combine_by_key(lambda v: func(copy.deepcopy(zero_value), v), func, func, num_partitions)

    # actions
    def sum(self) -> Any:
        """Sum of the records: each partition with ``sum()``, then the partials in order (0 if empty)."""
        return functools.reduce(operator.add, self.map_partitions(lambda it: [sum(it)]).collect(), 0)

    def max(self, key: Callable | None = None) -> Any:
        """The largest record (the first of equal ones, by ``key``); ValueError if empty."""
        return self.reduce(max) if key is None else self._reduce_in_python(lambda a, b: max(a, b, key=key))

    def min(self, key: Callable | None = None) -> Any:
        """The smallest record (the first of equal ones, by ``key``); ValueError if empty."""
        return self.reduce(min) if key is None else self._reduce_in_python(lambda a, b: min(a, b, key=key))

    def _reduce_in_python(self, f: Callable) -> Any:
        """:meth:`reduce` for a function known not to compile (no fallback warning)."""
        parts = self.map_partitions(lambda it: _reduced(f, it)).collect()
        if not parts:
            raise ValueError("Can not reduce() empty RDD")
        return functools.reduce(f, parts)

    def stats(self) -> StatCounter:
        """Count, mean, variance, min and max in one pass (a :class:`~runnel.statcounter.StatCounter`)."""
        parts = self.map_partitions(lambda it: [StatCounter(it)]).collect()
        return functools.reduce(lambda a, b: a.mergeStats(b), parts, StatCounter())

    def mean(self) -> float:
        """The mean of the (numeric) records, from :meth:`stats` (0.0 if empty, as PySpark's StatCounter)."""
        return self.stats().mean()

    def variance(self) -> float:
        """The population variance of the records (divided by n; nan if empty), from :meth:`stats`."""
        return self.stats().variance()

    def stdev(self) -> float:
        """The population standard deviation (square root of :meth:`variance`; nan if empty)."""
        return self.stats().stdev()

    def sample_variance(self) -> float:
        """The sample variance (divided by n - 1; nan for fewer than two records), from :meth:`stats`."""
        return self.stats().sampleVariance()

    def sample_stdev(self) -> float:
        """The sample standard deviation (square root of :meth:`sample_variance`)."""
        return self.stats().sampleStdev()

    def top(self, num: int, key: Callable | None = None) -> list:
        """The ``num`` largest records, largest first (equal ones in record order)."""
        part = self.map_partitions(lambda it: heapq.nlargest(num, it, key=key)).collect()
        return heapq.nlargest(num, part, key=key)

    def take_ordered(self, num: int, key: Callable | None = None) -> list:
        """The ``num`` smallest records, smallest first (equal ones in record order)."""
        part = self.map_partitions(lambda it: heapq.nsmallest(num, it, key=key)).collect()
        return heapq.nsmallest(num, part, key=key)

    def save_as_text_file(self, path: str, compression_codec_class: str | None = None) -> None:
        """Write a directory ``path`` of ``part-NNNNN`` text files (``str(record)`` per line) and
        ``_SUCCESS``; FileExistsError if it exists, as in Spark. Read back with ``textFile``."""
        from .partfiles import save_dataset_as_text
        if compression_codec_class is not None:
            raise NotImplementedError("saveAsTextFile: compressed output is not supported")
        save_dataset_as_text(self, path)

    def __repr__(self) -> str:
        return f"Dataset({self.label}, {self.get_num_partitions()} partitions)"


class _FoldFromZero:
    """The map side of ``foldByKey(0, add)`` before a kernel sum: numbers pass (0 + v is v for them,
    with booleans as ints and -0.0 as 0.0), other values are folded per key from 0 with ``func``."""

    def __init__(self, func: Callable):
        self.func = func

    def __call__(self, index: int, batch: Batch) -> Batch:
        if len(batch) == 0:
            return batch
        keys, values = keyed.key_column(batch), keyed.value_column(batch)
        if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
            return batch
        if isinstance(values, np.ndarray) and values.dtype.kind in "bf":
            return Batch({"key": keys, "value": values.astype(np.int64) if values.dtype.kind == "b" else values + 0.0},
                         ("key", "value"))
        codes, first = keyed.factorize(keys)
        folded: list = [0] * len(first)
        for code, v in zip(codes.tolist(), column_to_list(values)):
            folded[code] = self.func(folded[code], v)
        return Batch({"key": column_take(keys, first), "value": infer_column(folded)}, ("key", "value"))


class _Sampler:
    """PySpark's per-partition sampler: ``random.Random(seed ^ index)``, warmed with ten draws."""

    def __init__(self, with_replacement: bool, fraction: float, seed: int):
        self.with_replacement, self.fraction, self.seed = with_replacement, fraction, seed

    def __call__(self, index: int, records):
        rng = random.Random(self.seed ^ index)
        for _ in range(10):          # neighbouring seeds give correlated first draws
            rng.randint(0, 1)
        if not self.with_replacement:
            return (x for x in records if rng.random() < self.fraction)
        return (x for x in records for _ in range(_poisson(rng, self.fraction)))


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson(mean) count: Knuth's product of uniforms below 20, sums of exponentials above."""
    k = 0
    if mean < 20.0:
        limit, p = math.exp(-mean), rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
    else:
        p = rng.expovariate(mean)
        while p < 1.0:
            k += 1
            p += rng.expovariate(mean)
    return k


def _reduced(f: Callable, records) -> list:
    """``[reduce(f, records)]``, or ``[]`` for no records."""
    it = iter(records)
    for first in it:
        return [functools.reduce(f, it, first)]
    return []


def _add(a, b):
    return a + b


def _first(a, b):
    return a


def split_slices(n: int, k: int) -> list[tuple[int, int]]:
    """PySpark's parallelize split of a range: slice i is [i*n//k, (i+1)*n//k)."""
    return [(i * n // k, (i + 1) * n // k) for i in range(k)]


def batched_slices(n: int, k: int) -> list[tuple[int, int]]:
    """PySpark's parallelize split of a list (or array) of n records into k slices.

    PySpark serialises the list in chunks of ``b = max(1, min(n // k, 1024))``
    records and the JVM splits the m chunks as a range (slice i gets chunks
    ``[i*m//k, (i+1)*m//k)``): ``[1, 2, 3]`` in 5 slices is
    ``[[], [1], [], [2], [3]]``, ``list(range(10))`` in 4 is
    ``[[0, 1], [2, 3], [4, 5], [6, 7, 8, 9]]``.
    """
    b = max(1, min(n // k, 1024))
    m = -(-n // b)
    return [(min(i * m // k * b, n), min((i + 1) * m // k * b, n)) for i in range(k)]
