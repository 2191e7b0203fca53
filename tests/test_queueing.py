"""When processing lags, batches queue and run one after another in time order."""

import threading

from runnel import ManualClock, StreamingContext, StreamingListener


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
    ssc.stop(stop_spark_context=False)
    assert out == [[2]]                               # batch 1 was lost to the engine error, batch 2 ran
    try:
        ssc.await_termination(timeout=0)
    except RuntimeError as e:
        assert "bookkeeping broke" in str(e)
    else:
        raise AssertionError("the engine error was not reported")
