"""A stage round trip on each executor kind: serial, ``local[2]``'s threads, its worker processes.

Two stages: an empty one (one task per partition counting its rows: the
fixed cost of handing tasks out and collecting their blocks) and W2's map
stage on 1M pairs in two partitions (the kernel work plus, for processes,
the copy of each input into shared memory and the pickled round trip).
``track_*`` reports how much faster than serial a kind runs the W2 stage.
"""

from __future__ import annotations

import operator

from . import median_seconds, pairs

#: kind -> (master, executor options): every stage on the kind, none inline
KINDS = {
    "serial": ("local", {}),
    "threads": ("local[2]", {"stage_kind": "threads", "inline_bytes": 0}),
    "processes": ("local[2]", {"stage_kind": "processes", "inline_bytes": 0}),
}


def _stage(store, work: str, parts):
    """The tasks of one stage over ``parts`` (blocks already in ``store``)."""
    from runnel import ops
    from runnel.executors import Task
    from runnel.functions import Reducer
    from runnel.plan import Apply, Read, WriteBuckets, WriteOne
    if work == "count":
        return [Task(WriteOne(Apply(Read(0), (ops.CountPartition(),), i)), i, [[r]], f"count, partition {i}")
                for i, r in enumerate(parts)]
    combine = ops.CombineBuckets(Reducer(operator.add, op="sum"))
    return [Task(WriteBuckets(Read(0), combine, i, 2), i, [[r]], f"W2 map, partition {i}")
            for i, r in enumerate(parts)]


class StageRoundTrip:
    params = [list(KINDS), ["count", "w2_map"]]
    param_names = ["kind", "work"]
    number = 1
    repeat = (5, 30, 20.0)
    timeout = 300

    def setup(self, kind, work):
        from runnel.batch import Batch
        from runnel.executors import make_executor
        from runnel.kernels import warm
        warm()
        master, options = KINDS[kind]
        self.ex = make_executor(master, **options)
        keys, values = pairs()
        half = len(keys) // 2
        self.parts = [self.ex.store.put(Batch.from_pairs(keys[a:b], values[a:b]))
                      for a, b in ((0, half), (half, len(keys)))]
        self.tasks = _stage(self.ex.store, work, self.parts)
        self.round_trip()                       # workers started, kernels loaded

    def teardown(self, kind, work):
        self.ex.close()

    def round_trip(self):
        for refs in self.ex.run(self.tasks):
            self.ex.store.release(refs)

    def time_stage(self, kind, work):
        self.round_trip()


class StageSpeedup:
    """W2's map stage: serial time / this kind's time, measured in one process (the ratio to quote)."""

    params = [["threads", "processes"]]
    param_names = ["kind"]
    number = 1
    repeat = 1
    timeout = 300

    def setup(self, kind):
        self.kinds = {}
        for k in ("serial", kind):
            s = StageRoundTrip()
            s.setup(k, "w2_map")
            self.kinds[k] = s

    def teardown(self, kind):
        for s in self.kinds.values():
            s.teardown(None, None)

    def track_speedup_over_serial(self, kind):
        serial = median_seconds(self.kinds["serial"].round_trip, 7)
        return serial / median_seconds(self.kinds[kind].round_trip, 7)

    track_speedup_over_serial.unit = "x"
