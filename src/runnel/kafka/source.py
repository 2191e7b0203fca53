"""The direct Kafka source: each batch is an offset range per topic partition.

:func:`direct_stream` is a :class:`~runnel.dstream.replayable.ReplayableInputDStream`
over a :class:`KafkaSource` (Spark's "direct approach": no receiver, no
write-ahead log; a recovery re-reads the batches' ranges from Kafka). A
batch has one partition per topic partition, in (topic, partition) order;
its ``offset_ranges()`` (``offsetRanges()``) are :class:`OffsetRange` objects.

Reading a batch: one consumer (``group.id`` from the parameters, else
``"runnel"``) is assigned the batch's ranges and polled until every range
is read, up to ``timeout`` seconds (then the batch fails, naming the topic
partitions not read). Records past a range's end that arrive in the same
fetch are dropped and read by the next batch. A range whose records are no
longer in Kafka (deleted by retention) fails the batch: data is never
skipped silently.

Records are ``(key, value)`` pairs of ``bytes`` (``None`` for a missing key
or value), or decoded by ``key_decoder``/``value_decoder`` (a UTF-8 decode is
done on whole Arrow columns), or whatever ``message_handler`` makes of a
:class:`KafkaMessageAndMetadata`. With ``metadata=True`` records are
``(key, value, topic, partition, offset, timestamp)`` tuples (the timestamp
a ``datetime64[ms]``, NaT when Kafka has none), so ``stream.to_frame()``
has those six columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ..batch import Batch, infer_column
from ..dstream.replayable import OffsetRange as _Range
from ..dstream.replayable import ReplayableInputDStream, ReplayableSource
from .client import POLL_MS, client_config, confluent, consume_ranges

log = logging.getLogger("runnel.kafka")

__all__ = ["KafkaSource", "OffsetRange", "TopicAndPartition", "KafkaMessageAndMetadata", "direct_stream",
           "KafkaDirectStream", "utf8_decoder", "MAX_RATE_PER_PARTITION", "POLL_MS"]

MAX_RATE_PER_PARTITION = "spark.streaming.kafka.maxRatePerPartition"
DEFAULT_TIMEOUT = 60.0
_EARLIEST = {"earliest", "smallest", "beginning"}
_LATEST = {"latest", "largest", "end"}


def utf8_decoder(s: bytes | None) -> str | None:
    """Decode UTF-8 bytes (``None`` stays ``None``): PySpark's default key and value decoder."""
    return None if s is None else s.decode("utf-8")


@dataclass(frozen=True)
class TopicAndPartition:
    """A topic partition, as a key of ``from_offsets``."""

    topic: str
    partition: int


@dataclass(frozen=True)
class OffsetRange:
    """The records ``[fromOffset, untilOffset)`` of one topic partition in one batch (PySpark's names)."""

    topic: str
    partition: int
    fromOffset: int  # noqa: N815 — PySpark's attribute names
    untilOffset: int  # noqa: N815

    @property
    def count(self) -> int:
        return self.untilOffset - self.fromOffset


@dataclass(frozen=True)
class KafkaMessageAndMetadata:
    """What ``message_handler`` receives: one record with where it came from (PySpark's fields)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    message: bytes | None


def _part(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def _split(part: str) -> tuple[str, int]:
    topic, _, p = part.rpartition(":")
    return topic, int(p)


def _offsets_map(from_offsets: Mapping | None) -> dict[str, int]:
    """``{TopicAndPartition | (topic, partition): offset}`` as partition id -> offset."""
    out = {}
    for k, v in (from_offsets or {}).items():
        if isinstance(k, TopicAndPartition):
            topic, p = k.topic, k.partition
        elif isinstance(k, tuple) and len(k) == 2:
            topic, p = k
        else:
            raise TypeError(f"from_offsets keys must be TopicAndPartition or (topic, partition), got {k!r}")
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"from_offsets[{k!r}] must be an offset >= 0, got {v!r}")
        out[_part(str(topic), int(p))] = int(v)
    return out


class KafkaSource(ReplayableSource):
    """Topics of a Kafka cluster as a replayable source (see the module docstring).

    Parameters
    ----------
    topics : list of str
    params : dict
        librdkafka configuration (``bootstrap.servers`` or Spark's ``metadata.broker.list``,
        ``group.id`` …). ``auto.offset.reset`` (``smallest``/``earliest`` or the default
        ``largest``/``latest``) is where partitions without a ``from_offsets`` entry start.
    from_offsets : dict, optional
        ``{TopicAndPartition(topic, p) or (topic, p): offset}``: where those partitions start.
    """

    def __init__(self, topics: Sequence[str], params: Mapping[str, Any], from_offsets: Mapping | None = None, *,
                 key_decoder: Callable | None = None, value_decoder: Callable | None = None,
                 message_handler: Callable | None = None, metadata: bool = False, timeout: float = DEFAULT_TIMEOUT):
        confluent()                                     # fail now, naming the extra, if it is missing
        if isinstance(topics, str):
            topics = [topics]
        topics = list(topics)
        if not topics or not all(isinstance(t, str) and t for t in topics):
            raise ValueError(f"topics must be a non-empty list of topic names, got {topics!r}")
        params = dict(params)
        reset = str(params.pop("auto.offset.reset", "latest")).lower()
        if reset not in _EARLIEST | _LATEST:
            raise ValueError(f"auto.offset.reset must be one of smallest/earliest or largest/latest, got {reset!r}")
        if message_handler is not None and (key_decoder is not None or value_decoder is not None or metadata):
            raise ValueError("message_handler makes the records itself: give no decoders and no metadata with it")
        self.from_offsets = _offsets_map(from_offsets)
        self.topics = sorted(set(topics) | {_split(p)[0] for p in self.from_offsets})
        self.params = params
        self.start_at_earliest = reset in _EARLIEST
        self.key_decoder, self.value_decoder = key_decoder, value_decoder
        self.message_handler = message_handler
        self.metadata = metadata
        self.timeout = float(timeout)
        self._clients: dict = {}
        self._missing: set[str] = set()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_clients": {}, "_missing": set()}

    # -- the consumers ------------------------------------------------------------------------------
    # Two: one only reads (assign, consume), one asks for metadata, watermarks and commits. Requests to
    # a broker are answered in order, so on one client a watermark request waits behind the reader's
    # long-polling fetch (fetch.wait.max.ms, 500 ms) — measured: 0.5 s per batch on the mock cluster.
    def _client(self, role: str):
        if self._clients.get(role) is None:
            ck = confluent()
            conf = client_config(self.params, **{"enable.auto.commit": False, "enable.auto.offset.store": False,
                                                 "auto.offset.reset": "error", "enable.partition.eof": False})
            conf.setdefault("group.id", "runnel")
            if role == "read":
                # the reader is assigned only while the data it wants is there: no long polls, which would
                # hold the next batch's first fetch back by up to 500 ms (librdkafka's default)
                conf.setdefault("fetch.wait.max.ms", 10)
            self._clients[role] = ck.Consumer(conf)
        return self._clients[role]

    def consumer(self):
        """The consumer that asks for metadata and watermarks and commits offsets (to ``group.id``)."""
        return self._client("meta")

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients = {}

    def _watermarks(self, parts: Iterable[str]) -> dict[str, tuple[int, int]]:
        ck, c = confluent(), self.consumer()
        out = {}
        for part in parts:
            topic, p = _split(part)
            try:
                out[part] = c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=self.timeout, cached=False)
            except ck.KafkaException as e:
                given = " (named in from_offsets)" if part in self.from_offsets else ""
                raise RuntimeError(f"runnel.kafka: cannot get the offsets of {topic}[{p}]{given}: "
                                   f"{e.args[0].str() if e.args else e}") from e
        return out

    # -- ReplayableSource ----------------------------------------------------------------------------
    def latest_offsets(self) -> dict[str, int]:
        c = self.consumer()
        parts = []
        for topic in self.topics:
            md = c.list_topics(topic, timeout=self.timeout).topics.get(topic)
            if md is None or md.error is not None or not md.partitions:
                if topic not in self._missing:
                    self._missing.add(topic)
                    log.warning("runnel.kafka: topic %r has no partitions yet (%s); it is read once it has",
                                topic, None if md is None else md.error)
                continue
            self._missing.discard(topic)
            parts += [_part(topic, p) for p in sorted(md.partitions)]
        # partitions named in from_offsets, of the topics there are (a missing one's come with it)
        parts += [p for p in self.from_offsets if p not in parts and _split(p)[0] not in self._missing]
        return {p: high for p, (low, high) in sorted(self._watermarks(parts).items(), key=lambda x: _split(x[0]))}

    def initial_offsets(self, partitions: Sequence[str]) -> dict[str, int]:
        rest = [p for p in partitions if p not in self.from_offsets]
        marks = self._watermarks(rest)
        out = {p: marks[p][0 if self.start_at_earliest else 1] for p in rest}
        out.update({p: o for p, o in self.from_offsets.items() if p in partitions})
        return out

    def earliest_offsets(self, partitions: Sequence[str]) -> dict[str, int]:
        """A partition's first record, or its ``from_offsets`` entry (its topic appeared after the start)."""
        rest = [p for p in partitions if p not in self.from_offsets]
        out = {p: low for p, (low, high) in self._watermarks(rest).items()}
        out.update({p: self.from_offsets[p] for p in partitions if p in self.from_offsets})
        return out

    def describe(self, r: _Range) -> OffsetRange:
        topic, p = _split(r.partition)
        return OffsetRange(topic, p, r.start, r.end)

    def commit(self, offsets: dict[str, int]) -> None:
        ck = confluent()
        tps = [ck.TopicPartition(*_split(part), o) for part, o in offsets.items()]
        if tps:
            self.consumer().commit(offsets=tps, asynchronous=False)

    def group_metadata(self) -> Any:
        """The consumer's group metadata (for ``send_offsets_to_transaction``)."""
        return self.consumer().consumer_group_metadata()

    def read(self, ranges: Sequence[_Range], where: str) -> list[Batch]:
        got = consume_ranges(self._client("read"), {_split(r.partition): (r.start, r.end) for r in ranges if r.count > 0},
                             self.timeout, where)
        return [self._batch(got.get(_split(r.partition), []), r, where) for r in ranges]

    def _batch(self, msgs: list, r: _Range, where: str) -> Batch:
        if self.message_handler is not None:
            records = [self.message_handler(KafkaMessageAndMetadata(m.topic(), m.partition(), m.offset(), m.key(),
                                                                    m.value())) for m in msgs]
            return Batch.from_records(records) if records else Batch.empty()
        keys = self._column([m.key() for m in msgs], self.key_decoder, "key", r, where)
        values = self._column([m.value() for m in msgs], self.value_decoder, "value", r, where)
        if not self.metadata:
            return Batch({"key": keys, "value": values}, ("key", "value"))
        topic, p = _split(r.partition)
        ts = np.array([m.timestamp()[1] if m.timestamp()[0] else -(2**63) for m in msgs], dtype=np.int64)
        cols = {"key": keys, "value": values, "topic": pa.array([topic] * len(msgs), pa.string()),
                "partition": np.full(len(msgs), p, dtype=np.int64),
                "offset": np.array([m.offset() for m in msgs], dtype=np.int64),
                "timestamp": ts.view("datetime64[ms]")}
        return Batch(cols, tuple(cols))

    @staticmethod
    def _column(raw: list, decoder: Callable | None, what: str, r: _Range, where: str):
        col = pa.array(raw, pa.binary())
        if decoder is None:
            return col
        if decoder is utf8_decoder:                 # the whole column at once
            try:
                return col.cast(pa.string())
            except pa.ArrowInvalid as e:
                raise ValueError(f"{where}: a {what} of {r.partition} offsets {r.start}..{r.end} is not UTF-8 "
                                 f"({e}); pass another decoder") from None
        return infer_column([decoder(x) for x in raw])


def direct_stream(ssc, topics: Sequence[str], kafka_params: Mapping[str, Any], *,
                  from_offsets: Mapping | None = None, key_decoder: Callable | None = None,
                  value_decoder: Callable | None = None, message_handler: Callable | None = None,
                  metadata: bool = False, commit_offsets: bool = False,
                  max_rate_per_partition: float | None = None) -> "KafkaDirectStream":
    """A direct stream of Kafka ``topics``: one Dataset partition per topic partition per batch.

    Records are ``(key, value)`` pairs of ``bytes`` unless decoded (see the
    module docstring). Batches are offset ranges kept in the checkpoint, so
    recovery re-reads exactly what the lost batches read.

    Parameters
    ----------
    ssc : StreamingContext
    topics : list of str
    kafka_params : dict
        librdkafka configuration; ``auto.offset.reset`` ``"earliest"`` (or Spark's ``"smallest"``)
        starts where the topics begin, ``"latest"`` (the default) where they end now.
    from_offsets : dict, optional
        ``{TopicAndPartition or (topic, partition): offset}``: where those partitions start.
    key_decoder, value_decoder : callable, optional
        Applied to every key / value (``utf8_decoder`` decodes whole columns at once).
    message_handler : callable, optional
        ``f(KafkaMessageAndMetadata) -> record`` instead of pairs.
    metadata : bool
        Records ``(key, value, topic, partition, offset, timestamp)``.
    commit_offsets : bool
        Commit the offsets after each batch to ``group.id`` once its outputs finished.
    max_rate_per_partition : float, optional
        Records/s per partition; defaults to the conf key ``spark.streaming.kafka.maxRatePerPartition``.
        Backpressure (``spark.streaming.backpressure.enabled``) adapts the rate below it.

    Examples
    --------
    >>> from runnel import StreamingContext, ManualClock
    >>> from runnel.kafka import MockCluster, direct_stream
    >>> cluster = MockCluster()
    >>> cluster.produce("events", [b"a", b"b", b"c"], partition=0)
    >>> ssc = StreamingContext("local", 1, clock=ManualClock())
    >>> stream = direct_stream(ssc, ["events"], {"bootstrap.servers": cluster.bootstrap_servers,
    ...                                          "auto.offset.reset": "earliest"})
    >>> got = []
    >>> stream.foreach_rdd(lambda rdd: got.append((rdd.offset_ranges()[0], rdd.values().collect())))
    >>> ssc.start(); ssc.run_batches(1); ssc.stop()
    >>> got
    [(OffsetRange(topic='events', partition=0, fromOffset=0, untilOffset=3), [b'a', b'b', b'c'])]
    >>> cluster.close()
    """
    conf = ssc.context.conf
    if max_rate_per_partition is None and float(conf.get(MAX_RATE_PER_PARTITION, 0) or 0) > 0:
        max_rate_per_partition = float(conf.get(MAX_RATE_PER_PARTITION))
    if commit_offsets and "group.id" not in kafka_params:
        raise ValueError("commit_offsets needs a group.id in kafka_params (the group the offsets are committed to)")
    timeout = float(conf.get(POLL_MS, DEFAULT_TIMEOUT * 1000)) / 1000.0
    source = KafkaSource(topics, kafka_params, from_offsets, key_decoder=key_decoder, value_decoder=value_decoder,
                         message_handler=message_handler, metadata=metadata, timeout=timeout)
    return KafkaDirectStream(ssc, source, max_rate_per_partition=max_rate_per_partition, commit=commit_offsets)


class KafkaDirectStream(ReplayableInputDStream):
    """A replayable stream over a :class:`KafkaSource` (made by :func:`direct_stream`)."""

    kind = "kafka_direct_stream"
