"""Receivers with the write-ahead log, rate limits and backpressure (driver-side: ``local`` only)."""

import logging
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest
from reliable_source import FileTailReceiver, acknowledged

from runnel import Context, ManualClock, StreamingContext
from runnel.dstream.ratecontrol import RateLimiter
from runnel.dstream.receivers import Receiver
from runnel.listener import BatchEvent, BatchInfo
from runnel.storage.wal import WriteAheadLog

WAL = {"spark.streaming.receiver.writeAheadLog.enable": "true"}


class PushReceiver(Receiver):
    """The test stores by calling store() itself."""

    def on_start(self):
        pass


@pytest.fixture
def streaming(inputs_poll):
    """``streaming(conf, checkpoint_dir=None, start_ms=0)`` -> (ssc, receiver, stream, outputs per batch)."""
    made = []

    def make(conf, checkpoint_dir=None, start_ms=0, receiver=None):
        ctx = Context("local", conf=conf)
        ssc = StreamingContext(ctx, 1, clock=ManualClock(start_ms))
        made.append(ssc)
        if checkpoint_dir is not None:
            ssc.checkpoint(str(checkpoint_dir))
        r = receiver or PushReceiver()
        stream = ssc.receiver_stream(r)
        out = []
        stream.foreach_rdd(lambda rdd: out.append(rdd.collect()))
        return ssc, r, stream, out

    def start(ssc, r):
        ssc.start()
        inputs_poll(r.is_started, "the receiver to start")

    make.start = start
    yield make
    for ssc in made:
        ssc.stop()


def block_log(checkpoint_dir, stream):
    return os.path.join(checkpoint_dir, "receivedData", stream.name, "blocks")


def logged(checkpoint_dir, stream):
    """Records in the stream's block log, read by a second reader (as after a crash)."""
    wal = WriteAheadLog(block_log(checkpoint_dir, stream))
    return [b.to_records() for _, b in wal.read_batches()]


def test_the_wal_needs_a_checkpoint_directory(streaming):
    ssc, r, _, _ = streaming(WAL)
    with pytest.raises(ValueError, match="Cannot enable receiver write-ahead log without checkpoint directory set. "
                                         "Please use streamingContext.checkpoint"):
        ssc.start()
    assert ssc.state == "INITIALIZED" and r.is_stopped()    # checked before anything started


def test_a_stored_block_is_in_the_log_when_store_returns(streaming, tmp_path):
    ssc, r, stream, out = streaming(WAL, tmp_path)
    streaming.start(ssc, r)
    r.store_many([1, 2])
    r.store(iter(["a"]))
    r.store(np.array([3.5]))
    r.store(pd.DataFrame({"key": ["k"], "value": [7]}))
    assert logged(tmp_path, stream) == [[1, 2], ["a"], [3.5], [("k", 7)]]
    r.store("single")                                      # a single record is only buffered ...
    assert len(logged(tmp_path, stream)) == 4
    ssc.run_batches(1)                                      # ... and logged when a batch takes it
    assert logged(tmp_path, stream)[-1] == ["single"]
    assert out == [[1, 2, "a", 3.5, ("k", 7), "single"]]


def test_ack_callbacks_run_once_the_block_is_durable(streaming, tmp_path):
    ssc, r, stream, out = streaming(WAL, tmp_path)
    streaming.start(ssc, r)
    acked = []
    r.store_many([1, 2], ack=lambda: acked.append(("a", stream.generator.wal.synced_seq)))
    r.store([3], ack=lambda: acked.append(("b", stream.generator.wal.synced_seq)))
    assert acked == []                                     # logged, not fsynced yet
    r.store([4])                                           # a plain reliable store syncs, covering both
    assert acked == [("a", 3), ("b", 3)]
    r.store(np.arange(2), ack=lambda: acked.append(("c", stream.generator.wal.synced_seq)))
    ssc.run_batches(1)                                     # at the latest, the batch taking it syncs
    assert acked[-1] == ("c", 4) and out == [[1, 2, 3, 4, 0, 1]]
    with pytest.raises(TypeError, match="single record is only buffered"):
        r.store(5, ack=lambda: None)


def test_without_the_wal_ack_runs_when_the_block_is_buffered(streaming):
    ssc, r, stream, out = streaming({})
    streaming.start(ssc, r)
    acked = []
    r.store_many([1], ack=lambda: acked.append(1))
    r.store(np.arange(3), ack=lambda: acked.append(2))
    r.store([], ack=lambda: acked.append(3))
    assert acked == [1, 2, 3] and stream.progress(10**6) == {}


def test_recovery_replays_each_batch_exactly_and_loses_no_stored_block(streaming, tmp_path, caplog):
    ssc, r, stream, out = streaming(WAL, tmp_path)
    streaming.start(ssc, r)
    r.store_many([1, 2])
    r.store(np.array([3, 4]))
    ssc.run_batches(1)                                     # batch 1000: 1..4
    checkpoint = stream.progress(1000)                     # the checkpoint recovery starts from
    r.store_many([5])
    ssc.run_batches(1)                                     # batch 2000: 5
    r.store_many([6, 7])
    r.store(8)
    ssc.run_batches(1)                                     # batch 3000: 6, 7 and the single record 8
    r.store_many([9])                                      # stored (durable), never taken
    r.store(10)                                            # a single record, only buffered: lost
    assert out == [[1, 2, 3, 4], [5], [6, 7, 8]]
    ssc.stop()                                             # abrupt: pending data discarded

    ssc2, r2, stream2, out2 = streaming(WAL, tmp_path, start_ms=1000)
    assert stream2.name == stream.name
    with caplog.at_level(logging.INFO, logger="runnel.receivers"):
        stream2.restore_progress(checkpoint, 1000)
    assert "2 batches replayed, 1 blocks never taken" in caplog.text
    streaming.start(ssc2, r2)
    r2.store_many([11])
    ssc2.run_batches(2)                                    # 2000 and 3000 again: the same blocks
    assert out2 == [[5], [6, 7, 8]]
    ssc2.run_batches(1)                                    # 4000: the untaken block first, then new data
    assert out2 == [[5], [6, 7, 8], [9, 11]]
    checkpoint = stream2.progress(3000)
    ssc2.stop()

    ssc3, r3, stream3, out3 = streaming(WAL, tmp_path, start_ms=3000)
    stream3.restore_progress(checkpoint, 3000)             # a second recovery, of the recovered run
    streaming.start(ssc3, r3)
    ssc3.run_batches(2)
    assert out3 == [[9, 11], []]


def test_replaying_a_run_with_concurrent_stores_gives_every_batch_the_same_records(streaming, tmp_path):
    ssc, r, stream, out = streaming(WAL, tmp_path)
    streaming.start(ssc, r)
    batch_ran = [threading.Semaphore(0), threading.Semaphore(0)]

    def feed(k):                                           # thread k stores k, k+2, k+4 ... in odd chunks
        for i, start in enumerate(range(k, 6000, 2 * 37)):
            r.store_many(range(start, min(6000, start + 2 * 37), 2))
            if i % 20 == 19:
                assert batch_ran[k].acquire(timeout=30), "no batch ran while storing"

    feeders = [threading.Thread(target=feed, args=(k,)) for k in (0, 1)]
    for f in feeders:
        f.start()
    batches = 0
    while any(f.is_alive() for f in feeders) or stream.has_pending():
        ssc.run_batches(1)
        for sem in batch_ran:
            sem.release()
        batches += 1
        assert batches < 10_000, "the stream never drained"
    for f in feeders:
        f.join(10)
    assert sorted(x for b in out for x in b) == list(range(6000)) and batches >= 3
    checkpoint = stream.progress(0)                         # as if nothing had been processed
    ssc.stop()

    ssc2, r2, stream2, out2 = streaming(WAL, tmp_path)
    stream2.restore_progress(checkpoint, 0)
    streaming.start(ssc2, r2)
    ssc2.run_batches(batches + 1)
    assert out2 == out + [[]]                              # the same records in the same batches


def test_checkpoint_written_deletes_the_log_only_checkpointed_batches_used(streaming, tmp_path):
    ssc, r, stream, out = streaming(WAL, tmp_path)
    stream.wal_segment_bytes = 1                           # one block per segment
    streaming.start(ssc, r)
    for t in range(1, 4):
        r.store_many(list(range(t * 10, t * 10 + 3)))
        ssc.run_batches(1)
    r.store_many([99])
    at_2000 = stream.progress(2000)                          # what the checkpoint at 2000 records
    assert at_2000 == {"wal_through": 2}                     # batches 1000 and 2000 used entries 1, 2
    stream.checkpoint_written(2000, at_2000)
    stream.checkpoint_written(2000, at_2000)                 # idempotent
    assert logged(tmp_path, stream) == [[30, 31, 32], [99]]
    checkpoint = stream.progress(3000)
    stream.checkpoint_written(3000, checkpoint)
    assert logged(tmp_path, stream) == [[99]]
    batches_log = os.path.join(tmp_path, "receivedData", stream.name, "batches")
    assert [s for s, _ in WriteAheadLog(batches_log).read()] == []
    ssc.stop()

    ssc2, r2, stream2, out2 = streaming(WAL, tmp_path, start_ms=3000)
    stream2.restore_progress(checkpoint, 3000)
    streaming.start(ssc2, r2)
    ssc2.run_batches(1)
    assert out2 == [[99]]


def test_the_log_keeps_what_the_oldest_kept_checkpoint_needs(streaming, tmp_path):
    """After a recovery the oldest kept checkpoint may be older than the one recovered from."""
    ssc, r, stream, out = streaming(WAL, tmp_path)
    stream.wal_segment_bytes = 1                           # one block per segment
    streaming.start(ssc, r)
    progress = {}
    for t in range(1, 5):
        r.store_many([t * 10, t * 10 + 1])
        ssc.run_batches(1)
        progress[t * 1000] = stream.progress(t * 1000)
    ssc.stop()
    ssc2, r2, stream2, out2 = streaming(WAL, tmp_path, start_ms=4000)
    stream2.restore_progress(progress[4000], 4000)          # recovered from the checkpoint at 4000 ...
    streaming.start(ssc2, r2)
    stream2.checkpoint_written(3000, progress[3000])        # ... while the one at 3000 is still kept
    assert logged(tmp_path, stream2) == [[40, 41]]          # what a fall back to 3000 replays
    ssc2.stop()


def test_a_torn_last_block_is_dropped_with_a_warning_on_recovery(streaming, tmp_path, caplog):
    ssc, r, stream, out = streaming(WAL, tmp_path)
    streaming.start(ssc, r)
    ssc.run_batches(1)
    checkpoint = stream.progress(1000)
    r.store_many(["kept"])
    r.store_many(["torn"])
    ssc.stop()
    path = block_log(tmp_path, stream)
    (segment,) = os.listdir(path)
    os.truncate(os.path.join(path, segment), os.path.getsize(os.path.join(path, segment)) - 3)

    ssc2, r2, stream2, out2 = streaming(WAL, tmp_path, start_ms=1000)
    with caplog.at_level(logging.WARNING, logger="runnel.wal"):
        stream2.restore_progress(checkpoint, 1000)
    assert "torn by a crash" in caplog.text
    streaming.start(ssc2, r2)
    ssc2.run_batches(1)
    assert out2 == [["kept"]]


def test_recovering_without_the_wal_warns_that_unprocessed_data_is_lost(streaming, caplog):
    ssc, r, stream, out = streaming({})
    with caplog.at_level(logging.WARNING, logger="runnel.receivers"):
        stream.restore_progress({}, 1000)
    assert "data received but not processed before the failure is lost" in caplog.text


def test_graceful_stop_with_the_wal_delivers_everything(streaming, tmp_path):
    ssc, r, stream, out = streaming(WAL, tmp_path)
    streaming.start(ssc, r)
    r.store_many(range(5))
    r.store("x")
    ssc.stop(stop_gracefully=True)
    assert [x for b in out for x in b] == [0, 1, 2, 3, 4, "x"]
    assert logged(tmp_path, stream) == [[0, 1, 2, 3, 4], ["x"]]
    assert stream._blocks_log._fd is None and stream._batches_log._fd is None   # closed again


def test_a_file_tailing_reliable_receiver_resumes_at_its_acknowledged_offset(streaming, tmp_path, inputs_poll):
    source = str(tmp_path / "lines.txt")
    with open(source, "w") as f:
        f.write("".join(f"{i}\n" for i in range(50)))
    ssc, r, stream, out = streaming(WAL, tmp_path / "ck", receiver=FileTailReceiver(source, max_bytes=64))
    streaming.start(ssc, r)
    inputs_poll(lambda: acknowledged(source) == os.path.getsize(source), "every line acknowledged")
    checkpoint = stream.progress(0)                         # nothing processed yet
    ssc.stop()
    with open(source, "a") as f:
        f.write("50\n51\n")

    ssc2, r2, stream2, out2 = streaming(WAL, tmp_path / "ck", receiver=FileTailReceiver(source))
    stream2.restore_progress(checkpoint, 0)
    streaming.start(ssc2, r2)
    inputs_poll(lambda: acknowledged(source) == os.path.getsize(source), "the new lines acknowledged")
    ssc2.run_batches(1)
    assert out2 == [[str(i) for i in range(52)]]           # logged before the stop, then read after it


# -- rate control -------------------------------------------------------------------------------------
class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_max_rate_makes_store_wait_for_its_records(streaming):
    ssc, r, stream, out = streaming({"spark.streaming.receiver.maxRate": "200"})
    assert stream.generator.limiter.rate == 200
    fake = FakeTime()
    stream.generator.limiter = RateLimiter(200, clock=fake.clock, sleep=fake.sleep)
    streaming.start(ssc, r)
    r.store_many(range(100))
    r.store(np.arange(300))
    for i in range(100):
        r.store(i)
    assert fake.now == pytest.approx(2.5)                   # 500 records at 200/s
    ssc.run_batches(1)
    assert len(out[0]) == 500


def test_a_real_rate_limit_slows_store(streaming):
    ssc, r, stream, out = streaming({"spark.streaming.receiver.maxRate": "2000"})
    streaming.start(ssc, r)
    stream.generator.limiter = RateLimiter(2000)            # no permits saved while starting
    t0 = time.monotonic()
    r.store_many(range(20))                                 # 20 records at 2,000/s: 10 ms
    assert time.monotonic() - t0 >= 0.009


def test_stop_ends_a_long_rate_wait_and_the_block_is_still_delivered(streaming):
    class Flood(Receiver):
        def on_start(self):
            self.thread = threading.Thread(target=self.store_many, args=(range(10**5),))
            self.thread.start()                             # 10^5 records at 1/s: a day

        def on_stop(self):
            self.thread.join(5)

    ssc, r, stream, out = streaming({"spark.streaming.receiver.maxRate": "1"}, receiver=Flood())
    streaming.start(ssc, r)
    t0 = time.monotonic()
    ssc.stop(stop_gracefully=True)
    assert not r.thread.is_alive() and time.monotonic() - t0 < 5
    assert sum(len(b) for b in out) == 10**5


def test_backpressure_sets_the_receiver_rate_from_completed_batches_capped_by_max_rate(streaming):
    conf = {"spark.streaming.backpressure.enabled": "true", "spark.streaming.backpressure.initialRate": "500",
            "spark.streaming.receiver.maxRate": "8000"}
    ssc, r, stream, out = streaming(conf)
    assert stream.generator.limiter.rate == 500             # the initial rate, before any estimate
    streaming.start(ssc, r)
    assert stream.rate_controller in ssc._bus._listeners

    def completed(t, records, processing_ms, scheduling_ms=0):
        info = BatchInfo(batch_time=t, submission_time=t, processing_start_time=t + scheduling_ms,
                         processing_end_time=t + scheduling_ms + processing_ms)
        info.stream_records = {stream.name: records}
        ssc._bus.post("onBatchCompleted", BatchEvent(info))

    completed(1000, 5000, 1000)                             # 5,000/s: the starting point
    assert stream.generator.limiter.rate == 500
    completed(2000, 3000, 1000)                             # slower: 3,000/s
    assert stream.generator.limiter.rate == pytest.approx(3000)
    completed(3000, 10000, 500)                             # 20,000/s: estimate 20,000, capped at maxRate
    assert stream.rate_controller.latest_rate == pytest.approx(20000)
    assert stream.generator.limiter.rate == 8000


def test_a_misspelt_wal_switch_is_an_error_not_a_silent_off():
    ctx = Context("local", conf={"spark.streaming.receiver.writeAheadLog.enable": "ture"})
    try:
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        with pytest.raises(ValueError, match=r"spark.streaming.receiver.writeAheadLog.enable must be true or "
                                             r"false, got 'ture'"):
            ssc.receiver_stream(PushReceiver())
    finally:
        ctx.stop()


def test_wal_switch_spellings():
    from runnel.context import conf_flag
    key = "spark.streaming.receiver.writeAheadLog.enable"
    assert [conf_flag({key: v}, key) for v in (True, "TRUE", "1", "on", False, "false", "0", "off")] == \
        [True] * 4 + [False] * 4
    assert conf_flag({}, key) is False and conf_flag({}, key, True) is True


def test_with_a_checkpoint_key_the_receiver_logs_are_signed(streaming, tmp_path, monkeypatch):
    from runnel.storage.wal import WALSignatureError
    monkeypatch.setenv("RUNNEL_CHECKPOINT_KEY", "the owner's secret")
    ssc, r, stream, out = streaming(WAL, tmp_path)
    streaming.start(ssc, r)
    r.store_many([1, 2])
    ssc.run_batches(1)
    assert out == [[1, 2]]
    path = block_log(tmp_path, stream)
    assert [b.to_records() for _, b in WriteAheadLog(path, key=b"the owner's secret").read_batches()] == [[1, 2]]
    with pytest.raises(WALSignatureError, match="signature mismatch"):
        list(WriteAheadLog(path, key=b"another key").read())
