"""Receivers on Dask workers: ``ssc.receiver_stream(receiver, on_worker=True)`` on a ``dask://`` master.

As Spark runs receivers on executors, the receiver runs inside a Dask worker
process and the data it stores stays there: a batch's blocks are Dask data
on that worker, which the batch's tasks read as ordinary dependencies; the
driver only learns their sizes.

How (driver / worker)::

    start    driver: pickles the receiver once, submits host() pinned to worker
             owner(stream_id) (strictly: the receiver's buffer is there)
             worker: host() secedes from the worker's thread pool (a long-running
             task), runs the receiver under the same supervisor as in the driver
             (restarts, backoff, on_stop) with its own BlockGenerator; listener
             events (onReceiverStarted ...) are sent to the driver as Dask events
    batch t  driver: compute(t) runs take() on that worker (DaskExecutor.run_on)
             worker: take() swaps the generator's blocks out (exactly once, as in
             the driver), merges small ones, keeps them as the task's result;
             the driver registers them as blocks of the batch's Dataset
    stop     driver: runs stop() on the worker (on_stop, then the generator
             closes); a graceful stop's later batches take what is left

Not built (each raises or is said at start, never silently dropped):

* the receiver write-ahead log: ``spark.streaming.receiver.writeAheadLog.enable``
  with ``on_worker=True`` raises at start. (Design: the block log written by the
  hosting worker on the shared checkpoint path, the allocation log by the
  driver from the (after, through] that take() returns; replays and lineage of
  a received block read the log on a worker. Needs a read-only open of a log
  another process appends to, which :mod:`runnel.storage.wal` does not have.)
* backpressure (``spark.streaming.backpressure.enabled``) raises at start;
  ``spark.streaming.receiver.maxRate`` is honoured (on the worker).
* a lost hosting worker loses the data it buffered and the blocks batches
  took from it (they have no lineage: reading one raises ``BlockLost`` naming
  the batch), and the receiver is not restarted on another worker.
* ``runnel.streaming.receiver.maxQueuedBytes`` is counted on the worker and
  released when a later batch takes data (one batch late).
"""

from __future__ import annotations

import pickle
import threading
import types
import uuid

import cloudpickle

from ..batch import Batch
from ..dataset import BlockOwner, Dataset, OwnedBlocks
from ..listener import ms_to_datetime
from .inputs import InputDStream
from .ratecontrol import RateLimiter
from .receivers import BlockGenerator, ReceiverInputDStream, _Supervisor, merge_small

__all__ = ["WorkerReceiverInputDStream", "host", "take", "stop"]

#: Seconds between a hosted receiver's looks at whether the driver still wants it.
_LOOK = 1.0


class WorkerReceiverInputDStream(ReceiverInputDStream):
    """A :class:`ReceiverInputDStream` whose receiver runs on a Dask worker (see the module docstring)."""

    kind = "worker_receiver_stream"
    _runtime = ReceiverInputDStream._runtime + ("_rid", "_worker", "_host", "_released", "_pending", "_received",
                                                "_events")

    def __init__(self, ssc, receiver, **options):
        if not hasattr(ssc.context.executor, "run_on"):
            raise ValueError(f"receiver_stream(..., on_worker=True) needs a dask:// master, "
                             f"not {ssc.context.master!r}")
        super().__init__(ssc, receiver, **options)

    def _init_runtime(self) -> None:
        super()._init_runtime()
        self._rid = uuid.uuid4().hex
        self._worker: str | None = None
        self._host = None
        self._released: int | None = None
        self._pending = False
        self._received = 0
        self._events = f"runnel-receiver-{self._rid}"

    @property
    def num_received(self) -> int:
        """Records the receiver stored, as of the last batch (counted on its worker)."""
        return self._received

    @property
    def worker(self) -> str | None:
        """The address of the worker the receiver runs on (None before start)."""
        return self._worker

    def validate(self) -> None:
        if self.wal_enabled:
            raise ValueError(f"{self.name}: the receiver write-ahead log is not built for receivers on Dask "
                             "workers; use receiver_stream(receiver) (the receiver in the driver) to log")
        if self.rates.backpressure:
            raise ValueError(f"{self.name}: backpressure is not built for receivers on Dask workers")

    def start(self) -> None:
        ex = self.ssc.context.executor
        self._worker = ex.owner(self.stream_id)
        client = ex.client
        client.subscribe_topic(self._events, self._on_event)
        blob = cloudpickle.dumps(self.receiver)
        self._host = client.submit(host, self._rid, blob, self.name, self.stream_id, self.block_records,
                                   self.rates.start_rate(), self._events, self.ssc.checkpoint_dir,
                                   key=f"receiver-{self.name}-{self._rid}", pure=False, workers=[self._worker],
                                   allow_other_workers=False)

    def _on_event(self, event) -> None:
        method, info = pickle.loads(event[1])
        self.ssc.listener_bus.post(method, info)

    def stop(self) -> None:
        if self._host is None:
            return
        ex = self.ssc.context.executor
        try:
            _, (pending, received) = ex.run_on(self._worker, stop, (self._rid,), f"stopping the receiver of {self.name}")
            self._pending, self._received = pending, received
        finally:
            self._host = None
            self._stopped = True
            try:
                ex.client.unsubscribe_topic(self._events)
            except Exception:  # noqa: BLE001 — the client may be closing; events no longer matter
                pass

    def has_pending(self) -> bool:
        return self._pending

    def forget_before(self, t: int) -> None:
        InputDStream.forget_before(self, t)
        self._released = t             # sent with the next take: the worker's bound on queued data

    def compute(self, t: int):
        ex = self.ssc.context.executor
        ctx = self.ssc.context
        if self._worker is None or (self._stopped and not self._pending):
            return self._counted(t, ctx.empty_dataset(self.name))
        refs, (pending, received) = ex.run_on(self._worker, take, (self._rid, t, self._released),
                                              f"receiving {self.name} at {ms_to_datetime(t)}")
        self._received = received
        if self._stopped:
            self._pending = pending
        if not refs:
            return self._counted(t, ctx.empty_dataset(self.name))
        return self._counted(t, Dataset(ctx, OwnedBlocks(BlockOwner(ex.store, refs)), self.name))


# -- the worker side -------------------------------------------------------------------------------
_hosted: dict[str, tuple] = {}          # receiver id -> (supervisor, generator, done event)
_hosted_lock = threading.Lock()


class _Bus:
    """Posts the supervisor's listener events to the driver (a Dask event on the stream's topic)."""

    def __init__(self, worker, topic: str):
        self.worker, self.topic = worker, topic

    def post(self, method: str, event) -> None:
        self.worker.log_event(self.topic, pickle.dumps((method, event), pickle.HIGHEST_PROTOCOL))


def host(rid: str, blob: bytes, name: str, stream_id: int, block_records: int, rate, topic: str,
         checkpoint_dir: str | None) -> int:
    """Run a receiver on this worker until :func:`stop` (a long-running Dask task); the records it stored."""
    from distributed import get_worker, secede
    worker = get_worker()
    key = worker.get_current_task()
    receiver = cloudpickle.loads(blob)
    generator = BlockGenerator(name, block_records, limiter=RateLimiter(rate))
    stream = types.SimpleNamespace(name=name, stream_id=stream_id, receiver=receiver, generator=generator,
                                   wal_enabled=False,
                                   ssc=types.SimpleNamespace(listener_bus=_Bus(worker, topic),
                                                             checkpoint_dir=checkpoint_dir))
    supervisor = _Supervisor(stream)
    receiver.__dict__["_runnel_supervisor"] = supervisor
    done = threading.Event()
    with _hosted_lock:
        _hosted[rid] = (supervisor, generator, done)
    secede()                                   # no longer holds one of the worker's task threads
    supervisor.start()
    while not done.wait(_LOOK):
        if key not in worker.state.tasks:      # the driver released it (gone without stopping it)
            supervisor.stop("The driver went away")
            with _hosted_lock:
                _hosted.pop(rid, None)
            break
    return generator.received


def _hosted_here(rid: str) -> tuple:
    with _hosted_lock:
        got = _hosted.get(rid)
    if got is None:
        raise RuntimeError(f"receiver {rid} is not running on this worker (was its worker restarted?)")
    return got


def take(rid: str, t: int, released: int | None):
    """Batch t's blocks of receiver ``rid`` (everything stored since the last take), kept on this worker."""
    from ..executors.dask_worker import Result
    _, generator, done = _hosted_here(rid)
    if released is not None:
        generator.release(released)
    blocks, _ = generator.take()
    blocks = [b if isinstance(b, Batch) else Batch.from_records(b) for b in blocks]
    parts = merge_small([b for b in blocks if len(b)], generator.block_records)
    generator.account(t, sum(b.nbytes() for b in parts))
    pending = generator.pending()
    if done.is_set() and not pending:
        with _hosted_lock:
            _hosted.pop(rid, None)
    return Result(parts, None, (pending, generator.received))


def stop(rid: str):
    """Stop receiver ``rid`` for good (its ``on_stop`` runs before this returns); what it left is still taken."""
    from ..executors.dask_worker import Result
    supervisor, generator, done = _hosted_here(rid)
    supervisor.stop("Stopped by the StreamingContext")
    done.set()
    pending = generator.pending()
    if not pending:
        with _hosted_lock:
            _hosted.pop(rid, None)
    return Result([], None, (pending, generator.received))
