"""Writing a stream to Kafka (``DStream.save_to_kafka``), exactly once per batch.

The writer runs in the driver, one partition of the batch at a time, with
an idempotent producer (no duplicates from the producer's own retries, and
records of a topic partition land in the order they were sent). Every record
carries three headers::

    runnel-sink    the sink's name (default: the stream's name)
    runnel-batch   the batch time, epoch ms
    runnel-seq     the record's number within the batch (0, 1, ...)

and goes to a partition that depends only on the record: ``murmur2(key)``
as Java clients do, or ``seq mod partitions`` for records without a key.

Exactly once (``exactly_once=True``, the default): a recovered program runs
again the batches after its checkpoint, and they read the same records
(:mod:`runnel.dstream.replayable`), so their records are the same and go to
the same partitions. Before its first batch, the writer reads the last
``lookback`` records of each partition of the topic and remembers, per
partition, the newest ``(batch, seq)`` with its name; records at or before
it are not written again. Because a partition keeps the order of an
idempotent producer's records, what a killed run wrote of a batch is a
prefix of that batch's records in each partition, so a partly written batch
is completed, not duplicated. This needs a deterministic program (same
input, same output order — runnel's shuffles are) and the same partition
count of the topic; records of other writers in between are fine within
``lookback``.

With ``transactional.id`` in the parameters every batch is one Kafka
transaction (aborted if the batch fails; readers with
``isolation.level=read_committed`` see whole batches only), and
``offsets_from=<direct stream>`` commits that stream's offsets after the
batch in the same transaction (``send_offsets_to_transaction``, to the
source's ``group.id``), so the output and the consumed offsets commit together.
"""

from __future__ import annotations

import zlib
from contextlib import closing as _closing
from typing import Any, Callable, Mapping

from ..listener import ms_to_datetime
from ..partfiles import _partitions
from .client import client_config, confluent, consume_ranges

__all__ = ["KafkaWriter", "SINK_HEADER", "BATCH_HEADER", "SEQ_HEADER", "written_records"]

SINK_HEADER, BATCH_HEADER, SEQ_HEADER = "runnel-sink", "runnel-batch", "runnel-seq"
DEFAULT_LOOKBACK = 10_000


def _encode(x: Any, serializer: Callable | None, what: str, where: str) -> bytes | None:
    if serializer is not None:
        x = serializer(x)
    if x is None or isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return str(x).encode("ascii")
    raise TypeError(f"{where}: a record's {what} is a {type(x).__name__} ({x!r:.80}); Kafka takes bytes, str or "
                    f"numbers: pass {what}_serializer=... to save_to_kafka")


def _partition_for(key: bytes | None, seq: int, n: int) -> int:
    if key is None:
        return seq % n
    murmur2 = getattr(confluent(), "murmur2", None)
    return murmur2(key, n) if murmur2 is not None else zlib.crc32(key) % n


def _headers(m) -> dict[str, bytes]:
    return {k: v for k, v in (m.headers() or ())}


class KafkaWriter:
    """The job of ``save_to_kafka``: ``writer(t, dataset)`` writes batch t (see the module docstring).

    Picklable (it is part of a checkpointed program): clients are made on first use.
    """

    def __init__(self, topic: str, params: Mapping[str, Any], name: str, *, key_serializer: Callable | None = None,
                 value_serializer: Callable | None = None, exactly_once: bool = True, offsets_from: Any = None,
                 timeout: float = 60.0, lookback: int = DEFAULT_LOOKBACK):
        confluent()
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"save_to_kafka: topic must be a topic name, got {topic!r}")
        self.topic, self.params, self.name = topic, dict(params), name
        self.key_serializer, self.value_serializer = key_serializer, value_serializer
        self.exactly_once = exactly_once
        self.transactional = "transactional.id" in self.params
        if offsets_from is not None and not self.transactional:
            raise ValueError("save_to_kafka: offsets_from commits offsets in a transaction: give a transactional.id")
        self.offsets_from = offsets_from
        self.timeout, self.lookback = float(timeout), int(lookback)
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._producer = None
        self.tails: dict[int, tuple[int, int]] | None = None

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_producer", "tails")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def producer(self):
        if self._producer is None:
            ck = confluent()
            self._producer = ck.Producer(client_config(self.params, **{"enable.idempotence": True}))
            if self.transactional:
                self._producer.init_transactions(self.timeout)
        return self._producer

    def _partitions(self, where: str) -> int:
        md = self.producer().list_topics(self.topic, timeout=self.timeout).topics.get(self.topic)
        if md is None or md.error is not None or not md.partitions:
            raise RuntimeError(f"{where}: topic {self.topic!r} has no partitions "
                               f"({None if md is None else md.error}); create it first")
        return len(md.partitions)

    def read_tails(self, n: int, where: str) -> dict[int, tuple[int, int]]:
        """Per partition, the newest ``(batch time, seq)`` this sink wrote, within ``lookback`` records."""
        tails = {}
        for p, msgs in written_records(self.params, self.topic, n, self.lookback, self.timeout, where).items():
            for m in msgs:
                h = _headers(m)
                if h.get(SINK_HEADER) == self.name.encode():
                    tails[p] = max(tails.get(p, (-1, -1)), (int(h[BATCH_HEADER]), int(h[SEQ_HEADER])))
        return tails

    def __call__(self, t: int, ds) -> None:
        where = f"save_to_kafka: {self.name}, batch {ms_to_datetime(t)}, topic {self.topic!r}"
        producer = self.producer()
        n = self._partitions(where)
        if self.exactly_once and self.tails is None:
            self.tails = self.read_tails(n, where)
        tails = self.tails or {}
        errors: list = []

        def delivered(err, msg):
            if err is not None:
                errors.append(err)

        if self.transactional:
            producer.begin_transaction()
        try:
            written: dict[int, int] = {}
            name, batch = self.name.encode(), str(t).encode()
            seq = 0
            with _closing(_partitions(ds)) as parts:
                for part in parts:
                    pairs = part.is_pairs
                    for rec in part.to_records():
                        key, value = rec if pairs else (None, rec)
                        key = _encode(key, self.key_serializer, "key", where)
                        value = _encode(value, self.value_serializer, "value", where)
                        p = _partition_for(key, seq, n)
                        if (t, seq) > tails.get(p, (-1, -1)):
                            headers = [(SINK_HEADER, name), (BATCH_HEADER, batch), (SEQ_HEADER, str(seq).encode())]
                            self._produce(producer, value, key, p, headers, delivered)
                            written[p] = seq
                        seq += 1
            if self.offsets_from is not None:
                ck = confluent()
                ranges = self.offsets_from.offset_ranges(t)
                producer.send_offsets_to_transaction(
                    [ck.TopicPartition(r.topic, r.partition, r.untilOffset) for r in ranges],
                    self.offsets_from.source.group_metadata(), self.timeout)
            left = producer.flush(self.timeout)
            if errors or left:
                raise RuntimeError(f"{where}: {len(errors)} records failed ({errors[:3]}), {left} not delivered "
                                   f"within {self.timeout:g} s")
            if self.transactional:
                producer.commit_transaction(self.timeout)
        except BaseException:
            if self.transactional:
                producer.abort_transaction(self.timeout)
            else:                           # what was sent stays written: the re-run completes it
                producer.flush(self.timeout)
                self.tails = None           # and learns how far it got from the topic
            raise
        if self.exactly_once:
            for p, s in written.items():
                tails[p] = (t, s)
            self.tails = tails

    def _produce(self, producer, value, key, partition, headers, delivered) -> None:
        while True:
            try:
                producer.produce(self.topic, value=value, key=key, partition=partition, headers=headers,
                                 on_delivery=delivered)
                return
            except BufferError:             # the local queue is full: let deliveries drain it
                producer.poll(0.1)


def written_records(params: Mapping[str, Any], topic: str, partitions: int, lookback: int, timeout: float,
                    where: str) -> dict[int, list]:
    """The last ``lookback`` committed records of each partition of ``topic`` (``read_committed``)."""
    ck = confluent()
    conf = {k: v for k, v in params.items() if not k.startswith(("transactional.", "enable.idempotence", "acks"))}
    c = ck.Consumer(client_config(conf, **{"group.id": "runnel-sink-check", "enable.auto.commit": False,
                                           "isolation.level": "read_committed", "auto.offset.reset": "error"}))
    try:
        ranges = {}
        for p in range(partitions):
            low, high = c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=timeout, cached=False)
            ranges[(topic, p)] = (max(low, high - lookback), high)
        got = consume_ranges(c, ranges, timeout, where)
    finally:
        c.close()
    return {p: got[(topic, p)] for p in range(partitions)}
