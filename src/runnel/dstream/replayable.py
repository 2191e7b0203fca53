"""Replayable sources: batches defined by offset ranges, re-read exactly on recovery.

A :class:`ReplayableSource` is a log that can be read again: named
partitions of numbered records (Kafka's topic partitions; Spark's Python
streaming data sources have the same shape). It answers four questions —
which partitions there are and where each ends now (``latest_offsets``),
where reading starts (``initial_offsets``, ``earliest_offsets`` for a
partition that appears later), the records of a range (``read``) — and may
be told what is done (``commit``). :class:`ReplayableInputDStream` turns it
into a stream: batch t reads, per partition, the records from where batch
t-1 stopped up to the latest offset, so batch t *is* its offset ranges::

    batch 1000: p0 [0, 40)   p1 [0, 38)     one Dataset partition per source partition,
    batch 2000: p0 [40, 90)  p1 [38, 38)    in the order of the source's partitions
    batch 3000: p0 [90, 95)  p1 [38, 51)  p2 [0, 7)     (p2 appeared: read from its earliest offset)

No write-ahead log of the data is needed: a recovery re-reads the very
same records from the source. What must survive a crash is only the ranges:

* the checkpoint at t records the offsets after batch t (``progress``);
* every batch's ranges are appended durably to a small log under
  ``<checkpoint dir>/sources/<stream name>/`` *after* the read and before
  the batch runs. A batch that ran after the newest checkpoint may have
  written its outputs before the crash; its ranges come back from this log,
  so its re-run reads the same records and an idempotent sink
  (``save_to_kafka``) recognises them. Batches in that span without an
  entry read nothing (they had nothing); later batches continue from the
  last range. ``checkpoint_written`` drops entries no kept checkpoint needs.

Rate: ``max_rate_per_partition`` (records/s) caps each range at
``rate x batch interval`` records (at least 1). With backpressure
(``spark.streaming.backpressure.enabled``) the PID estimator of
:mod:`~runnel.dstream.ratecontrol` sets a rate for the whole stream after
every batch, shared among the partitions in proportion to their lag (Spark's
direct Kafka stream does the same), never above the per-partition cap.

Commit: with ``commit=True`` the source's ``commit(offsets)`` is called
with the offsets after a batch once that batch's outputs all finished
(a batch that failed commits nothing), in batch order.

State of :class:`ReplayableInputDStream` (``compute`` runs on the scheduler
thread generating a batch, ``progress`` and the commit listener on the one
that ran an earlier batch;
``_lock`` guards what both read; ``_source_lock`` keeps a commit and ``stop``'s close of the
source apart — a batch finishing after ``stop`` commits, then closes the source again):

    position   partition -> offset the next batch starts at              compute, restore_progress
    ranges     batch time -> its ranges, until the batch is forgotten    compute (memoised Datasets
                                                                          hand them out)
    ends       batch time -> offsets after it, until checkpointed        compute; progress reads
    floor      offsets after the newest batch already checkpointed       checkpoint_written
    logged     batch time -> its entry in the range log                  compute, restore_progress
    replay     recovered batch time -> its logged ranges                 restore_progress, compute
    replay_position  offsets after the last batch re-read so far         restore_progress, compute
    to_commit  batch time -> offsets after it, until committed (commit=True) compute; the commit listener
    committed  batches <= it were committed to the source                the commit listener
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from typing import Any, Sequence

from ..batch import Batch
from ..dataset import Dataset
from ..listener import StreamingListener, ms_to_datetime
from ..storage.signing import key_from_env
from ..storage.wal import WriteAheadLog
from .inputs import InputDStream
from .ratecontrol import PIDRateEstimator, RateController, RateSettings

log = logging.getLogger("runnel.replayable")

__all__ = ["OffsetRange", "ReplayableSource", "ReplayableInputDStream", "SourceDataset"]


@dataclass(frozen=True)
class OffsetRange:
    """Records ``[start, end)`` of one source partition in one batch."""

    partition: str
    start: int
    end: int

    @property
    def count(self) -> int:
        return self.end - self.start


class ReplayableSource:
    """A source that can read any range of its records again (see the module docstring).

    Offsets are ints per partition (partitions are named by strings); a
    partition's offsets grow, and ``read`` of a range gives the same records
    every time. Subclasses implement the first four methods; the rest have
    defaults. A source is pickled with the program's checkpointed graph:
    keep connections out of its pickled state (``__getstate__``).
    """

    def latest_offsets(self) -> dict[str, int]:
        """Every partition there is now -> the offset after its last record (new partitions appear here)."""
        raise NotImplementedError

    def initial_offsets(self, partitions: Sequence[str]) -> dict[str, int]:
        """Where the first batch starts reading each of ``partitions`` (the partitions at start)."""
        raise NotImplementedError

    def earliest_offsets(self, partitions: Sequence[str]) -> dict[str, int]:
        """Where a partition that appeared after the start is read from (its first record)."""
        raise NotImplementedError

    def read(self, ranges: Sequence[OffsetRange], where: str) -> list[Batch]:
        """The records of each range, one Batch per range (in that order).

        ``where`` names the stream and batch, for error messages.
        """
        raise NotImplementedError

    def commit(self, offsets: dict[str, int]) -> None:
        """Every record before ``offsets`` is processed (outputs done); the default does nothing."""

    def open(self) -> None:
        """Called when the stream starts (before any other call)."""

    def close(self) -> None:
        """Called when the stream stops; must be idempotent."""

    def describe(self, r: OffsetRange) -> Any:
        """What ``offset_ranges()`` hands out for a range (the range itself by default)."""
        return r


class SourceDataset(Dataset):
    """A batch of a replayable stream: a Dataset that also knows the offset ranges it holds.

    Only the stream's own Datasets have them (as only Spark's ``KafkaRDD``
    has ``offsetRanges()``): take them in ``transform`` or ``foreach_rdd``
    on the stream itself, before other operations.
    """

    def __init__(self, ds: Dataset, ranges: list):
        super().__init__(ds.ctx, ds.plan, ds.label)
        self._cache = ds._cache
        self._ranges = ranges

    def offset_ranges(self) -> list:
        """The offset ranges of this batch, one per source partition (Spark's ``offsetRanges()``)."""
        return list(self._ranges)


class _Committer(StreamingListener):
    """Commits a replayable stream's offsets once each batch's outputs finished."""

    def __init__(self, stream: "ReplayableInputDStream"):
        self.stream = stream

    def onBatchCompleted(self, batchCompleted) -> None:  # noqa: N802 — StreamingListener's name
        info = batchCompleted.batch_info
        if not info.failed:
            self.stream.commit_through(info.batch_time)


class ReplayableInputDStream(InputDStream):
    """Batches of a :class:`ReplayableSource`, each an offset range per partition (module docstring).

    Parameters
    ----------
    ssc : StreamingContext
    source : ReplayableSource
    max_rate_per_partition : float, optional
        Records per second per partition (None: no cap).
    commit : bool
        Call ``source.commit`` after each batch's outputs finished.
    """

    kind = "replayable_stream"

    def __init__(self, ssc, source: ReplayableSource, *, max_rate_per_partition: float | None = None,
                 commit: bool = False):
        if not isinstance(source, ReplayableSource):
            raise TypeError(f"a replayable stream needs a ReplayableSource, got {type(source).__name__}")
        if max_rate_per_partition is not None and not max_rate_per_partition > 0:
            raise ValueError(f"max_rate_per_partition must be positive records/s, got {max_rate_per_partition!r}")
        self.rates = RateSettings.from_conf(ssc.context.conf)
        super().__init__(ssc)
        self.source = source
        self.max_rate_per_partition = max_rate_per_partition
        self.commit = commit
        self.position: dict[str, int] | None = None
        self._init_runtime()

    _runtime = ("_lock", "_source_lock", "_log", "ranges", "ends", "floor", "logged", "replay", "replay_until",
                "replay_position", "to_commit", "committed", "rate_controller", "_committer", "_rate", "_opened")

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._source_lock = threading.Lock()    # commit (batch completed) against close (stop)
        self._log: WriteAheadLog | None = None
        self.ranges: dict[int, list[OffsetRange]] = {}
        self.ends: dict[int, dict[str, int]] = {}
        self.floor: dict[str, int] | None = None
        self.logged: dict[int, int] = {}
        self.replay: dict[int, list[OffsetRange]] = {}
        self.replay_until: int | None = None
        self.replay_position: dict[str, int] = {}
        self.to_commit: dict[int, dict[str, int]] = {}
        self.committed: int | None = None
        self.rate_controller: RateController | None = None
        self._committer: _Committer | None = None
        self._rate: float | None = self.rates.start_rate() if self.rates.backpressure else None
        self._opened = False

    # -- lifecycle -------------------------------------------------------------------------------
    def _open(self) -> None:
        if not self._opened:
            self.source.open()
            self._opened = True
        if self._log is None and self.ssc.checkpoint_dir:
            root = os.path.join(self.ssc.checkpoint_dir, "sources", self.name)
            self._log = WriteAheadLog(root, key=key_from_env())

    def start(self) -> None:
        self._open()
        if self.position is None:
            latest = self.source.latest_offsets()
            self.position = dict(self.source.initial_offsets(list(latest)))
        if self.rates.backpressure and self.rate_controller is None:
            estimator = PIDRateEstimator(self.ssc.batch_ms, self.rates.proportional, self.rates.integral,
                                         self.rates.derivative, self.rates.min_rate)
            self.rate_controller = RateController(self.name, estimator, self.set_rate)
            self.ssc.add_streaming_listener(self.rate_controller)
        if self.commit and self._committer is None:
            self._committer = _Committer(self)
            self.ssc.add_streaming_listener(self._committer)

    def stop(self) -> None:
        with self._source_lock:
            if self._opened:
                self.source.close()
                self._opened = False
        if self._log is not None:
            self._log.close()
            self._log = None

    def set_rate(self, rate: float | None) -> None:
        """The whole stream's rate in records/s from now on (backpressure calls this; None: no limit)."""
        self._rate = rate if rate is None or rate > 0 else None

    # -- batches -------------------------------------------------------------------------------------
    def _caps(self, lags: dict[str, int]) -> dict[str, int | None]:
        """Most records each partition may give this batch (None: no cap)."""
        secs = self.graph.batch_ms / 1000.0
        total = sum(lags.values())
        caps = {}
        for p, lag in lags.items():
            rates = [r for r in (self.max_rate_per_partition,) if r is not None]
            if self._rate is not None and total > 0:
                rates.append(self._rate * lag / total)
            caps[p] = max(1, math.floor(min(rates) * secs)) if rates else None
        return caps

    def _next_ranges(self) -> list[OffsetRange]:
        latest = self.source.latest_offsets()
        new = [p for p in latest if p not in self.position]
        if new:
            found = self.source.earliest_offsets(new)
            log.info("%s: new partitions %s, read from offsets %s", self.name, new, found)
            self.position.update(found)
        lags = {p: max(0, latest[p] - self.position[p]) for p in latest}
        caps = self._caps(lags)
        out = []
        for p in latest:
            start = self.position[p]
            end = start + (lags[p] if caps[p] is None else min(lags[p], caps[p]))
            out.append(OffsetRange(p, start, end))
        return out

    def compute(self, t: int):
        with self._lock:
            replay = self.replay.pop(t, None)
            replaying = replay is None and self.replay_until is not None and t <= self.replay_until
        if replay is not None:
            ranges = replay
        elif replaying:                     # took nothing before the failure
            ranges = []
        else:
            ranges = self._next_ranges()
        where = f"{self.name} (batch {ms_to_datetime(t)})"
        batches = self.source.read(ranges, where) if ranges else []
        if len(batches) != len(ranges):
            raise RuntimeError(f"{where}: the source read {len(batches)} batches for {len(ranges)} ranges")
        entry = None
        if self._log is not None and replay is None and any(r.count for r in ranges):
            entry = self._log.append(json.dumps(
                {"time": t, "ranges": [[r.partition, r.start, r.end] for r in ranges]}).encode(), sync=True)
        with self._lock:
            # a re-read batch ends where it ended before, not where the last re-read one ends (position)
            after = self.replay_position if replay is not None or replaying else self.position
            for r in ranges:
                after[r.partition] = max(after.get(r.partition, r.end), r.end)
            self.ranges[t] = ranges
            self.ends[t] = dict(after)
            if self.commit:
                self.to_commit[t] = self.ends[t]
            if entry is not None:
                self.logged[t] = entry
        ctx = self.ssc.context
        ds = ctx.dataset_of(batches, self.name) if batches else ctx.empty_dataset(self.name)
        return self._counted(t, ds)

    def get_or_compute(self, t: int):
        """As every stream's, with the batch's own Datasets carrying its offset ranges."""
        fresh = t not in self.generated
        ds = super().get_or_compute(t)
        if fresh and ds is not None:
            ds = SourceDataset(ds, [self.source.describe(r) for r in self.ranges.get(t, ())])
            self.generated[t] = ds
        return ds

    def offset_ranges(self, t: int) -> list:
        """The offset ranges of batch t (while the stream remembers it)."""
        return [self.source.describe(r) for r in self.ranges.get(t, ())]

    def forget_before(self, t: int) -> None:
        super().forget_before(t)
        with self._lock:
            for old in [k for k in self.ranges if k <= t - self.remember_ms]:
                del self.ranges[old]
            if self._log is None:           # no checkpoints: progress() is never asked
                for old in sorted(k for k in self.ends if k <= t)[:-1]:
                    del self.ends[old]

    # -- commits -------------------------------------------------------------------------------------
    def commit_through(self, t: int) -> None:
        """Batch t's outputs finished: commit the offsets after it (in batch order; never backwards)."""
        with self._lock:
            offsets = self.to_commit.get(t)
            for done in [bt for bt in self.to_commit if bt <= t]:
                del self.to_commit[done]
            if self.committed is not None and t <= self.committed:
                return
            self.committed = t
        if not offsets:
            return
        with self._source_lock:     # a batch that finishes after stop() still commits, then closes again
            try:
                self.source.commit(offsets)
            except Exception as e:  # noqa: BLE001 — the data is processed; the next batch commits again
                log.warning("%s: committing the offsets after batch %s failed: %s: %s", self.name,
                            ms_to_datetime(t), type(e).__name__, e)
            finally:
                if not self._opened:
                    self.source.close()

    # -- checkpoints ---------------------------------------------------------------------------------
    def progress(self, t: int) -> dict:
        """``{"offsets": {partition: offset}}``: where the batches after t start."""
        with self._lock:
            done = [bt for bt in self.ends if bt <= t]
            offsets = self.ends[max(done)] if done else self.floor
            if offsets is None:
                offsets = self.position
            return {"offsets": dict(offsets or {})}

    def restore_progress(self, progress: dict, t: int) -> None:
        """Before start on a recovered context: batches after t read the ranges they read before."""
        self._open()
        offsets = {str(p): int(o) for p, o in progress.get("offsets", {}).items()}
        replay: dict[int, list[OffsetRange]] = {}
        if self._log is not None:
            for entry, payload in self._log.read():
                rec = json.loads(bytes(payload))
                self.logged[rec["time"]] = entry
                if rec["time"] > t:
                    replay[rec["time"]] = [OffsetRange(p, s, e) for p, s, e in rec["ranges"]]
        position = dict(offsets)
        for bt in sorted(replay):
            for r in replay[bt]:
                position[r.partition] = max(position.get(r.partition, r.end), r.end)
        with self._lock:
            self.position = position
            self.floor = offsets
            self.replay = replay
            self.replay_until = max(replay, default=t)
            self.replay_position = dict(offsets)
            self.committed = None
        log.info("%s: recovered at %s: offsets %s, %d batches re-read as logged", self.name, ms_to_datetime(t),
                 offsets, len(replay))

    def checkpoint_written(self, t: int, progress: dict | None) -> None:
        """No kept checkpoint is older than t: ranges of batches <= t are no longer needed."""
        with self._lock:
            done = sorted(bt for bt in self.ends if bt <= t)
            if done:
                self.floor = self.ends[done[-1]]
            for bt in done:
                del self.ends[bt]
            entries = [self.logged.pop(bt) for bt in [k for k in self.logged if k <= t]]
        if entries and self._log is not None:
            self._log.truncate(max(entries))
