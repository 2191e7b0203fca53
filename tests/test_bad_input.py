"""Bad input gets an error that names the stream, the batch time and the culprit; later batches still run."""

import pytest

from runnel import ManualClock, StreamingContext
from runnel.executors.base import TaskFailed
from runnel.listener import ms_to_datetime


@pytest.fixture
def bad_ssc(ctx):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    yield ssc
    ssc.stop(stop_spark_context=False)


def _first_error(ssc, n):
    ssc.start()
    with pytest.raises(Exception) as info:
        ssc.run_batches(n)
    return info.value


def test_pairs_operation_on_scalar_records_names_stream_time_and_record(bad_ssc):
    out = []
    bad_ssc.queue_stream([["not a pair"], [("a", 1)]]).reduce_by_key(lambda a, b: a + b) \
        .foreach_rdd(lambda rdd: out.append(rdd.collect()))
    err = _first_error(bad_ssc, 2)
    assert isinstance(err, TaskFailed)
    text = str(err)
    assert "reduce_by_key-2" in text and str(ms_to_datetime(1000)) in text
    assert "'not a pair'" in text and "(key, value) pairs" in text
    assert out == [[("a", 1)]]                      # the next batch still ran


def test_malformed_line_in_a_user_function_keeps_the_original_error(bad_ssc):
    out = []
    bad_ssc.queue_stream([["1", "x2"], ["3"]]).map(int).foreach_rdd(lambda rdd: out.append(rdd.collect()))
    err = _first_error(bad_ssc, 2)
    assert "map-2" in str(err) and str(ms_to_datetime(1000)) in str(err)
    assert isinstance(err.__cause__, ValueError) and "x2" in str(err)
    assert out == [[3]]


def test_transform_function_failing_while_the_batch_is_built_names_the_output(bad_ssc):
    def explode(rdd):
        raise RuntimeError("bad lookup table")

    bad_ssc.queue_stream([[1]]).transform(explode).foreach_rdd(lambda rdd: None)
    err = _first_error(bad_ssc, 1)
    assert "foreachRDD" in str(err) and "transform-2" in str(err)
    assert "bad lookup table" in str(err) and str(ms_to_datetime(1000)) in str(err)


@pytest.mark.parametrize("duration, error", [(0, ValueError), (-1, ValueError), ("1", TypeError), (None, TypeError)])
def test_wrong_batch_duration_is_rejected_at_definition(duration, error):
    with pytest.raises(error, match="atch"):
        StreamingContext("local", duration)


def test_transform_returning_a_non_dataset_is_reported(bad_ssc):
    bad_ssc.queue_stream([[1]]).transform(lambda rdd: rdd.collect()).foreach_rdd(lambda rdd: None)
    err = _first_error(bad_ssc, 1)
    assert "must return a Dataset" in str(err) and "list" in str(err)
