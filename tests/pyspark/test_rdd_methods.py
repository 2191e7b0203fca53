"""PySpark's RDD methods on runnel's Dataset, against plain Python doing what PySpark does.

The reference splits the input as ``parallelize`` does (``batched_slices``)
wherever PySpark's answer depends on the partitions (a fold's zero counts
once per partition; sums add per-partition partials).
"""

from __future__ import annotations

import functools
import math
import operator
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from runnel.dataset import batched_slices
from runnel.partitioners import int_hashes, portable_hash
from runnel.statcounter import StatCounter

PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ints = st.lists(st.integers(-1000, 1000), max_size=40)
floats = st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=40)
parts = st.integers(1, 4)
pairs = st.lists(st.tuples(st.sampled_from("abcde"), st.integers(-50, 50)), max_size=40)


def same(a, b):
    return a == b or (math.isnan(a) and math.isnan(b))


def slices(data, k):
    return [data[a:b] for a, b in batched_slices(len(data), k)]


@PROPS
@given(data=ints, k=parts, num=st.integers(0, 8))
def test_top_and_take_ordered_are_sorted_prefixes(ctx, data, k, num):
    rdd = ctx.parallelize(data, k)
    assert rdd.top(num) == sorted(data, reverse=True)[:num]
    assert rdd.takeOrdered(num) == sorted(data)[:num]
    assert rdd.top(num, key=lambda x: x % 7) == sorted(data, key=lambda x: x % 7, reverse=True)[:num]
    assert rdd.take_ordered(num, key=abs) == sorted(data, key=abs)[:num]


@PROPS
@given(data=ints, k=parts)
def test_key_by_zip_with_index_distinct(ctx, data, k):
    rdd = ctx.parallelize(data, k)
    assert rdd.keyBy(lambda x: x % 3).collect() == [(x % 3, x) for x in data]
    assert rdd.zipWithIndex().collect() == [(x, i) for i, x in enumerate(data)]
    assert rdd.zip_with_index().glom().collect() == \
        [[(x, a + j) for j, x in enumerate(data[a:b])] for a, b in batched_slices(len(data), k)]
    assert sorted(rdd.distinct().collect()) == sorted(set(data))
    assert sorted(rdd.distinct(3).collect()) == sorted(set(data))


@PROPS
@given(data=pairs, k=parts, zero=st.integers(-3, 3))
def test_fold_by_key_counts_the_zero_once_per_key_and_partition(ctx, data, k, zero):
    expected: dict = {}
    for part in slices(data, k):
        partial: dict = {}
        for key, v in part:
            partial[key] = partial.get(key, zero) + v
        for key, v in partial.items():
            expected[key] = expected[key] + v if key in expected else v
    rdd = ctx.parallelize(data, k)
    assert dict(rdd.foldByKey(zero, operator.add).collect()) == expected
    assert dict(rdd.fold_by_key(zero, lambda a, b: a + b, 2).collect()) == expected


def test_fold_by_key_with_zero_and_add_adds_the_zero_to_non_numeric_values_as_pyspark(ctx):
    # 0 + "a" raises in PySpark; the kernel sum must not turn the fold into a concatenation
    from runnel.executors.base import TaskFailed

    strings = ctx.parallelize([("k", "a"), ("k", "b")], 1)
    with pytest.raises(TaskFailed, match="TypeError: unsupported operand"):
        strings.foldByKey(0, operator.add).collect()
    with pytest.raises(TaskFailed, match="TypeError: unsupported operand"):
        ctx.parallelize([("k", "a")], 1).fold_by_key(0, lambda a, b: a + b).collect()
    # the zero is added once per key and partition, so a value type that defines 0 + v folds as PySpark
    class Tally:
        def __init__(self, n):
            self.n = n

        def __add__(self, other):
            return Tally(self.n + (other.n if isinstance(other, Tally) else other))

        __radd__ = __add__

    got = ctx.parallelize([("k", Tally(1)), ("k", Tally(2)), ("j", Tally(5))], 2).foldByKey(0, operator.add)
    assert sorted((k, t.n) for k, t in got.collect()) == [("j", 5), ("k", 3)]
    # numbers: 0 + v, so booleans count and a lone -0.0 becomes 0.0, as folding in Python gives
    bools = ctx.parallelize([("t", True), ("t", True), ("f", False)], 2).foldByKey(0, operator.add).collect()
    assert sorted(bools) == [("f", 0), ("t", 2)] and all(type(v) is int for _, v in bools)
    zero = ctx.parallelize([("z", -0.0)], 1).foldByKey(0, operator.add).collect()
    assert zero == [("z", 0.0)] and math.copysign(1, zero[0][1]) == 1.0


@PROPS
@given(data=st.lists(st.tuples(st.sampled_from("abc"), st.floats(-1e3, 1e3) | st.booleans()), max_size=30),
       k=parts)
def test_fold_by_key_zero_add_on_numbers_matches_a_python_fold(ctx, data, k):
    expected: dict = {}
    for part in slices(data, k):
        partial: dict = {}
        for key, v in part:
            partial[key] = partial.get(key, 0) + v
        for key, v in partial.items():
            expected[key] = expected[key] + v if key in expected else v
    got = dict(ctx.parallelize(data, k).foldByKey(0, operator.add).collect())
    assert got.keys() == expected.keys()
    assert all(math.isclose(got[key], expected[key], rel_tol=1e-9, abs_tol=1e-9) for key in got)


@PROPS
@given(data=pairs, k=parts)
def test_aggregate_by_key_copies_the_zero(ctx, data, k):
    rdd = ctx.parallelize(data, k)
    # the zero is a mutable list that seqFunc mutates: each key and partition needs its own copy
    got = dict(rdd.aggregateByKey([], lambda acc, v: acc.append(v) or acc, lambda a, b: a + b).collect())
    expected: dict = {}
    for key, v in data:
        expected.setdefault(key, []).append(v)
    assert {key: sorted(vs) for key, vs in got.items()} == {key: sorted(vs) for key, vs in expected.items()}
    sums = dict(rdd.aggregate_by_key((0, 0), lambda a, v: (a[0] + v, a[1] + 1),
                                     lambda a, b: (a[0] + b[0], a[1] + b[1])).collect())
    assert sums == {key: (sum(vs), len(vs)) for key, vs in expected.items()}


@PROPS
@given(data=floats, k=parts)
def test_sum_adds_partition_sums_in_order_as_pyspark(ctx, data, k):
    # PySpark: mapPartitions(lambda x: [sum(x)]).fold(0, operator.add)
    expected = functools.reduce(operator.add, [sum(p) for p in slices(data, k)], 0)
    got = ctx.parallelize(data, k).sum()
    assert got == expected and type(got) is type(expected)


@PROPS
@given(data=floats, k=parts)
def test_stats_match_a_statcounter_merged_per_partition(ctx, data, k):
    expected = functools.reduce(lambda a, b: a.mergeStats(b), [StatCounter(p) for p in slices(data, k)],
                                StatCounter())
    got = ctx.parallelize(data, k).stats()
    assert (got.count(), got.mean(), got.max(), got.min()) == \
           (expected.count(), expected.mean(), expected.max(), expected.min())
    assert same(got.variance(), expected.variance()) and same(got.sampleVariance(), expected.sampleVariance())
    if data:
        assert got.count() == len(data) and got.mean() == pytest.approx(sum(data) / len(data), abs=1e-6)
        assert got.max() == max(data) and got.min() == min(data)
        assert got.variance() == pytest.approx(sum((x - sum(data) / len(data)) ** 2 for x in data) / len(data),
                                               rel=1e-6, abs=1e-3)
        rdd = ctx.parallelize(data, k)
        assert rdd.mean() == got.mean() and rdd.max() == max(data) and rdd.min() == min(data)
        assert same(rdd.stdev(), got.stdev()) and same(rdd.sampleStdev(), got.sampleStdev())


@PROPS
@given(data=ints, k=parts)
def test_max_min_with_key_keep_the_first_of_equals(ctx, data, k):
    rdd = ctx.parallelize(data, k)
    if not data:
        with pytest.raises(ValueError, match="empty"):
            rdd.max(key=abs)
        return
    assert rdd.max(key=lambda x: x % 5) == max(data, key=lambda x: x % 5)
    assert rdd.min(key=lambda x: x % 5) == min(data, key=lambda x: x % 5)


@PROPS
@given(data=st.lists(st.integers(0, 99), max_size=60), k=parts, fraction=st.floats(0, 3),
       seed=st.integers(0, 2 ** 40), replace=st.booleans())
def test_sample_draws_as_pyspark_per_partition(ctx, data, k, fraction, seed, replace):
    import random

    def reference(index, part):
        rng = random.Random(seed ^ index)
        for _ in range(10):
            rng.randint(0, 1)
        out = []
        for x in part:
            if not replace:
                if rng.random() < fraction:
                    out.append(x)
                continue
            n = 0
            if fraction < 20.0:
                limit, p = math.exp(-fraction), rng.random()
                while p > limit:
                    n += 1
                    p *= rng.random()
            out.extend([x] * n)
        return out

    expected = [x for i, p in enumerate(slices(data, k)) for x in reference(i, p)]
    assert ctx.parallelize(data, k).sample(replace, fraction, seed).collect() == expected


def test_sample_gives_pysparks_published_output(ctx):
    # printed by PySpark for sc.range(0, 100) on local[1] (one partition)
    rdd = ctx.parallelize(range(100), 1)
    assert rdd.sample(False, 0.1, 0).collect() == [24, 29, 41, 64, 86]
    assert rdd.sample(True, 0.3, 123).collect() == [0, 11, 13, 14, 16, 18, 21, 23, 27, 31, 32, 32, 48, 49, 49, 53,
                                                    54, 72, 74, 77, 77, 83, 88, 91, 93, 98, 99]
    with pytest.raises(ValueError, match="nonnegative"):
        rdd.sample(False, -0.1)
    assert len(rdd.sample(False, 0.5).collect()) < 100   # unseeded: some random half


def test_keys_and_values_of_two_element_lists(ctx):
    rdd = ctx.parallelize(["a,1", "b,2", "c,3"]).map(lambda line: line.split(","))
    assert rdd.values().collect() == ["1", "2", "3"]
    assert rdd.keys().collect() == ["a", "b", "c"]
    assert ctx.parallelize(["a,1"]).map(lambda l: l.split(",")).values().collect() == ["1"]
    assert ctx.parallelize([(1, 2, 3)]).values().collect() == [2]      # x[1], as PySpark
    assert ctx.parallelize([("k", "v")]).keys().collect() == ["k"]     # pairs stay columnar


def test_save_as_text_file_writes_parts_and_refuses_an_existing_directory(ctx, tmp_path):
    out = tmp_path / "words"
    ctx.parallelize(["a", "b", 3, (1, "x")], 2).saveAsTextFile(str(out))
    assert sorted(os.listdir(out)) == ["_SUCCESS", "part-00000", "part-00001"]
    assert (out / "part-00000").read_text() == "a\nb\n"
    assert (out / "part-00001").read_text() == "3\n(1, 'x')\n"
    assert ctx.textFile(str(out)).collect() == ["a", "b", "3", "(1, 'x')"]
    with pytest.raises(FileExistsError, match="already exists"):
        ctx.parallelize([1]).save_as_text_file(str(out))


def test_context_properties(ctx):
    rdd = ctx.parallelize([1])
    assert rdd.context is ctx and rdd.sparkContext is ctx and rdd.spark_context is ctx


# -- partitionBy's default partitioner is PySpark's portable_hash --------------------------------
def reference_portable_hash(x):
    """PySpark's portable_hash as documented (for keys without strings)."""
    if x is None:
        return 0
    if isinstance(x, tuple):
        h = 0x345678
        for i in x:
            h ^= reference_portable_hash(i)
            h *= 1000003
            h &= sys.maxsize
        h ^= len(x)
        if h == -1:
            h = -2
        return int(h)
    return hash(x)


keys = st.recursive(st.none() | st.integers(-2 ** 63, 2 ** 63 - 1) | st.booleans()
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.tuples(inner, inner), max_leaves=4)


@settings(max_examples=200, deadline=None)
@given(key=keys)
def test_portable_hash_is_pysparks_for_string_free_keys(key):
    assert portable_hash(key) == reference_portable_hash(key)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), max_size=30))
def test_vectorised_int_hash_is_pythons(values):
    import numpy as np
    assert int_hashes(np.array(values, dtype=np.int64)).tolist() == [hash(v) for v in values]


@PROPS
@given(data=st.lists(st.tuples(st.one_of(st.none(), st.integers(-10 ** 6, 10 ** 6),
                                         st.tuples(st.integers(-5, 5), st.none())), st.integers()), max_size=30),
       k=parts, n=st.integers(1, 5))
def test_partition_by_places_keys_as_pyspark(ctx, data, k, n):
    expected = [[] for _ in range(n)]
    for part in slices(data, k):          # PySpark's shuffle keeps map-partition order within a bucket
        for kv in part:
            expected[reference_portable_hash(kv[0]) % n].append(kv)
    assert ctx.parallelize(data, k).partitionBy(n).glom().collect() == expected


def test_partition_by_places_string_keys_stably(ctx):
    data = [(w, i) for i, w in enumerate("the quick brown fox jumps over the lazy dog".split())]
    got = ctx.parallelize(data, 3).partitionBy(4).glom().collect()
    assert sorted(kv for p in got for kv in p) == sorted(data)
    where = {kv[0]: i for i, p in enumerate(got) for kv in p}
    assert all(where[w] == portable_hash(w) % 4 for w, _ in data)   # 'the' twice: one partition
    # mixed with other key types, a string still lands where it does alone
    mixed = ctx.parallelize([("the", 0), (None, 1), (7, 2)], 1).partitionBy(4).glom().collect()
    assert ("the", 0) in mixed[where["the"]] and (None, 1) in mixed[0] and (7, 2) in mixed[3]


def test_new_methods_take_pysparks_keywords(ctx):
    import runnel.pyspark  # noqa: F401  (installs PySpark's keyword spellings)
    pairs = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
    assert sorted(pairs.foldByKey(zeroValue=0, func=operator.add, numPartitions=2).collect()) == [("a", 4), ("b", 2)]
    assert sorted(pairs.aggregateByKey(zeroValue=0, seqFunc=operator.add, combFunc=operator.add).collect()) == \
        [("a", 4), ("b", 2)]
    rdd = ctx.parallelize(range(100), 1)
    assert rdd.sample(withReplacement=False, fraction=0.1, seed=0).collect() == [24, 29, 41, 64, 86]
    assert rdd.takeOrdered(num=2, key=lambda x: -x) == [99, 98] and rdd.top(num=1) == [99]
