"""Side-by-side comparison: ``python -m runnel.bench.compare [--quick] [--batches N] [--only W1,W2] [--masters local,local[2]] [--variants running_sum]``.

Runs the ANCHORS workloads (W1 word count, W2 int reduceByKey, W3 sliding
window, W4 running state, W5 tiny batches, W6 a Python map; see
:mod:`runnel.bench.workloads`) in one process on:

* runnel on each master of ``--masters`` (default ``local`` and ``local[2]``;
  ``local[2]:processes`` or ``local[2]:threads`` forces where ``local[2]``
  runs every stage, through the ``runnel.executor.stageKind`` conf key;
  ``dask[2]`` starts a Dask LocalCluster of 2 worker processes for the run,
  ``dask[2]:tasks`` runs even tiny stages as Dask tasks, ``dask://host:port``
  uses a running cluster) — a
  real :class:`~runnel.StreamingContext` on a :class:`~runnel.ManualClock`,
  fed by ``queue_stream``, results brought to the driver by ``foreachRDD``
  (``rdd.to_batch()``, columnar). The ``÷local`` column is each master's
  throughput over ``local``'s on the same workload (and W4 variant);
* pandas and polars, the same computation per batch on the same data;
* PySpark DStreams (``local[2]``) when ``pyspark`` imports and Java is on
  the PATH; otherwise the row says why it was skipped.

How runnel is timed
-------------------
W1/W2: a batch's clock starts when the driver *submits* it — puts its
partitions (one per core) into the block store and queues the Dataset —
and stops when ``run_batches(1)`` returns, i.e. after the foreachRDD output
has the batch's result in the driver. Kernels are warmed first
(``runnel.kernels.warm``) and the first ``--warmup`` batches are not counted,
so no Numba compilation is timed. The figure is records per second over the
median batch. Context (process pool) start-up is reported separately.

W3/W4 are timed the same way, in steady state: the warm-up is at least what
the workload needs (W3: the window fills, 21 batches; W4: the state reaches
~1M keys, 5 batches). W4's timed output is the state table's ``count()``
(the table stays in the workers, as it would feeding a sink); the final
state is brought to the driver, untimed, to check it against pandas. W4 runs
three runnel variants (a Python updater, the built-in ``running_sum()``,
mapWithState), and prints the bytes per key of the state table from the
listener's ``BatchInfo.state_tables``. The issue-3 targets (W3 >= 3x pandas,
W4 with the built-in updater >= 4x pandas, < 40 bytes of state per key) are
printed with what was measured.

W5: 10-record batches are queued and ``ssc.run_batches(n)`` advances the
clock n intervals and waits for each; batches/s is the median over rounds.
The empty-batch overhead is the same with nothing queued (ms per batch).
``run_batches`` runs the batches on the calling thread, one after the
other: on a machine whose cores are all busy the process gets its fair
share, so the W5 row's note says what the batches cost in CPU (the
process's CPU ms per batch) and how long its threads waited for a core
(from ``/proc``), the figures that compare across loads.

The baselines get their input already converted to their own format (a
pandas / polars DataFrame): their figure is pure per-batch compute.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import workloads as wl
from .workloads import WORKLOADS, Workload

#: a runnel master on the command line: a Spark master, optionally ``:<stage kind>``; ``dask`` or ``dask[N]``
#: (a LocalCluster of N single-threaded worker processes started for the run, default 2), ``:tasks``: every
#: stage as Dask tasks, none inline in the driver (``runnel.executor.inlineBytes=0``); ``dask://host:port``
MASTER_SPEC = re.compile(r"local(?:\[(?:\d+|\*)\])?(?::(?:auto|threads|processes))?|dask(?:\[\d+\])?(?::tasks)?|dask://\S+")
DASK_LOCAL = re.compile(r"dask(?:\[(\d+)\])?")
#: runnel's aims on local[2] (issue 11), printed next to the results.
AIMS = {"W1": 50e6, "W2": 250e6, "W3": 250e6, "W4": 100e6, "W5": 3000.0}
#: issue 11's bars: local[2] throughput over local's (W4: the built-in running_sum updater)
SPEEDUPS = {"W1": 1.6, "W2": 1.2, "W3": 1.6, "W4": 1.6, "W6": 1.6}
#: issue 3's bars on local[2]: throughput over pandas per batch, and bytes of state per key
TARGETS = {"W3": 3.0, "W4": 4.0}
STATE_BYTES_PER_KEY = 40


@dataclass
class Result:
    workload: str
    system: str
    rate: float | None = None            # records/s, or batches/s for W5
    batch_ms: float | None = None        # median ms per batch
    empty_ms: float | None = None        # W5: median ms per empty batch
    summary: tuple | None = None         # (keys, total) of the last output
    note: str = ""
    mean_ms: float | None = None         # mean ms per measured batch (W3: includes the periodic exact recompute)
    state: dict | None = None            # stream name -> {"keys", "bytes"} after the last batch (BatchInfo)
    put_ms: float | None = None          # runnel: median ms of putting the input into the block store (in batch_ms)
    master: str | None = None            # runnel: the master spec it ran on
    variant: str | None = None           # runnel: W4's variant
    spread: tuple | None = None          # (min, max) ms per measured batch


@dataclass
class Settings:
    quick: bool = False
    batches: int = 7
    warmup: int = 2
    rounds: int = 5
    tiny_per_round: int = 200
    seed: int = wl.DEFAULT_SEED
    workloads: tuple = ("W1", "W2", "W3", "W4", "W5", "W6")
    systems: tuple = ("runnel", "pandas", "polars", "pyspark")
    masters: tuple = ("local", "local[2]")
    variants: tuple | None = None        # W4's runnel variants to run (default: all of them)
    notes: list = field(default_factory=list)

    def warmup_for(self, w: Workload) -> int:
        """Uncounted batches for ``w``: --warmup, or more when the workload needs it (W3, W4)."""
        return max(self.warmup, w.min_warmup(self.quick))


# --- runnel ------------------------------------------------------------------------

def _runnel_stream(ssc, w: Workload, queue, last: list, variant: str | None = None, quick: bool = False):
    """The workload on ``queue``; its output keeps the last batch's result in ``last[0]``.

    The result is columnar (``to_batch``), or for a ``count`` output (W4) the
    number of rows: the state table stays in the workers. Returns the stream.
    """

    def output(rdd):
        last[0] = rdd.count() if w.output == "count" else rdd.to_batch()

    stream = wl.dstream_pipeline(w, ssc.queue_stream(queue), variant, quick)
    stream.foreach_rdd(output)
    return stream


def _state_listener():
    """A listener keeping the last batch's ``BatchInfo.state_tables`` (keys and bytes of each state table)."""
    from ..listener import StreamingListener

    class StateTables(StreamingListener):
        def __init__(self):
            super().__init__()
            self.last: dict = {}

        def onBatchCompleted(self, batchCompleted):
            self.last = dict(batchCompleted.batch_info.state_tables)

    return StateTables()


def run_runnel_batches(ctx, w: Workload, batches: list, warmup: int, variant: str | None = None,
                       quick: bool = False) -> Result:
    """W1-W4 on a StreamingContext over ``ctx``: ms per batch from submission through output."""
    import warnings

    from .. import ManualClock, StreamingContext
    from ..dataset import split_slices
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    queue: collections.deque = collections.deque()
    last: list = [None]
    # "no checkpoint directory is set": expected here (warned when the stream starts), the bench does not recover
    warnings.filterwarnings("ignore", message=".*no checkpoint directory is set.*", category=RuntimeWarning)
    stream = _runnel_stream(ssc, w, queue, last, variant, quick)
    tables = _state_listener()
    ssc.add_streaming_listener(tables)
    k = ctx.default_parallelism
    times, puts = [], []
    ssc.start()
    try:
        for b in batches:
            parts = [b.slice(a, c) for a, c in split_slices(len(b), k)]
            t0 = time.perf_counter()
            queue.append(ctx.dataset_of(parts, f"{w.name} input"))
            t1 = time.perf_counter()
            ssc.run_batches(1)
            times.append(time.perf_counter() - t0)
            puts.append(t1 - t0)
        # W4: the final state comes to the driver after the clock (the timed output only counted it)
        final = wl.state_table(stream) if w.output == "count" else last[0]
    finally:
        ssc.stop(stop_spark_context=False)
    med = statistics.median(times[warmup:])
    return Result(w.name, "", w.records(len(batches[0])) / med, med * 1e3, summary=wl.result_summary(final),
                  mean_ms=statistics.mean(times[warmup:]) * 1e3, state=tables.last or None,
                  put_ms=statistics.median(puts[warmup:]) * 1e3,
                  spread=(min(times[warmup:]) * 1e3, max(times[warmup:]) * 1e3))


def run_runnel_tiny(ctx, w: Workload, tiny: list, s: Settings) -> Result:
    """W5: batches/s of 10-record batches through ``run_batches(n)``, and ms per empty batch."""
    from .. import ManualClock, StreamingContext
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    queue: collections.deque = collections.deque()
    last: list = [None]
    _runnel_stream(ssc, w, queue, last)
    n = len(tiny)
    full, empty, cpu, waited = [], [], [], []
    ssc.start()
    try:
        for r in range(s.rounds + 1):  # round 0 warms up
            queue.extend(tiny)
            c0, w0 = _cpu_seconds()
            t0 = time.perf_counter()
            ssc.run_batches(n)
            full.append(time.perf_counter() - t0)
            c1, w1 = _cpu_seconds()
            cpu.append(c1 - c0)
            waited.append(None if w0 is None or w1 is None else w1 - w0)
        summary = wl.result_summary(last[0])
        for r in range(s.rounds + 1):
            t0 = time.perf_counter()
            ssc.run_batches(n)
            empty.append(time.perf_counter() - t0)
    finally:
        ssc.stop(stop_spark_context=False)
    note = f"cpu {statistics.median(cpu[1:]) / n * 1e3:.3f} ms/batch"
    if all(x is not None for x in waited[1:]):
        note += f", waited for a core {statistics.median(waited[1:]) / n * 1e3:.3f} ms/batch"
    return Result(w.name, "", n / statistics.median(full[1:]), statistics.median(full[1:]) / n * 1e3,
                  statistics.median(empty[1:]) / n * 1e3, summary, note=note,
                  spread=(min(full[1:]) / n * 1e3, max(full[1:]) / n * 1e3))


def _cpu_seconds() -> tuple[float, float | None]:
    """CPU seconds this process used (all threads), and seconds its threads waited on a run queue for a
    core (Linux ``/proc/self/task/*/schedstat``; None elsewhere)."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_SELF)
    waited = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return ru.ru_utime + ru.ru_stime, None
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                waited += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):   # a thread that ended meanwhile
            continue
    return ru.ru_utime + ru.ru_stime, waited / 1e9


def split_master(spec: str) -> tuple[str, dict]:
    """``"local[2]:processes"`` -> ``("local[2]", {"runnel.executor.stageKind": "processes"})``."""
    from ..executors.kinds import STAGE_KIND_KEY
    from ..executors.kinds import INLINE_BYTES_KEY
    if spec.startswith("dask://"):
        return spec, {}
    master, _, kind = spec.partition(":")
    if master.startswith("dask"):
        return master, ({INLINE_BYTES_KEY: 0} if kind == "tasks" else {})
    return master, ({STAGE_KIND_KEY: kind} if kind else {})


def system_name(spec: str) -> str:
    """The table's name for a master spec: ``runnel local[2] processes``, ``runnel dask[2]``."""
    return "runnel " + (spec if spec.startswith("dask://") else spec.replace(":", " "))


def run_runnel(spec: str, data: dict, s: Settings) -> list[Result]:
    from ..context import Context
    from ..kernels import warm
    master, conf = split_master(spec)
    t0 = time.perf_counter()
    warm()
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    cluster = None
    local = DASK_LOCAL.fullmatch(master)
    if local:                        # a LocalCluster of N worker processes over loopback, for this run
        from distributed import LocalCluster
        n = int(local.group(1) or 2)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=":0")
        master = "dask://" + cluster.scheduler_address.split("://", 1)[1]
        s.notes.append(f"{system_name(spec)}: a Dask LocalCluster of {n} single-threaded worker processes "
                       f"over loopback, started in {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
    ctx = Context(master, "runnel-bench", conf)
    t_ctx = time.perf_counter() - t0
    s.notes.append(f"{system_name(spec)}: kernels warm in {t_warm:.2f} s (cache in {_numba_cache()}); "
                   f"Context start {t_ctx:.2f} s (not timed below)")
    out = []
    try:
        for name in s.workloads:
            w = WORKLOADS[name]
            for variant in w.variants:
                if s.variants is not None and variant is not None and variant not in s.variants:
                    continue
                try:
                    if name == "W5":
                        r = run_runnel_tiny(ctx, w, data[name], s)
                    else:
                        r = run_runnel_batches(ctx, w, data[name], s.warmup_for(w), variant, s.quick)
                except Exception as e:  # keep going: one failing workload must not hide the others
                    r = Result(name, "", note=f"FAILED: {type(e).__name__}: {e}")
                r.system = system_name(spec) + (f" {variant}" if variant else "")
                r.master, r.variant = spec, variant
                out.append(r)
    finally:
        ctx.stop()
        if cluster is not None:
            cluster.close()
    return out


def _numba_cache() -> str:
    return os.environ.get("NUMBA_CACHE_DIR") or "__pycache__ next to the kernels"


# --- per-batch baselines (pandas, polars) -------------------------------------------------

def run_frames(system: str, runner: Callable, convert: Callable, data: dict, s: Settings) -> list[Result]:
    """A per-batch baseline; ``runner(workload, quick)`` gives a fresh step (stateful for W3/W4)."""
    out = []
    for name in s.workloads:
        w = WORKLOADS[name]
        compute = runner(w, s.quick)
        try:
            frames = [convert(b) for b in data[name]]  # conversion is not timed
            if name == "W5":
                empty = convert(_empty_pairs())
                full, none = [], []
                for r in range(s.rounds + 1):
                    t0 = time.perf_counter()
                    for f in frames:
                        res = compute(f)
                    full.append(time.perf_counter() - t0)
                for r in range(s.rounds + 1):
                    t0 = time.perf_counter()
                    for _ in frames:
                        compute(empty)
                    none.append(time.perf_counter() - t0)
                n = len(frames)
                med = statistics.median(full[1:])
                r = Result(name, system, n / med, med / n * 1e3, statistics.median(none[1:]) / n * 1e3,
                           wl.result_summary(res), spread=(min(full[1:]) / n * 1e3, max(full[1:]) / n * 1e3))
            else:
                times = []
                for f in frames:
                    t0 = time.perf_counter()
                    res = compute(f)
                    times.append(time.perf_counter() - t0)
                counted = times[s.warmup_for(w):]
                med = statistics.median(counted)
                r = Result(name, system, w.records(len(data[name][0])) / med, med * 1e3,
                           summary=wl.result_summary(res), spread=(min(counted) * 1e3, max(counted) * 1e3))
        except Exception as e:
            r = Result(name, system, note=f"FAILED: {type(e).__name__}: {e}")
        out.append(r)
    return out


def _empty_pairs():
    from ..batch import Batch
    return Batch.from_pairs(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


# --- PySpark (only where installed) ------------------------------------------------------------

def pyspark_missing() -> str | None:
    """Why PySpark cannot run here, or None."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (java not on PATH, JAVA_HOME unset)"
    return None


def run_pyspark(data: dict, s: Settings) -> list[Result]:
    """PySpark DStreams on local[2]: per-batch processing delay from a StreamingListener."""
    from pyspark import SparkConf, SparkContext
    from pyspark.streaming import StreamingContext, StreamingListener

    class Delays(StreamingListener):
        def __init__(self):
            self.ms: list[float] = []

        def onBatchCompleted(self, completed):
            delay = completed.batchInfo().processingDelay()  # a scala.Option[Long] through py4j
            self.ms.append(float(delay.get()))

    conf = SparkConf().setMaster("local[2]").setAppName("runnel-bench").set("spark.ui.enabled", "false")
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    out = []
    try:
        for name in s.workloads:
            w = WORKLOADS[name]
            batches = data[name]
            try:
                recs = [b.to_records() for b in batches]
                rdds = [sc.parallelize(r, 2).cache() for r in recs]
                for r in rdds:
                    r.count()  # materialise before the stream starts
                ssc = StreamingContext(sc, 0.2 if name == "W5" else 1)
                if w.window or w.output == "count":  # windows with an inverse and state need a checkpoint dir
                    ssc.checkpoint(tempfile.mkdtemp(prefix="runnel-bench-spark-"))
                delays = Delays()
                ssc.addStreamingListener(delays)
                last: list = [None]
                stream = wl.dstream_pipeline(w, ssc.queueStream(rdds), quick=s.quick)
                if w.output == "count":  # W4: the state stays in Spark; (keys, total) of it, not 1M records
                    stream.foreachRDD(lambda rdd: last.__setitem__(0, (rdd.count(), float(rdd.values().sum()))))
                else:
                    stream.foreachRDD(lambda rdd: last.__setitem__(0, rdd.collect()))
                ssc.start()
                deadline = time.time() + 600
                while len(delays.ms) < len(rdds) and time.time() < deadline:
                    time.sleep(0.05)
                ssc.stop(stopSparkContext=False, stopGraceFully=False)
                ms = delays.ms[s.warmup_for(w):] or delays.ms
                med = statistics.median(ms) / 1e3
                if name == "W5":
                    out.append(Result(name, "pyspark local[2]", 1 / med, med * 1e3, summary=wl.result_summary(last[0]),
                                      note="processing delay only"))
                else:
                    summary = last[0] if isinstance(last[0], tuple) else wl.result_summary(last[0])
                    out.append(Result(name, "pyspark local[2]", w.records(len(batches[0])) / med, med * 1e3,
                                      summary=summary, note="processing delay"))
            except Exception as e:
                out.append(Result(name, "pyspark local[2]", note=f"FAILED: {type(e).__name__}: {e}"))
    finally:
        sc.stop()
    return out


# --- the table ------------------------------------------------------------------------------------

def _fmt_rate(r: Result, w: Workload) -> str:
    if r.rate is None:
        return "-"
    if w.unit == "batches/s":
        return f"{r.rate:,.0f} /s"
    return f"{r.rate / 1e6:,.2f} M/s" if r.rate >= 1e5 else f"{r.rate:,.0f} /s"


def _check(r: Result, ref: Result | None) -> str:
    if r.summary is None or ref is None or ref.summary is None:
        return ""
    keys, total = r.summary
    rkeys, rtotal = ref.summary
    ok = keys == rkeys and abs(total - rtotal) <= 1e-9 * max(1.0, abs(rtotal))
    return "ok" if ok else f"MISMATCH keys {keys} vs {rkeys}, total {total:.6g} vs {rtotal:.6g}"


def _local_ratio(r: Result, results: list[Result]) -> str:
    """``local[N]`` / ``local`` on the same workload and W4 variant ("" for local itself and the baselines)."""
    if r.master in (None, "local") or not r.rate:
        return ""
    base = next((b for b in results if b.workload == r.workload and b.master == "local"
                 and b.variant == r.variant and b.rate), None)
    return f"{r.rate / base.rate:.2f}x" if base else ""


def format_table(results: list[Result], s: Settings) -> str:
    head = ("workload", "system", "throughput", "ms/batch", "min-max ms", "÷pandas", "÷polars", "÷local",
            "empty ms", "check")
    rows = []
    for name in s.workloads:
        w = WORKLOADS[name]
        mine = [r for r in results if r.workload == name]
        base = {r.system: r for r in mine}
        pandas, polars = base.get("pandas"), base.get("polars")
        size = w.records(w.size(s.quick))
        title = f"{name} {w.title if not s.quick else w.kind + f' ({size:,} records/batch)'}"
        for i, r in enumerate(mine):
            ratio = lambda b: (f"{r.rate / b.rate:.2f}x" if r.system.startswith("runnel") and b and b.rate
                               and r.rate else "")  # noqa: E731
            check = _check(r, pandas) if r.system != "pandas" else ""
            rows.append((title if i == 0 else "", r.system,
                         _fmt_rate(r, w) if r.rate is not None else r.note,
                         f"{r.batch_ms:.3f}" if r.batch_ms is not None else "",
                         f"{r.spread[0]:.3g}-{r.spread[1]:.3g}" if r.spread else "",
                         ratio(pandas), ratio(polars), _local_ratio(r, results),
                         f"{r.empty_ms:.3f}" if r.empty_ms is not None else "",
                         check if r.rate is not None else ""))
            if r.rate is not None and r.note:
                rows[-1] = rows[-1][:-1] + ((check + " " + f"({r.note})").strip(),)
    widths = [max(len(str(x[i])) for x in rows + [head]) for i in range(len(head))]
    line = lambda x: "  ".join(str(c).ljust(wd) for c, wd in zip(x, widths)).rstrip()  # noqa: E731
    out = [line(head), line(tuple("-" * wd for wd in widths))]
    prev = None
    for row in rows:
        if row[0] and prev is not None:
            out.append("")
        out.append(line(row))
        prev = row
    return "\n".join(out)


def state_lines(results: list[Result], s: Settings) -> list[str]:
    """Bytes per key of every state/window table runnel reported after its last batch (BatchInfo.state_tables)."""
    out = []
    for r in results:
        if not r.state or not r.system.startswith("runnel"):
            continue
        for stream, t in sorted(r.state.items()):
            keys, nbytes = t.get("keys", 0), t.get("bytes", 0)
            per = f"{nbytes / keys:.1f} bytes/key" if keys else "no keys"
            out.append(f"state: {r.workload} {r.system}: {stream}: {keys:,} keys, {nbytes / 2**20:,.1f} MiB, {per}")
    if any(r.state and "map_with_state" in r.system for r in results):
        out.append("state: mapWithState's table also holds the batch's mapped records (its bytes/key overstates "
                   "the state)")
    return out


def _bytes_per_key(r: Result) -> float | None:
    tables = [t for t in (r.state or {}).values() if t.get("keys")]
    if not tables:
        return None
    return sum(t["bytes"] for t in tables) / sum(t["keys"] for t in tables)


def target_lines(results: list[Result], s: Settings) -> list[str]:
    """Issue 3's targets (local[2]) next to what was measured."""
    out = []
    pandas = {r.workload: r for r in results if r.system == "pandas"}
    for name, bar in TARGETS.items():
        if name not in s.workloads:
            continue
        base = pandas.get(name)
        mine = [r for r in results if r.workload == name and r.system.startswith("runnel local[2]")]
        if name == "W4":  # the bar is for the built-in / compiled updater
            mine = [r for r in mine if r.system.endswith("running_sum")]
        for r in mine:
            if base is None or not base.rate or not r.rate:
                out.append(f"target: {name} {r.system} >= {bar:g}x pandas: not measured")
                continue
            x = r.rate / base.rate
            # pandas' figure excludes building its input frame; runnel's includes putting its input into
            # the block store (a receiver does that while the previous batch runs): shown without it too
            bare = base.batch_ms / (r.batch_ms - r.put_ms) if r.put_ms is not None else None
            out.append(f"target: {name} {r.system} >= {bar:g}x pandas per batch: {x:.2f}x "
                       f"({'met' if x >= bar else 'NOT met'})"
                       + (f"; {bare:.2f}x without the {r.put_ms:.1f} ms put of the input" if bare else ""))
    for r in results:                          # issue 11: local[N] over local, and the absolute aims
        if r.master in (None, "local") or not r.rate or (r.workload == "W4" and r.variant != "running_sum"):
            continue
        bar = SPEEDUPS.get(r.workload)
        x = _local_ratio(r, results)
        if bar is not None and x:
            out.append(f"target: {r.workload} {r.system} >= {bar:g}x local: {x} "
                       f"({'met' if float(x[:-1]) >= bar else 'NOT met'})")
        aim = AIMS.get(r.workload)
        if aim is not None and r.master == "local[2]" and not s.quick:
            shown = f"{aim:,.0f} /s" if WORKLOADS[r.workload].unit == "batches/s" else f"{aim / 1e6:g} M/s"
            out.append(f"target: {r.workload} {r.system} >= {shown}: {_fmt_rate(r, WORKLOADS[r.workload])} "
                       f"({'met' if r.rate >= aim else 'NOT met'})")
    if "W4" in s.workloads:
        for r in results:
            if r.workload == "W4" and r.system.startswith("runnel local[2]") and r.state:
                b = _bytes_per_key(r)
                if b is not None:
                    out.append(f"target: W4 {r.system} state < {STATE_BYTES_PER_KEY} bytes/key: {b:.1f} "
                               f"({'met' if b < STATE_BYTES_PER_KEY else 'NOT met'})")
    return out


def header(s: Settings) -> str:
    import numba
    import pandas
    import pyarrow
    vers = [f"numpy {np.__version__}", f"numba {numba.__version__}", f"pandas {pandas.__version__}",
            f"pyarrow {pyarrow.__version__}"]
    try:
        import polars
        vers.append(f"polars {polars.__version__}")
    except ImportError:
        pass
    more = [f"{n} {s.warmup_for(WORKLOADS[n])}" for n in s.workloads
            if n != "W5" and s.warmup_for(WORKLOADS[n]) != s.warmup]
    how = (f"median of {s.batches} batches after {s.warmup} warm-up" +
           (f" ({', '.join(more)}: steady state)" if more else "") +
           (f"; W5: median of {s.rounds} rounds of {s.tiny_per_round} batches" if "W5" in s.workloads else ""))
    return (f"runnel bench{' (--quick: tiny sizes, figures meaningless)' if s.quick else ''}\n"
            f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
            + ", ".join(vers) + "\n"
            f"data: {wl.data_source()}, seed {s.seed}\n{how}; load average {_load()}")


def _load() -> str:
    """The 1-minute load average: figures taken on a busy machine are not comparable."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


# --- command ----------------------------------------------------------------------------------------

def build_data(s: Settings) -> dict:
    data = {}
    for name in s.workloads:
        if name == "W5":
            data[name] = wl.make_batches(name, s.tiny_per_round, quick=s.quick, seed=s.seed)
        else:
            data[name] = wl.make_batches(name, s.warmup_for(WORKLOADS[name]) + s.batches, quick=s.quick, seed=s.seed)
    return data


def parse_args(argv: list[str] | None) -> Settings:
    # the workloads are described once, in runnel.bench.workloads' docstring; --help shows that section
    doc = wl.__doc__
    workloads = doc[doc.index("Workloads\n---------\n") + 20:doc.index("\nThe data comes from")].rstrip()
    p = argparse.ArgumentParser(
        prog="python -m runnel.bench.compare", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Runs the benchmark workloads on runnel (local and local[2]), pandas and polars (and "
                    "PySpark\nwhen installed) on identical seeded input, in one process, and prints "
                    "records/s and the\nratios. Kernels are compiled before timing; the first batches "
                    "of each workload are not\ncounted.",
        epilog="workloads:\n" + workloads.replace("``", ""))
    p.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke test); figures are meaningless")
    p.add_argument("--batches", type=int, default=None, help="measured batches per workload (default 7; 3 quick)")
    p.add_argument("--warmup", type=int, default=None, help="uncounted batches first (default 2; 1 quick)")
    p.add_argument("--only", default=None, help="comma-separated workloads, e.g. W1,W2")
    p.add_argument("--systems", default=None,
                   help=f"comma-separated subset of runnel,pandas,polars,pyspark (runnel-<master> adds a master)")
    p.add_argument("--masters", default=None,
                   help="comma-separated runnel masters (default local,local[2]); local[N]:processes or "
                        "local[N]:threads forces where every stage runs")
    p.add_argument("--variants", default=None,
                   help=f"comma-separated W4 runnel variants (default all: {','.join(wl.W4_VARIANTS)})")
    p.add_argument("--seed", type=int, default=wl.DEFAULT_SEED)
    a = p.parse_args(argv)
    s = Settings(quick=a.quick, seed=a.seed)
    s.batches = a.batches if a.batches is not None else (3 if a.quick else 7)
    s.warmup = a.warmup if a.warmup is not None else (1 if a.quick else 2)
    if s.batches < 1 or s.warmup < 0:
        p.error("--batches must be >= 1 and --warmup >= 0")
    if a.quick:
        s.rounds, s.tiny_per_round = 2, 20
    if a.only:
        names = tuple(x.strip().upper() for x in a.only.split(",") if x.strip())
        bad = [x for x in names if x not in WORKLOADS]
        if bad:
            p.error(f"unknown workload(s) {', '.join(bad)}; choose from {', '.join(WORKLOADS)}")
        s.workloads = names
    if a.systems:
        names = tuple(x.strip() for x in a.systems.split(",") if x.strip())
        masters = tuple(x.removeprefix("runnel-") for x in names if x.startswith("runnel-"))
        bad = [x for x in names if x not in ("runnel", "pandas", "polars", "pyspark") and not x.startswith("runnel-")]
        if bad:
            p.error(f"unknown system(s) {', '.join(bad)}; choose from runnel, pandas, polars, pyspark, runnel-<master>")
        s.systems = tuple(x for x in names if not x.startswith("runnel-"))
        if masters:
            s.systems = ("runnel",) + s.systems
            s.masters = masters
        elif "runnel" not in names:
            s.masters = ()
    if a.masters:
        s.masters = tuple(x.strip() for x in a.masters.split(",") if x.strip())
        if "runnel" not in s.systems:
            s.systems = ("runnel",) + s.systems
    bad = [m for m in s.masters if not MASTER_SPEC.fullmatch(m)]
    if bad:
        p.error(f"unknown master(s) {', '.join(bad)}; expected local, local[N] or local[*], optionally "
                f"followed by :auto, :threads or :processes; dask or dask[N] (a LocalCluster for the run, "
                f":tasks for no stage inline) "
                f"or dask://host:port")
    if a.variants:
        names = tuple(x.strip() for x in a.variants.split(",") if x.strip())
        bad = [x for x in names if x not in wl.W4_VARIANTS]
        if bad:
            p.error(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(wl.W4_VARIANTS)}")
        s.variants = names
    return s


def main(argv: list[str] | None = None) -> int:
    s = parse_args(argv)
    t_start = time.perf_counter()
    print(header(s), flush=True)
    t0 = time.perf_counter()
    data = build_data(s)
    print(f"input built in {time.perf_counter() - t0:.1f} s (not timed)", flush=True)
    results: list[Result] = []
    for system in s.systems:
        if system != "runnel":
            print(f"running {system} ...", flush=True)
        if system == "runnel":
            for spec in s.masters:
                print(f"running {system_name(spec)} ...", flush=True)
                results += run_runnel(spec, data, s)
        elif system == "pandas":
            results += run_frames("pandas", wl.pandas_runner, wl.to_pandas, data, s)
        elif system == "polars":
            try:
                import polars  # noqa: F401
            except ImportError:
                results += [Result(n, "polars", note="skipped: polars is not installed") for n in s.workloads]
                continue
            results += run_frames("polars", wl.polars_runner, wl.to_polars, data, s)
        elif system == "pyspark":
            why = pyspark_missing()
            if why:
                results += [Result(n, "pyspark local[2]", note=f"skipped: {why}") for n in s.workloads]
                continue
            try:
                results += run_pyspark(data, s)
            except Exception as e:
                results += [Result(n, "pyspark local[2]", note=f"FAILED: {type(e).__name__}: {e}")
                            for n in s.workloads]
    table = format_table(results, s)
    print()
    print(table)
    print()
    for n in s.notes:
        print(f"note: {n}")
    aims = ", ".join(f"{n} >= {AIMS[n] / 1e6:g} M/s" if WORKLOADS[n].unit == "records/s"
                     else f"{n} >= {AIMS[n]:,.0f} /s" for n in s.workloads if n in AIMS)
    print(f"note: runnel's aims on local[2] (issue 11): {aims}")
    for line in state_lines(results, s) + target_lines(results, s):
        print(line)
    print("note: ÷pandas / ÷polars = runnel throughput / baseline throughput (above 1 = runnel faster); "
          "÷local = this master's throughput / runnel local's; 'min-max ms' = fastest and slowest measured "
          "batch (W5: round, per batch); 'empty ms' = per-batch time of a batch with no records; "
          "'check' compares keys and totals with pandas")
    print(f"total {time.perf_counter() - t_start:.1f} s; load average at the end {_load()}")
    failed = any(r.note.startswith("FAILED") for r in results)
    return 1 if failed or "MISMATCH" in table else 0


if __name__ == "__main__":
    sys.exit(main())
