"""What the UI knows about a running job: a listener that keeps it.

:class:`StreamingStatus` is registered on the context's listener bus and
keeps, under one lock, what the web UI, the REST API, the console progress
line and the notebook display show: the batches waiting and running, the
last ``spark.streaming.ui.retainedBatches`` (1000) completed ones, totals
since start, and the receivers. It sees the engine only through listener
events (frozen :class:`~runnel.listener.BatchInfo` snapshots), so it cannot
change or slow the job beyond the O(1) work of each event.

:class:`JobFacts` is the small explicit, read-only description of the job
(name, master, interval, conf, checkpoint directory) that the context hands
to the UI at start.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..listener import BatchInfo, OutputOperationInfo, ReceiverInfo, StreamingListener

QUEUED, PROCESSING, COMPLETED = "QUEUED", "PROCESSING", "COMPLETED"
DEFAULT_RETAINED = 1000
_SECRET = re.compile(r"password|secret|token|key|credential", re.IGNORECASE)
REDACTED = "*********(redacted)"


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
        with self._lock:
            self._waiting.pop(info.batch_time, None)
            self._running[info.batch_time] = info
            self._ops[info.batch_time] = dict(info.output_operation_infos)

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
        with self._lock:
            self._waiting.pop(info.batch_time, None)
            self._running.pop(info.batch_time, None)
            self._ops.pop(info.batch_time, None)
            self._completed.append(info)
            t = self._totals
            t.completed += 1
            t.failed += info.failed
            t.processed_records += info.num_records
            for name, n in info.stream_records.items():
                t.stream_records[name] = t.stream_records.get(name, 0) + n
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
            return Totals(t.completed, t.failed, t.processed_records, t.received_records, dict(t.stream_records))

    def receivers(self) -> list[Receiver]:
        with self._lock:
            return [self._receivers[k] for k in sorted(self._receivers)]

    def state_tables(self) -> dict[str, Mapping]:
        """Operator name -> its state table's last report ({"keys": rows, "bytes": b, ...})."""
        with self._lock:
            return dict(self._state_tables)

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
