"""Writing checkpoints while a program runs.

The scheduler core (``runnel.scheduler.core``) decides when: its
``Snapshot`` instruction names the time, the zero time and the batches
generated after it but not completed; the checkpointer only carries it out
(:meth:`Checkpointer.take`) and reports ``SnapshotWritten`` /
``SnapshotFailed`` back. The first snapshot ("initial") is written at start
before any batch; the others are taken on the scheduler thread that ran
batch t when it completes — a *snapshot* — the computed tables every stateful stream names
(``checkpoint_tables``: state tables, window tables, window partials or
batches), each input's progress (``progress``), the batches generated but
not completed — and hands it to a writer thread, which writes it
(``files.CheckpointWriter``) while the next batches run. The snapshot holds
the tables' Datasets, so their blocks stay alive until written; blocks are
immutable, so the snapshot is consistent without copying. At most one
snapshot waits: when the disk is slower than the interval, that thread waits
for the writer to take it before handing over the next one (every
checkpoint is written; processing slows to the disk's pace), so memory is
bounded by two snapshots. Only a writer stuck for :data:`HANDOFF_WAIT`
seconds (a hung disk) has its waiting snapshot replaced by the newer one. After a commit
the oldest checkpoints beyond ``keep`` are removed and each input is told
the time of the oldest one kept and the progress that one recorded for it
(``checkpoint_written``): write-ahead log entries a recovery from it would
not replay can go, and nothing any kept checkpoint still needs. Each
commit is announced to the listeners (``onCheckpointWritten``, a
:class:`~runnel.listener.CheckpointInfo`): its bytes, the snapshot's time
on the scheduler thread and the write's time on the writer thread, both measured
with ``perf_counter`` (real time, also under a ManualClock).

Checkpoint times are ``zero + k * interval``. The interval must be a
multiple of the slide of every stateful stream (so each has a table at a
checkpoint time); it is the smallest ``dstream.checkpoint(interval)`` set,
else the conf key ``runnel.streaming.checkpoint.interval`` (seconds), else
the smallest such multiple of at least 10 seconds (Spark's default).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from time import perf_counter

from ..context import conf_flag
from ..dstream.base import to_ms
from ..listener import CheckpointEvent, CheckpointInfo
from ..dstream.stateful import StatefulDStream
from ..scheduler import core
from . import files
from .pickling import dump_graph

log = logging.getLogger("runnel.checkpoint")

DEFAULT_INTERVAL_MS = 10_000
DEFAULT_KEEP = 3
HANDOFF_WAIT = 60.0


@dataclass
class Snapshot:
    t: int
    zero: int
    pending: list[int]
    inputs: dict[str, dict]
    streams: dict[str, dict] = field(default_factory=dict)   # name -> {"signature", "tables": {label: (t, ds)}}
    seconds: float | None = None     # taking it on the scheduler thread (None: the one written at start)


class Checkpointer:
    """Snapshots when the scheduler core says so (on the thread that carries out its instructions),
    writes on its own thread.

    Parameters
    ----------
    directory : str
    graph : DStreamGraph
        The streams whose tables and progress are checkpointed.
    context : Context
        Its conf, block store, master and app name.
    clock_kind : str
        "manual" or "system" (a recovered program driven by hand stays so).
    report : callable
        Takes the core's ``SnapshotWritten`` / ``SnapshotFailed`` events.
    listeners : ListenerBus, optional
        Gets ``onCheckpointWritten`` (a :class:`~runnel.listener.CheckpointInfo`: bytes, snapshot and
        write durations) after each commit, on the thread that wrote it.
    """

    def __init__(self, directory: str, graph, context, clock_kind: str, report=None, listeners=None):
        self.directory = directory
        self.graph = graph
        self.context = context
        self.clock_kind = clock_kind
        self.report = report or (lambda event: None)
        self.listeners = listeners
        conf = context.conf
        self.keep = max(1, int(conf.get("runnel.streaming.checkpoint.keep", DEFAULT_KEEP)))
        self.store_graph = conf_flag(conf, "runnel.streaming.checkpoint.graph", True)
        self.interval_ms: int | None = None
        self.graph_name: str | None = None
        self.graph_file: dict | None = None
        self._graph_bytes: bytes | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._waiting: Snapshot | None = None     # the next snapshot to write
        self._writing = False
        self._closing = False

    # -- before start ----------------------------------------------------------------------
    def prepare(self) -> None:
        """At ``start()``, before inputs start: the interval and the stored graph (fail fast)."""
        self.interval_ms = self._interval()
        try:                                   # an unusable directory fails start(), not the first checkpoint
            files.prepare_directory(self.directory)
        except OSError as e:
            raise files.CheckpointError(f"cannot write checkpoints to {self.directory}: {e}") from e
        if self.store_graph:
            self._graph_bytes = dump_graph(self.graph)

    def _interval(self) -> int:
        graph, unit = self.graph, self.unit()
        asked = [s.checkpoint_ms for s in graph.streams if s.checkpoint_ms]
        conf = self.context.conf.get("runnel.streaming.checkpoint.interval")
        if conf is not None:
            asked.append(to_ms(float(conf), "runnel.streaming.checkpoint.interval"))
        if not asked:
            return unit * max(1, math.ceil(DEFAULT_INTERVAL_MS / unit))
        interval = min(asked)
        if interval % unit:
            raise ValueError(f"the checkpoint interval ({interval} ms) must be a multiple of the batch interval "
                             f"and of every window's and state's slide ({unit} ms)")
        return interval

    def take(self, ins: "core.Snapshot") -> None:
        """Carry out the core's Snapshot instruction.

        "initial" (at start): store the graph and write a first checkpoint now — at zero time on a
        fresh start (state empty, inputs untouched: a crash before the first interval recovers too),
        at the checkpoint's time on a recovered one (the restored state and progress, now under this
        program's graph and names: what a resume discarded or renamed is gone from it, and a later
        getOrCreate loads this program) — then start the writer thread. Otherwise hand the snapshot
        to the writer thread.
        """
        if ins.kind == "initial":
            if self._graph_bytes is not None:
                self.graph_name, self.graph_file = files.write_graph(self.directory, self._graph_bytes)
                self._graph_bytes = None
            self._write(self._snapshot(ins.time, ins.zero, list(ins.pending)))
            self._thread = threading.Thread(target=self._loop, name="runnel-checkpoint-writer", daemon=True)
            self._thread.start()
            return
        if self._closing:                   # stop() ran (say, from an output of this very batch)
            return
        try:
            started = perf_counter()
            snap = self._snapshot(ins.time, ins.zero, list(ins.pending))
            snap.seconds = perf_counter() - started
        except Exception as e:  # a failed batch may leave a table uncomputable: try the next time
            log.warning("runnel: no checkpoint at %s ms: %s: %s", ins.time, type(e).__name__, e)
            e.__cause__ = e.__context__ = None       # kept by the core: no frames holding tables
            self.report(core.SnapshotFailed(ins.time, e.with_traceback(None)))
            return
        with self._cond:
            if not self._cond.wait_for(lambda: self._waiting is None, HANDOFF_WAIT):
                log.warning("runnel: the checkpoint writer took no snapshot for %s s; the checkpoint at %s ms "
                            "is replaced by the one at %s ms", HANDOFF_WAIT, self._waiting.t, ins.time)
            self._waiting = snap
            self._cond.notify_all()

    def after_batch(self, t: int, final: bool = False) -> None:
        """Snapshot batch t now, as a graceful stop's last checkpoint does (tests use it to force one)."""
        self.take(core.Snapshot(t, self.graph.zero_ms, (), "final" if final else "periodic"))

    def unit(self) -> int:
        """The grid of checkpointable times: the lcm of the batch interval and every stateful slide."""
        unit = self.graph.batch_ms
        for s in self.graph.streams:
            if isinstance(s, StatefulDStream):
                unit = math.lcm(unit, s.slide_ms)
        return unit

    def _snapshot(self, t: int, zero: int, pending: list[int]) -> Snapshot:
        graph = self.graph
        snap = Snapshot(t, zero, pending, {i.name: i.progress(t) for i in graph.inputs})
        for s in graph.streams:
            if isinstance(s, StatefulDStream):
                tables = s.checkpoint_tables(t) if t > zero else {}
                for _, ds in tables.values():
                    ds.cache().materialize()     # computed once, held by the snapshot until written
                snap.streams[s.name] = {"signature": s.signature(), "tables": tables}
        return snap

    # -- the writer thread ----------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting is not None or self._closing)
                if self._waiting is None:
                    return
                snap, self._waiting, self._writing = self._waiting, None, True
            try:
                self._write(snap)
            except Exception as e:  # keep running: the next checkpoint may succeed (disk freed)
                # without tracebacks: their frames would keep the snapshot's tables alive
                e.__cause__ = e.__context__ = None
                self.report(core.SnapshotFailed(snap.t, e.with_traceback(None)))
                log.error("runnel: writing the checkpoint at %s ms to %s failed: %s: %s", snap.t,
                          self.directory, type(e).__name__, e)
            finally:
                del snap                      # let its tables go before waiting for the next
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()

    def _write(self, snap: Snapshot) -> None:
        ctx = self.context
        store = ctx.executor.store
        started = perf_counter()
        w = files.CheckpointWriter(self.directory, snap.t)
        try:
            streams = {}
            for name, entry in snap.streams.items():
                tables = {}
                for label, (t, ds) in entry["tables"].items():
                    refs, owner = ds.materialize()
                    try:
                        parts = [w.add_table(store.get(r)) for r in refs]
                    finally:
                        if owner is not None:
                            owner.release()
                    tables[label] = [t, parts]
                streams[name] = {"signature": entry["signature"], "tables": tables}
            path = w.commit({
                "zero": snap.zero, "batch_ms": self.graph.batch_ms, "pending": snap.pending,
                "master": ctx.master, "app_name": ctx.app_name, "context": type(ctx).__name__,
                "conf": {str(k): str(v) for k, v in ctx.conf.items()},
                "graph": self.graph_name, "graph_file": self.graph_file, "clock": self.clock_kind,
                "streams": streams, "inputs": snap.inputs,
            })
        except BaseException:
            w.abort()
            raise
        took = perf_counter() - started
        log.info("runnel: checkpoint %s written (%d bytes in %.3f s)", path, w.bytes, took)
        self.report(core.SnapshotWritten(snap.t))
        if self.listeners is not None:
            self.listeners.post("onCheckpointWritten", CheckpointEvent(CheckpointInfo(
                snap.t, took * 1000.0, w.bytes, path, None if snap.seconds is None else snap.seconds * 1000.0)))
        kept = files.clean(self.directory, self.keep, self.graph_name)
        oldest, body = kept[-1]
        if body is not None:        # unreadable: keep every input's data (a recovery may still need it)
            for i in self.graph.inputs:
                i.checkpoint_written(oldest, body.get("inputs", {}).get(i.name))

    # -- stopping -------------------------------------------------------------------------------
    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every snapshot taken so far is written; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting is None and not self._writing, timeout)

    def stop(self, timeout: float = 60.0) -> None:
        if self._thread is None:
            return
        if not self.flush(timeout):
            log.warning("runnel: stopped before the checkpoint being written to %s was complete", self.directory)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._thread = None
