"""Receivers on Dask workers (``receiver_stream(r, on_worker=True)``): run there, blocks stay there.

On the session's LocalCluster of 2 worker processes (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from runnel import Context, ManualClock, StreamingContext
from runnel.dstream.receivers import Receiver
from runnel.listener import StreamingListener


class Numbers(Receiver):
    """Stores (its process id, i) for i < n in blocks of 10, from its own thread; then waits for on_stop."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def on_start(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def on_stop(self):
        self.thread.join()

    def run(self):
        pid = os.getpid()
        for start in range(0, self.n, 10):
            self.store([(pid, i) for i in range(start, min(self.n, start + 10))])


class Events(StreamingListener):
    def __init__(self):
        self.seen = []

    def onReceiverStarted(self, e):  # noqa: N802 — Spark's spelling
        self.seen.append(("started", e.receiver_info.active))

    def onReceiverStopped(self, e):  # noqa: N802
        self.seen.append(("stopped", e.receiver_info.active))


@pytest.fixture
def dctx(dask_master):
    c = Context(dask_master, conf={"runnel.executor.inlineBytes": 0})
    yield c
    c.stop()


def test_a_receiver_runs_on_a_worker_and_its_blocks_stay_there(dctx):
    ex = dctx.executor
    ssc = StreamingContext(dctx, 1, clock=ManualClock())
    events = Events()
    ssc.add_streaming_listener(events)
    stream = ssc.receiver_stream(Numbers(200), on_worker=True)
    got, holders = [], []

    def look(rdd):
        refs, owner = rdd.materialize()
        try:
            for r in refs:
                block = ex.store.block(r)
                if block.frozen is not None:                # an empty batch: made in the driver
                    assert r.nrows == 0
                    continue
                f = block.future
                f.result()
                holders.append(set(ex.client.who_has([f])[f.key]))
        finally:
            if owner is not None:
                owner.release()
        got.extend(rdd.collect())

    stream.foreach_rdd(look)
    ssc.start()
    deadline = time.monotonic() + 30
    while len(got) < 200:                          # bounded: the receiver stores on its own thread
        assert time.monotonic() < deadline, f"only {len(got)} of 200 records arrived"
        ssc.run_batches(1)
    ssc.stop(stop_spark_context=False, stop_gracefully=True)
    worker = stream.worker
    assert worker in ex.worker_addresses()
    pids = {pid for pid, _ in got}
    assert len(pids) == 1 and os.getpid() not in pids                           # stored in a worker process
    assert pids == {ex.client.run(os.getpid, workers=[worker])[worker]}         # ... the one it was placed on
    assert [i for _, i in got] == list(range(200))                              # each record once, in order
    assert holders and all(h == {worker} for h in holders)                      # the blocks never left it
    assert stream.num_received == 200
    deadline = time.monotonic() + 10
    while ("stopped", False) not in events.seen:                                 # events come from the worker
        assert time.monotonic() < deadline, f"no onReceiverStopped: {events.seen}"
        time.sleep(0.01)
    assert events.seen[0] == ("started", True)


def test_what_is_not_built_for_receivers_on_workers_raises_at_start(dctx, tmp_path):
    ctx = Context(dctx.master, conf={"spark.streaming.receiver.writeAheadLog.enable": "true"})
    try:
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(str(tmp_path))
        ssc.receiver_stream(Numbers(1), on_worker=True).foreach_rdd(lambda rdd: None)
        with pytest.raises(ValueError, match="write-ahead log is not built for receivers on Dask workers"):
            ssc.start()
    finally:
        ctx.stop()
    with Context("local") as local:
        with pytest.raises(ValueError, match="on_worker=True.* needs a dask:// master"):
            StreamingContext(local, 1, clock=ManualClock()).receiver_stream(Numbers(1), on_worker=True)
