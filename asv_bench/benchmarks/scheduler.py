"""The engine's per-batch overhead: W5 (10-record batches), empty batches, time to a first result.

A tiny batch costs almost nothing to compute, so these time the scheduler,
the plan, the executor round trip and the block store. ANCHORS.md: runnel
aims at >= 2,000 batches/s on ``local[2]`` and a first result within a
second of start on a warm cache. pandas / polars do the same groupby per
10-record DataFrame (their floor for a "batch").
"""

import time

from . import RunnelStream, skip_unless_importable

IMPLS = ["runnel-local", "runnel-local[2]", "pandas", "polars"]
ROUND = 200   # batches per track_* measurement


class TinyBatches:
    params = [IMPLS]
    param_names = ["impl"]
    number = 1
    repeat = (5, 50, 20.0)
    warmup_time = 0
    processes = 1
    timeout = 600

    def setup(self, impl):
        from runnel.bench import workloads as wl
        tiny = wl.make_batches("W5", ROUND)
        self.stream = None
        if impl.startswith("runnel-"):
            s = self.stream = RunnelStream(impl.removeprefix("runnel-"), "W5")

            def one():
                s.queue.append(tiny[0])
                s.run(1)

            def many():
                s.queue.extend(tiny)
                s.run(len(tiny))

            self.one, self.many, self.empty = one, many, lambda: s.run(1)
        else:
            if impl == "pandas":
                convert, compute = wl.to_pandas, wl.pandas_batch
            else:
                skip_unless_importable("polars")
                convert, compute = wl.to_polars, wl.polars_batch
            frames = [convert(b) for b in tiny]
            nothing = convert(tiny[0].slice(0, 0))

            def many():
                for f in frames:
                    compute(f)

            self.one, self.many, self.empty = (lambda: compute(frames[0])), many, (lambda: compute(nothing))
        self.many()  # warm-up

    def teardown(self, impl):
        if self.stream is not None:
            self.stream.close()

    def time_tiny_batch(self, impl):
        self.one()

    def time_empty_batch(self, impl):
        self.empty()

    def track_batches_per_s(self, impl):
        t0 = time.perf_counter()
        self.many()
        return ROUND / (time.perf_counter() - t0)

    track_batches_per_s.unit = "batches/s"


class FirstResult:
    """From ``StreamingContext(master, ...)`` to the first batch's output, warm Numba cache."""

    params = [["local", "local[2]"]]
    param_names = ["master"]
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0
    processes = 1
    timeout = 600

    def setup(self, master):
        from runnel.kernels import warm
        warm()  # fills the on-disk cache if needed; the benchmark then measures the warm path

    def time_first_result(self, master):
        from runnel import ManualClock, StreamingContext
        ssc = StreamingContext(master, 1, clock=ManualClock())
        out = []
        ssc.queue_stream([[(1, 1.0), (2, 2.0)]]).reduceByKey(lambda a, b: a + b).foreachRDD(
            lambda rdd: out.append(rdd.collect()))
        ssc.start()
        ssc.run_batches(1)
        ssc.stop()
        assert out, "no output"


class CoreEvents:
    """The scheduler core alone (``runnel.scheduler.core``): events handled per second, no threads.

    A batch with two outputs is 8 events (BatchDue, JobsBuilt, BatchStarted,
    JobStarted and JobDone per output, BatchRan), with a checkpoint every 10
    batches; the figure bounds what the core costs a batch.
    """

    number = 1
    repeat = (5, 20, 20.0)
    warmup_time = 0
    BATCHES = 2000

    def setup(self):
        from runnel.scheduler import core as c
        self.c = c
        events = []
        for k in range(1, self.BATCHES + 1):
            t = 1000 * k
            events += [c.BatchDue(t), c.JobsBuilt(t, t, (0, 1), 10), c.BatchStarted(t, t)]
            for o in (0, 1):
                events += [c.JobStarted(t, o, t), c.JobDone(t, o, t)]
            events.append(c.BatchRan(t, t))
        self.events = events

    def _run(self):
        c = self.c
        core = c.SchedulerCore(1000)
        core.handle(c.Start(0, checkpoint=10_000, unit=1000))
        handle = core.handle
        for ev in self.events:
            handle(ev)

    def time_two_thousand_batches(self):
        self._run()

    def track_events_per_s(self):
        t0 = time.perf_counter()
        self._run()
        return len(self.events) / (time.perf_counter() - t0)

    track_events_per_s.unit = "events/s"


class ListenerEvents:
    """The listener infos of a batch (``runnel.scheduler.infos``): the frozen BatchInfo / OutputOperationInfo
    of its submitted, started, output started/completed and completed events, as the scheduler builds them
    for a listener that handles all of them (the UI's does), for a batch with two outputs."""

    number = 1
    repeat = (5, 20, 20.0)
    warmup_time = 0
    BATCHES = 2000

    def setup(self):
        from types import SimpleNamespace

        from runnel.scheduler import core as c
        from runnel.scheduler.infos import ListenerInfos
        self.c, self.ListenerInfos = c, ListenerInfos
        self.graph = SimpleNamespace(outputs=[SimpleNamespace(op_name="foreachRDD", description=f"out {o}")
                                              for o in (0, 1)])

    def _run(self):
        c = self.c
        core = c.SchedulerCore(1000)
        core.handle(c.Start(0))
        infos = self.ListenerInfos(self.graph)
        for k in range(1, self.BATCHES + 1):
            t = 1000 * k
            core.handle(c.BatchDue(t))
            core.handle(c.JobsBuilt(t, t, (0, 1), 10, (("in", 10),)))
            rec = core.batches[t]
            infos.batch(rec)
            core.handle(c.BatchStarted(t, t))
            infos.batch(rec)
            for o in (0, 1):
                core.handle(c.JobStarted(t, o, t))
                infos.output(rec, o)
                core.handle(c.JobDone(t, o, t))
                infos.output(rec, o)
            core.handle(c.BatchRan(t, t))
            infos.batch(rec)
            infos.forget(t)

    def time_two_thousand_batches(self):
        self._run()
