"""Streaming listeners: progress events for monitoring, tests and the UI.

Listeners see the same events as PySpark's ``StreamingListener``; event
objects carry PySpark's accessor methods (``batchCompleted.batchInfo()
.numRecords()``) so a ported listener works unchanged, plus plain attributes.

Events are delivered synchronously, on the thread that produced them, in
order; a listener that raises is reported once per listener and otherwise
ignored (a broken monitor must not stop the job).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger("runnel.listener")


def ms_to_datetime(ms: int) -> datetime:
    """Batch times reach user code as naive local datetimes, as in PySpark."""
    return datetime.fromtimestamp(ms / 1000.0)


@dataclass
class OutputOperationInfo:
    """One output operation of one batch."""
    batch_time: int
    id: int
    name: str
    description: str
    start_time: int | None = None
    end_time: int | None = None
    failure_reason: str | None = None

    @property
    def duration(self) -> int | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    # PySpark accessors
    def batchTime(self): return self.batch_time  # noqa: E704
    def startTime(self): return self.start_time  # noqa: E704
    def endTime(self): return self.end_time  # noqa: E704
    def failureReason(self): return self.failure_reason  # noqa: E704


@dataclass
class BatchInfo:
    """What happened to one batch; delays are milliseconds, None until known."""
    batch_time: int
    submission_time: int
    num_records: int = 0
    processing_start_time: int | None = None
    processing_end_time: int | None = None
    output_operation_infos: dict[int, OutputOperationInfo] = field(default_factory=dict)
    stream_records: dict[str, int] = field(default_factory=dict)
    #: stream name -> {"keys": n, "bytes": b} of every state table computed in this batch
    state_tables: dict[str, dict] = field(default_factory=dict)

    @property
    def scheduling_delay(self) -> int | None:
        if self.processing_start_time is None:
            return None
        return self.processing_start_time - self.submission_time

    @property
    def processing_delay(self) -> int | None:
        if self.processing_start_time is None or self.processing_end_time is None:
            return None
        return self.processing_end_time - self.processing_start_time

    @property
    def total_delay(self) -> int | None:
        if self.processing_end_time is None:
            return None
        return self.processing_end_time - self.submission_time

    @property
    def failed(self) -> bool:
        return any(o.failure_reason for o in self.output_operation_infos.values())

    # PySpark accessors (-1 where PySpark reports an unknown delay as -1)
    def batchTime(self): return self.batch_time  # noqa: E704
    def submissionTime(self): return self.submission_time  # noqa: E704
    def numRecords(self): return self.num_records  # noqa: E704
    def processingStartTime(self): return self.processing_start_time  # noqa: E704
    def processingEndTime(self): return self.processing_end_time  # noqa: E704
    def schedulingDelay(self): return -1 if self.scheduling_delay is None else self.scheduling_delay  # noqa: E704
    def processingDelay(self): return -1 if self.processing_delay is None else self.processing_delay  # noqa: E704
    def totalDelay(self): return -1 if self.total_delay is None else self.total_delay  # noqa: E704
    def outputOperationInfos(self): return self.output_operation_infos  # noqa: E704


@dataclass
class ReceiverInfo:
    stream_id: int
    name: str
    active: bool = True
    last_error: str | None = None
    last_error_message: str | None = None

    def streamId(self): return self.stream_id  # noqa: E704
    def lastError(self): return self.last_error  # noqa: E704
    def lastErrorMessage(self): return self.last_error_message  # noqa: E704


class _Event:
    """Base for events: one payload, exposed as an attribute and a PySpark accessor."""


@dataclass
class StreamingStarted(_Event):
    time: int


@dataclass
class BatchEvent(_Event):
    batch_info: BatchInfo

    def batchInfo(self): return self.batch_info  # noqa: E704


@dataclass
class OutputOperationEvent(_Event):
    output_operation_info: OutputOperationInfo

    def outputOperationInfo(self): return self.output_operation_info  # noqa: E704


@dataclass
class ReceiverEvent(_Event):
    receiver_info: ReceiverInfo

    def receiverInfo(self): return self.receiver_info  # noqa: E704


class StreamingListener:
    """Subclass and override the events you need; register with
    ``ssc.add_streaming_listener(listener)``.

    Examples
    --------
    >>> class Counter(StreamingListener):
    ...     def __init__(self): self.records = 0
    ...     def onBatchCompleted(self, batchCompleted):
    ...         self.records += batchCompleted.batchInfo().numRecords()
    """

    def onStreamingStarted(self, streamingStarted): pass  # noqa: E704
    def onReceiverStarted(self, receiverStarted): pass  # noqa: E704
    def onReceiverError(self, receiverError): pass  # noqa: E704
    def onReceiverStopped(self, receiverStopped): pass  # noqa: E704
    def onBatchSubmitted(self, batchSubmitted): pass  # noqa: E704
    def onBatchStarted(self, batchStarted): pass  # noqa: E704
    def onBatchCompleted(self, batchCompleted): pass  # noqa: E704
    def onOutputOperationStarted(self, outputOperationStarted): pass  # noqa: E704
    def onOutputOperationCompleted(self, outputOperationCompleted): pass  # noqa: E704


class ListenerBus:
    """Delivers events to listeners in registration order."""

    def __init__(self):
        self._listeners: list[Any] = []
        self._lock = threading.Lock()
        self._broken: set[int] = set()

    def add(self, listener: Any) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove(self, listener: Any) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def post(self, method: str, event: _Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for lst in listeners:
            fn = getattr(lst, method, None)
            if fn is None:
                continue
            try:
                fn(event)
            except Exception:
                if id(lst) not in self._broken:
                    self._broken.add(id(lst))
                    log.exception("streaming listener %r failed in %s; its later errors are not logged",
                                  lst, method)
