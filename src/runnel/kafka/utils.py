"""``KafkaUtils``: PySpark's entry point to Kafka streams (``pyspark.streaming.kafka``), on runnel's direct source."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from .source import KafkaDirectStream, direct_stream, utf8_decoder

__all__ = ["KafkaUtils"]


class KafkaUtils:
    """PySpark's ``KafkaUtils`` (the direct approach); ``createDirectStream`` is its camelCase alias."""

    @staticmethod
    def create_direct_stream(ssc, topics: Sequence[str], kafkaParams: Mapping[str, Any],  # noqa: N803 — PySpark's
                             fromOffsets: Mapping | None = None, keyDecoder: Callable | None = utf8_decoder,  # noqa: N803
                             valueDecoder: Callable | None = utf8_decoder,  # noqa: N803
                             messageHandler: Callable | None = None) -> KafkaDirectStream:  # noqa: N803
        """A direct stream of Kafka ``topics``: PySpark's signature and defaults (keys and values decoded as UTF-8).

        ``fromOffsets`` maps ``TopicAndPartition(topic, partition)`` to the offset to start at;
        other partitions start where ``auto.offset.reset`` says (Spark's ``smallest``, or
        ``largest``, the default). Unlike Spark's direct stream, which reads only the partitions
        named in ``fromOffsets`` and never those added later, runnel reads every partition of
        the topics, and partitions added later from their first record. Each batch's Dataset has ``offsetRanges()``. Rates come
        from ``spark.streaming.kafka.maxRatePerPartition`` and backpressure; see
        :func:`runnel.kafka.direct_stream` for runnel's options (metadata columns, committing offsets).

        Examples
        --------
        >>> from runnel import StreamingContext, ManualClock
        >>> from runnel.kafka import MockCluster
        >>> from runnel.pyspark.streaming.kafka import KafkaUtils, TopicAndPartition
        >>> cluster = MockCluster()
        >>> cluster.produce("logs", [("k1", "a"), ("k2", "b")], partition=1)
        >>> ssc = StreamingContext("local", 1, clock=ManualClock())
        >>> kvs = KafkaUtils.createDirectStream(ssc, ["logs"], {"metadata.broker.list": cluster.bootstrap_servers},
        ...                                     fromOffsets={TopicAndPartition("logs", 1): 0})
        >>> got = []
        >>> kvs.foreachRDD(lambda rdd: got.extend(rdd.collect()))
        >>> ssc.start(); ssc.run_batches(1); ssc.stop()
        >>> got
        [('k1', 'a'), ('k2', 'b')]
        >>> cluster.close()
        """
        return direct_stream(ssc, topics, kafkaParams, from_offsets=fromOffsets, key_decoder=keyDecoder,
                             value_decoder=valueDecoder, message_handler=messageHandler)
