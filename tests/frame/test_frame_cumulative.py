"""Cumulative and rolling operations per key, carried across batches, against pandas on all the data."""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel import ManualClock, StreamingContext
from runnel.testing import assert_frame_batches_equal, run_frame

OPS = {
    "cumsum_float": (lambda g: g["v"].cumsum(name="out"), lambda d: d.groupby("k")["v"].cumsum()),
    "cumsum_int": (lambda g: g["i"].cumsum(name="out"), lambda d: d.groupby("k")["i"].cumsum()),
    "cummax": (lambda g: g["v"].cummax(name="out"), lambda d: d.groupby("k")["v"].cummax()),
    "cummin": (lambda g: g["i"].cummin(name="out"), lambda d: d.groupby("k")["i"].cummin()),
    "cumcount": (lambda g: g["v"].cumcount(name="out"), lambda d: d.groupby("k").cumcount()),
    "shift2": (lambda g: g["v"].shift(2, name="out"), lambda d: d.groupby("k")["v"].shift(2)),
    "diff": (lambda g: g["i"].diff(name="out"), lambda d: d.groupby("k")["i"].diff(1)),
    "rolling_sum3": (lambda g: g["v"].rolling(3).sum(name="out"),
                     lambda d: d.groupby("k")["v"].rolling(3).sum().reset_index(level=0, drop=True)),
    "rolling_mean2": (lambda g: g["i"].rolling(2).mean(name="out"),
                      lambda d: d.groupby("k")["i"].rolling(2).mean().reset_index(level=0, drop=True)),
    "ewm_mean": (lambda g: g["v"].ewm(alpha=0.3).mean(name="out"),
                 lambda d: d.groupby("k")["v"].ewm(alpha=0.3).mean().reset_index(level=0, drop=True)),
    "ewm_mean_span_unadjusted": (
        lambda g: g["v"].ewm(span=4, adjust=False, min_periods=2).mean(name="out"),
        lambda d: d.groupby("k")["v"].ewm(span=4, adjust=False, min_periods=2).mean().reset_index(level=0, drop=True)),
    "ewm_sum_ignore_na": (lambda g: g["v"].ewm(halflife=2.5, ignore_na=True).sum(name="out"),
                          lambda d: d.groupby("k")["v"].ewm(halflife=2.5, ignore_na=True).sum()
                          .reset_index(level=0, drop=True)),
    "ewm_std": (lambda g: g["v"].ewm(com=0.5).std(name="out"),
                lambda d: d.groupby("k")["v"].ewm(com=0.5).std().reset_index(level=0, drop=True)),
    "ewm_var_bias_int": (lambda g: g["i"].ewm(alpha=0.7, adjust=False).var(bias=True, name="out"),
                         lambda d: d.groupby("k")["i"].ewm(alpha=0.7, adjust=False).var(bias=True)
                         .reset_index(level=0, drop=True)),
}


def expected(frames, ref):
    everything = pd.concat(frames, ignore_index=True)
    full = everything.assign(out=ref(everything))
    out, start = [], 0
    for f in frames:
        out.append(full.iloc[start:start + len(f)])
        start += len(f)
    return out


def frames_of(seed, n=4, rows=7):
    rng = np.random.default_rng(seed)
    return [pd.DataFrame({"k": rng.choice(["a", "b", "c"], rows),
                          "v": np.where(rng.random(rows) < 0.2, np.nan, rng.integers(-5, 5, rows).astype(float)),
                          "i": rng.integers(-5, 5, rows)}) for _ in range(n)]


@pytest.mark.parametrize("op", sorted(OPS))
def test_carried_across_batches_equals_pandas_on_all_data(ctx, op, tmp_path):
    build, ref = OPS[op]
    frames = frames_of(0)
    out = run_frame(lambda s: build(s.groupby("k")), frames, ctx, checkpoint=str(tmp_path))
    assert_frame_batches_equal(out, expected(frames, ref), check_dtype=False)


def test_output_dtypes(ssc):
    sdf = ssc.frame.queue(frames_of(1, 1))
    g = sdf.groupby("k")
    assert g["i"].cumsum().dtypes["i_cumsum"] == "int64"
    assert g["v"].cumsum().dtypes["v_cumsum"] == "float64"
    assert g["i"].shift().dtypes["i_shift"] == "float64"
    with pytest.raises(ValueError, match="needs a column"):
        g.cumsum()
    with pytest.raises(TypeError, match="numeric"):
        g["k"].cumsum()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from("abc"), st.integers(-9, 9)), min_size=1, max_size=30),
       cuts=st.lists(st.integers(0, 30), max_size=5), op=st.sampled_from(sorted(OPS)))
def test_batch_boundaries_anywhere(ctx, rows, cuts, op):
    df = pd.DataFrame(rows, columns=["k", "i"]).assign(v=lambda d: d.i.astype(float))
    bounds = sorted({0, len(df), *[c % (len(df) + 1) for c in cuts]})
    frames = [df.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:])]
    build, ref = OPS[op]
    out = run_frame(lambda s: build(s.groupby("k")), frames, ctx, checkpoint=tempfile.mkdtemp())
    assert_frame_batches_equal(out, expected(frames, ref), check_dtype=False)


# --- the carries survive a crash: restored from the checkpoint -------------------------------------------

SEEN: dict = {}


class Keep:
    def __init__(self, key):
        self.key = key

    def __call__(self, df, t):
        SEEN.setdefault(self.key, {})[t] = df.sort_values(list(df.columns)).reset_index(drop=True)


CRASH_DATA = [pd.DataFrame({"k": [f"w{(i * 7 + j) % 4}" for j in range(5)],
                            "v": [float((i * 5 + j * 3) % 7) - 2 if (i + j) % 6 else np.nan for j in range(5)],
                            "i": [(i * 3 + j) % 9 - 4 for j in range(5)]}) for i in range(10)]


def carried_program(ctx, directory, key, named):
    """cumsum, cummax, rolling mean, ewm std and shift chained, each keeping a carry per key."""
    def setup():
        ctx.conf["runnel.streaming.checkpoint.interval"] = "2"
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(directory)
        out = ssc.frame.queue(CRASH_DATA)
        steps = [("cs", lambda g: g["v"].cumsum()), ("cm", lambda g: g["i"].cummax()),
                 ("roll", lambda g: g["v"].rolling(3).mean()), ("ewm", lambda g: g["v"].ewm(span=3).std()),
                 ("sh", lambda g: g["i"].shift(2))]
        for name, step in steps:
            g = out.groupby("k")
            out = step(g.running(name=name) if named else g)
        out.foreach_batch(Keep(key))
        return ssc
    return setup


@pytest.mark.parametrize("restart", ["resume_by_name", "get_or_create"])
def test_carries_resume_from_the_checkpoint_after_a_crash(ctx, tmp_path, clean_conf, restart):
    SEEN.clear()
    named = restart == "resume_by_name"
    ref = carried_program(ctx, str(tmp_path / "ref"), "ref", named)()
    ref.start()
    ref.run_batches(10)
    ref.stop(stop_spark_context=False)
    d = str(tmp_path / "ck")
    ssc = carried_program(ctx, d, "a", named)()
    ssc.start()
    ssc.run_batches(7)
    ssc._checkpointer.flush()
    ssc.stop(stop_spark_context=False)          # not graceful: what a crash leaves behind
    if named:
        ssc = StreamingContext.resume(d, carried_program(ctx, d, "a", named))
    else:
        ssc = StreamingContext.get_or_create(d, carried_program(ctx, d, "unused", named))
    ssc.start()
    ssc.run_batches(4)                          # from the checkpoint at 6 s: batches 7..10
    ssc.stop(stop_spark_context=False)
    want, got = SEEN["ref"], SEEN["a"]
    assert sorted(got) == sorted(want) and len(want) == 10
    for t in want:
        pd.testing.assert_frame_equal(got[t], want[t])
    # and the reference is pandas on all the data
    everything = pd.concat(CRASH_DATA, ignore_index=True)
    g = everything.groupby("k")
    last = everything.assign(v_cumsum=g["v"].cumsum(), i_cummax=g["i"].cummax(),
                             v_rolling_mean=g["v"].rolling(3).mean().reset_index(level=0, drop=True),
                             v_ewm_std=g["v"].ewm(span=3).std().reset_index(level=0, drop=True),
                             i_shift=g["i"].shift(2)).iloc[-5:]
    assert_frame_batches_equal([want[max(want)]], [last], check_dtype=False)


@pytest.mark.parametrize("op", ["cumsum_float", "rolling_sum3", "rolling_mean2"])
def test_a_big_key_does_not_swallow_a_small_one(ctx, op):
    # one key's 1e17 shares the partition (and local's sorted segments) with another key's small values:
    # a running sum across keys gave that key 0.0 where pandas gives 1, 3, 7
    build, ref = OPS[op]
    frames = [pd.DataFrame({"k": ["a", "b", "b"], "v": [1e17, 1.0, 2.0], "i": [0, 0, 0]}),
              pd.DataFrame({"k": ["b", "a", "b"], "v": [4.0, 1e17, 8.0], "i": [0, 0, 0]})]
    if op == "rolling_mean2":      # rolling_mean2 reads the int column: make it the one with the magnitudes
        frames = [f.assign(i=np.where(f.k == "a", 10**17, f.v.astype(np.int64))) for f in frames]
    out = run_frame(lambda s: build(s.groupby("k")), frames, ctx, checkpoint=tempfile.mkdtemp())
    assert_frame_batches_equal(out, expected(frames, ref), check_dtype=False, rtol=0, atol=0)


# --- ttl: an idle key's carry leaves (groupby(k).running(ttl=...)) -----------------------------------------

def ttl_segments(frames, ttl_batches):
    """All rows with ``seg``: a key starts afresh when more than ``ttl_batches`` batches passed since its last
    row (1 s batches; as running(ttl=): a key back in the batch it would leave in stays)."""
    df = pd.concat([f.assign(batch=i) for i, f in enumerate(frames)], ignore_index=True)
    gap = df.groupby("k").batch.diff().fillna(0)
    return df.assign(seg=(gap > ttl_batches).astype(int).groupby(df.k).cumsum())


TTL_OPS = {
    "cumsum": (lambda g: g["v"].cumsum(name="out"), lambda d, by: d.groupby(by)["v"].cumsum()),
    "cumcount": (lambda g: g["v"].cumcount(name="out"), lambda d, by: d.groupby(by).cumcount()),
    "shift": (lambda g: g["i"].shift(1, name="out"), lambda d, by: d.groupby(by)["i"].shift(1)),
    "rolling_sum2": (lambda g: g["v"].rolling(2).sum(name="out"),
                     lambda d, by: d.groupby(by)["v"].rolling(2).sum().reset_index(level=[0, 1], drop=True)),
    "ewm_mean": (lambda g: g["v"].ewm(alpha=0.5).mean(name="out"),
                 lambda d, by: d.groupby(by)["v"].ewm(alpha=0.5).mean().reset_index(level=[0, 1], drop=True)),
}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.tuples(st.sampled_from("abc"), st.integers(-9, 9)), max_size=4),
                        min_size=1, max_size=9),
       ttl=st.integers(1, 3), op=st.sampled_from(sorted(TTL_OPS)))
def test_carries_with_a_ttl_forget_idle_keys_as_pandas_restarting_them(ctx, batches, ttl, op):
    # "z" in every batch: no batch is empty; the others come and go
    frames = [pd.DataFrame([("z", 0)] + b, columns=["k", "i"]).assign(v=lambda d: d.i.astype(float)) for b in batches]
    build, ref = TTL_OPS[op]
    out = run_frame(lambda s: build(s.groupby("k").running(ttl=ttl)), frames, ctx, checkpoint=tempfile.mkdtemp())
    df = ttl_segments(frames, ttl)
    want = df.assign(out=ref(df, ["k", "seg"]))
    want = [want[want.batch == i].drop(columns=["batch", "seg"]) for i in range(len(frames))]
    assert_frame_batches_equal(out, want, check_dtype=False)


def test_a_carry_with_a_ttl_drops_idle_keys_from_its_table(ssc, tmp_path):
    from runnel.listener import StreamingListener
    keys = []

    class Listen(StreamingListener):
        def onBatchCompleted(self, batch):
            keys.append(batch.batchInfo().state_tables["carry"]["keys"])

    ssc.checkpoint(str(tmp_path))
    frames = [pd.DataFrame({"k": ["a", "b"], "v": [1.0, 2.0]}), pd.DataFrame({"k": ["b"], "v": [3.0]}),
              pd.DataFrame({"k": ["b"], "v": [4.0]}), pd.DataFrame({"k": ["a", "b"], "v": [5.0, 6.0]})]
    out = []
    sdf = ssc.frame.queue(frames)
    sdf.groupby("k").running(ttl=2, name="carry")["v"].cumsum().foreach_batch(lambda df, t: out.append(df))
    ssc.add_streaming_listener(Listen())
    ssc.start()
    ssc.run_batches(4)
    # a, idle since 1 s, leaves the table at 3 s; at 4 s it starts again from 5
    assert keys == [2, 2, 1, 2]
    assert [df.v_cumsum.tolist() for df in out] == [[1.0, 2.0], [5.0], [9.0], [5.0, 15.0]]
    with pytest.raises(ValueError, match="ttl must be positive"):
        sdf.groupby("k").running(ttl=-1)
