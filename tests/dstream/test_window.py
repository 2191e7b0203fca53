"""Window operations: batch tables on the manual clock (``local`` and ``local[2]``), PySpark's semantics."""

from __future__ import annotations

import math
import operator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel.dstream import window as W
from runnel.testing import assert_batches_equal

# these tests are about what windows compute, not about checkpointing: no checkpoint directory is set,
# so each windowed stream warns once at start (tests/dstream/test_window_reporting.py tests that warning)
pytestmark = pytest.mark.filterwarnings("ignore:.*will not survive a restart:RuntimeWarning")

RANGES5 = [list(range(i + 1)) for i in range(5)]
RANGES6 = [list(range(i + 1)) for i in range(6)]


# --- PySpark's own tables (batch 0.5 s) ----------------------------------------------

def test_window_is_partial_at_start_and_drains(run):
    out = run(lambda s: s.window(1.5, .5).count(), RANGES5, batches=7, batch_duration=.5)
    assert out == [[1], [3], [6], [9], [12], [9], [5]]


def test_count_by_window(run):
    out = run(lambda s: s.countByWindow(2.5, .5), RANGES6, batches=10, batch_duration=.5)
    assert out == [[1], [3], [6], [10], [15], [20], [18], [15], [11], [6]]


def test_count_by_value_and_window(run):
    out = run(lambda s: s.countByValueAndWindow(2.5, .5), RANGES6, batches=10, batch_duration=.5)
    expected = []
    for t in range(10):  # window = batches t-4..t of input range(i+1)
        counts = {}
        for i in range(max(0, t - 4), min(t, 5) + 1):
            for v in RANGES6[i]:
                counts[v] = counts.get(v, 0) + 1
        expected.append(sorted(counts.items()))
    assert_batches_equal(out, expected)


def test_count_by_value_and_window_drops_counts_that_reach_zero(run):
    out = run(lambda s: s.countByValueAndWindow(5, 1), [["x", "y"], ["x"]], batches=8)
    assert_batches_equal(out, [[("x", 1), ("y", 1)]] + [[("x", 2), ("y", 1)]] * 4 + [[("x", 1)], [], []])


def test_group_by_key_and_window_keeps_time_order(run):
    out = run(lambda s: s.groupByKeyAndWindow(1.5, .5).mapValues(list), [[("a", i)] for i in range(5)],
              batches=7, batch_duration=.5)
    assert out == [[("a", [0])], [("a", [0, 1])], [("a", [0, 1, 2])], [("a", [1, 2, 3])], [("a", [2, 3, 4])],
                   [("a", [3, 4])], [("a", [4])]]


def test_reduce_by_key_and_window_without_inverse(run):
    out = run(lambda s: s.map(lambda x: (x, 1)).reduceByKeyAndWindow(operator.add, None, 5, 1)
              .filter(lambda kv: kv[1] > 0).count(), RANGES6, batches=12, batch_duration=.5)
    assert out == [[2], [4], [6], [6], [6], [6]]


def test_window_reduced_from_partials_keeps_first_appearance_order_and_incremental_is_sorted(run):
    batches = [[(7, 1.0), (3, 1.0)], [(5, 1.0), (3, 1.0)], [(1, 1.0)]]
    plain = run(lambda s: s.reduceByKeyAndWindow(operator.add, None, 3, 1, 1), batches, batches=3)
    assert plain == [[(7, 1.0), (3, 1.0)], [(7, 1.0), (3, 2.0), (5, 1.0)], [(7, 1.0), (3, 2.0), (5, 1.0), (1, 1.0)]]
    inc = run(lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1, 1), batches, batches=3)
    assert inc == [[(3, 1.0), (7, 1.0)], [(3, 2.0), (5, 1.0), (7, 1.0)], [(1, 1.0), (3, 2.0), (5, 1.0), (7, 1.0)]]


# --- slide phases -------------------------------------------------------------------

def test_slide_of_two_batches_fires_at_batches_two_four_six(run):
    out = run(lambda s: s.window(4, 2), [[1], [2], [3], [4], [5]], batches=7)
    assert_batches_equal(out, [[1, 2], [1, 2, 3, 4], [3, 4, 5]])


def test_window_of_a_windowed_stream_fires_on_its_own_slide(run):
    out = run(lambda s: s.window(2, 2).window(4, 4).count(), [[1], [2], [3], [4], [5]], batches=8)
    assert out == [[4], [1]]


def test_reduce_by_key_and_window_with_slide_two(run):
    out = run(lambda s: s.reduceByKeyAndWindow(operator.add, lambda a, b: a - b, 5, 2),
              [[("a", 1)], [("b", 2)], [("a", 1)]], batches=10)
    assert_batches_equal(out, [[("a", 1), ("b", 2)], [("a", 2), ("b", 2)], [("a", 1), ("b", 2)], [], []])


# --- keys at the zero, filterFunc -----------------------------------------------------------

def test_inverse_window_keeps_zero_values_without_filter(run):
    out = run(lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1), [[("a", 1)], [("b", 2.5)]],
              batches=8)
    assert_batches_equal(out, [[("a", 1)]] + [[("a", 1), ("b", 2.5)]] * 4
                         + [[("a", 0), ("b", 2.5)], [("a", 0), ("b", 0.0)], [("a", 0), ("b", 0.0)]])


def test_filter_func_removes_keys_at_zero(run):
    out = run(lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1, 2, lambda kv: kv[1] != 0),
              [[("a", 1)], [("b", 2), ("a", 3)]], batches=8)
    assert_batches_equal(out, [[("a", 1)]] + [[("a", 4), ("b", 2)]] * 4 + [[("a", 3), ("b", 2)], [], []])


@pytest.mark.filterwarnings("ignore::runnel.PythonFallbackWarning")
def test_python_path_pair_keeps_arrival_order(run):
    # lists: add concatenates, the inverse drops the oldest values; a window of 5 slides is incremental
    out = run(lambda s: s.map(lambda kv: (kv[0], [kv[1]]))
              .reduceByKeyAndWindow(lambda a, b: a + b, lambda a, b: a[len(b):], 5, 1),
              [[("k", i)] for i in range(7)], batches=7)
    assert out[-1] == [("k", [2, 3, 4, 5, 6])]
    assert out[4] == [("k", [0, 1, 2, 3, 4])]


def test_compiled_pair_runs_incrementally(run):
    out = run(lambda s: s.reduceByKeyAndWindow(lambda a, b: a + b + 0, lambda a, b: a - b - 0, 5, 1),
              [[("a", 2), ("b", 1)], [("a", 3)]], batches=7)
    assert_batches_equal(out, [[("a", 2), ("b", 1)]] + [[("a", 5), ("b", 1)]] * 4 + [[("a", 3), ("b", 0)],
                                                                                       [("a", 0), ("b", 0)]])


def test_reduce_by_window_with_inverse(run):
    out = run(lambda s: s.reduceByWindow(operator.add, operator.sub, 5, 1), [[1, 2], [3], []], batches=7)
    assert out == [[3], [6], [6], [6], [6], [3], [0]]


# --- validation ---------------------------------------------------------------------

def test_durations_must_be_multiples_of_the_parent_slide(ctx):
    from runnel import ManualClock, StreamingContext
    ssc = StreamingContext(ctx, .5, clock=ManualClock())
    try:
        s = ssc.queue_stream([[1]])
        msg = r"windowDuration must be multiple of the parent dstream's slide \(batch\) duration \(500 ms\)"
        with pytest.raises(ValueError, match=msg):
            s.reduceByKeyAndWindow(None, None, 0.1, 0.1)
        with pytest.raises(ValueError, match=msg):
            s.window(1.2)
        with pytest.raises(ValueError, match=msg.replace("windowDuration", "slideDuration")):
            s.reduceByKeyAndWindow(None, None, 1, 0.1)
        with pytest.raises(ValueError, match="slideDuration"):
            s.countByValueAndWindow(1, .7)
        with pytest.raises(ValueError, match=r"\(1000 ms\)"):
            s.window(1, 1).window(1.5, 1)
        with pytest.raises(ValueError, match="positive"):
            s.window(0)
        assert s.window(1.5).slide_duration == .5 and s.window(1.5, 1).slide_duration == 1
    finally:
        ssc.stop(stop_spark_context=False)


# --- properties -----------------------------------------------------------------------

def _windows_from_raw(batches, w, s, nbatches):
    """Reference: reduce the raw records of every window (t-w, t], t = s, 2s, ... <= nbatches."""
    out = []
    for t in range(s, nbatches + 1, s):
        acc = {}
        for i in range(max(0, t - w), min(t, len(batches))):
            for k, v in batches[i]:
                acc[k] = acc.get(k, 0) + v
        out.append(acc)
    return out


_keyed = st.lists(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "é", ""]), st.integers(-50, 50)), max_size=6),
                  min_size=1, max_size=8)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_keyed, st.sampled_from([(5, 1), (6, 1), (3, 1), (4, 2), (10, 2)]), st.sampled_from([1, 3]))
def test_inverse_window_equals_window_recomputed_from_raw_records(run, batches, ws, n):
    w, s = ws
    nb = len(batches) + w
    inc = run(lambda st_: st_.reduceByKeyAndWindow(operator.add, operator.sub, w, s, n), batches, batches=nb)
    plain = run(lambda st_: st_.reduceByKeyAndWindow(operator.add, None, w, s, 1), batches, batches=nb)
    expected = _windows_from_raw(batches, w, s, nb)
    assert len(inc) == len(plain) == len(expected)
    for got_inc, got_plain, exp in zip(inc, plain, expected):
        assert dict(got_plain) == exp
        assert {k: v for k, v in got_inc if v != 0} == {k: v for k, v in exp.items() if v != 0}
        assert len(dict(got_inc)) == len(got_inc)  # one record per key


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_keyed)
def test_result_is_independent_of_num_partitions(run, batches):
    nb = len(batches) + 5
    one = run(lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1, 1), batches, batches=nb)
    four = run(lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1, 4), batches, batches=nb,
               num_partitions=3)
    assert_batches_equal(one, four)


def test_float_drift_stays_bounded_over_many_slides(ctx):
    import random

    from runnel.testing import run_stream
    rnd = random.Random(7)
    nb, w = 96, 10  # data ends at batch 80, drains by 90; 96 is a recomputation slide (96 % 16 == 0)
    batches = [[(k, rnd.choice([0.1, 1e6 + 0.3, -7.7, 1e-3])) for k in rnd.choices("abc", k=4)]
               for _ in range(80)]
    out = run_stream(lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, w, 1), batches, ctx, batches=nb)
    worst = 0.0
    for t, got in enumerate(out, 1):
        window = [r for b in batches[max(0, t - w):t] for r in b]
        for k, v in got:
            exact = math.fsum(x for kk, x in window if kk == k)
            # the error is relative to what passed through the sum since the last exact recomputation
            recent = [r for b in batches[max(0, t - w - W.RECOMPUTE_EVERY):t] for r in b]
            scale = sum(abs(x) for kk, x in recent if kk == k) or 1.0
            worst = max(worst, abs(v - exact) / scale)
    # at most RECOMPUTE_EVERY slides of add/subtract since the last exact recomputation
    assert worst <= 4 * 2 ** -52
    # after draining, every key's window is recomputed to exactly 0.0 at the next recomputation slide
    assert all(v == 0.0 for _, v in out[-1]) and out[-1]


def test_window_tables_round_trip_through_a_checkpoint(ssc, ctx, tmp_path):
    from runnel.checkpoint import load_newest
    ssc.checkpoint(str(tmp_path))
    stream = ssc.queue_stream([ctx.parallelize([("a", 1.5), ("b", 2.0), (3, 4.0)], 2)] * 3)
    red = stream.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1, 3).named("win")
    tables = []
    red.foreach_rdd(lambda ds: tables.append(ds.glom().collect()))
    ssc.start()
    ssc.run_batches(3, timeout=30)
    ssc._checkpointer.after_batch(3000, final=True)
    ssc._checkpointer.flush()
    saved = load_newest(str(tmp_path)).tables["win"]
    t, window = saved["window"]
    assert t == 3000 and len(window) == 3
    assert_batches_equal(tables[-1], [b.to_records() for b in window], ordered=True)
    assert sorted(saved) == ["batch@1000", "batch@2000", "batch@3000", "window"]   # the partials too