"""Streaming listeners: progress events for monitoring, tests and the UI.

Listeners see the same events as PySpark's ``StreamingListener``. Event
objects carry both runnel's PEP 8 attributes (``info.batch_time``,
``info.num_records``, ``op.failure_reason``) and PySpark's accessor methods
(in PySpark they are JVM objects reached through py4j, so everything is a
method call), so a ported listener works unchanged::

    info = batchCompleted.batchInfo()
    info.batchTime().milliseconds(), info.numRecords(), info.schedulingDelay()
    info.streamIdToInputInfo()[0].numRecords()
    for op in info.outputOperationInfos().values():
        op.id(), op.name(), op.description(), op.startTime(), op.endTime(), op.failureReason()

``op.id``/``op.name``/``op.description`` are values that can also be
called (``op.name == op.name() == "foreachRDD"``).

Unknown times: as in PySpark (whose wrapper reads them with
``getOrElse(-1)``), the accessors give -1 for a time or delay not known yet
(``processingStartTime()``, ``processingEndTime()``, ``schedulingDelay()``,
``processingDelay()``, ``totalDelay()``, an operation's ``startTime()`` and
``endTime()``); ``failureReason()`` is None. runnel's own fields
(``processing_start_time``, ``op.end_time`` ...) are None then.

Snapshots: the scheduler keeps one live :class:`BatchInfo` per batch and
updates it as the batch runs; every event gets its own frozen copy taken
when the event is made (:meth:`BatchInfo.snapshot`). So the info of
``onBatchSubmitted`` keeps ``schedulingDelay() == -1`` however long a
listener holds it, and setting an attribute of a delivered info raises.

Records: ``num_records`` is what every input of the batch brought (runnel's
figure). ``numRecords()`` is PySpark's: the sum over
``streamIdToInputInfo()``, where, as in Spark, a receiver stream (and
runnel's rate stream) reports its records, a file stream reports 0 (Spark
describes its files instead), and a queue stream reports nothing at all.

runnel's own event: ``onCheckpointWritten(event)`` (not in PySpark; a
PySpark listener simply lacks it) carries a :class:`CheckpointInfo` each
time a checkpoint is committed: its batch time, bytes, and how long taking
the snapshot (on the scheduler thread, between batches) and writing it (on the
checkpoint writer thread, while the next batches run) took.

Events are delivered synchronously, on the thread that produced them, in
order. A listener that raises does not stop the job (a broken monitor must
not), and is reported per callback (:class:`ListenerBus`): the first
failure is logged at error level with its traceback, naming the listener, the
callback and the event; a later failure with a different exception type or
message is logged the same way (saying how often the previous error
repeated); the same error again is counted, and every
``ListenerBus.REPEATS_PER_REPORT`` (100) repeats one warning line says
``listener X.onBatchCompleted raised 100 more times, last: ...``, as does the
removal of the listener for repeats not yet reported.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

log = logging.getLogger("runnel.listener")


def ms_to_datetime(ms: int) -> datetime:
    """Batch times reach user code as naive local datetimes, as in PySpark."""
    return datetime.fromtimestamp(ms / 1000.0)


def _known(ms: int | None) -> int:
    """A time or delay as PySpark's listener accessors give it: -1 when not known (yet)."""
    return -1 if ms is None else ms


class Time(int):
    """A batch time in milliseconds, as PySpark's listener hands it (``batchTime().milliseconds()``)."""

    def milliseconds(self) -> int:
        return int(self)


class _CallableInt(int):
    """An int that also answers PySpark's accessor call: ``op.id == op.id()``."""

    def __call__(self) -> int:
        return int(self)


class _CallableStr(str):
    """A str that also answers PySpark's accessor call: ``op.name == op.name()``."""

    def __call__(self) -> str:
        return str(self)


class _Frozen:
    """Snapshots delivered to listeners refuse changes."""

    _frozen = False

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise dataclasses.FrozenInstanceError(
                f"{type(self).__name__} delivered to listeners is a snapshot; it cannot be changed")
        super().__setattr__(name, value)

    def _freeze(self):
        object.__setattr__(self, "_frozen", True)
        return self

    @classmethod
    def _made_frozen(cls, fields: dict):
        """An instance holding ``fields`` (every dataclass field), frozen, made without ``__init__``:
        the scheduler builds several per batch, and a dataclass ``__init__`` going through
        ``__setattr__`` field by field costs more than a 10-record batch's work."""
        obj = object.__new__(cls)
        d = obj.__dict__
        d.update(fields)
        d["_frozen"] = True
        return obj


@dataclass
class OutputOperationInfo(_Frozen):
    """One output operation of one batch."""
    batch_time: int
    id: int
    name: str
    description: str
    start_time: int | None = None
    end_time: int | None = None
    failure_reason: str | None = None

    def __post_init__(self):
        self.id = _CallableInt(self.id)
        self.name = _CallableStr(self.name)
        self.description = _CallableStr(self.description if self.description is not None else "")

    @property
    def duration(self) -> int | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    @classmethod
    def frozen(cls, batch_time: int, id: int, name: str, description: str | None, start_time: int | None = None,
               end_time: int | None = None, failure_reason: str | None = None) -> "OutputOperationInfo":
        """A frozen info (what listeners get), built directly."""
        return cls._made_frozen({
            "batch_time": batch_time, "id": id if type(id) is _CallableInt else _CallableInt(id),
            "name": name if type(name) is _CallableStr else _CallableStr(name),
            "description": description if type(description) is _CallableStr else _CallableStr(
                description if description is not None else ""),
            "start_time": start_time, "end_time": end_time, "failure_reason": failure_reason})

    def snapshot(self) -> "OutputOperationInfo":
        """A frozen copy (what listeners get)."""
        return self if self._frozen else self.frozen(self.batch_time, self.id, self.name, self.description,
                                                     self.start_time, self.end_time, self.failure_reason)

    # PySpark accessors (id(), name(), description() are the callable attributes)
    def batchTime(self) -> Time: return Time(self.batch_time)  # noqa: E704
    def startTime(self): return _known(self.start_time)  # noqa: E704
    def endTime(self): return _known(self.end_time)  # noqa: E704
    def failureReason(self): return self.failure_reason  # noqa: E704


@dataclass(frozen=True)
class StreamInputInfo:
    """What one input stream reported for a batch (``streamIdToInputInfo()`` values)."""
    input_stream_id: int
    num_records: int
    metadata: dict = field(default_factory=dict)

    def inputStreamId(self) -> int: return self.input_stream_id  # noqa: E704
    def numRecords(self) -> int: return self.num_records  # noqa: E704
    def metadataDescription(self): return self.metadata.get("Description")  # noqa: E704

    def __getattribute__(self, name: str):
        # ``metadata`` is a field and PySpark's accessor ``metadata()``: give a callable dict
        value = object.__getattribute__(self, name)
        return _CallableDict(value) if name == "metadata" else value


class _CallableDict(dict):
    def __call__(self) -> dict:
        return dict(self)


class _ReadOnlyDict(dict):
    """The dicts of a snapshot: readable, copyable and picklable, not changeable."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("the dicts of an info delivered to listeners cannot be changed")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self):
        return (_ReadOnlyDict, (dict(self),))

    def __copy__(self) -> "_ReadOnlyDict":
        return self

    def __deepcopy__(self, memo: dict) -> "_ReadOnlyDict":
        import copy
        return _ReadOnlyDict(copy.deepcopy(dict(self), memo))


def read_only(d: dict) -> _ReadOnlyDict:
    """A read-only copy of ``d`` (the dicts of a frozen info); ``d`` itself when it already is one."""
    return d if type(d) is _ReadOnlyDict else _ReadOnlyDict(d)


#: How PySpark reports each input kind's records: Spark's file stream reports 0 (and its files),
#: its queue stream reports nothing; receivers (and runnel's rate stream) report what they brought.
_REPORTS = {"text_file_stream": 0, "binary_records_stream": 0, "file_stream": 0, "queue_stream": None}


def input_infos(inputs: Iterable[Any], t: int) -> dict[int, StreamInputInfo]:
    """``streamIdToInputInfo`` for batch t: input streams are numbered in creation order, as in Spark."""
    out = {}
    for sid, stream in enumerate(inputs):
        kind = getattr(stream, "kind", "")
        if kind in _REPORTS and _REPORTS[kind] is None:
            continue
        n = _REPORTS.get(kind, stream.records.get(t, 0))
        out[sid] = StreamInputInfo(sid, int(n))
    return out


@dataclass
class BatchInfo(_Frozen):
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
    #: input stream id -> what it reported, PySpark's way (see the module docstring)
    stream_input_infos: dict[int, StreamInputInfo] = field(default_factory=dict)

    @classmethod
    def frozen(cls, batch_time: int, submission_time: int, num_records: int, processing_start_time: int | None,
               processing_end_time: int | None, output_operation_infos: "_ReadOnlyDict",
               stream_records: "_ReadOnlyDict", state_tables: "_ReadOnlyDict",
               stream_input_infos: "_ReadOnlyDict") -> "BatchInfo":
        """A frozen info (what listeners get), built directly: the dicts must already be read-only
        (:func:`read_only`) and hold frozen operation infos; they may be shared between snapshots."""
        return cls._made_frozen({
            "batch_time": batch_time, "submission_time": submission_time, "num_records": num_records,
            "processing_start_time": processing_start_time, "processing_end_time": processing_end_time,
            "output_operation_infos": output_operation_infos, "stream_records": stream_records,
            "state_tables": state_tables, "stream_input_infos": stream_input_infos})

    def snapshot(self) -> "BatchInfo":
        """A frozen copy, output operations and tables included (what listeners get)."""
        if self._frozen:
            return self
        return self.frozen(
            self.batch_time, self.submission_time, self.num_records, self.processing_start_time,
            self.processing_end_time,
            read_only({k: o.snapshot() for k, o in self.output_operation_infos.items()}),
            read_only(self.stream_records), read_only({k: read_only(v) for k, v in self.state_tables.items()}),
            read_only(self.stream_input_infos))

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

    # PySpark accessors (-1 where PySpark reports an unknown time or delay as -1)
    def batchTime(self) -> Time: return Time(self.batch_time)  # noqa: E704
    def submissionTime(self): return self.submission_time  # noqa: E704
    def numRecords(self) -> int: return sum(i.num_records for i in self.stream_input_infos.values())  # noqa: E704
    def streamIdToInputInfo(self): return self.stream_input_infos  # noqa: E704
    def processingStartTime(self): return _known(self.processing_start_time)  # noqa: E704
    def processingEndTime(self): return _known(self.processing_end_time)  # noqa: E704
    def schedulingDelay(self): return _known(self.scheduling_delay)  # noqa: E704
    def processingDelay(self): return _known(self.processing_delay)  # noqa: E704
    def totalDelay(self): return _known(self.total_delay)  # noqa: E704
    def outputOperationInfos(self): return self.output_operation_infos  # noqa: E704


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint committed (``onCheckpointWritten``); durations in ms of wall time.

    ``snapshot_ms`` is the time the scheduler thread spent taking the snapshot (the
    stateful tables of batch ``batch_time`` computed and held) before the next
    batch could start — None for the checkpoint written at start; ``write_ms``
    the writer thread's time to write, fsync and commit it while later batches
    ran; ``bytes`` the files written (tables and manifest).
    """
    batch_time: int
    write_ms: float
    bytes: int
    path: str
    snapshot_ms: float | None = None


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
    """onBatchSubmitted/Started/Completed: carries a frozen snapshot of the batch's info."""
    batch_info: BatchInfo

    def __post_init__(self):
        if not self.batch_info._frozen:
            self.batch_info = self.batch_info.snapshot()

    def batchInfo(self): return self.batch_info  # noqa: E704


@dataclass
class OutputOperationEvent(_Event):
    """onOutputOperationStarted/Completed: carries a frozen snapshot of the operation's info."""
    output_operation_info: OutputOperationInfo

    def __post_init__(self):
        if not self.output_operation_info._frozen:
            self.output_operation_info = self.output_operation_info.snapshot()

    def outputOperationInfo(self): return self.output_operation_info  # noqa: E704


@dataclass
class CheckpointEvent(_Event):
    """onCheckpointWritten: carries the :class:`CheckpointInfo`."""
    checkpoint_info: CheckpointInfo

    def checkpointInfo(self): return self.checkpoint_info  # noqa: E704


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
    def onCheckpointWritten(self, checkpointWritten): pass  # noqa: E704  (runnel's own)


class _Same:
    """A dict key comparing by identity (listeners may be unhashable or define ``__eq__``)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


@dataclass
class _Failing:
    """How one listener callback has been failing: the last error logged, repeats since."""
    error: tuple[type, str]
    last: BaseException
    repeats: int = 0


def _handles(listener: Any, method: str) -> bool:
    """``listener`` has callback ``method`` and it is not StreamingListener's no-op."""
    if method in getattr(listener, "__dict__", ()):
        return True
    fn = getattr(type(listener), method, None)
    if fn is None:           # a callback the instance answers another way (``__getattr__``)
        return getattr(listener, method, None) is not None
    return fn is not getattr(StreamingListener, method, None)


class ListenerBus:
    """Delivers events to listeners in registration order.

    A callback that raises is reported, never propagated (see the module
    docstring): first failure and each change of error logged with the
    traceback, repeats of the same error summed in one warning line every
    :attr:`REPEATS_PER_REPORT` and when the listener is removed.
    """

    #: Repeats of one callback's same error summed into each warning line.
    REPEATS_PER_REPORT = 100

    def __init__(self):
        self._listeners: tuple[Any, ...] = ()       # replaced, never changed in place: read without the lock
        self._lock = threading.Lock()
        self._failures: dict[tuple[_Same, str], _Failing] = {}   # (listener, callback) -> its failing

    def add(self, listener: Any) -> None:
        with self._lock:
            self._listeners = self._listeners + (listener,)

    def remove(self, listener: Any) -> None:
        with self._lock:
            if listener in self._listeners:
                rest = list(self._listeners)
                rest.remove(listener)
                self._listeners = tuple(rest)
            gone = [(k, self._failures.pop(k)) for k in [k for k in self._failures if k[0].obj is listener]]
        for (_, method), failing in gone:
            if failing.repeats:
                self._report_repeats(listener, method, failing)

    def wants(self, method: str) -> bool:
        """Does a listener handle ``method`` (with anything but :class:`StreamingListener`'s no-op)?
        The scheduler builds an event only for a callback someone handles."""
        return any(_handles(lst, method) for lst in self._listeners)

    def post(self, method: str, event: _Event) -> None:
        for lst in self._listeners:
            fn = getattr(lst, method, None)
            if fn is None:
                continue
            try:
                fn(event)
            except KeyboardInterrupt:
                raise                 # Ctrl-C on the thread that posts (start() posts onStreamingStarted)
            except BaseException as e:  # SystemExit, pytest.fail ...: on a scheduler thread it would wedge the batch
                self._failed(lst, method, event, e)

    def _failed(self, listener: Any, method: str, event: _Event, e: BaseException) -> None:
        key, error = (_Same(listener), method), (type(e), str(e))
        with self._lock:
            failing = self._failures.get(key)
            if failing is None:
                self._failures[key] = _Failing(error, e)
            elif failing.error == error:
                failing.repeats += 1
                failing.last = e
                if failing.repeats < self.REPEATS_PER_REPORT:
                    return
                summary, failing.repeats = dataclasses.replace(failing), 0
            else:
                self._failures[key] = _Failing(error, e)
        if failing is None:
            log.error("runnel: streaming listener %r raised in %s(%s); the job goes on (a different error of "
                      "this callback is logged again, repeats are counted)", listener, method,
                      type(event).__name__, exc_info=e)
        elif failing.error == error:
            self._report_repeats(listener, method, summary)
        else:
            log.error("runnel: streaming listener %r raised a different error in %s(%s) (the previous one, "
                      "%s: %s, repeated %d time%s since it was logged); the job goes on", listener, method,
                      type(event).__name__, failing.error[0].__name__, failing.error[1], failing.repeats,
                      "" if failing.repeats == 1 else "s", exc_info=e)

    @staticmethod
    def _report_repeats(listener: Any, method: str, failing: _Failing) -> None:
        log.warning("runnel: streaming listener %r.%s raised %d more time%s, last: %r", listener, method,
                    failing.repeats, "" if failing.repeats == 1 else "s", failing.last)
