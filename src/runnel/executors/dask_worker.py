"""The worker side of the Dask executor: what runs inside a Dask worker process.

Every function here is submitted by :mod:`runnel.executors.dask_executor` by
reference, so a Dask worker needs only ``runnel`` installed (user code
travels in the tasks, see below).

Values that live on workers
---------------------------
* a *task result* (:class:`Result`): the output batches of one runnel task,
  or the error it raised, plus its accumulator updates. A block is output
  ``k`` of a result or, for a block the driver put, the Batch itself;
* a *function blob*: a user function pickled once by the driver
  (:class:`~runnel.executors.shipping.BlobCache`) and scattered once;
  tasks that call it name its future, so Dask fetches it to a worker the
  first time a task there needs it, and never again.

State (per worker process)
--------------------------
``_fns: dict[fn id, FnRef | exception]``
    Functions unpickled here (or the error their blob raised), filled by
    :func:`run_task` the first time a task needs them (under ``_fns_lock``:
    a worker may run tasks on several threads), emptied by :func:`forget`.
``FN_LOADS``
    How many blobs this process unpickled (tests read it with ``Client.run``).
"""

from __future__ import annotations

import pickle
import threading
import time
import traceback

import cloudpickle

from runnel.accumulators import drain_task_updates
from runnel.batch import Batch, object_array
from runnel.executors.base import check_outputs
from runnel.executors.shipping import loads

__all__ = ["Result", "run_task", "run_pinned", "describe", "forget", "forget_soon", "fn_loads", "WarmKernels"]

FN_LOADS = 0
_fns: dict = {}
_fns_lock = threading.Lock()


class Result:
    """What one runnel task left on its worker: output batches, or its error; accumulator updates."""

    __slots__ = ("batches", "error", "updates", "seconds")

    def __init__(self, batches: list[Batch] | None, error: tuple | None, updates: list,
                 seconds: float = 0.0) -> None:
        self.batches = batches
        self.error = error
        self.updates = updates
        self.seconds = seconds          # the task's run time on its worker (the executor's busy time)

    def __reduce__(self):
        return (Result, (self.batches, self.error, self.updates, self.seconds))


def _error(exc: BaseException) -> tuple:
    """(type name, message, traceback text, pickled exception or None) of a task's error."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        blob = cloudpickle.dumps(exc)
        pickle.loads(blob)
    except Exception:
        blob = None
    return (type(exc).__name__, str(exc), tb, blob)


def _load_fns(fn_ids: list[str], blobs: list[bytes]) -> None:
    global FN_LOADS
    with _fns_lock:
        for fn_id, blob in zip(fn_ids, blobs):    # dependencies first (BlobCache.order)
            if fn_id in _fns:
                continue
            try:
                _fns[fn_id] = loads(blob, _fns)
                FN_LOADS += 1
            except Exception as exc:             # reported by each task that uses it
                _fns[fn_id] = exc


def _private(batch: Batch) -> Batch:
    """A task may mutate what it reads: object columns are copied (numbers and strings are immutable)."""
    cols = batch.columns
    if not any(getattr(c, "dtype", None) == object for c in cols.values()):
        return batch
    return Batch({n: object_array(pickle.loads(pickle.dumps(list(c), pickle.HIGHEST_PROTOCOL)))
                  if getattr(c, "dtype", None) == object else c for n, c in cols.items()}, batch.layout)


def read(value, k: int | None) -> Batch:
    """The block held by ``value``: output ``k`` of a :class:`Result`, or a Batch put by the driver."""
    if k is None:
        return value
    if value.batches is None:
        raise RuntimeError(f"read output {k} of a task that failed: {value.error[:2]}")
    return value.batches[k]


def run_task(payload: bytes, fn_ids: list[str], blobs: list[bytes], inputs: list[list[tuple]],
             topic: str | None = None, key: str | None = None) -> Result:
    """Run one runnel task: ``inputs`` are groups of ``(value, k)`` (Dask put the values of the futures there).

    With a ``topic``, the task's :func:`describe` is sent to the driver as a
    Dask event (``log_event``), which reaches it with the news that the task
    finished: no second task, no second round trip.
    """
    started = time.perf_counter()
    _load_fns(fn_ids, blobs)
    drain_task_updates()                          # what an earlier task on this thread left is not ours
    try:
        fn, index = loads(payload, _fns)
        batches = [[_private(read(v, k)) for v, k in group] for group in inputs]
        result = Result(check_outputs(fn(index, batches)), None, [])
    except Exception as exc:
        result = Result(None, _error(exc), [])
    result.updates = drain_task_updates() if result.error is None else []   # a failed task's do not count
    result.seconds = time.perf_counter() - started
    if topic is not None:
        get_worker().log_event(topic, pickle.dumps((key, describe(result)), pickle.HIGHEST_PROTOCOL))
    return result


def run_pinned(fn, args: tuple, topic: str, key: str) -> Result:
    """Run runnel's own worker-side ``fn(*args) -> Result`` (not user code from the driver: a function
    imported on the worker) and send its :func:`describe` to the driver as :func:`run_task` does."""
    started = time.perf_counter()
    try:
        result = fn(*args)
    except Exception as exc:
        result = Result(None, _error(exc), [])
    result.seconds = time.perf_counter() - started
    get_worker().log_event(topic, pickle.dumps((key, describe(result)), pickle.HIGHEST_PROTOCOL))
    return result


def describe(result: Result) -> tuple:
    """What the driver needs of a result: ``(sizes or None, error or None, accumulator updates, seconds)``."""
    if result.error is not None:
        return None, result.error, [], result.seconds
    return [(len(b), b.nbytes()) for b in result.batches], None, result.updates, result.seconds


def forget(fn_ids: list[str]) -> int:
    """Drop functions the driver no longer uses (``Client.run`` on every worker); how many were held."""
    with _fns_lock:
        return sum(_fns.pop(i, None) is not None for i in fn_ids)


async def forget_soon(fn_ids: list[str]) -> None:
    """:func:`forget` as a coroutine: what ``Client.run(..., wait=False)`` accepts."""
    forget(fn_ids)


def fn_loads() -> int:
    """How many function blobs this worker unpickled."""
    return FN_LOADS


try:
    from distributed import get_worker
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:          # imported by workers and by the executor: both have distributed (the dask extra)
    WorkerPlugin, get_worker = object, None


class WarmKernels(WorkerPlugin):
    """Loads runnel's Numba kernels on each worker as it starts (and on every worker that joins later).

    The driver compiles them first (``warm_kernels``), so a worker on the
    same file system only reads Numba's cache; a worker on another machine
    compiles them here, before its first task rather than during it.
    """

    name = "runnel-warm-kernels"

    def setup(self, worker) -> None:
        from runnel.executors.pool import warm_kernels
        warm_kernels()
