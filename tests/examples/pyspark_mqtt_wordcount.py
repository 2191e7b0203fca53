# Spark's MQTT word count (examples/src/main/python/streaming/mqtt_wordcount.py in Spark 1.x),
# written for PySpark, with only its imports changed ("from pyspark" -> "from runnel.pyspark").
# Everything below the imports is the example's program, plus a bounded run and a sink for the
# test instead of awaitTermination() forever.
import sys

from runnel.pyspark import SparkContext
from runnel.pyspark.streaming import StreamingContext
from runnel.pyspark.streaming.mqtt import MQTTUtils


def run(brokerUrl, topic, seconds, sink, master="local[2]"):
    sc = SparkContext(master, appName="PythonStreamingMQTTWordCount")
    ssc = StreamingContext(sc, 1)

    lines = MQTTUtils.createStream(ssc, brokerUrl, topic)
    counts = lines.flatMap(lambda line: line.split(" ")) \
        .map(lambda word: (word, 1)) \
        .reduceByKey(lambda a, b: a + b)
    counts.pprint()
    counts.foreachRDD(lambda rdd: sink.append(rdd.collect()))

    ssc.start()
    ssc.awaitTerminationOrTimeout(seconds)
    ssc.stop(stopSparkContext=True, stopGraceFully=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("Usage: mqtt_wordcount.py <broker url> <topic>", file=sys.stderr)
        sys.exit(-1)
    run(sys.argv[1], sys.argv[2], float("inf"), [])
