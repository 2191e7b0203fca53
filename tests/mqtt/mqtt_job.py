"""An MQTT word count that the kill test runs as a separate driver process and SIGKILLs.

    python mqtt_job.py MODE WORKDIR BROKER TOPIC [--expect N] [--pause S]

MODE is ``fresh`` (setup, no recovery) or ``get_or_create``. The job
subscribes to ``TOPIC/#`` at QoS 1 with the receiver write-ahead log on and
counts the words of the payloads with ``update_state_by_key``, writing the
totals of every batch through the exactly-once SQLite sink (``out.db``,
table ``totals``: at least once), and the same totals deduplicated by the
message id each payload starts with (table ``exact``: exactly once).
It prints ``subscribed`` once the broker granted the subscription, then runs
a batch every ``--pause`` seconds (the manual clock advanced by the job
itself), printing ``done <batch> <records received> <ids counted>`` after each. With
``--expect N`` it stops (gracefully) once the newest totals count N distinct
``id<i>`` words, printing ``final``; without, it runs until killed. ``--die-before-ack N`` kills
it (SIGKILL) once N records were received, right after a block was logged
and before it was acknowledged. Every wait is bounded (60 s).
"""

from __future__ import annotations

import argparse
import operator
import os
import signal
import sqlite3
import sys
import time

from runnel import Context, ManualClock, StreamingContext
from runnel.mqtt import mqtt_stream

DEADLINE = 60.0


def add(new, old):
    return sum(new) + (old or 0)


def first(new, old):
    return old if old is not None else new[0]


def build(args):
    def setup():
        conf = {"spark.streaming.receiver.writeAheadLog.enable": "true", "runnel.streaming.checkpoint.interval": "2"}
        ctx = Context.get_or_create("local", "mqtt-job", conf)
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(os.path.join(args.workdir, "ck"))
        lines = mqtt_stream(ssc, args.broker, f"{args.topic}/#", qos=1, encoding="utf-8", with_topic=False)
        db = os.path.join(args.workdir, "out.db")
        totals = lines.flat_map(str.split).map(lambda w: (w, 1)).update_state_by_key(add).named("totals")
        totals.save_to_sqlite(db, "totals", ["word", "n"])
        # exactly-once totals: a redelivered message has the id of its first delivery, so keep one word per id
        words = lines.map(lambda line: tuple(line.split())).update_state_by_key(first).named("word_of_id")
        words.map(lambda kv: (kv[1], 1)).reduce_by_key(operator.add).save_to_sqlite(db, "exact", ["word", "n"])
        return ssc
    return setup


def ids_counted(workdir: str) -> int:
    try:
        with sqlite3.connect(os.path.join(workdir, "out.db")) as db:
            return db.execute("SELECT count(*) FROM totals WHERE word LIKE 'id%' AND batch_time = "
                              "(SELECT max(batch_time) FROM totals)").fetchone()[0]
    except sqlite3.OperationalError:          # no table yet
        return 0


COUNTED = [0]          # ids counted by the newest batch (the main loop updates it)


def die_before_ack(stream, n: int) -> None:
    """SIGKILL this process once ``n`` records were received and some counted, when a block is durable
    in the log and not yet acknowledged to the broker (the receiver acknowledges after ``store`` returns)."""
    receiver = stream.receiver
    store = receiver.store

    def store_then_die(data, ack=None):
        store(data, ack)
        if stream.num_received >= n and COUNTED[0] > 0:
            os.kill(os.getpid(), signal.SIGKILL)

    receiver.store = store_then_die


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["fresh", "get_or_create"])
    p.add_argument("workdir")
    p.add_argument("broker")
    p.add_argument("topic")
    p.add_argument("--expect", type=int, default=0)
    p.add_argument("--pause", type=float, default=0.05)
    p.add_argument("--die-before-ack", type=int, default=0)
    args = p.parse_args(argv)
    setup = build(args)
    if args.mode == "fresh":
        ssc = setup()
    else:
        ssc = StreamingContext.get_or_create(os.path.join(args.workdir, "ck"), setup)
    ssc.start()
    stream = ssc.graph.inputs[0]
    if args.die_before_ack:
        die_before_ack(stream, args.die_before_ack)
    if not stream.receiver.subscribed.wait(DEADLINE):
        print("not subscribed", flush=True)
        return 1
    print(f"subscribed {ssc.clock.now() // 1000 + 1}", flush=True)
    deadline = time.monotonic() + DEADLINE
    i = 0
    while time.monotonic() < deadline:
        ssc.run_batches(1)
        i += 1
        counted = COUNTED[0] = ids_counted(args.workdir)
        print(f"done {i} {stream.num_received} {counted}", flush=True)
        if args.expect and counted >= args.expect:
            print("final", flush=True)
            break
        time.sleep(args.pause)
    ssc.stop(stop_gracefully=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
