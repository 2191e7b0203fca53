"""The Nexmark generator: proportions, ids, values and event times as the spec says; a pure function of
(seed, event id) whatever the chunking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runnel.nexmark.generator import KINDS, SCHEMAS, NexmarkConfig, event_ids, generate, kind_of


def frames(start: int, stop: int, cfg: NexmarkConfig) -> dict:
    return {k: generate(k, start, stop, cfg).to_pandas() for k in KINDS}


def test_one_person_three_auctions_and_46_bids_in_every_50_events():
    cfg = NexmarkConfig(seed=5)
    for start in (0, 50 * 7, 123):
        got = {k: len(generate(k, start, start + 5000, cfg)) for k in KINDS}
        assert got == {"person": 100, "auction": 300, "bid": 4600}
    assert kind_of(np.arange(50)).tolist() == [0] + [1] * 3 + [2] * 46


def test_columns_and_dtypes_follow_the_schemas():
    for k, df in frames(0, 500, NexmarkConfig()).items():
        assert list(df.columns) == list(SCHEMAS[k])
        b = generate(k, 0, 500)
        from runnel.frame.schema import Schema
        assert Schema.of_batch(b) == Schema.of(SCHEMAS[k])


def test_ids_count_persons_and_auctions_from_1000_and_bids_point_near_them():
    f = frames(0, 20_000, NexmarkConfig(seed=2))
    p, a, b = f["person"], f["auction"], f["bid"]
    assert p.id.tolist() == list(range(1000, 1000 + len(p)))
    assert a.id.tolist() == list(range(1000, 1000 + len(a)))
    # a seller/bidder is a person so far or up to 10 ahead; a bid's auction up to 10 ahead of the last
    ids = event_ids(0, 20_000)
    last_person = np.array([ids[:i + 1][kind_of(ids[:i + 1]) == 0].size for i in range(0, 20_000, 50)])
    assert (a.seller >= 1000).all() and (a.seller < 1000 + len(p) + 10).all()
    assert (b.bidder >= 1000).all() and (b.bidder < 1000 + len(p) + 10).all()
    assert (b.auction >= 1000).all() and (b.auction < 1000 + len(a) + 10).all()
    assert last_person[-1] == len(p)
    # hot ones: 3 in 4 bidders are a multiple of 100 (+1), 1 in 2 auctions of a bid a multiple of 100
    hot_bidders = ((b.bidder - 1000) % 100 == 1).mean()
    hot_auctions = ((b.auction - 1000) % 100 == 0).mean()
    assert 0.7 < hot_bidders < 0.8 and 0.45 < hot_auctions < 0.6


def test_values_are_in_the_spec_ranges():
    f = frames(0, 20_000, NexmarkConfig(seed=3))
    a, b, p = f["auction"], f["bid"], f["person"]
    assert set(a.category) == {10, 11, 12, 13, 14}
    assert (a.initial_bid >= 100).all() and (a.reserve > a.initial_bid).all() and (b.price >= 100).all()
    assert (b.price <= 10**8).all() and b.price.median() > 10_000       # 10 ** U(0, 6) dollars, in cents
    assert (a.expires > a.date_time).all()
    assert set(p.state) <= {"AZ", "CA", "ID", "OR", "WA", "WY"} and len(set(p.state)) == 6
    assert p.credit_card.str.fullmatch(r"\d{4} \d{4} \d{4} \d{4}").all()
    assert p.email_address.str.fullmatch(r"[a-z]{3,6}@[a-z]{3,4}\.com").all()
    assert ((b.channel.isin(["Google", "Facebook", "Baidu", "Apple"])).mean()) > 0.97
    assert b.url.str.startswith("https://www.nexmark.com/").all()
    # extra pads rows to the spec's average sizes (person 200, auction 500, bid 100 bytes)
    size = 16 + p.name.str.len() + p.email_address.str.len() + 19 + p.city.str.len() + 2 + p.extra.str.len()
    assert abs(size.mean() - 200) < 10
    size = 56 + a.item_name.str.len() + a.description.str.len() + a.extra.str.len()
    assert abs(size.mean() - 500) < 25


def test_event_time_advances_at_the_rate():
    cfg = NexmarkConfig(rate=1000, base_time_ms=0)
    b = generate("bid", 0, 10_000, cfg).to_pandas()
    ids = event_ids(0, 10_000)
    want = ids[kind_of(ids) == 2]                          # event e happens at e / rate seconds
    assert (b.date_time.astype("int64") == want).all()
    assert b.date_time.is_monotonic_increasing


def test_out_of_order_groups_scramble_event_time_within_a_group():
    cfg = NexmarkConfig(out_of_order=100, rate=1000, base_time_ms=0)
    ids = event_ids(0, 1000, 100)
    assert sorted(ids.tolist()) == list(range(1000))
    assert all(sorted(ids[g:g + 100].tolist()) == list(range(g, g + 100)) for g in range(0, 1000, 100))
    t = generate("bid", 0, 1000, cfg).to_pandas().date_time.astype("int64")
    assert not t.is_monotonic_increasing and (t.diff().dropna() > -100).all()


def test_the_same_seed_gives_the_same_events_and_another_seed_others():
    a, b, c = frames(0, 3000, NexmarkConfig(seed=9)), frames(0, 3000, NexmarkConfig(seed=9)), \
        frames(0, 3000, NexmarkConfig(seed=10))
    for k in KINDS:
        pd.testing.assert_frame_equal(a[k], b[k])
    assert not a["bid"].price.equals(c["bid"].price) and not a["person"].name.equals(c["person"].name)


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 3000), max_size=4), seed=st.integers(0, 2**40),
       out_of_order=st.sampled_from([1, 7, 100]))
def test_events_do_not_depend_on_how_the_stream_is_cut(cuts, seed, out_of_order):
    cfg = NexmarkConfig(seed=seed, out_of_order=out_of_order)
    bounds = [0] + sorted(cuts) + [3000]
    whole = frames(0, 3000, cfg)
    for k in KINDS:
        parts = [generate(k, a, b, cfg).to_pandas() for a, b in zip(bounds, bounds[1:])]
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole[k])


@pytest.mark.parametrize("bad, message", [
    (dict(rate=0), "rate"), (dict(seed=-1), "seed"), (dict(out_of_order=953), "953"), (dict(rate=1.5), "int"),
])
def test_bad_configurations_say_what_is_wrong(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        NexmarkConfig(**bad)


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="kind must be one of"):
        generate("bids", 0, 10)
    with pytest.raises(ValueError, match="stop is before start"):
        generate("bid", 10, 5)
