"""The cost of checkpointing: W4 (running state to 1M keys, built-in running sum) with a checkpoint
every 10 batches vs none, per 10 batches (so each timed call contains exactly one checkpoint).

The checkpoint is written by a writer thread while later batches run (state
tables zstd-compressed Arrow IPC, fsynced); what the timing shows is what
that costs the batches, on ``local`` and ``local[2]``. Data:
:mod:`runnel.bench.workloads`.
"""

import tempfile

from . import RunnelStream
from .pipelines import _quiet_state_warning

#: batches per timed call: one checkpoint interval
EVERY = 10


class CheckpointOverhead:
    params = [["local", "local[2]"], ["off", f"every-{EVERY}"]]
    param_names = ["master", "checkpoint"]
    number = 1
    repeat = (2, 3, 120.0)
    warmup_time = 0
    processes = 1
    timeout = 1200

    def setup(self, master, checkpoint):
        from runnel.bench import workloads as wl
        w = wl.WORKLOADS["W4"]
        _quiet_state_warning()
        self.tmp = tempfile.TemporaryDirectory(prefix="runnel-asv-ck-")
        self.stream = RunnelStream(master, "W4", "running_sum", checkpoint_every=EVERY,
                                   checkpoint=None if checkpoint == "off" else self.tmp.name)
        warm = w.min_warmup()
        # warm-up, then enough fresh batches for every repeat (the state only ever sees new input)
        batches = wl.make_batches(w, warm + EVERY * self.repeat[1])
        self.inputs = iter([self.stream.partitions(b) for b in batches])
        del batches
        for _ in range(warm):
            self.stream.submit_and_run(next(self.inputs))

    def teardown(self, master, checkpoint):
        self.stream.close()
        self.tmp.cleanup()

    def time_ten_batches(self, master, checkpoint):
        for _ in range(EVERY):
            self.stream.submit_and_run(next(self.inputs))
        ck = self.stream.ssc._checkpointer
        if ck is not None:
            ck.flush()       # the checkpoint of these batches is on disk before the call ends
