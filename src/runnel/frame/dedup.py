"""``sdf.drop_duplicates(subset, within=...)``: each key's first row, remembered within the watermark.

Rows are hashed by their ``subset`` columns (the key); a keyed table per
partition — a :class:`~runnel.dstream.stateful.StatefulDStream`'s,
checkpointed and restored by name — holds every key seen and the event time
of its first row (``_ts``). Per batch and partition::

    rows behind the watermark in force ─────────> late_rows()
    on-time rows, key in the table ─────────────> dropped (duplicates)
    on-time rows, key new: its first row ───────> out, key added with its event time
    keys whose _ts + within is before the watermark after the batch leave the table

So the table holds the keys of the last ``within`` + delay of event time, and
a duplicate is dropped as long as its key is remembered. Within a batch the
first row in arrival order is kept (the shuffle keeps a key's rows in order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..batch import Batch, column_take, concat_columns
from ..dataset import Dataset
from ..dstream.base import DStream
from .aggregate import group_codes
from .buckets import bucket_rows
from .schema import empty_column
from .transformed_frame import transformed
from .watermark import (NONE, ByWatermark, EventClock, TableWithLateRows, WatermarkDStream, replicate, split_late,
                        watermark_values)

if TYPE_CHECKING:
    from .frame import StreamingDataFrame

__all__ = ["DedupDStream", "drop_duplicates"]


def _layout(keys: tuple) -> tuple:
    return (keys[0] if len(keys) == 1 else tuple(keys), ("_ts",))


@dataclass(eq=False)
class Dedup:
    """Partition i: the new rows (``table_out`` False) or the table of seen keys after the batch (True).
    ``parts``: [table of t - 1 (if ``has_table``), rows, watermark row]."""
    keys: tuple
    clock: EventClock
    within: int
    empty_table: Batch
    empty_rows: Batch
    has_table: bool
    table_out: bool

    def __call__(self, index: int, parts: list[Batch]) -> Batch:
        table = parts[0] if self.has_table and len(parts[0]) and "_ts" in parts[0].columns else None
        rows, wm = parts[1], parts[2]
        before, now = watermark_values(wm)
        if len(rows) == 0 or not all(k in rows.columns for k in self.keys):
            rows = None
        kept = None
        if rows is not None:
            ts, ok = split_late(rows, self.clock, NONE if before == NONE else before)
            at = np.flatnonzero(ok)
            m = 0 if table is None else len(table)
            kcols = [column_take(rows.columns[k], at) if table is None else
                     concat_columns([table.columns[k], column_take(rows.columns[k], at)]) for k in self.keys]
            _, first = group_codes(kcols) if len(at) + m else (None, np.zeros(0, np.int64))
            new = first[first >= m] - m           # the first row of every key not in the table, in order
            kept = at[new]
            if self.table_out and len(kept):
                add = {k: column_take(rows.columns[k], kept) for k in self.keys}
                add["_ts"] = ts[kept]
                add = Batch(add, _layout(self.keys))
                table = add if table is None else Batch(
                    {n: concat_columns([table.columns[n], add.columns[n]]) for n in add.columns}, add.layout)
        if not self.table_out:
            return rows.take(kept) if kept is not None else self.empty_rows
        if table is None:
            return self.empty_table
        if now != NONE:
            table = table.filter(np.asarray(table.columns["_ts"], np.int64) + self.within >= now)
        return table


class DedupDStream(TableWithLateRows):
    """The table of seen keys after each batch (see the module docstring)."""

    kind = "drop_duplicates"
    holds = "seen keys"

    def __init__(self, rows: DStream, watermark: WatermarkDStream, keys: tuple, within: int, empty_table: Batch,
                 empty_rows: Batch, n: int):
        super().__init__(rows.ssc, [rows, watermark])
        self.watermark, self.keys, self.within = watermark, keys, within
        self.empty_table, self.empty_rows, self.n = empty_table, empty_rows, n

    def combine(self, t: int, rows: Dataset, table_out: bool) -> Dataset:
        """Batch t's new rows (``table_out`` False) or its table of seen keys (True)."""
        if not table_out:
            self.get_or_compute(t)      # defined now, so the scheduler computes it after the batch
        wm = replicate(self.watermark.get_or_compute(t), self.n)
        prev = self.before(t)
        op = Dedup(self.keys, self.watermark.clock, self.within, self.empty_table, self.empty_rows,
                   prev is not None, table_out)
        return (prev if prev is not None else rows).zip_partitions([rows, wm], op)

    def compute(self, t: int) -> Dataset | None:
        rows = self.parents[0].get_or_compute(t)
        if rows is None:
            rows = bucket_rows(self.ssc.context.empty_dataset("no rows"), self.keys, self.n, nulls=True)
        wm = replicate(self.watermark.get_or_compute(t), self.n)
        self.late.put(t, rows.zip_partitions([wm], ByWatermark(self.watermark.clock, 0)))
        return self.combine(t, rows, True)

    def _fit(self, ds: Dataset) -> Dataset:
        return ds if ds.get_num_partitions() == self.n else bucket_rows(ds, self.keys, self.n, nulls=True).cache()

    def signature(self) -> dict:
        return {**super().signature(), "keys": list(self.keys), "within": self.within}


def drop_duplicates(sdf: "StreamingDataFrame", keys: tuple, within: Any, name: str | None) -> "StreamingDataFrame":
    from .frame import StreamingDataFrame
    event = sdf._event
    if event is None:
        raise ValueError("drop_duplicates on a stream needs event time to forget keys: call "
                         "sdf.with_watermark('ts', delay) first")
    sdf._event_column("drop_duplicates")
    clock = event.clock
    within_units = clock.units(0 if within is None else within, "drop_duplicates within", allow_zero=True)
    dtypes = sdf.dtypes
    empty_table = Batch({**{k: empty_column(dtypes[k]) for k in keys}, "_ts": np.empty(0, np.int64)},
                        _layout(keys))
    stream = sdf.stream
    n = stream.resolve_partitions(None)
    rows = stream.derive("dedup_rows", lambda ds: bucket_rows(ds, keys, n, nulls=True)).cache()
    table = DedupDStream(rows, event.watermark, keys, within_units, empty_table, sdf.schema.empty(), n)
    if name is not None:
        table.named(name)
    table.rows_schema = sdf._schema_fn
    out = StreamingDataFrame(transformed(rows, "drop_duplicates", lambda ds, t: table.combine(t, ds, False)),
                             sdf._schema_fn, event)
    out._late = table
    return out
