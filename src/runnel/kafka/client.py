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
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() in (ck.KafkaError._AUTO_OFFSET_RESET, ck.KafkaError.OFFSET_OUT_OF_RANGE):
                        raise RuntimeError(f"{where}: records of {m.topic()}[{m.partition()}] to be read are no "
                                           f"longer in Kafka (deleted by retention?): {err.str()}")
                    if err.fatal() or not err.retriable():
                        raise RuntimeError(f"{where}: Kafka consumer error: {err.str()}")
                    continue
                k = (m.topic(), m.partition())
                r = left.get(k)
                if r is None:
                    continue
                off = m.offset()
                if off < r[1]:
                    got[k].append(m)
                if off >= r[1] - 1:
                    del left[k]
                    consumer.pause([ck.TopicPartition(*k)])
            if not msgs and left:
                for tp in consumer.position([ck.TopicPartition(*k) for k in left]):
                    if tp.offset >= left[(tp.topic, tp.partition)][1]:
                        del left[(tp.topic, tp.partition)]
    finally:
        consumer.resume(assigned)     # a paused partition would stay paused in the next assignment
        consumer.unassign()
    return got
