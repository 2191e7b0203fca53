import logging
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel import ManualClock, StreamingContext
from runnel.executors.base import TaskFailed

from runnel.dstream.files import FileInputDStream


def write(path, data, mtime_ms):
    """Write a file and set its modification time (ms on the manual clock's time line)."""
    with open(path, "wb" if isinstance(data, bytes) else "w", **({} if isinstance(data, bytes) else
                                                                   {"encoding": "utf-8", "newline": ""})) as f:
        f.write(data)
    os.utime(path, ns=(mtime_ms * 1_000_000, mtime_ms * 1_000_000))


def collecting(stream):
    out = []
    stream.foreach_rdd(lambda rdd: out.append(rdd.collect()))
    return out


def test_only_new_visible_files_are_read_each_once(inputs_ssc, tmp_path):
    write(tmp_path / "old.txt", "old\n", 500)         # present at start: ignored
    ssc = inputs_ssc()
    out = collecting(ssc.text_file_stream(str(tmp_path)))
    ssc.start()
    write(tmp_path / "a.txt", "a1\r\na2\n", 900)
    write(tmp_path / ".hidden", "hidden\n", 900)
    write(tmp_path / "_tmp", "tmp\n", 900)
    os.mkdir(tmp_path / "subdir")
    ssc.run_batches(1)
    write(tmp_path / "b.txt", "b1\nb2", 1500)          # no final newline
    os.rename(tmp_path / ".hidden", tmp_path / "renamed.txt")   # renamed into place: now visible
    ssc.run_batches(1)
    write(tmp_path / "a.txt", "a rewritten\n", 2500)   # already read: never again
    ssc.run_batches(1)
    assert out == [["a1", "a2"], ["hidden", "b1", "b2"], []]   # (mtime, name) order


def test_modification_time_decides_the_batch(inputs_ssc, tmp_path):
    ssc = inputs_ssc()
    stream = ssc.text_file_stream(str(tmp_path))
    out = collecting(stream)
    ssc.start()
    write(tmp_path / "at-1000.txt", "t1000\n", 1000)   # batch time == mtime: this batch
    write(tmp_path / "at-1001.txt", "t1001\n", 1001)
    write(tmp_path / "at-2999.txt", "t2999\n", 2999)
    write(tmp_path / "at-2500.txt", "t2500\n", 2500)
    write(tmp_path / "old-mtime.txt", "moved in\n", 5)  # new name with an old mtime: next batch
    ssc.run_batches(3)
    assert out == [["moved in", "t1000"], ["t1001"], ["t2500", "t2999"]]   # mtime order within a batch
    assert set(stream.processed) == {"at-1000.txt", "at-1001.txt", "at-2999.txt", "at-2500.txt", "old-mtime.txt"}


def test_binary_records_are_fixed_length_bytes(inputs_ssc, tmp_path):
    ssc = inputs_ssc()
    out = collecting(ssc.binary_records_stream(str(tmp_path), 4))
    ssc.start()
    write(tmp_path / "r1.bin", b"abcd\x00\x01\x02\x03wxyz", 800)
    write(tmp_path / "empty.bin", b"", 800)
    ssc.run_batches(1)
    write(tmp_path / "r2.bin", b"1234", 1800)
    ssc.run_batches(1)
    assert out == [[b"abcd", b"\x00\x01\x02\x03", b"wxyz"], [b"1234"]]
    assert all(type(r) is bytes for r in out[0])


def test_a_file_not_a_multiple_of_the_record_length_fails_its_batch_clearly(inputs_ssc, tmp_path):
    ssc = inputs_ssc()
    stream = ssc.binary_records_stream(str(tmp_path), 4)
    out = collecting(stream)
    ssc.start()
    write(tmp_path / "bad.bin", b"abcdef", 900)
    with pytest.raises(TaskFailed, match=rf"{stream.name} .*bad\.bin has 6 bytes, not a multiple of the record "
                                          r"length 4") as err:
        ssc.run_batches(1)
    assert isinstance(err.value.__cause__, ValueError)
    write(tmp_path / "good.bin", b"abcd", 1900)       # later batches still run; the bad file is not retried
    ssc.run_batches(1)
    assert out == [[b"abcd"]]


def test_definition_errors(inputs_ssc, tmp_path):
    ssc = inputs_ssc()
    with pytest.raises(FileNotFoundError, match="textFileStream: directory .*missing.* does not exist"):
        ssc.text_file_stream(str(tmp_path / "missing"))
    (tmp_path / "plain").write_text("x")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        ssc.binary_records_stream(str(tmp_path / "plain"), 4)
    with pytest.raises(ValueError, match="recordLength must be positive"):
        ssc.binary_records_stream(str(tmp_path), 0)
    with pytest.raises(TypeError, match="recordLength must be an int"):
        ssc.binary_records_stream(str(tmp_path), "4")
    with pytest.raises(TypeError, match="recordLength must be an int"):
        ssc.binary_records_stream(str(tmp_path), True)
    with pytest.raises(ValueError, match="kind"):
        FileInputDStream(ssc, str(tmp_path), kind="csv")
    with pytest.raises(ValueError, match="binary file streams only"):
        FileInputDStream(ssc, str(tmp_path), kind="text", record_length=3)


def test_text_that_is_not_utf8_names_the_file(inputs_ssc, tmp_path):
    ssc = inputs_ssc()
    stream = ssc.text_file_stream(str(tmp_path))
    collecting(stream)
    ssc.start()
    write(tmp_path / "latin1.txt", "café\n".encode("latin-1"), 900)
    with pytest.raises(TaskFailed, match=r"latin1\.txt is not UTF-8") as err:
        ssc.run_batches(1)
    assert isinstance(err.value.__cause__, ValueError)


def test_a_bad_file_fails_its_batch_and_the_good_files_of_that_batch_are_read_by_the_next(inputs_ssc, tmp_path):
    ssc = inputs_ssc()
    stream = ssc.text_file_stream(str(tmp_path))
    out = collecting(stream)
    ssc.start()
    write(tmp_path / "a.txt", "a1\na2\n", 900)
    write(tmp_path / "bad.txt", "café\n".encode("latin-1"), 900)
    write(tmp_path / "b.txt", "b1\nb2\nb3\n", 950)
    with pytest.raises(TaskFailed, match=rf"{stream.name} \(batch .*\): file .*bad\.txt is not UTF-8 text.*"
                                          r"set aside.*2 other files of this batch are read by the next batch"):
        ssc.run_batches(1)
    ssc.run_batches(1)
    assert out == [["a1", "a2", "b1", "b2", "b3"]]      # none of the 5 good lines lost
    ssc.run_batches(1)                                    # the bad file is not read again while unchanged
    write(tmp_path / "bad.txt", "café fixed\n", 3500)     # replaced by a good version: read
    ssc.run_batches(1)
    assert out == [["a1", "a2", "b1", "b2", "b3"], [], ["café fixed"]]
    assert set(stream.processed) == {"a.txt", "b.txt", "bad.txt"}


def test_a_file_written_in_place_is_reported_and_its_appended_lines_read(inputs_ssc, tmp_path, caplog):
    ssc = inputs_ssc()
    stream = ssc.text_file_stream(str(tmp_path))
    out = collecting(stream)
    ssc.start()
    lines = [f"line {i}" for i in range(1600)]
    rest = "".join(f"{x}\n" for x in lines[400:])
    write(tmp_path / "growing.log", "".join(f"{x}\n" for x in lines[:400]), 900)   # the writer is not done
    ssc.run_batches(1)
    with open(tmp_path / "growing.log", "a") as f:
        f.write(rest)
    os.utime(tmp_path / "growing.log", ns=(1500 * 1_000_000,) * 2)
    with caplog.at_level(logging.WARNING, logger="runnel.files"):
        ssc.run_batches(2)
    assert out == [lines[:400], lines[400:], []]           # every line exactly once
    assert caplog.text.count("growing.log changed after it was read") == 1
    assert f"its {len(rest)} appended bytes are read by batch" in caplog.text
    assert "renaming them into the directory" in caplog.text   # says how to publish files


def test_a_file_rewritten_after_it_was_read_is_reported_and_not_read_again(inputs_ssc, tmp_path, caplog):
    ssc = inputs_ssc()
    stream = ssc.text_file_stream(str(tmp_path))
    out = collecting(stream)
    ssc.start()
    write(tmp_path / "a.txt", "a1\na2\n", 900)
    ssc.run_batches(1)
    write(tmp_path / "a.txt", "a rewritten and longer\n", 1500)    # longer, but not an append
    with caplog.at_level(logging.WARNING, logger="runnel.files"):
        ssc.run_batches(1)
        write(tmp_path / "a.txt", "b1\n", 2500)                    # shorter
        ssc.run_batches(2)
    assert out == [["a1", "a2"], [], [], []]
    assert caplog.text.count("a.txt was rewritten after it was read") == 2   # once per change
    assert "not read" in caplog.text


def test_files_that_left_the_directory_are_forgotten(inputs_ssc, tmp_path):
    ssc = inputs_ssc()
    stream = ssc.text_file_stream(str(tmp_path))
    out = collecting(stream)
    write(tmp_path / "old.txt", "old\n", 100)
    ssc.start()
    for i in range(5):
        write(tmp_path / f"f{i}.txt", f"x{i}\n", 900 + 1000 * i)
        ssc.run_batches(1)
        if i:
            os.remove(tmp_path / f"f{i - 1}.txt")           # consumed files moved away, as usual
    os.remove(tmp_path / "old.txt")
    ssc.run_batches(1)
    assert set(stream.processed) == {"f4.txt"} and not stream.ignored   # bounded by the directory
    write(tmp_path / "f0.txt", "a new f0\n", 5900)          # a new file under a name read before
    ssc.run_batches(1)
    assert out == [["x0"], ["x1"], ["x2"], ["x3"], ["x4"], [], ["a new f0"]]


def test_progress_gives_back_what_batches_after_the_checkpoint_read(inputs_ssc, tmp_path):
    ssc = inputs_ssc()
    ssc.checkpoint(str(tmp_path / "cp"))
    src = tmp_path / "in"
    src.mkdir()
    stream = ssc.text_file_stream(str(src))
    out = collecting(stream)
    ssc.start()
    write(src / "a.txt", "a1\n", 900)
    ssc.run_batches(1)
    at_1000 = stream.progress(1000)
    with open(src / "a.txt", "a") as f:
        f.write("a2\n")
    os.utime(src / "a.txt", ns=(1500 * 1_000_000,) * 2)
    write(src / "b.txt", "b1\n", 1500)
    ssc.run_batches(1)
    assert out == [["a1"], ["a2", "b1"]]                 # (mtime, name) order
    assert stream.progress(1000) == at_1000            # batch 2's reads are not in the checkpoint at 1 s
    assert stream.progress(2000)["processed"]["a.txt"][0] == 6


def test_progress_of_an_older_checkpoint_lists_names_only_and_still_restores(inputs_ssc, tmp_path, caplog):
    write(tmp_path / "read.txt", "r1\n", 500)
    write(tmp_path / "new.txt", "n1\n", 500)
    ssc = inputs_ssc()
    stream = ssc.text_file_stream(str(tmp_path))
    out = collecting(stream)
    stream.restore_progress({"directory": str(tmp_path), "ignored": [], "processed": ["read.txt"]}, 0)
    ssc.start()
    with caplog.at_level(logging.WARNING, logger="runnel.files"):
        ssc.run_batches(1)
    assert out == [["n1"]] and "read.txt" not in caplog.text      # taken as it is, not read again
    assert stream.progress(1000)["processed"]["read.txt"][:2] == [3, 500 * 1_000_000]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 2), st.lists(st.text("ab é", max_size=4), max_size=3)),
                     min_size=1, max_size=6))
def test_lines_appended_to_files_in_any_steps_come_out_once_each_in_their_batch(ctx, tmp_path_factory, plan):
    """Oracle: batch k gives exactly the lines appended before it (files written in place, whole lines)."""
    d = tmp_path_factory.mktemp("in")
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    out = collecting(ssc.text_file_stream(str(d)))
    ssc.start()
    try:
        for step, (i, texts) in enumerate(plan):
            lines = [f"{i}:{x}" for x in texts]
            with open(d / f"f{i}.txt", "a", encoding="utf-8", newline="") as f:
                f.write("".join(x + "\n" for x in lines))
            t = 1000 * (step + 1)
            os.utime(d / f"f{i}.txt", ns=((t - 100) * 1_000_000,) * 2)
            ssc.run_batches(1)
            assert out[step] == lines
    finally:
        ssc.stop(stop_spark_context=False)


def test_records_appended_to_a_binary_file_are_read_and_a_partial_record_fails_clearly(inputs_ssc, tmp_path):
    ssc = inputs_ssc()
    stream = ssc.binary_records_stream(str(tmp_path), 4)
    out = collecting(stream)
    ssc.start()
    write(tmp_path / "r.bin", b"abcd", 900)
    ssc.run_batches(1)
    with open(tmp_path / "r.bin", "ab") as f:
        f.write(b"efghij")                                # one record and half of the next
    os.utime(tmp_path / "r.bin", ns=(1500 * 1_000_000,) * 2)
    with pytest.raises(TaskFailed, match=r"r\.bin grew by 6 bytes, not a multiple of the record length 4.*"
                                         r"set aside \(read again once changed\)$"):
        ssc.run_batches(1)
    with open(tmp_path / "r.bin", "ab") as f:
        f.write(b"kl")                                    # the writer finishes the record
    os.utime(tmp_path / "r.bin", ns=(2500 * 1_000_000,) * 2)
    ssc.run_batches(1)
    assert out == [[b"abcd"], [b"efgh", b"ijkl"]]


def test_a_character_cut_by_an_in_place_writer_is_read_whole_once_the_file_grows(inputs_ssc, tmp_path, caplog):
    ssc = inputs_ssc()
    stream = ssc.text_file_stream(str(tmp_path))
    out = collecting(stream)
    ssc.start()
    write(tmp_path / "other.txt", "other\n", 900)
    write(tmp_path / "log.txt", "caf\u00e9 1\ncaf".encode() + b"\xc3", 900)   # a writer's buffer flushed mid-character
    ssc.run_batches(1)                    # the lead byte of "é" is held back, not reported as bad text
    with open(tmp_path / "log.txt", "ab") as f:
        f.write(b"\xa9 2\n")
    os.utime(tmp_path / "log.txt", ns=(1900 * 1_000_000,) * 2)
    with caplog.at_level(logging.WARNING, logger="runnel.files"):
        ssc.run_batches(2)
    ssc.await_termination_or_timeout(0)   # no batch failed
    # as documented for appends: the line the first read cut comes out as two lines, each character whole
    assert out == [["caf\u00e9 1", "caf", "other"], ["\u00e9 2"], []] or \
        out == [["other", "caf\u00e9 1", "caf"], ["\u00e9 2"], []]
    assert "log.txt changed after it was read" in caplog.text and "not UTF-8" not in caplog.text
    assert stream.processed["log.txt"][0] == len("caf\u00e9 1\ncaf\u00e9 2\n".encode())


def test_a_file_left_cut_inside_a_character_fails_as_not_utf8_the_next_batch(inputs_ssc, tmp_path):
    ssc = inputs_ssc()
    stream = ssc.text_file_stream(str(tmp_path))
    out = collecting(stream)
    ssc.start()
    write(tmp_path / "cut.txt", "ok\ncaf\u00e9".encode()[:-1], 900)      # the writer never finishes "é"
    ssc.run_batches(1)
    assert out == [["ok", "caf"]]
    with pytest.raises(TaskFailed, match=r"cut\.txt is not UTF-8 text.*unexpected end of data"):
        ssc.run_batches(1)                # unchanged a batch later: the held-back byte is read as it is
    assert stream.rejected["cut.txt"] == (len("ok\ncaf\u00e9".encode()) - 1, 900 * 1_000_000)
