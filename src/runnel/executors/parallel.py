"""``local[N]``: kernel stages on N threads, user-Python stages on N worker processes.

Measured on 2 cores (issue 11): a pool of worker processes over shared-memory
files made W2/W3 three times slower than ``local`` — every input and shuffle
bucket was copied into ``/dev/shm`` and every task was a pickled round trip —
while the same tasks on two threads of the driver ran faster than ``local``:
the kernels release the GIL. Stages that run user Python per record are the
opposite case (the GIL serialises threads), so each stage goes where it pays:

* ``threads`` — :class:`~runnel.executors.threads.ThreadTeam`: N threads of the
  driver (the caller plus N-1 helpers) over blocks held in the driver's
  memory, no copy, no pickling;
* ``processes`` — a :class:`~runnel.executors.pool.ProcessPoolExecutor` of N
  workers, started on the first stage that needs it; a block is written to
  shared memory only when a worker is about to read it
  (:meth:`SharedMemoryStore.spill`), and workers' outputs are files the
  driver adopts, read here by memory-mapping them.

The choice is made per stage by :func:`~runnel.executors.kinds.stage_kind`
(automatic, or forced with the conf key ``runnel.executor.stageKind`` /
the ``stage_kind`` argument) and shown in ``Dataset.describe_stages()``.
Stages whose inputs total at most ``inline_bytes`` run inline in the calling
thread whatever their kind: a 10-record batch (W5) costs what it costs on
``local``.

Blocks: one :class:`~runnel.storage.store.SharedMemoryStore` holding every
block in memory (``hold_bytes=HOLD_ALL``) owns them all, whichever side
produced them; its cleanup guarantees (unlink on release, the prefix removed
at exit, files of dead drivers swept by the next driver) hold as for the pool.

State (changed by the thread that calls ``run``/``close``)
----------------------------------------------------------
``_threads``  the thread team (helper threads start on the first threaded stage);
``_pool``     None until a stage needs processes, then the pool;
``stats``     counters shared with the pool (tasks sent, workers started/died,
              function blobs sent) plus stages run per kind.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from runnel.executors.base import Executor, Task, run_inline
from runnel.executors.kinds import INLINE_BYTES_KEY, STAGE_KIND_KEY, check_kind, stage_kind
from runnel.executors.pool import ProcessPoolExecutor
from runnel.executors.shipping import BlobCache
from runnel.executors.threads import ThreadTeam
from runnel.storage.store import HOLD_ALL, BlockRef, SharedMemoryStore

__all__ = ["ParallelExecutor", "INLINE_BYTES"]

#: A stage whose input blocks total at most this many bytes runs in the calling thread: a thread
#: hand-off, let alone a worker round trip (~0.4 ms with shared-memory files), costs more than the work.
#: W5 (10-record batches) on the process pool: 197 -> 882 batches/s, together with held small blocks.
INLINE_BYTES = 256 * 1024


class ParallelExecutor(Executor):
    """N threads for kernel stages, N worker processes (started lazily) for user-Python stages.

    Parameters
    ----------
    n : int
        Threads, and worker processes when a stage needs them.
    stage_kind : {"auto", "threads", "processes"}
        Where stages run unless ``conf[runnel.executor.stageKind]`` says otherwise.
    conf : mapping, optional
        Read at every stage (a Context passes its live ``conf``).
    inline_bytes : int
        Stages whose inputs total at most this many bytes run in the calling
        thread; 0 never does (the conformance suite uses 0). The conf key
        ``runnel.executor.inlineBytes`` overrides it.
    compression : {None, "zstd"}
        Of the shared-memory files written for worker processes.
    start_timeout : float
        Seconds to wait for the worker processes to start.

    Examples
    --------
    >>> from runnel.batch import Batch
    >>> double = lambda i, groups: [Batch.from_values([2 * v for v in groups[0][0].to_records()])]
    >>> with ParallelExecutor(2) as ex:
    ...     ref = ex.store.put(Batch.from_values([1, 2]))
    ...     task = Task(double, 0, [[ref]], "double, partition 0")
    ...     ex.kind_of([task]), ex.store.get(ex.run([task], kind="threads")[0][0]).to_records()
    ('processes', [2, 4])
    """

    def __init__(self, n: int, stage_kind: str = "auto", conf: Mapping | None = None,
                 inline_bytes: int = INLINE_BYTES, compression: str | None = None,
                 start_timeout: float = 60.0) -> None:
        if n < 1:
            raise ValueError(f"local[N] needs N >= 1, got {n}")
        self.parallelism = n
        self.stage_kind = check_kind(stage_kind)
        self.inline_bytes = inline_bytes
        self._conf = conf
        self._start_timeout = start_timeout
        self.store = SharedMemoryStore(compression, hold_bytes=HOLD_ALL)
        self.stats = {"tasks_sent": 0, "fn_blobs_sent": 0, "workers_started": 0, "workers_died": 0,
                      "stages_inline": 0, "stages_threads": 0, "stages_processes": 0}
        self._blobs = BlobCache()
        self._threads = ThreadTeam(n - 1, self.activity)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._closed = False

    # -- where a stage runs --------------------------------------------------------------
    def kind_of(self, tasks: Sequence[Task]) -> str:
        """``"threads"`` or ``"processes"``: where these tasks (one stage) run."""
        override = self.stage_kind
        if self._conf is not None and self._conf.get(STAGE_KIND_KEY) is not None:
            override = self._conf[STAGE_KIND_KEY]
        return stage_kind([t.fn for t in tasks], override)

    @property
    def processes(self) -> ProcessPoolExecutor:
        """The worker processes, started now if no stage needed them yet."""
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("the executor is closed")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.parallelism, self.store, self._blobs, self.stats,
                                                 self._start_timeout, activity=self.activity)
            return self._pool

    def worker_pids(self) -> list[int]:
        """Pids of the worker processes ([] before a stage needed them)."""
        return self._pool.worker_pids() if self._pool is not None else []

    def describe_state(self) -> str:
        stats = ", ".join(f"{k} {v}" for k, v in self.stats.items())
        pool = self._pool
        return (f"local[{self.parallelism}]{' (closed)' if self._closed else ''}, last stage ran as "
                f"{self.activity.ran_as}; {stats}\n  threads: {self._threads.describe_state()}\n  processes: "
                + (pool.describe_state() if pool is not None else "not started"))

    def check_shippable(self, refs) -> None:
        # a stage may go to the workers on any batch: a function that cannot travel is caught up front
        for ref in refs:
            self._blobs.blob(ref)

    # -- run -----------------------------------------------------------------------------
    def run(self, tasks: Sequence[Task], kind: str | None = None) -> list[list[BlockRef]]:
        if self._closed:
            raise RuntimeError("the executor is closed")
        if not tasks:
            return []
        if kind is not None:
            kind = check_kind(kind)
        inline = self.inline_bytes
        if self._conf is not None and self._conf.get(INLINE_BYTES_KEY) is not None:
            inline = int(self._conf[INLINE_BYTES_KEY])
        if inline and sum(r.nbytes for t in tasks for g in t.inputs for r in g) <= inline:
            self.stats["stages_inline"] += 1
            self.activity.ran_as = "inline"
            return run_inline(self.store, tasks, self.activity)
        if kind is None or kind == "auto":     # asked only now: an inline stage needs no walk of its programs
            kind = self.kind_of(tasks)
        self.stats[f"stages_{kind}"] += 1
        self.activity.ran_as = kind
        if kind == "threads":
            return self._threads.run(self.store, tasks)
        return self.processes.run(tasks)

    def close(self) -> None:
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        self._threads.close()
        if pool is not None:
            pool.close()
        self.store.close()

