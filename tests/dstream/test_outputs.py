"""Output operations: files per batch (text, Parquet, pickle) and pprint's format.

Batch tables on a manual clock: input batches, an output, the files (or
printed lines) expected per batch. Every test runs on ``local`` and
``local[2]``.
"""

import os
from datetime import datetime

import pyarrow.parquet as pq
import pytest

from runnel import Context, DStream, ManualClock, StreamingContext
from runnel.dstream import savers
from runnel.dstream.savers import read_parquet_files, read_pickle_files

savers.install()  # until runnel/__init__ does it


@pytest.fixture(scope="module", params=["local", "local[2]"])
def ctx(request):
    c = Context(request.param)
    yield c
    c.stop()


def run(ctx, batches, build, n=None):
    """Build outputs on a queue stream of ``batches`` and run ``n`` batches; returns each batch's partitions."""
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    parts = []
    stream = ssc.queue_stream([ctx.parallelize(b) for b in batches])
    build(stream)
    stream.foreach_rdd(lambda rdd: parts.append(rdd.glom().collect()))
    ssc.start()
    ssc.run_batches(len(batches) if n is None else n)
    ssc.stop(stop_spark_context=False)
    return ssc, parts


def listing(d):
    return sorted(os.listdir(d))


def test_text_files_one_directory_per_batch_with_a_part_file_per_partition(ctx, tmp_path):
    batches = [[1, 2, 3], ["a", "b c", ""], []]
    _, parts = run(ctx, batches, lambda s: s.save_as_text_files(str(tmp_path / "out")), n=4)
    # the 4th batch finds the queue empty: still a directory (an empty batch, one partition)
    assert listing(tmp_path) == ["out-1000", "out-2000", "out-3000", "out-4000"]
    assert parts[3] == [[]]
    for k, batch_parts in enumerate(parts):
        d = tmp_path / f"out-{(k + 1) * 1000}"
        assert listing(d) == ["_SUCCESS"] + [f"part-{i:05d}" for i in range(len(batch_parts))]
        assert (d / "_SUCCESS").read_bytes() == b""
        for i, records in enumerate(batch_parts):
            assert (d / f"part-{i:05d}").read_text() == "".join(f"{r}\n" for r in records)
        flat = [r for p in batch_parts for r in p]
        assert ctx.text_file(str(d)).collect() == [str(r) for r in flat]


def test_text_files_suffix_and_record_formatting(ctx, tmp_path):
    batches = [[("a", 1), ("b", 2.5)], [(1, (2, None))], [b"raw\xffbytes", None, True]]
    run(ctx, batches, lambda s: s.saveAsTextFiles(str(tmp_path / "sub" / "kv"), "txt"))
    d = tmp_path / "sub"
    assert listing(d) == ["kv-1000.txt", "kv-2000.txt", "kv-3000.txt"]
    assert ctx.text_file(str(d / "kv-1000.txt")).collect() == ["('a', 1)", "('b', 2.5)"]
    assert ctx.text_file(str(d / "kv-2000.txt")).collect() == ["(1, (2, None))"]
    # bytes records are written as they are (PySpark's saveAsTextFile), others as str()
    data = b"".join((d / "kv-3000.txt" / f).read_bytes() for f in listing(d / "kv-3000.txt") if f.startswith("part"))
    assert data == b"raw\xffbytes\nNone\nTrue\n"


def test_existing_batch_directory_is_replaced_and_no_temp_dirs_remain(ctx, tmp_path):
    old = tmp_path / "out-1000"
    old.mkdir()
    (old / "part-00000").write_text("old\n")
    (old / "stale-file").write_text("x")
    run(ctx, [["new"]], lambda s: s.save_as_text_files(str(tmp_path / "out")))
    assert listing(tmp_path) == ["out-1000"]
    assert "stale-file" not in listing(old) and "_SUCCESS" in listing(old)
    assert ctx.text_file(str(old)).collect() == ["new"]


def test_parquet_round_trip_with_pyarrow(ctx, tmp_path):
    batches = [[1, 2, 3, 4, 5], [("a", 1.5), ("b", -2.0), ("c", 0.0)], [(1, "x", True), (2, None, False)], []]
    _, parts = run(ctx, batches, lambda s: s.save_as_parquet_files(str(tmp_path / "pq"), "parquet"))
    assert listing(tmp_path) == [f"pq-{k}000.parquet" for k in range(1, 5)]
    d = [str(tmp_path / f"pq-{k}000.parquet") for k in range(1, 5)]
    assert pq.read_table(d[0]).column("value").to_pylist() == [1, 2, 3, 4, 5]
    assert pq.read_table(d[1]).to_pylist() == [{"key": "a", "value": 1.5}, {"key": "b", "value": -2.0},
                                               {"key": "c", "value": 0.0}]
    assert pq.read_table(d[2]).to_pylist() == [{"_0": 1, "_1": "x", "_2": True}, {"_0": 2, "_1": None, "_2": False}]
    assert pq.read_table(d[3]).num_rows == 0
    for k, batch in enumerate(batches):
        files = [f for f in listing(d[k]) if f.startswith("part-")]
        assert len(files) == len(parts[k])
        meta = pq.ParquetFile(os.path.join(d[k], files[0])).metadata
        assert meta.num_row_groups == 0 or meta.row_group(0).column(0).compression == "ZSTD"
        assert read_parquet_files(ctx, d[k]).collect() == batch


def test_parquet_column_pyarrow_cannot_type_fails_that_batch_only(ctx, tmp_path):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.queue_stream([ctx.parallelize([1, "a"], 1), [7]]).named("mixed").save_as_parquet_files(str(tmp_path / "pq"))
    ssc.start()
    with pytest.raises(TypeError, match=r"stream mixed, batch .*column 'value'.*int, str"):
        ssc.run_batches(2)
    ssc.stop(stop_spark_context=False)
    assert listing(tmp_path) == ["pq-2000"]  # nothing (not even a temp dir) left of the failed batch


def test_pickle_round_trip_keeps_exact_records(ctx, tmp_path):
    records = [{"a": [1, 2]}, (1, ("x", None)), None, 2**70, [b"\x00", 1.5], frozenset({3})]
    many = list(range(2500))  # more than one pickled chunk per part file
    _, parts = run(ctx, [records, many, []], lambda s: s.saveAsPickleFiles(str(tmp_path / "pk")))
    for k, batch in enumerate([records, many, []]):
        d = str(tmp_path / f"pk-{k + 1}000")
        assert "_SUCCESS" in listing(d)
        back = read_pickle_files(ctx, d)
        assert back.collect() == batch
        assert back.glom().collect() == parts[k]
        assert ctx.pickleFile(d).collect() == batch


def test_save_methods_have_camel_case_aliases():
    for camel, snake in [("saveAsTextFiles", "save_as_text_files"), ("saveAsParquetFiles", "save_as_parquet_files"),
                         ("saveAsPickleFiles", "save_as_pickle_files")]:
        assert getattr(DStream, camel) is getattr(DStream, snake)
        assert getattr(DStream, snake).__doc__
    assert Context.pickleFile is Context.pickle_file


def test_bad_prefix_is_rejected_at_definition(ctx):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    s = ssc.queue_stream([[1]])
    with pytest.raises(TypeError, match="prefix"):
        s.save_as_text_files("")
    with pytest.raises(TypeError, match="suffix"):
        s.save_as_text_files("x", 3)
    ssc.stop(stop_spark_context=False)


# -- pprint ----------------------------------------------------------------------------------
RULE = "-" * 43


def expected_block(t_ms, records, num):
    lines = [RULE, f"Time: {datetime.fromtimestamp(t_ms / 1000)}", RULE]
    lines += [str(r) for r in records[:num]]
    if len(records) > num:
        lines.append("...")
    return "\n".join(lines) + "\n\n"


def test_pprint_exact_format_with_ellipsis_and_empty_batches(ctx, capsys):
    batches = [list(range(5)), [("a", 1), ("b", (2, None))], list(range(3))]
    run(ctx, batches, lambda s: s.pprint(3), n=4)
    out = capsys.readouterr().out
    expected = (expected_block(1000, batches[0], 3) + expected_block(2000, batches[1], 3)
                + expected_block(3000, batches[2], 3) + expected_block(4000, [], 3))
    assert out == expected
    assert "2\n...\n\n" in out and "(2, None)" in out


def test_pprint_default_prints_ten(ctx, capsys):
    run(ctx, [list(range(11)), list(range(10))], lambda s: s.pprint())
    out = capsys.readouterr().out
    assert out == expected_block(1000, list(range(11)), 10) + expected_block(2000, list(range(10)), 10)
