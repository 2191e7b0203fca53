"""A built-in generated source for demos, tests and benchmarks.

The data of a batch depends only on ``(seed, batch number)``: the stream
hands :func:`generate` the number of the batch (1 for the first batch after
start, 2 for the next ...), not the wall-clock time, so two runs of a
pipeline see exactly the same data whatever clock drives them, and the
pandas / polars baselines of the benchmarks can build the very same batches
with :func:`generate`.

Kinds
-----
``"words"``   ``n`` lines of ``words_per_line`` words drawn Zipf(``zipf``) from a
              vocabulary of ``vocabulary`` words (word of rank r is the
              bijective base-26 spelling of r: ``a`` ... ``z``, ``aa`` ...; frequent
              words are short, as in natural text)
``"pairs"``   ``(key, value)``: int64 key uniform in ``[0, keys)``, float64 value in [0, 1)
``"ints"``    int64 values uniform in ``[0, keys)``

Everything is columnar: words are drawn with NumPy (Walker's alias method,
exact for the bounded Zipf distribution: one uniform draw and two table
lookups per word, where ``np.searchsorted`` on the CDF was 2.4x slower), and
the line strings are assembled by Arrow (``take`` + ``binary_join``), never
by a Python loop over lines. One W1 batch (100,000 lines x 10 words from
100,000 words) costs about 55 ms of CPU time (draw 20 ms, take 18 ms, join
8 ms, the rest NumPy/Arrow glue; measured with ``time.process_time`` on the
shared 2-core development box, whose wall times under load were 2-5x that),
once the per-vocabulary tables are built (~0.3 s, cached, done in ``start``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..batch import Batch
from ..dataset import split_slices
from .inputs import InputDStream

KINDS = ("words", "pairs", "ints")
_DEFAULTS = {"vocabulary": 100_000, "zipf": 1.2, "keys": 100_000, "words_per_line": 10}


def _positive_int(value: Any, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value!r}")
    return int(value)


def _check_options(kind: str, n: Any, opts: dict) -> dict:
    if kind not in KINDS:
        raise ValueError(f"rate stream kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    unknown = set(opts) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown rate stream option(s): {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(_DEFAULTS)})")
    _positive_int(n, "records_per_batch", 0)
    o = {**_DEFAULTS, **opts}
    for name in ("vocabulary", "keys", "words_per_line"):
        o[name] = _positive_int(o[name], name)
    if o["vocabulary"] >= 2**31:
        raise ValueError(f"vocabulary must be below 2**31 words, got {o['vocabulary']}")
    z = o["zipf"]
    if isinstance(z, bool) or not isinstance(z, (int, float)) or not z > 0:
        raise ValueError(f"zipf exponent must be a positive number, got {z!r}")
    o["zipf"] = float(z)
    return o


@functools.lru_cache(maxsize=8)
def _vocabulary(size: int) -> tuple[pa.Array, np.ndarray]:
    """Words of rank 0..size-1 spelt in bijective base 26 (a, ..., z, aa, ...), built columnar."""
    ranks = np.arange(size, dtype=np.int64)
    # length of each word: ranks below 26 have 1 letter, the next 26**2 have 2, ...
    lengths = np.ones(size, dtype=np.int64)
    first = np.zeros(size, dtype=np.int64)        # first rank having this word's length
    start, span = 26, 26 * 26
    while start < size:
        longer = ranks >= start
        lengths[longer] += 1
        first[longer] = start
        start, span = start + span, span * 26
    width = int(lengths.max())
    code = ranks - first                           # position among the words of the same length
    table = np.zeros((size, width), dtype=np.uint8)
    for j in range(width - 1, -1, -1):             # last letter first; pad columns stay 0
        live = lengths > j
        shift = lengths[live] - 1 - j
        table[live, j] = 97 + (code[live] // 26 ** shift) % 26
    data = table[table != 0]
    offsets = np.zeros(size + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    words = pa.Array.from_buffers(pa.string(), size, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return words, lengths


@functools.lru_cache(maxsize=8)
def _alias_table(size: int, exponent: float) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of the bounded Zipf law p(r) ~ (r+1)**-exponent, r < size."""
    p = np.arange(1, size + 1, dtype=np.float64) ** -exponent
    q = (p * (size / p.sum())).tolist()
    prob = np.ones(size, dtype=np.float64)
    alias = np.arange(size, dtype=np.intp)
    small = [i for i, v in enumerate(q) if v < 1.0]
    large = [i for i, v in enumerate(q) if v >= 1.0]
    while small and large:                         # built once per (size, exponent) and cached
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = q[s], g
        q[g] += q[s] - 1.0
        (small if q[g] < 1.0 else large).append(g)
    # float32/int32 halve the tables' cache footprint (the lookups are random): 10% faster draws; a
    # float32 slot probability is off by < 6e-8 of itself
    return prob.astype(np.float32), alias.astype(np.int32)


def zipf_ranks(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    """``n`` int32 ranks in ``[0, size)`` drawn from the bounded Zipf law (alias method, one draw each)."""
    prob, alias = _alias_table(size, exponent)
    x = rng.random(n)
    x *= size
    i = x.astype(np.int32)
    x -= i                                          # the fractional part decides: own slot or alias
    keep = x < np.take(prob, i, mode="clip")
    out = np.take(alias, i, mode="clip")
    np.copyto(out, i, where=keep)
    return out


def _rng(seed: int, t: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF,
                                                         int(t) & 0xFFFFFFFF, int(t) >> 32 & 0xFFFFFFFF]))


def generate(kind: str, n: int, seed: int = 0, t: int = 1, **opts: Any) -> Batch:
    """The batch number ``t`` of a rate stream: a pure function of its arguments.

    Parameters
    ----------
    kind : {"words", "pairs", "ints"}
    n : int
        Records (lines for ``"words"``).
    seed, t : int
        The seed and the batch number; the data depends on nothing else.
    **opts
        ``vocabulary``, ``zipf``, ``words_per_line`` (words), ``keys`` (pairs, ints).

    Examples
    --------
    >>> b = generate("pairs", 3, seed=7, t=1)
    >>> b.layout, len(b)
    (('key', 'value'), 3)
    >>> generate("words", 2, seed=1, t=5, words_per_line=3).to_records() == \
generate("words", 2, seed=1, t=5, words_per_line=3).to_records()
    True
    """
    o = _check_options(kind, n, opts)
    for what, v in (("seed", seed), ("t", t)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{what} must be a non-negative int, got {v!r}")
    rng = _rng(seed, t)
    if kind == "ints":
        return Batch({"value": rng.integers(0, o["keys"], n, dtype=np.int64)}, "value")
    if kind == "pairs":
        keys = rng.integers(0, o["keys"], n, dtype=np.int64)
        return Batch.from_pairs(keys, rng.random(n))
    w = o["words_per_line"]
    words, _ = _vocabulary(o["vocabulary"])
    ranks = zipf_ranks(rng, n * w, o["vocabulary"], o["zipf"])
    offsets = pa.array(np.arange(0, n * w + 1, w, dtype=np.int64 if n * w >= 2**31 else np.int32))
    lists = (pa.LargeListArray if n * w >= 2**31 else pa.ListArray).from_arrays(offsets, words.take(ranks))
    lines = pc.binary_join(lists, " ")
    return Batch({"value": lines}, "value")


class RateInputDStream(InputDStream):
    """Generated data, ``records_per_batch`` records per batch (see the module docstring).

    Batch k after start (k = 1, 2, ...) holds ``generate(kind, records_per_batch,
    seed, k, ...)``, split into ``num_partitions`` contiguous partitions (the
    context's default parallelism by default).

    Examples
    --------
    >>> from runnel import StreamingContext, ManualClock
    >>> ssc = StreamingContext("local", 1, clock=ManualClock())
    >>> out = []
    >>> ssc.rate_stream("ints", 4, seed=3).count().foreach_rdd(lambda rdd: out.append(rdd.collect()))
    >>> ssc.start(); ssc.run_batches(2); ssc.stop()
    >>> out
    [[4], [4]]
    """

    kind = "rate_stream"

    def __init__(self, ssc, kind: str = "words", records_per_batch: int = 1000, seed: int = 0,
                 vocabulary: int = 100_000, zipf: float = 1.2, keys: int = 100_000, words_per_line: int = 10,
                 *, num_partitions: int | None = None):
        self.options = _check_options(kind, records_per_batch, {"vocabulary": vocabulary, "zipf": zipf,
                                                                "keys": keys, "words_per_line": words_per_line})
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if num_partitions is not None:
            _positive_int(num_partitions, "num_partitions")
        super().__init__(ssc)
        self.data_kind = kind
        self.records_per_batch = int(records_per_batch)
        self.seed = int(seed)
        self.num_partitions = num_partitions

    def start(self) -> None:
        # build the per-vocabulary tables now (~0.3 s for 100,000 words) so the first batch is not late
        if self.data_kind == "words":
            _vocabulary(self.options["vocabulary"])
            _alias_table(self.options["vocabulary"], self.options["zipf"])

    def batch_number(self, t: int) -> int:
        """1 for the first batch after start, 2 for the next, ..."""
        return (t - self.graph.zero_ms) // self.slide_ms

    def compute(self, t: int):
        whole = generate(self.data_kind, self.records_per_batch, self.seed, self.batch_number(t), **self.options)
        k = self.num_partitions or self.ssc.context.default_parallelism
        parts = [whole.slice(a, b) for a, b in split_slices(len(whole), k)] if len(whole) else [Batch.empty()]
        return self._counted(t, self.ssc.context.dataset_of(parts, self.name))
