"""What the streaming UI costs: ``python -m runnel.bench.ui_overhead [--master local[2]] [--rounds 20] [--no-poll]``.

Runs W2 (see :mod:`runnel.bench.workloads`) as :mod:`runnel.bench.compare`
times it, in one process on one Context, alternating the UI off and on
(``spark.ui.enabled``; the order flips every round, so drift in the
machine's load falls on both). While the UI is on, a client fetches the
streaming page's live part and ``/metrics`` every 0.5 s (ten times what an
open browser asks, plus a fast Prometheus scrape). Each round is a *pair*
(one run off, one on, back to back) and gives one ratio on/off; the figure
is the median of those paired ratios, with their quartiles and extremes
(the spread says how far one pair can be moved by the machine's other
load). Beside the records/s (wall clock), each run's CPU seconds of this
process (``time.process_time``: every thread of the driver, the UI's server
and the polling client included, so the UI is charged for its client too)
give a second paired ratio, CPU on/off: another process's load slows our
wall clock a lot but our CPU accounting little, so on a busy machine this
one resolves a cost the wall-clock ratio cannot. Then the time the UI's listeners take per batch, measured alone on
synthetic events (the part of the cost that does not depend on that load).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request

from . import workloads as wl
from .compare import run_runnel_batches
from .workloads import WORKLOADS

POLL_S = 0.5


def _poll(stop: threading.Event, served: list) -> None:
    from .. import StreamingContext
    while not stop.wait(POLL_S):
        ssc = StreamingContext.get_active()
        url = ssc.ui_url if ssc is not None else None
        if url is None:
            continue
        for path in ("/?part=live", "/metrics"):
            try:
                with urllib.request.urlopen(url + path, timeout=5) as r:
                    r.read()
                served.append(path)
            except OSError:       # the context stopped between the two requests
                pass


def listener_cost(batches: int = 2000) -> tuple[float, float]:
    """Seconds the UI's listeners (status, metrics) spend on one batch's events (submitted, started, one
    output operation started and completed, completed), measured on synthetic events, and seconds one
    live refresh of the streaming page takes with the retained batches (1000) those events left."""
    from ..executors.activity import Activity
    from ..listener import BatchEvent, BatchInfo, OutputOperationEvent, OutputOperationInfo, StreamingStarted
    from ..ui import JobFacts, StreamingStatus
    from ..ui.metrics import JobMetrics, available
    activity = Activity(2)                   # the web UI on: the status marks each batch's executor activity
    activity.watch()
    status = StreamingStatus(JobFacts("bench", "local", 1000, {}, activity=activity))
    listeners = [status] + ([JobMetrics(status)] if available() else [])
    for lst in listeners:
        lst.onStreamingStarted(StreamingStarted(0))
    all_events = []
    for i in range(batches):
        t = (i + 1) * 1000
        info = BatchInfo(t, t, 1_000_000, stream_records={"queue": 1_000_000})
        info.output_operation_infos[0] = op = OutputOperationInfo(t, 0, "foreachRDD", "foreachRDD at bench")
        events = [("onBatchSubmitted", BatchEvent(info))]
        info.processing_start_time = t + 1
        events.append(("onBatchStarted", BatchEvent(info)))
        op.start_time = t + 1
        events.append(("onOutputOperationStarted", OutputOperationEvent(op)))
        op.end_time = t + 50
        events.append(("onOutputOperationCompleted", OutputOperationEvent(op)))
        info.processing_end_time = t + 51
        events.append(("onBatchCompleted", BatchEvent(info)))
        all_events += events
    calls = [(getattr(lst, name), ev) for name, ev in all_events for lst in listeners]
    t0 = time.perf_counter()
    for fn, ev in calls:
        fn(ev)
    per_batch = (time.perf_counter() - t0) / batches
    from ..ui import pages
    pages.overview(status, live_only=True)
    t0 = time.perf_counter()
    for _ in range(5):
        pages.overview(status, live_only=True)
    return per_batch, (time.perf_counter() - t0) / 5


def measure(master: str, rounds: int, batches: int, warmup: int, poll: bool = True,
            cpu: dict[bool, list[float]] | None = None) -> dict[bool, list[float]]:
    """records/s of each run, by UI on/off, in run order; ``cpu`` gets each run's CPU seconds."""
    from ..context import Context
    from ..kernels import warm
    warm()
    w = WORKLOADS["W2"]
    data = wl.make_batches("W2", warmup + batches)
    ctx = Context(master, "runnel-ui-overhead", conf={"spark.ui.port": "0", "spark.ui.showConsoleProgress": "false"})
    rates: dict[bool, list[float]] = {False: [], True: []}
    try:
        run_runnel_batches(ctx, w, data, warmup)              # warm the pool
        for r in range(rounds):
            for ui in ((False, True) if r % 2 == 0 else (True, False)):
                ctx.conf["spark.ui.enabled"] = "true" if ui else "false"
                stop, served = threading.Event(), []
                poller = threading.Thread(target=_poll, args=(stop, served), daemon=True) if ui and poll else None
                if poller is not None:
                    poller.start()
                try:
                    c0 = time.process_time()
                    res = run_runnel_batches(ctx, w, data, warmup)
                    if cpu is not None:
                        cpu[ui].append(time.process_time() - c0)
                finally:
                    stop.set()
                    if poller is not None:
                        poller.join()
                rates[ui].append(res.rate)
                print(f"round {r}: UI {'on ' if ui else 'off'} {res.rate / 1e6:7.2f} M records/s"
                      + (f" ({len(served)} UI requests served)" if ui and poll else ""), flush=True)
    finally:
        ctx.stop()
    return rates


def paired(rates: dict[bool, list[float]]) -> dict[str, float]:
    """The rounds' paired ratios on/off (of records/s, or of CPU seconds): median, quartiles, extremes,
    and in how many pairs the ratio was below 1."""
    ratios = sorted(on / off for on, off in zip(rates[True], rates[False]))
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return {"pairs": len(ratios), "median": statistics.median(ratios), "q1": q[0], "q3": q[2],
            "min": ratios[0], "max": ratios[-1], "slower": sum(r < 1 for r in ratios)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runnel.bench.ui_overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--master", default="local[2]")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--batches", type=int, default=7, help="measured batches per run (median taken)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-poll", action="store_true", help="no client: the UI is on but nobody looks")
    a = p.parse_args(argv)
    cpu: dict[bool, list[float]] = {False: [], True: []}
    rates = measure(a.master, a.rounds, a.batches, a.warmup, poll=not a.no_poll, cpu=cpu)
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    spread = (max(rates[False]) - min(rates[False])) / off
    pr = paired(rates)
    print(f"W2 {a.master}: UI off {off / 1e6:.2f} M/s, on {on / 1e6:.2f} M/s (medians of {a.rounds}); "
          f"run-to-run spread with the UI off {100 * spread:.0f}%")
    print(f"paired on/off over {pr['pairs']} rounds: median {pr['median']:.3f} "
          f"(cost {100 * (1 - pr['median']):+.1f}%), "
          f"quartiles {pr['q1']:.3f}..{pr['q3']:.3f}, extremes {pr['min']:.3f}..{pr['max']:.3f}; "
          f"the UI run was the slower in {pr['slower']} of {pr['pairs']} pairs")
    pc = paired(cpu)                       # CPU seconds on/off: above 1 by what the UI costs
    print(f"paired CPU seconds on/off over {pc['pairs']} rounds: median {pc['median']:.3f} "
          f"(cost {100 * (pc['median'] - 1):+.1f}%), quartiles {pc['q1']:.3f}..{pc['q3']:.3f}, "
          f"extremes {pc['min']:.3f}..{pc['max']:.3f}")
    cost, render = listener_cost()
    batch_s = 1e6 / off     # W2's batches are 1M records: seconds per batch at the UI-off median
    print(f"the UI's listeners spend {cost * 1e6:.1f} us per batch's events = {100 * cost / batch_s:.3f}% of a "
          f"W2 batch ({batch_s * 1e3:.0f} ms at the UI-off median); an open page's refresh (every 5 s) takes "
          f"{render * 1e3:.1f} ms with 1000 retained batches = {100 * render / 5:.2f}% of one core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
