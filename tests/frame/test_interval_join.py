"""Interval joins on event time against pandas over all the on-time rows; buffers bounded by the watermarks.

The reference walks the batches as the engine's contract says: the watermark
in force for batch i of a side is max(its event times of batches < i) - delay;
a row before it is late and joins nothing; every other pair of equal keys
within the interval comes out once, in the batch of its later row.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pyarrow as pa
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel import ManualClock, StreamingContext
from runnel.listener import StreamingListener

SCHEMA = {"k": "string", "ts": "int64", "v": "int64"}


def frames_of(rows, batches):
    """Rows (k, ts, v, batch) -> one frame per batch (empty ones too)."""
    df = pd.DataFrame(rows, columns=["k", "ts", "v", "batch"])
    return [df[df.batch == i].drop(columns="batch").reset_index(drop=True) for i in range(batches)]


def on_time(frames, delay):
    """The rows that are not behind their side's watermark, with their batch."""
    out, top = [], None
    for i, f in enumerate(frames):
        before = None if top is None or delay is None else top - delay
        keep = f if before is None else f[f.ts >= before]
        out.append(keep.assign(batch=i))
        if len(f):
            top = max(top, int(f.ts.max())) if top is not None else int(f.ts.max())
    return pd.concat(out, ignore_index=True)


def expected(left, right, dl, dr, lower, upper, inclusive):
    m = on_time(left, dl).merge(on_time(right, dr), on="k")
    if lower is not None or upper is not None:
        lo = -np.inf if lower is None else m.ts_y + lower
        hi = np.inf if upper is None else m.ts_y + upper
        m = m[m.ts_x.between(lo, hi, inclusive=inclusive)]
    return m.assign(batch=np.maximum(m.batch_x, m.batch_y))


def run_join(ctx, left, right, build, listener=None):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.checkpoint(tempfile.mkdtemp())
    try:
        out = []
        build(ssc.frame.queue(left, schema=SCHEMA), ssc.frame.queue(right, schema=SCHEMA)).foreach_batch(
            lambda df, t: out.append(df))
        if listener is not None:
            ssc.add_streaming_listener(listener)
        ssc.start()
        ssc.run_batches(len(left))
    finally:
        ssc.stop(stop_spark_context=False)
    return out


COLUMNS = ["k", "ts_x", "v_x", "ts_y", "v_y"]


def same_rows(got: pd.DataFrame, want: pd.DataFrame):
    assert list(got.columns) == COLUMNS
    g = got[COLUMNS].sort_values(COLUMNS).reset_index(drop=True)
    w = want[COLUMNS].sort_values(COLUMNS).reset_index(drop=True)
    pd.testing.assert_frame_equal(g, w, check_dtype=False)


BATCHES = 5
side = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 60), st.integers(0, 9),
                          st.integers(0, BATCHES - 1)), max_size=30)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(left=side, right=side, dl=st.one_of(st.none(), st.integers(0, 15)), dr=st.one_of(st.none(), st.integers(0, 15)),
       lower=st.one_of(st.none(), st.integers(-10, 3)), width=st.one_of(st.none(), st.integers(0, 12)),
       inclusive=st.sampled_from(["both", "left", "right", "neither"]))
def test_pairs_of_on_time_rows_come_out_once_in_the_batch_of_the_later_row(ctx, left, right, dl, dr, lower, width,
                                                                          inclusive):
    # rows come in any order; each side's watermark (when it has one) runs its own delay behind it
    upper = None if width is None else (lower if lower is not None else 0) + width
    lf, rf = frames_of(sorted(left, key=lambda r: r[3]), BATCHES), frames_of(sorted(right, key=lambda r: r[3]), BATCHES)

    def build(a, b):
        a = a if dl is None else a.with_watermark("ts", dl)
        b = b if dr is None else b.with_watermark("ts", dr)
        return a.join_interval(b, on="k", time="ts", lower=lower, upper=upper, inclusive=inclusive)
    got = run_join(ctx, lf, rf, build)
    want = expected(lf, rf, dl, dr, lower, upper, inclusive)
    assert len(got) == BATCHES
    for i, df in enumerate(got):
        same_rows(df, want[want.batch == i])


class States(StreamingListener):
    def __init__(self):
        self.tables = []

    def onBatchCompleted(self, batch):
        self.tables.append(batch.batchInfo().state_tables)


def test_buffers_hold_only_rows_the_other_side_can_still_reach(ctx):
    # 40 batches of 10 rows, event time 1 per row, both sides in order: each buffer keeps about
    # (interval + the other side's delay) of event time, whatever the length of the run
    n, per = 40, 10
    rows = [("a" if i % 2 else "b", i, i, i // per) for i in range(n * per)]
    left, right = frames_of(rows, n), frames_of(rows, n)
    states = States()
    out = run_join(ctx, left, right, lambda a, b: a.with_watermark("ts", 2).join_interval(
        b.with_watermark("ts", 3), on="k", lower=-4, upper=1, name="j"), states)
    held = [(s["j.left"]["keys"], s["j.right"]["keys"]) for s in states.tables]
    # a left row at a stays while a + 4 >= W_right (= newest - 3); a right row at b while b + 1 >= W_left
    assert max(h[0] for h in held[2:]) <= 4 + 3 + 1 and max(h[1] for h in held[2:]) <= 1 + 2 + 1
    assert min(h[0] for h in held[2:]) > 0
    total = sum(map(len, out))
    want = expected(left, right, 2, 3, -4, 1, "both")
    assert total == len(want) and total > n * per
    assert all(s["j.left"]["late_rows"] == 0 for s in states.tables)


def test_late_rows_of_each_side_are_counted_on_its_buffer(ctx):
    left = [pd.DataFrame({"k": ["a", "a"], "ts": [20, 21], "v": [1, 2]}),
            pd.DataFrame({"k": ["a", "a", "b"], "ts": [3, 30, 4], "v": [3, 4, 5]})]      # 3 and 4: behind 21 - 5
    right = [pd.DataFrame({"k": ["a"], "ts": [20], "v": [1]}), pd.DataFrame({"k": ["a"], "ts": [2], "v": [2]})]
    states = States()
    run_join(ctx, left, right, lambda a, b: a.with_watermark("ts", 5).join_interval(
        b.with_watermark("ts", 1), on="k", lower=-2, upper=2, name="j"), states)
    assert [(s["j.left"]["late_rows"], s["j.right"]["late_rows"]) for s in states.tables] == [(0, 0), (2, 1)]


def test_late_rows_of_a_join_result_say_to_ask_each_side_whose_late_rows_are_the_rows_left_out(ctx):
    # the sides have different columns: no one frame holds both sides' late rows, so the result says where
    # they are; each side's late_rows() gives exactly the rows that joined nothing for being late
    left = [pd.DataFrame({"k": ["a", "a"], "ts": [20, 21], "v": [1, 2]}),
            pd.DataFrame({"k": ["a", "a", "b"], "ts": [3, 30, 4], "v": [3, 4, 5]})]      # 3 and 4: behind 21 - 5
    right = [pd.DataFrame({"k": ["a"], "ts": [20], "v": [1]}), pd.DataFrame({"k": ["a"], "ts": [2], "v": [2]})]
    lates = {"left": [], "right": []}

    def build(a, b):
        a, b = a.with_watermark("ts", 5), b.with_watermark("ts", 1)
        j = a.join_interval(b, on="k", lower=-30, upper=30, name="j")
        for got in (j, j[["k", "v_x"]], j[j.v_x > 0]):
            with pytest.raises(ValueError, match=r"late rows are each side's: call late_rows\(\) on the left and "
                                                 r"on the right.*state_tables\['j.left' / 'j.right'\]"):
                got.late_rows()
        a.late_rows().foreach_batch(lambda df, t: lates["left"].append(df))
        b.late_rows().foreach_batch(lambda df, t: lates["right"].append(df))
        return j
    out = pd.concat(run_join(ctx, left, right, build), ignore_index=True)
    assert [df.values.tolist() for df in lates["left"]] == [[], [["a", 3, 3], ["b", 4, 5]]]
    assert [df.values.tolist() for df in lates["right"]] == [[], [["a", 2, 2]]]
    # with bounds wide enough for every pair, exactly the late rows are missing from the pairs
    assert sorted(out.v_x.tolist()) == [1, 2, 4] and sorted(set(out.v_y.tolist())) == [1]


def test_left_on_and_right_on_keep_both_key_columns_as_pandas_merge(ctx):
    left = [pd.DataFrame({"seller": [1, 2, 3], "cat": [10, 10, 11]})]
    right = [pd.DataFrame({"id": [2, 3, 4], "name": ["b", "c", "d"]})]
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.checkpoint(tempfile.mkdtemp())
    try:
        out = []
        ssc.frame.queue(left).join_interval(ssc.frame.queue(right), left_on="seller", right_on="id") \
            .foreach_batch(lambda df, t: out.append(df))
        ssc.start()
        ssc.run_batches(1)
    finally:
        ssc.stop(stop_spark_context=False)
    want = left[0].merge(right[0], left_on="seller", right_on="id")
    pd.testing.assert_frame_equal(out[0].sort_values("seller").reset_index(drop=True), want, check_dtype=False)


@pytest.mark.parametrize("kw, error, message", [
    (dict(on="k", lower=5, upper=1, time="ts"), ValueError, "after upper"),
    (dict(on="k", lower=-1, upper=1), ValueError, "needs the time columns"),
    (dict(on="nope"), KeyError, "no column"),
    (dict(left_on="k"), ValueError, "needs on="),
    (dict(on="k", inclusive="all"), ValueError, "inclusive"),
    (dict(left_on="k", right_on="v"), TypeError, "different dtypes"),
])
def test_bad_arguments_say_what_is_wrong(ssc, kw, error, message):
    a = ssc.frame.queue([pd.DataFrame({"k": ["a"], "ts": [1], "v": [1]})])
    with pytest.raises(error, match=message):
        a.join_interval(a, **kw)


def test_a_row_at_the_watermark_still_finds_the_partner_waiting_in_the_buffer(ctx):
    # the right watermark after batch 0 is 20 - 5 = 15; the left row at 11 reaches right rows in [10, 15]:
    # it must still be there when the right row at 15 (on time: not before 15) comes in batch 1
    left = [pd.DataFrame({"k": ["a"], "ts": [11], "v": [1]}), pd.DataFrame(columns=["k", "ts", "v"])]
    right = [pd.DataFrame({"k": ["a"], "ts": [20], "v": [2]}), pd.DataFrame({"k": ["a", "a"], "ts": [15, 14], "v": [3, 4]})]
    out = run_join(ctx, left, right, lambda a, b: a.with_watermark("ts", 5).join_interval(
        b.with_watermark("ts", 5), on="k", lower=-4, upper=1))
    assert [df.values.tolist() for df in out] == [[], [["a", 11, 1, 15, 3]]]    # 14 is late: it joins nothing


@settings(max_examples=40, deadline=None)
@given(big=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 50)), min_size=200, max_size=400),
       small=st.lists(st.tuples(st.integers(0, 25), st.integers(0, 50)), min_size=1, max_size=3),
       strings=st.booleans(), swap=st.booleans())
def test_pairs_of_a_few_rows_against_many_equal_a_pandas_merge(big, small, strings, swap):
    # a side 64 times smaller narrows the other to its keys first: the pairs must not change
    from runnel.frame.interval_join import Interval, Side, pair_rows
    from runnel.frame.schema import frame_batch

    def frame(rows):
        k = np.array([r[0] for r in rows], dtype=np.int64)
        keys = pa.array([f"k{x}" for x in k.tolist()], pa.string()) if strings else k
        return frame_batch({"k": keys, "ts": np.array([r[1] for r in rows], dtype=np.int64)})
    left, right = (frame(small), frame(big)) if swap else (frame(big), frame(small))
    side = Side(("k",), "ts", 1, None)
    li, ri = pair_rows(left, right, side, side, Interval(-5, 5, "both"))
    got = sorted(zip(left.take(li).to_pandas().itertuples(index=False), right.take(ri).to_pandas().itertuples(index=False)))
    lp, rp = left.to_pandas(), right.to_pandas()
    m = lp.merge(rp, on="k")
    m = m[(m.ts_x >= m.ts_y - 5) & (m.ts_x <= m.ts_y + 5)]
    want = sorted(((k, a), (k, b)) for k, a, b in m[["k", "ts_x", "ts_y"]].itertuples(index=False))
    assert [(tuple(a), tuple(b)) for a, b in got] == want


# --- restart ---------------------------------------------------------------------------------------------

SEEN: dict = {}


class Keep:
    def __init__(self, key):
        self.key = key

    def __call__(self, df, t):
        SEEN.setdefault(self.key, {})[t] = df.sort_values(list(df.columns)).reset_index(drop=True)


LEFT = [pd.DataFrame({"k": [f"w{(i * 3 + j) % 4}" for j in range(5)], "ts": [i * 4 + (j * 5) % 7 - 3 for j in range(5)],
                      "v": [i * 10 + j for j in range(5)]}) for i in range(10)]
RIGHT = [pd.DataFrame({"k": [f"w{(i + j) % 4}" for j in range(4)], "ts": [i * 4 + (j * 3) % 5 - 2 for j in range(4)],
                       "v": [100 + i * 10 + j for j in range(4)]}) for i in range(10)]


def program(ctx, directory, key):
    def setup():
        ctx.conf["runnel.streaming.checkpoint.interval"] = "2"
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(directory)
        a = ssc.frame.queue(LEFT, schema=SCHEMA).with_watermark("ts", 2, name="wl")
        b = ssc.frame.queue(RIGHT, schema=SCHEMA).with_watermark("ts", 3, name="wr")
        a.join_interval(b, on="k", lower=-3, upper=2, name="ij").foreach_batch(Keep(key + "/ij"))
        a.join_interval(b, on="k", name="all").foreach_batch(Keep(key + "/all"))     # unbounded
        return ssc
    return setup


@pytest.mark.parametrize("how", ["resume", "get_or_create"])
def test_join_buffers_survive_a_driver_restart(ctx, tmp_path, clean_conf, how):
    SEEN.clear()
    ref = program(ctx, str(tmp_path / "ref"), "ref")()
    ref.start()
    ref.run_batches(10)
    ref.stop(stop_spark_context=False)
    assert sum(len(df) for df in SEEN["ref/ij"].values()) > 10
    d = str(tmp_path / "ck")
    ssc = program(ctx, d, "a")()
    ssc.start()
    ssc.run_batches(7)
    ssc._checkpointer.flush()
    ssc.stop(stop_spark_context=False)          # not graceful: what a crash leaves behind
    if how == "resume":
        ssc = StreamingContext.resume(d, program(ctx, d, "a"))
    else:
        ssc = StreamingContext.get_or_create(d, program(ctx, d, "never called"))
    ssc.start()
    ssc.run_batches(4)                          # from the checkpoint at 6 s: batches 7..10
    ssc.stop(stop_spark_context=False)
    assert not any(k.startswith("never called") for k in SEEN)
    for part in ("ij", "all"):
        want, got = SEEN["ref/" + part], SEEN["a/" + part]
        assert sorted(got) == sorted(want)
        for t in want:
            pd.testing.assert_frame_equal(got[t], want[t])
