"""A worker SIGKILLed mid-batch is replaced, its task retried, and the stream's results are exact."""

import os
import signal

import numpy as np

from runnel import Batch, Context, ManualClock, StreamingContext


def test_streaming_batch_survives_a_killed_worker(tmp_path):
    marker = str(tmp_path / "killed-once")
    driver = os.getpid()

    def kill_first_worker_once(x):
        if os.getpid() != driver and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return x % 10, 1

    n = 100_000                                    # big enough that the stage goes to the workers
    batches = [Batch.from_values(np.arange(n) + i) for i in range(3)]
    with Context("local[2]") as ctx:
        died_before = ctx.executor.stats["workers_died"]
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        out = []
        ssc.queue_stream(batches).map(kill_first_worker_once).reduce_by_key(lambda a, b: a + b) \
            .foreach_rdd(lambda rdd: out.append(sorted(rdd.collect())))
        ssc.start()
        ssc.run_batches(3)
        ssc.stop(stop_spark_context=False)
        assert os.path.exists(marker)
        assert ctx.executor.stats["workers_died"] == died_before + 1
    assert out == [[(k, n // 10) for k in range(10)]] * 3
    ssc.await_termination(timeout=0)               # no batch failed


def test_state_and_inverse_window_survive_a_worker_killed_mid_batch(tmp_path):
    """Issue 4: a worker SIGKILLed while a stateful, windowed batch runs — state and window stay exact."""
    import operator

    from runnel.updaters import running_sum
    marker = str(tmp_path / "killed-once")
    driver = os.getpid()

    def kill_in_batch_three(kv):
        k, v = kv
        if v == 3 and os.getpid() != driver and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return k % 50, v

    n = 60_000                                     # big enough that the stages go to the workers
    batches = [[(k, i + 1) for k in range(n)] for i in range(6)]
    with Context("local[2]") as ctx:
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(str(tmp_path / "ck"))
        pairs = ssc.queue_stream(batches).map(kill_in_batch_three)
        totals, windows = [], []
        pairs.update_state_by_key(running_sum()).foreach_rdd(lambda rdd: totals.append(dict(rdd.collect())))
        pairs.reduce_by_key_and_window(operator.add, operator.sub, 5, 1) \
            .foreach_rdd(lambda rdd: windows.append(dict(rdd.collect())))
        ssc.start()
        ssc.run_batches(6)
        ssc.stop(stop_spark_context=False)
        assert os.path.exists(marker)
        assert ctx.executor.stats["workers_died"] >= 1
    per_key = n // 50
    assert totals == [{k: per_key * sum(range(1, i + 2)) for k in range(50)} for i in range(6)]
    assert windows == [{k: per_key * sum(range(max(1, i - 3), i + 2)) for k in range(50)} for i in range(6)]
    ssc.await_termination(timeout=0)
