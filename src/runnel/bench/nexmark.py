"""Nexmark on runnel: ``python -m runnel.bench.nexmark --query q5 [--events N] [--master local[2]]``.

For each query and master, in one process:

1. **generator**: the events the query reads (``runnel.nexmark.generator``,
   the same seeded stream ``ssc.frame.nexmark`` makes) are generated
   batch by batch, timed on their own;
2. **query**: a StreamingContext on a ManualClock replays those batches
   (``ssc.frame.queue``, split into the master's default parallelism), runs
   the query (``runnel.nexmark.queries``) into a sink that computes every
   partition of every result batch and keeps nothing (Flink's blackhole
   sink), and is timed from the first measured batch's submission until the
   last one's outputs ran. One warm-up batch (kernel compilation, first-batch
   set-up) runs before the clock starts.

Events/s counts every event of the stream (persons, auctions and bids, as
Nexmark does), divided by the cores the master uses (1 for ``local``, N for
``local[N]``) for the per-core figure, printed beside Flink's published
per-core figures (nexmark README: Flink 1.13, 8 TaskManagers, RocksDB) and
issue 13's targets. Measure on an idle machine: a loaded one moves every figure.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from typing import Any

from ..nexmark.generator import SCHEMAS, NexmarkConfig, generate
from ..nexmark.queries import QUERIES

__all__ = ["FLINK_PER_CORE", "TARGET_PER_CORE", "pregenerate", "run_query", "main"]

#: events/s per core, nexmark README (Flink 1.13, 8 TaskManagers, RocksDB, exactly-once checkpoints)
FLINK_PER_CORE = {"q0": 155_000, "q1": 158_000, "q2": 175_000, "q5": 22_000, "q7": 12_000, "q11": 40_000}
#: issue 13's targets, events/s per core
TARGET_PER_CORE = {"q0": 2_000_000, "q1": 2_000_000, "q2": 2_000_000, "q5": 500_000, "q7": 500_000,
                   "q8": 500_000, "q11": 500_000}


def cores(master: str) -> int:
    """Cores a master uses: 1 for ``local``, N for ``local[N]`` (``local[*]``: the machine's)."""
    import os
    m = re.fullmatch(r"local(?:\[(\d+|\*)\])?(?::\w+)?", master)
    if not m:
        raise ValueError(f"unknown master {master!r}: use local or local[N]")
    if m.group(1) is None:
        return 1
    return os.cpu_count() or 1 if m.group(1) == "*" else int(m.group(1))


def pregenerate(kinds: tuple, batches: int, batch_events: int, config: NexmarkConfig) -> tuple[dict, float]:
    """({kind: [batch, ...]}, CPU seconds the generator took) for ``batches`` batches of the stream."""
    t0 = time.process_time()
    out = {k: [generate(k, i * batch_events, (i + 1) * batch_events, config) for i in range(batches)]
           for k in kinds}
    return out, time.process_time() - t0


class ReplayedFrames:
    """persons/auctions/bids frames replaying pre-generated batches (``ssc.frame.queue``)."""

    def __init__(self, ssc, batches: dict):
        self._ssc, self._batches, self._frames = ssc, batches, {}

    def frame(self, kind: str):
        if kind not in self._frames:
            self._frames[kind] = self._ssc.frame.queue(self._batches[kind], schema=SCHEMAS[kind])
        return self._frames[kind]

    persons = property(lambda self: self.frame("person"))
    auctions = property(lambda self: self.frame("auction"))
    bids = property(lambda self: self.frame("bid"))


def _blackhole(ds) -> None:
    ds.count()


def run_query(name: str, master: str, batches: dict, warmup: int = 1) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) the query took over the batches after the first
    ``warmup`` (kernels warm by then). The CPU seconds count every thread of the driver (``local[N]``'s
    kernel stages), not worker processes (stages of user Python)."""
    from .. import ManualClock, StreamingContext
    fn, _ = QUERIES[name]
    n = len(next(iter(batches.values())))
    ssc = StreamingContext(master, 1, clock=ManualClock())
    try:
        with warnings.catch_warnings():
            # no checkpoint directory: the stateful operators' warning that their state would not survive
            # a restart is expected here (a benchmark run is not resumed)
            warnings.filterwarnings("ignore", message=".*no checkpoint directory is set", category=RuntimeWarning)
            fn(ReplayedFrames(ssc, batches)).stream.foreach_rdd(_blackhole)
            ssc.start()
        ssc.run_batches(warmup)
        t0, c0 = time.perf_counter(), time.process_time()
        ssc.run_batches(n - warmup)
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        ssc.stop()


def _fmt(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} K"


def main(argv: list[str] | None = None, out: Any = None) -> list[dict]:
    out = out or sys.stdout
    p = argparse.ArgumentParser(prog="python -m runnel.bench.nexmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--query", default="q0,q1,q2", help=f"comma-separated, of {','.join(QUERIES)} (or 'all')")
    p.add_argument("--events", type=int, default=5_000_000, help="events per run (all kinds), after warm-up")
    p.add_argument("--batch-events", type=int, default=500_000, help="events per batch")
    p.add_argument("--master", default="local", help="comma-separated masters, e.g. local,local[2]")
    p.add_argument("--rate", type=int, default=100_000, help="events per second of event time")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    names = list(QUERIES) if a.query == "all" else a.query.split(",")
    unknown = [q for q in names if q not in QUERIES]
    if unknown:
        p.error(f"unknown query {unknown}: known are {', '.join(QUERIES)}")
    masters = a.master.split(",")
    for m in masters:
        cores(m)
    cfg = NexmarkConfig(seed=a.seed, rate=a.rate)
    measured = max(1, a.events // a.batch_events)
    warmup = 1
    rows = []
    print(f"Nexmark: {measured} batches of {a.batch_events:,} events after {warmup} warm-up batch, "
          f"event time at {a.rate:,} events/s, seed {a.seed}", file=out)
    head = f"{'query':6} {'master':10} {'generator':>10} {'query':>10} {'per core':>10} {'per cpu-s':>10} " \
           f"{'Flink/core':>10} {'x Flink':>8} {'target':>8}"
    print(head, file=out)
    for q in names:
        kinds = QUERIES[q][1]
        batches, gen_s = pregenerate(kinds, measured + warmup, a.batch_events, cfg)
        events = measured * a.batch_events
        gen_rate = (measured + warmup) * a.batch_events / gen_s
        for m in masters:
            secs, cpu = run_query(q, m, batches, warmup)
            rate = events / secs
            per_core = rate / cores(m)
            per_cpu = events / cpu if cpu > 0 else float("inf")
            flink = FLINK_PER_CORE.get(q)
            target = TARGET_PER_CORE.get(q)
            row = {"query": q, "master": m, "events": events, "generator_s": gen_s, "generator_events_s": gen_rate,
                   "query_s": secs, "query_cpu_s": cpu, "events_s": rate, "events_s_core": per_core,
                   "events_cpu_s": per_cpu, "flink_core": flink,
                   "target_core": target}
            rows.append(row)
            print(f"{q:6} {m:10} {_fmt(gen_rate):>10} {_fmt(rate):>10} {_fmt(per_core):>10} {_fmt(per_cpu):>10} "
                  f"{_fmt(flink) if flink else '-':>10} {f'{per_core / flink:.0f}x' if flink else '-':>8} "
                  f"{_fmt(target) if target else '-':>8}", file=out)
    print("events/s. generator: generating the query's kinds alone, per CPU-second; query: the query over the "
          "pre-generated events (wall clock); per core: query / cores of the master; per cpu-s: events per "
          "CPU-second of the driver process (all its threads; worker processes not counted), steadier than wall "
          "clock on a loaded machine", file=out)
    return rows


if __name__ == "__main__":
    main()
