import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from runnel import Batch, StreamingListener
from runnel.dstream.receivers import Receiver, ReceiverInputDStream, ReceiverStoppedError


class PushReceiver(Receiver):
    """A receiver the test feeds by calling store() itself (store is thread-safe)."""

    def __init__(self):
        super().__init__()
        self.starts = 0
        self.stops = 0

    def on_start(self):
        self.starts += 1

    def on_stop(self):
        self.stops += 1


class Events(StreamingListener):
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def _add(self, kind, event):
        with self.lock:
            self.events.append((kind, event.receiverInfo()))

    def onReceiverStarted(self, e): self._add("started", e)  # noqa: E704
    def onReceiverError(self, e): self._add("error", e)  # noqa: E704
    def onReceiverStopped(self, e): self._add("stopped", e)  # noqa: E704

    def kinds(self):
        with self.lock:
            return [k for k, _ in self.events]


def collecting(stream):
    out = []
    stream.foreach_rdd(lambda rdd: out.append(rdd.collect()))
    return out


def test_receiver_stores_records_lists_iterators_and_blocks_in_arrival_order(inputs_ssc, inputs_poll):
    ssc = inputs_ssc()
    r = PushReceiver()
    stream = ssc.receiver_stream(r)
    out = collecting(stream)
    ssc.start()
    inputs_poll(r.is_started, "the receiver to start")
    r.store(1)
    r.store([2, 3])
    r.store(iter([4]))
    r.store_many(range(5, 7))
    r.store(np.array([7, 8], dtype=np.int64))
    r.store(pd.DataFrame({"key": ["a", "b"], "value": [1.5, 2.5]}))
    r.store(pa.table({"key": ["c"], "value": [3.5]}))
    r.store(Batch.from_records([("d", 4.5)]))
    r.store(("e", 5))                              # a tuple is one record
    assert stream.num_received == 13
    ssc.run_batches(2)
    assert out == [[1, 2, 3, 4, 5, 6, 7, 8, ("a", 1.5), ("b", 2.5), ("c", 3.5), ("d", 4.5), ("e", 5)], []]
    assert all(type(v) is int for v in out[0][:8])


def test_each_batch_takes_only_what_was_stored_since_the_previous_batch(inputs_ssc, inputs_poll):
    ssc = inputs_ssc()
    r = PushReceiver()
    stream = ssc.receiver_stream(r)
    out = collecting(stream)
    counts = collecting(stream.count())
    ssc.start()
    inputs_poll(r.is_started, "the receiver to start")
    r.store_many(["x", "y"])
    ssc.run_batches(1)
    assert not stream.has_pending()
    ssc.run_batches(1)
    r.store("z")
    assert stream.has_pending()
    ssc.run_batches(1)
    assert out == [["x", "y"], [], ["z"]]
    assert counts == [[2], [0], [1]]


def test_little_data_is_one_partition_and_large_data_one_per_block(inputs_ssc, inputs_poll):
    ssc = inputs_ssc()
    r = PushReceiver()
    stream = ReceiverInputDStream(ssc, r, block_records=1000)
    sizes = []
    stream.glom().foreach_rdd(lambda rdd: sizes.append([len(p) for p in rdd.collect()]))
    ssc.start()
    inputs_poll(r.is_started, "the receiver to start")
    for i in range(10):                            # many small stores merge into one partition
        r.store_many(range(i * 10, i * 10 + 10))
    ssc.run_batches(1)
    r.store_many(range(2500))                      # records cut into blocks of 1000
    r.store(np.arange(1500))                       # a stored block stays one partition
    ssc.run_batches(1)
    assert sizes == [[100], [1000, 1000, 500, 1500]]


def test_no_record_lost_or_duplicated_when_storing_during_batches(inputs_ssc, inputs_poll):
    n = 100_000
    ssc = inputs_ssc()
    r = PushReceiver()
    stream = ReceiverInputDStream(ssc, r, block_records=7_000)
    out = collecting(stream)
    ssc.start()
    inputs_poll(r.is_started, "the receiver to start")
    done = threading.Event()
    batch_ran = threading.Semaphore(0)

    def feed():
        i, pause_at = 0, 20_000
        while i < n:                               # single records and odd-sized chunks, interleaved
            if i % 3 == 0:
                r.store_many(range(i, min(n, i + 37)))
                i = min(n, i + 37)
            else:
                r.store(i)
                i += 1
            if i >= pause_at:                      # spread the stores over several batches
                pause_at += 20_000
                assert batch_ran.acquire(timeout=30), "no batch ran while storing"
        done.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    batches = 0
    while not done.is_set() or stream.has_pending():
        ssc.run_batches(1)
        batch_ran.release()
        batches += 1
        assert batches < 10_000, "the stream never drained"
    feeder.join(10)
    assert batches >= 5
    got = [x for batch in out for x in batch]
    assert len(got) == n
    assert got == list(range(n))                   # each record once, in arrival order
    assert sum(stream.records.values()) <= n


def test_graceful_stop_delivers_data_stored_before_the_stop(inputs_ssc, inputs_poll):
    ssc = inputs_ssc()
    r = PushReceiver()
    stream = ssc.receiver_stream(r)
    out = collecting(stream)
    ssc.start()
    inputs_poll(r.is_started, "the receiver to start")
    ssc.run_batches(1)
    r.store_many(range(1000))
    r.store(pd.DataFrame({"value": [-1, -2]}))
    ssc.stop(stop_spark_context=False, stop_gracefully=True)
    assert [x for batch in out for x in batch] == list(range(1000)) + [-1, -2]
    assert (r.starts, r.stops) == (1, 1)
    assert r.is_stopped()
    with pytest.raises(ReceiverStoppedError, match="has stopped"):
        r.store(5)
    ssc.stop(stop_spark_context=False)             # idempotent: on_stop is not called again
    assert r.stops == 1


def test_a_receiver_thread_runs_until_stopped(inputs_ssc, inputs_poll):
    class Ticker(Receiver):
        def on_start(self):
            self.thread = threading.Thread(target=self.run, daemon=True)
            self.thread.start()

        def on_stop(self):
            self.thread.join(5)

        def run(self):
            i = 0
            while not self.is_stopped():
                self.store(i)
                i += 1
                if i % 100 == 0:
                    threading.Event().wait(0.001)

    ssc = inputs_ssc()
    r = Ticker()
    stream = ssc.receiver_stream(r)
    out = collecting(stream)
    ssc.start()
    inputs_poll(lambda: stream.num_received > 500, "500 records")
    ssc.run_batches(1)
    ssc.stop(stop_spark_context=False, stop_gracefully=True)
    got = [x for batch in out for x in batch]
    assert got == list(range(len(got))) and len(got) == stream.num_received
    assert not r.thread.is_alive()


def test_restart_and_report_error_post_listener_events(inputs_ssc, inputs_poll):
    class Flaky(Receiver):
        starts = 0
        stops = 0

        def on_start(self):
            self.starts += 1
            self.store(f"start-{self.starts}")
            if self.starts == 1:
                self.report_error("bad input seen", ValueError("boom"))
                self.restart("connection lost", OSError("reset"), delay=0)

        def on_stop(self):
            self.stops += 1

    ssc = inputs_ssc()
    listener = Events()
    ssc.add_streaming_listener(listener)
    r = Flaky()
    stream = ssc.receiver_stream(r)
    out = collecting(stream)
    ssc.start()
    inputs_poll(lambda: listener.kinds().count("started") == 2 and r.is_started(), "the restart")
    ssc.run_batches(1)
    ssc.stop(stop_spark_context=False)
    assert out == [["start-1", "start-2"]]
    assert (r.starts, r.stops) == (2, 2)
    # restart with an error reports it (onReceiverError) before the stop
    assert listener.kinds() == ["started", "error", "error", "stopped", "started", "stopped"]
    infos = [info for _, info in listener.events]
    assert infos[1].lastErrorMessage() == "bad input seen" and "ValueError: boom" in infos[1].lastError()
    assert infos[2].lastErrorMessage() == "connection lost" and "OSError: reset" in infos[2].lastError()
    assert "connection lost" in infos[3].last_error_message and "OSError: reset" in infos[3].last_error
    assert infos[3].active is False and infos[4].active is True and infos[5].active is False
    assert {i.streamId() for i in infos} == {stream.stream_id}
    assert {i.name for i in infos} == {"Flaky"}


def test_a_failing_on_start_is_retried_with_backoff_then_given_up(inputs_ssc, inputs_poll):
    class Broken(Receiver):
        restart_backoff = (0.001, 0.002)
        max_restarts = 2
        stops = 0

        def on_start(self):
            raise RuntimeError("cannot open device")

        def on_stop(self):
            self.stops += 1

    ssc = inputs_ssc()
    listener = Events()
    ssc.add_streaming_listener(listener)
    r = Broken()
    out = collecting(ssc.receiver_stream(r))
    ssc.start()
    inputs_poll(lambda: r.is_stopped() and listener.kinds().count("stopped") == 3, "the receiver to give up")
    ssc.run_batches(1)                             # the context keeps running
    assert out == [[]]
    assert listener.kinds() == ["started", "error", "stopped"] * 2 + ["started", "error", "error", "stopped"]
    infos = [info for _, info in listener.events]
    assert all("cannot open device" in i.last_error for i in infos if i.last_error)
    assert infos[2].last_error_message.startswith("Restarting receiver with delay 1 ms: Error starting receiver")
    assert infos[-1].last_error_message.startswith(f"Receiver {infos[0].stream_id} gave up after 2 restarts")
    assert r.stops == 3


def test_a_restart_after_data_was_stored_resets_the_backoff_and_the_limit(inputs_ssc, inputs_poll):
    class Unstable(Receiver):
        restart_backoff = (0.001, 0.001)
        max_restarts = 1
        starts = 0

        def on_start(self):
            self.starts += 1
            if self.starts <= 4:                   # every start stores something, then fails
                self.store_many([self.starts])
                raise OSError("dropped")

    ssc = inputs_ssc()
    r = Unstable()
    out = collecting(ssc.receiver_stream(r))
    ssc.start()
    inputs_poll(lambda: r.starts == 5 and r.is_started(), "the fifth start")
    ssc.run_batches(1)
    assert out == [[1, 2, 3, 4]]


def test_receiver_stop_ends_it_but_its_data_is_still_delivered(inputs_ssc, inputs_poll):
    class Once(Receiver):
        def on_start(self):
            self.store_many(["a", "b"])
            self.stop("all sent")

    ssc = inputs_ssc()
    listener = Events()
    ssc.add_streaming_listener(listener)
    r = Once()
    out = collecting(ssc.receiver_stream(r))
    ssc.start()
    inputs_poll(lambda: "stopped" in listener.kinds(), "the receiver to stop itself")
    ssc.run_batches(2)
    assert out == [["a", "b"], []]
    assert listener.events[-1][1].last_error_message == "all sent"


def test_camel_case_receiver_api(inputs_ssc, inputs_poll):
    class Scala(Receiver):
        calls = []

        def onStart(self):  # noqa: N802 — Spark's spelling must work
            self.calls.append("start")
            self.storeMany([1, 2])
            self.reportError("just saying", None)

        def onStop(self):  # noqa: N802
            self.calls.append("stop")

    ssc = inputs_ssc()
    listener = Events()
    ssc.add_streaming_listener(listener)
    r = Scala()
    stream = ssc.receiver_stream(r)
    out = collecting(stream)
    ssc.start()
    inputs_poll(lambda: "error" in listener.kinds(), "the reported error")
    assert r.isStarted() and not r.isStopped() and r.streamId() == stream.stream_id
    ssc.run_batches(1)
    ssc.stop(stop_spark_context=False)
    assert out == [[1, 2]] and Scala.calls == ["start", "stop"]


def test_receiver_misuse_gives_clear_errors(inputs_ssc):
    ssc = inputs_ssc()
    r = PushReceiver()
    with pytest.raises(ReceiverStoppedError, match="not attached"):
        r.store(1)
    with pytest.raises(TypeError, match="needs a runnel Receiver"):
        ssc.receiver_stream(object())
    ssc.receiver_stream(r)
    with pytest.raises(ValueError, match="already attached"):
        ssc.receiver_stream(r)
    with pytest.raises(ValueError, match="block_records"):
        ReceiverInputDStream(ssc, PushReceiver(), block_records=0)
    assert r.is_stopped()                          # not started yet
