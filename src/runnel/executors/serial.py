"""``local``: run tasks inline, in order, on a :class:`~runnel.storage.store.MemoryStore`."""

from __future__ import annotations

from collections.abc import Sequence

from runnel.executors.base import Executor, Task, run_inline
from runnel.storage.store import BlockRef, BlockStore, MemoryStore

__all__ = ["SerialExecutor"]


class SerialExecutor(Executor):
    """The simplest backend: no processes, no pickling; best for debugging.

    Examples
    --------
    >>> from runnel.batch import Batch
    >>> ex = SerialExecutor()
    >>> [ref] = ex.store.put(Batch.from_records([1, 2])),
    >>> double = lambda i, groups: [Batch.from_values([2 * x for x in groups[0][0].to_records()])]
    >>> [[out]] = ex.run([Task(double, 0, [[ref]], "double, partition 0")])
    >>> ex.store.get(out).to_records()
    [2, 4]
    >>> ex.close()
    """

    def __init__(self, store: BlockStore | None = None) -> None:
        self.store = store if store is not None else MemoryStore()
        self.parallelism = 1
        self._closed = False
        self.activity.ran_as = "serial"

    def run(self, tasks: Sequence[Task], kind: str | None = None) -> list[list[BlockRef]]:
        if self._closed:
            raise RuntimeError("the executor is closed")
        return run_inline(self.store, tasks, self.activity)

    def close(self) -> None:
        self._closed = True
        self.store.close()
