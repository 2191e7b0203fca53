"""Recovery from checkpoints, in process (manual clock, ``local`` and ``local[2]``).

A "crash" here is a context stopped without a graceful stop after some
batches; the restarted program recovers with ``get_or_create`` (the stored
graph, setup not called) or ``resume`` (setup called, state re-attached by
name). Every test compares with an uninterrupted run of the same program:
for each batch time, the last output written must equal the uninterrupted
run's. Real process kills are in ``test_crash.py``.
"""

from __future__ import annotations

import operator
import os

import pytest

from runnel import ManualClock, StreamingContext
from runnel.checkpoint import CheckpointError, checkpoint_times
from runnel.updaters import running_mean, running_sum

# outputs of recovered graphs are unpickled copies: they write here, by reference to this module
SEEN: dict[str, dict] = {}


class Record:
    """foreach_rdd(Record(key)): SEEN[key][batch time] = sorted records (a re-run overwrites)."""

    def __init__(self, key: str):
        self.key = key

    def __call__(self, t, rdd):
        SEEN.setdefault(self.key, {})[t] = sorted(rdd.collect(), key=repr)


def add_counts(new, old):
    return sum(new) + (old or 0)


def words(i: int) -> list:
    return [(f"w{(i * 7 + j) % 11}", 1 + (j % 3)) for j in range(12)]


DATA = [words(i) for i in range(14)]


def program(ctx, directory, key, data=DATA, *, parallelism=None, state_fn=add_counts, interval="2",
            window=operator.add, extra=False):
    """A setup function: update_state_by_key, an inverse window, a plain window and mapWithState."""
    def setup():
        conf = ctx.conf
        conf["runnel.streaming.checkpoint.interval"] = interval
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(directory)
        s = ssc.queue_stream([list(d) for d in data])
        if parallelism is not None:
            s = s.repartition(parallelism)
        if extra:   # an unrelated new operator: shifts the numbering of everything defined after it
            s.map(lambda kv: kv).foreach_rdd(lambda rdd: None)
        n = parallelism
        s.update_state_by_key(state_fn, n).named("totals").foreach_rdd(Record(key + "/totals"))
        s.reduce_by_key_and_window(window, operator.sub, 5, 1, n).named("win5").foreach_rdd(Record(key + "/win5"))
        s.window(3, 1).named("raw3").count().foreach_rdd(Record(key + "/raw3"))
        return ssc
    return setup


def final(key: str) -> dict:
    return {k.split("/", 1)[1]: v for k, v in SEEN.items() if k.startswith(key + "/")}


def run_uninterrupted(ctx, tmp_path, batches, **kw):
    ssc = program(ctx, str(tmp_path / "ref"), "ref", **kw)()
    ssc.start()
    ssc.run_batches(batches)
    ssc.stop(stop_spark_context=False)
    return final("ref")


def crash_after(ssc, batches):
    ssc.start()
    ssc.run_batches(batches)
    ssc._checkpointer.flush()
    ssc.stop(stop_spark_context=False)      # not graceful: what a crash leaves behind


@pytest.fixture(autouse=True)
def fresh_seen():
    SEEN.clear()
    yield
    SEEN.clear()


def test_resume_continues_state_and_windows_exactly(ctx, tmp_path, clean_conf):
    want = run_uninterrupted(ctx, tmp_path, 12)
    d = str(tmp_path / "ck")
    crash_after(program(ctx, d, "a")(), 5)            # checkpoints at 2 s and 4 s; batch 5 is lost work
    assert checkpoint_times(d)[:2] == [4000, 2000]
    ssc = StreamingContext.resume(d, program(ctx, d, "a"))
    ssc.start()
    ssc.run_batches(8)                                # batches 5..12: 5 runs again
    ssc.stop(stop_spark_context=False)
    assert final("a") == want


def test_get_or_create_recovers_without_calling_setup(ctx, tmp_path, clean_conf):
    want = run_uninterrupted(ctx, tmp_path, 10)
    d = str(tmp_path / "ck")
    crash_after(program(ctx, d, "b")(), 7)
    calls = []

    def setup():
        calls.append(1)
        return program(ctx, d, "b")()
    ssc = StreamingContext.getOrCreate(d, setup)
    assert calls == [] and ssc.context is ctx          # the active Context is reused
    ssc.start()
    assert ssc.clock.now() == 6000                    # the recovered manual clock starts at the checkpoint
    ssc.run_batches(4)
    ssc.stop(stop_spark_context=False)
    assert final("b") == want


def test_get_or_create_without_checkpoint_calls_setup(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "empty")
    ssc = StreamingContext.get_or_create(d, program(ctx, d, "c"))
    assert ssc._recovery is None
    ssc.stop(stop_spark_context=False)


def test_resume_with_other_parallelism_and_changed_functions(ctx, tmp_path, clean_conf):
    want = run_uninterrupted(ctx, tmp_path, 12)
    d = str(tmp_path / "ck")
    crash_after(program(ctx, d, "d")(), 6)
    # the new version: 3 partitions (tables are repartitioned), a new unrelated operator, new functions
    new = program(ctx, d, "d", parallelism=3, extra=True, window=lambda a, b: a + b,
                  state_fn=lambda new, old: sum(new) + (old or 0))
    ssc = StreamingContext.resume(d, new)
    ssc.start()
    ssc.run_batches(6)
    ssc.stop(stop_spark_context=False)
    assert final("d") == want


def test_resume_refuses_state_without_an_operator_unless_discarded(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "ck")
    crash_after(program(ctx, d, "e")(), 4)

    def renamed():
        ssc = program(ctx, d, "e")()
        ssc._graph.names["totals"].named("totals-v2")
        return ssc
    with pytest.raises(CheckpointError, match=r"'totals': no operator of that name keeps state.*discard_state"):
        StreamingContext.resume(d, renamed)
    with pytest.warns(RuntimeWarning, match="discarding the checkpointed state of 'totals'"):
        ssc = StreamingContext.resume(d, renamed, discard_state=["totals"])
    ssc.start()
    ssc.run_batches(1)
    ssc.stop(stop_spark_context=False)
    totals = final("e")["totals"]
    assert totals[max(totals)] == sorted(  # "totals-v2" starts from nothing at batch 5
        {k: v for k, v in _fold(DATA[4:5]).items()}.items(), key=repr)


def _fold(batches) -> dict:
    out: dict = {}
    for b in batches:
        for k, v in b:
            out[k] = out.get(k, 0) + v
    return out


def test_resume_refuses_a_table_that_no_longer_fits(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "ck")
    crash_after(program(ctx, d, "f", state_fn=running_sum())(), 4)
    with pytest.raises(CheckpointError, match=r"'totals': its updater was 'sum' and is now 'mean'"):
        StreamingContext.resume(d, program(ctx, d, "f", state_fn=running_mean()))
    other = str(tmp_path / "ck2")                  # from a Python function: the columns tell
    crash_after(program(ctx, other, "f2")(), 4)
    with pytest.raises(CheckpointError, match=r"'totals': its table lacks the column\(s\) _count, _sum"):
        StreamingContext.resume(other, program(ctx, other, "f2", state_fn=running_mean()))
    with pytest.raises(CheckpointError, match=r"'win5': its window_ms was 5000 and is now 6000"):
        def longer():
            ssc = StreamingContext(ctx, 1, clock=ManualClock())
            s = ssc.queue_stream([])
            s.update_state_by_key(running_sum()).named("totals").pprint()
            s.reduce_by_key_and_window(operator.add, operator.sub, 6, 1).named("win5").pprint()
            s.window(3, 1).named("raw3").pprint()
            return ssc
        StreamingContext.resume(d, longer)


def test_resume_refuses_another_batch_interval(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "ck")
    crash_after(program(ctx, d, "g")(), 3)

    def two_seconds():
        ssc = StreamingContext(ctx, 2, clock=ManualClock())
        ssc.queue_stream([]).pprint()
        return ssc
    with pytest.raises(CheckpointError, match="batch interval of 1000 ms, this program's is 2000 ms"):
        StreamingContext.resume(d, two_seconds)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(ctx, tmp_path, clean_conf):
    want = run_uninterrupted(ctx, tmp_path, 10)
    d = str(tmp_path / "ck")
    crash_after(program(ctx, d, "h")(), 7)
    newest = os.path.join(d, "checkpoint-6000")
    victim = os.path.join(newest, sorted(f for f in os.listdir(newest) if f.endswith(".arrow"))[0])
    with open(victim, "r+b") as f:                    # flip bytes in the middle of a table file
        f.seek(os.path.getsize(victim) // 2)
        f.write(b"\xff\x00\xff")
    with pytest.warns(RuntimeWarning, match=f"{victim}: checksum mismatch"):
        ssc = StreamingContext.resume(d, program(ctx, d, "h"))
    assert ssc._recovery.time == 4000
    ssc.start()
    ssc.run_batches(6)                                # 5..10: 5 and 6 run again
    ssc.stop(stop_spark_context=False)
    assert final("h") == want
    assert os.path.exists(victim)                     # evidence is not deleted by the recovery


def test_truncated_manifest_and_foreign_files_are_skipped(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "ck")
    crash_after(program(ctx, d, "i")(), 5)
    with open(os.path.join(d, "checkpoint-4000", "manifest.json"), "r+b") as f:
        f.truncate(40)
    with open(os.path.join(d, "checkpoint-9000"), "wb") as f:
        f.write(b"a Spark checkpoint file")
    with pytest.warns(RuntimeWarning) as got:
        ssc = StreamingContext.resume(d, program(ctx, d, "i"))
    messages = " | ".join(str(w.message) for w in got)
    assert "checkpoint-9000 is not a runnel checkpoint directory" in messages
    assert "checkpoint-4000/manifest.json: unreadable manifest" in messages
    assert ssc._recovery.time == 2000
    ssc.stop(stop_spark_context=False)


def test_no_usable_checkpoint_is_an_error_not_a_fresh_start(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "ck")
    os.makedirs(os.path.join(d, "checkpoint-1000"))
    with pytest.warns(RuntimeWarning), pytest.raises(CheckpointError, match="no usable checkpoint"):
        StreamingContext.get_or_create(d, program(ctx, d, "j"))


def test_old_checkpoints_are_cleaned_up(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "ck")
    ctx.conf["runnel.streaming.checkpoint.keep"] = "2"
    crash_after(program(ctx, d, "k")(), 9)
    assert checkpoint_times(d) == [8000, 6000]
    assert len([f for f in os.listdir(d) if f.startswith("graph-")]) == 1
    assert not [f for f in os.listdir(d) if f.startswith(".")]


def test_graceful_stop_checkpoints_the_last_batch(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "ck")
    ssc = program(ctx, d, "l")()
    ssc.start()
    ssc.run_batches(3)
    ssc.stop(stop_spark_context=False, stop_gracefully=True)   # drains the queue: 14 batches in all
    assert checkpoint_times(d)[0] == 14000


def test_start_names_a_function_the_checkpoint_cannot_store(ctx, tmp_path, clean_conf):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.checkpoint(str(tmp_path))
    s = ssc.queue_stream([[1]])

    def uses_the_context(rdd):
        return ssc.batch_duration
    s.update_state_by_key(add_counts)
    s.foreach_rdd(uses_the_context)
    with pytest.raises(CheckpointError, match=r"foreachRDD-\d+ .*uses_the_context.*StreamingContext"):
        ssc.start()
    ssc.stop(stop_spark_context=False)


def test_checkpoint_interval_must_fit_the_slides(ctx, tmp_path, clean_conf):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.checkpoint(str(tmp_path))
    s = ssc.queue_stream([[1]])
    s.window(4, 2).checkpoint(3).pprint()
    with pytest.raises(ValueError, match=r"checkpoint interval \(3000 ms\) must be a multiple .* \(2000 ms\)"):
        ssc.start()
    ssc.stop(stop_spark_context=False)


def test_default_interval_is_at_least_ten_seconds_on_the_slides(ctx, tmp_path, clean_conf):
    ssc = StreamingContext(ctx, 3, clock=ManualClock())
    ssc.checkpoint(str(tmp_path))
    ssc.queue_stream([[1]]).window(12, 6).pprint()
    ssc.start()
    assert ssc._checkpointer.interval_ms == 12_000
    ssc.stop(stop_spark_context=False)


def test_file_stream_reads_each_file_once_across_a_recovery(ctx, tmp_path, clean_conf):
    src = tmp_path / "in"
    src.mkdir()
    (src / "old.txt").write_text("ignored\n")       # present at the first start: never read
    d = str(tmp_path / "ck")

    def setup():
        ctx.conf["runnel.streaming.checkpoint.interval"] = "2"
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(d)
        lines = ssc.text_file_stream(str(src))
        lines.map(lambda w: (w, 1)).update_state_by_key(add_counts).named("counts") \
            .foreach_rdd(Record("files/counts"))
        return ssc

    def drop(i):                                      # file i becomes visible to batch i
        p = src / f"f{i}.txt"
        p.write_text(f"a\nb{i}\n")
        os.utime(p, ns=(i * 1_000_000_000, i * 1_000_000_000))

    ssc = setup()
    ssc.start()
    for i in range(1, 6):
        drop(i)
        ssc.run_batches(1)
    ssc._checkpointer.flush()
    ssc.stop(stop_spark_context=False)                # checkpoint at 4 s: f5 was read by lost batch 5
    ssc = StreamingContext.resume(d, setup)
    ssc.start()
    for i in range(5, 8):
        if i > 5:
            drop(i)
        ssc.run_batches(1)
    ssc.stop(stop_spark_context=False)
    seen = SEEN["files/counts"]
    counts = dict(seen[max(seen)])
    assert counts == {"a": 7, **{f"b{i}": 1 for i in range(1, 8)}}


def track(key, value, state):
    """mapWithState: running count per key; a key idle for 2 s times out with a last call."""
    if state.is_timing_out():
        return (key, "timeout", state.get())
    n = (state.get() if state.exists() else 0) + 1
    state.update(n)
    return (key, n)


def other_program(ctx, directory, key, data):
    """mapWithState with timeouts, a window sliding every 2 batches and countByValueAndWindow."""
    from runnel.updaters import StateSpec

    def setup():
        ctx.conf["runnel.streaming.checkpoint.interval"] = "2"
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(directory)
        s = ssc.queue_stream([list(d) for d in data])
        mapped = s.map_with_state(StateSpec.function(track).timeout(2)).named("tracked")
        mapped.foreach_rdd(Record(key + "/mapped"))
        mapped.state_snapshots().foreach_rdd(Record(key + "/snapshots"))
        s.map(lambda kv: kv[0]).count_by_value_and_window(5, 1).named("cbv").foreach_rdd(Record(key + "/cbv"))
        s.window(4, 2).named("w42").foreach_rdd(Record(key + "/w42"))
        return ssc
    return setup


def test_map_with_state_and_sliding_windows_recover(ctx, tmp_path, clean_conf):
    data = [[(f"k{(i + j) % 4}", j) for j in range(i % 3)] for i in range(12)]   # some keys go idle
    ref = other_program(ctx, str(tmp_path / "ref"), "ref", data)()
    ref.start()
    ref.run_batches(12)
    ref.stop(stop_spark_context=False)
    want = final("ref")
    assert any(r[1] == "timeout" for rs in want["mapped"].values() for r in rs)
    d = str(tmp_path / "ck")
    crash_after(other_program(ctx, d, "m", data)(), 7)
    ssc = StreamingContext.get_or_create(d, other_program(ctx, d, "m", data))
    ssc.start()
    ssc.run_batches(12 - ssc.clock.now() // 1000)
    ssc.stop(stop_spark_context=False)
    assert final("m") == want


def test_an_unwritable_checkpoint_directory_fails_start(ctx, tmp_path, clean_conf):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.checkpoint(str(blocker / "ck"))
    ssc.queue_stream([[1]]).pprint()
    with pytest.raises(CheckpointError, match="cannot write checkpoints to .*a-file/ck"):
        ssc.start()
    assert ssc.state == "INITIALIZED"
    ssc.stop(stop_spark_context=False)


def test_a_resumed_start_rewrites_the_checkpoint_for_the_new_program(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "ck")
    crash_after(program(ctx, d, "n")(), 4)

    def renamed():
        ssc = program(ctx, d, "n")()
        ssc._graph.names["totals"].named("totals-v2")
        return ssc
    with pytest.warns(RuntimeWarning, match="discarding"):
        ssc = StreamingContext.resume(d, renamed, discard_state=["totals"])
    ssc.start()
    ssc.stop(stop_spark_context=False)              # crashed before its first checkpoint interval
    ssc = StreamingContext.resume(d, renamed)       # no error: the checkpoint no longer holds "totals"
    assert ssc._recovery.time == 4000
    assert {s.name for s, tables in ssc._recovery.tables.items() if tables} == {"win5", "raw3"}
    ssc.stop(stop_spark_context=False)
    ssc = StreamingContext.get_or_create(d, renamed)   # and it stores the resumed program
    assert "totals-v2" in ssc._graph.names
    ssc.stop(stop_spark_context=False)


def test_a_failed_start_leaves_no_input_running(ctx, tmp_path, clean_conf):
    from runnel.dstream.receivers import Receiver

    class Idle(Receiver):
        def on_start(self):
            pass

    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.checkpoint(str(tmp_path / "ck"))
    receiver = Idle()
    ssc.receiver_stream(receiver).pprint()
    ssc.queue_stream([[1]]).update_state_by_key(add_counts).pprint()
    original = ssc._graph.inputs[1].progress
    ssc._graph.inputs[1].progress = lambda t: 1 / 0        # the first checkpoint fails, after inputs started
    with pytest.raises(ZeroDivisionError):
        ssc.start()
    ssc._graph.inputs[1].progress = original
    assert ssc.state == "INITIALIZED" and receiver.is_stopped()
    ssc.stop(stop_spark_context=False)


def test_a_state_operator_new_after_resume_starts_from_its_initial_rdd(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "ck")
    crash_after(program(ctx, d, "o")(), 4)

    def with_new_state():
        ssc = program(ctx, d, "o")()
        s = ssc._graph.inputs[0]
        s.update_state_by_key(add_counts, initialRDD=[("w0", 100)]).named("new").foreach_rdd(Record("o/new"))
        return ssc
    ssc = StreamingContext.resume(d, with_new_state)
    ssc.start()
    ssc.run_batches(1)
    ssc.stop(stop_spark_context=False)
    new = final("o")["new"]
    assert dict(new[max(new)]) == {**_fold(DATA[4:5]), "w0": 100 + _fold(DATA[4:5]).get("w0", 0)}


def test_resume_warns_when_state_is_matched_by_a_generated_name(ctx, tmp_path, clean_conf):
    d = str(tmp_path / "ck")

    def unnamed():
        ctx.conf["runnel.streaming.checkpoint.interval"] = "2"
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(d)
        ssc.queue_stream([list(b) for b in DATA]).update_state_by_key(add_counts).foreach_rdd(Record("p/s"))
        return ssc
    crash_after(unnamed(), 3)
    with pytest.warns(RuntimeWarning, match=r"'update_state_by_key-\d+' was matched by generated name"):
        ssc = StreamingContext.resume(d, unnamed)
    ssc.stop(stop_spark_context=False)
