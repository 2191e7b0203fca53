"""Exactly-once outputs: per-partition ids, and Parquet / SQLite sinks that replace a re-run batch.

Recovery re-runs pending batches; here a re-run is a second program run on a
fresh manual clock, so it produces the same batch times (1000, 2000, ...) and
writes them to the same sink again. Every test runs on ``local`` and
``local[2]`` (the session ``ctx`` fixture).
"""

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing

import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from runnel import ManualClock, StreamingContext
from runnel.sinks import read_parquet_table


def run(ctx, batches, build, slices=None, raises=None):
    """One run of a program over ``batches`` (batch times 1000, 2000, ...) on a fresh StreamingContext.

    ``build(stream)`` defines the outputs; the stream is named ``src``. A
    batch's error fails the test unless ``raises = (type, pattern)`` expects it.
    """
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    try:
        build(ssc.queue_stream([ctx.parallelize(b, slices) for b in batches]).named("src"))
        ssc.start()
        if raises is None:
            ssc.run_batches(len(batches))       # raises the first error of a batch
        else:
            with pytest.raises(raises[0], match=raises[1]):
                ssc.run_batches(len(batches))
    finally:
        ssc.stop(stop_spark_context=False)


def listing(d):
    return sorted(os.listdir(d))


def rows(db, sql):
    with closing(sqlite3.connect(db)) as con:
        return con.execute(sql).fetchall()



# -- foreach_partition_transactional ------------------------------------------------------------
def test_transactional_fn_gets_batch_time_partition_index_and_that_partitions_records(ctx):
    calls, parts = [], []

    def build(s):
        s.foreach_partition_transactional(lambda t, i, records: calls.append((t, i, records)))
        s.foreach_rdd(lambda rdd: parts.append(rdd.glom().collect()))

    run(ctx, [[1, 2, 3, 4, 5], ["a", "b", "c"], []], build, slices=3)
    assert [(t, i) for t, i, _ in calls] == [(t, i) for t in (1000, 2000, 3000) for i in range(3)]
    assert all(isinstance(records, Iterator) for _, _, records in calls)
    assert [list(r) for _, _, r in calls] == [p for batch in parts for p in batch]


def test_transactional_rerun_gets_the_same_ids_so_skipping_committed_ones_is_exactly_once(ctx):
    committed, attempts = {}, []

    def write(t, i, records):
        attempts.append((t, i))
        if (t, i) in committed:
            return  # an earlier run committed this partition
        if (t, i) == (2000, 1) and len(attempts) < 5:
            raise RuntimeError("crash in partition 1 of batch 2000")
        committed[(t, i)] = list(records)

    batches = [[1, 2, 3, 4], [5, 6, 7, 8]]
    run(ctx, batches, lambda s: s.foreach_partition_transactional(write), slices=2,
        raises=(RuntimeError, "crash in partition 1"))
    assert attempts == [(1000, 0), (1000, 1), (2000, 0), (2000, 1)]
    run(ctx, batches, lambda s: s.foreach_partition_transactional(write), slices=2)
    assert attempts[4:] == attempts[:4]
    assert committed == {(1000, 0): [1, 2], (1000, 1): [3, 4], (2000, 0): [5, 6], (2000, 1): [7, 8]}


def test_transactional_needs_a_function(ctx):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    with pytest.raises(TypeError, match="expects a function, got int"):
        ssc.queue_stream([[1]]).foreachPartitionTransactional(3)
    ssc.stop(stop_spark_context=False)


# -- Parquet ---------------------------------------------------------------------------------------
def test_parquet_sink_is_one_table_with_a_directory_per_batch(ctx, tmp_path):
    out = tmp_path / "pq"
    run(ctx, [[("a", 1), ("b", 2), ("c", 3)], [], [("d", 4)]], lambda s: s.saveToParquet(out), slices=3)
    assert listing(out) == ["batch_time=1000", "batch_time=2000", "batch_time=3000"]
    assert listing(out / "batch_time=1000") == ["_SUCCESS"] + [f"part-{i:05d}.parquet" for i in range(3)]
    assert listing(out / "batch_time=2000") == ["_SUCCESS"]  # an empty batch is committed too
    assert listing(out / "batch_time=3000") == ["_SUCCESS", "part-00002.parquet"]  # empty partitions skipped
    assert read_parquet_table(out).to_pylist() == [
        {"key": k, "value": v, "batch_time": t}
        for k, v, t in [("a", 1, 1000), ("b", 2, 1000), ("c", 3, 1000), ("d", 4, 3000)]]
    # plain pyarrow / pandas read it as one dataset too (types agree across batches here)
    assert pads.dataset(out, partitioning="hive").to_table().num_rows == 4
    assert sorted(pd.read_parquet(out)["key"]) == ["a", "b", "c", "d"]


def test_parquet_rerun_replaces_the_batch_even_with_another_partition_count_and_program(ctx, tmp_path):
    out = tmp_path / "pq"
    batches = [[1, 2, 3, 4, 5, 6], [7, 8]]
    run(ctx, batches, lambda s: s.save_to_parquet(out, columns="n"), slices=3)
    run(ctx, batches, lambda s: s.map(lambda x: x * 10).save_to_parquet(out, columns="n"), slices=1)
    table = read_parquet_table(out)
    assert table.column("n").to_pylist() == [10, 20, 30, 40, 50, 60, 70, 80]
    assert table.column("batch_time").to_pylist() == [1000] * 6 + [2000] * 2
    assert listing(out / "batch_time=1000") == ["_SUCCESS", "part-00000.parquet"]  # no part file of run 1 left
    assert listing(out) == ["batch_time=1000", "batch_time=2000"]  # nor a temp or old directory


def test_parquet_rerun_of_a_batch_that_became_empty_removes_its_rows(ctx, tmp_path):
    out = tmp_path / "pq"
    run(ctx, [[1, 2], [3]], lambda s: s.save_to_parquet(out))
    run(ctx, [[1, 2], [3]], lambda s: s.filter(lambda x: x > 2).save_to_parquet(out))
    assert read_parquet_table(out).to_pylist() == [{"value": 3, "batch_time": 2000}]


def test_parquet_failure_mid_batch_leaves_nothing_visible_and_keeps_the_previous_run(ctx, tmp_path, monkeypatch):
    out = tmp_path / "pq"
    batches = [[1, 2, 3, 4], [5, 6, 7, 8]]
    run(ctx, batches[:1], lambda s: s.save_to_parquet(out), slices=2)
    real_write, written = pq.write_table, []

    def write_then_crash(table, where, **kw):
        if written:
            raise OSError("disk full")
        written.append(where)
        real_write(table, where, **kw)

    monkeypatch.setattr(pq, "write_table", write_then_crash)
    run(ctx, [[x * 10 for x in batches[0]], batches[1]], lambda s: s.save_to_parquet(out), slices=2,
        raises=(OSError, "disk full"))
    monkeypatch.undo()
    assert len(written) == 1  # batch 1000 of run 2 wrote one part file before the crash
    # run 1's batch 1000 is intact; run 2's batch 2000 (failing at its first file) left no directory
    assert listing(out) == ["batch_time=1000"]
    assert read_parquet_table(out).column("value").to_pylist() == [1, 2, 3, 4]


def test_parquet_read_unifies_column_types_across_batches_and_skips_hidden_dirs(ctx, tmp_path):
    out = tmp_path / "pq"
    run(ctx, [[None, None], [1, 2], [0.5]], lambda s: s.save_to_parquet(out), slices=1)
    hidden = out / ".batch_time=9000.tmp-1-ab"  # a batch being written
    hidden.mkdir()
    pq.write_table(read_parquet_table(out).drop_columns("batch_time"), hidden / "part-00000.parquet")
    table = read_parquet_table(out)
    assert table.column("value").to_pylist() == [None, None, 1.0, 2.0, 0.5]
    assert table.column("batch_time").to_pylist() == [1000, 1000, 2000, 2000, 3000]


def test_parquet_batches_of_incompatible_types_fail_to_read_with_a_clear_error(ctx, tmp_path):
    out = tmp_path / "pq"
    run(ctx, [[1], ["a"]], lambda s: s.save_to_parquet(out))
    with pytest.raises(TypeError, match="read_parquet_table: batches under .* cannot be unified"):
        read_parquet_table(out)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        read_parquet_table(tmp_path / "missing")


def test_parquet_bad_values_fail_that_batch_naming_stream_batch_and_column(ctx, tmp_path):
    out = tmp_path / "pq"
    run(ctx, [[1, "a"], [7]], lambda s: s.save_to_parquet(out), slices=1,
        raises=(TypeError, r"saveToParquet: stream src, batch .*column 'value'.*int, str"))
    assert listing(out) == ["batch_time=2000"]


def test_parquet_column_names_must_fit_the_records(ctx, tmp_path):
    run(ctx, [[("a", 1)]], lambda s: s.save_to_parquet(tmp_path / "a", columns=("x",)),
        raises=(ValueError, r"saveToParquet: stream src, batch .*2 fields \(key, value\) but 1 column names"))
    frame = pd.DataFrame({"batch_time": [1], "x": [2]})
    run(ctx, [frame], lambda s: s.save_to_parquet(tmp_path / "b"),
        raises=(ValueError, "field named 'batch_time'.*pass columns="))
    run(ctx, [frame], lambda s: s.save_to_parquet(tmp_path / "c", columns=("t", "x")))
    assert read_parquet_table(tmp_path / "c").to_pylist() == [{"t": 1, "x": 2, "batch_time": 1000}]
    assert listing(tmp_path / "a") == listing(tmp_path / "b") == []  # the failed batches left nothing


# -- SQLite -------------------------------------------------------------------------------------------
def test_sqlite_commits_rows_with_their_batch_time_and_records_every_batch(ctx, tmp_path):
    db = str(tmp_path / "out.db")
    run(ctx, [[("a", 1), ("b", 2), ("c", 3)], [], [("d", 4)]], lambda s: s.saveToSqlite(db, "kv"), slices=2)
    assert rows(db, "SELECT * FROM kv") == [("a", 1, 1000), ("b", 2, 1000), ("c", 3, 1000), ("d", 4, 3000)]
    assert rows(db, "SELECT * FROM _runnel_batches ORDER BY batch_time") == [
        ("kv", 1000, 3), ("kv", 2000, 0), ("kv", 3000, 1)]


def test_sqlite_rerun_replaces_the_batch_rows_even_with_another_partition_count_and_program(ctx, tmp_path):
    db = str(tmp_path / "out.db")
    batches = [[1, 2, 3, 4, 5, 6], [7, 8]]
    run(ctx, batches, lambda s: s.save_to_sqlite(db, "t", columns=["n"]), slices=3)
    run(ctx, batches, lambda s: s.map(lambda x: x * 10).save_to_sqlite(db, "t", columns=["n"]), slices=1)
    assert rows(db, "SELECT n, batch_time FROM t ORDER BY n") == (
        [(n, 1000) for n in (10, 20, 30, 40, 50, 60)] + [(70, 2000), (80, 2000)])
    assert rows(db, "SELECT * FROM _runnel_batches") == [("t", 1000, 6), ("t", 2000, 2)]


def test_sqlite_rerun_of_a_batch_that_became_empty_removes_its_rows(ctx, tmp_path):
    db = str(tmp_path / "out.db")
    run(ctx, [[1, 2], [3]], lambda s: s.save_to_sqlite(db, "t"))
    run(ctx, [[1, 2], [3]], lambda s: s.filter(lambda x: x > 2).save_to_sqlite(db, "t"))
    assert rows(db, "SELECT * FROM t") == [(3, 2000)]
    assert rows(db, "SELECT * FROM _runnel_batches") == [("t", 1000, 0), ("t", 2000, 1)]


def test_sqlite_failure_mid_batch_rolls_back_rows_table_and_batch_record(ctx, tmp_path):
    db = str(tmp_path / "out.db")
    bad = [1, 2, 3, (4, 5)]  # partition 1 holds a tuple: fails after partition 0 was inserted
    run(ctx, [bad], lambda s: s.save_to_sqlite(db, "t"), slices=2,
        raises=(TypeError, r"saveToSqlite: stream src, batch .*column 'value'.*\(tuple\)"))
    assert rows(db, "SELECT name FROM sqlite_master") == []  # creating the tables was rolled back too
    run(ctx, [[1, 2, 3, 4]], lambda s: s.save_to_sqlite(db, "t"), slices=2)
    run(ctx, [bad], lambda s: s.save_to_sqlite(db, "t"), slices=2, raises=(TypeError, "tuple"))
    # the failed re-run's DELETE of batch 1000's rows was rolled back with its inserts
    assert rows(db, "SELECT * FROM t") == [(1, 1000), (2, 1000), (3, 1000), (4, 1000)]
    assert rows(db, "SELECT * FROM _runnel_batches") == [("t", 1000, 4)]


def test_sqlite_keeps_value_types_and_names_columns_like_batches(ctx, tmp_path):
    db = str(tmp_path / "out.db")
    records = [(1, 1.5, "x", b"\x00", None, True), (2**62, -0.0, "", b"", None, False)]
    run(ctx, [records], lambda s: s.save_to_sqlite(db, "t"))
    assert [c[1] for c in rows(db, "PRAGMA table_info(t)")] == ["_0", "_1", "_2", "_3", "_4", "_5", "batch_time"]
    assert rows(db, "SELECT * FROM t") == [(1, 1.5, "x", b"\x00", None, 1, 1000),
                                          (2**62, -0.0, "", b"", None, 0, 1000)]
    assert rows(db, "SELECT typeof(_0), typeof(_1), typeof(_2), typeof(_3) FROM t LIMIT 1") == [
        ("integer", "real", "text", "blob")]


@pytest.mark.parametrize("value,kind", [([1], "list"), (pd.Timestamp(0).to_pydatetime(), "datetime"),
                                        ({"a": 1}, "dict")])
def test_sqlite_unsupported_values_fail_naming_stream_batch_and_column(ctx, tmp_path, value, kind):
    db = str(tmp_path / "out.db")
    run(ctx, [[("k", value)], [("k", 1)]], lambda s: s.save_to_sqlite(db, "t"),
        raises=(TypeError, rf"saveToSqlite: stream src, batch .*column 'value'.*\({kind}\).*map the records"))
    assert rows(db, "SELECT * FROM t") == [("k", 1, 2000)]  # only that batch failed


def test_sqlite_int_beyond_64_bits_fails_naming_stream_and_batch(ctx, tmp_path):
    db = str(tmp_path / "out.db")
    run(ctx, [[2**70]], lambda s: s.save_to_sqlite(db, "t"),
        raises=(TypeError, r"saveToSqlite: stream src, batch .*outside SQLite's 64-bit range"))


def test_sqlite_records_of_another_shape_or_a_foreign_table_are_errors(ctx, tmp_path):
    db = str(tmp_path / "out.db")
    run(ctx, [[1], [("a", 1)]], lambda s: s.save_to_sqlite(db, "t"),
        raises=(ValueError, r"records have fields \(key, value\) but table 't' has columns \(value, batch_time\)"))
    assert rows(db, "SELECT * FROM t") == [(1, 1000)]
    with closing(sqlite3.connect(db)) as con:
        con.execute("CREATE TABLE mine (value)")
    run(ctx, [[1]], lambda s: s.save_to_sqlite(db, "mine"), raises=(ValueError, "not a runnel sink"))


def test_sqlite_empty_first_batch_creates_the_table_only_with_given_columns(ctx, tmp_path):
    db = str(tmp_path / "out.db")
    run(ctx, [[]], lambda s: s.save_to_sqlite(db, "a"))
    run(ctx, [[]], lambda s: s.save_to_sqlite(db, "b", columns=("word", "n")))
    assert rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") == [
        ("_runnel_batches",), ("b",)]
    assert [c[1] for c in rows(db, "PRAGMA table_info(b)")] == ["word", "n", "batch_time"]
    assert rows(db, "SELECT * FROM _runnel_batches ORDER BY table_name") == [("a", 1000, 0), ("b", 1000, 0)]


def test_sink_arguments_are_checked_at_definition(ctx, tmp_path):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    s = ssc.queue_stream([[1]])
    with pytest.raises(TypeError, match="saveToParquet: path"):
        s.save_to_parquet("")
    with pytest.raises(TypeError, match="saveToSqlite: table"):
        s.save_to_sqlite(str(tmp_path / "x.db"), "")
    with pytest.raises(ValueError, match="sink's own table"):
        s.save_to_sqlite(str(tmp_path / "x.db"), "_runnel_batches")
    with pytest.raises(TypeError, match="distinct non-empty strings"):
        s.save_to_sqlite(str(tmp_path / "x.db"), "t", columns=("a", "a"))
    with pytest.raises(ValueError, match="'batch_time' is the sink's own"):
        s.save_to_parquet(str(tmp_path / "p"), columns=("batch_time",))
    ssc.stop(stop_spark_context=False)
