"""Whole pipelines: W1 (word count), W2 (int reduceByKey), W3 (window) and W4 (state) of ANCHORS.md, per batch.

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


class _Steps:
    """What the per-batch benchmarks share: ``setup`` sets ``step`` (one batch), ``records``, ``stream``."""

    track_repeat = 5

    def teardown(self, workload, impl):
        if self.stream is not None:
            self.stream.close()

    def time_batch(self, workload, impl):
        self.step()

    def track_records_per_s(self, workload, impl):
        return self.records / median_seconds(self.step, repeat=self.track_repeat)

    track_records_per_s.unit = "records/s"


class Pipeline(_Steps):
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


def _quiet_state_warning():
    """Stateful streams warn once that, without a checkpoint directory, their state won't survive a restart."""
    import warnings
    warnings.filterwarnings("ignore", message=".*no checkpoint directory is set.*", category=RuntimeWarning)


class Steady(_Steps):
    """W3 (sliding window) and W4 (running state) of ANCHORS.md in steady state, per batch.

    setup runs the workload's own warm-up (W3: 21 batches, so the window
    is full; W4: 5 batches, the state at ~99.3% of its 1M keys) before any
    timing; every timed call is then one more batch of a fresh input (the
    stream never sees a batch twice: W4's state keeps growing towards 1M keys
    and W3's window keeps sliding over new data). W4's runnel impls name the
    updater: a Python ``lambda values, state: ...``, the built-in
    ``running_sum()`` kernel updater, or mapWithState.
    """

    params = [["W3", "W4"], IMPLS + ["runnel-local[2]-python", "runnel-local[2]-map_with_state"]]
    param_names = ["workload", "impl"]
    number = 1
    repeat = (3, 7, 60.0)
    warmup_time = 0
    processes = 1
    timeout = 900
    track_repeat = 3     # each timed batch consumes a fresh input
    #: batches prepared after the warm-up: enough for asv's repeats and the track_ benchmark
    TIMED = 12

    def setup(self, workload, impl):
        from runnel.bench import workloads as wl
        w = wl.WORKLOADS[workload]
        variant = None
        if impl.count("-") == 2:  # runnel-local[2]-<variant>: W4 only
            if workload != "W4":
                raise NotImplementedError("updater variants are W4's")
            impl, variant = impl.rsplit("-", 1)
        elif workload == "W4" and impl.startswith("runnel-"):
            variant = "running_sum"
        warm = w.min_warmup()
        batches = wl.make_batches(w, warm + self.TIMED)
        self.records = w.records(len(batches[0]))
        self.stream = None
        if impl.startswith("runnel-"):
            _quiet_state_warning()
            self.stream = RunnelStream(impl.removeprefix("runnel-"), workload, variant)
            inputs = [self.stream.partitions(b) for b in batches]
            step = self.stream.submit_and_run
        elif impl == "pandas":
            inputs = [wl.to_pandas(b) for b in batches]
            step = wl.pandas_runner(w)
        else:
            skip_unless_importable("polars")
            inputs = [wl.to_polars(b) for b in batches]
            step = wl.polars_runner(w)
        del batches
        it = iter(inputs)
        self.step = lambda: step(next(it))
        for _ in range(warm):
            self.step()



class StateMemory:
    """W4's state at ~1M keys: bytes per key of the state table (``BatchInfo.state_tables``), and peak RSS.

    ``track_state_bytes_per_key`` is what the listener reports after 10
    batches (999,955 keys). ``peakmem_w4`` is the peak RSS of the process
    building W4's input and running it to ~1M keys: meaningful for pandas
    and runnel ``local`` (serial, in this process); for ``local[2]`` the state
    lives in the workers' shared memory, which this process's RSS does not
    show, so that combination is not run.
    """

    params = [["local", "local[2]"], ["running_sum", "python", "map_with_state"]]
    param_names = ["master", "updater"]
    number = 1
    repeat = 1
    warmup_time = 0
    processes = 1
    timeout = 900
    BATCHES = 10

    def setup(self, master, updater):
        from runnel.bench import workloads as wl
        self.batches = wl.make_batches("W4", self.BATCHES)

    def _run(self, master, updater):
        from runnel.bench.compare import _state_listener
        _quiet_state_warning()
        stream = RunnelStream(master, "W4", updater)
        tables = _state_listener()
        stream.ssc.add_streaming_listener(tables)
        try:
            for b in self.batches:
                stream.submit_and_run(stream.partitions(b))
        finally:
            stream.close()
        return tables.last

    def track_state_bytes_per_key(self, master, updater):
        last = self._run(master, updater)
        keys = sum(t["keys"] for t in last.values())
        return sum(t["bytes"] for t in last.values()) / keys

    track_state_bytes_per_key.unit = "bytes/key"

    def peakmem_w4(self, master, updater):
        if master != "local":
            raise NotImplementedError("local[2] keeps the state in worker processes")
        self._run(master, updater)


class PandasStateMemory:
    """The pandas baseline of W4 to ~1M keys: peak RSS (compare with ``StateMemory.peakmem_w4``)."""

    number = 1
    repeat = 1
    warmup_time = 0
    processes = 1
    timeout = 600

    def setup(self):
        from runnel.bench import workloads as wl
        self.frames = [wl.to_pandas(b) for b in wl.make_batches("W4", StateMemory.BATCHES)]

    def peakmem_w4(self):
        from runnel.bench import workloads as wl
        step = wl.pandas_runner("W4")
        for f in self.frames:
            state = step(f)
        return state

    def track_state_bytes_per_key(self):
        state = self.peakmem_w4()
        return state.memory_usage(index=True, deep=True) / len(state)

    track_state_bytes_per_key.unit = "bytes/key"
