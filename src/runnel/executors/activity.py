"""What an executor did: the task-seconds its threads or processes spent running tasks, and its stages.

Every executor owns one :class:`Activity`. Its ``busy`` is the sum, over
every task it ran, of the wall time the task occupied a slot (a thread of
the driver, or a worker process from the task's send to its reply); each
backend measures it with two ``perf_counter`` calls per task and adds it
once per stage (on the thread that called ``run``), so it costs nothing
per record. The *busy ratio* over an interval is ``Δbusy / (Δwall × slots)``:
the fraction of the executor's capacity that ran tasks. What is left is
driver work (planning, output operations, listeners) or idle time.

The stage log (:attr:`Activity.stages`) is kept only while someone watches
(:meth:`Activity.watch`, the streaming UI does): :func:`runnel.plan.run_stages`
appends one :class:`StageRun` per stage it ran, a few attributes, nothing per
task. Nobody watching: ``stages`` is None and ``run_stages`` records nothing.

State (``ran_as`` is written by the thread that runs a stage; the rest under ``_lock``)::

    busy       task-seconds so far (all slots), monotonic
    ran_as     where the stage that ran last on this executor really ran
               ("serial", "inline", "threads", "processes"), or None
    stages     deque of the last STAGE_LOG StageRuns, or None when unwatched
    recorded   StageRuns appended so far (positions in the log, for readers)
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

__all__ = ["Activity", "StageRun", "STAGE_LOG"]

#: StageRuns kept while watched (a batch runs a handful; readers take theirs at batch end)
STAGE_LOG = 4096


@dataclass(frozen=True)
class StageRun:
    """One stage an executor ran: its label, where it ran, its tasks and times (seconds)."""
    stage: int            # its id in its StageGraph
    label: str
    kind: str             # "serial", "inline", "threads" or "processes"
    tasks: int
    start: float          # perf_counter at its start
    seconds: float        # wall time of the stage
    busy: float           # task-seconds its tasks took (of any stage running at the same time too)
    thread: int           # ident of the thread that ran it
    failed: bool = False  # a task of it failed (the stage stopped there)
    reads: tuple[int, ...] = ()   # the stages of its graph whose outputs it read


class Activity:
    """Task-seconds an executor spent (:attr:`busy`) and, while watched, the stages it ran.

    Examples
    --------
    >>> a = Activity(slots=2)
    >>> a.add_busy(0.5); a.add_busy(0.25); a.busy
    0.75
    >>> a.stages is None                 # nobody watches: no stage log
    True
    >>> a.watch(); len(a.stages)
    0
    """

    def __init__(self, slots: int):
        self.slots = max(1, int(slots))
        self.busy = 0.0
        self.ran_as: str | None = None
        self.stages: deque[StageRun] | None = None
        self.recorded = 0
        self._watchers = 0
        self._lock = threading.Lock()

    def add_busy(self, seconds: float) -> None:
        """Add the task-seconds of one stage's tasks."""
        with self._lock:
            self.busy += seconds

    def record(self, run: StageRun) -> None:
        """Append one stage to the log (when watched; else nothing)."""
        with self._lock:
            if self.stages is not None:
                self.stages.append(run)
                self.recorded += 1

    def since(self, mark: int) -> list[StageRun]:
        """StageRuns recorded after position ``mark`` (an earlier :attr:`recorded`) still in the log."""
        with self._lock:                # the newest n only: no copy of the whole log per batch
            log = self.stages
            if log is None:
                return []
            n = min(len(log), self.recorded - mark)
            return [log[-i] for i in range(n, 0, -1)]

    def watch(self) -> None:
        """Start (or join) keeping the stage log."""
        with self._lock:
            self._watchers += 1
            if self.stages is None:
                self.stages = deque(maxlen=STAGE_LOG)

    def unwatch(self) -> None:
        """Stop watching; the log goes when the last watcher leaves."""
        with self._lock:
            self._watchers = max(0, self._watchers - 1)
            if not self._watchers:
                self.stages = None
