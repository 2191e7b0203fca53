"""Which path a user function runs on, and that every path gives the record path's results."""

from __future__ import annotations

import copy
import itertools
import operator
import warnings

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from runnel import PythonFallbackWarning
from runnel.functions import Reducer, pair_with_constant, reducer_op, split_pattern
from runnel.testing import assert_batches_equal, keyed_records

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_fresh = itertools.count()


def fresh_function(body: str, name: str = "reducer"):
    """A new function (new code object) each call: fallback warnings are given once per code."""
    name = f"{name}_{next(_fresh)}"
    ns = {"copy": copy}
    exec(f"def {name}(a, b):\n    return {body}\n", ns)
    return ns[name]


# --- reducers ------------------------------------------------------------------------

def _shadowed_min(a, b):
    return min(a, b)


@pytest.mark.parametrize("fn,op", [
    (operator.add, "sum"), (lambda a, b: a + b, "sum"), (lambda x, y: x + y, "sum"),
    (min, "min"), (max, "max"), (lambda a, b: min(a, b), "min"), (lambda a, b: max(a, b), "max"),
    (lambda a, b: a - b, None), (lambda a, b: b + a, None), (lambda a, b: a * b, None),
])
def test_reducer_recognition(fn, op):
    assert reducer_op(fn) == op


def test_a_shadowed_builtin_is_not_recognised():
    ns = {"min": max}
    exec("def f(a, b):\n    return min(a, b)\n", ns)
    assert reducer_op(ns["f"]) is None


def test_a_numba_compilable_reducer_is_compiled():
    r = Reducer.of(fresh_function("a * 2 + b - a"))
    assert r.op is None and r.jitted is not None


def test_a_reducer_changing_the_type_is_not_compiled():
    with pytest.warns(PythonFallbackWarning):
        r = Reducer.of(fresh_function("(a + b) / 2"))
    assert r.jitted is None


def fold(records, f):
    acc: dict = {}
    for k, v in records:
        acc[k] = f(acc[k], v) if k in acc else v
    return list(acc.items())


def weird_sum(a, b):
    return a * 2 + b - a


def keep_larger_abs(a, b):
    return a if abs(a) >= abs(b) else b


@PROPS
@given(keyed_records(values=st.integers(-10**6, 10**6), max_size=30), st.integers(1, 3))
def test_compiled_reducers_match_python_on_ints(ctx, records, k):
    ds = ctx.parallelize(records, k)
    for f in (weird_sum, keep_larger_abs):
        assert_batches_equal([ds.reduce_by_key(f).collect()], [fold(records, f)])


@PROPS
@given(keyed_records(values=st.integers(-4000, 4000).map(lambda i: i / 4), max_size=30), st.integers(1, 3))
def test_compiled_reducers_match_python_on_floats(ctx, records, k):
    ds = ctx.parallelize(records, k)
    for f in (keep_larger_abs, operator.add, max):
        assert_batches_equal([ds.reduce_by_key(f, 1).collect()], [fold(records, f)])


def test_reduce_of_a_dataset_with_a_compiled_reducer(ctx):
    assert ctx.parallelize([3, -7, 5], 2).reduce(keep_larger_abs) == -7
    assert ctx.parallelize([1.5, -0.5], 2).reduce(weird_sum) == 1.0


def test_a_non_compilable_reducer_warns_once_naming_it_and_runs_in_python(ctx):
    f = fresh_function("copy.copy(a) + b", "not_numba")
    data = ctx.parallelize([("a", 1), ("b", 2), ("a", 3)], 2)
    with pytest.warns(PythonFallbackWarning) as record:
        first = data.reduce_by_key(f).collect()
        second = data.reduce_by_key(f, 1).collect()
    fallbacks = [w for w in record if issubclass(w.category, PythonFallbackWarning)]
    assert len(fallbacks) == 1
    assert f.__name__ in str(fallbacks[0].message)
    assert_batches_equal([first, second], [[("a", 4), ("b", 2)]] * 2)


def test_a_non_compilable_reducer_on_a_stream_warns_once(ssc, collect):
    f = fresh_function("copy.copy(a) + b", "stream_reducer")
    with pytest.warns(PythonFallbackWarning, match=f.__name__):
        out = collect(ssc.queue_stream([[("a", 1), ("a", 2)], [("b", 1)]]).reduce_by_key(f))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ssc.start()
        ssc.run_batches(2)
    assert_batches_equal(out, [[("a", 3)], [("b", 1)]])


def test_object_values_take_the_python_path_without_warning(ctx):
    ds = ctx.parallelize([("a", [1]), ("a", [2]), ("b", "x"), ("b", "y")], 2)
    assert_batches_equal([ds.reduce_by_key(lambda a, b: a + b).collect()], [[("a", [1, 2]), ("b", "xy")]])


# --- record lambdas --------------------------------------------------------------------

@pytest.mark.parametrize("fn,expected", [
    (lambda w: (w, 1), (True, 1)), (lambda word: (word, "x"), (True, "x")), (lambda w: (w, 2.5), (True, 2.5)),
    (lambda w: (1, w), (False, None)), (lambda w: (w, w), (False, None)), (lambda w: [w, 1], (False, None)),
    (lambda w: (w, None), (False, None)),
])
def test_pair_with_constant_recognition(fn, expected):
    assert pair_with_constant(fn) == expected


@pytest.mark.parametrize("fn,expected", [
    (lambda line: line.split(" "), (True, " ")), (lambda l: l.split(","), (True, ",")),
    (lambda line: line.split(), (True, None)), (str.split, (True, None)),
    (lambda line: line.split(" ", 1), (False, None)), (lambda line: line.rsplit(" "), (False, None)),
    (lambda line: line.split(""), (False, None)),
])
def test_split_recognition(fn, expected):
    assert split_pattern(fn) == expected


texts = st.lists(st.text(alphabet=st.sampled_from(["a", "b", "é", "日", " ", "\t", "\n", "🙂", ",", "\u3000",
                                                    "\x1c", "\xa0", "\u2028"]), max_size=8), max_size=10)
records = st.one_of(texts, st.lists(st.one_of(st.text(max_size=4), st.integers(), st.none(), st.floats(allow_nan=False),
                                              st.tuples(st.integers(), st.text(max_size=2))), max_size=10))


@PROPS
@given(records, st.integers(1, 3))
def test_pair_with_one_matches_the_record_path(ctx, recs, k):
    ds = ctx.parallelize(recs, k)
    fast = ds.map(lambda w: (w, 1)).collect()
    assert_batches_equal([fast], [[(w, 1) for w in recs]], ordered=True)
    assert_batches_equal([ds.map(lambda w: (w, "x")).collect()], [[(w, "x") for w in recs]], ordered=True)


@PROPS
@given(texts, st.integers(1, 3))
def test_split_matches_python(ctx, lines, k):
    ds = ctx.parallelize(lines, k)
    assert ds.flat_map(lambda line: line.split(" ")).collect() == [w for l in lines for w in l.split(" ")]
    assert ds.flat_map(lambda line: line.split()).collect() == [w for l in lines for w in l.split()]
    assert ds.flat_map(str.split).collect() == [w for l in lines for w in l.split()]


def test_split_whitespace_of_blocks_read_back_from_the_store(ctx):
    # the last string's trailing space must count however the block's buffer ends
    lines = ["\u2028", "aaaa\xa0🙂🙂 "]
    assert ctx.parallelize(lines, 1).flat_map(str.split).collect() == ["aaaa", "🙂🙂"]
    from runnel import Batch
    from runnel.ops import SplitWords
    from runnel.storage import ipc
    batch = ipc.read_batch(ipc.batch_to_bytes(Batch.from_records(lines)))
    assert SplitWords(None, str.split)(0, batch).to_records() == ["aaaa", "🙂🙂"]


def test_split_of_non_strings_uses_python(ctx):
    ds = ctx.parallelize(["a b", None], 1)
    with pytest.raises(Exception, match="split"):
        ds.flat_map(lambda line: line.split(" ")).collect()
    assert ctx.parallelize([b"a b"], 1).flat_map(lambda line: line.split()).collect() == [b"a", b"b"]


def test_word_count_fast_path_equals_record_path(ctx):
    lines = ["the cat  the", "", " 日本 語 the", "cat"]
    ds = ctx.parallelize(lines, 2)
    fast = ds.flat_map(lambda line: line.split(" ")).map(lambda w: (w, 1)).reduce_by_key(operator.add).collect()
    slow = ds.flat_map(lambda line: list(line.split(" "))).map(lambda w: tuple([w, 1])) \
        .reduce_by_key(lambda a, b: int(a) + b).collect()
    assert_batches_equal([fast], [slow])
    assert_batches_equal([fast], [fold([(w, 1) for l in lines for w in l.split(" ")], operator.add)])
