"""Kafka for runnel (the optional extra ``runnel[kafka]``, on confluent-kafka).

* :func:`direct_stream` — the direct source: every batch is an offset range
  per topic partition, kept in the checkpoint, so a recovery re-reads
  exactly the lost batches' records (:mod:`runnel.kafka.source`);
* ``DStream.save_to_kafka(topic, params)`` — the sink: idempotent producer,
  exactly once per batch across recoveries, optionally transactional
  together with the source's offsets (:mod:`runnel.kafka.sink`);
* :class:`KafkaUtils` — PySpark's ``KafkaUtils.createDirectStream`` (also
  importable from :mod:`runnel.pyspark.streaming.kafka`);
* :class:`MockCluster` — librdkafka's in-process mock brokers, for tests and examples.

This package imports without confluent-kafka; using it without the extra
raises an ImportError that names it.
"""

from .mock import MockCluster
from .sink import KafkaWriter
from .source import (KafkaDirectStream, KafkaMessageAndMetadata, KafkaSource, OffsetRange, TopicAndPartition,
                     direct_stream, utf8_decoder)
from .utils import KafkaUtils

__all__ = ["direct_stream", "KafkaDirectStream", "KafkaSource", "KafkaWriter", "KafkaUtils", "MockCluster",
           "OffsetRange", "TopicAndPartition", "KafkaMessageAndMetadata", "utf8_decoder"]
