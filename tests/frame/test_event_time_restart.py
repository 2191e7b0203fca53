"""Watermark, window tables and dedup keys survive a driver restart: a run stopped without a graceful stop
(what a crash leaves: the checkpoints written so far) and recovered with get_or_create or resume gives the
batches an uninterrupted run gives."""

from __future__ import annotations

import pandas as pd
import pytest

from runnel import ManualClock, StreamingContext
from runnel.frame import hopping, session, tumbling

SEEN: dict = {}


class Keep:
    def __init__(self, key):
        self.key = key

    def __call__(self, df, t):
        SEEN.setdefault(self.key, {})[t] = df.sort_values(list(df.columns)).reset_index(drop=True)


DATA = [pd.DataFrame({"k": [f"w{(i * 7 + j) % 4}" for j in range(6)],
                      "ts": [i * 5 + (j * 7) % 11 - 5 for j in range(6)],
                      "v": [float(j + i) for j in range(6)]}) for i in range(10)]


def program(ctx, directory, key):
    def setup():
        ctx.conf["runnel.streaming.checkpoint.interval"] = "2"
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(directory)
        sdf = ssc.frame.queue(DATA).with_watermark("ts", 3, name="wm")
        tum = sdf.groupby("k").event_window(tumbling(10), name="tum").agg(s=("v", "sum"), n=("v", "count"))
        tum.foreach_batch(Keep(key + "/tum"))
        tum.late_rows().foreach_batch(Keep(key + "/late"))
        sdf.groupby("k").event_window(hopping(10, 5), emit="update", name="hop").agg(hi=("v", "max")) \
            .foreach_batch(Keep(key + "/hop"))
        sdf.groupby("k").event_window(session(4), name="sess").agg(s=("v", "sum")).foreach_batch(Keep(key + "/ses"))
        sdf.groupby("k").count_window(4, name="cnt").agg(s=("v", "sum")).foreach_batch(Keep(key + "/cnt"))
        sdf.drop_duplicates("k", within=6, name="dd").foreach_batch(Keep(key + "/dd"))
        # w1 comes in the first two batches (to 2 s) and the last ones: with a ttl of 6 s it leaves at 8 s, after
        # the restart (its last-seen time must have survived), and comes back afresh at 9 s
        gappy = sdf[(sdf.k != "w1") | (sdf.ts < 10) | (sdf.ts > 38)]
        gappy.groupby("k").count_window(3, emit="update", name="cnt_ttl", ttl=6).agg(s=("v", "sum")) \
            .foreach_batch(Keep(key + "/cnt_ttl"))
        gappy.groupby("k").running(ttl=6, name="cs_ttl")["v"].cumsum().foreach_batch(Keep(key + "/cs_ttl"))
        return ssc
    return setup


PARTS = ("tum", "late", "hop", "ses", "cnt", "dd", "cnt_ttl", "cs_ttl")


@pytest.mark.parametrize("how", ["resume", "get_or_create"])
def test_event_time_state_survives_a_driver_restart(ctx, tmp_path, clean_conf, how):
    SEEN.clear()
    ref = program(ctx, str(tmp_path / "ref"), "ref")()
    ref.start()
    ref.run_batches(10)
    ref.stop(stop_spark_context=False)
    assert any(len(df) for df in SEEN["ref/late"].values()) and any(len(df) for df in SEEN["ref/ses"].values())
    back = list(SEEN["ref/cnt_ttl"].values())[8]     # w1 back after its ttl: its windows count from 0 again
    assert back[back.k == "w1"].window.tolist() == [0] and back[back.k == "w1"].s.tolist() == [9.0]
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
    for part in PARTS:
        want, got = SEEN["ref/" + part], SEEN["a/" + part]
        assert sorted(got) == sorted(want)
        for t in want:
            pd.testing.assert_frame_equal(got[t], want[t])
