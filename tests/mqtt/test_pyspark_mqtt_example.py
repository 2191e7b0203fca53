"""Spark's MQTT word count, a PySpark program with only its imports changed, counts what plain Python
counts on the messages published to its topic (a mosquitto on loopback stands in for the broker)."""

from __future__ import annotations

import collections
import importlib.util
import pathlib
import threading
import time

from broker import publish

from runnel.pyspark.streaming import StreamingContext

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"
LINES = ["a quick brown fox", "jumps over a lazy dog", "the fox and the dog"] * 20


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mqtt_wordcount_counts_as_plain_python(broker, capsys):
    sink: list = []
    program = threading.Thread(target=load("pyspark_mqtt_wordcount").run,
                               args=(broker.url, "example/words", 4.0, sink))
    program.start()
    deadline = time.monotonic() + 60

    def subscribed() -> bool:
        ssc = StreamingContext.get_active()
        return ssc is not None and ssc.graph.inputs[0].receiver.subscribed.is_set()

    while not subscribed():
        assert time.monotonic() < deadline and program.is_alive(), "the program did not subscribe"
        time.sleep(0.02)
    publish(broker.url, [("example/words", line) for line in LINES], qos=1)
    program.join(120)
    assert not program.is_alive()
    counts: collections.Counter = collections.Counter()
    for batch in sink:
        for word, n in batch:
            counts[word] += n
    assert counts == collections.Counter(w for line in LINES for w in line.split(" "))
    assert "Time: " in capsys.readouterr().out
