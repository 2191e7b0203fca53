"""Whole pipelines: W1 (word count) and W2 (int reduceByKey) of ANCHORS.md, per batch.

runnel runs a real StreamingContext (``local`` or ``local[2]``) on a manual
clock; one timed call is one batch, from submitting its partitions to the
block store until the foreachRDD output holds the result in the driver.
pandas and polars run the same computation on the same batch, already in
their own DataFrame format. Data: :mod:`runnel.bench.workloads`.
"""

import itertools

from . import RunnelStream, median_seconds, skip_unless_importable

IMPLS = ["runnel-local", "runnel-local[2]", "pandas", "polars"]
#: distinct input batches cycled through (the stream never sees one batch twice in a row)
DISTINCT = 3


class Pipeline:
    params = [["W1", "W2"], IMPLS]
    param_names = ["workload", "impl"]
    number = 1                 # one call = one batch
    repeat = (3, 15, 30.0)
    warmup_time = 0
    processes = 1              # a local[2] context costs seconds to start: one process is enough
    timeout = 600

    def setup(self, workload, impl):
        from runnel.bench import workloads as wl
        w = wl.WORKLOADS[workload]
        batches = wl.make_batches(w, DISTINCT)
        self.records = w.records(len(batches[0]))
        self.stream = None
        if impl.startswith("runnel-"):
            self.stream = RunnelStream(impl.removeprefix("runnel-"), workload)
            inputs = [self.stream.partitions(b) for b in batches]
            step = self.stream.submit_and_run
        elif impl == "pandas":
            inputs = [wl.to_pandas(b) for b in batches]
            step = wl.pandas_batch
        else:
            skip_unless_importable("polars")
            inputs = [wl.to_polars(b) for b in batches]
            step = wl.polars_batch
        cycle = itertools.cycle(inputs)
        self.step = lambda: step(next(cycle))
        for _ in range(2):     # warm-up batches: kernels, pool, first-call caches
            self.step()

    def teardown(self, workload, impl):
        if self.stream is not None:
            self.stream.close()

    def time_batch(self, workload, impl):
        self.step()

    def track_records_per_s(self, workload, impl):
        return self.records / median_seconds(self.step, repeat=5)

    track_records_per_s.unit = "records/s"


class Dataset:
    """The batch API without streaming: ``ctx.parallelize``-style Dataset, W2's reduceByKey, collected columnar."""

    params = [["local", "local[2]"]]
    param_names = ["master"]
    number = 1
    repeat = (3, 15, 30.0)
    warmup_time = 0
    processes = 1
    timeout = 600

    def setup(self, master):
        from runnel import Context
        from runnel.bench import workloads as wl
        from runnel.dataset import split_slices
        from runnel.kernels import warm
        warm()
        self.ctx = Context(master, "runnel-asv")
        b = wl.make_batches("W2", 1)[0]
        k = self.ctx.default_parallelism
        self.parts = [b.slice(x, y) for x, y in split_slices(len(b), k)]
        self.run()

    def teardown(self, master):
        self.ctx.stop()

    def run(self):
        from runnel.bench.workloads import dstream_pipeline
        return dstream_pipeline("W2", self.ctx.dataset_of(self.parts, "asv")).to_batch()

    def time_reduce_by_key_w2(self, master):
        self.run()
