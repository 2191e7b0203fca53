"""An event-time window aggregation per batch, beside pandas: ``python -m runnel.bench.event_time``.

E1: ``with_watermark("ts", 2s)`` + ``groupby("k").event_window(tumbling(10s))``
``.agg(sum, count)``, final emission, over batches of out-of-order rows
(each batch spans 10 s of event time, jittered by up to 3 s back, so windows
close every batch and a few rows are late). The same batches run through:

* runnel on each master asked for (``--masters local,local[2]``): a
  StreamingContext on a ManualClock fed by ``ssc.frame.queue``; a batch's
  clock starts when it is submitted and stops when ``run_batches(1)``
  returns with the closed windows counted;
* pandas per batch, on the batch already a DataFrame: late rows split off,
  window starts by floor division, ``groupby([k, start]).agg`` merged into
  a (k, start)-indexed state frame, closed windows taken out — the same work.

Figures: median seconds per batch after ``--warmup`` batches, and the ratio
to pandas measured in the same run. Measure on an idle machine.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import tempfile
import time
import warnings

import numpy as np

__all__ = ["make_batches", "pandas_step", "time_runnel", "time_pandas", "main"]

SIZE_MS, DELAY_MS, SPAN_MS, JITTER_MS = 10_000, 2_000, 10_000, 3_000


def make_batches(n: int, rows: int, keys: int, seed: int = 0) -> list:
    import pandas as pd
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ts = i * SPAN_MS + rng.integers(0, SPAN_MS, rows) - rng.integers(0, JITTER_MS, rows) * (rng.random(rows) < 0.1)
        out.append(pd.DataFrame({"k": rng.integers(0, keys, rows), "ts": ts.astype(np.int64),
                                 "v": rng.random(rows)}))
    return out


def pipeline(sdf):
    from runnel.frame import tumbling
    return (sdf.with_watermark("ts", DELAY_MS / 1000, unit="ms").groupby("k")
            .event_window(tumbling(SIZE_MS / 1000)).agg(s=("v", "sum"), c=("v", "count")))


def pandas_step():
    """A per-batch function keeping pandas' window state between batches; returns the closed windows."""
    import pandas as pd
    st = {"state": None, "top": None}

    def step(df):
        top = st["top"]
        if top is not None:
            df = df[df.ts >= top - DELAY_MS]
        part = df.groupby([df.k, df.ts // SIZE_MS * SIZE_MS]).v.agg(["sum", "count"])
        state = part if st["state"] is None else st["state"].add(part, fill_value=0)
        st["top"] = max(top, int(df.ts.max())) if top is not None else int(df.ts.max())
        closed = state.index.get_level_values(1) + SIZE_MS <= st["top"] - DELAY_MS
        st["state"] = state[~closed]
        return state[closed]
    return step


def time_pandas(batches: list) -> tuple[list[float], list]:
    step, times, outs = pandas_step(), [], []
    for b in batches:
        t0 = time.perf_counter()
        outs.append(step(b))
        times.append(time.perf_counter() - t0)
    return times, outs


def time_runnel(batches: list, master: str) -> tuple[list[float], list]:
    from runnel import Context, ManualClock, StreamingContext
    from runnel import kernels as K
    from runnel.batch import Batch
    from runnel.frame.schema import Schema
    K.warm()
    ctx = Context(master)
    try:
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(tempfile.mkdtemp())
        queue: collections.deque = collections.deque()
        sdf = ssc.frame.queue(queue, schema=Schema.of_batch(Batch.from_pandas(batches[0])))
        counts: list = []
        pipeline(sdf).stream.foreach_rdd(lambda rdd: counts.append(rdd.count()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ssc.start()
        times = []
        for b in batches:
            queue.append(ctx.parallelize(b, ctx.default_parallelism))
            t0 = time.perf_counter()
            ssc.run_batches(1, timeout=600)
            times.append(time.perf_counter() - t0)
        ssc.await_termination_or_timeout(0)
        ssc.stop(stop_spark_context=False)
        return times, counts
    finally:
        ctx.stop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows per batch")
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--masters", default="local,local[2]")
    a = p.parse_args(argv)
    batches = make_batches(a.batches, a.rows, a.keys)
    pd_times, pd_out = time_pandas(batches)
    base = statistics.median(pd_times[a.warmup:])
    print(f"E1 tumbling event-time window sum+count, {a.rows:,} rows x {a.batches} batches, {a.keys:,} keys")
    print(f"{'system':<16}{'s/batch':>10}{'rows/s':>14}{'÷ pandas':>10}")
    print(f"{'pandas':<16}{base:>10.4f}{a.rows / base:>14,.0f}{1.0:>10.2f}")
    for m in a.masters.split(","):
        times, counts = time_runnel(batches, m)
        assert counts == [len(o) for o in pd_out], f"{m}: closed windows {counts}, pandas {[len(o) for o in pd_out]}"
        med = statistics.median(times[a.warmup:])
        print(f"{'runnel ' + m:<16}{med:>10.4f}{a.rows / med:>14,.0f}{med / base:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
