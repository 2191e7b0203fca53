"""What every stream that keeps data across batches shares (per-key state, windows).

:class:`StatefulDStream` gives such a stream three things, one mechanism for all:

* **one warning at start** when no checkpoint directory is set
  (``ssc.checkpoint(dir)``): its state will not survive a restart;
* **lineage dropped once computed**: a computed, cached table is its blocks;
  forgetting its plan lets the tables and partials it was computed from
  (previous state, previous window, leaving partials) be freed as soon as
  the stream forgets them, so memory is bounded by what the stream reports;
* **checkpointing** (``runnel.checkpoint``): :meth:`~StatefulDStream.checkpoint_tables`
  names the tables a recovery at t needs, :meth:`~StatefulDStream.restore_tables`
  puts them back (repartitioned when the partition count changed), and
  :meth:`~StatefulDStream.signature` / :meth:`~StatefulDStream.restore_problem`
  tell whether a table written by one program version fits the operator of
  the same name in another;
* **a failed batch does not wedge the stream** (:meth:`~StatefulDStream.settle`,
  called by the scheduler once a batch's outputs ran): what the next batch
  builds on (the state table, an incremental window) is computed then, if no
  output computed it; when that fails, the batch's error is reported
  (:class:`StateNotUpdated`, naming the stream and batch time) and the stream
  goes on from its last good table, so later batches neither repeat the
  failure nor keep the failed batch's data alive, and checkpoints go on;
* **a report per batch**, ``state_report(t) -> {"keys": n, "bytes": b}`` or
  None, which the scheduler collects into ``BatchInfo.state_tables`` under
  the stream's (stable) name. The default reports the stream's own Dataset
  at t; streams keeping more (windows: their partials) override it with
  :func:`blocks_report` over everything they hold.
"""

from __future__ import annotations

import warnings
from typing import Iterable

from ..dataset import Dataset
from ..listener import ms_to_datetime
from ..plan import Blocks
from .base import DStream

__all__ = ["StatefulDStream", "StateNotUpdated", "warn_without_checkpoint", "drop_lineage", "blocks_report"]


class StateNotUpdated(RuntimeError):
    """A stateful stream could not compute its table for a batch; it goes on from its last good one."""


def warn_without_checkpoint(stream: DStream, what: str = "state", stacklevel: int = 3) -> None:
    """Warn once per stream, when no checkpoint directory is set, that ``what`` will not survive a restart."""
    if stream.ssc.checkpoint_dir is None and not getattr(stream, "_warned_no_checkpoint", False):
        stream._warned_no_checkpoint = True
        warnings.warn(f"{stream.name}: no checkpoint directory is set (ssc.checkpoint(dir)); "
                      f"its {what} will not survive a restart", RuntimeWarning, stacklevel=stacklevel)


def drop_lineage(datasets: Iterable[Dataset | None]) -> None:
    """Forget the plans computed, cached Datasets were built from (their blocks stay)."""
    for ds in list(datasets):  # a copy: the scheduler thread generating the next batch may add it meanwhile
        # once computed, a table is its blocks: dropping its lineage lets what the lineage refers to
        # (the previous table, partials, raw input) be freed as soon as its own stream forgets it
        if ds is not None and isinstance(ds.plan, Blocks):
            ds._lineage = None


def blocks_report(tables: Iterable[Dataset | None], held: Iterable[Dataset | None] = ()) -> dict:
    """{"keys": rows of ``tables``, "bytes": bytes of ``tables`` and ``held``}, over computed Datasets.

    Datasets not computed (yet) hold no blocks and count for nothing; a block
    held by several of them is counted once.
    """
    seen: set = set()
    out = {"keys": 0, "bytes": 0}
    for counts_rows, group in ((True, tables), (False, held)):
        for ds in group:
            if ds is None or not isinstance(ds.plan, Blocks):
                continue
            for r in ds.plan.refs:
                if r.id not in seen:
                    seen.add(r.id)
                    out["bytes"] += r.nbytes
                    out["keys"] += r.nrows if counts_rows else 0
    return out


class StatefulDStream(DStream):
    """A stream that keeps data across batches (see the module docstring)."""

    #: what the restart warning says will be lost
    kept = "state"

    def init_remember(self, ms: int) -> None:
        super().init_remember(ms)
        warn_without_checkpoint(self, self.kept)

    def forget_before(self, t: int) -> None:
        super().forget_before(t)
        drop_lineage(self.generated.values())

    def settle(self, t: int) -> None:
        """After batch t's outputs ran: compute what the next batch builds on, or fall back.

        Raises :class:`StateNotUpdated` when it cannot be computed (after
        falling back: see :meth:`fall_back`). The default keeps nothing the
        next batch builds on (a plain window reads its parent's batches).
        """

    def before(self, t: int) -> Dataset | None:
        """The table batch t continues from: this stream's Dataset of the batch before, or None for the
        first batch (and for the first after a recovery that restored no table for this stream)."""
        s, zero, restored = self.slide_ms, self.graph.zero_ms, self.graph.restored_ms
        if t - s > zero and not (restored is not None and t - s <= restored and t - s not in self.generated):
            return self.get_or_compute(t - s)
        return None

    def settle_table(self, t: int) -> None:
        """:meth:`settle` for streams whose next batch builds on their Dataset at t."""
        ds = self.generated.get(t)
        if ds is None or isinstance(ds.plan, Blocks):
            return  # nothing at t, or computed by an output of the batch
        try:
            ds.materialize()  # cached: it becomes its blocks
        except Exception as e:  # noqa: BLE001  (a user function or bad data: reported, never wedging)
            now = self.fall_back(t)
            raise StateNotUpdated(f"{self.name}: the batch at {ms_to_datetime(t)} could not update it ({e}); "
                                  f"{now}") from e

    def fall_back(self, t: int) -> str:
        """Replace the Dataset at t that could not be computed; say what the stream holds now."""
        raise NotImplementedError

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint_tables(self, t: int) -> dict[str, tuple[int, Dataset]]:
        """The tables a recovery at batch time t needs: label -> (batch time, Dataset).

        The default: the stream's own table at t (a state stream's (key, state) rows).
        """
        ds = self.generated.get(t)
        if ds is None:
            return {}
        table = getattr(self, "table", None)     # mapWithState keeps mapped records beside its state
        return {"table": (t, table(ds) if table is not None else ds)}

    def restore_tables(self, tables: dict[str, tuple[int, Dataset]]) -> None:
        """Put back what :meth:`checkpoint_tables` returned (a recovered context, before start)."""
        for label, (t, ds) in tables.items():
            if label == "table":
                self.generated[t] = self._fit(ds)

    def _fit(self, ds: Dataset) -> Dataset:
        """``ds`` with this operator's partition count (a program may change its parallelism)."""
        n = getattr(self, "n", None)
        if n is None or ds.get_num_partitions() == n:
            return ds
        return ds.hash_partition(n).cache()

    def signature(self) -> dict:
        """What a checkpointed table depends on, beyond its columns (JSON-serialisable)."""
        return {"class": type(self).__name__, "slide_ms": self.slide_ms}

    def restore_problem(self, signature: dict, columns: list[str]) -> str | None:
        """Why a table written under ``signature`` with ``columns`` cannot be restored here, or None."""
        mine = self.signature()
        for key in sorted(set(mine) | set(signature)):
            was, now = signature.get(key), mine.get(key)
            if was != now and None not in (was, now):   # None: unknown (a Python function), fits any
                return f"its {key} was {was!r} and is now {now!r}"
        missing = sorted(self.required_columns() - set(columns)) if columns else []
        if missing:
            return f"its table lacks the column(s) {', '.join(missing)} this operator keeps (columns: {columns})"
        return None

    def required_columns(self) -> set[str]:
        """Columns a restored (non-empty) table must have."""
        return set()

    def state_report(self, t: int) -> dict | None:
        """{"keys": n, "bytes": b} of the table at t, when it has been computed."""
        ds = self.generated.get(t)
        if ds is None or not isinstance(ds.plan, Blocks):
            return None
        return {"keys": sum(r.nrows for r in ds.plan.refs), "bytes": sum(r.nbytes for r in ds.plan.refs)}
