"""Kernel stages on threads of the driver, over blocks in its memory (no copy, no pickling).

Runnel's kernels are Numba functions compiled with ``nogil=True`` and the glue
around them is NumPy/Arrow calls that release the GIL on large arrays, so N
threads of the driver run a kernel stage's tasks in parallel with none of
the process pool's costs (a copy of every input into ``/dev/shm``, a pickled
task and reply per task). Stages that run user Python per record go to
processes instead (:mod:`runnel.executors.parallel` decides).

How a stage runs
----------------
The calling thread is one of the N: it queues the run for up to N-1 helper
threads (started on first use, kept for the executor's life) and takes tasks
itself. Tasks are handed out in task order from one counter, so when task i
fails every task before it has already started; the run stops handing out
tasks after the first failure, waits for those in flight, releases every
block the run produced and raises :class:`~runnel.executors.base.TaskFailed`
for the failing task with the smallest index — what the serial and process
backends report.

State of one run (:class:`_Run`, guarded by its ``lock``)
-------------------------------------------------------
``next``      the next task index to hand out;
``stop_at``   no task at or after this index starts (the first failure + 1);
``results``   output refs per finished task (written by the thread that ran it);
``errors``    task index -> the exception it raised;
``busy``      task-seconds of the run's tasks (a thread adds its last task's when it asks for the next);
``active``    helpers inside the run; ``sealed``: set when the caller's share is
              done, after which a helper that only now picks the run up skips it
              (a helper busy with another run must not make this one wait).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from time import perf_counter

from runnel.executors.activity import Activity
from runnel.executors.base import Task, TaskFailed, check_outputs
from runnel.storage.store import BlockRef, BlockStore

__all__ = ["ThreadTeam"]


class _Run:
    __slots__ = ("store", "tasks", "lock", "done", "next", "stop_at", "results", "errors", "active", "sealed",
                 "busy")

    def __init__(self, store: BlockStore, tasks: Sequence[Task]) -> None:
        self.store = store
        self.tasks = tasks
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)
        self.next = 0
        self.stop_at = len(tasks)
        self.results: list[list[BlockRef] | None] = [None] * len(tasks)
        self.errors: dict[int, BaseException] = {}
        self.active = 0
        self.sealed = False
        self.busy = 0.0

    def work(self) -> None:
        """Run tasks until none is left to start."""
        store, tasks = self.store, self.tasks
        busy = 0.0
        while True:
            with self.lock:
                if busy:
                    self.busy += busy
                    busy = 0.0
                i = self.next
                if i >= self.stop_at:
                    return
                self.next = i + 1
            task = tasks[i]
            produced: list[BlockRef] = []
            started = perf_counter()
            try:
                inputs = [[store.get(r) for r in group] for group in task.inputs]
                for batch in check_outputs(task.fn(task.index, inputs)):
                    produced.append(store.put(batch))
                del inputs
            except BaseException as exc:      # KeyboardInterrupt/SystemExit too: stop the run, free its blocks
                store.release(produced)
                with self.lock:
                    self.errors[i] = exc
                    self.stop_at = min(self.stop_at, i + 1)
                busy += perf_counter() - started
                continue
            self.results[i] = produced
            busy += perf_counter() - started

    def help(self) -> None:
        """A helper thread's share (nothing when the caller already finished)."""
        with self.lock:
            if self.sealed:
                return
            self.active += 1
        try:
            self.work()
        finally:
            with self.lock:
                self.active -= 1
                self.done.notify_all()

    def seal_and_wait(self) -> None:
        with self.lock:
            self.sealed = True
            while self.active:
                self.done.wait()


class ThreadTeam:
    """``helpers`` daemon threads that, with the calling thread, run a stage's tasks.

    Examples
    --------
    >>> from runnel.batch import Batch
    >>> from runnel.storage.store import MemoryStore
    >>> store, team = MemoryStore(), ThreadTeam(1)
    >>> twice = lambda i, groups: [Batch.from_values([2 * i])]
    >>> [store.get(r).to_records() for [r] in team.run(store, [Task(twice, i, [], str(i)) for i in range(3)])]
    [[0], [2], [4]]
    >>> team.close(); store.close()
    """

    def __init__(self, helpers: int, activity: Activity | None = None) -> None:
        self.helpers = max(0, helpers)
        self.activity = activity
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def _ensure_started(self) -> None:
        if len(self._threads) == self.helpers:
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is closed")
            while len(self._threads) < self.helpers:
                t = threading.Thread(target=self._serve, name=f"runnel-task-{len(self._threads) + 1}", daemon=True)
                t.start()
                self._threads.append(t)

    def _serve(self) -> None:
        while True:
            run = self._queue.get()
            if run is None:
                return
            run.help()

    def run(self, store: BlockStore, tasks: Sequence[Task]) -> list[list[BlockRef]]:
        """Run ``tasks`` on the team; output refs per task, in task order. Raises TaskFailed."""
        run = _Run(store, tasks)
        extra = min(self.helpers, len(tasks) - 1)
        if extra > 0:
            self._ensure_started()
            for _ in range(extra):
                self._queue.put(run)
        interrupted: BaseException | None = None
        try:
            run.work()
        except BaseException as exc:          # only outside a task (work() catches a task's own errors)
            interrupted = exc
            with run.lock:
                run.stop_at = 0
        while True:                           # the helpers must be out before blocks are released
            try:
                run.seal_and_wait()
                break
            except BaseException as exc:      # Ctrl-C while waiting: stop starting tasks, keep waiting
                interrupted = interrupted or exc
                with run.lock:
                    run.stop_at = 0
        if self.activity is not None:
            self.activity.add_busy(run.busy)
        if interrupted is not None or run.errors:
            for refs in run.results:
                if refs:
                    store.release(refs)
            if interrupted is not None:
                raise interrupted
            i = min(run.errors)
            exc = run.errors[i]
            if isinstance(exc, Exception):
                raise TaskFailed.from_exception(tasks[i].label, exc) from exc
            raise exc
        return run.results  # type: ignore[return-value]

    def describe_state(self) -> str:
        """The helper threads (alive or not) and the runs queued for them."""
        alive = [t.name for t in self._threads if t.is_alive()]
        return (f"{len(alive)} of {self.helpers} helper threads alive ({', '.join(alive) or 'none started'}), "
                f"{self._queue.qsize()} run shares queued")

    def close(self) -> None:
        """Stop the helper threads (they finish the run they are in first). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for t in threads:
            if t is not threading.current_thread():
                t.join(timeout=30)
