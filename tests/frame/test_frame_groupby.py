"""groupby aggregations per batch, running and windowed, against pandas on the same data."""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel import ManualClock, StreamingContext
from runnel.testing import assert_frame_batches_equal, run_frame

AGGS = dict(total=("v", "sum"), n=("v", "count"), m=("v", "mean"), lo=("v", "min"), hi=("v", "max"),
            f=("v", "first"), l=("v", "last"), sd=("v", "std"), va=("v", "var"), u=("v", "nunique"),
            sz=("v", "size"), ni=("i", "sum"))

FRAMES = [
    pd.DataFrame({"k": ["a", "b", "a", None, "c"], "g": [1, 1, 2, 2, 1], "v": [1.0, np.nan, 3.0, 4.0, -1.5],
                  "i": [1, 2, 3, 4, 5]}),
    pd.DataFrame({"k": ["b", "c", "b"], "g": [1, 1, 2], "v": [5.0, 6.0, 5.0], "i": [6, 7, 8]}),
    pd.DataFrame({"k": pd.Series([], dtype=object), "g": pd.Series([], dtype=np.int64),
                  "v": pd.Series([], dtype=np.float64), "i": pd.Series([], dtype=np.int64)}),
    pd.DataFrame({"k": ["a"], "g": [2], "v": [7.0], "i": [9]}),
]


def pandas_agg(df, keys, **aggs):
    if len(df) == 0:
        return pd.DataFrame(columns=list(keys) + list(aggs))
    return df.groupby(list(keys)).agg(**aggs).reset_index()


def window_of(frames, i, length):
    return pd.concat(frames[max(0, i - length + 1):i + 1])


def test_per_batch_aggregates_equal_pandas(ctx):
    out = run_frame(lambda s: s.groupby(["k", "g"]).agg(**AGGS), FRAMES, ctx)
    assert_frame_batches_equal(out, [pandas_agg(f, ["k", "g"], **AGGS) for f in FRAMES], check_dtype=False)


def test_result_dtypes_follow_pandas(ctx):
    out = run_frame(lambda s: s.groupby("k").agg(**AGGS), FRAMES[:1], ctx)
    want = FRAMES[0].groupby("k").agg(**AGGS).reset_index()
    for c in want.columns:
        if c != "k":
            assert out[0][c].dtype == want[c].dtype, c


def test_running_aggregates_equal_pandas_on_all_data_so_far(ctx, tmp_path):
    out = run_frame(lambda s: s.groupby("k").running().agg(**AGGS), FRAMES, ctx, checkpoint=str(tmp_path))
    want = [pandas_agg(pd.concat(FRAMES[:i + 1]), ["k"], **AGGS) for i in range(len(FRAMES))]
    assert_frame_batches_equal(out, want, check_dtype=False)


def test_running_update_mode_gives_changed_keys_only(ctx, tmp_path):
    out = run_frame(lambda s: s.groupby("k").running(mode="update").agg(t=("v", "sum")), FRAMES, ctx,
                    checkpoint=str(tmp_path))
    assert [sorted(df.k) for df in out] == [["a", "b", "c"], ["b", "c"], [], ["a"]]
    assert out[3].t.tolist() == [11.0]


def test_running_ttl_drops_idle_keys(ctx, tmp_path):
    out = run_frame(lambda s: s.groupby("k").running(ttl=2).agg(n=("i", "count")), FRAMES, ctx,
                    checkpoint=str(tmp_path))
    assert [sorted(df.k) for df in out] == [["a", "b", "c"], ["a", "b", "c"], ["b", "c"], ["a"]]


def test_running_without_checkpoint_warns(ssc):
    sdf = ssc.frame.queue(FRAMES[:1])
    sdf.groupby("k").running().agg(n=("i", "count")).foreach_batch(lambda df, t: None)
    with pytest.warns(RuntimeWarning, match="no checkpoint directory"):
        ssc.start()


def test_windowed_aggregates_equal_pandas_on_the_window(ctx, tmp_path):
    out = run_frame(lambda s: s.groupby("k").window(2, 1).agg(**AGGS), FRAMES, ctx, checkpoint=str(tmp_path))
    want = [pandas_agg(window_of(FRAMES, i, 2), ["k"], **AGGS) for i in range(len(FRAMES))]
    assert_frame_batches_equal(out, want, check_dtype=False)


def test_window_slides_every_two_batches(ctx, tmp_path):
    out = run_frame(lambda s: s.groupby("k").window(3, 2).agg(t=("i", "sum")), FRAMES, ctx,
                    checkpoint=str(tmp_path))
    want = [pandas_agg(window_of(FRAMES, i, 3), ["k"], t=("i", "sum")) for i in (1, 3)]
    assert_frame_batches_equal(out, want, check_dtype=False)


def test_window_append_mode_needs_tumbling_windows(ssc):
    gb = ssc.frame.queue(FRAMES[:1]).groupby("k")
    with pytest.raises(ValueError, match="do not overlap"):
        gb.window(3, 1, mode="append")
    gb.window(2, 2, mode="append")
    with pytest.raises(ValueError, match="append"):
        gb.running(mode="append")


def test_size_value_counts_and_shorthands(ctx):
    out = run_frame(lambda s: s.groupby("k").size(), FRAMES, ctx)
    assert_frame_batches_equal(out, [f.groupby("k").size().reset_index(name="size") if len(f) else
                                     pd.DataFrame(columns=["k", "size"]) for f in FRAMES], check_dtype=False)
    out = run_frame(lambda s: s.groupby("g")["k"].value_counts(), FRAMES[:2], ctx)
    assert_frame_batches_equal(out, [f.groupby("g")["k"].value_counts().reset_index() for f in FRAMES[:2]],
                               check_dtype=False)
    out = run_frame(lambda s: s.groupby("k")["i"].sum(), FRAMES[:2], ctx)
    assert_frame_batches_equal(out, [f.groupby("k")["i"].sum().reset_index() for f in FRAMES[:2]])


def test_nlargest_of_an_aggregate(ctx):
    out = run_frame(lambda s: s.groupby("k").agg(t=("i", "sum")).nlargest(2, "t"), FRAMES[:2], ctx)
    assert_frame_batches_equal(out, [pandas_agg(f, ["k"], t=("i", "sum")).nlargest(2, "t") for f in FRAMES[:2]],
                               check_order=True)


def test_aggregate_errors_at_definition(ssc):
    gb = ssc.frame.queue(FRAMES[:1]).groupby("k")
    with pytest.raises(ValueError, match="unknown aggregate"):
        gb.agg(x=("v", "median"))
    with pytest.raises(TypeError, match="numeric column"):
        gb.agg(x=("k", "sum"))
    with pytest.raises(KeyError, match="no column"):
        gb.agg(x=("zz", "sum"))
    with pytest.raises(KeyError, match="no column"):
        ssc.frame.queue(FRAMES[:1]).groupby("zz")


# --- the stream's result equals pandas on all the data, batch boundaries anywhere --------------------

rows = st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(-3, 3),
                          st.one_of(st.floats(-100, 100), st.just(float("nan")))), min_size=1, max_size=40)


def split(df, cuts):
    bounds = sorted({0, len(df), *[c % (len(df) + 1) for c in cuts]})
    return [df.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:])]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows, cuts=st.lists(st.integers(0, 40), max_size=4))
def test_running_result_equals_pandas_on_everything(ctx, data, cuts):
    df = pd.DataFrame(data, columns=["k", "i", "v"])
    frames = split(df, cuts)
    aggs = dict(s=("v", "sum"), c=("v", "count"), m=("v", "mean"), lo=("i", "min"), hi=("v", "max"),
                sd=("v", "std"), f=("v", "first"), u=("i", "nunique"), z=("i", "size"))
    out = run_frame(lambda s: s.groupby(["k", "i"]).running().agg(**aggs), frames, ctx,
                    checkpoint=tempfile.mkdtemp())
    assert_frame_batches_equal(out[-1:], [pandas_agg(df, ["k", "i"], **aggs)], check_dtype=False, rtol=1e-7)
    per_batch = run_frame(lambda s: s.groupby("k").agg(**aggs), frames, ctx)
    assert_frame_batches_equal(per_batch, [pandas_agg(f, ["k"], **aggs) for f in frames], check_dtype=False,
                               rtol=1e-7)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows, cuts=st.lists(st.integers(0, 40), min_size=4, max_size=8))
def test_incremental_window_equals_pandas_on_each_window(ctx, data, cuts):
    df = pd.DataFrame(data, columns=["k", "i", "v"])
    frames = split(df, cuts)
    aggs = dict(s=("v", "sum"), c=("v", "count"), m=("i", "mean"), sd=("v", "std"), z=("i", "size"))
    out = run_frame(lambda s: s.groupby("k").window(5, 1).agg(**aggs), frames + [df.iloc[:0]] * 5, ctx,
                    checkpoint=tempfile.mkdtemp())
    frames = frames + [df.iloc[:0]] * 5
    want = [pandas_agg(window_of(frames, i, 5), ["k"], **aggs) for i in range(len(frames))]
    exact = ["k", "s", "c", "m", "z"]
    assert_frame_batches_equal([o[exact] for o in out], [w[exact] for w in want], check_dtype=False, rtol=1e-6,
                               atol=1e-9)
    # a standard deviation taken back out of a window is exact to about sqrt(eps * sum of squares) (values
    # up to 100, 40 rows: 1e-4); below that, a sum of squared deviations is rounding noise and counts as 0
    assert_frame_batches_equal([o[["k", "sd"]] for o in out], [w[["k", "sd"]] for w in want], check_dtype=False,
                               rtol=1e-6, atol=1e-4)


# --- resumed by name after a crash ----------------------------------------------------------------------

SEEN: dict = {}


class Keep:
    def __init__(self, key):
        self.key = key

    def __call__(self, df, t):
        SEEN.setdefault(self.key, {})[t] = df.sort_values("k").reset_index(drop=True)


DATA = [pd.DataFrame({"k": [f"w{(i * 7 + j) % 5}" for j in range(6)], "v": [float(j + i) for j in range(6)],
                      "i": [(i * 3 + j) % 7 for j in range(6)]}) for i in range(10)]


def program(ctx, directory, key):
    def setup():
        ctx.conf["runnel.streaming.checkpoint.interval"] = "2"
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(directory)
        sdf = ssc.frame.queue(DATA)
        sdf.groupby("k").running(name="totals").agg(t=("v", "sum"), m=("v", "mean"), sd=("v", "std")) \
            .foreach_batch(Keep(key + "/run"))
        sdf.groupby("k").window(5, 1, name="last5").agg(t=("v", "sum"), n=("v", "count")).foreach_batch(Keep(key + "/win"))
        sdf.groupby("k").window(3, 1, name="top3").agg(hi=("v", "max")).foreach_batch(Keep(key + "/max"))
        sdf.groupby("k").running(name="sums").agg(s=("v", "sum")).foreach_batch(Keep(key + "/mean"))
        ints = sdf[["i", "v"]].rename(columns={"i": "k"})     # int keys: merged by direct addressing
        ints.groupby("k").running(name="ints").agg(t=("v", "sum"), m=("v", "mean")).foreach_batch(Keep(key + "/int"))
        return ssc
    return setup


def test_running_and_windowed_aggregates_resume_by_name_after_a_crash(ctx, tmp_path, clean_conf):
    SEEN.clear()
    ref = program(ctx, str(tmp_path / "ref"), "ref")()
    ref.start()
    ref.run_batches(10)
    ref.stop(stop_spark_context=False)
    d = str(tmp_path / "ck")
    ssc = program(ctx, d, "a")()
    ssc.start()
    ssc.run_batches(7)
    ssc._checkpointer.flush()
    ssc.stop(stop_spark_context=False)          # not graceful: what a crash leaves behind
    ssc = StreamingContext.resume(d, program(ctx, d, "a"))
    ssc.start()
    ssc.run_batches(4)                          # from the checkpoint at 6 s: batches 7..10
    ssc.stop(stop_spark_context=False)
    for part in ("run", "win", "max", "mean", "int"):
        want, got = SEEN["ref/" + part], SEEN["a/" + part]
        assert sorted(got) == sorted(want)
        for t in want:
            pd.testing.assert_frame_equal(got[t], want[t])


# --- incremental windows ----------------------------------------------------------------------------

LONG = [pd.DataFrame({"k": [f"k{(i * 3 + j) % 4}" if (i + j) % 5 else None for j in range(5)],
                      "v": [float((i * 7 + j * 3) % 11) - 5 if (i + j) % 6 else np.nan for j in range(5)]})
        for i in range(20)] + [pd.DataFrame({"k": pd.Series([], dtype=object), "v": pd.Series([], dtype=float)})] * 3

INVERTIBLE_AGGS = dict(s=("v", "sum"), c=("v", "count"), m=("v", "mean"), sd=("v", "std"), va=("v", "var"),
                       z=("v", "size"))


@pytest.mark.parametrize("aggs", [INVERTIBLE_AGGS, dict(lo=("v", "min"), f=("v", "last"), s=("v", "sum"))],
                         ids=["incremental", "from-partials"])
def test_long_windows_equal_pandas_on_the_window(ctx, tmp_path, aggs):
    """Windows of 5 slides over 23 batches: keys enter and leave, all rows of the last batches leave,
    and the exact recomputation (every 16th slide) comes by."""
    out = run_frame(lambda s: s.groupby("k").window(5, 1).agg(**aggs), LONG, ctx, checkpoint=str(tmp_path))
    want = [pandas_agg(window_of(LONG, i, 5), ["k"], **aggs) for i in range(len(LONG))]
    assert_frame_batches_equal(out, want, check_dtype=False, rtol=1e-7)


def test_invertible_windows_update_incrementally(ssc):
    from runnel.frame.window import WindowAggDStream
    sdf = ssc.frame.queue(LONG[:1])
    inc = sdf.groupby("k").window(5, 1).agg(**INVERTIBLE_AGGS)
    full = sdf.groupby("k").window(5, 1).agg(lo=("v", "min"))
    short = sdf.groupby("k").window(2, 1).agg(s=("v", "sum"))
    assert [f.stream.parents[0].incremental for f in (inc, full, short)] == [True, False, False]
    assert all(isinstance(f.stream.parents[0], WindowAggDStream) for f in (inc, full, short))


@pytest.mark.parametrize("func", ["sum", "count", "mean", "min", "max", "size"])
@pytest.mark.parametrize("column", ["v", "i"])
def test_one_running_aggregate_runs_on_the_builtin_updaters(ctx, tmp_path, func, column):
    frames = [f.assign(k=f.k.map({"a": 1, "b": 2, "c": 3}).astype("float64")).dropna(subset=["k"])
              .astype({"k": "int64"}) for f in FRAMES]
    out = run_frame(lambda s: s.groupby("k").running().agg(r=(column, func)), frames, ctx,
                    checkpoint=str(tmp_path))
    want = [pandas_agg(pd.concat(frames[:i + 1]), ["k"], r=(column, func)) for i in range(len(frames))]
    assert_frame_batches_equal(out, want, check_dtype=False)


def test_builtin_running_path_is_taken_for_one_aggregate(ssc):
    sdf = ssc.frame.queue(FRAMES[:1])
    fast = sdf.groupby("k").running().agg(m=("i", "mean"))
    general = sdf.groupby("k").running().agg(m=("v", "mean"))   # float mean: keys of NaNs only show NaN
    assert type(fast.stream.parents[0]).__name__ == "UpdateStateDStream"
    assert type(general.stream.parents[0]).__name__ == "RunningAggDStream"


# --- running tables of int keys in a small range merge by direct addressing ---------------------------

int_rows = st.lists(st.tuples(st.one_of(st.integers(-3, 5), st.sampled_from([2**40, -2**40])), st.integers(-3, 3),
                              st.one_of(st.floats(-100, 100), st.just(float("nan")))), min_size=1, max_size=40)
ADDITIVE_AGGS = dict(s=("v", "sum"), c=("v", "count"), m=("v", "mean"), z=("i", "size"), si=("i", "sum"),
                     mi=("i", "mean"))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=int_rows, cuts=st.lists(st.integers(0, 40), max_size=4), mode=st.sampled_from(["complete", "update"]),
       nulls=st.booleans())
def test_running_additive_aggregates_of_int_keys_equal_pandas(ctx, data, cuts, mode, nulls):
    # keys in [-3, 5] merge by direct addressing; a key of +-2**40 makes the range too wide: merged by hashing,
    # from then on or for a batch, over a table the other path left. Batches without a null value also
    # reduce to partials by direct addressing (sorted by key); a batch with one, by hashing
    df = pd.DataFrame(data, columns=["k", "i", "v"])
    if not nulls:
        df["v"] = df.v.fillna(0.25)
    frames = split(df, cuts)
    out = run_frame(lambda s: s.groupby("k").running(mode=mode).agg(**ADDITIVE_AGGS), frames, ctx,
                    checkpoint=tempfile.mkdtemp())
    want = []
    for j, f in enumerate(frames):
        so_far = pandas_agg(pd.concat(frames[:j + 1]), ["k"], **ADDITIVE_AGGS)
        want.append(so_far[so_far.k.isin(f.k)] if mode == "update" else so_far)
    assert_frame_batches_equal(out, want, check_dtype=False, atol=1e-9)


def test_running_ttl_drops_idle_int_keys(ctx, tmp_path):
    frames = [f.dropna(subset=["k"]).assign(k=lambda d: d.k.map({"a": 1, "b": 2, "c": 3}).astype("int64"))
              for f in FRAMES]
    out = run_frame(lambda s: s.groupby("k").running(ttl=2).agg(n=("i", "count"), s=("v", "sum")), frames, ctx,
                    checkpoint=str(tmp_path))
    assert [sorted(df.k) for df in out] == [[1, 2, 3], [1, 2, 3], [2, 3], [1]]
    assert out[3].s.tolist() == [7.0]     # key 1 left at the third batch and came back afresh


def test_key_range_merge_is_taken_for_int_keys_and_additive_aggregates_only():
    from runnel.batch import Batch
    from runnel.frame.aggregate import AggSpec, merge, merge_key_range, partial
    specs = (AggSpec("m", "v", "mean"), AggSpec("n", None, "size"))
    a = partial(Batch({"k": np.array([3, 1, 3]), "v": np.array([1.0, np.nan, 2.0])}), ("k",), specs)
    b = partial(Batch({"k": np.array([2, 3]), "v": np.array([5.0, 4.0])}), ("k",), specs)
    table, touched, seen = merge_key_range(a, np.array([1000, 1000]), b, ("k",), specs, 2000, 0)
    want = merge([a, b], ("k",), specs)
    order = np.argsort(want.columns["k"])
    for name, col in table.columns.items():
        np.testing.assert_array_equal(col, np.asarray(want.columns[name])[order])
    # without a ttl no batch time per key is kept: the marks say which keys the batch updated
    assert table.columns["k"].tolist() == [1, 2, 3] and touched.tolist() == [False, True, True] and seen is None
    table, touched, seen = merge_key_range(a, np.array([1000, 1000]), b, ("k",), specs, 2000, 5000)
    assert table.columns["k"].tolist() == [1, 2, 3] and seen.tolist() == [1000, 2000, 2000]
    # key 1 idle since 0 leaves (ttl 1.5 s); key 3, as old, stays: the batch updated it
    table, touched, _ = merge_key_range(a, np.array([0, 0]), b, ("k",), specs, 2000, 1500)
    assert table.columns["k"].tolist() == [2, 3] and touched.tolist() == [True, True]
    assert merge_key_range(a, None, b, ("k",), (AggSpec("lo", "v", "min"),), 2000, 0) is None
    wide = partial(Batch({"k": np.array([2**50]), "v": np.array([1.0])}), ("k",), specs)
    assert merge_key_range(a, np.array([0, 0]), wide, ("k",), specs, 2000, 0) is None
    text = partial(Batch({"k": np.array(["x"], dtype=object), "v": np.array([1.0])}), ("k",), specs)
    assert merge_key_range(text, np.array([0]), text, ("k",), specs, 2000, 0) is None


# --- partials of int keys in a small range by direct addressing (sorted_reduce), as the hash path's -----------

dense_rows = st.lists(st.tuples(st.integers(-5, 60), st.integers(-2**40, 2**40),
                                st.one_of(st.floats(-1e6, 1e6), st.sampled_from([-0.0, 0.0])), st.booleans()),
                      min_size=1, max_size=60)
DENSE_SPECS = dict(s=("v", "sum"), m=("v", "mean"), c=("v", "count"), z=(None, "size"), si=("i", "sum"),
                   mi=("i", "mean"), sb=("b", "sum"), cb=("b", "count"))


@settings(max_examples=80, deadline=None)
@given(rows=dense_rows, spoil=st.sampled_from([None, "wide key", "nan value"]))
def test_sorted_partials_equal_the_hash_path_bit_for_bit_and_pandas(rows, spoil):
    from runnel.batch import Batch, column_take
    from runnel.frame.aggregate import (AggSpec, finalize, group_codes, partial, partial_by_codes,
                                        result_schema_batch)
    df = pd.DataFrame(rows, columns=["k", "i", "v", "b"])
    if spoil == "wide key":     # a key range too wide to address: grouped by hash
        df.loc[0, "k"] = 2**40
    elif spoil == "nan value":  # a null value: its count differs from the rows, grouped by hash
        df.loc[0, "v"] = np.nan
    cols = {"k": df.k.to_numpy(np.int64), "i": df.i.to_numpy(np.int64), "v": df.v.to_numpy(np.float64),
            "b": df.b.to_numpy(bool)}
    specs = tuple(AggSpec(out, col, func) for out, (col, func) in DENSE_SPECS.items())
    got = partial(Batch(cols), ("k",), specs)
    codes, first = group_codes([cols["k"]])
    ref = partial_by_codes(cols, {"k": column_take(cols["k"], first)}, specs, codes, len(first))
    keys = got.columns["k"].tolist()
    # direct addressing gives the keys sorted; grouping by hash in order of first appearance
    assert keys == (sorted(set(df.k)) if spoil is None else list(dict.fromkeys(df.k)))
    order = {k: j for j, k in enumerate(ref.columns["k"].tolist())}
    idx = np.array([order[k] for k in keys], np.int64)
    for name, col in got.columns.items():
        want = np.asarray(ref.columns[name])[idx]
        assert col.dtype == want.dtype and col.tobytes() == want.tobytes(), name   # -0.0 sums as 0.0 too
    result = result_schema_batch(("k",), specs, {"k": "int64", "i": "int64", "v": "float64", "b": "bool"})
    out = finalize(got, ("k",), specs, result).to_pandas()
    want = df.groupby("k").agg(**{o: (c, f) for o, (c, f) in DENSE_SPECS.items() if f != "size"},
                               z=("k", "size")).reset_index()
    assert_frame_batches_equal([out], [want[out.columns]], check_dtype=False, rtol=1e-9)
