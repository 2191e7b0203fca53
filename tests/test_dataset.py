"""Dataset (RDD) operations on every executor, against PySpark's documented results."""

from __future__ import annotations

import operator
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from runnel import keyed
from runnel.testing import assert_batches_equal, keyed_records

PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def same(actual, expected, ordered=False):
    assert_batches_equal([actual], [expected], ordered=ordered)


# --- parallelize and partitions ---------------------------------------------------

@pytest.mark.parametrize("data,k,parts", [
    ([1, 2, 3], 5, [[], [1], [], [2], [3]]),
    (list(range(10)), 4, [[0, 1], [2, 3], [4, 5], [6, 7, 8, 9]]),
    (list(range(5)), 2, [[0, 1], [2, 3, 4]]),
    ([], 3, [[], [], []]),
    (["a", "b"], 1, [["a", "b"]]),
])
def test_parallelize_list_splits_like_pyspark(ctx, data, k, parts):
    assert ctx.parallelize(data, k).glom().collect() == parts


@pytest.mark.parametrize("n,k", [(10, 4), (5, 2), (3, 5), (0, 2), (7, 7)])
def test_parallelize_range_slice_i_holds_i_n_over_k(ctx, n, k):
    expected = [list(range(i * n // k, (i + 1) * n // k)) for i in range(k)]
    assert ctx.parallelize(range(n), k).glom().collect() == expected


def test_parallelize_default_uses_default_parallelism(ctx):
    ds = ctx.parallelize(list(range(8)))
    assert ds.get_num_partitions() == ctx.default_parallelism
    assert ds.collect() == list(range(8))


def test_parallelize_rejects_zero_slices(ctx):
    with pytest.raises(ValueError):
        ctx.parallelize([1], 0)


def test_glom_gives_one_list_per_partition(ctx):
    assert ctx.parallelize([("a", 1), ("b", 2)], 2).glom().collect() == [[("a", 1)], [("b", 2)]]
    assert ctx.parallelize([], 1).glom().collect() == [[]]


# --- narrow operations --------------------------------------------------------------

def test_map_filter_flat_map_keep_order(ctx):
    ds = ctx.parallelize(list(range(10)), 3)
    assert ds.map(lambda x: x * 2).collect() == [x * 2 for x in range(10)]
    assert ds.filter(lambda x: x % 3 == 0).collect() == [0, 3, 6, 9]
    assert ds.flat_map(lambda x: [x] * (x % 3)).collect() == [x for x in range(10) for _ in range(x % 3)]


def test_map_may_change_the_record_type(ctx):
    ds = ctx.parallelize([1, 2, 3], 2)
    same(ds.map(lambda x: (x, [x], str(x))).collect(), [(1, [1], "1"), (2, [2], "2"), (3, [3], "3")], True)
    same(ds.map(lambda x: x if x > 1 else "one").collect(), ["one", 2, 3], True)


def test_map_partitions_calls_once_per_partition_with_an_iterator(ctx):
    def f(it):
        assert not isinstance(it, list)
        yield sum(it)
    assert ctx.parallelize(list(range(10)), 4).map_partitions(f).collect() == [1, 5, 9, 30]


def test_map_partitions_with_index(ctx):
    def f(i, it):
        for x in it:
            yield (i, x)
    assert ctx.parallelize([1, 2, 3], 5).map_partitions_with_index(f).collect() == [(1, 1), (3, 2), (4, 3)]


def test_map_partitions_may_return_a_list_or_nothing(ctx):
    ds = ctx.parallelize([1, 2, 3, 4], 2)
    assert ds.map_partitions(lambda it: [len(list(it))]).collect() == [2, 2]
    assert ds.map_partitions(lambda it: iter(())).collect() == []


def test_union_is_self_then_other(ctx):
    a = ctx.parallelize([1, 2], 2)
    b = ctx.parallelize(["x", "y", "z"], 1)
    u = a.union(b)
    assert u.collect() == [1, 2, "x", "y", "z"]
    assert u.get_num_partitions() == 3
    assert u.glom().collect() == [[1], [2], ["x", "y", "z"]]


def test_cartesian(ctx):
    a = ctx.parallelize([1, 2], 2)
    b = ctx.parallelize(["x", "y"], 2)
    same(a.cartesian(b).collect(), [(1, "x"), (1, "y"), (2, "x"), (2, "y")])


def test_keys_values_map_values_flat_map_values(ctx):
    ds = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
    assert ds.keys().collect() == ["a", "b", "a"]
    assert ds.values().collect() == [1, 2, 3]
    assert ds.map_values(lambda v: v * 1.5).collect() == [("a", 1.5), ("b", 3.0), ("a", 4.5)]
    assert ds.map_values(lambda v: [v]).collect() == [("a", [1]), ("b", [2]), ("a", [3])]
    assert ds.flat_map_values(lambda v: range(v)).collect() == \
        [("a", 0), ("b", 0), ("b", 1), ("a", 0), ("a", 1), ("a", 2)]


def test_keys_of_tuple_keys_stay_tuples(ctx):
    ds = ctx.parallelize([(("a", 1), "x"), (("b", 2), "y")], 2)
    assert ds.keys().collect() == [("a", 1), ("b", 2)]
    assert ds.values().collect() == ["x", "y"]


# --- keyed aggregations ---------------------------------------------------------------

def test_reduce_by_key(ctx):
    ds = ctx.parallelize([("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)], 3)
    same(ds.reduce_by_key(operator.add).collect(), [("a", 4), ("b", 7), ("c", 4)])
    same(ds.reduce_by_key(lambda a, b: a + b, 1).collect(), [("a", 4), ("b", 7), ("c", 4)])
    same(ds.reduce_by_key(max).collect(), [("a", 3), ("b", 5), ("c", 4)])


def test_reduce_by_key_keeps_first_appearance_order_in_one_partition(ctx):
    ds = ctx.parallelize([("z", 1), ("a", 2), ("z", 3), ("m", 4)], 1)
    assert ds.reduce_by_key(operator.add, 1).collect() == [("z", 4), ("a", 2), ("m", 4)]


def test_reduce_by_key_float_values_and_int_keys(ctx):
    ds = ctx.parallelize([(1, 0.5), (2, 1.0), (1, 0.25)], 2)
    same(ds.reduce_by_key(operator.add).collect(), [(1, 0.75), (2, 1.0)])


def test_reduce_by_key_of_lists_and_strings(ctx):
    ds = ctx.parallelize([("a", [1]), ("a", [2]), ("b", [3])], 2)
    same(ds.reduce_by_key(operator.add).collect(), [("a", [1, 2]), ("b", [3])])
    ds = ctx.parallelize([("a", "x"), ("a", "y")], 2)
    same(ds.reduce_by_key(operator.add).collect(), [("a", "xy")])


def test_sums_of_big_ints_do_not_wrap(ctx):
    big = 2**62
    same(ctx.parallelize([("a", big), ("a", big), ("b", -big), ("b", -big - 1)], 2).reduce_by_key(operator.add)
         .collect(), [("a", 2**63), ("b", -(2**63) - 1)])
    assert ctx.parallelize([big, big, big], 2).reduce(operator.add) == 3 * big


def test_group_by_key_values_in_arrival_order(ctx):
    ds = ctx.parallelize([("a", 1), ("b", 2), ("a", 3), ("a", 0)], 2)
    same(ds.group_by_key().collect(), [("a", [1, 3, 0]), ("b", [2])])


def test_combine_by_key(ctx):
    ds = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
    out = ds.combine_by_key(lambda v: [v], lambda c, v: c + [v], lambda c, d: c + d).collect()
    same(out, [("a", [1, 3]), ("b", [2])])
    avg = ds.combine_by_key(lambda v: (v, 1), lambda c, v: (c[0] + v, c[1] + 1),
                            lambda c, d: (c[0] + d[0], c[1] + d[1])).collect()
    same(avg, [("a", (4, 2)), ("b", (2, 1))])


def test_count_by_value_and_distinct(ctx):
    ds = ctx.parallelize(["a", "b", "a", "a"], 2)
    assert ds.count_by_value() == {"a": 3, "b": 1}
    same(ds.distinct().collect(), ["a", "b"])


def test_mixed_key_types(ctx):
    ds = ctx.parallelize([(1, "i"), ("1", "s"), (1, "j"), ((1,), "t"), (None, "n")], 3)
    same(ds.group_by_key().collect(), [(1, ["i", "j"]), ("1", ["s"]), ((1,), ["t"]), (None, ["n"])])


# --- joins ---------------------------------------------------------------------------

@pytest.fixture
def sides(ctx):
    left = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
    right = ctx.parallelize([("a", "x"), ("c", "y"), ("a", "z")], 2)
    return left, right


def test_join(sides):
    left, right = sides
    same(left.join(right).collect(), [("a", (1, "x")), ("a", (1, "z")), ("a", (3, "x")), ("a", (3, "z"))])


def test_left_outer_join(sides):
    left, right = sides
    same(left.left_outer_join(right).collect(),
         [("a", (1, "x")), ("a", (1, "z")), ("a", (3, "x")), ("a", (3, "z")), ("b", (2, None))])


def test_right_outer_join(sides):
    left, right = sides
    same(left.right_outer_join(right).collect(),
         [("a", (1, "x")), ("a", (1, "z")), ("a", (3, "x")), ("a", (3, "z")), ("c", (None, "y"))])


def test_full_outer_join(sides):
    left, right = sides
    same(left.full_outer_join(right).collect(),
         [("a", (1, "x")), ("a", (1, "z")), ("a", (3, "x")), ("a", (3, "z")), ("b", (2, None)),
          ("c", (None, "y"))])


def test_outer_join_of_numbers_gives_none_never_nan(ctx):
    left = ctx.parallelize([(1, 1.5), (2, 2.5)], 2)
    right = ctx.parallelize([(2, 7), (3, 8)], 2)
    same(left.full_outer_join(right).collect(), [(1, (1.5, None)), (2, (2.5, 7)), (3, (None, 8))])


def test_join_with_an_empty_side(ctx):
    left = ctx.parallelize([("a", 1)], 1)
    empty = ctx.parallelize([], 2)
    assert left.join(empty).collect() == []
    assert left.left_outer_join(empty).collect() == [("a", (1, None))]
    assert empty.right_outer_join(left).collect() == [("a", (None, 1))]
    assert empty.full_outer_join(empty).collect() == []


def test_cogroup_gives_empty_list_for_a_side_without_values(sides):
    left, right = sides
    same(left.cogroup(right).collect(),
         [("a", ([1, 3], ["x", "z"])), ("b", ([2], [])), ("c", ([], ["y"]))])


@PROPS
@given(keyed_records(keys=st.integers(0, 4), max_size=12), keyed_records(keys=st.integers(0, 4), max_size=12),
       st.integers(1, 3))
def test_join_equals_nested_loops(ctx, left, right, n):
    a, b = ctx.parallelize(left, 2), ctx.parallelize(right, 3)
    same(a.join(b, n).collect(), [(k, (v, w)) for k, v in left for k2, w in right if k == k2])
    lkeys, rkeys = {k for k, _ in left}, {k for k, _ in right}
    full = [(k, (v, w)) for k, v in left for k2, w in right if k == k2]
    full += [(k, (v, None)) for k, v in left if k not in rkeys]
    full += [(k, (None, w)) for k, w in right if k not in lkeys]
    same(a.full_outer_join(b, n).collect(), full)


# --- partitioning ------------------------------------------------------------------------

def test_partition_by_puts_each_key_in_one_partition(ctx):
    data = [(k, i) for i, k in enumerate("abcabcddeab")]
    parts = ctx.parallelize(data, 3).partition_by(4).glom().collect()
    assert len(parts) == 4
    homes = defaultdict(set)
    for p, part in enumerate(parts):
        for k, _ in part:
            homes[k].add(p)
    assert all(len(h) == 1 for h in homes.values())
    same([r for part in parts for r in part], data)


def test_partition_by_with_a_custom_function(ctx):
    data = [(i, str(i)) for i in range(7)]
    parts = ctx.parallelize(data, 2).partition_by(3, lambda k: k * 2).glom().collect()
    assert parts == [[(0, "0"), (3, "3"), (6, "6")], [(2, "2"), (5, "5")], [(1, "1"), (4, "4")]]


def test_repartition(ctx):
    ds = ctx.parallelize(list(range(10)), 3)
    r = ds.repartition(4)
    assert r.get_num_partitions() == 4
    same(r.collect(), list(range(10)))
    assert ds.repartition(1).collect() == list(range(10))
    assert ds.repartition(1).glom().collect() == [list(range(10))]


# --- actions ----------------------------------------------------------------------------

def test_count_collect_take_first_is_empty(ctx):
    ds = ctx.parallelize(list(range(10)), 3)
    assert ds.count() == 10
    assert ds.collect() == list(range(10))
    assert ds.take(4) == [0, 1, 2, 3]
    assert ds.take(0) == []
    assert ds.take(100) == list(range(10))
    assert ds.first() == 0
    assert not ds.is_empty()
    empty = ctx.parallelize([], 2)
    assert empty.is_empty() and empty.count() == 0 and empty.collect() == []
    with pytest.raises(ValueError):
        empty.first()


def test_reduce(ctx):
    assert ctx.parallelize(list(range(10)), 3).reduce(operator.add) == 45
    assert ctx.parallelize([3, 1, 2], 2).reduce(min) == 1
    assert ctx.parallelize(["a", "b", "c"], 2).reduce(lambda a, b: a + b) == "abc"
    assert ctx.parallelize([[1], [2]], 2).reduce(lambda a, b: a + b) == [1, 2]
    assert ctx.parallelize([1.5, 2.5], 3).reduce(operator.add) == 4.0


def test_reduce_of_an_empty_dataset_raises(ctx):
    with pytest.raises(ValueError):
        ctx.parallelize([], 2).reduce(operator.add)


def test_sort_by(ctx):
    ds = ctx.parallelize([5, 1, 4, 2, 3, 1], 3)
    assert ds.sort_by(lambda x: x).collect() == [1, 1, 2, 3, 4, 5]
    assert ds.sort_by(lambda x: x, ascending=False).collect() == [5, 4, 3, 2, 1, 1]
    assert ds.sort_by(lambda x: x, num_partitions=2).get_num_partitions() == 2
    pairs = ctx.parallelize([("b", 1), ("a", 2), ("c", 0)], 2)
    assert pairs.sort_by_key().collect() == [("a", 2), ("b", 1), ("c", 0)]
    assert pairs.sort_by(lambda kv: kv[1]).collect() == [("c", 0), ("b", 1), ("a", 2)]
    assert ctx.parallelize([], 2).sort_by(lambda x: x).collect() == []


def test_cache_computes_once(ctx, tmp_path):
    marker = tmp_path / "calls"

    def f(x):
        with open(marker, "a") as fh:  # worker processes share the file system, not memory
            fh.write(".")
        return x + 1

    ds = ctx.parallelize([1, 2, 3], 2).map(f).cache()
    assert ds.is_cached
    assert ds.collect() == [2, 3, 4]
    assert ds.collect() == [2, 3, 4]
    assert ds.count() == 3
    assert marker.read_text() == "..."
    ds.unpersist()
    assert ds.collect() == [2, 3, 4]


def test_an_uncached_dataset_recomputes(ctx, tmp_path):
    marker = tmp_path / "calls"

    def f(x):
        with open(marker, "a") as fh:
            fh.write(".")
        return x

    ds = ctx.parallelize([1, 2], 1).map(f)
    ds.collect()
    ds.collect()
    assert marker.read_text() == "...."


# --- properties -------------------------------------------------------------------------

def twice_minus(a, b):
    """A user reducer no kernel recognises: it is compiled with Numba."""
    return a * 2 + b - a


def dict_fold(records, f):
    acc: dict = {}
    for k, v in records:
        acc[k] = f(acc[k], v) if k in acc else v
    return list(acc.items())


@PROPS
@given(keyed_records(max_size=30), st.integers(1, 4), st.integers(1, 4))
def test_reduce_by_key_is_a_dict_fold_whatever_the_partitions(ctx, records, k, n):
    ds = ctx.parallelize(records, k)
    same(ds.reduce_by_key(operator.add, n).collect(), dict_fold(records, operator.add))
    same(ds.reduce_by_key(twice_minus, n).collect(), dict_fold(records, twice_minus))


@PROPS
@given(keyed_records(keys=st.integers(-5, 5), max_size=30), st.integers(1, 4), st.integers(1, 4))
def test_reduce_by_key_on_int_keys_is_a_dict_fold_in_each_hash_partition(ctx, records, k, n):
    # int64 keys in a small range take the fused reduce + partition kernel on the map side
    records = [(key, float(v)) for key, v in records]  # whole floats: any summation order is exact
    ds = ctx.parallelize(records, k)
    for fn in (operator.add, min, max):
        got = ds.reduce_by_key(fn, n).glom().collect()
        assert len(got) == n
        same([kv for part in got for kv in part], dict_fold(records, fn))
        home = {key: int(p) for key, p in zip(keys, keyed.partition_ids(keyed.hash_column(np.array(keys)), n))} \
            if (keys := sorted({key for key, _ in records})) else {}
        for i, part in enumerate(got):  # each key in its hash partition, first-appearance order within
            assert part == [kv for kv in dict_fold(records, fn) if home[kv[0]] == i]


@PROPS
@given(keyed_records(values=st.floats(-1e6, 1e6), max_size=30), st.integers(1, 4))
def test_reduce_by_key_min_max_on_floats(ctx, records, k):
    ds = ctx.parallelize(records, k)
    same(ds.reduce_by_key(min).collect(), dict_fold(records, min))
    same(ds.reduce_by_key(max, 2).collect(), dict_fold(records, max))


@PROPS
@given(keyed_records(max_size=30), st.integers(1, 4))
def test_group_by_key_within_one_partition_keeps_arrival_order(ctx, records, k):
    groups: dict = {}
    for key, v in records:
        groups.setdefault(key, []).append(v)
    assert ctx.parallelize(records, k).group_by_key(1).collect() == list(groups.items())


@PROPS
@given(st.lists(st.integers(-5, 5), max_size=30), st.integers(1, 5), st.integers(1, 5))
def test_narrow_chain_is_independent_of_partitions(ctx, xs, k, n):
    ds = ctx.parallelize(xs, k).map(lambda x: x * 3).filter(lambda x: x % 2 == 0).flat_map(lambda x: [x, -x])
    expected = [y for x in xs if (x * 3) % 2 == 0 for y in (x * 3, -x * 3)]
    assert ds.collect() == expected
    assert ds.repartition(n).glom().map(len).collect() != [] and sorted(ds.repartition(n).collect()) == \
        sorted(expected)


def test_zip_partitions_combines_co_partitioned_datasets_without_a_shuffle(ctx):
    from runnel.batch import concat_batches

    a = ctx.parallelize([("a", 1), ("b", 2), ("c", 3)]).partition_by(2)
    b = ctx.parallelize([("a", 10), ("c", 30)]).partition_by(2)
    zipped = a.zip_partitions([b], lambda i, parts: concat_batches(parts))
    assert zipped.get_num_partitions() == 2
    assert [sorted(p) for p in zipped.glom().collect()] == \
        [sorted(pa + pb) for pa, pb in zip(a.glom().collect(), b.glom().collect())]
    with pytest.raises(ValueError, match="equal partition counts"):
        a.zip_partitions([ctx.parallelize([1], 1)], lambda i, parts: parts[0])
