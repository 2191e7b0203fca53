"""Receiver ingest: records/s through ``Receiver.store`` with the write-ahead log off and on.

One measurement stores ``BLOCKS`` blocks from the calling thread (as a
receiver thread would). ``track_store_records_per_s`` times the stores only
(what the receiver thread sees; a batch then takes them, untimed, so memory
stays flat); ``track_ingest_records_per_s`` times the stores plus the batch
that takes them into a Dataset (without the log, converting records to
columns happens there). ``wal``: ``off``; ``on`` — every ``store`` returns
once its block is fsynced (a reliable receiver acks its source after that);
``on-ack`` — ``store(block, ack=...)``, blocks logged at once and fsynced
together (every 4 MiB, or when the batch takes them). The figure worth
quoting is the ratio to ``off``, which depends on the disk's fsync latency
(``track_fsyncs_per_s`` measures it in the same run).

Blocks: ``batch`` is a columnar block (int64 key, float64 value; the fast
path), ``records`` a list of Python ints (``store_many``, converted to a
columnar block before it is logged).
"""

import os
import shutil
import tempfile
import time

import numpy as np

BLOCKS = 20
KINDS = {"batch-10k": 10_000, "records-1k": 1_000}


class ReceiverStore:
    params = [["off", "on", "on-ack"], list(KINDS)]
    param_names = ["wal", "block"]
    number = 1
    repeat = (3, 10, 20.0)
    warmup_time = 0
    processes = 1
    timeout = 300

    def setup(self, wal, block):
        from runnel import Batch, Context, ManualClock, StreamingContext
        from runnel.dstream.receivers import Receiver

        class Push(Receiver):
            def on_start(self):
                pass

        self.dir = tempfile.mkdtemp(prefix="runnel-asv-wal-")
        conf = {"spark.streaming.receiver.writeAheadLog.enable": "true"} if wal != "off" else {}
        self.ctx = Context("local", "runnel-asv", conf)
        self.ssc = StreamingContext(self.ctx, 1, clock=ManualClock())
        if wal != "off":
            self.ssc.checkpoint(os.path.join(self.dir, "checkpoint"))
        self.receiver = Push()
        self.ssc.receiver_stream(self.receiver).foreach_rdd(lambda rdd: None)
        self.ssc.start()
        n = KINDS[block]
        rng = np.random.default_rng(0)
        if block.startswith("batch"):
            self.block = Batch.from_pairs(rng.integers(0, 100_000, n), rng.random(n))
        else:
            self.block = [int(x) for x in rng.integers(0, 100_000, n)]
        self.records = n * BLOCKS
        self.ack = (lambda: None) if wal == "on-ack" else None
        self.store_all()                  # warm-up: first segment, first encodings
        self.ssc.run_batches(1)

    def teardown(self, wal, block):
        self.ssc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def store_all(self):
        for _ in range(BLOCKS):
            self.receiver.store(self.block, ack=self.ack)

    def track_store_records_per_s(self, wal, block):
        t0 = time.perf_counter()
        self.store_all()
        elapsed = time.perf_counter() - t0
        self.ssc.run_batches(1)
        return self.records / elapsed

    track_store_records_per_s.unit = "records/s"

    def track_ingest_records_per_s(self, wal, block):
        t0 = time.perf_counter()
        self.store_all()
        self.ssc.run_batches(1)
        return self.records / (time.perf_counter() - t0)

    track_ingest_records_per_s.unit = "records/s"

    def track_fsyncs_per_s(self, wal, block):
        """The disk's rate of small appends + fdatasync in the log directory (the WAL's floor)."""
        path = os.path.join(self.dir, "fsync-probe")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            t0 = time.perf_counter()
            for _ in range(50):
                os.write(fd, b"x" * 64)
                os.fdatasync(fd)
            return 50 / (time.perf_counter() - t0)
        finally:
            os.close(fd)

    track_fsyncs_per_s.unit = "fsyncs/s"
