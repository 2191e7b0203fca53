"""Nexmark events: Person, Auction and Bid rows, columnar and seeded.

The Nexmark benchmark (Tucker et al., "NEXMark – A Benchmark for Queries over
Data Streams", as implemented by Apache Beam's and Flink's generators) models
an online auction: people register, open auctions and bid on them. This
module follows the generator those suites share:

* **kinds by proportion**: event ``e`` is a person when ``e % 50 < 1``, an
  auction when ``e % 50 < 4`` and a bid otherwise (1:3:46 per 50 events);
* **ids**: person and auction ids count persons/auctions so far from 1000;
  a seller or bidder is one of the 1000 most recent people (or one up to 10
  ids ahead: a person who has not registered yet), or a hot one (3 in 4
  sellers, 3 in 4 bidders: a multiple of 100); a bid's auction is one of the
  100 most recent (up to 10 ahead), or a hot one (1 in 2);
* **values**: prices ``round(10 ** (6 u) * 100)`` (cents, u uniform), a
  reserve above the initial bid, category 10..14, auctions that expire within
  twice the time 100 auctions take to arrive, names, cities, states from the
  spec's lists, random strings of the spec's lengths, ``extra`` padding that
  brings rows to the spec's average sizes (person 200, auction 500, bid 100
  bytes);
* **event time**: event ``e`` happens at ``base_time + e / rate`` seconds
  (``rate`` events per second of event time); with ``out_of_order > 1`` the
  events of each group of that many are emitted in a scrambled order
  (Beam's ``outOfOrderGroupSize``: event number ``i`` is emitted as event
  ``g + (i * 953) % n`` of its group ``g``), so event time runs backwards
  within a group.

Every value is a pure function of ``(seed, event id, field)``: a splitmix64
hash of the three, vectorised in NumPy (about eight passes over a uint64
array per field), so the events of ``[a, c)`` are those of ``[a, b)``
followed by those of ``[b, c)`` whatever the batch sizes or partitions, and
there is no Python loop per event. Random strings are windows of a seeded
pool of letters (a window per row, gathered as one 2-D take and a mask),
the url table of the 10,004 channels is built once per seed.

Examples
--------
>>> from runnel.nexmark.generator import NexmarkConfig, generate
>>> cfg = NexmarkConfig(seed=1)
>>> bids = generate("bid", 0, 1000, cfg)
>>> len(bids), len(generate("auction", 0, 1000, cfg)), len(generate("person", 0, 1000, cfg))
(920, 60, 20)
>>> list(bids.columns)
['auction', 'bidder', 'price', 'channel', 'url', 'date_time', 'extra']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

from ..batch import Batch

__all__ = ["NexmarkConfig", "KINDS", "SCHEMAS", "generate", "kind_of", "event_ids"]

KINDS = ("person", "auction", "bid")

#: columns and dtypes of each kind (runnel.frame schema spellings)
SCHEMAS = {
    "person": {"id": "int64", "name": "string", "email_address": "string", "credit_card": "string",
               "city": "string", "state": "string", "date_time": "datetime64[ms]", "extra": "string"},
    "auction": {"id": "int64", "item_name": "string", "description": "string", "initial_bid": "int64",
                "reserve": "int64", "date_time": "datetime64[ms]", "expires": "datetime64[ms]", "seller": "int64",
                "category": "int64", "extra": "string"},
    "bid": {"auction": "int64", "bidder": "int64", "price": "int64", "channel": "string", "url": "string",
            "date_time": "datetime64[ms]", "extra": "string"},
}

# the spec's constants
PERSON_PROPORTION, AUCTION_PROPORTION, BID_PROPORTION = 1, 3, 46
TOTAL_PROPORTION = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION
FIRST_PERSON_ID = FIRST_AUCTION_ID = 1000
FIRST_CATEGORY_ID, NUM_CATEGORIES = 10, 5
NUM_ACTIVE_PEOPLE, PERSON_ID_LEAD = 1000, 10
NUM_IN_FLIGHT_AUCTIONS, AUCTION_ID_LEAD = 100, 10
HOT_SELLER_RATIO = HOT_BIDDER_RATIO = HOT_AUCTION_RATIO = 100
HOT_CHANNELS = ("Google", "Facebook", "Baidu", "Apple")
NUM_CHANNELS = 10_000
FIRST_NAMES = ("Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter")
LAST_NAMES = ("Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris")
US_STATES = ("AZ", "CA", "ID", "OR", "WA", "WY")
US_CITIES = ("Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent",
             "Cheyenne")
AVG_SIZE = {"person": 200, "auction": 500, "bid": 100}
#: 2015-07-15T00:00:00Z, the default start of event time
BASE_TIME_MS = 1_436_918_400_000


@dataclass(frozen=True)
class NexmarkConfig:
    """What the generated events depend on.

    Parameters
    ----------
    seed : int
        The events are a pure function of the seed and the event id.
    rate : int
        Events per second of event time (Beam's default first event rate is 10,000).
    base_time_ms : int
        Event time of event 0, in ms since the epoch.
    out_of_order : int
        Events emitted in scrambled order within groups of this many (1: in order).
    """

    seed: int = 0
    rate: int = 10_000
    base_time_ms: int = BASE_TIME_MS
    out_of_order: int = 1

    def __post_init__(self):
        for name in ("seed", "rate", "base_time_ms", "out_of_order"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"NexmarkConfig.{name} must be an int, got {type(v).__name__}: {v!r}")
        if self.seed < 0:
            raise ValueError(f"NexmarkConfig.seed must be non-negative, got {self.seed}")
        if self.rate < 1:
            raise ValueError(f"NexmarkConfig.rate must be at least 1 event per second, got {self.rate}")
        if self.out_of_order < 1 or self.out_of_order % 953 == 0:
            raise ValueError(f"NexmarkConfig.out_of_order must be at least 1 and not a multiple of 953 "
                             f"(the scrambling multiplier), got {self.out_of_order}")

    def timestamp_ms(self, event_ids: np.ndarray) -> np.ndarray:
        """Event time (ms since the epoch, int64) of the events ``event_ids``."""
        return self.base_time_ms + (np.asarray(event_ids, dtype=np.int64) * 1000) // self.rate

    @property
    def auction_horizon_ms(self) -> int:
        """The event time 100 auctions take to arrive (auctions expire within twice that)."""
        events = NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION // AUCTION_PROPORTION
        return events * 1000 // self.rate


# --- ids -------------------------------------------------------------------------------------------

def event_ids(start: int, stop: int, out_of_order: int = 1) -> np.ndarray:
    """Ids of the events emitted at positions ``[start, stop)`` of the stream (int64)."""
    i = np.arange(start, stop, dtype=np.int64)
    n = int(out_of_order)
    if n == 1:
        return i
    return (i // n) * n + (i * 953) % n


def kind_of(ids: np.ndarray) -> np.ndarray:
    """0 (person), 1 (auction) or 2 (bid) per event id (int8)."""
    r = np.asarray(ids) % TOTAL_PROPORTION
    return (r >= PERSON_PROPORTION).astype(np.int8) + (r >= PERSON_PROPORTION + AUCTION_PROPORTION)


def last_person(ids: np.ndarray) -> np.ndarray:
    """Base-0 id of the last person registered at or before each event."""
    epoch, offset = np.divmod(ids, TOTAL_PROPORTION)
    return epoch * PERSON_PROPORTION + np.minimum(offset, PERSON_PROPORTION - 1)


def last_auction(ids: np.ndarray) -> np.ndarray:
    """Base-0 id of the last auction opened at or before each event (-1 before the first)."""
    epoch, offset = np.divmod(ids, TOTAL_PROPORTION)
    before = offset < PERSON_PROPORTION
    off = np.where(before | (offset >= PERSON_PROPORTION + AUCTION_PROPORTION), AUCTION_PROPORTION - 1,
                   offset - PERSON_PROPORTION)
    return (epoch - before) * AUCTION_PROPORTION + off


def _recent_person(ids: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One of the 1000 most recent people, or up to 10 ids ahead."""
    people = last_person(ids) + 1
    active = np.minimum(people, NUM_ACTIVE_PEOPLE)
    return people - active + _below(h, active + PERSON_ID_LEAD)


def _recent_auction(ids: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One of the 100 most recent auctions, or up to 10 ids ahead."""
    hi = last_auction(ids)
    lo = np.maximum(hi - NUM_IN_FLIGHT_AUCTIONS, 0)
    return lo + _below(h, hi - lo + 1 + AUCTION_ID_LEAD)


# --- randomness: splitmix64 of (seed, event id, field) ---------------------------------------------------

_M64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix_int(x: int) -> int:
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _hash(ids: np.ndarray, seed: int, field: int) -> np.ndarray:
    """A uint64 per event, independent across seeds, fields and ids."""
    x = ids.astype(np.uint64) * _GOLDEN          # uint64 arithmetic wraps, as the hash wants
    x += np.uint64(_mix_int(seed * 0x2545F4914F6CDD1D + field * 0x9E3779B97F4A7C15 + 1))
    x ^= x >> _S30
    x *= _MIX1
    x ^= x >> _S27
    x *= _MIX2
    x ^= x >> _S31
    return x


def _uniform(h: np.ndarray) -> np.ndarray:
    """Floats in [0, 1) from the top 53 bits."""
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def _below(h: np.ndarray, n) -> np.ndarray:
    """Ints in ``[0, n)`` (n an int or an array) from the top 53 bits."""
    return (_uniform(h) * n).astype(np.int64)


def _low(h: np.ndarray, bits: int, shift: int = 0) -> np.ndarray:
    """``bits`` low bits of ``h >> shift`` as int64 (a small draw independent of :func:`_below`'s top bits)."""
    return ((h >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)


def _price(h: np.ndarray) -> np.ndarray:
    """The spec's price: ``round(10 ** (6 u) * 100)`` cents."""
    return np.rint(np.exp(_uniform(h) * (6.0 * np.log(10.0))) * 100.0).astype(np.int64)


# --- strings ----------------------------------------------------------------------------------------

_POOL, _LONGEST = 1 << 16, 1024


@functools.lru_cache(maxsize=16)
def _pool(seed: int) -> np.ndarray:
    """A seeded pool of lowercase letters that random strings are windows of (a window starts in the
    first ``_POOL`` letters, whatever the longest string of the chunk: chunks do not change strings)."""
    return np.random.default_rng([seed, 0x6E78]).integers(97, 123, _POOL + _LONGEST, dtype=np.uint8)


def _string_array(data: np.ndarray, lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _strings(h: np.ndarray, lengths: np.ndarray, seed: int) -> pa.Array:
    """Random strings of the given lengths: each a window of the pool starting where ``h`` says."""
    lengths = np.asarray(lengths, dtype=np.int64)
    width = int(lengths.max()) if len(lengths) else 0
    if width == 0:
        return _string_array(np.empty(0, np.uint8), lengths)
    if width > _LONGEST:
        raise ValueError(f"random strings are at most {_LONGEST} characters, asked for {width}")
    pool = _pool(seed)
    starts = ((h >> np.uint64(20)) % np.uint64(_POOL)).astype(np.int64)
    windows = sliding_window_view(pool, width)[starts]            # (rows, width) bytes, one take
    data = windows[np.arange(width) < lengths[:, None]]           # row-major: each row's first length bytes
    return _string_array(data, lengths)


def _next_strings(h: np.ndarray, max_length: int, seed: int) -> pa.Array:
    """The spec's ``nextString(maxLength)``: 3 to max_length - 1 random letters."""
    return _strings(h, 3 + _low(h, 16) % (max_length - 3), seed)


def _table(values) -> pa.Array:
    return pa.array(list(values), pa.string())


def _take(table: pa.Array, idx: np.ndarray) -> pa.Array:
    return table.take(pa.array(idx, pa.int32()))


_FULL_NAMES = _table(f"{a} {b}" for a in FIRST_NAMES for b in LAST_NAMES)
_CITIES, _STATES = _table(US_CITIES), _table(US_STATES)


@functools.lru_cache(maxsize=16)
def _channels(seed: int) -> tuple[pa.Array, pa.Array]:
    """(channel, url) of the 4 hot channels (first) and the 10,000 others, built once per seed
    (a channel's url: ``https://www.nexmark.com/<3 random words>/item.htm?query=1``, then
    ``&channel_id=<n>`` for the others)."""
    n = len(HOT_CHANNELS) + NUM_CHANNELS
    c = np.arange(n, dtype=np.int64)
    words = [_strings(h, 3 + _low(h, 1), seed) for h in (_hash(c, seed, f) for f in (91, 92, 93))]
    numbers = pa.array(np.arange(-len(HOT_CHANNELS), NUM_CHANNELS)).cast(pa.string())
    tail = pc.if_else(pa.array(c < len(HOT_CHANNELS)), "", pc.binary_join_element_wise("&channel_id=", numbers, ""))
    urls = pc.binary_join_element_wise("https://www.nexmark.com", *words, pc.binary_join_element_wise(
        "item.htm?query=1", tail, ""), "/")
    names = pa.concat_arrays([_table(HOT_CHANNELS), pc.binary_join_element_wise("channel-", numbers, "")
                              .slice(len(HOT_CHANNELS))])
    return names, urls


def _extra(h: np.ndarray, size: np.ndarray, kind: str, seed: int) -> pa.Array:
    """Padding that brings rows to the spec's average size: within 20% of what the row lacks."""
    want = AVG_SIZE[kind] - size
    delta = np.rint(want * 0.2).astype(np.int64)
    lengths = np.where(want > 0, want - delta + _below(h, np.maximum(2 * delta, 1)), 0)
    return _strings(h, lengths, seed)


def _lengths(a: pa.Array) -> np.ndarray:
    return np.diff(np.frombuffer(a.buffers()[1], np.int32, len(a) + 1, a.offset * 4)).astype(np.int64)


# --- the three kinds ------------------------------------------------------------------------------

def _persons(ids: np.ndarray, cfg: NexmarkConfig) -> dict:
    s = cfg.seed
    h_name, h_mail, h_host, h_card, h_place, h_extra = (_hash(ids, s, f) for f in range(1, 7))
    name = _take(_FULL_NAMES, _below(h_name, len(_FULL_NAMES)))
    user, host = _next_strings(h_mail, 7, s), _next_strings(h_host, 5, s)
    email = pc.binary_join_element_wise(user, pc.binary_join_element_wise(host, "com", "."), "@")
    card = _credit_cards(h_card)
    city = _take(_CITIES, _below(h_place, len(US_CITIES)))
    state = _take(_STATES, _low(h_place, 8) % len(US_STATES))
    size = 8 + 8 + _lengths(name) + _lengths(email) + 19 + _lengths(city) + 2
    return {"id": last_person(ids) + FIRST_PERSON_ID, "name": name, "email_address": email, "credit_card": card,
            "city": city, "state": state, "date_time": cfg.timestamp_ms(ids).astype("datetime64[ms]"),
            "extra": _extra(h_extra, size, "person", s)}


def _credit_cards(h: np.ndarray) -> pa.Array:
    """Sixteen digits in groups of four: ``'dddd dddd dddd dddd'``."""
    digits = (h % np.uint64(10 ** 16)).astype(np.int64)
    out = np.full((len(h), 19), ord(" "), dtype=np.uint8)
    for j in range(16):
        out[:, j + j // 4] = 48 + (digits // 10 ** (15 - j)) % 10
    return _string_array(out.reshape(-1), np.full(len(h), 19, np.int64))


def _auctions(ids: np.ndarray, cfg: NexmarkConfig) -> dict:
    s = cfg.seed
    h_seller, h_cat, h_bid, h_res, h_len, h_name, h_desc, h_extra = (_hash(ids, s, f) for f in range(11, 19))
    hot = _low(h_seller, 2) > 0                       # 3 in 4 sellers are hot
    seller = np.where(hot, (last_person(ids) // HOT_SELLER_RATIO) * HOT_SELLER_RATIO,
                      _recent_person(ids, h_seller)) + FIRST_PERSON_ID
    initial = _price(h_bid)
    ts = cfg.timestamp_ms(ids)
    expires = ts + 1 + _below(h_len, max(2 * cfg.auction_horizon_ms, 1))
    item, desc = _next_strings(h_name, 20, s), _next_strings(h_desc, 100, s)
    size = 8 + _lengths(item) + _lengths(desc) + 8 * 6
    return {"id": last_auction(ids) + FIRST_AUCTION_ID, "item_name": item, "description": desc,
            "initial_bid": initial, "reserve": initial + _price(h_res), "date_time": ts.astype("datetime64[ms]"),
            "expires": expires.astype("datetime64[ms]"), "seller": seller,
            "category": FIRST_CATEGORY_ID + _below(h_cat, NUM_CATEGORIES), "extra": _extra(h_extra, size, "auction", s)}


def _bids(ids: np.ndarray, cfg: NexmarkConfig) -> dict:
    s = cfg.seed
    h_auction, h_bidder, h_price, h_channel, h_extra = (_hash(ids, s, f) for f in range(21, 26))
    hot = _low(h_auction, 1) > 0                      # 1 in 2 bids are on a hot auction
    auction = np.where(hot, (last_auction(ids) // HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO,
                       _recent_auction(ids, h_auction)) + FIRST_AUCTION_ID
    hot = _low(h_bidder, 2) > 0                       # 3 in 4 bidders are hot
    bidder = np.where(hot, (last_person(ids) // HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1,
                      _recent_person(ids, h_bidder)) + FIRST_PERSON_ID
    names, urls = _channels(s)
    # 99 in 100 bids come through one of the 4 hot channels, the rest through one of 10,000
    channel = np.where(_low(h_channel, 16) % 100 > 0, _low(h_channel, 2, 16),
                       len(HOT_CHANNELS) + _below(h_channel, NUM_CHANNELS)).astype(np.int32)
    ch, url = names.take(channel), urls.take(channel)
    size = 8 * 4 + _lengths(ch) + _lengths(url)
    return {"auction": auction, "bidder": bidder, "price": _price(h_price), "channel": ch, "url": url,
            "date_time": cfg.timestamp_ms(ids).astype("datetime64[ms]"), "extra": _extra(h_extra, size, "bid", s)}


_MAKERS = {"person": _persons, "auction": _auctions, "bid": _bids}


def generate(kind: str, start: int, stop: int, config: NexmarkConfig | None = None) -> Batch:
    """The ``kind`` events among the events emitted at positions ``[start, stop)``, as a frame batch.

    A pure function of its arguments: the rows of ``[a, c)`` are those of
    ``[a, b)`` followed by those of ``[b, c)``. Columns and dtypes: :data:`SCHEMAS`.
    """
    if kind not in _MAKERS:
        raise ValueError(f"Nexmark event kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    for what, v in (("start", start), ("stop", stop)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"Nexmark {what} must be a non-negative int, got {v!r}")
    if stop < start:
        raise ValueError(f"Nexmark events [{start}, {stop}): stop is before start")
    cfg = config if config is not None else NexmarkConfig()
    ids = event_ids(int(start), int(stop), cfg.out_of_order)
    ids = ids[kind_of(ids) == KINDS.index(kind)]
    cols = _MAKERS[kind](ids, cfg)
    return Batch(cols, tuple(cols))
