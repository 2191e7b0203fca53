"""Replayable streams on an in-memory source: batches are offset ranges, rate-limited, re-read on recovery."""

from __future__ import annotations

import pytest

from runnel import ManualClock, StreamingContext
from runnel.batch import Batch
from runnel.dstream.replayable import OffsetRange, ReplayableInputDStream, ReplayableSource


class ListSource(ReplayableSource):
    """Partitions are lists that only grow; offsets are list indices."""

    def __init__(self, data: dict[str, list]):
        self.data = data
        self.commits: list[dict] = []
        self.reads: list[list[OffsetRange]] = []

    def latest_offsets(self):
        return {p: len(v) for p, v in self.data.items()}

    def initial_offsets(self, partitions):
        return {p: 0 for p in partitions}

    def earliest_offsets(self, partitions):
        return {p: 0 for p in partitions}

    def read(self, ranges, where):
        self.reads.append(list(ranges))
        return [Batch.from_values(self.data[r.partition][r.start:r.end]) for r in ranges]

    def commit(self, offsets):
        self.commits.append(dict(offsets))


def batches_of(stream):
    out = []
    stream.foreach_rdd(lambda rdd: out.append((rdd.offset_ranges(), rdd.glom().collect())))
    return out


def test_each_batch_is_its_offset_ranges_one_partition_each(ssc):
    src = ListSource({"a": list(range(10)), "b": list(range(100, 104))})
    got = batches_of(ReplayableInputDStream(ssc, src, max_rate_per_partition=3))
    ssc.start()
    ssc.run_batches(5)
    assert [[(r.partition, r.start, r.end) for r in ranges] for ranges, _ in got] == [
        [("a", 0, 3), ("b", 0, 3)], [("a", 3, 6), ("b", 3, 4)], [("a", 6, 9), ("b", 4, 4)],
        [("a", 9, 10), ("b", 4, 4)], [("a", 10, 10), ("b", 4, 4)]]
    for ranges, parts in got:       # a partition per source partition, holding exactly its range
        assert parts == [src.data[r.partition][r.start:r.end] for r in ranges]


def test_new_partitions_are_picked_up_from_their_first_record(ssc):
    src = ListSource({"a": [1, 2]})
    got = batches_of(ReplayableInputDStream(ssc, src))
    ssc.start()
    ssc.run_batches(1)
    src.data["a"].append(3)
    src.data["b"] = [10, 11]
    ssc.run_batches(1)
    assert [parts for _, parts in got] == [[[1, 2]], [[3], [10, 11]]]


def test_the_backpressure_rate_is_shared_by_lag_under_the_cap(ssc):
    src = ListSource({"a": list(range(30)), "b": list(range(10))})
    stream = ReplayableInputDStream(ssc, src, max_rate_per_partition=5)
    got = batches_of(stream)
    stream.set_rate(8)                # a PID estimate: 8 records/s for the whole stream
    ssc.start()
    ssc.run_batches(1)
    # shares 8 * 30/40 = 6 and 8 * 10/40 = 2; a is capped at 5 by max_rate_per_partition
    assert [(r.start, r.end) for r in got[0][0]] == [(0, 5), (0, 2)]


def test_offsets_are_committed_after_the_outputs_of_each_batch(ssc):
    src = ListSource({"a": [1, 2, 3]})
    stream = ReplayableInputDStream(ssc, src, max_rate_per_partition=2, commit=True)
    seen = []

    def output(rdd):
        assert src.commits == seen      # not committed before this batch's output ran
        seen.append({"a": min(3, 2 * (len(seen) + 1))})
    stream.foreach_rdd(output)
    ssc.start()
    ssc.run_batches(2)
    assert src.commits == [{"a": 2}, {"a": 3}]


def test_a_failed_batch_commits_nothing(ssc):
    src = ListSource({"a": [1, 2, 3]})
    stream = ReplayableInputDStream(ssc, src, max_rate_per_partition=2, commit=True)

    def fail_first(rdd):
        if rdd.offset_ranges()[0].start == 0:
            raise ValueError("output failed")
    stream.foreach_rdd(fail_first)
    ssc.start()
    with pytest.raises(ValueError, match="output failed"):
        ssc.run_batches(1)
    assert src.commits == []
    ssc.run_batches(1)
    assert src.commits == [{"a": 3}]


def test_a_recovery_rereads_the_logged_ranges_of_batches_after_the_checkpoint(tmp_path, ctx, clean_conf):
    ctx.conf["runnel.streaming.checkpoint.interval"] = "2"
    src = ListSource({"a": [1, 2], "b": [10]})
    runs = []

    def setup():
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(str(tmp_path))
        runs.append(batches_of(ReplayableInputDStream(ssc, src).named("log")))
        return ssc

    ssc = setup()
    ssc.start()
    for more in ([3], [4], [5]):            # batches 1, 2 (checkpointed), 3 each get new records
        ssc.run_batches(1)
        src.data["a"].extend(more)
    ssc.stop(stop_spark_context=False)       # not graceful: batch 3 is after the last checkpoint
    first = runs[0]
    src.data["a"].extend([6, 7])            # more data arrived while the program was down
    src.data["b"].append(11)
    ssc = StreamingContext.resume(str(tmp_path), setup)
    ssc.start()
    ssc.run_batches(2)
    ssc.stop(stop_spark_context=False)
    again = runs[1]
    assert again[0] == first[2]             # batch 3: exactly its records before the crash
    assert again[0][1] == [[4], []]
    assert again[1][1] == [[5, 6, 7], [11]]         # then on from there


def test_only_a_replayable_source_makes_a_replayable_stream(ssc):
    with pytest.raises(TypeError, match="ReplayableSource"):
        ReplayableInputDStream(ssc, [1, 2])
    with pytest.raises(ValueError, match="max_rate_per_partition"):
        ReplayableInputDStream(ssc, ListSource({}), max_rate_per_partition=0)


def test_recovered_batches_checkpoint_and_commit_the_offsets_after_each_one(tmp_path, ctx, clean_conf):
    # two batches ran after the last checkpoint: re-read, each commits (and checkpoints) the offsets
    # after itself, not after the last batch re-read
    ctx.conf["runnel.streaming.checkpoint.interval"] = "3"
    src = ListSource({"a": [1, 2]})
    streams = []

    def setup():
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(str(tmp_path))
        streams.append(ReplayableInputDStream(ssc, src, commit=True).named("log"))
        streams[-1].foreach_rdd(lambda rdd: None)
        return ssc

    ssc = setup()
    ssc.start()
    for more in ([3], [4], [5], [6], [7]):      # batches 1, 2, 3 (checkpointed), 4, 5 each get new records
        ssc.run_batches(1)
        src.data["a"].extend(more)
    ssc.stop(stop_spark_context=False)
    assert src.commits == [{"a": 2}, {"a": 3}, {"a": 4}, {"a": 5}, {"a": 6}]
    src.commits.clear()
    ssc = StreamingContext.resume(str(tmp_path), setup)
    ssc.start()
    stream = streams[1]
    assert stream.replay_until == 5000
    ssc.run_batches(1)                          # batch 4 again
    assert stream.progress(4000) == {"offsets": {"a": 5}}
    assert src.commits == [{"a": 5}]
    ssc.run_batches(2)                          # batch 5 again, then batch 6 reads the rest
    ssc.stop(stop_spark_context=False)
    assert src.commits == [{"a": 5}, {"a": 6}, {"a": 7}]
