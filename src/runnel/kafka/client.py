"""confluent-kafka, the optional extra ``runnel[kafka]``: imported on first use, with a clear error.

Every client runnel makes logs through Python's :mod:`logging` (logger
``runnel.kafka.librdkafka``) rather than librdkafka's stderr lines.
"""

from __future__ import annotations

import logging
import time
from typing import Any

LIBRDKAFKA_LOG = logging.getLogger("runnel.kafka.librdkafka")


def confluent() -> Any:
    """The ``confluent_kafka`` module, or an ImportError naming the extra to install."""
    try:
        import confluent_kafka
    except ImportError as e:
        raise ImportError("runnel's Kafka source and sink need confluent-kafka: install the extra with "
                          "pip install 'runnel[kafka]' (or pip install confluent-kafka)") from e
    return confluent_kafka


def client_config(params: dict, **overrides: Any) -> dict:
    """``params`` as a librdkafka config: values as strings, runnel's logger unless one is given, then ``overrides``."""
    conf = {str(k): v if isinstance(v, (bool, int, float)) or callable(v) or k == "logger" else str(v)
            for k, v in params.items()}
    conf.setdefault("logger", LIBRDKAFKA_LOG)
    conf.update(overrides)
    return conf


POLL_MS = "spark.streaming.kafka.consumer.poll.ms"
_FETCH = 10_000             # most messages one consume() call returns


def consume_ranges(consumer, ranges: dict[tuple[str, int], tuple[int, int]], timeout: float,
                   where: str) -> dict[tuple[str, int], list]:
    """The messages of offsets ``[start, end)`` of each ``(topic, partition)``, in offset order.

    ``consumer`` is assigned the ranges and polled until each is read (its
    position reached ``end``: the last offsets may be transaction markers,
    which are no message), then unassigned. A range not read within
    ``timeout`` seconds is a TimeoutError naming it; records no longer in
    Kafka (``auto.offset.reset=error``) or a fatal error fail with ``where`` in the message.
    """
    ck = confluent()
    got: dict[tuple[str, int], list] = {k: [] for k in ranges}
    left = {k: r for k, r in ranges.items() if r[1] > r[0]}
    if not left:
        return got
    lists = {k: got[k] for k in left}
    # one topic (the usual case): find a message's list by its partition alone, one call less per message
    by_partition = {p: lst for (_, p), lst in lists.items()} if len({t for t, _ in left}) == 1 else None
    assigned = [ck.TopicPartition(t, p, start) for (t, p), (start, _) in left.items()]
    consumer.assign(assigned)
    deadline = time.monotonic() + timeout
    try:
        while left:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{where}: Kafka gave no records for " + ", ".join(
                    f"{t}[{p}] offsets {s}..{e} (read {len(got[(t, p)])})" for (t, p), (s, e) in left.items())
                    + f" within {timeout:g} s ({POLL_MS})")
            msgs = consumer.consume(num_messages=min(_FETCH, sum(e - s for s, e in left.values())),
                                    timeout=min(remaining, 0.5))
            # the hot loop does only what it must per message: messages of a partition come in offset
            # order, so where a range ends and what to trim are decided per partition after the loop
            for m in msgs:
                if m.error() is None:
                    lst = by_partition.get(m.partition()) if by_partition else lists.get((m.topic(), m.partition()))
                    if lst is not None:
                        lst.append(m)
                else:
                    _raise_for(m, ck, where)
            for k in list(left):
                lst = got[k]
                if lst and lst[-1].offset() >= left[k][1] - 1:
                    del left[k]
                    consumer.pause([ck.TopicPartition(*k)])
            if not msgs and left:
                for tp in consumer.position([ck.TopicPartition(*k) for k in left]):
                    if tp.offset >= left[(tp.topic, tp.partition)][1]:
                        del left[(tp.topic, tp.partition)]
    finally:
        consumer.resume(assigned)     # a paused partition would stay paused in the next assignment
        consumer.unassign()
    for k, (start, end) in ranges.items():     # drop what an earlier assignment fetched, and past the end
        got[k] = _trimmed(got[k], start, end)
    return got


def _trimmed(msgs: list, start: int, end: int) -> list:
    """``msgs`` of one partition with offsets in ``[start, end)``, each once, in offset order.

    The usual case is checked in O(1): exactly ``end - start`` messages from ``start`` to ``end - 1``.
    Otherwise (offsets compacted away or taken by transaction markers, messages past the end, or any
    left from an earlier assignment) every offset is looked at.
    """
    if len(msgs) == end - start and (not msgs or (msgs[0].offset() == start and msgs[-1].offset() == end - 1)):
        return msgs
    out, last = [], start - 1
    for m in msgs:
        off = m.offset()
        if last < off < end:
            out.append(m)
            last = off
    return out


def _raise_for(m, ck, where: str) -> None:
    """Raise for an error message that ends the read; return for a transient one."""
    err = m.error()
    if err.code() in (ck.KafkaError._AUTO_OFFSET_RESET, ck.KafkaError.OFFSET_OUT_OF_RANGE):
        raise RuntimeError(f"{where}: records of {m.topic()}[{m.partition()}] to be read are no "
                           f"longer in Kafka (deleted by retention?): {err.str()}")
    if err.fatal() or not err.retriable():
        raise RuntimeError(f"{where}: Kafka consumer error: {err.str()}")
