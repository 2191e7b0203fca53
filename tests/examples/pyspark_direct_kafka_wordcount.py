# Spark's direct Kafka word count (examples/src/main/python/streaming/direct_kafka_wordcount.py)
# with the Kafka integration guide's offsetRanges() snippet, written for PySpark, with only its
# imports changed ("from pyspark" -> "from runnel.pyspark"). Everything below the imports is the
# example's program, plus a bounded run and a sink for the test instead of awaitTermination() forever.
import sys

from runnel.pyspark import SparkContext
from runnel.pyspark.streaming import StreamingContext
from runnel.pyspark.streaming.kafka import KafkaUtils


def run(brokers, topic, seconds, sink, master="local[2]"):
    sc = SparkContext(master, appName="PythonStreamingDirectKafkaWordCount")
    ssc = StreamingContext(sc, 2)

    kvs = KafkaUtils.createDirectStream(ssc, [topic], {"metadata.broker.list": brokers})

    offsetRanges = []

    def storeOffsetRanges(rdd):
        nonlocal offsetRanges
        offsetRanges = rdd.offsetRanges()
        return rdd

    def printOffsetRanges(rdd):
        for o in offsetRanges:
            print("%s %s %s %s" % (o.topic, o.partition, o.fromOffset, o.untilOffset))

    kvs.transform(storeOffsetRanges).foreachRDD(printOffsetRanges)

    lines = kvs.map(lambda x: x[1])
    counts = lines.flatMap(lambda line: line.split(" ")) \
        .map(lambda word: (word, 1)) \
        .reduceByKey(lambda a, b: a+b)
    counts.pprint()
    counts.foreachRDD(lambda rdd: sink.append(rdd.collect()))

    ssc.start()
    ssc.awaitTerminationOrTimeout(seconds)
    ssc.stop(stopSparkContext=True, stopGraceFully=True)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("Usage: pyspark_direct_kafka_wordcount.py <broker_list> <topic> <seconds>", file=sys.stderr)
        sys.exit(-1)
    run(sys.argv[1], sys.argv[2], float(sys.argv[3]), [])
