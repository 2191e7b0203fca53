"""Frames out: foreach_batch, the exactly-once sinks, back to DStreams, SQL on a batch."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from runnel.sinks import read_parquet_table
from runnel.testing import assert_frame_batches_equal, run_frame

FRAMES = [pd.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]}), pd.DataFrame({"k": ["c"], "v": [4]})]


def start(ssc, n):
    ssc.start()
    ssc.run_batches(n)


def test_foreach_batch_gets_each_frame_and_its_time(ssc):
    got = []
    ssc.frame.queue(FRAMES).foreach_batch(lambda df, t: got.append((t.timestamp(), df)))
    start(ssc, 3)
    assert [t for t, _ in got] == [1.0, 2.0, 3.0]
    assert_frame_batches_equal([df for _, df in got], FRAMES + [pd.DataFrame({"k": [], "v": []})])
    assert list(got[2][1].columns) == ["k", "v"]   # an empty batch keeps the schema's columns


def test_to_parquet_and_to_sqlite_write_every_batch(ssc, tmp_path):
    sdf = ssc.frame.queue(FRAMES)
    sdf.to_parquet(str(tmp_path / "pq"))
    sdf.to_sqlite(str(tmp_path / "db.sqlite"), "rows")
    start(ssc, 2)
    table = read_parquet_table(str(tmp_path / "pq")).to_pandas()
    assert sorted(zip(table.k, table.v, table.batch_time)) == [("a", 1, 1000), ("a", 3, 1000), ("b", 2, 1000),
                                                               ("c", 4, 2000)]
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        assert sorted(db.execute("select k, v from rows").fetchall()) == [("a", 1), ("a", 3), ("b", 2), ("c", 4)]


def test_to_dstream_and_back(ctx):
    out = []

    def build(sdf):
        pairs = sdf[["k", "v"]].to_dstream()            # two columns: (key, value) pairs
        totals = pairs.reduce_by_key(lambda a, b: a + b)
        return totals.to_frame(columns=["k", "total"])
    out = run_frame(build, FRAMES, ctx)
    assert_frame_batches_equal(out, [pd.DataFrame({"k": ["a", "b"], "total": [4, 2]}),
                                     pd.DataFrame({"k": ["c"], "total": [4]})])


def test_to_dstream_of_one_column_gives_its_values(ssc, collect):
    got = collect(ssc.frame.queue(FRAMES)[["v"]].to_dstream())
    start(ssc, 1)
    assert sorted(got[0]) == [1, 2, 3]


def test_sql_on_every_batch(ctx):
    q = "select k, sum(v) as total, count(*) as n from batch group by k"
    out = run_frame(lambda s: s.sql(q), FRAMES, ctx)
    assert_frame_batches_equal(out, [f.groupby("k").agg(total=("v", "sum"), n=("v", "size")).reset_index()
                                     for f in FRAMES])


def test_sql_errors_at_definition(ssc):
    with pytest.raises(ValueError, match="failed on a batch of columns"):
        ssc.frame.queue(FRAMES).sql("select nope from batch")
