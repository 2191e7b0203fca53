"""DataFrame workloads side by side: ``python -m runnel.bench.frames [--quick] [--batches N] [--only F1,F3] [--masters local,local[2]]``.

F1 filter + assign + groupby sum per batch; F2 running groupby mean over
1M keys; F3 windowed groupby count/mean over 20 batches. Each runs in one
process on the same data, batch by batch:

* runnel.frame on each master of ``--masters`` (default ``local``; as
  ``runnel.bench.compare``'s, ``local[2]:threads`` forcing a stage kind) —
  a StreamingContext on a ManualClock fed by
  ``ssc.frame.queue``; a batch's clock starts when it is submitted and
  stops when ``run_batches(1)`` returns with the output computed — F1's
  result brought to the driver (``to_batch``), F2/F3's table counted in
  the workers (the state stays there, as it would feeding a sink);
* the hand-written DStream pipeline doing the same work (F1
  filter/map_values/reduce_by_key on pairs, F2 ``update_state_by_key``
  with the built-in ``running_mean``), timed the same way;
* pandas and polars per batch, given their input already in their format
  (pure compute), keeping their state (F2: per-key sum and count; F3: the
  last 20 batches' per-key partials) between batches.

Figures are the median seconds per batch after warm-up (F2: 5 batches,
F3: the window fills): wall time, and the CPU time this process spent
(every thread: runnel's tasks, polars' pool), printed with ratios to
runnel.frame on the first master, and frame ÷ DStream on each master. CPU
time is the steadier figure on a shared machine; stages that ``local[N]``
sends to worker processes (user Python: F1's DStream lambdas) are not in
it, and the table says n/a there. Measure on an idle machine: a loaded one
moves every figure.
"""

from __future__ import annotations

import argparse
import collections
import math
import operator
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["WORKLOADS", "main", "run"]


@dataclass(frozen=True)
class FrameWorkload:
    name: str
    title: str
    rows: int
    keys: int
    warmup: int
    window: int = 0


WORKLOADS = {
    "F1": FrameWorkload("F1", "filter + assign + groupby sum per batch", 1_000_000, 100_000, 2),
    "F2": FrameWorkload("F2", "running groupby mean over 1M keys", 1_000_000, 1_000_000, 5),
    "F3": FrameWorkload("F3", "windowed groupby count/mean, 20 batches", 200_000, 100_000, 21, window=20),
}


def make_batches(w: FrameWorkload, n: int, quick: bool, seed: int = 0) -> list:
    import pandas as pd
    rng = np.random.default_rng(seed)
    rows = w.rows // 10 if quick else w.rows
    keys = w.keys // 10 if quick else w.keys
    return [pd.DataFrame({"k": rng.integers(0, keys, rows), "v": rng.standard_normal(rows)}) for _ in range(n)]


# --- runnel.frame and the hand-written DStream pipeline -------------------------------------------------

def frame_pipeline(name: str, sdf, window: int):
    if name == "F1":
        f = sdf[sdf.v > 0]
        return f.assign(w=f.v * 2).groupby("k").agg(t=("w", "sum"))
    if name == "F2":
        return sdf.groupby("k").running(mode="update").agg(m=("v", "mean"))
    return sdf.groupby("k").window(window, 1).agg(n=("v", "count"), m=("v", "mean"))


def dstream_pipeline(name: str, pairs):
    from runnel.updaters import running_mean
    if name == "F1":
        return pairs.filter(lambda kv: kv[1] > 0).map_values(lambda v: v * 2).reduce_by_key(operator.add)
    if name == "F2":
        return pairs.update_state_by_key(running_mean())
    return None


class RunnelFrames:
    """A StreamingContext on ``local`` with a workload's pipeline: ``step(batch)`` submits one batch
    and returns when its output ran (``variant``: "frame" or the hand-written "dstream")."""

    def __init__(self, w: FrameWorkload, first, variant: str, quick: bool, master: str = "local"):
        import tempfile
        import warnings

        from runnel import Context, ManualClock, StreamingContext
        from runnel import kernels as K
        from runnel.batch import Batch
        from runnel.frame.schema import Schema

        from .compare import split_master
        K.warm()
        self.ctx = Context(*split_master(master))
        self.ctx.executor.activity.watch()      # the stage log: did a stage run in worker processes?
        self.variant = variant
        self.ssc = StreamingContext(self.ctx, 1, clock=ManualClock())
        self.ssc.checkpoint(tempfile.mkdtemp())
        window = w.window // 4 if quick and w.window else w.window
        self.queue: collections.deque = collections.deque()
        if variant == "frame":
            sdf = self.ssc.frame.queue(self.queue, schema=Schema.of_batch(Batch.from_pandas(first)))
            out = frame_pipeline(w.name, sdf, window).stream
        else:
            out = dstream_pipeline(w.name, self.ssc.queue_stream(self.queue))
        if w.name == "F1":
            out.foreach_rdd(lambda rdd: rdd.to_batch())
        else:
            out.foreach_rdd(lambda rdd: rdd.count())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # a window without checkpoints would warn; this one has them
            self.ssc.start()

    def step(self, b) -> None:
        from runnel.batch import Batch
        if self.variant == "frame":
            self.queue.append(self.ctx.parallelize(b, 1))
        else:
            self.queue.append(self.ctx.dataset_of([Batch.from_pairs(b.k.to_numpy(), b.v.to_numpy())], "pairs"))
        self.ssc.run_batches(1, timeout=600)

    def ran_in_processes(self) -> bool:
        """Did a stage run in worker processes (whose CPU time this process's does not include)?"""
        return any(s.kind == "processes" for s in self.ctx.executor.activity.stages or ())

    def close(self) -> None:
        try:
            self.ssc.await_termination_or_timeout(0)
            self.ssc.stop(stop_spark_context=False)
        finally:
            self.ctx.stop()


def time_runnel(w: FrameWorkload, batches: list, variant: str, quick: bool,
                master: str = "local") -> list[tuple[float, float]]:
    """(wall, CPU) seconds per batch; CPU NaN when stages ran in worker processes (not counted)."""
    runner = RunnelFrames(w, batches[0], variant, quick, master)
    try:
        times = time_frames(runner.step, batches)
        return [(wall, float("nan")) for wall, _ in times] if runner.ran_in_processes() else times
    finally:
        runner.close()


# --- pandas and polars per batch -------------------------------------------------------------------------

def pandas_step(name: str, window: int) -> Callable:
    import pandas as pd
    if name == "F1":
        def f1(df):
            f = df[df.v > 0]
            return f.assign(w=f.v * 2).groupby("k").agg(t=("w", "sum"))
        return f1
    if name == "F2":
        state = {"s": None}

        def f2(df):
            part = df.groupby("k").v.agg(["sum", "count"])
            s = part if state["s"] is None else state["s"].add(part, fill_value=0)
            state["s"] = s
            return s["sum"] / s["count"]
        return f2
    parts: list = []

    def f3(df):
        parts.append(df.groupby("k").v.agg(["sum", "count"]))
        del parts[:-window]
        s = pd.concat(parts).groupby(level=0).sum()
        return s.assign(m=s["sum"] / s["count"])
    return f3


def polars_step(name: str, window: int) -> Callable:
    import polars as pl
    if name == "F1":
        return lambda df: df.filter(pl.col("v") > 0).with_columns(w=pl.col("v") * 2).group_by("k").agg(
            pl.col("w").sum())
    if name == "F2":
        state = {"s": None}

        def f2(df):
            part = df.group_by("k").agg(pl.col("v").sum().alias("s"), pl.col("v").count().alias("c"))
            s = part if state["s"] is None else pl.concat([state["s"], part]).group_by("k").agg(
                pl.col("s").sum(), pl.col("c").sum())
            state["s"] = s
            return s.with_columns(m=pl.col("s") / pl.col("c"))
        return f2
    parts: list = []

    def f3(df):
        parts.append(df.group_by("k").agg(pl.col("v").sum().alias("s"), pl.col("v").count().alias("c")))
        del parts[:-window]
        s = pl.concat(parts).group_by("k").agg(pl.col("s").sum(), pl.col("c").sum())
        return s.with_columns(m=pl.col("s") / pl.col("c"))
    return f3


def time_frames(step: Callable, frames: list) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of ``step`` on each frame (CPU: this process, every thread)."""
    times = []
    for f in frames:
        t0, c0 = time.perf_counter(), time.process_time()
        step(f)
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return times


def run(names: list[str], n: int, quick: bool,
        masters: tuple[str, ...] = ("local",)) -> list[tuple[str, str, float, float]]:
    """(workload, system, median wall seconds per batch, median CPU seconds per batch) for every
    workload and system (runnel.frame and the DStream pipeline on each master, then pandas, polars)."""
    import polars as pl
    out = []
    for name in names:
        w = WORKLOADS[name]
        count = max(n, w.warmup + 3) if not quick else max(n, (w.warmup if not w.window else w.window // 4 + 1) + 3)
        batches = make_batches(w, count, quick)
        skip = w.warmup if not quick else min(w.warmup, count - 3)
        window = w.window // 4 if quick and w.window else w.window

        def med(ts):
            return statistics.median(t[0] for t in ts[skip:]), statistics.median(t[1] for t in ts[skip:])
        for master in masters:
            out.append((name, f"runnel.frame {master}", *med(time_runnel(w, batches, "frame", quick, master))))
            if dstream_pipeline(name, _Probe()) is not None:
                out.append((name, f"DStream {master}", *med(time_runnel(w, batches, "dstream", quick, master))))
        out.append((name, "pandas", *med(time_frames(pandas_step(name, window), batches))))
        pls = [pl.from_pandas(b) for b in batches]
        out.append((name, "polars", *med(time_frames(polars_step(name, window), pls))))
    return out


class _Probe:
    """Stands in for a DStream to ask whether a workload has a hand-written DStream pipeline."""

    def __getattr__(self, name):
        return lambda *a, **k: self


def format_results(results: list[tuple[str, str, float, float]]) -> str:
    """The table: seconds per batch (wall, CPU), how many times as fast runnel.frame on the first
    master is (wall, CPU), and frame ÷ DStream per master."""
    lines = [f"{'workload':8} {'system':24} {'wall s':>8} {'CPU s':>8}   {'runnel.frame is (wall, CPU)':>28}"]
    for name in dict.fromkeys(r[0] for r in results):
        rows = [r for r in results if r[0] == name]
        ref = next(r for r in rows if r[1].startswith("runnel.frame "))
        lines.append(f"{name}: {WORKLOADS[name].title}")
        for _, sys_, wall, cpu in rows:
            ratio = "" if sys_ == ref[1] else f"{wall / ref[2]:.2f}x, {_ratio(cpu, ref[3])} as fast"
            lines.append(f"{'':8} {sys_:24} {wall:8.4f} {_cpu(cpu)}   {ratio:>28}")
        for _, sys_, wall, cpu in rows:
            d = next((r for r in rows if sys_.startswith("runnel.frame ") and r[1] == "DStream " + sys_[13:]), None)
            if d is not None:
                lines.append(f"{'':8} frame ÷ DStream on {sys_[13:]}: wall {wall / d[2]:.2f}x, "
                             f"CPU {_ratio(cpu, d[3])}")
    if any(math.isnan(r[3]) for r in results):
        lines.append("CPU n/a: stages ran in worker processes (user Python), whose CPU time is not counted")
    return "\n".join(lines)


def _cpu(seconds: float) -> str:
    return f"{'n/a':>8}" if math.isnan(seconds) else f"{seconds:8.4f}"


def _ratio(a: float, b: float) -> str:
    return "n/a" if math.isnan(a) or math.isnan(b) else f"{a / b:.2f}x"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runnel.bench.frames", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tenth of the rows and keys, a quarter of F3's window")
    p.add_argument("--batches", type=int, default=8, help="timed batches after warm-up (default 8)")
    p.add_argument("--only", default="F1,F2,F3", help="comma-separated workloads")
    p.add_argument("--masters", default="local",
                   help="comma-separated runnel masters, e.g. local,local[2] (default local)")
    a = p.parse_args(argv)
    names = [x.strip() for x in a.only.split(",") if x.strip()]
    unknown = [x for x in names if x not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {unknown}; known: {sorted(WORKLOADS)}")
    masters = tuple(m.strip() for m in a.masters.split(",") if m.strip())
    if not masters:
        p.error("--masters needs at least one master")
    print(format_results(run(names, a.batches, a.quick, masters)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
