"""Spark's direct Kafka word count, a PySpark program with only its imports changed, counts what plain
Python counts on the records it read (librdkafka's mock cluster in this process stands in for Kafka)."""

from __future__ import annotations

import collections
import importlib.util
import pathlib
import threading
import time

from runnel.kafka import MockCluster
from runnel.pyspark.streaming import StreamingContext

HERE = pathlib.Path(__file__).parent
LINES = ["a quick brown fox", "jumps over a lazy dog", "the fox and the dog"] * 20


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_direct_kafka_wordcount_counts_as_plain_python(capsys):
    with MockCluster() as cluster:
        sink: list = []
        program = threading.Thread(target=load("pyspark_direct_kafka_wordcount").run,
                                   args=(cluster.bootstrap_servers, "wordcount", 8.0, sink))
        program.start()
        deadline = time.monotonic() + 60
        while StreamingContext.get_active() is None:          # started: its offsets start at the topic's end
            assert time.monotonic() < deadline and program.is_alive(), "the program did not start"
            time.sleep(0.05)
        cluster.produce("wordcount", LINES)
        program.join(120)
        assert not program.is_alive()
    counts = collections.Counter()
    for batch in sink:
        for word, n in batch:
            counts[word] += n
    assert counts == collections.Counter(w for line in LINES for w in line.split(" "))
    printed = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("wordcount ")]
    read = collections.Counter()
    for _, partition, start, until in printed:            # offsetRanges() of every batch, as the guide prints them
        read[int(partition)] += int(until) - int(start)
    assert sum(read.values()) == len(LINES) and set(read) == {0, 1, 2, 3}
