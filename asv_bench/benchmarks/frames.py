"""DataFrame workloads F1-F3 (``runnel.bench.frames``): runnel.frame per batch against pandas and polars.

F1 filter + assign + groupby sum; F2 running groupby mean (1M keys at full
size: here a tenth, as ``--quick``); F3 windowed groupby count/mean. One
timed call is one batch; runnel's from submission until its output ran.
"""

from . import skip_unless_importable

IMPLS = ["runnel-frame", "runnel-dstream", "pandas", "polars"]
DISTINCT = 3


class FrameWorkloads:
    params = [["F1", "F2", "F3"], IMPLS]
    param_names = ["workload", "impl"]
    number = 1
    repeat = (3, 10, 30.0)
    warmup_time = 0
    processes = 1
    timeout = 600

    def setup(self, workload, impl):
        from runnel.bench import frames as fb
        w = fb.WORKLOADS[workload]
        self.runner = None
        batches = fb.make_batches(w, DISTINCT, quick=True)
        window = w.window // 4
        if impl == "runnel-dstream" and fb.dstream_pipeline(workload, fb._Probe()) is None:
            raise NotImplementedError(f"{workload} has no hand-written DStream pipeline")
        if impl.startswith("runnel-"):
            self.runner = fb.RunnelFrames(w, batches[0], impl.removeprefix("runnel-"), quick=True)
            for b in batches * 2:      # warm: state and windows past their first batches
                self.runner.step(b)
            step, inputs = self.runner.step, batches
        elif impl == "pandas":
            step, inputs = fb.pandas_step(workload, window), batches
        else:
            skip_unless_importable("polars")
            import polars as pl
            step, inputs = fb.polars_step(workload, window), [pl.from_pandas(b) for b in batches]
        self.i = 0

        def one():
            step(inputs[self.i % len(inputs)])
            self.i += 1
        self.step = one

    def teardown(self, workload, impl):
        if self.runner is not None:
            self.runner.close()

    def time_batch(self, workload, impl):
        self.step()
