"""runnel.nexmark: the Nexmark benchmark's events and queries on runnel's frame API.

* :mod:`runnel.nexmark.generator` — Person, Auction and Bid events as the
  Nexmark generator makes them (proportions 1:3:46, ids, prices, event-time
  timestamps), columnar and seeded: every event is a pure function of the
  seed and its event id;
* :mod:`runnel.nexmark.queries` — queries q0, q1, q2, q3, q5, q7, q8, q11
  written with the frame API.

``ssc.frame.nexmark(events_per_batch=...)`` is the streaming source
(persons, auctions, bids as three frames); ``python -m runnel.bench.nexmark``
times the queries.

This package imports nothing of the engine at import time (the input
stream lives in ``runnel.dstream.nexmark``), so the generator can be used
on its own.
"""
