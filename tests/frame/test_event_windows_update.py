"""emit="update": every batch gives the windows its on-time rows changed, with their values over all on-time
rows so far, against pandas for random out-of-order rows and batch boundaries (local and local[2])."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel.frame import hopping, session, tumbling
from test_event_windows import (AGGS, WINDOWS, events, expected_sessions, run_tagged, same_rows, split,
                                split_late, windows_of)


def expected_updates(on, size, slide):
    """Per batch: the (k, window_start) its on-time rows fall in, aggregated over on-time rows up to it."""
    rows = [dict(r, window_start=s) for r in on.to_dict("records") for s in windows_of(r["ts"], size, slide)]
    df = pd.DataFrame(rows, columns=[*on.columns, "window_start"])
    out = []
    for b in sorted(df.batch.unique()):
        touched = df[df.batch == b][["k", "window_start"]].drop_duplicates()
        upto = df[df.batch <= b].merge(touched, on=["k", "window_start"])
        got = upto.groupby(["k", "window_start"]).agg(**AGGS).reset_index().assign(batch=b)
        got.insert(2, "window_end", got.window_start + size)
        out.append(got)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["k", "window_start", "window_end",
                                                                               *AGGS, "batch"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=events, cuts=st.lists(st.integers(0, 40), max_size=5), delay=st.integers(0, 12),
       lateness=st.sampled_from([0, 3]), window=st.sampled_from(WINDOWS))
def test_update_mode_gives_each_batch_its_changed_windows_as_pandas_says(ctx, data, cuts, delay, lateness, window):
    size, slide = window
    frames = split(pd.DataFrame(data, columns=["k", "ts", "v"]), cuts)
    spec = tumbling(size) if size == slide else hopping(size, slide)
    out, late = run_tagged(lambda s: s.with_watermark("ts", delay).groupby("k")
                           .event_window(spec, emit="update", allowed_lateness=lateness).agg(**AGGS), frames, ctx)
    on, want_late = split_late(frames, delay, lateness)
    same_rows(out, expected_updates(on, size, slide), ["batch", "k", "window_start", "window_end", *AGGS])
    same_rows(late, want_late, ["k", "ts", "v"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=events, cuts=st.lists(st.integers(0, 40), max_size=5), delay=st.integers(0, 12),
       gap=st.integers(1, 8))
def test_update_mode_sessions_end_as_the_final_ones(ctx, data, cuts, delay, gap):
    # the last update of each session that is not merged away later is the session pandas finds
    frames = split(pd.DataFrame(data, columns=["k", "ts", "v"]), cuts)
    out, _ = run_tagged(lambda s: s.with_watermark("ts", delay).groupby("k")
                        .event_window(session(gap), emit="update").agg(**AGGS), frames, ctx)
    on, _ = split_late(frames, delay, 0)
    want = expected_sessions(on, gap)
    last = out.sort_values("batch", kind="stable").drop_duplicates(["k", "window_start"], keep="last")
    # an update whose session was merged into a later one is superseded: keep those pandas has
    got = last.merge(want[["k", "window_start", "window_end"]], on=["k", "window_start", "window_end"])
    same_rows(got, want, ["k", "window_start", "window_end", *AGGS])
