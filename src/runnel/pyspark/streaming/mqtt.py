"""``pyspark.streaming.mqtt`` for runnel: ``MQTTUtils.createStream`` (PySpark 1.x/2.x), on paho-mqtt.

A PySpark MQTT program ports by changing its import to
``from runnel.pyspark.streaming.mqtt import MQTTUtils``. Records are the
payloads decoded as UTF-8, as PySpark's were; ``createPairedStream``
(Apache Bahir's) gives ``(topic, payload)`` pairs. Both subscribe at QoS 1,
as Spark's receiver did; unlike it, with the receiver write-ahead log on a
message is acknowledged to the broker only once it is logged (see
:mod:`runnel.mqtt`). Needs the ``runnel[mqtt]`` extra.
"""

from __future__ import annotations

from typing import Sequence

from ...dstream.base import DStream
from ...mqtt import mqtt_stream
from ..storagelevel import StorageLevel

__all__ = ["MQTTUtils"]


class MQTTUtils:
    """PySpark's entry point to MQTT streams."""

    @staticmethod
    def createStream(ssc, brokerUrl: str, topic: str,  # noqa: N802, N803 — PySpark's spelling
                     storageLevel: StorageLevel = StorageLevel.MEMORY_AND_DISK_2) -> DStream:
        """A stream of the UTF-8 payloads published to ``topic`` (wildcards allowed) at ``brokerUrl``.

        ``brokerUrl`` is ``tcp://host:port`` as in Spark; ``storageLevel`` is recorded only.
        """
        return mqtt_stream(ssc, brokerUrl, topic, 1, encoding="utf-8", with_topic=False, storage_level=storageLevel)

    @staticmethod
    def createPairedStream(ssc, brokerUrl: str, topics: Sequence[str],  # noqa: N802, N803
                           storageLevel: StorageLevel = StorageLevel.MEMORY_AND_DISK_2) -> DStream:
        """A stream of ``(topic, UTF-8 payload)`` pairs from several topics (Apache Bahir's API)."""
        return mqtt_stream(ssc, brokerUrl, list(topics), 1, encoding="utf-8", storage_level=storageLevel)
