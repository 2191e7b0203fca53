"""Every Nexmark query on the streaming source gives what pandas computes over all the events."""

from __future__ import annotations

import pandas as pd
import pytest

import nexmark_reference as ref
from runnel.nexmark import queries
from runnel.nexmark.generator import NexmarkConfig

PER_BATCH, BATCHES = 2_000, 4


def run_query(ssc, tmp_path, name: str, cfg: NexmarkConfig, batches: int = BATCHES, **kw) -> list[pd.DataFrame]:
    ssc.checkpoint(str(tmp_path))
    nx = ssc.frame.nexmark(events_per_batch=PER_BATCH, seed=cfg.seed, rate=cfg.rate, out_of_order=cfg.out_of_order)
    out: list = []
    getattr(queries, name)(nx, **kw).foreach_batch(lambda df, t: out.append(df))
    ssc.start()
    ssc.run_batches(batches)
    return out


@pytest.mark.parametrize("name", ["q0", "q1", "q2"])
def test_stateless_queries_equal_pandas_batch_by_batch(ssc, tmp_path, name):
    cfg = NexmarkConfig(seed=4)
    got = run_query(ssc, tmp_path, name, cfg)
    ev = ref.events(PER_BATCH * BATCHES, cfg, PER_BATCH)
    assert len(got) == BATCHES and sum(map(len, got)) > 0
    for i, df in enumerate(got):
        ref.same_rows(df, ref.STATELESS[name]({k: v[v.batch == i] for k, v in ev.items()}).reset_index(drop=True))


def test_q3_pairs_each_auction_with_its_seller_in_the_batch_of_the_later_row(ssc, tmp_path):
    cfg = NexmarkConfig(seed=6)
    got = run_query(ssc, tmp_path, "q3", cfg, batches=6)
    want = ref.q3(ref.events(PER_BATCH * 6, cfg, PER_BATCH))
    assert sum(map(len, got)) > 20
    for i, df in enumerate(got):
        ref.same_rows(df, want[want.batch == i].drop(columns="batch"))


# event time at 1000 events/s: 2 s a batch; windows of 2 s (q5: one every 1 s), a watermark 0.5 s behind
RATE, DELAY = 1_000, 0.5
WINDOWED = {
    "q5": (dict(size=2, slide=1, delay=DELAY), lambda ev: ref.q5(ev, 2000, 1000, 500)),
    "q7": (dict(size=2, delay=DELAY), lambda ev: ref.q7(ev, 2000, 500)),
    "q8": (dict(size=2, delay=DELAY), lambda ev: ref.q8(ev, 2000, 500)),
    "q11": (dict(gap=0.5, delay=DELAY), lambda ev: ref.q11(ev, 500, 500)),
}


@pytest.mark.parametrize("name", sorted(WINDOWED))
def test_windowed_queries_equal_pandas_over_the_windows_the_watermark_closed(ssc, tmp_path, name):
    cfg = NexmarkConfig(seed=7, rate=RATE, out_of_order=50)   # 50 ms of disorder: behind the delay, none late
    kw, oracle = WINDOWED[name]
    got = run_query(ssc, tmp_path, name, cfg, batches=5, **kw)
    want = oracle(ref.events(PER_BATCH * 5, cfg, PER_BATCH))
    assert len(want) > 3
    ref.same_rows(pd.concat(got, ignore_index=True), want.reset_index(drop=True))


def test_q7_between_takes_both_ends_so_a_bid_at_a_window_end_meets_that_windows_maximum(ssc, tmp_path):
    # Flink's text: B.dateTime BETWEEN B1.dateTime - 10 s AND B1.dateTime (window_end): a bid at 2 s is in
    # the window [2 s, 4 s) and also at the end of [0 s, 2 s), whose maximum it equals: it comes out twice
    from types import SimpleNamespace
    ms = lambda *v: pd.to_datetime(list(v), unit="s").astype("datetime64[ms]")  # noqa: E731
    frames = [pd.DataFrame({"auction": [1, 2, 3], "price": [10, 10, 5], "bidder": [7, 8, 9],
                            "date_time": ms(1, 2, 3), "extra": ["a", "b", "c"]}),
              pd.DataFrame({"auction": [4], "price": [1], "bidder": [7], "date_time": ms(9), "extra": ["d"]})]
    ssc.checkpoint(str(tmp_path))
    out: list = []
    queries.q7(SimpleNamespace(bids=ssc.frame.queue(frames)), size=2, delay=0).foreach_batch(
        lambda df, t: out.append(df))
    ssc.start()
    ssc.run_batches(2)
    got = pd.concat(out, ignore_index=True)
    assert sorted(got.auction.tolist()) == [1, 2, 2]
    want = ref.q7({"bid": pd.concat([f.assign(batch=i) for i, f in enumerate(frames)], ignore_index=True)}, 2000, 0)
    ref.same_rows(got, want.reset_index(drop=True))
