"""Values are isolated: a user function may mutate what it gets without changing anything stored."""

import pytest

from runnel import ManualClock, StreamingContext


def _mutate(record):
    record[1].append("mutated")
    return record


def test_mutating_records_of_a_cached_stream_does_not_leak_into_another_output(ctx):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    src = ssc.queue_stream([[("a", [1]), ("b", [2])], [("a", [3])]]).cache()
    first, second = [], []
    src.map(_mutate).foreach_rdd(lambda rdd: first.append(rdd.collect()))
    src.foreach_rdd(lambda rdd: second.append(rdd.collect()))
    ssc.start()
    ssc.run_batches(2)
    ssc.stop(stop_spark_context=False)
    assert first == [[("a", [1, "mutated"]), ("b", [2, "mutated"])], [("a", [3, "mutated"])]]
    assert second == [[("a", [1]), ("b", [2])], [("a", [3])]]


@pytest.mark.filterwarnings("ignore::runnel.PythonFallbackWarning")   # list values: the Python path, by design
def test_extend_in_place_reducer_leaves_collected_batches_alone(ctx):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    seen = []
    grouped = ssc.queue_stream([[("k", [1]), ("k", [2])], [("k", [3]), ("k", [4])]]) \
        .reduce_by_key(lambda a, b: a.extend(b) or a)
    grouped.foreach_rdd(lambda rdd: seen.append(rdd.collect()))
    grouped.foreach_rdd(lambda rdd: [v.append("x") for _, v in rdd.collect()])
    ssc.start()
    ssc.run_batches(2)
    ssc.stop(stop_spark_context=False)
    assert seen == [[("k", [1, 2])], [("k", [3, 4])]]


def test_collect_twice_gives_independent_objects(ctx):
    ds = ctx.parallelize([[1], [2]]).cache()
    a = ds.collect()
    a[0].append(99)
    assert ds.collect() == [[1], [2]]
