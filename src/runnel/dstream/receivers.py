"""Receivers: user code that pushes live data into a stream from its own thread.

A :class:`Receiver` is started when its context starts (in this version
receivers run as threads of the driver process) and hands data to
``store``; a :class:`ReceiverInputDStream` turns everything stored since the
previous batch into the next batch's Dataset.

Pieces, and who owns what::

    receiver thread(s)  --store()-->  BlockGenerator  --take()-->  compute(t) on the scheduler
    (user code)          rate limit   (buffer, lock)              thread holding the timer
                                      [write-ahead log]           [allocation log]
    supervisor thread: on_start / on_stop, restarts with backoff, listener events

``BlockGenerator`` state, all under its lock:

    blocks    stored data cut into blocks: a Batch (stored whole) or a list of
              records (cut every ``block_records`` records)      store adds, take swaps out
    current   records of the block being filled                  store adds, take swaps out
    closed    True once the receiver stopped for good: a later   supervisor, after the final
              store raises ReceiverStoppedError                  on_stop returned
    received  records stored so far (monotonic)                  store
    seq       WAL entry of the newest block added                store (with a WAL)
    taken     WAL entry of the newest block taken                take
    acks      (entry, ack callback) waiting for an fsync         store adds, sync runs them
    queued    batch time -> bytes of the data a batch took and   account (compute) adds,
              that has not been processed yet                    release (the batch completed)

Bounded memory (``runnel.streaming.receiver.maxQueuedBytes``, default 1 GiB
per receiver, ``0`` for no bound): when the batches that took a receiver's
data and have not completed hold that many bytes (batches queue when
processing is slower than the input), ``store`` waits until they complete —
the receiver slows to the pace of processing, and a socket's sender to that
of the receiver. Nothing is dropped. The wait is logged once per episode
(until the backlog falls to half the bound). Data stored but not yet taken
by a batch is at most one batch interval of input and is not counted.

Exactly once: ``take`` swaps both lists out under the lock, so a record is
either in the lists a batch took, or stored after the swap and taken by the
next batch; without a WAL, records are converted to columnar Batches outside
the lock, on the scheduler thread generating the batch, so ``store`` stays an append.

Write-ahead log (``spark.streaming.receiver.writeAheadLog.enable``, needs
``ssc.checkpoint(dir)``). Under ``<checkpoint dir>/receivedData/<stream name>/``:

    blocks/   every block, one entry each (Arrow IPC + zstd, :mod:`runnel.storage.wal`),
              appended under the generator's lock, so blocks and entries share one order
    batches/  one entry per batch that took data: {"time", "after", "through"}, i.e.
              batch ``time`` took block entries (after, through]; written durably by
              ``compute`` after those entries were fsynced, before the batch runs

Recovery (``restore_progress(progress, t)``): batches after t that have an
allocation entry read exactly those blocks back from the log; a batch within
that span without one took nothing; entries no batch took go, ahead of new
data, to the first batch after the span. ``checkpoint_written(t)`` deletes
the log segments only batches <= t used.

``ReceiverInputDStream`` progress state, under its lock (compute runs on the
scheduler thread generating a batch while ``progress`` runs on the one that
ran an earlier batch: ``runnel-scheduler-1/2``, either may do either):

    taken     batch time -> (last block entry it took or None, its allocation entry)
    floor     last block entry taken by the batches already checkpointed
    replay    recovered batch time -> (after, through, allocation entry)

``_Supervisor`` state, under its condition:

    state     "initialized" -> "started" -> ("restarting" -> "started")* -> "stopped"
    running   on_start returned or failed and on_stop is still due
    request   a pending restart (message, error, delay) from the receiver
    final     (message, error) once a final stop was asked (context stop, receiver.stop,
              or too many restarts without data); the supervisor thread then calls on_stop once
"""

from __future__ import annotations

import collections.abc
import dataclasses
import hashlib
import json
import logging
import os
import socket
import threading
import traceback
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from ..batch import Batch, concat_batches
from ..context import conf_flag
from ..listener import ReceiverEvent, ReceiverInfo
from ..storage.signing import key_from_env
from ..storage.wal import DEFAULT_SEGMENT_BYTES, WriteAheadLog, encode_batch
from .inputs import InputDStream
from .ratecontrol import PIDRateEstimator, RateController, RateLimiter, RateSettings

log = logging.getLogger("runnel.receivers")

DEFAULT_BLOCK_RECORDS = 50_000
_JOIN_TIMEOUT = 10.0
_ACK_SYNC_BYTES = 4 << 20   # logged bytes awaiting acks that trigger an fsync before the next batch does
WAL_ENABLE = "spark.streaming.receiver.writeAheadLog.enable"
MAX_QUEUED_BYTES = "runnel.streaming.receiver.maxQueuedBytes"
DEFAULT_MAX_QUEUED_BYTES = 1 << 30
_ROOM_POLL = 0.5            # seconds between checks of a stop while store waits for room
_NO_CHECKPOINT = ("Cannot enable receiver write-ahead log without checkpoint directory set. "
                  "Please use streamingContext.checkpoint() to set the checkpoint directory.")


class ReceiverStoppedError(RuntimeError):
    """``store`` was called on a receiver that is not running (data not accepted)."""


# -- buffering ---------------------------------------------------------------------------------
class BlockGenerator:
    """Buffers stored data as blocks until a batch takes all of it (see the module docstring).

    With a write-ahead log (``use_log``) every block is appended to it as it
    is added, under the lock, so the blocks a batch takes are exactly the
    log entries ``(after, through]`` that ``take`` returns.
    """

    def __init__(self, name: str, block_records: int = DEFAULT_BLOCK_RECORDS, *,
                 limiter: RateLimiter | None = None, max_queued_bytes: int | None = None):
        self.name = name
        self.block_records = block_records
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.max_queued_bytes = max_queued_bytes or None
        self.wal: WriteAheadLog | None = None
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._queued: dict[int, int] = {}   # batch time -> bytes taken, not yet processed
        self._queued_total = 0
        self._waiting_warned = False
        self._blocks: list[Batch | list] = []
        self._current: list = []
        self.closed = False
        self.received = 0
        self._seq = 0                      # log entry of the newest block added
        self._taken = 0                    # log entry of the newest block taken
        self._acks: list[tuple[int, Callable[[], Any]]] = []   # (entry, ack) waiting for an fsync
        self._unsynced = 0                 # bytes logged for acks since the last sync

    def use_log(self, wal: WriteAheadLog, taken: int, pending: list[Batch]) -> None:
        """Log every block to ``wal`` from now on; ``pending`` (entries ``taken + 1 ..``) go first."""
        with self._lock:
            self.wal = wal
            self._taken = taken
            self._seq = wal.last_seq
            self._blocks = list(pending) + self._blocks

    # -- the bound on data taken and not yet processed ------------------------------------------------------
    def account(self, t: int, nbytes: int) -> None:
        """Batch t took ``nbytes`` of this receiver's data; they count until :meth:`release`."""
        with self._lock:
            self._queued[t] = self._queued.get(t, 0) + nbytes
            self._queued_total += nbytes

    def release(self, through: int) -> None:
        """Batches up to ``through`` completed: their data no longer counts; waiting stores go on."""
        with self._lock:
            for t in [t for t in self._queued if t <= through]:
                self._queued_total -= self._queued.pop(t)
            limit = self.max_queued_bytes
            if limit is not None and self._queued_total <= limit // 2:
                self._waiting_warned = False
            self._room.notify_all()

    @property
    def queued_bytes(self) -> int:
        with self._lock:
            return self._queued_total

    def _wait_for_room(self) -> None:
        """Under the lock: wait while the batches that took data and did not complete hold the bound."""
        limit = self.max_queued_bytes
        if limit is None or self._queued_total < limit:
            return
        if not self._waiting_warned:
            self._waiting_warned = True
            log.warning("the receiver of %s waits: batches holding %.1f MB of its data (%d batches, from %s) "
                        "are not processed yet, the bound %s is %.1f MB; processing is slower than the input "
                        "(enable spark.streaming.backpressure.enabled, or give the job more time or cores)",
                        self.name, self._queued_total / 1e6, len(self._queued), min(self._queued),
                        MAX_QUEUED_BYTES, limit / 1e6)
        while self._queued_total >= limit and not self.closed:
            self._room.wait(_ROOM_POLL)

    def _check_open(self) -> None:
        if self.closed:
            raise ReceiverStoppedError(f"receiver of {self.name} has stopped; data stored after its stop is "
                                       "not accepted (stop your receiving threads in on_stop)")

    def _cut(self) -> None:
        """Close the block being filled (under the lock); with a log, it is logged now."""
        block: Batch | list = self._current
        self._current = []
        if self.wal is not None:
            block = Batch.from_records(block)
            self._seq = self.wal.append(encode_batch(block), sync=False)
        self._blocks.append(block)

    def add_record(self, record: Any) -> None:
        self.limiter.acquire(1)
        with self._lock:
            self._wait_for_room()
            self._check_open()
            self._current.append(record)
            self.received += 1
            if len(self._current) >= self.block_records:
                self._cut()

    def add_records(self, records: Any, ack: Callable[[], Any] | None = None) -> None:
        records = records if isinstance(records, list) else list(records)
        if not records:
            self._ack(ack)
            return
        self.limiter.acquire(len(records))
        if self.wal is not None:
            size = self.block_records
            self._add_logged([Batch.from_records(records[i:i + size]) for i in range(0, len(records), size)],
                             len(records), ack)
            return
        with self._lock:
            self._wait_for_room()
            self._check_open()
            self.received += len(records)
            room = self.block_records - len(self._current)
            self._current.extend(records[:room])
            for i in range(room, len(records), self.block_records):
                self._blocks.append(self._current)
                self._current = records[i:i + self.block_records]
            if len(self._current) >= self.block_records:
                self._cut()
        self._ack(ack)

    def add_batch(self, batch: Batch, ack: Callable[[], Any] | None = None) -> None:
        if not len(batch):
            self._ack(ack)
            return
        self.limiter.acquire(len(batch))
        if self.wal is not None:
            self._add_logged([batch], len(batch), ack)
            return
        with self._lock:
            self._wait_for_room()
            self._check_open()
            self.received += len(batch)
            if self._current:                 # keep arrival order: records stored before this batch first
                self._cut()
            self._blocks.append(batch)
        self._ack(ack)

    def _add_logged(self, blocks: list[Batch], n: int, ack: Callable[[], Any] | None) -> None:
        """Log and add blocks; durable on return, or (with ``ack``) ack runs once they are."""
        payloads = [encode_batch(b) for b in blocks]   # outside the lock: encoding is the costly part
        with self._lock:
            self._wait_for_room()
            self._check_open()
            if self._current:
                self._cut()
            for block, payload in zip(blocks, payloads):
                self._seq = self.wal.append(payload, sync=False)
                self._blocks.append(block)
            self.received += n
            if ack is not None:
                self._acks.append((self._seq, ack))
                self._unsynced += sum(p.size for p in payloads)
            sync_now = ack is None or self._unsynced >= _ACK_SYNC_BYTES
        if sync_now:
            self.sync()

    def sync(self) -> None:
        """Make every logged block durable, then run the acks waiting for that."""
        if self.wal is None:
            return
        durable = self.wal.sync()
        with self._lock:
            ready = [ack for seq, ack in self._acks if seq <= durable]
            self._acks = [(seq, ack) for seq, ack in self._acks if seq > durable]
            self._unsynced = 0
        for ack in ready:
            self._ack(ack)

    def _ack(self, ack: Callable[[], Any] | None) -> None:
        if ack is None:
            return
        try:
            ack()
        except Exception:  # noqa: BLE001 — it may run on the batch generator's thread, which must go on
            log.exception("the ack callback of a block stored by the receiver of %s failed", self.name)

    def take(self) -> tuple[list[Batch | list], tuple[int, int]]:
        """Everything stored and not taken yet, in arrival order (and nothing twice).

        Returns the blocks and the log entries ``(after, through]`` they are
        (``(0, 0)`` without a log).
        """
        with self._lock:
            if self._current:
                self._cut()
            blocks, self._blocks = self._blocks, []
            after, through = self._taken, self._seq
            self._taken = through
        return blocks, (after, through)

    def pending(self) -> bool:
        with self._lock:
            return bool(self._blocks or self._current)

    def close(self) -> None:
        """No more data: later stores raise; logged blocks are made durable and acked."""
        with self._lock:
            self.closed = True
            self._room.notify_all()        # a store waiting for room raises ReceiverStoppedError
        self.sync()


def parse_bytes(value: Any, key: str) -> int | None:
    """A byte count from conf: an int, or a string like ``"512m"``/``"2g"``/``"64k"``; 0 means no bound."""
    text = str(value).strip().lower().removesuffix("b")
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    try:
        n = int(float(number) * scale)
    except ValueError:
        raise ValueError(f"{key} must be a byte count like 536870912 or '512m', got {value!r}") from None
    if n < 0:
        raise ValueError(f"{key} must be >= 0 (0: no bound), got {value!r}")
    return n or None


def _is_columnar(data: Any) -> bool:
    if isinstance(data, (Batch, np.ndarray, pa.Table, pa.RecordBatch, pa.Array, pa.ChunkedArray)):
        return True
    return type(data).__module__.split(".")[0] in ("pandas", "polars") and hasattr(data, "__len__")


def _format_error(error: Any) -> str | None:
    if error is None:
        return None
    if isinstance(error, BaseException):
        return "".join(traceback.format_exception(error)).rstrip()
    return str(error)


# -- the user-facing receiver ----------------------------------------------------------------------
class Receiver:
    """Base class of custom receivers (Spark's ``Receiver``).

    Subclass it, implement ``on_start`` (start your own thread and return at
    once) and ``on_stop`` (stop that thread; join it, so nothing is stored
    after on_stop returns), and call ``store`` from your thread. PEP 8 names
    are primary; Spark's camelCase names (``onStart``, ``reportError`` ...)
    work too, including overriding ``onStart`` / ``onStop``.

    ``store(data)`` accepts one record (any Python object; a tuple is one
    record), a list or iterator of records, or a whole block: a
    :class:`~runnel.batch.Batch`, NumPy array, pandas DataFrame/Series,
    Arrow table/array or polars frame. Storing blocks is the fast path.

    Reliable receivers (Spark's term): with the write-ahead log on
    (``spark.streaming.receiver.writeAheadLog.enable``), storing a *block*
    (a list, an iterator, ``store_many`` or any columnar block) returns only
    once the block is durable in the log, so acknowledge your source after
    ``store`` returns: a crash then loses nothing that was acknowledged.
    ``store(block, ack=callback)`` instead returns as soon as the block is
    logged and calls ``callback()`` once it is durable (several blocks then
    share one fsync; the callback runs on whichever thread syncs, at the
    latest when the next batch takes the block; it must be quick and thread-safe).
    ``store(record)`` of a single record only buffers it (unreliable, as in
    Spark); its block is logged when it fills or a batch takes it. Without
    the log, ``store`` returns (and ``ack`` runs) once the data is buffered.

    ``spark.streaming.receiver.maxRate`` (records/s) and backpressure make
    ``store`` wait until its records fit the receiver's rate.

    A receiver whose ``on_start`` raises, or that calls ``restart``, is
    stopped (``on_stop``) and started again after a backoff (``restart_backoff``,
    doubling); the failure goes to listeners' ``onReceiverError``. After
    ``max_restarts`` restarts in a row without any data stored it is
    stopped for good, with the last error.

    Examples
    --------
    >>> import threading
    >>> class Counter(Receiver):
    ...     def on_start(self):
    ...         self.thread = threading.Thread(target=self.run, daemon=True)
    ...         self.thread.start()
    ...     def on_stop(self):
    ...         self.thread.join()
    ...     def run(self):
    ...         self.store_many(range(3))
    """

    #: bounds (seconds) of the backoff between a restart's stop and start; doubles per restart
    #: without data stored in between
    restart_backoff: tuple[float, float] = (0.1, 2.0)
    #: restarts in a row without data stored before the receiver is stopped for good (None: no limit)
    max_restarts: int | None = 10

    def __init__(self, storage_level: Any = None):
        self.storage_level = storage_level

    # -- to implement ------------------------------------------------------------------------
    def on_start(self) -> None:
        """Start receiving (on your own thread); must not block."""
        raise NotImplementedError(f"{type(self).__name__} must implement on_start()")

    def on_stop(self) -> None:
        """Stop receiving and release resources; called once per start."""

    # -- to call ----------------------------------------------------------------------------------
    def _supervisor(self) -> "_Supervisor":
        sup = self.__dict__.get("_runnel_supervisor")
        if sup is None:
            raise ReceiverStoppedError(f"{type(self).__name__} is not attached to a started stream")
        return sup

    def store(self, data: Any, ack: Callable[[], Any] | None = None) -> None:
        """Store a record, a list/iterator of records, or a whole block (Batch, array, frame, table).

        With the write-ahead log on, a block is durable when this returns
        (or, with ``ack``, when ``ack()`` is called); see the class docstring.
        """
        gen = self._supervisor().generator
        if _is_columnar(data):
            gen.add_batch(Batch.coerce(data), ack)
        elif isinstance(data, (list, collections.abc.Iterator)):
            gen.add_records(data, ack)
        elif ack is not None:
            raise TypeError("store(record, ack=...): a single record is only buffered, never acknowledged; "
                            "store a list of records (a block) to have it acknowledged")
        else:
            gen.add_record(data)

    def store_many(self, records: Any, ack: Callable[[], Any] | None = None) -> None:
        """Store every record of an iterable as blocks (reliable with the write-ahead log, like a list)."""
        self._supervisor().generator.add_records(records, ack)

    def restart(self, message: str, error: Any = None, delay: float | None = None) -> None:
        """Stop the receiver (``on_stop``) and start it again (``on_start``) after a backoff.

        Returns at once; ``is_stopped()`` is True until the new start. ``delay``
        (seconds) overrides the backoff. With an ``error`` the failure is
        reported to listeners (``onReceiverError``) first.
        """
        sup = self._supervisor()
        if error is not None:
            sup.report_error(message, error)
        sup.request_restart(message, error, delay)

    def report_error(self, message: str, error: Any = None) -> None:
        """Tell listeners (``onReceiverError``) about an error; the receiver keeps running."""
        self._supervisor().report_error(message, error)

    def stop(self, message: str, error: Any = None) -> None:
        """Stop this receiver for good (the context keeps running; stored data is still delivered)."""
        self._supervisor().request_stop(message, error)

    def is_stopped(self) -> bool:
        """True unless the receiver is started (so a receiving loop ``while not is_stopped()`` ends)."""
        sup = self.__dict__.get("_runnel_supervisor")
        return sup is None or sup.state != "started"

    def is_started(self) -> bool:
        return not self.is_stopped()

    @property
    def stream_id(self) -> int | None:
        sup = self.__dict__.get("_runnel_supervisor")
        return None if sup is None else sup.info.stream_id

    @property
    def write_ahead_log(self) -> bool:
        """True when the stream logs what this receiver stores: a stored block is durable once ``store``
        returns (or its ``ack`` ran), so the source may be acknowledged then. False until attached."""
        sup = self.__dict__.get("_runnel_supervisor")
        return sup is not None and sup.stream.wal_enabled

    def stable_id(self, prefix: str = "runnel") -> str | None:
        """An id of this receiver that is the same in every run of the program, None without a checkpoint.

        ``prefix`` and 16 hex digits of a hash of the checkpoint directory and the stream's name, so
        a program restarted from its checkpoint gets the same id back: for sources that keep a
        session per client (an MQTT client id with a persistent session). 22 characters with the
        default prefix, within MQTT 3.1.1's 23.
        """
        sup = self.__dict__.get("_runnel_supervisor")
        directory = None if sup is None else sup.stream.ssc.checkpoint_dir
        if directory is None:
            return None
        digest = hashlib.sha256(f"{os.path.abspath(directory)}\0{sup.stream.name}".encode()).hexdigest()
        return prefix + digest[:16]

    # Spark's camelCase names are in runnel.aliases; streamId is a method there, stream_id a property
    def streamId(self) -> int | None:  # noqa: N802 — Spark's spelling
        return self.stream_id

    def __getstate__(self) -> dict:
        """A receiver is stored (checkpointed graph) without its attachment to a running stream."""
        state = self.__dict__.copy()
        state.pop("_runnel_supervisor", None)
        return state

    def _call_hook(self, snake: str, camel: str) -> None:
        cls = type(self)
        if getattr(cls, camel) is not getattr(Receiver, snake) and getattr(cls, snake) is getattr(Receiver, snake):
            getattr(self, camel)()          # the subclass overrides only the camelCase spelling
        else:
            getattr(self, snake)()


# -- supervision ------------------------------------------------------------------------------
class _Supervisor:
    """Runs one receiver: start, restarts with backoff, the final stop, listener events."""

    def __init__(self, stream: "ReceiverInputDStream"):
        self.stream = stream
        self.receiver = stream.receiver
        self.generator = stream.generator
        self.info = ReceiverInfo(stream.stream_id, type(self.receiver).__name__, active=False)
        self.cond = threading.Condition()
        self.state = "initialized"
        self.running = False
        self.request: tuple | None = None
        self.final: tuple | None = None
        self._final_event = threading.Event()
        self._restarts_without_data = 0
        self._received_at_start = 0
        self.thread = threading.Thread(target=self._run, name=f"runnel-receiver-{stream.name}", daemon=True)

    # -- events --------------------------------------------------------------------------------
    def _post(self, method: str) -> None:
        self.stream.ssc.listener_bus.post(method, ReceiverEvent(dataclasses.replace(self.info)))

    def report_error(self, message: str, error: Any = None) -> None:
        log.warning("receiver of %s reported an error: %s%s", self.stream.name, message,
                    f" ({type(error).__name__}: {error})" if isinstance(error, BaseException) else "")
        with self.cond:
            self.info.last_error_message = message
            self.info.last_error = _format_error(error)
        self._post("onReceiverError")

    # -- requests from the receiver or the stream ---------------------------------------------------------
    def request_restart(self, message: str, error: Any, delay: float | None) -> None:
        with self.cond:
            if self.final is not None or self.state == "stopped":
                return
            self.state = "restarting"
            if self.request is None:
                self.request = (message, error, delay)
            self.cond.notify_all()

    def request_stop(self, message: str, error: Any = None) -> None:
        self.generator.limiter.interrupt()   # a store waiting for its rate must not hold up on_stop
        with self.cond:
            if self.final is None:
                self.final = (message, error)
            if self.state != "initialized":
                self.state = "stopped" if not self.running else "stopping"
            self._final_event.set()
            self.cond.notify_all()

    def start(self) -> None:
        self.thread.start()

    def stop(self, message: str) -> None:
        """Final stop from the context: on_stop runs (once) before this returns; idempotent."""
        self.request_stop(message)
        if self.thread.ident is not None and self.thread is not threading.current_thread():
            self.thread.join(_JOIN_TIMEOUT)
            if self.thread.is_alive():
                log.error("receiver of %s did not stop within %s s (its on_stop blocks?)",
                          self.stream.name, _JOIN_TIMEOUT)
        self.generator.close()

    # -- the supervisor thread -------------------------------------------------------------------------
    def _run(self) -> None:
        self._start_receiver()
        while True:
            with self.cond:
                while self.request is None and self.final is None:
                    self.cond.wait()
                if self.final is not None:
                    break
                message, error, delay = self.request
                self.request = None
            if self.generator.received > self._received_at_start:
                self._restarts_without_data = 0
            self._restarts_without_data += 1
            limit = self.receiver.max_restarts
            if limit is not None and self._restarts_without_data > limit:
                message = (f"Receiver {self.info.stream_id} gave up after {limit} restarts in a row without "
                           f"storing data; last: {message}")
                self.report_error(message, error)
                self.request_stop(message, error)
                break
            if delay is None:
                lo, hi = self.receiver.restart_backoff
                delay = min(hi, lo * 2 ** (self._restarts_without_data - 1))
            log.warning("restarting receiver of %s in %.2f s: %s", self.stream.name, delay, message)
            self._stop_receiver(f"Restarting receiver with delay {round(delay * 1000)} ms: {message}", error)
            if self._final_event.wait(delay):
                break
            self._start_receiver()
        message, error = self.final
        self._stop_receiver(message, error, final=True)

    def _start_receiver(self) -> None:
        with self.cond:
            if self.final is not None:
                return
            self.state = "started"
            self.running = True
            self._received_at_start = self.generator.received
            self.info.active = True
        self._post("onReceiverStarted")
        try:
            self.receiver._call_hook("on_start", "onStart")
        except Exception as e:  # noqa: BLE001 — a failed start is retried with backoff, like restart()
            message = f"Error starting receiver {self.info.stream_id}"
            self.report_error(message, e)
            self.request_restart(message, e, None)

    def _stop_receiver(self, message: str, error: Any, final: bool = False) -> None:
        with self.cond:
            due = self.running
            self.running = False
            if final:
                self.state = "stopped"
        if not due:
            return
        try:
            self.receiver._call_hook("on_stop", "onStop")
        except Exception as e:  # noqa: BLE001 — a failing on_stop is reported, the stop goes on
            self.report_error(f"Error stopping receiver {self.info.stream_id}", e)
        with self.cond:
            self.info.active = False
            self.info.last_error_message = message
            self.info.last_error = _format_error(error)
        if final:
            self.generator.close()
        self._post("onReceiverStopped")


# -- the stream ---------------------------------------------------------------------------------------
class ReceiverInputDStream(InputDStream):
    """A stream fed by a :class:`Receiver` running on a driver thread.

    Batch t holds everything the receiver stored after the previous batch
    took its data, in arrival order: one partition per received block (a
    block is a stored Batch/array/frame/table, or ``block_records`` records),
    adjacent small blocks merged, so a batch of little data is one
    partition. A graceful stop delivers everything stored before the
    receiver's ``on_stop`` returned.

    Conf keys read (``Context(conf=...)``): ``spark.streaming.receiver.
    writeAheadLog.enable`` (see the module docstring; needs
    ``ssc.checkpoint(dir)``), ``spark.streaming.receiver.maxRate`` and the
    ``spark.streaming.backpressure.*`` keys (:mod:`~runnel.dstream.ratecontrol`).
    """

    kind = "receiver_stream"
    #: a write-ahead log segment is closed at this size; truncation deletes whole segments
    wal_segment_bytes = DEFAULT_SEGMENT_BYTES

    def __init__(self, ssc, receiver: Receiver, *, block_records: int = DEFAULT_BLOCK_RECORDS):
        if not isinstance(receiver, Receiver):
            raise TypeError(f"receiver_stream needs a runnel Receiver, got {type(receiver).__name__}")
        if receiver.__dict__.get("_runnel_supervisor") is not None:
            raise ValueError(f"{type(receiver).__name__} is already attached to a stream; "
                             "create one receiver per stream")
        if isinstance(block_records, bool) or not isinstance(block_records, int) or block_records < 1:
            raise ValueError(f"block_records must be a positive int, got {block_records!r}")
        conf = ssc.context.conf
        self.rates = RateSettings.from_conf(conf)
        self.wal_enabled = conf_flag(conf, WAL_ENABLE)
        self.max_queued_bytes = parse_bytes(conf.get(MAX_QUEUED_BYTES, DEFAULT_MAX_QUEUED_BYTES), MAX_QUEUED_BYTES)
        super().__init__(ssc)
        self.receiver = receiver
        self.block_records = block_records
        self.stream_id = self.graph.inputs.index(self)
        self._init_runtime()

    #: what lives only while the program runs; the checkpointed graph keeps the definition
    _runtime = ("generator", "rate_controller", "_supervisor", "_blocks_log", "_batches_log", "_lock", "_taken",
                "_floor", "_replay", "_replay_until", "_stopped", "_allocations")

    def _init_runtime(self) -> None:
        self.generator = BlockGenerator(self.name, self.block_records, limiter=RateLimiter(self.rates.start_rate()),
                                        max_queued_bytes=self.max_queued_bytes)
        self.rate_controller: RateController | None = None
        self._supervisor = _Supervisor(self)
        self.receiver.__dict__["_runnel_supervisor"] = self._supervisor
        self._blocks_log: WriteAheadLog | None = None
        self._batches_log: WriteAheadLog | None = None
        self._lock = threading.Lock()
        self._taken: dict[int, tuple[int | None, int | None]] = {}
        self._floor = 0
        self._replay: dict[int, tuple[int, int, int]] = {}
        self._allocations: dict[int, int] = {}   # batch time -> its entry in the allocation log
        self._replay_until: int | None = None
        self._stopped = False

    @property
    def num_received(self) -> int:
        """Records stored by the receiver so far (taken or not)."""
        return self.generator.received

    def set_rate(self, rate: float | None) -> None:
        """Limit the receiver to ``rate`` records/s, never above ``spark.streaming.receiver.maxRate``
        (``None``: back to maxRate, or unlimited without one). Backpressure calls this."""
        cap = self.rates.max_rate
        if rate is None or rate <= 0:
            rate = cap
        elif cap is not None:
            rate = min(rate, cap)
        self.generator.limiter.set_rate(rate)

    def validate(self) -> None:
        if self.wal_enabled and not self.ssc.checkpoint_dir:
            raise ValueError(_NO_CHECKPOINT)

    def start(self) -> None:
        if self.wal_enabled and self._blocks_log is None:
            self._open_logs()
            self.generator.use_log(self._blocks_log, self._blocks_log.last_seq, [])
            self._floor = self._blocks_log.last_seq
        if self.rates.backpressure and self.rate_controller is None:
            # made at start, when the stream's name is final (named() may rename it)
            estimator = PIDRateEstimator(self.ssc.batch_ms, self.rates.proportional, self.rates.integral,
                                         self.rates.derivative, self.rates.min_rate)
            self.rate_controller = RateController(self.name, estimator, self.set_rate)
            self.ssc.add_streaming_listener(self.rate_controller)
        self.generator.name = self.name
        self._supervisor.start()

    def stop(self) -> None:
        self._supervisor.stop("Stopped by the StreamingContext")
        self._stopped = True
        self._close_logs()

    def has_pending(self) -> bool:
        return self.generator.pending()

    def forget_before(self, t: int) -> None:
        super().forget_before(t)
        self.generator.release(t)       # batch t completed: the data of batches up to t is processed

    def compute(self, t: int):
        if self._blocks_log is None:
            blocks, _ = self.generator.take()
        else:
            blocks = self._take_logged(t)
        blocks = [b if isinstance(b, Batch) else Batch.from_records(b) for b in blocks]
        self.generator.account(t, sum(b.nbytes() for b in blocks))
        parts = merge_small([b for b in blocks if len(b)], self.block_records)
        ctx = self.ssc.context
        ds = ctx.dataset_of(parts, self.name) if parts else ctx.empty_dataset(self.name)
        return self._counted(t, ds)

    # -- the write-ahead log -------------------------------------------------------------------------
    def wal_written(self) -> tuple[int, int] | None:
        """(blocks, bytes) this run appended to the block log; None without a write-ahead log (cheap)."""
        wal = self._blocks_log
        return wal.appended if wal is not None else None

    def wal_status(self) -> dict | None:
        """The write-ahead log as it is now (None without one): the block log's and the allocation
        log's :meth:`~runnel.storage.wal.WriteAheadLog.stats`, and the batches whose allocation is kept."""
        blocks, batches = self._blocks_log, self._batches_log
        if blocks is None:
            return None
        with self._lock:
            kept = sorted(self._allocations)
        return {"stream": self.name, "stream_id": self.stream_id, "blocks": blocks.stats(),
                "batches": batches.stats(), "allocated_batches": kept}

    def _open_logs(self) -> None:
        if self._blocks_log is not None:
            return
        if not self.ssc.checkpoint_dir:
            raise ValueError(_NO_CHECKPOINT)
        root = os.path.join(self.ssc.checkpoint_dir, "receivedData", self.name)
        key = key_from_env()                # signed like the checkpoints (runnel.storage.signing)
        self._blocks_log = WriteAheadLog(os.path.join(root, "blocks"), segment_bytes=self.wal_segment_bytes, key=key)
        self._batches_log = WriteAheadLog(os.path.join(root, "batches"), segment_bytes=self.wal_segment_bytes, key=key)

    def _close_logs(self) -> None:
        if self._blocks_log is not None:
            self._blocks_log.close()
            self._batches_log.close()

    def _take_logged(self, t: int) -> list[Batch]:
        """Batch t's blocks: logged before a failure (replay), or taken now and their allocation logged."""
        with self._lock:
            replay = self._replay.pop(t, None)
            replaying = self._replay_until is not None and t <= self._replay_until
        if replay is not None:
            after, through, entry = replay
            blocks = [b for _, b in self._blocks_log.read_batches(after, through)]
            if len(blocks) != through - after:
                log.warning("%s: batch %s took write-ahead log entries (%d, %d] before the failure, but "
                            "only %d are left", self.name, t, after, through, len(blocks))
        elif replaying:
            blocks, through, entry = [], None, None     # took nothing before the failure (not logged)
        else:
            blocks, (after, through) = self.generator.take()
            entry = None
            if through > after:
                # the allocation may only name durable entries; this also runs waiting acks
                self.generator.sync()
                entry = self._batches_log.append(
                    json.dumps({"time": t, "after": after, "through": through}).encode())
        if entry is not None:
            with self._lock:
                self._allocations[t] = entry
        with self._lock:
            self._taken[t] = (through, entry)
        if self._stopped:
            self._close_logs()                # a graceful stop's last batches run after stop()
        return blocks

    # -- checkpoints -----------------------------------------------------------------------------------
    def progress(self, t: int) -> dict:
        """``{"wal_through": n}``: batches <= t took the write-ahead log's entries up to n."""
        if not self.wal_enabled:
            return {}
        with self._lock:
            done = [through for bt, (through, _) in self._taken.items() if bt <= t and through is not None]
            return {"wal_through": max(done, default=self._floor)}

    def restore_progress(self, progress: dict, t: int) -> None:
        """Before start on a recovered context: batches after t get the blocks they took before."""
        if not self.wal_enabled:
            log.warning("%s: recovering without a receiver write-ahead log: data received but not processed "
                        "before the failure is lost (set %s to keep it)", self.name, WAL_ENABLE)
            return
        self._open_logs()
        through = progress.get("wal_through")
        if through is None:
            log.warning("%s: the checkpoint at %s was written without a receiver write-ahead log; "
                        "nothing is replayed", self.name, t)
            through = self._blocks_log.last_seq
        replay: dict[int, tuple[int, int, int]] = {}
        for entry, payload in self._batches_log.read():
            rec = json.loads(bytes(payload))
            self._allocations[rec["time"]] = entry
            if rec["time"] > t:
                replay[rec["time"]] = (rec["after"], rec["through"], entry)
        taken = max([through] + [r[1] for r in replay.values()])
        pending = [b for _, b in self._blocks_log.read_batches(after=taken)]
        self.generator.use_log(self._blocks_log, taken, pending)
        with self._lock:
            self._replay = replay
            self._replay_until = max(replay, default=t)
            self._floor = through
        log.info("%s: recovered from the write-ahead log: %d batches replayed, %d blocks never taken",
                 self.name, len(replay), len(pending))

    def checkpoint_written(self, t: int, progress: dict | None) -> None:
        """Delete what no kept checkpoint needs: the oldest, at t, recorded ``progress``; recovering
        from it replays the block log after its ``wal_through`` and the allocations of batches > t."""
        if self._blocks_log is None:
            return
        with self._lock:
            old = [bt for bt in self._taken if bt <= t]
            self._floor = max([self._floor] + [self._taken[bt][0] for bt in old if self._taken[bt][0] is not None])
            for bt in old:
                del self._taken[bt]
            done = [bt for bt in self._allocations if bt <= t]
            entries = [self._allocations.pop(bt) for bt in done]
        through = (progress or {}).get("wal_through")
        if through is not None:
            self._blocks_log.truncate(through)
        if entries:
            self._batches_log.truncate(max(entries))


def merge_small(blocks: list[Batch], block_records: int) -> list[Batch]:
    """Adjacent blocks of one record shape merged up to ``block_records`` rows each."""
    parts: list[list[Batch]] = []
    size = 0
    for b in blocks:
        last = parts[-1][-1] if parts else None
        if (last is not None and size + len(b) <= block_records
                and b.layout == last.layout and b.names == last.names):
            parts[-1].append(b)
            size += len(b)
        else:
            parts.append([b])
            size = len(b)
    return [p[0] if len(p) == 1 else concat_batches(p) for p in parts]


# -- a socket receiver -------------------------------------------------------------------------------
class SocketReceiver(Receiver):
    """Lines of UTF-8 text from a TCP server (``socket_text_stream``).

    Bytes are framed on ``\\n`` (a trailing ``\\r`` is stripped; unlike Java's
    ``readLine`` a lone ``\\r`` does not end a line) and the complete lines of
    each read are stored together. An unterminated last line is kept until
    its newline arrives, and delivered as a line when the connection ends
    (server close, error or stop), as PySpark does at EOF. Invalid UTF-8 is
    replaced by U+FFFD, as Java's decoder does. When the server closes or
    the connection fails the receiver reports the error (``onReceiverError``)
    and reconnects, waiting ``backoff[0]`` seconds doubling to ``backoff[1]``
    between attempts, until stopped.
    """

    def __init__(self, host: str, port: int, *, connect_timeout: float = 5.0,
                 backoff: tuple[float, float] = (0.1, 2.0), read_size: int = 1 << 16):
        super().__init__()
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port must be an int in 1..65535, got {port!r}")
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.backoff = backoff
        self.read_size = read_size
        self.connections = 0
        self._thread: threading.Thread | None = None

    def on_start(self) -> None:
        self._halt = threading.Event()
        self._sock_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._receive_safely, daemon=True,
                                        name=f"runnel-socket-receiver-{self.host}:{self.port}")
        self._thread.start()

    def on_stop(self) -> None:
        self._halt.set()
        with self._sock_lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)     # unblocks recv at once
            except OSError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT)

    def _receive_safely(self) -> None:
        try:
            self._receive()
        except ReceiverStoppedError as e:
            log.error("socket receiver %s:%s: %s", self.host, self.port, e)
        except Exception as e:  # noqa: BLE001 — never die silently: restart
            self.restart(f"Error receiving data from {self.host}:{self.port}", e)

    def _receive(self) -> None:
        lo, hi = self.backoff
        delay = lo
        while not self._halt.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            except OSError as e:
                if self._halt.is_set():
                    return
                self.report_error(f"Error connecting to {self.host}:{self.port}: {e}", e)
                if self._halt.wait(delay):
                    return
                delay = min(hi, delay * 2)
                continue
            self.connections += 1
            delay = lo
            with self._sock_lock:
                self._sock = sock
            try:
                message, error = self._read(sock)
            finally:
                with self._sock_lock:
                    self._sock = None
                sock.close()
            if self._halt.is_set():
                return
            self.report_error(message, error)
            if self._halt.wait(delay):
                return
            delay = min(hi, delay * 2)

    def _read(self, sock: socket.socket) -> tuple[str, Any]:
        """Store the lines of one connection; returns why it ended."""
        sock.settimeout(0.25)                       # poll the halt flag while the server is quiet
        partial: list[bytes] = []                   # pieces of an unterminated line (no quadratic joins)
        try:
            while not self._halt.is_set():
                try:
                    chunk = sock.recv(self.read_size)
                except socket.timeout:
                    continue
                except OSError as e:
                    if self._halt.is_set():
                        return "stopped", None
                    return f"Error receiving data from {self.host}:{self.port}: {e}", e
                if not chunk:
                    return "Socket data stream had no more data", None
                cut = chunk.rfind(b"\n")
                if cut < 0:
                    partial.append(chunk)
                    continue
                partial.append(chunk[:cut])
                self._store_lines(b"".join(partial))
                partial = [chunk[cut + 1:]] if cut + 1 < len(chunk) else []
            return "stopped", None
        finally:
            rest = b"".join(partial)
            if rest:
                self._store_lines(rest)

    def _store_lines(self, data: bytes) -> None:
        # 0x0A never occurs inside a multi-byte UTF-8 sequence, so framing bytes before decoding is safe
        lines = data.decode("utf-8", "replace").split("\n")
        if b"\r" in data:
            lines = [s[:-1] if s.endswith("\r") else s for s in lines]
        self.store_many(lines)
