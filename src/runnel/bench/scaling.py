"""How much N threads can gain on this machine for the kernels' memory access patterns.

``local[N]`` runs kernel stages on N threads; what it can gain over ``local``
is capped by the hardware, not only by the engine. This runs one kernel call
per thread, the same call on every thread, first one after another on one
thread and then all at once, and prints the speedup (sequential time ÷
concurrent time; N would be perfect). The kernels are the engine's own, on
W2-shaped data, chosen for their access pattern:

* ``hash partition`` (:func:`runnel.kernels.partition_ids` of precomputed
  hashes): streaming reads and writes, little computation;
* ``dense reduce, 1k keys``: a fold whose table fits the L1/L2 caches;
* ``dense reduce, 100k keys``: W2's fold, a table of about 1 MiB per thread;
* ``dense reduce, 1M keys``: W4's, a table of about 10 MiB per thread.

Run ``python -m runnel.bench.scaling [--threads N] [--rows R]``. Figures are
medians of ``--rounds`` rounds; on a shared machine run it when the machine
is quiet (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import numpy as np

from ..kernels import partition_ids, reduce_int64_dense
from ..memory import keep_freed_memory

__all__ = ["speedup", "main"]


def speedup(call, threads: int, rounds: int = 7) -> tuple[float, float, float]:
    """(sequential ms, concurrent ms, speedup) of running ``call`` once per thread, medians of ``rounds``."""
    call()
    seq, par = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(threads):
            call()
        seq.append(time.perf_counter() - t0)
        barrier = threading.Barrier(threads)

        def run():
            barrier.wait()
            call()
        helpers = [threading.Thread(target=run) for _ in range(threads - 1)]
        for h in helpers:
            h.start()
        t0 = time.perf_counter()
        run()
        for h in helpers:
            h.join()
        par.append(time.perf_counter() - t0)
    s, p = statistics.median(seq), statistics.median(par)
    return s * 1e3, p * 1e3, s / p


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m runnel.bench.scaling", description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--rows", type=int, default=500_000, help="rows per call (default: a W2 map task's)")
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args(argv)
    if a.threads < 2:
        ap.error("--threads must be >= 2")
    keep_freed_memory()
    rng = np.random.default_rng(20240601)
    values = rng.random(a.rows)
    hashes = rng.integers(0, 2**63, a.rows, dtype=np.int64).astype(np.uint64)
    cases = {"hash partition": lambda: partition_ids(hashes, 2)}
    for keys in (1_000, 100_000, 1_000_000):
        k = rng.integers(0, keys, a.rows)
        cases[f"dense reduce, {keys:,} keys"] = lambda k=k: reduce_int64_dense(k, values, "sum")
    print(f"{a.threads} threads, {a.rows:,} rows per call, medians of {a.rounds} rounds; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'kernel':28s} {'one thread':>12s} {'all at once':>12s} {'speedup':>8s}")
    for name, call in cases.items():
        s, p, x = speedup(call, a.threads, a.rounds)
        print(f"{name:28s} {s:9.2f} ms {p:9.2f} ms {x:7.2f}x")


if __name__ == "__main__":
    main()
