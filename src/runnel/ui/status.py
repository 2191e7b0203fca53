"""What the UI knows about a running job: a listener that keeps it.

:class:`StreamingStatus` is registered on the context's listener bus and
keeps, under one lock, what the web UI, the REST API, the console progress
line and the notebook display show: the batches waiting and running, the
last ``spark.streaming.ui.retainedBatches`` (1000) completed ones, totals
since start, and the receivers. It sees the engine only through listener
events (frozen :class:`~runnel.listener.BatchInfo` snapshots), so it cannot
change or slow the job beyond the O(1) work of each event.

:class:`JobFacts` is the small explicit, read-only description of the job
(name, master, interval, conf, checkpoint directory, its DStream graph) that
the context hands to the UI at start, with the two live probes the web UI
reads: the executor's :class:`~runnel.executors.activity.Activity` (busy
ratio, stages run) and the receiver streams that keep a write-ahead log.

With an activity, the status marks each batch's start (on the scheduler thread running it,
in ``onBatchStarted``: a ``perf_counter``, the executor's busy seconds and
the stage log's position) and at its completion keeps a
:class:`BatchActivity`: the batch's wall time, its task-seconds, and the
stages that thread ran for it. Without (no web UI), it does nothing
more per event than before.
"""

from __future__ import annotations

import os
import re
import threading
import time
from time import perf_counter
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..executors.activity import StageRun
from ..listener import BatchInfo, CheckpointInfo, OutputOperationInfo, ReceiverInfo, StreamingListener

QUEUED, PROCESSING, COMPLETED = "QUEUED", "PROCESSING", "COMPLETED"
DEFAULT_RETAINED = 1000
_SECRET = re.compile(r"password|secret|token|key|credential", re.IGNORECASE)
REDACTED = "*********(redacted)"
BUSY_WINDOW_S = 60.0          # the busy ratio "over a window": the last minute of wall time


def redact(conf: Mapping[str, Any]) -> dict[str, str]:
    """The conf as strings, values of keys named like password/secret/token/key replaced."""
    return {str(k): REDACTED if _SECRET.search(str(k)) else str(v) for k, v in sorted(conf.items(), key=str)}


@dataclass(frozen=True)
class JobFacts:
    """What the context tells the UI about the job (fixed at start)."""
    app_name: str
    master: str
    batch_ms: int
    conf: Mapping[str, Any]
    checkpoint_dir: str | None = None
    graph: tuple = ()               # StreamNode of every stream (DStreamGraph.nodes), for the graph view
    activity: Any = None            # the executor's Activity, when the web UI is on (busy ratio, stages)
    wal_streams: tuple = ()         # receiver streams keeping a write-ahead log (wal_status, wal_written)
    dashboard: str | None = None    # the cluster's own dashboard (Dask's), linked from the pages


@dataclass(frozen=True)
class BatchActivity:
    """What the executor did while one batch ran, measured by the status on the scheduler thread running it.

    ``wall`` is seconds from the batch's start to its completion (real time,
    also on a ManualClock), ``busy`` the task-seconds every slot spent in that
    span, ``stages`` those that thread ran for the batch, in order.
    """
    batch_time: int
    wall: float
    busy: float
    slots: int
    stages: tuple[StageRun, ...] = ()

    @property
    def busy_ratio(self) -> float | None:
        """Fraction of the executor's capacity (slots x wall time) that ran tasks during the batch."""
        return self.busy / (self.wall * self.slots) if self.wall > 0 else None


@dataclass
class Receiver:
    """A receiver as the UI shows it: its last reported info and when it last reported an error."""
    info: ReceiverInfo
    last_error_time: float | None = None      # wall-clock seconds


@dataclass
class Totals:
    """Counts since start (not limited to the retained batches)."""
    completed: int = 0
    failed: int = 0
    processed_records: int = 0
    received_records: int = 0
    stream_records: dict[str, int] = field(default_factory=dict)
    late_rows: dict[str, int] = field(default_factory=dict)     # event-time operator -> rows behind its watermark


class StreamingStatus(StreamingListener):
    """Keeps the job's batches, totals and receivers from listener events (thread-safe).

    Readers get copies (lists of frozen BatchInfo snapshots, dicts), never
    the live structures.
    """

    def __init__(self, facts: JobFacts, retained: int | None = None):
        self.facts = facts
        n = retained if retained is not None else int(facts.conf.get("spark.streaming.ui.retainedBatches",
                                                                     DEFAULT_RETAINED))
        self._lock = threading.Lock()
        self.start_time: int | None = None        # ms on the context's clock (onStreamingStarted)
        self.start_wall: float | None = None      # wall-clock seconds, for uptime
        self._waiting: dict[int, BatchInfo] = {}
        self._running: dict[int, BatchInfo] = {}
        self._ops: dict[int, dict[int, OutputOperationInfo]] = {}   # running batches' operations, live
        self._completed: deque[BatchInfo] = deque(maxlen=max(1, n))
        self._totals = Totals()
        self._receivers: dict[int, Receiver] = {}
        self._state_tables: dict[str, Mapping] = {}  # operator -> last reported {"keys", "bytes", ...}
        # with an executor activity (the web UI is on):
        self._marks: dict[int, tuple[float, float, int, int]] = {}   # running batch -> (perf, busy, log pos, thread)
        self._activity: dict[int, BatchActivity] = {}                # completed batch -> what the executor did
        self._busy_samples: deque[tuple[float, float]] = deque(maxlen=max(2, n))   # (perf, busy) at completions
        self._checkpoints: deque[CheckpointInfo] = deque(maxlen=max(1, n))        # committed, oldest first
        self._wal_last: dict[str, tuple[int, int]] = {}              # stream -> (blocks, bytes) at last sample
        self._wal: dict[int, dict[str, tuple[int, int]]] = {}        # completed batch -> stream -> written since

    # -- events ---------------------------------------------------------------------------
    def onStreamingStarted(self, event) -> None:
        with self._lock:
            self.start_time = event.time
            self.start_wall = time.time()

    def onBatchSubmitted(self, event) -> None:
        info = event.batch_info
        with self._lock:
            self._waiting[info.batch_time] = info
            self._totals.received_records += info.num_records

    def onBatchStarted(self, event) -> None:
        info = event.batch_info
        act = self.facts.activity
        mark = None if act is None else (perf_counter(), act.busy, act.recorded, threading.get_ident())
        with self._lock:
            self._waiting.pop(info.batch_time, None)
            self._running[info.batch_time] = info
            self._ops[info.batch_time] = dict(info.output_operation_infos)
            if mark is not None:
                self._marks[info.batch_time] = mark

    def _on_op(self, event) -> None:
        op = event.output_operation_info
        with self._lock:
            ops = self._ops.get(op.batch_time)
            if ops is not None:
                ops[int(op.id)] = op

    onOutputOperationStarted = _on_op
    onOutputOperationCompleted = _on_op

    def onBatchCompleted(self, event) -> None:
        info = event.batch_info
        t = info.batch_time
        done = self._measure(t) if self.facts.activity is not None else None
        wal = self._wal_written() if self.facts.wal_streams else None
        with self._lock:
            self._waiting.pop(t, None)
            self._running.pop(t, None)
            self._ops.pop(t, None)
            if len(self._completed) == self._completed.maxlen:      # the oldest retained batch goes
                old = self._completed[0].batch_time
                self._activity.pop(old, None)
                self._wal.pop(old, None)
            self._completed.append(info)
            if done is not None:
                self._activity[t] = done
            if wal is not None:
                self._wal[t] = wal
            t = self._totals
            t.completed += 1
            t.failed += info.failed
            t.processed_records += info.num_records
            for name, n in info.stream_records.items():
                t.stream_records[name] = t.stream_records.get(name, 0) + n
            for name, report in info.state_tables.items():
                late = report.get("late_rows")
                if late is not None:
                    t.late_rows[name] = t.late_rows.get(name, 0) + late
            self._state_tables.update(info.state_tables)

    def _on_receiver(self, event) -> None:
        info = event.receiver_info
        with self._lock:
            old = self._receivers.get(info.stream_id)
            err_time = old.last_error_time if old is not None else None
            if info.last_error_message and (old is None or (old.info.last_error_message, old.info.last_error)
                                            != (info.last_error_message, info.last_error)):
                err_time = time.time()
            self._receivers[info.stream_id] = Receiver(info, err_time)

    onReceiverStarted = onReceiverError = onReceiverStopped = _on_receiver

    def onCheckpointWritten(self, event) -> None:
        with self._lock:
            self._checkpoints.append(event.checkpoint_info)

    def _measure(self, t: int) -> BatchActivity | None:
        """The executor's work during batch t, from its start mark (None when it had none)."""
        act = self.facts.activity
        now, busy = perf_counter(), act.busy
        with self._lock:
            mark = self._marks.pop(t, None)
            for stale in [k for k in self._marks if k < t]:      # batches that never completed
                del self._marks[stale]
            self._busy_samples.append((now, busy))
        if mark is None:
            return None
        start, busy0, pos, thread = mark
        stages = tuple(r for r in act.since(pos) if r.thread == thread)
        return BatchActivity(t, now - start, busy - busy0, act.slots, stages)

    def _wal_written(self) -> dict[str, tuple[int, int]]:
        """Blocks and bytes each write-ahead log got since the last completed batch."""
        out = {}
        for s in self.facts.wal_streams:
            now = s.wal_written()
            if now is None:
                continue
            last = self._wal_last.get(s.name, (0, 0))
            self._wal_last[s.name] = now
            out[s.name] = (now[0] - last[0], now[1] - last[1])
        return out

    # -- reading ---------------------------------------------------------------------------
    def batches(self, status: str | None = None) -> list[tuple[str, BatchInfo]]:
        """(status, info) of the waiting, running and retained completed batches, newest first.

        A running batch's output operations are the live ones (started and
        completed operations show their times).
        """
        with self._lock:
            out = [(QUEUED, b) for b in self._waiting.values()]
            out += [(PROCESSING, self._live(b)) for b in self._running.values()]
            out += [(COMPLETED, b) for b in self._completed]
        if status is not None:
            out = [p for p in out if p[0] == status]
        return sorted(out, key=lambda p: -p[1].batch_time)

    def _live(self, info: BatchInfo) -> BatchInfo:
        ops = self._ops.get(info.batch_time)
        if not ops:
            return info
        return _with_ops(info, ops)

    def batch(self, batch_time: int) -> tuple[str, BatchInfo] | None:
        """(status, info) of one retained batch, or None."""
        for pair in self.batches():
            if pair[1].batch_time == batch_time:
                return pair
        return None

    def completed(self) -> list[BatchInfo]:
        """The retained completed batches, oldest first."""
        with self._lock:
            return list(self._completed)

    def counts(self) -> dict[str, int]:
        """Batches now queued and processing."""
        with self._lock:
            return {QUEUED: len(self._waiting), PROCESSING: len(self._running)}

    def totals(self) -> Totals:
        with self._lock:
            t = self._totals
            return Totals(t.completed, t.failed, t.processed_records, t.received_records, dict(t.stream_records),
                          dict(t.late_rows))

    def receivers(self) -> list[Receiver]:
        with self._lock:
            return [self._receivers[k] for k in sorted(self._receivers)]

    def state_tables(self) -> dict[str, Mapping]:
        """Operator name -> its state table's last report ({"keys": rows, "bytes": b, ...})."""
        with self._lock:
            return dict(self._state_tables)

    def activity(self, batch_time: int) -> BatchActivity | None:
        """What the executor did during a retained completed batch (None without a web UI)."""
        with self._lock:
            return self._activity.get(batch_time)

    def busy_window(self, seconds: float = BUSY_WINDOW_S) -> tuple[float, float] | None:
        """(busy ratio, seconds measured) over the last ``seconds`` of wall time up to now, from the
        oldest batch completion in that span; None without an activity or a completed batch."""
        act = self.facts.activity
        if act is None:
            return None
        now, busy = perf_counter(), act.busy
        with self._lock:
            inside = [s for s in self._busy_samples if now - s[0] <= seconds]
        if not inside or now - inside[0][0] <= 0:
            return None
        t0, b0 = inside[0]
        return (busy - b0) / ((now - t0) * act.slots), now - t0

    def checkpoint_infos(self) -> list[CheckpointInfo]:
        """Checkpoints committed while the UI watched (``onCheckpointWritten``), newest first."""
        with self._lock:
            return list(reversed(self._checkpoints))

    def wal(self) -> list[dict]:
        """Each receiver's write-ahead log now (``wal_status``) with ``per_batch``: [(batch time,
        blocks, bytes)] written since the batch before, over the retained batches."""
        out = []
        with self._lock:
            per = sorted(self._wal.items())
        for s in self.facts.wal_streams:
            st = s.wal_status()
            if st is None:
                continue
            st["per_batch"] = [(t, *w[s.name]) for t, w in per if s.name in w]
            out.append(st)
        return out

    def uptime(self) -> float | None:
        """Seconds since the job started (wall clock), None before."""
        return None if self.start_wall is None else time.time() - self.start_wall

    def checkpoints(self) -> list[dict]:
        """The checkpoints in the checkpoint directory, newest first: time (ms), bytes, written (wall s)."""
        from ..checkpoint.files import checkpoint_times
        d = self.facts.checkpoint_dir
        if d is None or not os.path.isdir(d):
            return []
        out = []
        for t in sorted(checkpoint_times(d), reverse=True):
            path = os.path.join(d, f"checkpoint-{t}")
            size, written = 0, None
            try:
                with os.scandir(path) as it:
                    for e in it:
                        st = e.stat()
                        size += st.st_size
                        written = st.st_mtime if written is None else max(written, st.st_mtime)
            except OSError:        # removed by the cleaner while we looked
                continue
            out.append({"time": t, "bytes": size, "written": written, "path": path})
        return out


def _with_ops(info: BatchInfo, ops: dict[int, OutputOperationInfo]) -> BatchInfo:
    import dataclasses
    from types import MappingProxyType
    return dataclasses.replace(info, output_operation_infos=MappingProxyType(dict(ops)))._freeze()
