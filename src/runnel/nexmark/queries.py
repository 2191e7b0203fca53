"""The Nexmark queries, written with runnel's frame API.

Each query is a function of the three event frames (``persons``,
``auctions``, ``bids``: :class:`runnel.frame.source.NexmarkFrames`, or
anything with those attributes) returning the result frame; the SQL is the
Flink Nexmark suite's text of the query.

=====  ===========================================================================
q0     pass-through: every bid
q1     currency conversion: bid prices in euros (``0.908 * price``)
q2     selection: bids on auctions whose id is a multiple of 123 (auction, price)
q3     local item suggestion: persons in OR, ID or CA selling in category 10
       (an incremental join of auctions and persons: name, city, state, id)
q5     hot items: the auctions with the most bids in each hopping window
       (``size`` seconds, one every ``slide``)
q7     highest bid: the bids at the highest price of each tumbling window
q8     monitor new users: persons who opened an auction in the tumbling window
       they registered in (a join of two windowed streams)
q11    user sessions: bids per bidder per session (``gap`` seconds of event time)
=====  ===========================================================================

The windowed queries read event time from ``date_time`` with a watermark
``delay`` seconds behind it (Flink's Nexmark DDL: 4 s) and emit each window
once, when the watermark passes its end. Window sizes are parameters so
tests can use short ones; the defaults are the Flink suite's.

Examples
--------
>>> from runnel import StreamingContext, ManualClock
>>> ssc = StreamingContext("local", 1, clock=ManualClock())
>>> nx = ssc.frame.nexmark(events_per_batch=10_000)
>>> q2(nx).columns
['auction', 'price']
>>> ssc.stop()
"""

from __future__ import annotations

from typing import Any

from ..frame.event_time import hopping, session, tumbling

__all__ = ["QUERIES", "q0", "q1", "q2", "q3", "q5", "q7", "q8", "q11"]

#: Flink's Nexmark DDL: ``WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND``
DELAY = 4


def q0(nx: Any):
    """``SELECT auction, bidder, price, dateTime, extra FROM bid`` (every column of every bid here)."""
    return nx.bids


def q1(nx: Any):
    """``SELECT auction, bidder, 0.908 * price as price, dateTime, extra FROM bid``."""
    bids = nx.bids
    return bids.assign(price=bids.price * 0.908)


def q2(nx: Any):
    """``SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0``."""
    bids = nx.bids[["auction", "price"]]          # the two columns first: the filter moves no strings
    return bids[bids.auction % 123 == 0]


def q3(nx: Any):
    """``SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P on A.seller = P.id
    WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')``.

    An unbounded incremental join (``join_interval`` without bounds): both sides' rows are kept, and a
    pair comes out in the batch of its later row (an auction may name a seller who registers later)."""
    a = nx.auctions[["id", "seller", "category"]]
    a = a[a.category == 10][["id", "seller"]]
    p = nx.persons[["id", "name", "city", "state"]]
    p = p[p.state.isin(["OR", "ID", "CA"])]
    j = a.join_interval(p, left_on="seller", right_on="id")
    return j.rename(columns={"id_x": "id"})[["name", "city", "state", "id"]]


def q5(nx: Any, size: Any = 10, slide: Any = 2, delay: Any = DELAY):
    """Hot items: per hopping window, the auctions with as many bids as the most bid-on one::

        SELECT auction, num FROM (SELECT auction, count(*) AS num, window_start, window_end
          FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
          GROUP BY auction, window_start, window_end) JOIN (SELECT max(num) AS maxn, ... GROUP BY window)
          ON (same window) AND num >= maxn

    (with the window's start and end). A window's counts all come out in the batch that closes it, so
    the maximum per window is a per-batch aggregation joined back within the batch."""
    bids = nx.bids[["auction", "date_time"]].with_watermark("date_time", delay)
    counts = bids.groupby("auction").event_window(hopping(size, slide)).agg(num=("auction", "size"))
    counts.stream.cache()
    top = counts.groupby(["window_start", "window_end"]).agg(maxn=("num", "max"))
    hot = counts.merge(top, on=["window_start", "window_end"], within=counts.stream.slide_duration)
    return hot[hot.num >= hot.maxn][["auction", "num", "window_start", "window_end"]]


def q7(nx: Any, size: Any = 10, delay: Any = DELAY):
    """Highest bid: the bids at the highest price of their tumbling window::

        SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra FROM bid B
        JOIN (SELECT MAX(price) AS maxprice, window_end as dateTime FROM TABLE(TUMBLE(TABLE bid,
              DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) GROUP BY window_start, window_end) B1
        ON B.price = B1.maxprice WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime

    The maximum per window (a window over all bids, no key) joins the bids on price within the window,
    as an interval join on event time whose buffers the watermarks bound (bids wait one window).
    ``BETWEEN`` takes both ends, as Flink's (and RisingWave's, ksqlDB's) runs of this text do: a bid at
    a window's end, which belongs to the next window, also meets this window's maximum. (Beam's
    original Query7 joins each bid to its own window's maximum only; we follow the SQL, whose figures
    the issue compares with.)"""
    bids = nx.bids[["auction", "price", "bidder", "date_time", "extra"]].with_watermark("date_time", delay)
    maxes = bids[["price", "date_time"]].event_window(tumbling(size)).agg(maxprice=("price", "max"))
    maxes = maxes[["maxprice", "window_end"]].with_watermark("window_end", 0)
    out = bids.join_interval(maxes, left_on="price", right_on="maxprice", time=("date_time", "window_end"),
                             lower=-_seconds(size), upper=0, inclusive="both")
    return out[["auction", "price", "bidder", "date_time", "extra"]]


def q8(nx: Any, size: Any = 10, delay: Any = DELAY):
    """Monitor new users: persons who opened an auction in the tumbling window they registered in::

        SELECT P.id, P.name, P.starttime FROM (SELECT id, name, window_start AS starttime, window_end AS endtime
          FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
          GROUP BY id, name, window_start, window_end) P
        JOIN (SELECT seller, window_start AS starttime, window_end AS endtime FROM TABLE(TUMBLE(TABLE auction,
          DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) GROUP BY seller, window_start, window_end) A
        ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime

    Both windowed streams come out as their watermarks close windows (not always in the same batch), so
    they meet in an interval join on the window end (lower = upper = 0), its buffers bounded by watermarks
    on the window ends."""
    p = nx.persons[["id", "name", "date_time"]].with_watermark("date_time", delay)
    pw = p.groupby(["id", "name"]).event_window(tumbling(size)).agg(n=("id", "size"))
    pw = pw[["id", "name", "window_start", "window_end"]].with_watermark("window_end", 0)
    a = nx.auctions[["seller", "date_time"]].with_watermark("date_time", delay)
    aw = a.groupby("seller").event_window(tumbling(size)).agg(n=("seller", "size"))
    aw = aw[["seller", "window_start", "window_end"]].with_watermark("window_end", 0)
    j = pw.join_interval(aw, left_on=["id", "window_start"], right_on=["seller", "window_start"],
                         time="window_end", lower=0, upper=0)
    return j[["id", "name", "window_start"]]


def q11(nx: Any, gap: Any = 10, delay: Any = DELAY):
    """User sessions: ``SELECT B.bidder, count(*) as bid_count, SESSION_START(...), SESSION_END(...)
    FROM bid B GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND)``."""
    bids = nx.bids[["bidder", "date_time"]].with_watermark("date_time", delay)
    s = bids.groupby("bidder").event_window(session(gap)).agg(bid_count=("bidder", "size"))
    return s[["bidder", "bid_count", "window_start", "window_end"]]


def _seconds(value: Any) -> float:
    """A duration (seconds, timedelta or "10s") as seconds, to negate it into a lower bound."""
    if isinstance(value, (int, float)):
        return float(value)
    import pandas as pd
    return pd.Timedelta(value).total_seconds()


#: name -> (function, the kinds of events it reads)
QUERIES = {
    "q0": (q0, ("bid",)),
    "q1": (q1, ("bid",)),
    "q2": (q2, ("bid",)),
    "q3": (q3, ("person", "auction")),
    "q5": (q5, ("bid",)),
    "q7": (q7, ("bid",)),
    "q8": (q8, ("person", "auction")),
    "q11": (q11, ("bid",)),
}
