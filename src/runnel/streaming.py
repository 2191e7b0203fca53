"""StreamingContext: cuts live data into batches and runs the DStream graph.

Lifecycle (PySpark's rules): INITIALIZED -> start() -> ACTIVE -> stop() ->
STOPPED. ``start()`` without an output operation raises; streams cannot be
added after start; a second ``start()`` of an active context does nothing; a
stopped context cannot be restarted; only one context is active at a time.
A user error fails that batch's output only; it is remembered and re-raised
by every later ``await_termination`` (which returns as soon as a batch
fails), by ``run_batches`` for the batches it ran, and once by ``stop()`` if
the program never saw it.

The scheduling itself is ``runnel.scheduler.core`` (events in, instructions
out); ``start()`` and ``stop()`` feed it events and carry out what it says
through ``runnel.scheduler.scheduler.JobScheduler``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable

from .checkpoint import files
from .checkpoint.checkpointer import Checkpointer
from .checkpoint.recovery import Recovery, attach, recover
from .clock import Clock, ManualClock, SystemClock, clock_from_conf
from .context import Context, conf_flag
from .dstream.base import DStream, fn_arity, to_ms
from .dstream.files import FileInputDStream
from .dstream.inputs import QueueInputDStream
from .dstream.rate import RateInputDStream
from .dstream.receivers import ReceiverInputDStream, SocketReceiver
from .dstream.transformed import TransformedDStream, UnionDStream
from .graph import DStreamGraph
from .listener import ListenerBus, ms_to_datetime
from .scheduler.scheduler import JobScheduler

log = logging.getLogger("runnel.streaming")
#: conf key: run_batches runs the batches on the calling thread (default true; see run_batches)
RUN_BATCHES_INLINE = "runnel.streaming.runBatchesInline"
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
        self._bus = ListenerBus()
        self._adopt(DStreamGraph(self.batch_ms))
        self._state = INITIALIZED
        self._stopped = threading.Event()
        self.checkpoint_dir: str | None = None
        self._checkpointer: Checkpointer | None = None   # from start(), when checkpointing
        self._recovery: Recovery | None = None           # what start() restores (get_or_create, resume)
        self._previous_sigterm = None
        self._ui = None                      # runnel.ui.UI (status listener, web UI, progress), from start()

    def _adopt(self, graph: DStreamGraph) -> None:
        """Run ``graph`` (a new one, or a recovered one whose streams are bound to this context)."""
        graph.attach(self)
        self._graph = graph
        backlog = int(self.context.conf.get("runnel.streaming.backlogWarning.batches", 10))
        self._scheduler = JobScheduler(graph, self.clock, self._bus, backlog, executor=self.context.executor)

    # -- properties ----------------------------------------------------------
    @property
    def spark_context(self) -> Context:
        return self.context

    @property
    def state(self) -> str:
        return self._state

    @property
    def graph(self) -> DStreamGraph:
        """The streams of this program (what streams, scheduler and checkpointer share)."""
        return self._graph

    @property
    def listener_bus(self) -> ListenerBus:
        """Where streaming listeners' events are posted (receivers post theirs here too)."""
        return self._bus

    @property
    def batch_duration(self) -> float:
        return self.batch_ms / 1000.0

    @property
    def ui_url(self) -> str | None:
        """The streaming web UI's address (``spark.ui.*`` conf, see :mod:`runnel.ui`), None when not served."""
        return self._ui.url if self._ui is not None else None

    @property
    def frame(self):
        """Streaming DataFrames straight from a source: ``ssc.frame.queue/rate/socket/files`` (runnel.frame)."""
        from .frame.source import FrameSources
        return FrameSources(self)

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
        return ReceiverInputDStream(self, SocketReceiver(hostname, int(port)))

    def receiver_stream(self, receiver: Any, on_worker: bool = False) -> DStream:
        """A stream fed by a user :class:`~runnel.dstream.receivers.Receiver`.

        ``on_worker=True`` (a ``dask://`` master): the receiver runs on a Dask
        worker and its blocks stay there (:mod:`runnel.dstream.worker_receivers`,
        which says what that does not support yet); else it runs in the driver.
        """
        if on_worker:
            from .dstream.worker_receivers import WorkerReceiverInputDStream
            return WorkerReceiverInputDStream(self, receiver)
        return ReceiverInputDStream(self, receiver)

    def text_file_stream(self, directory: str) -> DStream:
        """Lines of the text files that appear in ``directory`` after start (each read once)."""
        return FileInputDStream(self, directory, kind="text")

    def binary_records_stream(self, directory: str, record_length: int) -> DStream:
        """Fixed-length ``bytes`` records of the files that appear in ``directory`` after start."""
        return FileInputDStream(self, directory, kind="binary", record_length=record_length)

    def rate_stream(self, kind: str = "words", records_per_batch: int = 1000, **options: Any) -> DStream:
        """A built-in generated source for demos and benchmarks (no server needed).

        ``kind="words"`` gives lines of Zipf-distributed words, ``"pairs"``
        (int64 key, float64 value) pairs, ``"ints"`` integers; the data of a
        batch depends only on its time and the seed, so runs are repeatable.
        """
        return RateInputDStream(self, kind, records_per_batch, **options)

    def union(self, *dstreams: DStream) -> DStream:
        """Union of several streams, in argument order."""
        if not dstreams:
            raise ValueError("should have at least one DStream to union")
        if len(dstreams) == 1 and isinstance(dstreams[0], (list, tuple)):
            dstreams = tuple(dstreams[0])
        if len(dstreams) == 1:
            return dstreams[0]
        return UnionDStream(self, list(dstreams))

    def transform(self, dstreams: list[DStream], transform_func: Callable) -> DStream:
        """A stream from ``transform_func(list of datasets)`` of several streams per batch."""
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
        """Checkpoint into ``directory``: state, window tables and input progress, periodically.

        Checkpoints are written every ``interval`` (the smallest
        ``dstream.checkpoint(interval)``, else the conf key
        ``runnel.streaming.checkpoint.interval`` in seconds, else the first
        multiple of every stateful slide that is at least 10 s), atomically
        and with checksums; the last ``runnel.streaming.checkpoint.keep``
        (3) are kept. :meth:`get_or_create` and :meth:`resume` recover from
        them. See ``runnel.checkpoint``.
        """
        import os
        if self._state != INITIALIZED:
            raise RuntimeError("the checkpoint directory must be set before the StreamingContext starts")
        path = os.path.abspath(os.fspath(directory))
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)    # Spark creates it here too
        except OSError:
            pass        # start() fails with a CheckpointError naming the directory and the reason
        self.checkpoint_dir = path

    def add_streaming_listener(self, listener: Any) -> None:
        """Register a :class:`~runnel.listener.StreamingListener`."""
        self._bus.add(listener)

    def remove_streaming_listener(self, listener: Any) -> None:
        self._bus.remove(listener)

    # -- lifecycle ---------------------------------------------------------------------
    # start() and stop() only carry out the scheduler core's instructions (runnel.scheduler.core):
    # StartGraph, Restore (self._restore), StartInputs (self._start_inputs), the first checkpoint, ...
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
            for i in self._graph.inputs:
                i.validate()
            sched = self._scheduler
            interval = unit = None
            if self.checkpoint_dir is not None:
                self._checkpointer = Checkpointer(self.checkpoint_dir, self._graph, self.context,
                                                  "manual" if isinstance(self.clock, ManualClock) else "system",
                                                  sched.feed, self._bus)
                self._checkpointer.prepare()         # fails fast on a graph it cannot store
                interval, unit = self._checkpointer.interval_ms, self._checkpointer.unit()
                sched.checkpointer = self._checkpointer
            rec = self._recovery
            if rec is not None:
                if isinstance(self.clock, ManualClock) and self.clock.now() < rec.time:
                    self.clock.set_time(rec.time)
                sched.recovered(rec.time, rec.zero)
            if self._ui is None:                 # before inputs start: the UI sees every receiver event
                from .ui import attach_ui
                self._ui = attach_ui(self)
            sched.on_restore, sched.on_start_inputs = self._restore, self._start_inputs
            self._started_inputs: list = []
            self._graph.sealed = "starting a context"
            self._state = ACTIVE
            try:
                sched.start(interval, unit)
            except BaseException:          # leave nothing running: stop() of an unstarted context is a no-op
                self._state = INITIALIZED
                self._graph.sealed = None
                for i in reversed(self._started_inputs):
                    try:
                        i.stop()
                    except Exception:  # noqa: BLE001 — the start error is the one to report
                        log.exception("runnel: stopping %s after a failed start", i.name)
                raise
            StreamingContext._active = self
        self._install_sigterm()
        self._ui.start()

    def _restore(self, time: int) -> None:
        rec = self._recovery
        self._graph.restored_ms = time
        for stream, tables in rec.tables.items():
            stream.restore_tables(tables)
        for stream, progress in rec.inputs.items():
            stream.restore_progress(progress, time)
        behind = max(0, (self.clock.now() - time) // self.batch_ms)
        (log.warning if behind > 1000 else log.info)(
            "runnel: recovered from %s; the %d batches after %s ms run again", rec.path, behind, time)

    def _start_inputs(self) -> None:
        for i in self._graph.inputs:
            i.start()
            self._started_inputs.append(i)

    def stop(self, stop_spark_context: bool = True, stop_gracefully: bool = False) -> None:
        """Stop the stream (idempotent).

        With ``stop_gracefully`` every input stops first and all data it
        received is processed before the context stops. The underlying
        Context is stopped too unless ``stop_spark_context`` is False.

        A batch that failed and whose error the program never saw (no
        ``await_termination*`` or ``run_batches`` raised it) makes ``stop()``
        raise that error once everything is stopped, so a script cannot
        pass silently; PySpark's ``stop()`` does not raise, but there the
        error reaches ``awaitTermination``, which scripts call.
        """
        self._stop(stop_spark_context, stop_gracefully)
        if not self._scheduler.on_own_thread():      # not from a job, transform or listener
            err = self._scheduler.take_error(only_unreported=True)
            if err is not None:
                raise err

    def _stop(self, stop_spark_context: bool = True, stop_gracefully: bool = False) -> None:
        with StreamingContext._lock:
            state = self._state
            self._state = STOPPED
            self._graph.sealed = "stopping a context"
            if StreamingContext._active is self:
                StreamingContext._active = None
        if state == ACTIVE:
            self._scheduler.stop(graceful=stop_gracefully)
            self._restore_sigterm()
            self._ui.stop()
        if stop_spark_context and not self.context.stopped:
            self.context.stop()
        self._stopped.set()
        self._scheduler.wake()

    # SIGTERM (a service manager stopping the job) stops gracefully: received data is processed,
    # the last state checkpointed. Only from the main thread, and never over a handler the program set.
    def _install_sigterm(self) -> None:
        import signal
        if (not conf_flag(self.context.conf, "spark.streaming.stopGracefullyOnShutdown", True)
                or threading.current_thread() is not threading.main_thread()):
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_sigterm(signum, frame):
            # runs on the main thread: put the previous handler back first, so a second SIGTERM is not
            # swallowed (the message below tells whoever sent the first that it was taken)
            self._restore_sigterm()
            log.warning("runnel: SIGTERM received; stopping gracefully")
            threading.Thread(target=self._stop, kwargs={"stop_gracefully": True}, name="runnel-sigterm-stop",
                             daemon=True).start()

        self._previous_sigterm = signal.signal(signal.SIGTERM, on_sigterm)

    def _restore_sigterm(self) -> None:
        import signal
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def await_termination(self, timeout: float | None = None) -> None:
        """Wait until the context stops, or a batch fails: then re-raise its error (every call, as
        PySpark does, even after ``stop()``). ``timeout`` in seconds (None: no limit)."""
        self._scheduler.wait_for_stop_or_error(timeout, self._stopped)
        self._raise_error()

    def await_termination_or_timeout(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds: True if stopped, False if still running. Returns as soon as a
        batch fails, raising its error (as every later call does)."""
        self._scheduler.wait_for_stop_or_error(timeout, self._stopped)
        self._raise_error()
        return self._stopped.is_set()

    def _raise_error(self) -> None:
        err = self._scheduler.take_error()
        if err is not None:
            raise err

    # -- driving time (tests and runnel.testing) ------------------------------------------
    def run_batches(self, n: int = 1, timeout: float = 60.0) -> None:
        """With a ManualClock: advance n batch intervals and wait for those batches.

        The calling thread generates and runs the batches itself when the
        scheduler's threads are idle (no thread hand-off per batch); a batch
        another thread runs is waited for at most ``timeout`` seconds. A
        Ctrl-C stops after the running batch (a second one at once). With
        the conf key ``runnel.streaming.runBatchesInline`` false the
        scheduler's threads run them and this thread only waits (on a machine
        whose cores are all busy, threads that sleep and wake each batch get
        more than a fair share of a core; one thread running batches back to
        back gets its fair share).
        Raises the error of the first of these batches that failed, after all n ran (a failed batch
        does not stop later ones, as in PySpark).
        """
        if not isinstance(self.clock, ManualClock):
            raise TypeError("run_batches needs a StreamingContext created with clock=ManualClock()")
        if self._state != ACTIVE:
            raise RuntimeError(f"run_batches needs an active StreamingContext (state: {self._state})")

        def advance() -> int:
            self.clock.advance(self.batch_ms)
            return (self.clock.now() // self.batch_ms) * self.batch_ms

        inline = conf_flag(self.context.conf, RUN_BATCHES_INLINE, True)
        times = self._scheduler.drive(n, advance, timeout, inline)
        err = self._scheduler.batch_error(times)
        if err is not None:
            raise err

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
    def get_or_create(cls, checkpoint_path: str, setup_func: Callable[[], "StreamingContext"], *,
                      clock: Clock | None = None) -> "StreamingContext":
        """PySpark's getOrCreate: recover from the newest usable checkpoint in ``checkpoint_path``
        *without calling* ``setup_func``, or call it when there is none and checkpoint the
        context it returns to ``checkpoint_path``.

        The recovered program is the one stored at its start (its functions
        as they were then), with its state, window tables and input
        progress; batches after the checkpoint run again when it starts. An
        active Context is reused. A checkpoint that is corrupt or truncated
        is skipped with a warning naming the file, and the one before used.
        To carry state into a *changed* program use :meth:`resume`.
        ``clock`` (tests) is the recovered context's clock; a
        ``spark.streaming.clock`` conf setting gives a ManualClock too.
        """
        import os
        stored = recover(checkpoint_path, clock)
        if stored is None:
            ssc = _checked_setup(setup_func)
            if ssc.state == INITIALIZED:
                ssc.checkpoint(checkpoint_path)      # as PySpark: the new context checkpoints to the path
            return ssc
        ssc = cls(stored.context, stored.batch_ms / 1000, clock=stored.clock)
        ssc._adopt(stored.graph)
        ssc.checkpoint_dir = os.path.abspath(checkpoint_path)
        # the stored graph: the very same names
        ssc._recovery = attach(stored.graph, ssc.context, stored.loaded, (), warn_generated=False)
        return ssc

    @classmethod
    def resume(cls, checkpoint_path: str, setup_func: Callable[[], "StreamingContext"], *,
               discard_state: Iterable[str] | bool = ()) -> "StreamingContext":
        """runnel's upgrade-safe recovery: always call ``setup_func`` (the program as it is now) and
        re-attach the newest usable checkpoint's state and input progress to its streams by name.

        Functions, parallelism and unrelated operators may change; stateful
        operators are matched by their stable names (set them with
        ``.named("...")`` so that adding an operator elsewhere does not
        renumber them). Checkpointed state whose operator is gone or no
        longer fits is an error unless its name is in ``discard_state``
        (``True`` discards all such state). Without a checkpoint this is
        just ``setup_func()`` with ``checkpoint_path`` as checkpoint directory.
        """
        import os

        ssc = _checked_setup(setup_func)
        path = os.path.abspath(os.fspath(checkpoint_path))
        if ssc.checkpoint_dir is None:
            ssc.checkpoint(path)
        elif ssc.checkpoint_dir != path:
            raise ValueError(f"resume({checkpoint_path!r}): the setup function set another checkpoint directory, "
                             f"{ssc.checkpoint_dir!r}")
        loaded = files.load_newest(path)
        if loaded is not None:
            ssc._recovery = attach(ssc._graph, ssc.context, loaded,
                                   discard_state if discard_state is True else set(discard_state))
        return ssc

    def __reduce__(self):
        raise TypeError("It appears that you are attempting to reference the StreamingContext from a function "
                        "that is sent to workers or stored in a checkpoint; it can only be used on the driver "
                        "while defining the program. Inside foreach_rdd/transform use the Dataset's own context, rdd.ctx.")

    def _repr_html_(self) -> str:
        from .ui.pages import notebook_html
        ui = self._ui
        return notebook_html(self._state, self.context.app_name, self.batch_ms,
                             ui.status if ui is not None else None, self.ui_url)

    def __repr__(self) -> str:
        return f"StreamingContext({self.context.master!r}, batch={self.batch_ms} ms, state={self._state})"


def _checked_setup(setup_func: Callable[[], StreamingContext]) -> StreamingContext:
    ssc = setup_func()
    if not isinstance(ssc, StreamingContext):
        raise TypeError(f"setup function must return a StreamingContext, got {type(ssc).__name__}")
    return ssc


def _dt(t: int):
    return ms_to_datetime(t)
