"""A Kafka word count that the recovery tests run as a separate driver process and kill.

    python kafka_job.py MODE WORKDIR SERVERS TOPIC OUT BATCHES [--die-in-batch N] [--die-in-write N]

MODE is ``fresh`` (setup, no recovery) or ``get_or_create``. The job reads
TOPIC (from its beginning, at most 5 records per partition per 1 s batch),
counts words per batch and writes the counts to OUT through the exactly-once
Kafka sink, committing the input offsets to group ``wc-<OUT>``. The mock
cluster lives in the test process (SERVERS). ``--die-in-batch N``: SIGKILL
in batch N after the sink wrote it; ``--die-in-write N``: SIGKILL while the
sink writes batch N (after 3 records were handed to the producer and some reached the topic). Each dies
once (a marker file in WORKDIR). The manual clock is advanced by the job;
each completed batch prints ``done <i>``.
"""

from __future__ import annotations

import argparse
import operator
import os
import signal
import time

from runnel import Context, ManualClock, StreamingContext
from runnel.kafka import direct_stream, utf8_decoder


class Die:
    """SIGKILL this process once, when ``should(t)`` says so."""

    def __init__(self, marker: str):
        self.marker = marker

    def __call__(self) -> None:
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


class DieInBatch(Die):
    def __init__(self, n: int, marker: str):
        super().__init__(marker)
        self.n = n

    def __call__(self, t, rdd):
        if round(t.timestamp()) == self.n:
            super().__call__()


class DieInWrite(Die):
    """A value serializer that dies at the 4th count of batch N it serializes, once some of the three
    counts handed to the producer before it are in the topic (so the batch is half written)."""

    def __init__(self, n: int, marker: str, clock_file: str, servers: str, topic: str):
        super().__init__(marker)
        self.n, self.clock_file, self.seen = n, clock_file, 0
        self.servers, self.topic, self.before = servers, topic, None

    def records_in_topic(self) -> int:
        import confluent_kafka
        c = confluent_kafka.Consumer({"bootstrap.servers": self.servers, "group.id": "kafka-job-die"})
        try:
            return sum(c.get_watermark_offsets(confluent_kafka.TopicPartition(self.topic, p), timeout=10)[1]
                       for p in range(4))
        finally:
            c.close()

    def __call__(self, count):
        with open(self.clock_file) as f:
            batch = int(f.read())
        if batch == self.n and not os.path.exists(self.marker):
            self.seen += 1
            if self.seen == 1:
                self.before = self.records_in_topic()
            if self.seen == 4:
                deadline = time.monotonic() + 60
                while self.records_in_topic() == self.before and time.monotonic() < deadline:
                    time.sleep(0.01)
                super().__call__()
        return str(count)


def build(args):
    def setup():
        ctx = Context("local", "kafka-job", {"runnel.streaming.checkpoint.interval": "2",
                                             "spark.streaming.kafka.maxRatePerPartition": "5"})
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(os.path.join(args.workdir, "ck"))
        params = {"bootstrap.servers": args.servers, "group.id": f"wc-{args.out}", "auto.offset.reset": "earliest"}
        lines = direct_stream(ssc, [args.topic], params, value_decoder=utf8_decoder, commit_offsets=True)
        counts = lines.flat_map(lambda kv: kv[1].split()).map(lambda w: (w, 1)).reduce_by_key(operator.add)
        serializer = None
        if args.die_in_write:
            serializer = DieInWrite(args.die_in_write, os.path.join(args.workdir, "died-write"),
                                    os.path.join(args.workdir, "batch"), args.servers, args.out)
        counts.save_to_kafka(args.out, {"bootstrap.servers": args.servers}, value_serializer=serializer,
                             name="wc")
        if args.die_in_batch:
            counts.foreach_rdd(DieInBatch(args.die_in_batch, os.path.join(args.workdir, "died-batch")))
        return ssc
    return setup


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["fresh", "get_or_create"])
    for name in ("workdir", "servers", "topic", "out"):
        p.add_argument(name)
    p.add_argument("batches", type=int)
    p.add_argument("--die-in-batch", type=int, default=0)
    p.add_argument("--die-in-write", type=int, default=0)
    args = p.parse_args(argv)
    setup = build(args)
    ck = os.path.join(args.workdir, "ck")
    ssc = setup() if args.mode == "fresh" else StreamingContext.get_or_create(ck, setup)
    ssc.start()
    first = ssc.clock.now() // 1000 + 1
    print(f"start {first}", flush=True)
    for i in range(first, args.batches + 1):
        with open(os.path.join(args.workdir, "batch"), "w") as f:
            f.write(str(i))
        ssc.run_batches(1)
        print(f"done {i}", flush=True)
    ssc.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
