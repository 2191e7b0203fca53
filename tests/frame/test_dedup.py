"""drop_duplicates(subset, within=...) against a walk over the batches in plain Python."""

from __future__ import annotations

import tempfile

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel.testing import run_frame


def reference(frames, delay, within):
    """(kept rows, late rows): a key is remembered until the watermark passes its first ts + within."""
    seen, kept, late = {}, [], []
    top = wm = None
    for f in frames:
        before = wm
        for r in f.itertuples(index=False):
            if before is not None and r.ts < before:
                late.append(r)
            elif r.k not in seen:
                seen[r.k] = r.ts
                kept.append(r)
        if len(f):
            top = max(top, int(f.ts.max())) if top is not None else int(f.ts.max())
        if top is not None:
            wm = top - delay if wm is None else max(wm, top - delay)
            seen = {k: ts for k, ts in seen.items() if ts + within >= wm}
    cols = ["k", "ts", "v"]
    return pd.DataFrame(kept, columns=cols), pd.DataFrame(late, columns=cols)


def split(df, cuts):
    bounds = sorted({0, len(df), *[c % (len(df) + 1) for c in cuts]})
    return [df.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:])]


def rows_equal(a, b):
    a = a.sort_values(list(a.columns)).reset_index(drop=True)
    b = b.sort_values(list(b.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 40), st.integers(0, 1000)),
                     min_size=1, max_size=40, unique_by=lambda r: r[2]),
       cuts=st.lists(st.integers(0, 40), max_size=5), delay=st.integers(0, 10), within=st.integers(0, 15))
def test_drop_duplicates_within_the_watermark_equals_a_walk_over_the_batches(ctx, data, cuts, delay, within):
    frames = split(pd.DataFrame(data, columns=["k", "ts", "v"]), cuts)
    late = []

    def build(sdf):
        out = sdf.with_watermark("ts", delay).drop_duplicates("k", within=within)
        out.late_rows().foreach_batch(lambda df, t: late.append(df))
        return out
    got = run_frame(build, frames, ctx, checkpoint=tempfile.mkdtemp())
    want, want_late = reference(frames, delay, within)
    rows_equal(pd.concat(got, ignore_index=True), want)
    rows_equal(pd.concat(late, ignore_index=True), want_late)


def test_drop_duplicates_keeps_the_first_row_in_arrival_order(ctx):
    frames = [pd.DataFrame({"k": ["a", "b", "a", "b"], "ts": [1, 2, 0, 3], "v": [1, 2, 3, 4]}),
              pd.DataFrame({"k": ["a", "c"], "ts": [5, 6], "v": [5, 6]})]
    got = run_frame(lambda s: s.with_watermark("ts", 10).drop_duplicates(["k"], within=100), frames, ctx,
                    checkpoint=tempfile.mkdtemp())
    assert sorted(got[0].values.tolist()) == [["a", 1, 1], ["b", 2, 2]]
    assert got[1].values.tolist() == [["c", 6, 6]]
