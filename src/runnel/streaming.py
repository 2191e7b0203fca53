"""StreamingContext: cuts live data into batches and runs the DStream graph.

Lifecycle (PySpark's rules): INITIALIZED -> start() -> ACTIVE -> stop() ->
STOPPED. ``start()`` without an output operation raises; streams cannot be
added after start; a second ``start()`` of an active context does nothing; a
stopped context cannot be restarted; only one context is active at a time.
A user error fails that batch's output only; it is remembered and re-raised
by every later ``await_termination``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from .clock import Clock, ManualClock, SystemClock, clock_from_conf
from .context import Context
from .dstream.base import DStream, fn_arity, to_ms
from .dstream.inputs import QueueInputDStream
from .graph import DStreamGraph
from .listener import ListenerBus, StreamingStarted
from .scheduler.scheduler import JobScheduler

log = logging.getLogger("runnel.streaming")
INITIALIZED, ACTIVE, STOPPED = "INITIALIZED", "ACTIVE", "STOPPED"


class StreamingContext:
    """Entry point of a streaming program.

    Parameters
    ----------
    context_or_master : Context or str
        A :class:`~runnel.context.Context`, or a master string (``"local"``,
        ``"local[2]"``, ``"local[*]"``) to create one.
    batch_duration : float
        Batch interval in seconds (int or float).
    clock : Clock, optional
        ``ManualClock()`` for tests; the system clock by default.

    Examples
    --------
    >>> from runnel import StreamingContext, ManualClock
    >>> ssc = StreamingContext("local", 1, clock=ManualClock())
    >>> out = []
    >>> ssc.queue_stream([[1, 2], [3]]).map(lambda x: x * 10).foreach_rdd(lambda rdd: out.append(rdd.collect()))
    >>> ssc.start(); ssc.run_batches(2); ssc.stop()
    >>> out
    [[10, 20], [30]]
    """

    _lock = threading.RLock()
    _active: "StreamingContext | None" = None

    def __init__(self, context_or_master: Any = None, batch_duration: float | None = None, *,
                 clock: Clock | None = None, app_name: str = "runnel"):
        if batch_duration is None:
            raise TypeError("StreamingContext needs a batch duration in seconds, e.g. StreamingContext(ctx, 1)")
        self.batch_ms = to_ms(batch_duration, "batchDuration")
        if isinstance(context_or_master, Context):
            self.context = context_or_master
            self._owns_context = False
        else:
            self.context = Context.get_or_create(context_or_master or "local[*]", app_name)
            self._owns_context = True
        self.clock = clock or clock_from_conf(self.context.conf) or SystemClock()
        self._graph = DStreamGraph(self)
        self._bus = ListenerBus()
        self._scheduler = JobScheduler(self)
        self._state = INITIALIZED
        self._stopped = threading.Event()
        self.checkpoint_dir: str | None = None

    # -- properties ----------------------------------------------------------
    @property
    def spark_context(self) -> Context:
        return self.context

    sparkContext = spark_context

    @property
    def state(self) -> str:
        return self._state

    @property
    def batch_duration(self) -> float:
        return self.batch_ms / 1000.0

    def _check_can_add(self) -> None:
        if self._state == ACTIVE:
            raise RuntimeError("Adding new inputs, transformations, and output operations after "
                               "starting a context is not supported")
        if self._state == STOPPED:
            raise RuntimeError("Adding new inputs, transformations, and output operations after "
                               "stopping a context is not supported")

    # -- inputs ------------------------------------------------------------------
    def queue_stream(self, rdds: Any, one_at_a_time: bool = True, default: Any = None) -> DStream:
        """A stream whose batches come from a queue (list or deque) of data.

        Items may be Datasets, lists of records, NumPy arrays, pandas
        DataFrames or Arrow tables. Lists are split into the context's
        default parallelism.
        """
        return QueueInputDStream(self, rdds, one_at_a_time, default)

    def socket_text_stream(self, hostname: str, port: int, storage_level: Any = None) -> DStream:
        """Lines of UTF-8 text from a TCP server, received by a receiver thread.

        The receiver reconnects when the server goes away; every complete
        line received is delivered to a batch.
        """
        from .dstream.receivers import ReceiverInputDStream, SocketReceiver
        return ReceiverInputDStream(self, SocketReceiver(hostname, int(port)))

    def receiver_stream(self, receiver: Any) -> DStream:
        """A stream fed by a user :class:`~runnel.dstream.receivers.Receiver`."""
        from .dstream.receivers import ReceiverInputDStream
        return ReceiverInputDStream(self, receiver)

    def text_file_stream(self, directory: str) -> DStream:
        """Lines of the text files that appear in ``directory`` after start (each read once)."""
        from .dstream.files import FileInputDStream
        return FileInputDStream(self, directory, kind="text")

    def binary_records_stream(self, directory: str, record_length: int) -> DStream:
        """Fixed-length ``bytes`` records of the files that appear in ``directory`` after start."""
        from .dstream.files import FileInputDStream
        return FileInputDStream(self, directory, kind="binary", record_length=record_length)

    def rate_stream(self, kind: str = "words", records_per_batch: int = 1000, **options: Any) -> DStream:
        """A built-in generated source for demos and benchmarks (no server needed).

        ``kind="words"`` gives lines of Zipf-distributed words, ``"pairs"``
        (int64 key, float64 value) pairs, ``"ints"`` integers; the data of a
        batch depends only on its time and the seed, so runs are repeatable.
        """
        from .dstream.rate import RateInputDStream
        return RateInputDStream(self, kind, records_per_batch, **options)

    def union(self, *dstreams: DStream) -> DStream:
        """Union of several streams, in argument order."""
        if not dstreams:
            raise ValueError("should have at least one DStream to union")
        if len(dstreams) == 1 and isinstance(dstreams[0], (list, tuple)):
            dstreams = tuple(dstreams[0])
        if len(dstreams) == 1:
            return dstreams[0]
        from .dstream.transformed import UnionDStream
        return UnionDStream(self, list(dstreams))

    def transform(self, dstreams: list[DStream], transform_func: Callable) -> DStream:
        """A stream from ``transform_func(list of datasets)`` of several streams per batch."""
        from .dstream.transformed import TransformedDStream
        if not dstreams:
            raise ValueError("transform needs at least one DStream")
        slides = {d.slide_ms for d in dstreams}
        if len(slides) > 1:
            raise ValueError("transform of DStreams with different slide durations")
        two = fn_arity(transform_func) == 2
        return TransformedDStream(self, list(dstreams),
                                  (lambda dss, t: transform_func(_dt(t), dss)) if two
                                  else (lambda dss, t: transform_func(dss)), "transform", user_fn=transform_func)

    # -- configuration -------------------------------------------------------------
    def remember(self, duration: float) -> None:
        """Keep each stream's Datasets for at least ``duration`` seconds (for slice())."""
        self._graph.remember_ms = max(self._graph.remember_ms, to_ms(duration, "remember duration"))

    def checkpoint(self, directory: str) -> None:
        """Set the checkpoint directory (checkpoint writing arrives with recovery support)."""
        self.checkpoint_dir = directory

    def add_streaming_listener(self, listener: Any) -> None:
        """Register a :class:`~runnel.listener.StreamingListener`."""
        self._bus.add(listener)

    def remove_streaming_listener(self, listener: Any) -> None:
        self._bus.remove(listener)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start generating and running batches."""
        with StreamingContext._lock:
            if self._state == ACTIVE:
                return
            if self._state == STOPPED:
                raise RuntimeError("StreamingContext has already been stopped and cannot be restarted")
            if not self._graph.outputs:
                raise ValueError("No output operations registered, so nothing to execute")
            active = StreamingContext._active
            if active is not None and active is not self and active._state == ACTIVE:
                raise RuntimeError("Only one StreamingContext may be started in this process")
            self.context.executor.check_shippable(self._graph.functions)
            now = self.clock.now()
            first = (now // self.batch_ms + 1) * self.batch_ms
            zero = first - self.batch_ms
            self._graph.start(zero)
            for i in self._graph.inputs:
                i.start()
            self._state = ACTIVE
            StreamingContext._active = self
        self._bus.post("onStreamingStarted", StreamingStarted(now))
        self._scheduler.start(first)

    def stop(self, stop_spark_context: bool = True, stop_gracefully: bool = False) -> None:
        """Stop the stream (idempotent).

        With ``stop_gracefully`` every input stops first and all data it
        received is processed before the context stops. The underlying
        Context is stopped too unless ``stop_spark_context`` is False.
        """
        with StreamingContext._lock:
            state = self._state
            self._state = STOPPED
            if StreamingContext._active is self:
                StreamingContext._active = None
        if state == ACTIVE:
            for i in self._graph.inputs:
                i.stop()
            if stop_gracefully:
                self._drain_inputs()
            else:
                pending = [i.name for i in self._graph.inputs if i.has_pending()]
                if pending:
                    log.warning("runnel: stopping without stop_gracefully discards data received but not yet "
                                "processed by %s", ", ".join(pending))
            self._scheduler.stop(wait_for_queue=stop_gracefully)
        if stop_spark_context and not self.context.stopped:
            self.context.stop()
        self._stopped.set()

    def _drain_inputs(self) -> None:
        sched = self._scheduler
        sched.stop_generating()
        t = (sched.generated or self._graph.zero_ms or 0) + self.batch_ms
        rounds = 0
        while any(i.has_pending() for i in self._graph.inputs) and rounds < 10_000:
            sched.generate_now(t)
            t += self.batch_ms
            rounds += 1

    def await_termination(self, timeout: float | None = None) -> None:
        """Wait until the context stops; re-raises a user error from any batch."""
        if timeout is None:
            while not self._stopped.wait(0.1):
                self._raise_error()
        else:
            self._stopped.wait(timeout)
        self._raise_error()

    def await_termination_or_timeout(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds: True if stopped, False if still running."""
        stopped = self._stopped.wait(timeout)
        self._raise_error()
        return stopped

    def _raise_error(self) -> None:
        err = self._scheduler.error
        if err is not None:
            raise err

    # -- driving time (tests and runnel.testing) ------------------------------------------
    def run_batches(self, n: int = 1, timeout: float = 60.0) -> None:
        """With a ManualClock: advance n batch intervals and wait for those batches."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("run_batches needs a StreamingContext created with clock=ManualClock()")
        if self._state != ACTIVE:
            raise RuntimeError(f"run_batches needs an active StreamingContext (state: {self._state})")
        for _ in range(n):
            self.clock.advance(self.batch_ms)
            t = (self.clock.now() // self.batch_ms) * self.batch_ms
            self._scheduler.wait_for_batch(t, timeout)

    # -- class-level ------------------------------------------------------------------
    @classmethod
    def get_active(cls) -> "StreamingContext | None":
        """The active (started, not stopped) context, or None."""
        with cls._lock:
            a = cls._active
            return a if a is not None and a._state == ACTIVE else None

    @classmethod
    def get_active_or_create(cls, checkpoint_path: str | None, setup_func: Callable[[], "StreamingContext"]):
        """The active context, else a new one from ``setup_func()``."""
        active = cls.get_active()
        if active is not None:
            return active
        if checkpoint_path is not None:
            return cls.get_or_create(checkpoint_path, setup_func)
        return setup_func()

    @classmethod
    def get_or_create(cls, checkpoint_path: str, setup_func: Callable[[], "StreamingContext"]):
        """Recover from a checkpoint in ``checkpoint_path`` or call ``setup_func()``.

        Recovery from checkpoints is not implemented yet: this always calls
        ``setup_func`` (and says so if the directory holds checkpoint data).
        """
        import os
        import warnings
        if checkpoint_path and os.path.isdir(checkpoint_path) and any(
                f.startswith("checkpoint-") for f in os.listdir(checkpoint_path)):
            warnings.warn(f"{checkpoint_path} holds checkpoint data, but this runnel version cannot recover "
                          "from checkpoints yet; starting fresh", RuntimeWarning, stacklevel=2)
        ssc = setup_func()
        if not isinstance(ssc, StreamingContext):
            raise TypeError(f"setup function must return a StreamingContext, got {type(ssc).__name__}")
        return ssc

    def __repr__(self) -> str:
        return f"StreamingContext({self.context.master!r}, batch={self.batch_ms} ms, state={self._state})"


def _dt(t: int):
    from .listener import ms_to_datetime
    return ms_to_datetime(t)
