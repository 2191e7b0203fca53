"""Receivers: user code that pushes live data into a stream from its own thread.

A :class:`Receiver` is started when its context starts (in this version
receivers run as threads of the driver process) and hands data to
``store``; a :class:`ReceiverInputDStream` turns everything stored since the
previous batch into the next batch's Dataset.

Pieces, and who owns what::

    receiver thread(s)  --store()-->  BlockGenerator  --take()-->  compute(t) on the
    (user code)                       (buffer, lock)              job-generator thread
    supervisor thread: on_start / on_stop, restarts with backoff, listener events

``BlockGenerator`` state, all under its lock:

    blocks    stored data cut into blocks: a Batch (stored whole) or a list of
              records (cut every ``block_records`` records)      store adds, take swaps out
    current   records of the block being filled                  store adds, take swaps out
    closed    True once the receiver stopped for good: a later   supervisor, after the final
              store raises ReceiverStoppedError                  on_stop returned
    received  records stored so far (monotonic)                  store

Exactly once: ``take`` swaps both lists out under the lock, so a record is
either in the lists a batch took, or stored after the swap and taken by the
next batch; records are converted to columnar Batches outside the lock, on
the job generator's thread, so ``store`` stays an append.

``_Supervisor`` state, under its condition:

    state     "initialized" -> "started" -> ("restarting" -> "started")* -> "stopped"
    running   on_start returned or failed and on_stop is still due
    request   a pending restart (message, error, delay) from the receiver
    final     (message, error) once a final stop was asked (context stop or
              receiver.stop); the supervisor thread then calls on_stop once
"""

from __future__ import annotations

import collections.abc
import dataclasses
import logging
import socket
import threading
import traceback
from typing import Any

import numpy as np
import pyarrow as pa

from ..batch import Batch, concat_batches
from ..listener import ReceiverEvent, ReceiverInfo
from .inputs import InputDStream

log = logging.getLogger("runnel.receivers")

DEFAULT_BLOCK_RECORDS = 50_000
_JOIN_TIMEOUT = 10.0


class ReceiverStoppedError(RuntimeError):
    """``store`` was called on a receiver that is not running (data not accepted)."""


# -- buffering ---------------------------------------------------------------------------------
class BlockGenerator:
    """Buffers stored data as blocks until a batch takes all of it (see the module docstring)."""

    def __init__(self, name: str, block_records: int = DEFAULT_BLOCK_RECORDS):
        self.name = name
        self.block_records = block_records
        self._lock = threading.Lock()
        self._blocks: list[Batch | list] = []
        self._current: list = []
        self.closed = False
        self.received = 0

    def _check_open(self) -> None:
        if self.closed:
            raise ReceiverStoppedError(f"receiver of {self.name} has stopped; data stored after its stop is "
                                       "not accepted (stop your receiving threads in on_stop)")

    def add_record(self, record: Any) -> None:
        with self._lock:
            self._check_open()
            self._current.append(record)
            self.received += 1
            if len(self._current) >= self.block_records:
                self._blocks.append(self._current)
                self._current = []

    def add_records(self, records: Any) -> None:
        records = records if isinstance(records, list) else list(records)
        if not records:
            return
        with self._lock:
            self._check_open()
            self.received += len(records)
            room = self.block_records - len(self._current)
            self._current.extend(records[:room])
            for i in range(room, len(records), self.block_records):
                self._blocks.append(self._current)
                self._current = records[i:i + self.block_records]
            if len(self._current) >= self.block_records:
                self._blocks.append(self._current)
                self._current = []

    def add_batch(self, batch: Batch) -> None:
        if not len(batch):
            return
        with self._lock:
            self._check_open()
            self.received += len(batch)
            if self._current:                 # keep arrival order: records stored before this batch first
                self._blocks.append(self._current)
                self._current = []
            self._blocks.append(batch)

    def take(self) -> list[Batch | list]:
        """Everything stored and not taken yet, in arrival order (and nothing twice)."""
        with self._lock:
            blocks, current = self._blocks, self._current
            self._blocks, self._current = [], []
        if current:
            blocks.append(current)
        return blocks

    def pending(self) -> bool:
        with self._lock:
            return bool(self._blocks or self._current)

    def close(self) -> None:
        with self._lock:
            self.closed = True


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

    def store(self, data: Any) -> None:
        """Store a record, a list/iterator of records, or a whole block (Batch, array, frame, table)."""
        gen = self._supervisor().generator
        if _is_columnar(data):
            gen.add_batch(Batch.coerce(data))
        elif isinstance(data, (list, collections.abc.Iterator)):
            gen.add_records(data)
        else:
            gen.add_record(data)

    def store_many(self, records: Any) -> None:
        """Store every record of an iterable (one lock round trip per block, not per record)."""
        self._supervisor().generator.add_records(records)

    def restart(self, message: str, error: Any = None, delay: float | None = None) -> None:
        """Stop the receiver (``on_stop``) and start it again (``on_start``) after a backoff.

        Returns at once; ``is_stopped()`` is True until the new start. ``delay``
        (seconds) overrides the backoff.
        """
        self._supervisor().request_restart(message, error, delay)

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

    # Spark's names. onStart/onStop are dispatched (_call_hook) so that overriding either spelling works.
    onStart = on_start
    onStop = on_stop
    storeMany = store_many
    reportError = report_error
    isStopped = is_stopped
    isStarted = is_started

    def streamId(self) -> int | None:  # noqa: N802 — Spark's spelling
        return self.stream_id

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
        self.bus = stream.ssc._bus
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
        self.bus.post(method, ReceiverEvent(dataclasses.replace(self.info)))

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
            if delay is None:
                if self.generator.received > self._received_at_start:
                    self._restarts_without_data = 0
                lo, hi = self.receiver.restart_backoff
                delay = min(hi, lo * 2 ** self._restarts_without_data)
                self._restarts_without_data += 1
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
        except Exception as e:  # noqa: BLE001 — Spark stops a receiver whose onStart fails
            self.report_error(f"Error starting receiver {self.info.stream_id}", e)
            self.request_stop(f"Error starting receiver {self.info.stream_id}", e)

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
    """

    kind = "receiver_stream"

    def __init__(self, ssc, receiver: Receiver, *, block_records: int = DEFAULT_BLOCK_RECORDS):
        if not isinstance(receiver, Receiver):
            raise TypeError(f"receiver_stream needs a runnel Receiver, got {type(receiver).__name__}")
        if receiver.__dict__.get("_runnel_supervisor") is not None:
            raise ValueError(f"{type(receiver).__name__} is already attached to a stream; "
                             "create one receiver per stream")
        if isinstance(block_records, bool) or not isinstance(block_records, int) or block_records < 1:
            raise ValueError(f"block_records must be a positive int, got {block_records!r}")
        super().__init__(ssc)
        self.receiver = receiver
        self.stream_id = ssc._graph.inputs.index(self)
        self.generator = BlockGenerator(self.name, block_records)
        self._supervisor = _Supervisor(self)
        receiver.__dict__["_runnel_supervisor"] = self._supervisor

    @property
    def num_received(self) -> int:
        """Records stored by the receiver so far (taken or not)."""
        return self.generator.received

    def start(self) -> None:
        self._supervisor.start()

    def stop(self) -> None:
        self._supervisor.stop("Stopped by the StreamingContext")

    def has_pending(self) -> bool:
        return self.generator.pending()

    def compute(self, t: int):
        blocks = [b if isinstance(b, Batch) else Batch.from_records(b) for b in self.generator.take()]
        parts = self._merge_small([b for b in blocks if len(b)])
        ctx = self.ssc.context
        ds = ctx.dataset_of(parts, self.name) if parts else ctx.empty_dataset(self.name)
        return self._counted(t, ds)

    def _merge_small(self, blocks: list[Batch]) -> list[Batch]:
        """Adjacent blocks of one record shape merged up to ``block_records`` rows each."""
        parts: list[list[Batch]] = []
        size = 0
        for b in blocks:
            last = parts[-1][-1] if parts else None
            if (last is not None and size + len(b) <= self.generator.block_records
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
