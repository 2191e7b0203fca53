"""``sdf.sql("select ... from batch")``: DuckDB SQL on every batch, over Arrow.

The batch (all its partitions, gathered into one) is registered as the table
``batch`` of a fresh in-memory DuckDB connection; DuckDB reads the Arrow
table without copying it. DuckDB is the optional extra ``runnel[sql]``,
shared with ``runnel.pyspark.sql`` (one import helper).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..batch import Batch
from .schema import Schema, frame_batch

__all__ = ["SqlOnBatch", "check_sql"]


def _duckdb():
    from ..pyspark.sql import import_duckdb   # imported when a query runs: runnel.frame loads without DuckDB
    return import_duckdb()


@dataclass(eq=False)
class SqlOnBatch:
    query: str
    table: str = "batch"

    def __call__(self, index: int, batch: Batch) -> Batch:
        duckdb = _duckdb()
        con = duckdb.connect()
        try:
            con.register(self.table, batch.to_arrow() if batch.columns else None)
            try:
                rel = con.sql(self.query)
                if rel is None:
                    raise ValueError(f"sql: {self.query!r} returns no rows (a statement, not a query)")
                result = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
            except duckdb.Error as e:
                raise ValueError(f"sql: {self.query!r} failed on a batch of columns {list(batch.columns)}: "
                                 f"{e}") from None
        finally:
            con.close()
        return frame_batch({name: _plain(result.column(i)) for i, name in enumerate(result.column_names)})


def _plain(col):
    """DuckDB's wide types as the engine's: sums of ints (int128 decimals) -> int64 (float64 if they
    do not fit), other decimals -> float64."""
    import pyarrow as pa
    if pa.types.is_decimal(col.type):
        if col.type.scale == 0:
            try:
                return col.cast(pa.int64())
            except pa.ArrowInvalid:
                pass
        return col.cast(pa.float64())
    return col


def check_sql(op: SqlOnBatch, schema: Schema | None) -> None:
    """Fail at definition time (not at the first batch) when the query does not fit the schema."""
    _duckdb()
    if schema is not None:
        op(0, schema.empty())
