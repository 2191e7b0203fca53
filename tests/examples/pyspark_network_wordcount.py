# The Spark Streaming programming guide's network word count, written for
# PySpark, with only its imports changed ("from pyspark" -> "from runnel.pyspark").
# Everything below the imports is the guide's program, plus a bounded run
# and a sink for the test instead of awaitTermination() forever.
import sys

from runnel.pyspark import SparkContext
from runnel.pyspark.streaming import StreamingContext


def run(host, port, seconds, sink, master="local[2]"):
    # Create a local StreamingContext with two working thread and batch interval of 1 second
    sc = SparkContext(master, "NetworkWordCount")
    ssc = StreamingContext(sc, 1)

    # Create a DStream that will connect to hostname:port, like localhost:9999
    lines = ssc.socketTextStream(host, port)

    # Split each line into words
    words = lines.flatMap(lambda line: line.split(" "))

    # Count each word in each batch
    pairs = words.map(lambda word: (word, 1))
    wordCounts = pairs.reduceByKey(lambda x, y: x + y)

    # Print the first ten elements of each RDD generated in this DStream to the console
    wordCounts.pprint()
    wordCounts.foreachRDD(lambda rdd: sink.append(rdd.collect()))

    ssc.start()             # Start the computation
    ssc.awaitTerminationOrTimeout(seconds)  # Wait for the computation to terminate
    ssc.stop(stopSparkContext=True, stopGraceFully=True)


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), [])
