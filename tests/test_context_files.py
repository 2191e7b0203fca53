"""Context readers on directories written by the file outputs (text, pickle, Parquet)."""

import os

import pytest

from runnel import Context, ManualClock, StreamingContext
from runnel.dstream import savers
from runnel.dstream.savers import read_parquet_files, read_pickle_files
from runnel.partfiles import batch_path, write_batch_dir

savers.install()  # until runnel/__init__ does it


@pytest.fixture(scope="module")
def ctx():
    c = Context("local")
    yield c
    c.stop()


def save(ctx, tmp_path, method, partitions):
    """One batch of the given partitions through ``method``; returns its directory."""
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    item = ctx.parallelize([r for p in partitions for r in p], len(partitions)) if partitions else []
    getattr(ssc.queue_stream([item]), method)(str(tmp_path / "b"))
    ssc.start()
    ssc.run_batches(1)
    ssc.stop(stop_spark_context=False)
    return str(tmp_path / "b-1000")


def test_text_file_reads_a_saved_directory_skipping_markers_and_hidden_files(ctx, tmp_path):
    d = save(ctx, tmp_path, "save_as_text_files", [["héllo"], [""], ["tab\tsep", "x"]])
    with open(os.path.join(d, ".hidden"), "w") as f:
        f.write("nope\n")
    back = ctx.text_file(d)
    assert back.collect() == ["héllo", "", "tab\tsep", "x"]
    assert back.glom().collect() == [["héllo"], [""], ["tab\tsep", "x"]]   # a lone empty line survives


def test_pickle_file_reads_a_directory_or_one_part_file(ctx, tmp_path):
    d = save(ctx, tmp_path, "save_as_pickle_files", [[(1, "a")], [{"k": None}]])
    assert ctx.pickle_file(d).collect() == [(1, "a"), {"k": None}]
    assert read_pickle_files(ctx, os.path.join(d, "part-00001")).collect() == [{"k": None}]
    with pytest.raises(FileNotFoundError, match="pickleFile"):
        ctx.pickle_file(str(tmp_path / "missing"))


def test_pickle_file_rejects_foreign_pickles(ctx, tmp_path):
    import pickle
    f = tmp_path / "part-00000"
    f.write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="expected lists of records"):
        ctx.pickle_file(str(f)).collect()


def test_parquet_reader_restores_record_layout_across_partitions(ctx, tmp_path):
    # an empty partition and int/float partitions still give one schema
    d = save(ctx, tmp_path, "save_as_parquet_files", [[("a", 1.0)], [], [("b", 2.5)]])
    assert read_parquet_files(ctx, d).collect() == [("a", 1.0), ("b", 2.5)]
    assert len([f for f in os.listdir(d) if f.startswith("part-")]) == 3


def test_write_batch_dir_leaves_nothing_when_writing_fails(tmp_path):
    def boom(tmp):
        with open(os.path.join(tmp, "part-00000"), "w") as f:
            f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_batch_dir(batch_path(str(tmp_path / "out"), None, 5000), boom)
    assert os.listdir(tmp_path) == []
