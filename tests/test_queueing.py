"""When processing lags, batches queue and run one after another in time order."""

import threading
import time

import numpy as np
import pytest

from runnel import ManualClock, StreamingContext, StreamingListener
from runnel.dstream.receivers import Receiver


class Delays(StreamingListener):
    def __init__(self):
        self.infos = []

    def onBatchCompleted(self, batchCompleted):
        self.infos.append(batchCompleted.batchInfo())


def test_batches_generated_while_one_runs_wait_their_turn(ctx):
    clock = ManualClock()
    ssc = StreamingContext(ctx, 1, clock=clock)
    gate, running = threading.Event(), threading.Event()
    order = []

    def slow_output(t, rdd):
        order.append((t.second, rdd.collect()))
        if len(order) == 1:
            running.set()
            assert gate.wait(30), "test never released the first batch"

    delays = Delays()
    ssc.add_streaming_listener(delays)
    ssc.queue_stream([[1], [2], [3]]).foreach_rdd(slow_output)
    ssc.start()
    clock.advance(1000)
    assert running.wait(30)
    clock.advance(2000)                          # batches 2 and 3 are generated while batch 1 still runs
    gate.set()
    ssc._scheduler.wait_for_batch(3000, 30)
    ssc.stop(stop_spark_context=False)
    assert order == [(1, [1]), (2, [2]), (3, [3])]
    assert [i.batch_time for i in delays.infos] == [1000, 2000, 3000]
    # the queued batches were submitted at 3000 ms (clock time) and started only after batch 1 ended
    assert all(i.scheduling_delay is not None and i.scheduling_delay >= 0 for i in delays.infos)
    assert delays.infos[1].submission_time == 3000 and delays.infos[1].processing_start_time == 3000


def test_a_batch_the_engine_fails_to_build_is_reported_and_later_batches_run(ctx, monkeypatch):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    out = []
    ssc.queue_stream([[1], [2]]).foreach_rdd(lambda rdd: out.append(rdd.collect()))
    real = ssc._graph.num_records
    calls = []

    def broken_once(t):
        calls.append(t)
        if len(calls) == 1:
            raise RuntimeError("bookkeeping broke")
        return real(t)

    monkeypatch.setattr(ssc._graph, "num_records", broken_once)
    ssc.start()
    ssc.clock.advance(1000)
    ssc.clock.advance(1000)
    ssc._scheduler.wait_for_batch(2000, 30)
    with pytest.raises(RuntimeError, match="bookkeeping broke"):   # never reported: stop() raises it
        ssc.stop(stop_spark_context=False)
    assert out == [[2]]                               # batch 1 was lost to the engine error, batch 2 ran
    with pytest.raises(RuntimeError, match="bookkeeping broke"):   # and every await still does
        ssc.await_termination(timeout=0)


# --- a backlog is bounded and reported --------------------------------------------------------------------------

class Pushed(Receiver):
    """The test stores into it by hand, from its own thread."""

    def on_start(self):
        pass

    def on_stop(self):
        pass


def wait_for(condition, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def test_queued_batches_are_reported_once_per_episode(ctx, clean_conf, caplog):
    ctx.conf["runnel.streaming.backlogWarning.batches"] = "2"
    clock = ManualClock()
    ssc = StreamingContext(ctx, 1, clock=clock)
    gates = {1: threading.Event(), 5: threading.Event()}
    running = {1: threading.Event(), 5: threading.Event()}

    def slow_output(t, rdd):
        if t.second in gates:
            running[t.second].set()
            assert gates[t.second].wait(30), "test never released the batch"

    ssc.queue_stream([[1]] * 8).foreach_rdd(slow_output)
    ssc.start()
    try:
        clock.advance(1000)
        assert running[1].wait(30)
        clock.advance(3000)                      # batches 2, 3 and 4 queue behind batch 1
        wait_for(lambda: len(ssc._scheduler.core.queue) == 3, "three queued batches")
        gates[1].set()
        ssc._scheduler.wait_for_batch(4000, 30)
        clock.advance(1000)                      # batch 5 starts with nothing queued: the episode is over
        assert running[5].wait(30)
        clock.advance(2000)                      # a second episode: 6 and 7 queue behind 5
        wait_for(lambda: len(ssc._scheduler.core.queue) == 2, "two queued batches")
        gates[5].set()
        ssc._scheduler.wait_for_batch(7000, 30)
    finally:
        ssc.stop(stop_spark_context=False)
    warnings = [r.getMessage() for r in caplog.records if "batches are queueing" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert "2 wait (1970-01-01 00:00:02 to 1970-01-01 00:00:03)" in warnings[0]
    assert "2 wait (1970-01-01 00:00:06 to 1970-01-01 00:00:07)" in warnings[1]


def test_a_receiver_waits_while_its_unprocessed_data_fill_the_bound_and_loses_nothing(ctx, clean_conf, caplog):
    ctx.conf["runnel.streaming.receiver.maxQueuedBytes"] = "1k"
    clock = ManualClock()
    ssc = StreamingContext(ctx, 1, clock=clock)
    receiver = Pushed()
    gate, running = threading.Event(), threading.Event()
    got = []

    def slow_output(t, rdd):
        got.extend(rdd.collect())
        if t.second == 1:
            running.set()
            assert gate.wait(30), "test never released the first batch"

    stream = ssc.receiver_stream(receiver)
    stream.foreach_rdd(slow_output)
    ssc.start()
    chunk = np.arange(100, dtype=np.int64)       # 800 bytes a store
    stored = []

    def feed():
        for i in range(6):
            receiver.store(chunk + 100 * i)
            stored.append(i)

    feeder = threading.Thread(target=feed, daemon=True)
    try:
        receiver.store(chunk - 100)
        clock.advance(1000)                      # batch 1 takes 800 bytes and blocks in its output
        assert running.wait(30)
        receiver.store(chunk - 200)
        clock.advance(1000)                      # batch 2 takes 800 more: 1,600 bytes unprocessed >= 1 KiB
        wait_for(lambda: stream.generator.queued_bytes == 1600, "batch 2 to take its data")
        feeder.start()
        wait_for(lambda: stream.generator._waiting_warned, "the receiver to wait for room")
        assert stored == [] and feeder.is_alive()    # the receiver waits: nothing dropped, nothing taken
        gate.set()                               # batches 1 and 2 complete: the receiver goes on
        feeder.join(30)
        assert stored == list(range(6))
        ssc.run_batches(2)
    finally:
        ssc.stop(stop_spark_context=False, stop_gracefully=True)
    expected = [*range(-100, 0), *range(-200, -100), *range(600)]
    assert sorted(got) == sorted(expected) and len(got) == len(expected)
    waits = [r.getMessage() for r in caplog.records if "the receiver of" in r.getMessage() and "waits" in r.getMessage()]
    assert len(waits) == 1 and "maxQueuedBytes" in waits[0] and "2 batches" in waits[0], waits
