"""The direct Kafka source against a plain consumer loop: ``python -m runnel.bench.kafka [--records N] [--rounds R]``.

Both read the same topic of librdkafka's in-process mock cluster (4
partitions, N lines of 5 words) from its beginning and count its words:

* ``consumer loop``: one confluent-kafka Consumer assigned every partition,
  ``consume(10_000)`` until all N records are in, each value split and
  counted in a Python dict — what a hand-written Python consumer does;
* ``consumer only``: the same loop without the counting (the client's own speed);
* ``runnel``: ``direct_stream`` (values decoded as UTF-8) →
  ``flat_map(split)`` → ``map((w, 1))`` → ``reduce_by_key(add)`` on ``local``,
  one batch of all N records on a manual clock, timed from the batch's start
  to its counts being collected.

Rounds alternate the order of the systems (load drift falls on all of them);
it prints each round's records/s and the medians' ratios. The mock cluster
serves from threads of this process, so the figures are for one machine's
loopback, not a network.
"""

from __future__ import annotations

import argparse
import operator
import statistics
import time

from ..kafka import MockCluster, direct_stream, utf8_decoder
from ..kafka.client import client_config, confluent

TOPIC = "bench-words"


def lines(n: int) -> list[str]:
    return [" ".join(f"w{(i * 7 + j * 13) % 1000}" for j in range(5)) for i in range(n)]


def consumer_loop(cluster: MockCluster, n: int, count: bool) -> tuple[float, dict]:
    ck = confluent()
    c = ck.Consumer(client_config({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "bench-loop",
                                   "enable.auto.commit": False}))
    parts = cluster.watermarks(TOPIC)
    c.assign([ck.TopicPartition(TOPIC, p, ck.OFFSET_BEGINNING) for p in parts])
    counts: dict = {}
    seen = 0
    start = time.perf_counter()
    while seen < n:
        for m in c.consume(10_000, timeout=5.0):
            if m.error() is None:
                seen += 1
                if count:
                    for w in m.value().decode().split():
                        counts[w] = counts.get(w, 0) + 1
    elapsed = time.perf_counter() - start
    c.close()
    return elapsed, counts


def runnel_count(cluster: MockCluster, n: int) -> tuple[float, dict]:
    from .. import Context, ManualClock, StreamingContext
    ssc = StreamingContext(Context("local"), 1, clock=ManualClock())
    params = {"bootstrap.servers": cluster.bootstrap_servers, "auto.offset.reset": "earliest",
              "group.id": "bench-runnel"}
    stream = direct_stream(ssc, [TOPIC], params, value_decoder=utf8_decoder)
    counts: dict = {}
    stream.flat_map(lambda kv: kv[1].split()).map(lambda w: (w, 1)).reduce_by_key(operator.add) \
        .foreach_rdd(lambda rdd: counts.update(rdd.collect()))
    ssc.start()
    start = time.perf_counter()
    ssc.run_batches(1)
    elapsed = time.perf_counter() - start
    ssc.stop()
    return elapsed, counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    n = args.records
    with MockCluster() as cluster:
        data = lines(n)
        t0 = time.perf_counter()
        cluster.produce(TOPIC, data)
        print(f"produced {n:,} lines to {TOPIC} in {time.perf_counter() - t0:.1f} s")
        expected: dict = {}
        for line in data:
            for w in line.split():
                expected[w] = expected.get(w, 0) + 1
        systems = {"consumer only": lambda: consumer_loop(cluster, n, False),
                   "consumer loop": lambda: consumer_loop(cluster, n, True),
                   "runnel": lambda: runnel_count(cluster, n)}
        rates: dict[str, list[float]] = {s: [] for s in systems}
        runnel_count(cluster, min(n, 1000))          # warm: kernels compiled / loaded from the cache
        for r in range(args.rounds):
            order = list(systems) if r % 2 == 0 else list(reversed(systems))
            for name in order:
                elapsed, counts = systems[name]()
                if name != "consumer only" and counts != expected:
                    raise AssertionError(f"{name} counted wrong")
                rates[name].append(n / elapsed)
            print(f"round {r + 1}: " + ", ".join(f"{s} {rates[s][-1] / 1e3:,.0f} k rec/s" for s in systems))
        med = {s: statistics.median(v) for s, v in rates.items()}
        print("median records/s: " + ", ".join(f"{s} {v / 1e3:,.0f} k" for s, v in med.items()))
        print(f"runnel / consumer loop (both count words): {med['runnel'] / med['consumer loop']:.2f}x; "
              f"runnel / consumer only: {med['runnel'] / med['consumer only']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
