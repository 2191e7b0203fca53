"""Batch tables for every DStream operation, on the manual clock, on every executor.

Inputs are per-batch lists fed through ``queue_stream``; outputs are the
records collected per batch (keyed results compared unordered, as PySpark's).
"""

from __future__ import annotations

import operator
from datetime import datetime

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from runnel import DStream
from runnel.testing import assert_batches_equal, batches_of, keyed_records, run_stream

PROPS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

WORDS = [["a b", "b"], [], ["c a", ""]]
PAIRS = [[("a", 1), ("b", 2), ("a", 3)], [], [("b", 4)], [(1, 1.5), (1, 2.5)]]


class EveryOther(DStream):
    """A stream that slides every two batches (as a window with slide 2 would)."""

    kind = "every_other"

    def __init__(self, parent):
        super().__init__(parent.ssc, [parent])

    @property
    def slide_ms(self):
        return 2 * self.parents[0].slide_ms

    def compute(self, t):
        p = self.parents[0]
        return p.get_or_compute(t - p.slide_ms).union(p.get_or_compute(t))


# --- narrow ----------------------------------------------------------------------

def test_map(run):
    out = run(lambda s: s.map(lambda x: (x, x * 2)), [[1, 2], [], [3]])
    assert_batches_equal(out, [[(1, 2), (2, 4)], [], [(3, 6)]], ordered=True)


def test_map_may_change_types_between_batches(run):
    out = run(lambda s: s.map(lambda x: x * 2), [[1, 2], ["a"], [1.5, None and 1 or 2], [(1,)]])
    assert_batches_equal(out, [[2, 4], ["aa"], [3.0, 4], [(1, 1)]], ordered=True)


def test_flat_map(run):
    out = run(lambda s: s.flat_map(lambda line: line.split()), WORDS)
    assert_batches_equal(out, [["a", "b", "b"], [], ["c", "a"]], ordered=True)


def test_filter(run):
    out = run(lambda s: s.filter(lambda x: x % 2 == 0), [[1, 2, 3, 4], [1], []])
    assert_batches_equal(out, [[2, 4], [], []], ordered=True)


def test_map_partitions(run):
    out = run(lambda s: s.map_partitions(lambda it: [sum(it)]), [[1, 2, 3, 4], [5]], num_partitions=2)
    assert_batches_equal(out, [[3, 7], [0, 5]], ordered=True)


def test_map_partitions_with_a_generator(run):
    def double(it):
        for x in it:
            yield x
            yield x
    out = run(lambda s: s.map_partitions(double), [[1, 2], []], num_partitions=2)
    assert_batches_equal(out, [[1, 1, 2, 2], []], ordered=True)


def test_map_partitions_with_index(run):
    out = run(lambda s: s.map_partitions_with_index(lambda i, it: ((i, x) for x in it)),
              [[1, 2, 3]], num_partitions=3)
    assert_batches_equal(out, [[(0, 1), (1, 2), (2, 3)]], ordered=True)


def test_glom(run):
    out = run(lambda s: s.glom(), [[1, 2, 3], [4]], num_partitions=2)
    assert out == [[[1], [2, 3]], [[], [4]]]


def test_repartition(run):
    out = run(lambda s: s.repartition(3).glom().map(len), [list(range(7))], num_partitions=2)
    assert sum(out[0]) == 7 and len(out[0]) == 3
    out = run(lambda s: s.repartition(1), [list(range(7)), [3, 1]], num_partitions=3)
    assert_batches_equal(out, [list(range(7)), [3, 1]], ordered=True)


def test_map_values_and_flat_map_values(run):
    out = run(lambda s: s.map_values(lambda v: [v]), PAIRS)
    assert_batches_equal(out, [[("a", [1]), ("b", [2]), ("a", [3])], [], [("b", [4])], [(1, [1.5]), (1, [2.5])]],
                         ordered=True)
    out = run(lambda s: s.flat_map_values(lambda v: range(int(v))), [[("a", 2), ("b", 0)], []])
    assert_batches_equal(out, [[("a", 0), ("a", 1)], []], ordered=True)


def test_map_batches(run):
    def add(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(value=df["value"] + 10)
    out = run(lambda s: s.map_batches(add), [[("a", 1), ("b", 2)], [("c", 3)]])
    assert_batches_equal(out, [[("a", 11), ("b", 12)], [("c", 13)]], ordered=True)


# --- union -------------------------------------------------------------------------

def test_union_is_self_then_other(run):
    out = run(lambda a, b: a.union(b), [[1, 2], [3]], [["x"], [], ["y"]])
    assert_batches_equal(out, [[1, 2, "x"], [3], ["y"]], ordered=True)


def test_ssc_union_keeps_argument_order(run):
    out = run(lambda ssc, a, b, c: ssc.union(c, a, b), [[1]], [[2]], [[3]])
    assert out == [[3, 1, 2]]
    out = run(lambda ssc, a, b: ssc.union([b, a]), [[1]], [[2]])
    assert out == [[2, 1]]


def test_union_of_streams_with_different_slides_raises(ssc):
    a = ssc.queue_stream([[1]])
    b = EveryOther(ssc.queue_stream([[2]]))
    with pytest.raises(ValueError):
        a.union(b)
    with pytest.raises(ValueError):
        ssc.union(a, b)


def test_ssc_union_of_nothing_raises_and_of_one_is_the_stream(ssc):
    with pytest.raises(ValueError):
        ssc.union()
    a = ssc.queue_stream([[1]])
    assert ssc.union(a) is a


def test_a_stream_with_a_longer_slide_fires_only_on_its_grid(run):
    out = run(lambda s: EveryOther(s).count(), [[1], [2, 3], [4], [5, 6, 7], [8]])
    assert out == [[3], [4]]  # batches 2 and 4 only


# --- aggregations --------------------------------------------------------------------

def test_count_is_zero_for_empty_batches(run):
    out = run(lambda s: s.count(), [[1, 2, 3], [], ["a"]], batches=5)
    assert_batches_equal(out, [[3], [0], [1], [0], [0]], ordered=True)


def test_reduce_of_an_empty_batch_is_empty(run):
    out = run(lambda s: s.reduce(operator.add), [[1, 2, 3], [], ["a", "b"], [[1], [2]], [1.5]])
    assert_batches_equal(out, [[6], [], ["ab"], [[1, 2]], [1.5]], ordered=True)


def test_count_by_value(run):
    out = run(lambda s: s.count_by_value(), [["a", "b", "a"], [], [1, 1, 2]])
    assert_batches_equal(out, [[("a", 2), ("b", 1)], [], [(1, 2), (2, 1)]])


def test_word_count(run):
    out = run(lambda s: s.flat_map(lambda l: l.split(" ")).map(lambda w: (w, 1)).reduce_by_key(operator.add),
              WORDS)
    assert_batches_equal(out, [[("a", 1), ("b", 2)], [], [("c", 1), ("a", 1), ("", 1)]])


def test_reduce_by_key(run):
    out = run(lambda s: s.reduce_by_key(lambda a, b: a + b), PAIRS)
    assert_batches_equal(out, [[("a", 4), ("b", 2)], [], [("b", 4)], [(1, 4.0)]])


def test_key_and_value_types_may_change_between_batches(run):
    out = run(lambda s: s.reduce_by_key(operator.add), [[("a", 1), ("a", 2)], [(1, "x"), (1, "y")],
                                                        [((1, 2), [1]), ((1, 2), [2])], [(b"k", 0.5), ("k", 1)]])
    assert_batches_equal(out, [[("a", 3)], [(1, "xy")], [((1, 2), [1, 2])], [(b"k", 0.5), ("k", 1)]])


def test_reduce_by_key_with_num_partitions(run):
    out = run(lambda s: s.reduce_by_key(operator.add, 3).glom().map(len), [[(i % 5, i) for i in range(20)]])
    assert len(out[0]) == 3 and sum(out[0]) == 5


def test_group_by_key(run):
    out = run(lambda s: s.group_by_key().map_values(list), PAIRS)
    assert_batches_equal(out, [[("a", [1, 3]), ("b", [2])], [], [("b", [4])], [(1, [1.5, 2.5])]])


def test_combine_by_key(run):
    out = run(lambda s: s.combine_by_key(lambda v: (v, 1), lambda c, v: (c[0] + v, c[1] + 1),
                                         lambda c, d: (c[0] + d[0], c[1] + d[1])), PAIRS)
    assert_batches_equal(out, [[("a", (4, 2)), ("b", (2, 1))], [], [("b", (4, 1))], [(1, (4.0, 2))]])


def test_partition_by_with_a_custom_function(run):
    out = run(lambda s: s.partition_by(2, lambda k: k).glom(), [[(1, "a"), (2, "b"), (3, "c"), (4, "d")]])
    assert out == [[[(2, "b"), (4, "d")], [(1, "a"), (3, "c")]]]


# --- joins -----------------------------------------------------------------------------

LEFT = [[("a", 1), ("b", 2)], [("a", 3)], []]
RIGHT = [[("a", "x"), ("c", "y")], [], [("c", "z")]]


def test_join(run):
    assert_batches_equal(run(lambda a, b: a.join(b), LEFT, RIGHT), [[("a", (1, "x"))], [], []])


def test_left_outer_join(run):
    assert_batches_equal(run(lambda a, b: a.left_outer_join(b), LEFT, RIGHT),
                         [[("a", (1, "x")), ("b", (2, None))], [("a", (3, None))], []])


def test_right_outer_join(run):
    assert_batches_equal(run(lambda a, b: a.right_outer_join(b), LEFT, RIGHT),
                         [[("a", (1, "x")), ("c", (None, "y"))], [], [("c", (None, "z"))]])


def test_full_outer_join(run):
    assert_batches_equal(run(lambda a, b: a.full_outer_join(b), LEFT, RIGHT),
                         [[("a", (1, "x")), ("b", (2, None)), ("c", (None, "y"))], [("a", (3, None))],
                          [("c", (None, "z"))]])


def test_cogroup(run):
    out = run(lambda a, b: a.cogroup(b).map_values(lambda vw: (list(vw[0]), list(vw[1]))), LEFT, RIGHT)
    assert_batches_equal(out, [[("a", ([1], ["x"])), ("b", ([2], [])), ("c", ([], ["y"]))],
                               [("a", ([3], []))], [("c", ([], ["z"]))]])


def test_join_of_streams_with_different_slides_raises(ssc):
    a = ssc.queue_stream([[("a", 1)]])
    with pytest.raises(ValueError):
        a.join(EveryOther(ssc.queue_stream([])))


# --- transform --------------------------------------------------------------------------

def test_transform_with_one_argument(run):
    out = run(lambda s: s.transform(lambda rdd: rdd.map(lambda x: x + 1).filter(lambda x: x > 2)), [[1, 2, 3], []])
    assert_batches_equal(out, [[3, 4], []], ordered=True)


def test_transform_with_time_gets_a_naive_datetime(run):
    times = []

    def f(time, rdd):
        times.append(time)
        return rdd.map(lambda x: (x, 1))
    out = run(lambda s: s.transform(f), [[1], [2]])
    assert_batches_equal(out, [[(1, 1)], [(2, 1)]], ordered=True)
    assert all(type(t) is datetime and t.tzinfo is None for t in times)
    assert times == [datetime.fromtimestamp(1), datetime.fromtimestamp(2)]


def test_transform_must_return_a_dataset(run):
    with pytest.raises(Exception, match="must return a Dataset") as err:
        run(lambda s: s.transform(lambda rdd: rdd.collect()), [[1]])
    assert isinstance(err.value.__cause__, TypeError)


def test_transform_with(run):
    out = run(lambda a, b: a.transform_with(lambda x, y: x.union(y.map(lambda v: -v)), b), [[1, 2]], [[3]])
    assert out == [[1, 2, -3]]
    seen = []

    def f(t, x, y):
        seen.append(t)
        return x.join(y)
    out = run(lambda a, b: a.transform_with(f, b), [[("k", 1)]], [[("k", 2)]])
    assert out == [[("k", (1, 2))]] and seen == [datetime.fromtimestamp(1)]


def test_ssc_transform_gets_datasets_in_list_order(run):
    out = run(lambda ssc, a, b, c: ssc.transform([c, a, b], lambda dss: dss[0].union(dss[1]).union(dss[2])),
              [[1], [4]], [[2]], [[3]])
    assert out == [[3, 1, 2], [4]]
    out = run(lambda ssc, a, b: ssc.transform([a, b], lambda t, dss: dss[1].map(lambda x: (t.second, x))),
              [[1]], [[2]])
    assert out == [[(datetime.fromtimestamp(1).second, 2)]]


# --- slice, cache --------------------------------------------------------------------------

def test_slice_returns_remembered_datasets_inclusively(ssc):
    s = ssc.queue_stream([[1], [2], [3], [4]])
    doubled = s.map(lambda x: x * 2)
    doubled.foreach_rdd(lambda rdd: None)
    ssc.remember(10)
    ssc.start()
    ssc.run_batches(4)
    at = datetime.fromtimestamp
    assert [d.collect() for d in doubled.slice(at(2), at(3))] == [[4], [6]]
    assert [d.collect() for d in doubled.slice(1.5, 3.9)] == [[2], [4], [6]]  # floored to the grid
    assert [d.collect() for d in doubled.slice(0, 100)] == [[2], [4], [6], [8]]
    assert [d.collect() for d in s.slice(at(4), at(4))] == [[4]]


def test_cache_computes_each_batch_once_for_several_outputs(ssc, collect, tmp_path):
    marker = tmp_path / "calls"

    def f(x):
        with open(marker, "a") as fh:
            fh.write(".")
        return x

    s = ssc.queue_stream([[1, 2], [3]]).map(f).cache()
    first, second = collect(s), collect(s.count())
    ssc.start()
    ssc.run_batches(2)
    assert first == [[1, 2], [3]] and second == [[2], [1]]
    assert marker.read_text() == "..."


# --- queueStream ------------------------------------------------------------------------------

def test_exhausted_queue_gives_empty_batches_with_one_partition(run):
    out = run(lambda s: s.glom(), [[1, 2]], batches=3, num_partitions=2)
    assert out == [[[1], [2]], [[]], [[]]]


def test_queue_default_is_repeated(ssc, collect):
    out = collect(ssc.queue_stream([[1, 2]], default=ssc.context.parallelize([0], 1)))
    ssc.start()
    ssc.run_batches(3)
    assert out == [[1, 2], [0], [0]]


def test_queue_not_one_at_a_time_puts_everything_in_the_first_batch(ssc, collect):
    out = collect(ssc.queue_stream([[1, 2], [3], [4]], one_at_a_time=False).count())
    ssc.start()
    ssc.run_batches(3)
    assert out == [[4], [0], [0]]


def test_queue_of_plain_lists_uses_default_parallelism(ssc, collect):
    out = collect(ssc.queue_stream([list(range(8))]).glom().map(len))
    ssc.start()
    ssc.run_batches(1)
    assert len(out[0]) == ssc.context.default_parallelism


def test_queue_accepts_datasets_arrays_and_frames(ssc, collect):
    import numpy as np
    items = [ssc.context.parallelize([1, 2], 2), np.array([3, 4]), pd.DataFrame({"key": ["a"], "value": [5]})]
    out = collect(ssc.queue_stream(items))
    ssc.start()
    ssc.run_batches(3)
    assert_batches_equal(out, [[1, 2], [3, 4], [("a", 5)]], ordered=True)


# --- properties ------------------------------------------------------------------------------

def fold(batch, f):
    acc: dict = {}
    for k, v in batch:
        acc[k] = f(acc[k], v) if k in acc else v
    return list(acc.items())


@PROPS
@given(batches_of(keyed_records(max_size=15)), st.integers(1, 3), st.integers(1, 3))
def test_reduce_by_key_is_a_per_batch_dict_fold(ctx, batches, k, n):
    out = run_stream(lambda s: s.reduce_by_key(operator.add, n), batches, ctx, num_partitions=k)
    assert_batches_equal(out, [fold(b, operator.add) for b in batches])


@PROPS
@given(batches_of(keyed_records(keys=st.integers(0, 3), max_size=8)),
       batches_of(keyed_records(keys=st.integers(0, 3), max_size=8)), st.integers(1, 3))
def test_stream_join_equals_nested_loops(ctx, left, right, k):
    from runnel.testing import run_streams
    out = run_streams(lambda a, b: a.join(b), [left, right], ctx, num_partitions=k)
    n = max(len(left), len(right))
    left, right = left + [[]] * (n - len(left)), right + [[]] * (n - len(right))
    assert_batches_equal(out, [[(x, (v, w)) for x, v in lb for y, w in rb if x == y] for lb, rb in zip(left, right)])


def _columns_of_each_partition(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"value": [",".join(map(str, df.columns))]})


@pytest.mark.filterwarnings("ignore:.*will not survive a restart:RuntimeWarning")
@pytest.mark.parametrize("keyed", ["reduce_by_key", "group_by_key", "update_state_by_key", "window", "join"])
def test_map_batches_sees_pair_columns_in_empty_partitions(run, keyed):
    build = {
        "reduce_by_key": lambda s: s.reduce_by_key(operator.add, 3),
        "group_by_key": lambda s: s.group_by_key(3),
        "update_state_by_key": lambda s: s.update_state_by_key(lambda vs, st: sum(vs) + (st or 0), 3),
        "window": lambda s: s.reduce_by_key_and_window(operator.add, None, 2, 1, 3),
        "join": lambda s: s.join(s, 3),
    }[keyed]
    out = run(lambda s: build(s).map_batches(_columns_of_each_partition), [[("a", 1)], [("b", 2)]])
    expected = ["key,v,w"] * 3 if keyed == "join" else ["key,value"] * 3
    assert out == [expected, expected]  # one key: two of the three partitions are empty
