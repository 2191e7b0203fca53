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
