"""librdkafka's built-in mock cluster, for tests and examples without a Kafka installation.

A client created with ``test.mock.num.brokers`` starts that many mock
brokers on loopback ports inside the process; every other client reaches
them through :attr:`MockCluster.bootstrap_servers`. Topics are created on
first use with 4 partitions (librdkafka's default for the mock; it has no
admin API to choose). The mock keeps records, offsets and committed consumer
offsets, but not transactions: records of an aborted transaction stay
visible and offsets sent in a transaction are not stored. The cluster lives
as long as the :class:`MockCluster` (another process may use it meanwhile).
"""

from __future__ import annotations

from typing import Any, Iterable

from .client import client_config, confluent

__all__ = ["MockCluster", "MOCK_PARTITIONS"]

MOCK_PARTITIONS = 4


class MockCluster:
    """An in-process mock Kafka cluster of ``brokers`` brokers.

    Examples
    --------
    >>> from runnel.kafka import MockCluster
    >>> with MockCluster() as cluster:
    ...     cluster.produce("t", [(b"k", b"v")], partition=2)
    ...     cluster.watermarks("t")
    {0: (0, 0), 1: (0, 0), 2: (0, 1), 3: (0, 0)}
    """

    def __init__(self, brokers: int = 3, timeout: float = 30.0):
        ck = confluent()
        self.timeout = timeout
        self._handle = ck.Producer(client_config({"test.mock.num.brokers": brokers}))
        md = self._handle.list_topics(timeout=timeout)
        self.bootstrap_servers = ",".join(f"{b.host}:{b.port}" for _, b in sorted(md.brokers.items()))
        self._producer = None

    def producer(self):
        """An idempotent producer connected to the cluster (shared by :meth:`produce`)."""
        if self._producer is None:
            ck = confluent()
            self._producer = ck.Producer(client_config({"bootstrap.servers": self.bootstrap_servers,
                                                        "enable.idempotence": True}))
        return self._producer

    def produce(self, topic: str, records: Iterable[Any], partition: int | None = None) -> None:
        """Write ``records`` (values, or ``(key, value)`` pairs; ``str`` is UTF-8 encoded) and wait for them.

        ``partition=None``: librdkafka's partitioner picks by key; records without a key go round-robin.
        """
        p = self.producer()
        errors = []
        n = len(p.list_topics(topic, timeout=self.timeout).topics[topic].partitions)

        def done(err, msg):
            if err is not None:
                errors.append(err)

        for i, r in enumerate(records):
            key, value = r if isinstance(r, tuple) else (None, r)
            key, value = (x.encode() if isinstance(x, str) else x for x in (key, value))
            if partition is not None:
                kw = {"partition": partition}
            else:
                kw = {} if key is not None else {"partition": i % n}
            while True:
                try:
                    p.produce(topic, value=value, key=key, on_delivery=done, **kw)
                    break
                except BufferError:              # the local queue is full: let it drain
                    p.poll(0.1)
        left = p.flush(self.timeout)
        if errors or left:
            raise RuntimeError(f"producing to {topic!r} failed: {errors[:3]} ({left} not delivered)")

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        """``{partition: (low, high)}`` offsets of ``topic``."""
        ck = confluent()
        c = ck.Consumer(client_config({"bootstrap.servers": self.bootstrap_servers, "group.id": "runnel-mock"}))
        try:
            parts = c.list_topics(topic, timeout=self.timeout).topics[topic].partitions
            return {p: c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=self.timeout)
                    for p in sorted(parts)}
        finally:
            c.close()

    def close(self) -> None:
        """Stop the mock brokers (clients still connected see the cluster go away)."""
        if self._producer is not None:
            self._producer.flush(self.timeout)
        self._producer = self._handle = None

    def __enter__(self) -> "MockCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
