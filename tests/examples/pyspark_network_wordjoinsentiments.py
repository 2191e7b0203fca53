# Spark's network_wordjoinsentiments.py, a PySpark program (with Spark 3's type
# annotations) with only its imports changed. It joins the word counts of each batch
# from a socket with a static dataset of word sentiments read from a file (inside
# transform), scores each word by count x sentiment and prints the happiest words.
# For the test: run() takes the arguments (the sentiments file among them), runs for
# a bounded time, and appends each batch's scored words to `sink`.
import sys
from typing import Tuple

from runnel.pyspark import SparkContext
from runnel.pyspark.rdd import RDD
from runnel.pyspark.streaming import StreamingContext
from runnel.pyspark.streaming.dstream import DStream


def print_happiest_words(rdd: RDD[Tuple[float, str]]) -> None:
    top_list = rdd.take(5)
    print("Happiest topics in the last 5 seconds (%d total):" % rdd.count())
    for tuple in top_list:
        print("%s (%d happiness)" % (tuple[1], tuple[0]))


def run(host, port, word_sentiments_file_path, seconds, sink):
    sc = SparkContext(appName="PythonStreamingNetworkWordJoinSentiments")
    ssc = StreamingContext(sc, 5)

    def line_to_tuple(line: str) -> Tuple[str, str]:
        try:
            k, v = line.split("\t")
            return k, v
        except ValueError:
            return "", ""

    # Read in the word-sentiment list and create a static RDD from it
    word_sentiments = ssc.sparkContext.textFile(word_sentiments_file_path).map(line_to_tuple)

    lines = ssc.socketTextStream(host, int(port))

    word_counts = lines.flatMap(lambda line: line.split(" ")) \
        .map(lambda word: (word, 1)) \
        .reduceByKey(lambda a, b: a + b)

    # Determine the words with the highest sentiment values by joining the streaming RDD
    # with the static RDD inside the transform() method and then multiplying
    # the frequency of the words by its sentiment value
    happiest_words: DStream[Tuple[float, str]] = word_counts \
        .transform(lambda rdd: word_sentiments.join(rdd)) \
        .map(lambda word_tuples: (word_tuples[0], float(word_tuples[1][0]) * word_tuples[1][1])) \
        .map(lambda word_happiness: (word_happiness[1], word_happiness[0])) \
        .transform(lambda rdd: rdd.sortByKey(False))

    happiest_words.foreachRDD(print_happiest_words)
    happiest_words.foreachRDD(lambda rdd: sink.append(rdd.collect()))      # the test's sink

    ssc.start()
    ssc.awaitTerminationOrTimeout(seconds)
    ssc.stop(stopSparkContext=True, stopGraceFully=True)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("Usage: network_wordjoinsentiments.py <hostname> <port> <word-sentiments-file>", file=sys.stderr)
        sys.exit(-1)
    run(sys.argv[1], sys.argv[2], sys.argv[3], 3600, [])
