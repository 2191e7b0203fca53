"""``pyspark.streaming.kafka`` for runnel: ``KafkaUtils.createDirectStream`` on the direct source.

A PySpark program ports by changing its imports. Only the direct approach
exists (``createStream``, the receiver-based one, does not); the client is
confluent-kafka (``pip install 'runnel[kafka]'``).
"""

from ...kafka import KafkaMessageAndMetadata, KafkaUtils, OffsetRange, TopicAndPartition, utf8_decoder

__all__ = ["KafkaUtils", "OffsetRange", "TopicAndPartition", "KafkaMessageAndMetadata", "utf8_decoder"]
