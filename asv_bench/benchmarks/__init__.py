"""runnel's asv benchmarks: one module per subject, baselines in the same run.

* ``kernels_hashing``, ``kernels_partition``, ``kernels_aggregate`` — the
  public kernels of ``runnel.kernels`` against the NumPy / pandas / polars
  call that does the same job (the figure worth quoting is the ratio), plus
  the cost of a cold Numba compile.
* ``kernels_state`` — W4's state merge and W3's window slide: the
  direct-addressed kernels against the hash/code path and pandas.
* ``pipelines`` — W1 and W2 of ANCHORS.md through a real StreamingContext
  (``local``, ``local[2]``) against pandas / polars per batch; W3 (sliding
  window) and W4 (running state, three updaters) in steady state; W4's
  state memory (``track_state_bytes_per_key``, ``peakmem_w4``).
* ``scheduler`` — W5 (10-record batches), the empty-batch overhead and the
  time to a first result.
* ``executors`` — a stage round trip (an empty stage, W2's map stage) on each
  executor kind: serial, ``local[2]``'s threads, its worker processes; and
  each kind's speed-up over serial on W2's map stage, measured in one process.

Rules every module follows: data is built in ``setup`` (never at import) from
:mod:`runnel.bench.workloads`, the one home of workload data; kernels are
run once in ``setup`` so timings exclude JIT compilation (which has its own
benchmark); ``track_*`` benchmarks report records/s (or batches/s).

This module holds the helpers the benchmark modules share.
"""

from __future__ import annotations

import collections
import functools
import statistics
import time

#: Records per batch for kernel benchmarks (the ANCHORS batch size).
N = 1_000_000


@functools.lru_cache(maxsize=None)
def pairs(n: int = N, t: int = 1):
    """W2 data: (int64 keys uniform in [0, 100k), float64 values), n of each."""
    from runnel.bench.workloads import make_batches
    b = make_batches("W2", 1, n=n, first_t=t)[0]
    return b["key"], b["value"]


@functools.lru_cache(maxsize=None)
def words(n_lines: int = N // 10, t: int = 1):
    """W1's words as one Arrow string array (n_lines x 10 Zipf(1.2) words)."""
    import pyarrow.compute as pc
    from runnel.bench.workloads import make_batches
    lines = make_batches("W1", 1, n=n_lines, first_t=t)[0]["value"]
    return pc.list_flatten(pc.split_pattern(lines, " "))


def median_seconds(fn, repeat: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def skip_unless_importable(module: str) -> None:
    """asv skips a benchmark whose setup raises NotImplementedError."""
    try:
        __import__(module)
    except ImportError:
        raise NotImplementedError(f"{module} is not installed") from None


def _workload_output(workload: str) -> str:
    from runnel.bench.workloads import WORKLOADS
    return WORKLOADS[workload].output


class RunnelStream:
    """A started StreamingContext running a workload's pipeline on a queue.

    ``submit(batch)`` puts the batch's partitions in the block store (one per
    core) and queues it; ``step()`` submits nothing and runs one batch
    interval; ``submit_and_run(batch)`` is one timed batch, from submission
    until the foreachRDD output holds the result (columnar, in the driver).
    """

    def __init__(self, master: str, workload: str, variant: str | None = None, *,
                 checkpoint: str | None = None, checkpoint_every: int = 10):
        from runnel import Context, ManualClock, StreamingContext
        from runnel.bench.workloads import dstream_pipeline
        from runnel.kernels import warm
        warm()  # compile (or load from cache) before the pool starts; never timed
        # with ``checkpoint``: state and progress every ``checkpoint_every`` batches (resume-style: this
        # harness's output method holds the context, so no graph is stored)
        conf = {} if checkpoint is None else {"runnel.streaming.checkpoint.interval": str(checkpoint_every),
                                              "runnel.streaming.checkpoint.graph": "false"}
        self.ctx = Context(master, "runnel-asv", conf)
        self.ssc = StreamingContext(self.ctx, 1, clock=ManualClock())
        if checkpoint is not None:
            self.ssc.checkpoint(checkpoint)
        self.queue: collections.deque = collections.deque()
        self.last = [None]
        self.output = _workload_output(workload)
        self.stream = dstream_pipeline(workload, self.ssc.queue_stream(self.queue), variant)
        self.stream.foreach_rdd(self._output)
        self.ssc.start()

    def _output(self, rdd) -> None:
        # W4's state stays in the workers (count); the others come to the driver, columnar
        self.last[0] = rdd.count() if self.output == "count" else rdd.to_batch()

    def partitions(self, batch):
        from runnel.dataset import split_slices
        return [batch.slice(a, b) for a, b in split_slices(len(batch), self.ctx.default_parallelism)]

    def submit_and_run(self, parts) -> None:
        self.queue.append(self.ctx.dataset_of(parts, "asv input"))
        self.ssc.run_batches(1)

    def run(self, n: int = 1) -> None:
        self.ssc.run_batches(n)

    def close(self) -> None:
        self.ssc.stop(stop_spark_context=False)
        self.ctx.stop()
