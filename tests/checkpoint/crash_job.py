"""A streaming word count that the crash tests run as a separate driver process and kill.

    python crash_job.py MODE WORKDIR BATCHES [--die-in-batch N] [--v2] [--master M] [--job frame]

MODE is how the program starts: ``fresh`` (setup, no recovery), ``get_or_create``
or ``resume``. Sources (``--source``):

* ``files`` (default): before batch i the job drops ``in/f<i>.txt`` (unless
  it exists) with modification time i s, so batch i reads it — the input of
  every batch is fixed, and an interrupted run can be compared with an
  uninterrupted one batch by batch.
* ``socket``: lines from ``--port`` with the receiver write-ahead log on; the
  job runs ``BATCHES`` batches, then waits until ``--expect`` lines were
  received (printing ``received``) and until it is killed or has run
  ``--more`` extra batches.

Outputs go through the exactly-once SQLite sink (``out.db``): per batch,
the running totals (updateStateByKey) and a 4-batch inverse window.
``--die-in-batch N`` SIGKILLs the process in the middle of batch N, after
the first output committed and before the second ran. ``--v2`` is the next
program version: other functions, another parallelism, a new operator.
The manual clock is advanced by the job itself; each completed batch prints
``done <i>``.

``--job eventtime``: the words with an event time (5 s per batch, each word
up to 8 s early or 4 s late), a watermark 3 s behind, and through the exactly-once
sink: tumbling-window sums (final), the late rows, session sums and the words
deduplicated within the watermark, with the kill between two outputs.

``--job frame`` is the same input through the DataFrame API instead: a
running group-by (``frame_totals``) and each row with its word's cumsum,
rolling mean and ewm mean carried across batches (``frame_rows``), with the
kill between the two outputs.
"""

from __future__ import annotations

import argparse
import operator
import os
import signal
import sys
import time

from runnel import Context, ManualClock, StreamingContext
from runnel.updaters import running_sum


def add(new, old):
    return sum(new) + (old or 0)


def add_v2(new, old):           # the new version's function: same meaning, different code
    total = old or 0
    for v in new:
        total += v
    return total


class DieInBatch:
    """foreach_rdd: SIGKILL this process while batch ``n`` runs — once (a recovered program that
    re-runs batch n is the stored one, with this output in it)."""

    def __init__(self, n: int, marker: str):
        self.n, self.marker = n, marker

    def __call__(self, t, rdd):
        if round(t.timestamp()) == self.n and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


def build(args):
    def setup():
        conf = {"runnel.streaming.checkpoint.interval": "2"}
        if args.source == "socket":
            conf["spark.streaming.receiver.writeAheadLog.enable"] = "true"
        if args.v2:
            conf["spark.default.parallelism"] = "3"
        ctx = Context.get_or_create(args.master, "crash-job", conf)
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(os.path.join(args.workdir, "ck"))
        if args.source == "files":
            lines = ssc.text_file_stream(os.path.join(args.workdir, "in"))
        else:
            lines = ssc.socket_text_stream("127.0.0.1", args.port)
        db = os.path.join(args.workdir, "out.db")
        if args.job == "frame":
            build_frame(args, lines, db)
            return ssc
        if args.job == "eventtime":
            build_event_time(args, lines, db)
            return ssc
        if args.v2:
            lines.filter(lambda line: True).count().pprint()     # a new operator before the stateful ones
        pairs = lines.flat_map(lambda line: line.split()).map(lambda w: (w, 1))
        totals = pairs.update_state_by_key(add_v2 if args.v2 else add).named("totals")
        window = pairs.reduce_by_key_and_window(operator.add, operator.sub, 4, 1).named("window")
        builtin = pairs.update_state_by_key(running_sum()).named("builtin")
        totals.save_to_sqlite(db, "totals", ["word", "n"])
        if args.die_in_batch:
            totals.foreach_rdd(DieInBatch(args.die_in_batch, os.path.join(args.workdir, f"died-{args.die_in_batch}")))
        window.save_to_sqlite(db, "window", ["word", "n"])
        builtin.save_to_sqlite(db, "builtin", ["word", "n"])
        return ssc
    return setup


def build_frame(args, lines, db):
    words = lines.flat_map(lambda line: line.split()).map(lambda w: (w, float(int(w[1:]) % 5)))
    sdf = words.to_frame(columns=["word", "n"], schema={"word": "string", "n": "float64"})
    sdf.groupby("word").running(name="frame_totals").agg(rows=("n", "size"), total=("n", "sum"), mean=("n", "mean")) \
        .to_sqlite(db, "frame_totals")
    if args.die_in_batch:
        sdf.to_dstream().foreach_rdd(DieInBatch(args.die_in_batch, os.path.join(args.workdir,
                                                                               f"died-{args.die_in_batch}")))
    rows = sdf.groupby("word")["n"].cumsum()
    rows = rows.groupby("word")["n"].rolling(3).mean()
    rows = rows.groupby("word")["n"].ewm(alpha=0.4).mean()
    rows.to_sqlite(db, "frame_rows")


class Stamp:
    """(word, event time, 1): 5 s per batch, the word wK shifted by K - 8 s (words w0 .. w12)."""

    def __call__(self, t, rdd):
        second = round(t.timestamp())
        return rdd.flat_map(lambda line: line.split()).map(
            lambda w: (w, second * 5 + int(w[1:]) - 8, 1))


def build_event_time(args, lines, db):
    from runnel.frame import session, tumbling
    sdf = lines.transform(Stamp()).to_frame(columns=["word", "ts", "n"],
                                             schema={"word": "string", "ts": "int64", "n": "int64"})
    events = sdf.with_watermark("ts", 3, name="et_watermark")
    sums = events.groupby("word").event_window(tumbling(10), name="et_windows").agg(n=("n", "sum"))
    sums.to_sqlite(db, "et_windows")
    if args.die_in_batch:
        sdf.to_dstream().foreach_rdd(DieInBatch(args.die_in_batch, os.path.join(args.workdir,
                                                                               f"died-{args.die_in_batch}")))
    sums.late_rows().to_sqlite(db, "et_late")
    events.groupby("word").event_window(session(6), name="et_sessions").agg(n=("n", "sum"), first=("ts", "min")) \
        .to_sqlite(db, "et_sessions")
    events.drop_duplicates("word", within=8, name="et_dedup").to_sqlite(db, "et_dedup")


def drop_file(workdir: str, i: int) -> None:
    path = os.path.join(workdir, "in", f"f{i:03d}.txt")
    if os.path.exists(path):
        return
    words = " ".join(f"w{(i * 5 + j) % 13}" for j in range(6 + i % 4))
    tmp = os.path.join(workdir, "in", f".f{i:03d}.tmp")
    with open(tmp, "w") as f:
        f.write(words + "\n" + words.split()[0] + "\n")
    os.utime(tmp, ns=(i * 10**9, i * 10**9))
    os.rename(tmp, path)                 # visible whole, with its batch's time


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["fresh", "get_or_create", "resume"])
    p.add_argument("workdir")
    p.add_argument("batches", type=int)
    p.add_argument("--die-in-batch", type=int, default=0)
    p.add_argument("--v2", action="store_true")
    p.add_argument("--master", default="local")
    p.add_argument("--source", choices=["files", "socket"], default="files")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--expect", type=int, default=0)
    p.add_argument("--more", type=int, default=0)
    p.add_argument("--job", choices=["wordcount", "frame", "eventtime"], default="wordcount")
    args = p.parse_args(argv)
    os.makedirs(os.path.join(args.workdir, "in"), exist_ok=True)
    ck = os.path.join(args.workdir, "ck")
    setup = build(args)
    if args.mode == "fresh":
        ssc = setup()
    elif args.mode == "get_or_create":
        ssc = StreamingContext.get_or_create(ck, setup)
    else:
        ssc = StreamingContext.resume(ck, setup)
    ssc.start()
    first = ssc.clock.now() // 1000 + 1
    print(f"start {first}", flush=True)
    for i in range(first, args.batches + 1):
        if args.source == "files":
            drop_file(args.workdir, i)
        ssc.run_batches(1)
        print(f"done {i}", flush=True)
    if args.source == "socket":
        stream = ssc._graph.inputs[0]
        deadline = time.monotonic() + 60
        while stream.num_received < args.expect and time.monotonic() < deadline:
            time.sleep(0.01)
        print(f"received {stream.num_received}", flush=True)
        for i in range(args.more):
            ssc.run_batches(1)
            print(f"done more {i}", flush=True)
        if not args.more:
            time.sleep(120)              # waits to be killed
    ssc.stop(stop_gracefully=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
