"""Joins: stream-static, stream-stream within a window of batches, as-of the latest value per key."""

from __future__ import annotations

import tempfile

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel import ManualClock, StreamingContext
from runnel.testing import assert_frame_batches_equal, run_frame

FRAMES = [pd.DataFrame({"k": ["a", "b", "z", "a"], "v": [1, 2, 3, 4]}), pd.DataFrame({"k": ["b", "c"], "v": [4, 5]})]
STATIC = pd.DataFrame({"k": ["a", "b", "c", "a"], "w": [10.5, 20.5, 30.5, 11.5], "v": [0, 0, 0, 1]})


@pytest.mark.parametrize("how", ["inner", "left"])
def test_stream_static_merge_equals_pandas(ctx, how):
    out = run_frame(lambda s: s.merge(STATIC, on="k", how=how), FRAMES, ctx)
    assert_frame_batches_equal(out, [f.merge(STATIC, on="k", how=how) for f in FRAMES], check_dtype=False)


def test_static_side_reloads_when_refresh_has_passed(ssc):
    loads = []

    def load():
        loads.append(1)
        return pd.DataFrame({"k": ["a"], "n": [len(loads)]})
    out = []
    sdf = ssc.frame.queue([FRAMES[0]] * 3)
    sdf.merge(load, on="k", refresh=0).foreach_batch(lambda df, t: out.append(df.n.tolist()))
    sdf.merge(load, on="k").foreach_batch(lambda df, t: out.append(("once", df.n.tolist())))
    ssc.start()
    ssc.run_batches(3)
    fresh = [o for o in out if not isinstance(o, tuple)]
    once = [o[1] for o in out if isinstance(o, tuple)]
    assert [x[0] for x in fresh] == sorted(x[0] for x in fresh) and len({x[0] for x in fresh}) == 3
    assert len({x[0] for x in once}) == 1


def brute_within(left, right, within, how):
    """Each (left row, right row) of the same key whose batches are < within apart, in the later batch."""
    out = [[] for _ in left]
    for i, lf in enumerate(left):
        for j, rf in enumerate(right):
            if abs(i - j) < within:
                m = lf.merge(rf, on="k", how="inner")
                if len(m):
                    out[max(i, j)].append(m)
        if how == "left" and i + within - 1 < len(left):   # once no match can arrive any more
            seen = pd.concat([rf for j, rf in enumerate(right) if abs(i - j) < within] or [right[0].iloc[:0]])
            miss = lf[~lf.k.isin(seen.k)]
            if len(miss):
                out[i + within - 1].append(miss.assign(y=float("nan")))
    cols = ["k", "x", "y"]
    return [pd.concat(o)[cols] if o else pd.DataFrame(columns=cols) for o in out]


def run_two(ctx, left, right, build):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.checkpoint(tempfile.mkdtemp())
    try:
        out = []
        build(ssc.frame.queue(left), ssc.frame.queue(right)).foreach_batch(lambda df, t: out.append(df))
        ssc.start()
        ssc.run_batches(len(left))
        ssc.await_termination_or_timeout(0)
    finally:
        ssc.stop(stop_spark_context=False)
    return out


side = st.lists(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 99)), max_size=4), min_size=4, max_size=4)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(left=side, right=side, within=st.integers(1, 3), how=st.sampled_from(["inner", "left"]))
def test_stream_stream_merge_pairs_each_match_once(ctx, left, right, within, how):
    lf = [pd.DataFrame(b or [("a", -1)], columns=["k", "x"]) for b in left]
    rf = [pd.DataFrame(b or [("b", -1)], columns=["k", "y"]) for b in right]
    out = run_two(ctx, lf, rf, lambda a, b: a.merge(b, on="k", how=how, within=within))
    assert_frame_batches_equal(out, brute_within(lf, rf, within, how), check_dtype=False)


def test_merge_asof_takes_the_latest_value_per_key(ctx):
    left = [pd.DataFrame({"k": ["a", "b"], "x": [1, 2]}), pd.DataFrame({"k": ["c"], "x": [3]}),
            pd.DataFrame({"k": ["a", "c"], "x": [4, 5]})]
    right = [pd.DataFrame({"k": ["a", "a"], "y": [10, 11]}), pd.DataFrame({"k": ["c"], "y": [30]}),
             pd.DataFrame({"k": ["c", "b"], "y": [31, 20]})]
    out = run_two(ctx, left, right, lambda a, b: a.merge_asof(b, on="k"))
    want = []
    for i, lf in enumerate(left):
        latest = pd.concat(right[:i + 1]).drop_duplicates("k", keep="last")
        want.append(lf.merge(latest, on="k", how="left"))
    assert_frame_batches_equal(out, want, check_dtype=False)


def test_merge_arguments_are_checked(ssc):
    sdf = ssc.frame.queue(FRAMES)
    with pytest.raises(ValueError, match="within"):
        sdf.merge(ssc.frame.queue(FRAMES), on="k")
    with pytest.raises(ValueError, match="how"):
        sdf.merge(STATIC, on="k", how="outer")
    with pytest.raises(KeyError, match="static table has no column"):
        sdf.merge(STATIC.drop(columns=["k"]), on="k")
