"""The Dask executor when its connection to the scheduler drops: retried with backoff, then a clear error.

A dropped connection is simulated on the session's cluster (a Client call
that raises as a closed comm does); a scheduler that is gone for good is a
small in-process cluster of this test's own, closed mid-stream.
"""

from __future__ import annotations

import operator
import time

import pytest

from runnel import Context, ManualClock, StreamingContext
from runnel.dstream.receivers import Receiver
from runnel.executors.dask_comm import ClusterUnreachable, retrying

distributed = pytest.importorskip("distributed")
from distributed.comm.core import CommClosedError  # noqa: E402


class Flaky:
    """Wraps a client method: the first ``fails`` calls raise CommClosedError, as a dropped connection does."""

    def __init__(self, method, fails: int):
        self.method, self.fails, self.calls = method, fails, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.fails:
            raise CommClosedError("in <TCP (closed) ConnectionPool.scatter local=tcp://127.0.0.1:1>: Stream is closed")
        return self.method(*args, **kwargs)


@pytest.fixture
def dctx(dask_master):
    c = Context(dask_master, conf={"runnel.executor.inlineBytes": 0})
    yield c
    c.stop()


def test_a_dropped_connection_during_scatter_and_gather_is_retried(dctx, monkeypatch):
    client = dctx.executor.client
    scatter, gather = Flaky(client.scatter, 2), Flaky(client.gather, 1)
    monkeypatch.setattr(client, "scatter", scatter)
    monkeypatch.setattr(client, "gather", gather)
    pairs = dctx.parallelize([(i % 4, i) for i in range(40)], 2)       # put in the driver, scattered by the stage
    assert sorted(pairs.reduce_by_key(operator.add).collect()) == [(k, sum(range(k, 40, 4))) for k in range(4)]
    assert scatter.calls >= 3 and gather.calls >= 2                      # the failed calls were made again


def test_retrying_gives_up_after_its_budget_and_names_the_scheduler_and_what_it_did():
    class Client:
        status = "running"

    naps = []

    def never():
        raise CommClosedError("Stream is closed")

    with pytest.raises(ClusterUnreachable) as err:
        retrying(Client(), "tcp://10.0.0.9:8786", "running rdd at 1970-01-01 00:00:02", never, 1.0,
                 sleep=naps.append)
    assert naps == [0.05, 0.1, 0.2, 0.4, 0.8]                             # doubling, while it fits the budget
    text = str(err.value)
    assert "tcp://10.0.0.9:8786" in text and "running rdd at 1970-01-01 00:00:02" in text and "6 time(s)" in text
    assert isinstance(err.value.__cause__, CommClosedError)

    def user_error():
        raise ValueError("not a connection problem")

    with pytest.raises(ValueError):                                       # only connection errors are retried
        retrying(Client(), "tcp://10.0.0.9:8786", "x", user_error, 1.0, sleep=naps.append)


class PushReceiver(Receiver):
    def on_start(self):
        pass


@pytest.mark.filterwarnings("ignore:.*(lose scattered data|connection|closed|Stream is closed).*")
def test_a_cluster_gone_mid_stream_fails_the_batch_clearly_and_its_data_is_replayed_from_the_wal(tmp_path):
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    address = cluster.scheduler_address
    conf = {"spark.streaming.receiver.writeAheadLog.enable": "true", "runnel.executor.inlineBytes": 0,
            "runnel.dask.retrySeconds": 1}
    client = distributed.Client(address, timeout=1, set_as_default=False)
    try:
        ctx = Context(client, conf=conf)
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(str(tmp_path))
        r = PushReceiver()
        stream = ssc.receiver_stream(r)
        out = []
        stream.map(lambda x: x * 10).foreach_rdd(lambda rdd: out.append(sorted(rdd.collect())))
        ssc.start()
        deadline = time.monotonic() + 10
        while not r.is_started():
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.005)
        r.store_many([1, 2, 3])
        ssc.run_batches(1)
        assert out == [[10, 20, 30]]
        progress = stream.progress(1000)
        cluster.close()                                                    # the scheduler is gone for good
        r.store_many([4, 5])
        started = time.monotonic()
        with pytest.raises(ClusterUnreachable) as err:
            ssc.run_batches(1)
        assert time.monotonic() - started < 20                             # bounded, not a hang
        text = str(err.value)
        assert address in text and "1970-01-01 00:00:02" in text, text     # the scheduler and the batch
        ssc.stop(stop_spark_context=False)
        ctx.stop()
    finally:
        client.close()
        cluster.close()
    # the received data of the failed batch is in the write-ahead log: a recovered run processes it exactly
    ctx2 = Context("local", conf=conf)
    ssc2 = StreamingContext(ctx2, 1, clock=ManualClock(1000))
    ssc2.checkpoint(str(tmp_path))
    stream2 = ssc2.receiver_stream(PushReceiver())
    out2 = []
    stream2.map(lambda x: x * 10).foreach_rdd(lambda rdd: out2.append(sorted(rdd.collect())))
    stream2.restore_progress(progress, 1000)
    ssc2.start()
    try:
        ssc2.run_batches(1)
    finally:
        ssc2.stop()
    assert out2 == [[40, 50]]
