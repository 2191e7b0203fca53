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
W3  sliding window: W2's stream; ``reduceByKeyAndWindow(add, sub, 20, 1)``
    (a window of 20 batches sliding by 1, incrementally with the inverse);
    timed in steady state, after the window has filled (warm-up >= 21
    batches). Baselines keep the last 20 per-batch groupby sums and update
    the window as old + entering - leaving.
W4  running state: 1,000,000 (int64 key uniform in [0, 1,000,000), float64
    value) pairs per batch; ``updateStateByKey`` running sum (the state grows
    to ~1M keys: 99.3% after 5 batches, the warm-up); runnel variants: a
    plain Python updater, the built-in ``runnel.updaters.running_sum()``
    and ``mapWithState``. Baselines keep the state as an indexed frame.
W5  tiny batches: W2's pipeline on 10 records per batch; the figure is
    batches/s (the engine's per-batch overhead).
W6  Python map: 100,000 W2 pairs per batch through a record function Numba
    cannot compile (``lambda kv: (kv[0] % 1000, float(f"{kv[1]:.2f}"))``:
    string formatting), then ``reduceByKey(add)``; the per-record Python runs
    on the fallback path, so ``local[N]`` runs that stage on worker
    processes (the GIL would serialise threads). pandas and polars run the
    same lambda per element.

The data comes from :func:`runnel.dstream.rate.generate`, the engine's
built-in rate source (its defaults are the ANCHORS parameters), so the
benchmarks and ``rate_stream`` see the same data; this module only says
which batches each workload uses.
"""

from __future__ import annotations

import collections
import operator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from ..batch import Batch
from ..dstream.rate import generate

__all__ = ["Workload", "WORKLOADS", "make_batches", "data_source", "to_pandas", "to_polars", "dstream_pipeline",
           "pandas_batch", "polars_batch", "pandas_runner", "polars_runner", "state_table", "result_summary",
           "python_sum_updater", "DEFAULT_SEED", "W4_VARIANTS"]

DEFAULT_SEED = 20240601
VOCABULARY = 100_000
ZIPF_S = 1.2
WORDS_PER_LINE = 10
KEYS = 100_000
#: W3: window and slide in batches (with --quick the window is 5 slides, the incremental path's minimum)
WINDOW, WINDOW_QUICK = 20, 5
#: W4: the key range (the state grows to about this many keys)
STATE_KEYS = 1_000_000
#: W4's runnel variants: the updater of updateStateByKey, or mapWithState
W4_VARIANTS = ("python", "running_sum", "map_with_state")
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
    keys: int = KEYS     # pairs: keys uniform in [0, keys)
    window: int = 0      # W3: window length in batches (slide 1); 0 = no window
    window_quick: int = 0
    warmup: int = 0      # uncounted batches the workload needs before it is in steady state
    warmup_quick: int = 0
    output: str = "collect"  # runnel's timed output: "collect" (to_batch) or "count" (state stays in the workers)
    variants: tuple = (None,)  # runnel variants of the pipeline (W4: updaters / mapWithState)

    def size(self, quick: bool = False) -> int:
        return self.n_quick if quick else self.n

    def window_batches(self, quick: bool = False) -> int:
        return self.window_quick if quick else self.window

    def min_warmup(self, quick: bool = False) -> int:
        """Warm-up batches the workload itself needs (W3: the window fills; W4: the state grows)."""
        return self.warmup_quick if quick else self.warmup

    def records(self, n: int) -> int:
        """Records counted per batch of generator size ``n``."""
        return n * WORDS_PER_LINE if self.kind == "words" else n


WORKLOADS: dict[str, Workload] = {
    "W1": Workload("W1", "word count, 1M Zipf(1.2) words", "words", 100_000, 1_000, "records/s"),
    "W2": Workload("W2", "int reduceByKey, 1M pairs, 100k keys", "pairs", 1_000_000, 10_000, "records/s"),
    "W3": Workload("W3", f"window {WINDOW} batches + inverse, 1M pairs, 100k keys", "pairs", 1_000_000, 10_000,
                   "records/s", window=WINDOW, window_quick=WINDOW_QUICK, warmup=WINDOW + 1,
                   warmup_quick=WINDOW_QUICK + 1),
    "W4": Workload("W4", "running state, 1M pairs, 1M keys", "pairs", 1_000_000, 10_000, "records/s",
                   keys=STATE_KEYS, warmup=5, warmup_quick=2, output="count", variants=W4_VARIANTS),
    "W5": Workload("W5", "tiny batches, 10 records", "pairs", 10, 10, "batches/s"),
    "W6": Workload("W6", "Python map, 100k pairs -> 1k keys", "pairs", 100_000, 5_000, "records/s"),
}

#: W6's keys after the map: key % PY_MAP_KEYS
PY_MAP_KEYS = 1000


def _py_map(kv):
    """W6's record function: string formatting, which Numba cannot compile (the Python path)."""
    return kv[0] % PY_MAP_KEYS, float(f"{kv[1]:.2f}")


def _py_value(v):
    return float(f"{v:.2f}")


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
    opts = dict(OPTIONS[w.kind], keys=w.keys) if w.kind == "pairs" else OPTIONS[w.kind]
    return [generate(w.kind, size, seed, t, **opts) for t in range(first_t, first_t + count)]


def data_source() -> str:
    """Where the data comes from (printed with results)."""
    return (f"runnel.dstream.rate.generate (vocabulary {VOCABULARY:,}, Zipf {ZIPF_S}, "
            f"{WORDS_PER_LINE} words/line, keys [0, {KEYS:,}); W4 keys [0, {STATE_KEYS:,}))")


# --- the same computation on every system ----------------------------------------

def python_sum_updater(values, state):
    """W4's updater as a PySpark user writes it (runnel runs it on the Python path, once per key)."""
    return sum(values) + (state or 0)


def _map_with_state_sum(key, value, state):
    """W4 with mapWithState: the running sum of the key, emitted per record."""
    total = (state.get() if state.exists() else 0.0) + value
    state.update(total)
    return total


def dstream_pipeline(workload: str | Workload, stream: Any, variant: str | None = None, quick: bool = False) -> Any:
    """The workload's DStream (or Dataset) transformation, written as a PySpark user writes it.

    PySpark's camelCase names on purpose: the very same function runs on a
    runnel DStream, a runnel Dataset (W1/W2) and a PySpark DStream (W1-W4 with
    the default variant; W3/W4 need a 1-second batch interval and, on
    PySpark, a checkpoint directory). ``variant`` picks W4's updater:
    ``"python"`` (default), ``"running_sum"`` (runnel's built-in kernel
    updater) or ``"map_with_state"`` (whose stream is the mapped records;
    its state is reached with :func:`state_table`).
    """
    wl = WORKLOADS[workload] if isinstance(workload, str) else workload
    if wl.kind == "words":
        return stream.flatMap(lambda line: line.split(" ")).map(lambda w: (w, 1)).reduceByKey(operator.add)
    if wl.window:
        return stream.reduceByKeyAndWindow(operator.add, operator.sub, wl.window_batches(quick), 1)
    if wl.name == "W6":
        return stream.map(_py_map).reduceByKey(operator.add)
    if wl.name == "W4":
        if variant in (None, "python"):
            return stream.updateStateByKey(python_sum_updater)
        if variant == "running_sum":
            from ..updaters import running_sum
            return stream.updateStateByKey(running_sum())
        if variant == "map_with_state":
            from ..updaters import StateSpec
            return stream.mapWithState(StateSpec.function(_map_with_state_sum))
        raise ValueError(f"unknown W4 variant {variant!r}; choose from {', '.join(W4_VARIANTS)}")
    return stream.reduceByKey(operator.add)


def state_table(stream: Any) -> Batch:
    """The latest state table of a runnel stateful stream (updateStateByKey or mapWithState), columnar."""
    s = getattr(stream, "states", stream)  # mapWithState's stream holds its state stream
    return s.state_at().to_batch()


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


class PandasWindow:
    """W3 on pandas: the last ``window`` per-batch groupby sums; window = old + entering - leaving."""

    def __init__(self, window: int):
        self.window = window
        self.parts: collections.deque = collections.deque()
        self.total = None

    def __call__(self, df):
        s = df.groupby("key", sort=False)["value"].sum()
        self.total = s if self.total is None else self.total.add(s, fill_value=0)
        self.parts.append(s)
        if len(self.parts) > self.window:
            self.total = self.total.sub(self.parts.popleft(), fill_value=0)
        return self.total


class PandasState:
    """W4 on pandas: the running sums as a Series indexed by key, ``state.add(batch sums, fill_value=0)``."""

    def __init__(self):
        import pandas as pd
        self.state = pd.Series(dtype=np.float64)

    def __call__(self, df):
        self.state = self.state.add(df.groupby("key").value.sum(), fill_value=0)
        return self.state


class PolarsWindow:
    """W3 on polars: per-batch group_by sums; window = (old, entering, -leaving) concatenated and summed by key."""

    def __init__(self, window: int):
        self.window = window
        self.parts: collections.deque = collections.deque()
        self.total = None

    def __call__(self, df):
        import polars as pl
        s = df.group_by("key").agg(pl.col("value").sum())
        frames = [s] if self.total is None else [self.total, s]
        self.parts.append(s)
        if len(self.parts) > self.window:
            frames.append(self.parts.popleft().with_columns(-pl.col("value")))
        self.total = frames[0] if len(frames) == 1 else \
            pl.concat(frames).group_by("key").agg(pl.col("value").sum())
        return self.total


class PolarsState:
    """W4 on polars: the state frame and the batch's sums concatenated and summed by key."""

    def __init__(self):
        self.state = None

    def __call__(self, df):
        import polars as pl
        s = df.group_by("key").agg(pl.col("value").sum())
        self.state = s if self.state is None else pl.concat([self.state, s]).group_by("key").agg(pl.col("value").sum())
        return self.state


def pandas_py_map(df):
    """W6 on pandas: the record function per value (``Series.map``), then a groupby sum."""
    return df.assign(key=df["key"] % PY_MAP_KEYS, value=df["value"].map(_py_value)).groupby(
        "key", sort=False)["value"].sum()


def polars_py_map(df):
    """W6 on polars: the record function per value (``map_elements``), then a group_by sum."""
    import polars as pl
    return df.select(pl.col("key") % PY_MAP_KEYS, pl.col("value").map_elements(_py_value, return_dtype=pl.Float64)) \
        .group_by("key").agg(pl.col("value").sum())


def pandas_runner(workload: str | Workload, quick: bool = False) -> Callable:
    """A fresh per-batch pandas step for the workload (stateful for W3/W4: one per run)."""
    w = WORKLOADS[workload] if isinstance(workload, str) else workload
    if w.name == "W6":
        return pandas_py_map
    if w.window:
        return PandasWindow(w.window_batches(quick))
    if w.name == "W4":
        return PandasState()
    return pandas_batch


def polars_runner(workload: str | Workload, quick: bool = False) -> Callable:
    """A fresh per-batch polars step for the workload (stateful for W3/W4: one per run)."""
    w = WORKLOADS[workload] if isinstance(workload, str) else workload
    if w.name == "W6":
        return polars_py_map
    if w.window:
        return PolarsWindow(w.window_batches(quick))
    if w.name == "W4":
        return PolarsState()
    return polars_batch


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
