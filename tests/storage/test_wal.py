import logging
import os
import stat
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel.batch import Batch
from runnel.storage.wal import WALCorruptionError, WALSignatureError, WriteAheadLog

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def segment_files(path):
    return sorted(f for f in os.listdir(path) if f.endswith(".wal"))


def payload(i, size):
    return bytes([i % 251]) * size


def test_entries_are_numbered_from_one_and_read_back_in_ranges(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_bytes=64)
    assert (wal.first_seq, wal.last_seq) == (1, 0)
    seqs = [wal.append(payload(i, i * 7), sync=i % 3 == 0) for i in range(20)]
    assert seqs == list(range(1, 21))
    assert len(segment_files(tmp_path)) > 3             # small segments: it rolled
    assert [(s, bytes(p)) for s, p in wal.read()] == [(i + 1, payload(i, i * 7)) for i in range(20)]
    assert [s for s, _ in wal.read(after=4, through=9)] == [5, 6, 7, 8, 9]
    assert list(wal.read(after=20)) == []
    assert wal.sync() == 20 and wal.synced_seq == 20
    wal.close()


def test_numbers_continue_after_reopening_and_after_truncating_everything(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    for i in range(5):
        wal.append(payload(i, 40))
    wal.close()
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    assert wal.last_seq == 5
    assert wal.truncate(5) >= 1                          # the active segment is consumed too: rolled, dropped
    assert [s for s, _ in wal.read()] == [] and wal.first_seq == 6
    wal.close()
    wal = WriteAheadLog(tmp_path)
    assert wal.append(b"x") == 6
    wal.close()


def test_truncate_drops_only_whole_segments_at_or_below_the_number(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_bytes=50)      # two 24-byte entries per segment
    for i in range(10):
        wal.append(payload(i, 1))
    assert len(segment_files(tmp_path)) == 5
    assert wal.truncate(4) == 2
    assert wal.first_seq == 5 and [s for s, _ in wal.read()] == list(range(5, 11))
    assert wal.truncate(5) == 0                          # 5 shares a segment with 6
    assert [s for s, _ in wal.read(after=0)][0] == 5
    wal.close()


def test_batches_round_trip_with_object_columns(tmp_path):
    wal = WriteAheadLog(tmp_path)
    blocks = [Batch.from_records([("a", 1), ("b", [2])]), Batch.from_values(np.arange(1000)),
              Batch.from_records(["x", None, "ü"])]
    for b in blocks:
        wal.append_batch(b)
    got = [(s, b.to_records()) for s, b in wal.read_batches()]
    assert got == [(i + 1, b.to_records()) for i, b in enumerate(blocks)]
    wal.close()


@HYPOTHESIS
@given(sizes=st.lists(st.integers(0, 300), min_size=1, max_size=25), segment_bytes=st.integers(1, 2000),
       cut=st.floats(0, 1, exclude_max=True), key=st.sampled_from([None, b"signed"]))
def test_a_torn_tail_keeps_every_entry_before_the_tear_and_none_after(tmp_path_factory, caplog, sizes,
                                                                      segment_bytes, cut, key):
    path = tmp_path_factory.mktemp("wal")
    wal = WriteAheadLog(path, segment_bytes=segment_bytes, key=key)
    ends = []                                            # (segment, end offset) of each entry
    for i, size in enumerate(sizes):
        wal.append(payload(i, size), sync=False)
        last = segment_files(path)[-1]
        ends.append((last, os.path.getsize(path / last)))
    wal.close()
    last = segment_files(path)[-1]
    size = os.path.getsize(path / last)
    at = int(cut * size)                                 # a crash tore the active segment here
    os.truncate(path / last, at)
    whole = [i for i, (seg, end) in enumerate(ends) if seg != last or end <= at]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="runnel.wal"):
        wal = WriteAheadLog(path, segment_bytes=segment_bytes, key=key)
    assert [(s, bytes(p)) for s, p in wal.read()] == [(i + 1, payload(i, sizes[i])) for i in whole]
    torn = at not in [end for seg, end in ends if seg == last] + [0]
    assert ("torn" in caplog.text) == torn
    assert wal.append(b"after") == len(whole) + 1        # appends go on right after the last whole entry
    assert [bytes(p) for _, p in wal.read(after=len(whole))] == [b"after"]
    wal.close()


@HYPOTHESIS
@given(sizes=st.lists(st.integers(1, 200), min_size=1, max_size=10), data=st.data())
def test_a_flipped_byte_in_the_last_entry_is_detected_and_dropped(tmp_path_factory, caplog, sizes, data):
    path = tmp_path_factory.mktemp("wal")
    wal = WriteAheadLog(path)
    for i, size in enumerate(sizes):
        wal.append(payload(i, size))
    wal.close()
    (name,) = segment_files(path)
    raw = bytearray((path / name).read_bytes())
    start = len(raw) - sizes[-1] - 24
    pos = data.draw(st.integers(start, len(raw) - 1))
    raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    (path / name).write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="runnel.wal"):
        wal = WriteAheadLog(path)
    assert [s for s, _ in wal.read()] == list(range(1, len(sizes)))
    assert "torn" in caplog.text
    wal.close()


def test_corruption_in_an_older_segment_raises_when_read(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_bytes=10)
    for i in range(3):
        wal.append(payload(i, 20))
    wal.close()
    first = tmp_path / segment_files(tmp_path)[0]
    raw = bytearray(first.read_bytes())
    raw[-1] ^= 0xFF
    first.write_bytes(bytes(raw))
    wal = WriteAheadLog(tmp_path, segment_bytes=10)      # only the active segment is checked on open
    with pytest.raises(WALCorruptionError, match="checksum mismatch"):
        list(wal.read())
    assert [s for s, _ in wal.read(after=1)] == [2, 3]
    wal.close()


def test_a_failed_write_leaves_no_partial_entry(tmp_path, monkeypatch):
    wal = WriteAheadLog(tmp_path)
    wal.append(b"kept")

    def half_then_fail(fd, parts):
        os.write(fd, bytes(parts[0])[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "writev", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        wal.append(b"lost")
    monkeypatch.undo()
    assert wal.append(b"next") == 2
    wal.close()
    assert [bytes(p) for _, p in WriteAheadLog(tmp_path).read()] == [b"kept", b"next"]



def test_damage_before_the_last_entry_is_an_error_not_a_torn_tail(tmp_path):
    wal = WriteAheadLog(tmp_path)
    for i in range(3):
        wal.append(payload(i, 50))
    wal.close()
    (name,) = segment_files(tmp_path)
    raw = bytearray((tmp_path / name).read_bytes())
    raw[30] ^= 0xFF                                  # the payload of entry 1 of 3
    (tmp_path / name).write_bytes(bytes(raw))
    with pytest.raises(WALCorruptionError, match="checksum mismatch at byte 0, with more entries after it"):
        WriteAheadLog(tmp_path)
    assert (tmp_path / name).read_bytes() == bytes(raw)   # the evidence is kept


def test_truncating_a_closed_log_opens_no_descriptor_and_keeps_the_numbering(tmp_path):
    wal = WriteAheadLog(tmp_path)
    for i in range(3):
        wal.append(payload(i, 10))
    wal.close()
    before = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    wal.truncate(3)                                  # every entry consumed, after the log was closed
    assert len(os.listdir(f"/proc/{os.getpid()}/fd")) == before
    assert WriteAheadLog(tmp_path).append(b"next") == 4


def test_a_signed_log_refuses_unsigned_altered_and_foreign_entries(tmp_path):
    signed = WriteAheadLog(tmp_path / "signed", key=b"key one")
    for i in range(3):
        signed.append(payload(i, 10))
    signed.close()
    assert [bytes(p) for _, p in WriteAheadLog(tmp_path / "signed", key=b"key one").read()] == \
        [payload(i, 10) for i in range(3)]
    assert len(list(WriteAheadLog(tmp_path / "signed").read())) == 3      # no key: signatures not checked
    with pytest.raises(WALSignatureError, match=r"00000000000000000001\.wal, entry 1: signature mismatch"):
        list(WriteAheadLog(tmp_path / "signed", key=b"key two").read())

    plain = WriteAheadLog(tmp_path / "plain")
    plain.append(b"written without a key")
    plain.close()
    with pytest.raises(WALSignatureError, match=r"entry 1: not signed, but RUNNEL_CHECKPOINT_KEY is set"):
        list(WriteAheadLog(tmp_path / "plain", key=b"key one").read())

    # an attacker rewrites an entry and fixes its CRC-32 (anyone can); the signature gives it away
    seg = tmp_path / "signed" / segment_files(tmp_path / "signed")[0]
    data = bytearray(seg.read_bytes())
    header = struct.Struct("<4sQQI")
    magic, seq, length, _ = header.unpack_from(data)
    evil = b"E" * length
    data[header.size:header.size + length] = evil
    data[:header.size] = header.pack(magic, seq, length, zlib.crc32(evil, zlib.crc32(struct.pack("<QQ", seq, length))))
    seg.write_bytes(bytes(data))
    assert bytes(next(WriteAheadLog(tmp_path / "signed").read())[1]) == evil            # CRC-32 is no defence
    with pytest.raises(WALSignatureError, match="entry 1: signature mismatch"):
        list(WriteAheadLog(tmp_path / "signed", key=b"key one").read())


def test_log_files_and_directories_are_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        wal = WriteAheadLog(tmp_path / "receivedData" / "stream" / "blocks", segment_bytes=16)
        for i in range(3):
            wal.append(payload(i, 20))
        wal.truncate(1)
        wal.close()
    finally:
        os.umask(old)
    for d in ("receivedData", "receivedData/stream", "receivedData/stream/blocks"):
        assert stat.S_IMODE(os.stat(tmp_path / d).st_mode) == 0o700, d
    blocks = tmp_path / "receivedData" / "stream" / "blocks"
    segs = segment_files(blocks)
    assert segs and {stat.S_IMODE(os.stat(blocks / f).st_mode) for f in segs} == {0o600}
