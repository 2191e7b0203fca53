"""The benchmark workloads of ``ANCHORS.md``: what each computes, and its data.

Every system in a comparison gets the *same* input: the data of batch ``t``
of a workload depends only on ``(seed, t)``, is built once as a runnel
:class:`~runnel.batch.Batch`, and is converted to each baseline's native
format (pandas DataFrame, polars DataFrame) *before* any clock starts. So a
baseline's figure is its per-batch compute on data already in its own
format, while runnel's figure also includes putting the batch into its
block store (what a source does in a real stream).

Workloads
---------
W1  word count: lines of 10 words drawn Zipf(1.2) from a 100,000-word
    vocabulary, 100,000 lines (1M words = 1M records) per batch;
    ``flatMap(lambda line: line.split(" ")).map(lambda w: (w, 1)).reduceByKey(add)``.
W2  int reduceByKey: 1,000,000 (int64 key uniform in [0, 100,000), float64
    value) pairs per batch; ``reduceByKey(add)``.
W5  tiny batches: W2's pipeline on 10 records per batch; the figure is
    batches/s (the engine's per-batch overhead).

The data comes from :func:`runnel.dstream.rate.generate`, the engine's
built-in rate source (its defaults are the ANCHORS parameters), so the
benchmarks and ``rate_stream`` see the same data; this module only says
which batches each workload uses.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..batch import Batch
from ..dstream.rate import generate

__all__ = ["Workload", "WORKLOADS", "make_batches", "data_source", "to_pandas", "to_polars", "dstream_pipeline",
           "pandas_batch", "polars_batch", "result_summary", "DEFAULT_SEED"]

DEFAULT_SEED = 20240601
VOCABULARY = 100_000
ZIPF_S = 1.2
WORDS_PER_LINE = 10
KEYS = 100_000
#: the rate source's options for each data kind (written out: the ANCHORS parameters, whatever its defaults)
OPTIONS = {"words": {"vocabulary": VOCABULARY, "zipf": ZIPF_S, "words_per_line": WORDS_PER_LINE},
           "pairs": {"keys": KEYS}}


@dataclass(frozen=True)
class Workload:
    """A workload: its data kind and sizes, and what the figure counts.

    ``n`` is the generator's size per batch (lines for W1, pairs for W2/W5);
    ``records`` is what the figure counts per batch (words for W1).
    """
    name: str
    title: str
    kind: str            # "words" | "pairs"
    n: int               # generator size per batch at full size
    n_quick: int         # ... with --quick
    unit: str            # "records/s" | "batches/s"

    def size(self, quick: bool = False) -> int:
        return self.n_quick if quick else self.n

    def records(self, n: int) -> int:
        """Records counted per batch of generator size ``n``."""
        return n * WORDS_PER_LINE if self.kind == "words" else n


WORKLOADS: dict[str, Workload] = {
    "W1": Workload("W1", "word count, 1M Zipf(1.2) words", "words", 100_000, 1_000, "records/s"),
    "W2": Workload("W2", "int reduceByKey, 1M pairs, 100k keys", "pairs", 1_000_000, 10_000, "records/s"),
    "W5": Workload("W5", "tiny batches, 10 records", "pairs", 10, 10, "batches/s"),
}


# --- data ----------------------------------------------------------------------

def make_batches(workload: str | Workload, count: int, *, quick: bool = False, n: int | None = None,
                 seed: int = DEFAULT_SEED, first_t: int = 1) -> list[Batch]:
    """The input batches ``first_t .. first_t + count - 1`` of a workload.

    Batch ``t`` is :func:`runnel.dstream.rate.generate` ``(kind, n, seed, t)``:
    exactly what ``ssc.rate_stream(kind, n, seed=seed)`` hands out as its
    t-th batch, so a benchmark can also be run off the live rate source.
    """
    w = WORKLOADS[workload] if isinstance(workload, str) else workload
    size = w.size(quick) if n is None else n
    return [generate(w.kind, size, seed, t, **OPTIONS[w.kind]) for t in range(first_t, first_t + count)]


def data_source() -> str:
    """Where the data comes from (printed with results)."""
    return (f"runnel.dstream.rate.generate (vocabulary {VOCABULARY:,}, Zipf {ZIPF_S}, "
            f"{WORDS_PER_LINE} words/line, keys [0, {KEYS:,}))")


# --- the same computation on every system ----------------------------------------

def dstream_pipeline(workload: str | Workload, stream: Any) -> Any:
    """The workload's DStream (or Dataset) transformation, written as a PySpark user writes it.

    PySpark's camelCase names on purpose: the very same function runs on a
    runnel DStream, a runnel Dataset and a PySpark DStream.
    """
    wl = WORKLOADS[workload] if isinstance(workload, str) else workload
    if wl.kind == "words":
        return stream.flatMap(lambda line: line.split(" ")).map(lambda w: (w, 1)).reduceByKey(operator.add)
    return stream.reduceByKey(operator.add)


def to_pandas(batch: Batch):
    """The batch as the pandas baseline's input (``line`` or ``key``/``value`` columns)."""
    import pandas as pd
    if batch.layout == "value":
        col = batch["value"]
        return pd.DataFrame({"line": pd.Series(col.to_pandas() if hasattr(col, "to_pandas") else col)})
    return pd.DataFrame({"key": np.asarray(batch["key"]), "value": np.asarray(batch["value"])})


def to_polars(batch: Batch):
    """The batch as the polars baseline's input."""
    import polars as pl
    if batch.layout == "value":
        col = batch["value"]
        return pl.DataFrame({"line": pl.Series("line", col if isinstance(col, (pa.Array, pa.ChunkedArray))
                                               else pa.array(col))})
    return pl.DataFrame({"key": np.asarray(batch["key"]), "value": np.asarray(batch["value"])})


def pandas_batch(df):
    """The workload on one pandas batch: word counts or per-key sums (a Series indexed by key)."""
    if "line" in df.columns:
        return df["line"].str.split(" ").explode().value_counts(sort=False)
    return df.groupby("key", sort=False)["value"].sum()


def polars_batch(df):
    """The workload on one polars batch (a DataFrame of key and aggregate)."""
    import polars as pl
    if "line" in df.columns:
        return df.select(pl.col("line").str.split(" ").explode()).group_by("line").len()
    return df.group_by("key").agg(pl.col("value").sum())


def result_summary(result: Any) -> tuple[int, float]:
    """(number of keys, total of the aggregates) of any system's output, to check they agree."""
    if isinstance(result, Batch):
        vals = result["value"] if len(result) else np.empty(0)
        return len(result), float(np.sum(np.asarray(vals, dtype=np.float64)))
    mod = type(result).__module__
    if mod.startswith("polars"):
        return result.height, float(result[result.columns[-1]].sum()) if result.height else 0.0
    if mod.startswith("pandas"):
        return len(result), float(result.sum()) if len(result) else 0.0
    if isinstance(result, list):  # collected (key, value) records
        return len(result), float(sum(v for _, v in result))
    raise TypeError(f"cannot summarise a {type(result).__name__}")
