"""Fixtures of the Kafka tests: librdkafka's mock cluster (in this process), fresh topic names."""

from __future__ import annotations

import itertools
import logging

import confluent_kafka  # in the test extra: a missing client fails these tests rather than skipping them
import pytest

from runnel import Context, ManualClock, StreamingContext
from runnel.kafka import MockCluster

_names = itertools.count()


@pytest.fixture(scope="session")
def cluster():
    """A mock Kafka cluster of 3 brokers shared by the session (topics have 4 partitions)."""
    with MockCluster() as c:
        yield c


@pytest.fixture
def topic():
    """A topic name no other test uses."""
    return f"topic-{next(_names)}"


@pytest.fixture
def params(cluster):
    """Consumer parameters reading the mock cluster from the beginning of each topic."""
    return {"bootstrap.servers": cluster.bootstrap_servers, "auto.offset.reset": "earliest",
            "group.id": f"group-{next(_names)}"}


@pytest.fixture
def kssc():
    """A factory of manual-clock StreamingContexts on ``local`` (conf as given), stopped after the test."""
    made = []

    def make(conf=None, master="local"):
        ssc = StreamingContext(Context(master, conf=conf), 1, clock=ManualClock())
        made.append(ssc)
        return ssc

    yield make
    for ssc in made:
        ssc.stop()


@pytest.fixture
def committed(cluster):
    """``committed(group, topic)``: the offsets ``group`` committed per partition (-1001 where none)."""
    def get(group: str, topic: str, partitions: int = 4) -> dict[int, int]:
        c = confluent_kafka.Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group,
                                      "logger": logging.getLogger("tests.kafka")})
        try:
            tps = c.committed([confluent_kafka.TopicPartition(topic, p) for p in range(partitions)], timeout=10)
            return {tp.partition: tp.offset for tp in tps}
        finally:
            c.close()
    return get
