"""Input streams: where data enters the graph.

An input stream's slide is the batch interval. ``start``/``stop`` are
called with the context; ``compute(t)`` hands out the data for batch t.
Receiver-based inputs live in ``receivers.py``, file inputs in ``files.py``.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from ..dataset import Dataset
from .base import DStream


class InputDStream(DStream):
    """Base of every input; counts the records it hands out per batch."""

    kind = "input"

    def __init__(self, ssc):
        super().__init__(ssc, [])
        self.records: dict[int, int] = {}
        self.graph.add_input(self)

    @property
    def slide_ms(self) -> int:
        return self.graph.batch_ms

    def validate(self) -> None:
        """Raise if this input cannot start as configured (checked before any input starts)."""

    def start(self) -> None:
        """Called when the context starts."""

    def stop(self) -> None:
        """Called when the context stops; must be idempotent."""

    def has_pending(self) -> bool:
        """Received data not yet handed to a batch (a graceful stop waits for it)."""
        return False

    # -- checkpoints (runnel.checkpoint) ----------------------------------------------------
    def progress(self, t: int) -> dict:
        """JSON-serialisable progress of the batches <= t (what a recovery must not take again).

        Called on the scheduler thread that ran batch t once it completed, while the
        other scheduler thread may generate later batches: keep per-batch records.
        """
        return {}

    def restore_progress(self, progress: dict, t: int) -> None:
        """On a recovered context, before ``start()``: ``progress`` is what :meth:`progress`
        returned for the checkpoint at t. Batches after t are generated again and must get
        the data they had before the crash."""

    def checkpoint_written(self, t: int, progress: dict | None) -> None:
        """Every kept checkpoint is at t or later, and the oldest recorded ``progress`` for this input
        (None if unknown): data only batches <= t used, and no recovery from it needs, may go."""

    def _counted(self, t: int, ds: Dataset) -> Dataset:
        from ..plan import Blocks
        self.records[t] = sum(r.nrows for r in ds.plan.refs) if isinstance(ds.plan, Blocks) else 0
        return ds

    def forget_before(self, t: int) -> None:
        super().forget_before(t)
        # list() copies the keys in one step: the scheduler thread generating the next batch may count it meanwhile
        for old in [k for k in list(self.records) if k <= t - self.remember_ms]:
            self.records.pop(old, None)


def to_dataset(ssc, item: Any, label: str) -> Dataset:
    """A queue item (Dataset, list, array, frame, table) as a Dataset."""
    if isinstance(item, Dataset):
        return item
    # like plain lists, columnar items are split into the default parallelism
    return ssc.context.parallelize(item)


class QueueInputDStream(InputDStream):
    """Batches taken from a queue: one item per batch, or all at once.

    Items may be Datasets, lists of records, NumPy arrays, pandas DataFrames
    or Arrow tables. When the queue is empty a batch is the ``default``
    item if one was given, else an empty Dataset with one partition.
    """

    kind = "queue_stream"

    def __init__(self, ssc, queue, one_at_a_time: bool = True, default: Any = None):
        super().__init__(ssc)
        self.queue = queue if isinstance(queue, collections.deque) else collections.deque(queue)
        self.one_at_a_time = one_at_a_time
        self.default = default
        self._lock = threading.Lock()
        self.consumed = 0
        self._consumed_at: dict[int, int] = {}   # batch time -> items consumed by it and earlier

    def compute(self, t: int) -> Dataset:
        with self._lock:
            if self.one_at_a_time:
                items = [self.queue.popleft()] if self.queue else []
            else:
                items = list(self.queue)
                self.queue.clear()
            self.consumed += len(items)
            self._consumed_at[t] = self.consumed
        dss = [to_dataset(self.ssc, i, self.name) for i in items]
        if not dss:
            ds = (to_dataset(self.ssc, self.default, self.name) if self.default is not None
                  else self.ssc.context.empty_dataset(self.name))
        else:
            ds = dss[0]
            for d in dss[1:]:
                ds = ds.union(d)
        return self._counted(t, ds)

    def has_pending(self) -> bool:
        return bool(self.queue)

    _runtime = ("_lock",)

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()

    def progress(self, t: int) -> dict:
        done = [n for bt, n in list(self._consumed_at.items()) if bt <= t]
        return {"consumed": max(done, default=0)}

    def restore_progress(self, progress: dict, t: int) -> None:
        """Drop the items batches <= t consumed (the recovered queue is the one the program built)."""
        with self._lock:
            for _ in range(min(int(progress.get("consumed", 0)), len(self.queue))):
                self.queue.popleft()
            self.consumed = int(progress.get("consumed", 0))
            self._consumed_at[t] = self.consumed     # progress(t) of the recovered run says the same

    def forget_before(self, t: int) -> None:
        super().forget_before(t)
        # list() copies the keys in one step: the generating thread may record a batch meanwhile
        for old in sorted(k for k in list(self._consumed_at) if k < t - self.remember_ms)[:-1]:
            self._consumed_at.pop(old, None)   # the newest stays: progress() of a later batch may need it
