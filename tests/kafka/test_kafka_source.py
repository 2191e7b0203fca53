"""The direct Kafka source on librdkafka's mock cluster: ranges, starting offsets, rates, records, commits."""

from __future__ import annotations

import collections
import operator
import sys
import threading

import numpy as np
import pytest

from runnel.listener import BatchEvent, BatchInfo, StreamingListener
from runnel.kafka import MockCluster, TopicAndPartition, direct_stream, utf8_decoder
from runnel.kafka.mock import MOCK_PARTITIONS

LINES = [f"w{i % 7} w{i % 3} w{i % 5}" for i in range(120)]


def word_count(stream):
    return stream.flat_map(lambda kv: kv[1].split()).map(lambda w: (w, 1)).reduce_by_key(operator.add)


@pytest.mark.parametrize("master", ["local", "local[2]"])
def test_word_count_over_a_multi_partition_topic(cluster, topic, params, kssc, master):
    cluster.produce(topic, LINES)
    marks = cluster.watermarks(topic)
    assert len(marks) == MOCK_PARTITIONS and all(high > 0 for _, high in marks.values())
    ssc = kssc({"spark.streaming.kafka.maxRatePerPartition": "10"}, master)
    stream = direct_stream(ssc, [topic], params, value_decoder=utf8_decoder)
    ranges, counts = [], collections.Counter()
    stream.foreach_rdd(lambda rdd: ranges.append((rdd.offset_ranges(), rdd.get_num_partitions())))
    word_count(stream).foreach_rdd(lambda rdd: counts.update(dict(rdd.collect())))
    ssc.start()
    ssc.run_batches(max(h for _, h in marks.values()) // 10 + 1)
    assert counts == collections.Counter(w for line in LINES for w in line.split())
    for p in range(MOCK_PARTITIONS):          # contiguous ranges from 0 to the end, at most 10 records each
        mine = [r for rs, _ in ranges for r in rs if r.partition == p]
        assert mine[0].fromOffset == 0 and mine[-1].untilOffset == marks[p][1]
        assert all(a.untilOffset == b.fromOffset for a, b in zip(mine, mine[1:]))
        assert all(r.untilOffset - r.fromOffset <= 10 for r in mine)
    assert {n for _, n in ranges} == {MOCK_PARTITIONS}


def test_starting_offsets_latest_earliest_and_per_partition(cluster, topic, params, kssc):
    cluster.produce(topic, [b"old-0", b"old-1"], partition=0)
    cluster.produce(topic, [b"old-2"], partition=1)
    ssc = kssc()
    got = {name: [] for name in ("latest", "earliest", "from")}
    latest = {**params, "auto.offset.reset": "latest"}
    direct_stream(ssc, [topic], latest).foreach_rdd(lambda rdd: got["latest"].extend(rdd.values().collect()))
    direct_stream(ssc, [topic], params).foreach_rdd(lambda rdd: got["earliest"].extend(rdd.values().collect()))
    direct_stream(ssc, [topic], latest, from_offsets={TopicAndPartition(topic, 0): 1}).foreach_rdd(
        lambda rdd: got["from"].extend(rdd.values().collect()))
    ssc.start()
    cluster.produce(topic, [b"new"], partition=0)
    ssc.run_batches(1)
    assert got["latest"] == [b"new"]
    assert sorted(got["earliest"]) == [b"new", b"old-0", b"old-1", b"old-2"]
    assert got["from"] == [b"old-1", b"new"]


def test_records_are_bytes_pairs_or_decoded_or_made_by_a_handler(cluster, topic, params, kssc):
    cluster.produce(topic, [("k", "é"), (None, b"\x00v")], partition=2)
    ssc = kssc()
    out = {k: [] for k in ("raw", "utf8", "custom", "handler")}
    direct_stream(ssc, [topic], params).foreach_rdd(lambda rdd: out["raw"].extend(rdd.collect()))
    direct_stream(ssc, [topic], params, key_decoder=utf8_decoder).foreach_rdd(
        lambda rdd: out["utf8"].extend(rdd.collect()))
    direct_stream(ssc, [topic], params, value_decoder=len).foreach_rdd(lambda rdd: out["custom"].extend(rdd.collect()))
    direct_stream(ssc, [topic], params, message_handler=lambda m: (m.partition, m.offset, m.key)).foreach_rdd(
        lambda rdd: out["handler"].extend(rdd.collect()))
    ssc.start()
    ssc.run_batches(1)
    assert out["raw"] == [(b"k", "é".encode()), (None, b"\x00v")]
    assert out["utf8"] == [("k", "é".encode()), (None, b"\x00v")]
    assert out["custom"] == [(b"k", 2), (None, 2)]
    assert out["handler"] == [(2, 0, b"k"), (2, 1, None)]


def test_a_value_that_is_not_utf8_fails_its_batch_naming_the_partition(cluster, topic, params, kssc):
    cluster.produce(topic, [b"\xff\xfe"], partition=3)
    ssc = kssc()
    direct_stream(ssc, [topic], params, value_decoder=utf8_decoder).foreach_rdd(lambda rdd: rdd.count())
    ssc.start()
    with pytest.raises(Exception, match=rf"kafka_direct_stream-\d+ \(batch .*\): a value of {topic}:3 offsets "
                                        "0..1 is not UTF-8"):
        ssc.run_batches(1)


def test_metadata_columns_make_a_frame(cluster, topic, params, kssc):
    cluster.produce(topic, [("a", "1"), ("b", "2")], partition=1)
    ssc = kssc()
    frames = []
    sdf = direct_stream(ssc, [topic], params, value_decoder=utf8_decoder, metadata=True).to_frame()
    sdf.foreach_batch(lambda df, t: frames.append(df))
    ssc.start()
    ssc.run_batches(1)
    df = frames[0]
    assert list(df.columns) == ["key", "value", "topic", "partition", "offset", "timestamp"]
    assert df["key"].tolist() == [b"a", b"b"] and df["value"].tolist() == ["1", "2"]
    assert df["topic"].tolist() == [topic, topic] and df["partition"].tolist() == [1, 1]
    assert df["offset"].tolist() == [0, 1]
    assert df["timestamp"].dtype == np.dtype("datetime64[ms]") and df["timestamp"].notna().all()


def test_offsets_are_committed_to_the_group_after_each_batch(cluster, topic, params, kssc, committed):
    cluster.produce(topic, LINES[:40])
    marks = cluster.watermarks(topic)
    ssc = kssc({"spark.streaming.kafka.maxRatePerPartition": "4"})
    stream = direct_stream(ssc, [topic], params, commit_offsets=True)
    ends = []
    stream.foreach_rdd(lambda rdd: ends.append({r.partition: r.untilOffset for r in rdd.offset_ranges()}))
    ssc.start()
    ssc.run_batches(1)
    assert committed(params["group.id"], topic) == ends[0] == {p: min(4, h) for p, (_, h) in marks.items()}
    ssc.run_batches(4)
    assert committed(params["group.id"], topic) == ends[-1] == {p: h for p, (_, h) in marks.items()}


def test_a_batch_finishing_after_the_stop_commits_and_leaves_no_consumer_open(cluster, topic, params, kssc,
                                                                               committed):
    # a stop closes the source while a batch still runs; that batch's commit, after it, must not
    # leave a consumer behind (it was made anew and never closed)
    cluster.produce(topic, LINES[:8])
    ssc = kssc()
    stream = direct_stream(ssc, [topic], params, commit_offsets=True)
    stream.foreach_rdd(lambda rdd: ssc.stop(stop_spark_context=False))
    ssc.start()
    completed = threading.Event()             # listeners run in order: the commit's first

    class Done(StreamingListener):
        def onBatchCompleted(self, batchCompleted):  # noqa: N802
            completed.set()
    ssc.add_streaming_listener(Done())
    ssc.run_batches(1)
    assert completed.wait(30)
    assert committed(params["group.id"], topic) == {p: h for p, (_, h) in cluster.watermarks(topic).items()}
    assert stream.source._clients == {}


def test_committing_needs_a_group(cluster, topic, kssc):
    with pytest.raises(ValueError, match="group.id"):
        direct_stream(kssc(), [topic], {"bootstrap.servers": cluster.bootstrap_servers}, commit_offsets=True)


def test_a_missing_extra_is_named(monkeypatch, kssc):
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)
    with pytest.raises(ImportError, match=r"runnel\[kafka\]"):
        direct_stream(kssc(), ["t"], {})
    with pytest.raises(ImportError, match=r"runnel\[kafka\]"):
        MockCluster()


def test_one_stream_reads_several_topics_partition_by_partition(cluster, params, kssc):
    a, b = f"{params['group.id']}-a", f"{params['group.id']}-b"
    cluster.produce(a, ["a0"], partition=0)
    cluster.produce(b, ["b3"], partition=3)
    ssc = kssc()
    got = []
    direct_stream(ssc, [b, a], params).foreach_rdd(
        lambda rdd: got.append(([(r.topic, r.partition) for r in rdd.offset_ranges()], rdd.glom().collect())))
    ssc.start()
    ssc.run_batches(1)
    ranges, parts = got[0]
    assert ranges == [(a, p) for p in range(4)] + [(b, p) for p in range(4)]
    assert parts == [[(None, b"a0")], [], [], [], [], [], [], [(None, b"b3")]]


def test_backpressure_sets_the_rate_from_completed_batches(cluster, topic, params, kssc):
    cluster.produce(topic, LINES)
    ssc = kssc({"spark.streaming.backpressure.enabled": "true", "spark.streaming.backpressure.initialRate": "8"})
    stream = direct_stream(ssc, [topic], params)
    sizes = []
    stream.foreach_rdd(lambda rdd: sizes.append(sum(r.count for r in rdd.offset_ranges())))
    ssc.start()
    ssc.run_batches(1)
    assert sizes == [8]                       # the initial rate, shared by the four partitions' lags
    for t in (10_000, 20_000):                # batches of 8 records processed in 100 ms each: 80 records/s
        info = BatchInfo(t, t, processing_start_time=t, processing_end_time=t + 100, stream_records={stream.name: 8})
        stream.rate_controller.onBatchCompleted(BatchEvent(info))
    rate = stream.rate_controller.latest_rate
    assert rate is not None and rate > 40
    ssc.run_batches(1)
    assert sizes[1] == 4 * int(rate / 4)      # the estimate, shared by four equal lags


def test_partitions_that_appear_later_are_read_from_their_start(cluster, topic, params, kssc, caplog):
    ssc = kssc()
    got = []
    direct_stream(ssc, [topic], {**params, "auto.offset.reset": "latest"}).foreach_rdd(
        lambda rdd: got.append((len(rdd.offset_ranges()), rdd.values().collect())))
    ssc.start()
    ssc.run_batches(1)                        # the topic does not exist yet
    cluster.produce(topic, [b"x", b"y"], partition=1)
    ssc.run_batches(1)
    assert got == [(0, []), (MOCK_PARTITIONS, [b"x", b"y"])]
    assert f"topic {topic!r} has no partitions yet" in caplog.text


def test_from_offsets_of_a_topic_that_appears_later_are_where_it_starts(cluster, topic, params, kssc):
    ssc = kssc()
    got = []
    direct_stream(ssc, [topic], params, from_offsets={(topic, 1): 1}).foreach_rdd(
        lambda rdd: got.append(rdd.values().collect()))
    ssc.start()                               # the topic does not exist yet: no error, nothing read
    ssc.run_batches(1)
    cluster.produce(topic, [b"x", b"y", b"z"], partition=1)
    ssc.run_batches(1)
    assert got == [[], [b"y", b"z"]]


def test_a_partition_kafka_does_not_have_is_an_error_naming_it(cluster, topic, params, kssc):
    cluster.produce(topic, [b"x"], partition=0)
    ssc = kssc()
    direct_stream(ssc, [topic], params, from_offsets={(topic, 9): 0}).foreach_rdd(lambda rdd: None)
    with pytest.raises(RuntimeError, match=rf"offsets of {topic}\[9\].*Unknown partition"):
        ssc.start()
