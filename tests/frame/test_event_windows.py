"""Event-time windows and late rows against a plain pandas computation over all the on-time rows.

The reference walks the batches as the engine's contract says: the watermark
in force for batch i is max(event time of batches < i) - delay; a row before
it minus the allowed lateness is late; a window is final in the first batch
whose watermark (after the batch) reaches its end + allowed lateness.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel import ManualClock, StreamingContext
from runnel.frame import hopping, session, tumbling
from runnel.testing import assert_frame_batches_equal, run_frame

NONE = None
FLUSH_TS = 10**6          # a last row far ahead: its watermark closes every window of the data
AGGS = dict(s=("v", "sum"), c=("v", "count"), lo=("v", "min"), hi=("v", "max"), m=("v", "mean"))


def watermarks(frames, delay):
    """(watermark in force, watermark after) per batch; None before any row."""
    out, top, wm = [], None, None
    for f in frames:
        before = wm
        if len(f):
            top = max(top, int(f.ts.max())) if top is not None else int(f.ts.max())
        if top is not None:
            wm = top - delay if wm is None else max(wm, top - delay)
        out.append((before, wm))
    return out


def split_late(frames, delay, lateness):
    """(on-time rows with their batch, late rows) of the whole run."""
    on, late = [], []
    for i, (f, (before, _)) in enumerate(zip(frames, watermarks(frames, delay))):
        is_late = np.zeros(len(f), bool) if before is None else (f.ts.to_numpy() < before - lateness)
        late.append(f[is_late])
        on.append(f[~is_late].assign(batch=i))
    return pd.concat(on, ignore_index=True), pd.concat(late, ignore_index=True)


def windows_of(ts, size, slide):
    first = (ts // slide) * slide
    s = first
    while s - slide + size > ts:
        s -= slide
    out = []
    while s <= first:
        out.append(s)
        s += slide
    return out


def expected_windows(on, size, slide):
    rows = [dict(r, window_start=s) for r in on.to_dict("records") for s in windows_of(r["ts"], size, slide)]
    if not rows:
        return pd.DataFrame(columns=["k", "window_start", "window_end", *AGGS])
    df = pd.DataFrame(rows)
    got = df.groupby(["k", "window_start"]).agg(**AGGS).reset_index()
    got.insert(2, "window_end", got.window_start + size)
    return got


def expected_sessions(on, gap):
    out = []
    for k, g in on.sort_values("ts", kind="stable").groupby("k"):
        sid = (g.ts.diff().fillna(gap) >= gap).cumsum()
        for _, s in g.groupby(sid):
            out.append(dict(k=k, window_start=s.ts.min(), window_end=s.ts.max() + gap,
                            **{o: getattr(s.v, f)() for o, (_, f) in AGGS.items()}))
    return pd.DataFrame(out, columns=["k", "window_start", "window_end", *AGGS])


def split(df, cuts):
    bounds = sorted({0, len(df), *[c % (len(df) + 1) for c in cuts]})
    return [df.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:])]


def with_flush(frames):
    return frames + [pd.DataFrame({"k": ["zz"], "ts": [FLUSH_TS], "v": [0]})]


def run_tagged(build, frames, ctx, late=True):
    """Run ``build(sdf)`` on the frames: (every output row with its batch, every late row)."""
    outs, lates = [], []

    def go(sdf):
        agg = build(sdf)
        if late:
            agg.late_rows().foreach_batch(lambda df, t: lates.append(df))
        return agg
    got = run_frame(go, frames, ctx, checkpoint=tempfile.mkdtemp())
    for i, df in enumerate(got):
        outs.append(df.assign(batch=i))
    return pd.concat(outs, ignore_index=True), (pd.concat(lates, ignore_index=True) if late else None)


def same_rows(a, b, columns):
    a = a[columns].sort_values(columns).reset_index(drop=True)
    b = b[columns].sort_values(columns).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


events = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 60), st.integers(-5, 9)),
                  min_size=1, max_size=40)
WINDOWS = [(5, 5), (10, 10), (10, 5), (7, 3), (6, 2)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=events, cuts=st.lists(st.integers(0, 40), max_size=5), delay=st.integers(0, 12),
       lateness=st.sampled_from([0, 3]), window=st.sampled_from(WINDOWS))
def test_final_windows_equal_pandas_over_the_on_time_rows(ctx, data, cuts, delay, lateness, window):
    size, slide = window
    frames = with_flush(split(pd.DataFrame(data, columns=["k", "ts", "v"]), cuts))
    spec = tumbling(size) if size == slide else hopping(size, slide)
    out, late = run_tagged(lambda s: s.with_watermark("ts", delay).groupby("k")
                           .event_window(spec, allowed_lateness=lateness).agg(**AGGS), frames, ctx)
    on, want_late = split_late(frames, delay, lateness)
    want = expected_windows(on[on.k != "zz"], size, slide)
    got = out[out.k != "zz"]
    assert not got.duplicated(["k", "window_start"]).any(), "a window was emitted twice in final mode"
    same_rows(got, want, ["k", "window_start", "window_end", *AGGS])
    same_rows(late, want_late, ["k", "ts", "v"])
    # each window comes out in the first batch whose watermark passes its end + lateness
    marks = watermarks(frames, delay)
    for r in got.itertuples():
        first = next(i for i, (_, wm) in enumerate(marks) if wm is not None and wm >= r.window_end + lateness)
        assert r.batch == first, (r, marks)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=events, cuts=st.lists(st.integers(0, 40), max_size=5), delay=st.integers(0, 12),
       gap=st.integers(1, 8), lateness=st.sampled_from([0, 2]))
def test_sessions_merge_across_batches_and_partitions_as_pandas_says(ctx, data, cuts, delay, gap, lateness):
    frames = with_flush(split(pd.DataFrame(data, columns=["k", "ts", "v"]), cuts))
    out, late = run_tagged(lambda s: s.with_watermark("ts", delay).groupby("k")
                           .event_window(session(gap), allowed_lateness=lateness).agg(**AGGS), frames, ctx)
    on, want_late = split_late(frames, delay, lateness)
    got = out[out.k != "zz"]
    assert not got.duplicated(["k", "window_start"]).any()
    same_rows(got, expected_sessions(on[on.k != "zz"], gap), ["k", "window_start", "window_end", *AGGS])
    same_rows(late, want_late, ["k", "ts", "v"])


def test_a_row_bridging_two_sessions_of_earlier_batches_merges_them(ctx):
    frames = [pd.DataFrame({"k": ["a", "a"], "ts": [10, 20], "v": [1, 2]}),
              pd.DataFrame({"k": ["a"], "ts": [15], "v": [4]}),
              pd.DataFrame({"k": ["a"], "ts": [100], "v": [8]})]
    out, _ = run_tagged(lambda s: s.with_watermark("ts", 30).groupby("k").event_window(session(6))
                        .agg(s=("v", "sum")), frames, ctx, late=False)
    assert out[["k", "window_start", "window_end", "s", "batch"]].values.tolist() == [["a", 10, 26, 7, 2]]


def test_update_mode_gives_the_windows_each_batch_changed(ctx):
    frames = [pd.DataFrame({"k": ["a", "b"], "ts": [1, 2], "v": [1, 2]}),
              pd.DataFrame({"k": ["a"], "ts": [3], "v": [10]}),
              pd.DataFrame({"k": ["a"], "ts": [12], "v": [5]})]
    out = run_frame(lambda s: s.with_watermark("ts", 0).groupby("k").event_window(tumbling(10), emit="update")
                    .agg(s=("v", "sum")), frames, ctx, checkpoint=tempfile.mkdtemp())
    assert_frame_batches_equal(out, [
        pd.DataFrame({"k": ["a", "b"], "window_start": [0, 0], "window_end": [10, 10], "s": [1, 2]}),
        pd.DataFrame({"k": ["a"], "window_start": [0], "window_end": [10], "s": [11]}),
        pd.DataFrame({"k": ["a"], "window_start": [10], "window_end": [20], "s": [5]})])


def test_datetime_columns_and_duration_strings(ctx):
    t0 = pd.Timestamp("2026-12-03 10:00:00")
    frames = [pd.DataFrame({"k": ["a", "a", "b"], "ts": [t0, t0 + pd.Timedelta("30s"), t0 + pd.Timedelta("70s")],
                            "v": [1.0, 2.0, 4.0]}),
              pd.DataFrame({"k": ["b"], "ts": [t0 + pd.Timedelta("5min")], "v": [8.0]})]
    out = run_frame(lambda s: s.with_watermark("ts", "10s").groupby("k").event_window(tumbling("1min"))
                    .agg(s=("v", "sum")), frames, ctx, checkpoint=tempfile.mkdtemp())
    got = pd.concat(out, ignore_index=True).sort_values(["k", "window_start"]).reset_index(drop=True)
    assert got.window_start.dtype == frames[0].ts.dtype
    assert got.values.tolist() == [["a", t0, t0 + pd.Timedelta("1min"), 3.0],
                                   ["b", t0 + pd.Timedelta("1min"), t0 + pd.Timedelta("2min"), 4.0]]


def test_idle_source_advances_the_watermark_by_processing_time(ctx):
    empty = pd.DataFrame({"k": pd.Series([], dtype=object), "ts": pd.Series([], dtype=np.int64),
                          "v": pd.Series([], dtype=np.int64)})
    frames = [pd.DataFrame({"k": ["a"], "ts": [5], "v": [1]})] + [empty] * 11
    build = lambda s, idle: s.with_watermark("ts", 2, idle_timeout=idle).groupby("k") \
        .event_window(tumbling(10)).agg(s=("v", "sum"))  # noqa: E731
    never = run_frame(lambda s: build(s, None), frames, ctx, checkpoint=tempfile.mkdtemp())
    assert all(len(df) == 0 for df in never)
    idle = run_frame(lambda s: build(s, 2), frames, ctx, checkpoint=tempfile.mkdtemp())
    # batch 0 brings ts 5: watermark 3. Batch i runs i seconds later; idle for longer than 2 s, the watermark
    # is 3 + (i - 2): it reaches the window's end, 10, at batch 9
    closed = [i for i, df in enumerate(idle) if len(df)]
    assert closed == [9] and idle[9].values.tolist() == [["a", 0, 10, 1]]


def test_late_rows_are_counted_on_batch_info(ctx, tmp_path, clean_conf):
    from runnel.listener import StreamingListener
    infos = []

    class Listen(StreamingListener):
        def onBatchCompleted(self, batch):
            infos.append(batch.batchInfo())

    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.checkpoint(str(tmp_path))
    sdf = ssc.frame.queue([pd.DataFrame({"k": ["a", "b"], "ts": [20, 21], "v": [1, 2]}),
                           pd.DataFrame({"k": ["a", "b", "a"], "ts": [1, 2, 30], "v": [1, 2, 3]})])
    sdf.with_watermark("ts", 5).groupby("k").event_window(tumbling(10), name="win").agg(s=("v", "sum")) \
        .foreach_batch(lambda df, t: None)
    ssc.add_streaming_listener(Listen())
    ssc.start()
    ssc.run_batches(2)
    ssc.stop(stop_spark_context=False)
    assert [i.state_tables["win"]["late_rows"] for i in infos] == [0, 2]


# --- count windows ------------------------------------------------------------------------------------------

@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.integers(-5, 9)), min_size=1, max_size=40),
       cuts=st.lists(st.integers(0, 40), max_size=5), n=st.integers(1, 4))
def test_count_windows_equal_pandas_every_n_rows_per_key(ctx, data, cuts, n):
    df = pd.DataFrame(data, columns=["k", "v"])
    frames = split(df, cuts)
    aggs = dict(s=("v", "sum"), f=("v", "first"), l=("v", "last"), z=("v", "size"))
    final = run_frame(lambda s: s.groupby("k").count_window(n, name="every").agg(**aggs), frames, ctx,
                      checkpoint=tempfile.mkdtemp())
    keyed = df[df.k.notna()].assign(window=lambda d: d.groupby("k").cumcount() // n)
    want = keyed.groupby(["k", "window"]).agg(**aggs).reset_index()
    want = want[want.z == n]
    got = pd.concat(final, ignore_index=True)
    same_rows(got, want, ["k", "window", *aggs])
    update = run_frame(lambda s: s.groupby("k").count_window(n, emit="update").agg(**aggs), frames, ctx,
                       checkpoint=tempfile.mkdtemp())
    for i, got in enumerate(update):            # the windows batch i changed, as they are after it
        seen = pd.concat(frames[:i + 1], ignore_index=True)
        seen = seen[seen.k.notna()].assign(window=lambda d: d.groupby("k").cumcount() // n)
        now = frames[i][frames[i].k.notna()]
        touched = seen.iloc[len(seen) - len(now):][["k", "window"]].drop_duplicates()
        want = seen.groupby(["k", "window"]).agg(**aggs).reset_index().merge(touched)
        same_rows(got, want, ["k", "window", *aggs])


def test_keyed_records_with_a_timestamp_extractor_get_event_windows(ctx, tmp_path, clean_conf):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.checkpoint(str(tmp_path))
    pairs = ssc.queue_stream([[("a", (1, 2.0)), ("b", (3, 1.0)), ("a", (14, 5.0))],
                              [("a", (2, 7.0)), ("b", (40, 1.0))]])
    wm = pairs.with_watermark(lambda kv: kv[1][0], delay=1, value=lambda kv: kv[1][1])
    out = []
    sums = wm.groupby("key").event_window(tumbling(10)).agg(value=("value", "sum"))
    sums.to_dstream().foreach_rdd(lambda rdd: out.append(sorted(rdd.collect())))
    late = []
    sums.late_rows().foreach_batch(lambda df, t: late.append(df.key.tolist()))
    ssc.start()
    ssc.run_batches(2)
    ssc.stop(stop_spark_context=False)
    assert out == [[("a", 0, 10, 2.0), ("b", 0, 10, 1.0)], [("a", 10, 20, 5.0)]]
    assert late == [[], ["a"]]


def test_event_time_bench_agrees_with_pandas_and_prints_ratios(capsys):
    from runnel.bench import event_time as bench
    assert bench.main(["--rows", "2000", "--keys", "50", "--batches", "4", "--warmup", "1", "--masters", "local"]) == 0
    out = capsys.readouterr().out
    assert "pandas" in out and "runnel local" in out and "÷ pandas" in out


def test_a_frame_that_dropped_its_event_time_column_says_so_instead_of_calling_every_row_late(ssc):
    # late_rows() of such a frame gave every row as late (and counted it) while the rows went on as on time
    from runnel.batch import Batch
    from runnel.frame.watermark import ByWatermark, EventClock
    sdf = ssc.frame.queue([pd.DataFrame({"k": ["a", "b"], "ts": [10, 20]})]).with_watermark("ts", 0)
    for narrowed in (sdf[["k"]], sdf.drop(columns=["ts"]), sdf.rename(columns={"ts": "t"})):
        with pytest.raises(KeyError, match="event-time column 'ts' is not in the frame"):
            narrowed.late_rows()
        with pytest.raises(KeyError, match="event-time column 'ts' is not in the frame"):
            narrowed.drop_duplicates("k", within=5)
    rows = Batch({"k": np.array(["a", "b"], dtype=object)}, ("k",))
    wm = Batch({c: np.array([15], np.int64) for c in ("max_ts", "wm_before", "wm", "last_ms")},
               ("max_ts", "wm_before", "wm", "last_ms"))
    for late in (True, False):
        with pytest.raises(KeyError, match="'ts' is not in the rows"):
            ByWatermark(EventClock("ts", "int64", 10**9), 0, late)(0, [rows, wm])


# --- windows over all rows (no key) --------------------------------------------------------------------------

@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=events, cuts=st.lists(st.integers(0, 40), max_size=5), delay=st.integers(0, 12),
       lateness=st.sampled_from([0, 3]), window=st.sampled_from(WINDOWS + [("session", 4)]))
def test_keyless_windows_equal_pandas_over_all_on_time_rows(ctx, data, cuts, delay, lateness, window):
    frames = with_flush(split(pd.DataFrame(data, columns=["k", "ts", "v"]), cuts))
    size, slide = window
    spec = session(slide) if size == "session" else tumbling(size) if size == slide else hopping(size, slide)
    out, late = run_tagged(lambda s: s.with_watermark("ts", delay).event_window(spec, allowed_lateness=lateness)
                           .agg(**AGGS), frames, ctx)
    assert list(out.columns) == ["window_start", "window_end", *AGGS, "batch"]
    on, want_late = split_late(frames, delay, lateness)
    on = on[on.k != "zz"].assign(k="all")          # one group: every row
    want = expected_sessions(on, slide) if size == "session" else expected_windows(on, size, slide)
    got = out[out.window_start < FLUSH_TS - 100]
    assert not got.duplicated(["window_start"]).any(), "a window was emitted twice in final mode"
    same_rows(got, want, ["window_start", "window_end", *AGGS])
    same_rows(late, want_late, ["k", "ts", "v"])
    assert list(late.columns) == ["k", "ts", "v"]      # the rows as they came, no hidden key


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(v=st.lists(st.integers(-5, 9), min_size=1, max_size=30), cuts=st.lists(st.integers(0, 30), max_size=4),
       n=st.integers(1, 4))
def test_keyless_count_windows_equal_pandas_every_n_rows(ctx, v, cuts, n):
    df = pd.DataFrame({"v": v})
    frames = split(df, cuts)
    got = pd.concat(run_frame(lambda s: s.count_window(n).agg(s=("v", "sum"), z=("v", "size")), frames, ctx,
                              checkpoint=tempfile.mkdtemp()), ignore_index=True)
    want = df.groupby(np.arange(len(df)) // n).agg(s=("v", "sum"), z=("v", "size")).rename_axis("window")
    want = want[want.z == n].reset_index()
    assert list(got.columns) == ["window", "s", "z"]
    same_rows(got, want, ["window", "s", "z"])


def test_keyless_window_shorthands_and_what_needs_a_key(ssc):
    sdf = ssc.frame.queue([pd.DataFrame({"ts": [1, 2], "v": [3, 4]})]).with_watermark("ts", 0)
    assert sdf.event_window(tumbling(10)).max().columns == ["window_start", "window_end", "ts", "v"]
    assert sdf.event_window(tumbling(10))["v"].sum().columns == ["window_start", "window_end", "v"]
    assert sdf.event_window(tumbling(10)).size().columns == ["window_start", "window_end", "size"]
    with pytest.raises(ValueError, match="at least one key column.*sdf.event_window"):
        sdf.groupby([])
    with pytest.raises(ValueError, match="event-time or count windows only"):
        sdf.event_window(tumbling(10)).running()
    with pytest.raises(ValueError, match="event_window needs event time"):
        ssc.frame.queue([pd.DataFrame({"ts": [1]})]).event_window(tumbling(10)).agg(n=("ts", "size"))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.tuples(st.sampled_from("abc"), st.integers(-5, 9)), max_size=4),
                        min_size=1, max_size=9),
       ttl=st.integers(1, 3), n=st.integers(1, 3))
def test_count_windows_with_a_ttl_forget_idle_keys_as_a_running_groupby_does(ctx, batches, ttl, n):
    # a key idle for more than ttl batches (1 s each) starts afresh: its open window is dropped, its next
    # rows count from window 0 ("z" in every batch: no batch is empty)
    frames = [pd.DataFrame([("z", 0)] + b, columns=["k", "v"]) for b in batches]
    aggs = dict(s=("v", "sum"), z=("v", "size"))
    final = run_frame(lambda s: s.groupby("k").count_window(n, ttl=ttl).agg(**aggs), frames, ctx,
                      checkpoint=tempfile.mkdtemp())
    df = pd.concat([f.assign(batch=i) for i, f in enumerate(frames)], ignore_index=True)
    seg = (df.groupby("k").batch.diff().fillna(0) > ttl).astype(int).groupby(df.k).cumsum()
    df = df.assign(seg=seg, window=lambda d: d.groupby(["k", "seg"]).cumcount() // n)
    want = df.groupby(["k", "seg", "window"]).agg(**aggs, batch=("batch", "max")).reset_index()
    want = want[want.z == n]
    got = pd.concat([f.assign(batch=i) for i, f in enumerate(final)], ignore_index=True)
    same_rows(got, want, ["k", "window", *aggs, "batch"])
