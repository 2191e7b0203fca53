# The Spark Streaming Programming Guide's "Accumulators, Broadcast Variables, and
# Checkpoints" Python snippet, made a whole program: a word count whose foreachRDD
# drops the words of a broadcast exclude list and counts them in an accumulator, both
# lazily created singletons. Only the imports are changed. For the test, the input is a
# queue of batches and run() returns after the batches it is asked for (the test drives
# a manual clock through Spark's own spark.streaming.clock setting).
from runnel.pyspark import SparkConf, SparkContext
from runnel.pyspark.streaming import StreamingContext


def getWordExcludeList(sparkContext):
    if "wordExcludeList" not in globals():
        globals()["wordExcludeList"] = sparkContext.broadcast(["a", "b", "c"])
    return globals()["wordExcludeList"]


def getDroppedWordsCounter(sparkContext):
    if "droppedWordsCounter" not in globals():
        globals()["droppedWordsCounter"] = sparkContext.accumulator(0)
    return globals()["droppedWordsCounter"]


def run(batches, master, out):
    conf = SparkConf().setMaster(master).setAppName("GuideAccumulatorBroadcast") \
        .set("spark.streaming.clock", "org.apache.spark.util.ManualClock")
    sc = SparkContext(conf=conf)
    ssc = StreamingContext(sc, 1)
    lines = ssc.queueStream([sc.parallelize(batch, 2) for batch in batches])
    wordCounts = lines.flatMap(lambda line: line.split(" ")).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)

    def echo(time, rdd):
        # Get or register the excludeList Broadcast
        excludeList = getWordExcludeList(rdd.context)
        # Get or register the droppedWordsCounter Accumulator
        droppedWordsCounter = getDroppedWordsCounter(rdd.context)

        # Use excludeList to drop words and use droppedWordsCounter to count them
        def filterFunc(wordCount):
            if wordCount[0] in excludeList.value:
                droppedWordsCounter.add(wordCount[1])
                return False
            else:
                return True

        counts = "Counts at time %s %s" % (time, rdd.filter(filterFunc).collect())
        out.append((counts, droppedWordsCounter.value))

    wordCounts.foreachRDD(echo)
    ssc.start()
    ssc.run_batches(len(batches))           # the test's clock: one interval per batch
    ssc.stop(stopSparkContext=True, stopGraceFully=False)
