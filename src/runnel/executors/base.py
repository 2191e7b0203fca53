"""The executor interface: run a stage's tasks on blocks, return their output blocks.

The planner (:mod:`runnel.plan`) compiles a Dataset's lineage into a DAG of
stages — each a list of :class:`Task` (input :class:`BlockRef` groups and a
function) and the kind of executor it wants — and
:func:`runnel.plan.run_stages` hands them to an executor one stage at a time,
in dependency order. An executor implements:

``run(tasks, kind=None) -> list[list[BlockRef]]``
    Run one stage's tasks; output refs per task, in task order. ``kind``
    (``"threads"``/``"processes"``) is where the planner decided it runs; a
    backend with one way of running ignores it; None lets the backend choose.
``kind_of(tasks) -> str``
    Where it would run these tasks (shown by ``StageGraph.describe()``).
``check_shippable(fn_refs)``
    Raise TypeError for user functions it could not send to a worker.
``store``, ``parallelism``, ``close()``
    Its :class:`~runnel.storage.store.BlockStore` owns every block (inputs
    are put there by the engine, outputs by the tasks); ``close`` stops
    workers and frees every block.
``describe_state() -> str``
    What it has in flight, for the report of a wait that timed out
    (:mod:`runnel.diagnostics`); read without locks, never blocks.
``activity``
    An :class:`~runnel.executors.activity.Activity`: the task-seconds its
    slots spent running tasks (two ``perf_counter`` calls per task) and,
    while the UI watches, the stages it ran. The base class provides one.

Backends: ``local`` (:mod:`~runnel.executors.serial`: inline, in order),
``local[N]`` (:mod:`~runnel.executors.parallel`: a stage of kernels on N
threads of the driver, a stage of user Python on N worker processes),
``dask://host:port`` (:mod:`~runnel.executors.dask_executor`: stages as Dask
tasks on a Dask distributed cluster, blocks in its workers' memory).

Failure semantics, shared by every backend (checked by
``tests/executors/test_conformance.py`` on every kind):

* a user exception is deterministic: it is never retried. The executor stops
  starting tasks after the failing one (tasks before it in task order still
  run, so the error reported is that of the first failing task in task order),
  waits for the tasks in flight, releases every block the run produced and
  raises :class:`TaskFailed`;
* a worker process that dies mid-task (processes only) is replaced and its
  task retried, :data:`MAX_ATTEMPTS` attempts in total; one that dies while
  idle is reaped and replaced within a second.
"""

from __future__ import annotations

import os
import re
import traceback
from time import perf_counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runnel.batch import Batch
from runnel.executors.activity import Activity
from runnel.storage.store import BlockRef, BlockStore

__all__ = ["Task", "TaskFailed", "Executor", "make_executor", "MAX_ATTEMPTS"]

#: Attempts per task when its worker dies (user exceptions are never retried).
MAX_ATTEMPTS = 3


@dataclass
class Task:
    """One unit of work: ``fn(index, inputs) -> list of output batches``.

    ``inputs`` are groups of input blocks (one group per parent of a
    cogroup, say); the executor turns each group into a list of Batches.
    ``label`` names the task in every error, e.g.
    ``"reduce_by_key-3 at 1970-01-01 01:00:02, partition 1"``.
    """

    fn: Callable[[int, list[list[Batch]]], list[Batch]]
    index: int
    inputs: list[list[BlockRef]]
    label: str


class TaskFailed(Exception):
    """A task raised (or its worker kept dying).

    ``str(err)`` is ``"<label>: <ExcType>: <message>"`` followed by the
    remote traceback, unless the cause carries that traceback itself (a task
    that ran in this process): Python prints the cause's traceback above
    this error, so the user sees it once. ``__cause__``/``cause`` is the
    original exception when it could be brought back from the worker (else None).
    """

    def __init__(self, label: str, exc_type: str, message: str, remote_traceback: str = "",
                 cause: BaseException | None = None) -> None:
        text = f"{label}: {exc_type}: {message}"
        if remote_traceback and (cause is None or cause.__traceback__ is None):
            text += "\n\n" + remote_traceback.rstrip()
        super().__init__(text)
        self.label = label
        self.exc_type = exc_type
        self.message = message
        self.remote_traceback = remote_traceback
        self.cause = cause
        self.__cause__ = cause

    def __reduce__(self):
        return (type(self), (self.label, self.exc_type, self.message, self.remote_traceback, self.cause))

    @classmethod
    def from_exception(cls, label: str, exc: BaseException) -> "TaskFailed":
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(label, type(exc).__name__, str(exc), tb, exc)


def check_outputs(out) -> list[Batch]:
    """Validate what a task function returned."""
    if isinstance(out, Batch) or not isinstance(out, (list, tuple)):
        raise TypeError(f"a task function must return a list of Batch, got {type(out).__name__}")
    for b in out:
        if not isinstance(b, Batch):
            raise TypeError(f"a task function must return a list of Batch, got an element of type "
                            f"{type(b).__name__}")
    return list(out)


def run_inline(store: BlockStore, tasks: Sequence[Task], activity: Activity | None = None) -> list[list[BlockRef]]:
    """Run tasks in this process, in order, on ``store`` (the serial backend's loop).

    On an error, every block this call produced is released before the error
    propagates; a user exception becomes :class:`TaskFailed`. The tasks' time
    is added to ``activity.busy``.
    """
    results: list[list[BlockRef]] = []
    started = perf_counter()
    try:
        for task in tasks:
            produced: list[BlockRef] = []
            try:
                inputs = [[store.get(r) for r in group] for group in task.inputs]
                for batch in check_outputs(task.fn(task.index, inputs)):
                    produced.append(store.put(batch))
            except BaseException as exc:      # KeyboardInterrupt too: free what this run made
                store.release(produced)
                for refs in results:
                    store.release(refs)
                if isinstance(exc, Exception):
                    raise TaskFailed.from_exception(task.label, exc) from exc
                raise
            results.append(produced)
    finally:                              # one slot, tasks back to back: the loop's time is theirs
        if activity is not None:
            activity.add_busy(perf_counter() - started)
    return results


class Executor:
    """Runs tasks; owns a :class:`BlockStore`. Use as a context manager or call :meth:`close`."""

    store: BlockStore
    parallelism: int

    @property
    def activity(self) -> Activity:
        """Task-seconds this executor spent and, while watched, the stages it ran
        (:mod:`runnel.executors.activity`). A backend that does not time its tasks leaves busy at 0."""
        found = self.__dict__.get("_activity")
        if found is None:
            found = self.__dict__.setdefault("_activity", Activity(getattr(self, "parallelism", 1)))
        return found

    def check_shippable(self, refs) -> None:
        """Raise TypeError naming any of these FnRefs this executor could not send to a worker.

        The serial executor sends nothing, so it accepts everything.
        """

    def run(self, tasks: Sequence[Task], kind: str | None = None) -> list[list[BlockRef]]:
        """Run ``tasks`` (one stage); output refs per task, in task order. Raises :class:`TaskFailed`."""
        raise NotImplementedError

    def kind_of(self, tasks: Sequence[Task]) -> str:
        """Where these tasks would run (``"serial"`` for a backend with one way)."""
        return "serial"

    def describe_state(self) -> str:
        """What this executor has in flight, one line per worker or slot (for a timeout's report).

        Reads without taking locks (the run it describes may hold them) and never blocks.
        """
        return f"{type(self).__name__}: runs tasks on the calling thread (see its stack)"

    def close(self) -> None:
        """Stop workers and free every block. Idempotent."""
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_MASTER = re.compile(r"local(?:\[(\d+|\*)\])?")


def is_dask_master(master) -> bool:
    """Is ``master`` a Dask cluster: ``"dask://host:port"`` or a ``distributed.Client``?"""
    if isinstance(master, str):
        return master.strip().startswith("dask://")
    return type(master).__name__ == "Client" and type(master).__module__.startswith("distributed")


def make_executor(master, conf=None, **options) -> Executor:
    """An executor for a Spark-style master string.

    ``"local"`` -> :class:`~runnel.executors.serial.SerialExecutor`;
    ``"local[N]"`` -> :class:`~runnel.executors.parallel.ParallelExecutor`:
    N threads for kernel stages, N worker processes (started when a stage
    first needs them) for stages that run user Python; ``"local[*]"`` -> N is
    the number of CPUs. ``conf`` (a live mapping, e.g. a Context's) is read
    at every stage for ``runnel.executor.stageKind``; ``options`` go to the
    parallel executor (``stage_kind="processes"``, ``inline_bytes=0`` ...).
    ``"dask://host:port"`` or a ``distributed.Client`` ->
    :class:`~runnel.executors.dask_executor.DaskExecutor` (the ``runnel[dask]`` extra).

    Examples
    --------
    >>> with make_executor("local") as ex:
    ...     ex.parallelism
    1
    """
    if is_dask_master(master):
        from runnel.executors.dask_executor import DaskExecutor
        return DaskExecutor(master, conf=conf, **options)
    m = _MASTER.fullmatch(master.strip()) if isinstance(master, str) else None
    n = None
    if m and m.group(1) is not None:
        n = (os.cpu_count() or 1) if m.group(1) == "*" else int(m.group(1))
    if not m or (n is not None and n < 1):
        raise ValueError(f"unknown master {master!r}: expected 'local', 'local[N]' with N >= 1, 'local[*]', "
                         f"'dask://host:port' or a distributed.Client")
    if n is None:
        from runnel.executors.serial import SerialExecutor
        return SerialExecutor()
    from runnel.executors.parallel import ParallelExecutor
    return ParallelExecutor(n, conf=conf, **options)
