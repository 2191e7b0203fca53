"""Poison records in per-key state: a bad record fails its batch, never the stream.

A record the update cannot take (``("a", None)`` for a running sum) fails the
batch it came in, with an error naming the stream, the batch time and what
was wrong; the state stays at the last good batch, later batches continue
from it, the failed batch's data is released, and checkpoints go on. With
``on_bad_record="dead_letter"`` the bad records go to ``dead_letters()``
with their error instead and the batch succeeds.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from runnel import ManualClock, StreamingContext, StreamingListener, updaters
from runnel.checkpoint import load_newest
from runnel.testing import assert_batches_equal

pytestmark = pytest.mark.filterwarnings("ignore:.*will not survive a restart:RuntimeWarning")


def add_up(values, state):
    return sum(values) + (state or 0)


UPDATERS = {"builtin": updaters.running_sum(), "python": add_up}
POISONED = [[("a", 1)], [("a", None), ("b", 2)], [("a", 3)], [("b", 1)]]


class _Failures(StreamingListener):
    """The failure reason of every output operation that failed, in batch order."""

    def __init__(self):
        self.reasons: list[str] = []

    def onOutputOperationCompleted(self, event):
        reason = event.outputOperationInfo().failureReason()
        if reason is not None:
            self.reasons.append(reason)


def _drive(ssc, build, batches, n=None, watch=None):
    """Run ``n`` batches one by one: {batch second: records} of the batches whose output succeeded,
    and the failure reasons of the others. ``watch(input stream, queued Datasets)`` may add outputs
    after the collecting one."""
    queued = [ssc.context.parallelize(b, 2) for b in batches]
    q = ssc.queue_stream(queued)
    out: dict = {}
    build(q).foreach_rdd(lambda t, ds: out.__setitem__(int(t.timestamp()), sorted(ds.collect(), key=repr)))
    if watch is not None:
        watch(q, queued)
    failures = _Failures()
    ssc.add_streaming_listener(failures)
    ssc.start()
    for _ in range(len(batches) if n is None else n):
        try:
            ssc.run_batches(1)
        except Exception:  # noqa: BLE001  (a failed batch may be re-raised here; the listener has its reason)
            pass
    return out, failures.reasons


@pytest.mark.parametrize("kind", UPDATERS)
def test_bad_record_fails_its_batch_and_state_continues_from_last_good(ssc, tmp_path, kind):
    ssc.checkpoint(str(tmp_path))
    out, errors = _drive(ssc, lambda s: s.update_state_by_key(UPDATERS[kind]), POISONED)
    assert out == {1: [("a", 1)], 3: [("a", 4)], 4: [("a", 4), ("b", 1)]}
    msg = errors[0]
    assert "update_state_by_key" in msg and "00:00:02" in msg and "NoneType" in msg, msg
    # the batch failed once; the batches after it did not fail with its error
    assert len(errors) == 1, errors


def test_failed_batch_is_checkpointed_past_so_a_restart_does_not_replay_it(ctx, tmp_path, clean_conf):
    made = []

    def setup():
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        made.append(ssc)
        ssc.checkpoint(str(tmp_path))
        ssc.context.conf["runnel.streaming.checkpoint.interval"] = "1"
        return ssc

    build = lambda s: s.update_state_by_key(updaters.running_sum()).named("totals")  # noqa: E731
    try:
        ssc = setup()
        out, errors = _drive(ssc, build, POISONED, 3)
        assert out == {1: [("a", 1)], 3: [("a", 4)]} and len(errors) == 1
        ssc.stop(stop_spark_context=False)
        snap = load_newest(str(tmp_path))
        assert snap.time == 3000  # checkpoints went on after the bad batch 2
        (t, parts), = snap.tables["totals"].values()
        assert sorted(r for b in parts for r in b.sub(("key", "value")).to_records()) == [("a", 4)]

        def resumed():
            new = setup()
            q = new.queue_stream([new.context.parallelize(b, 2) for b in POISONED])
            st = build(q)
            st.foreach_rdd(lambda t, ds: after.__setitem__(int(t.timestamp()), sorted(ds.collect())))
            return new

        after: dict = {}
        ssc = StreamingContext.resume(str(tmp_path), resumed)
        ssc.start()
        ssc.run_batches(1)                   # batch 4 runs from the checkpointed state: no error
        ssc.await_termination_or_timeout(0)
        assert after == {4: [("a", 4), ("b", 1)]}
    finally:
        for s in made:
            s.stop(stop_spark_context=False)


@pytest.mark.parametrize("kind", UPDATERS)
def test_failed_batch_releases_its_data(ctx, kind, clean_conf):
    """A bad record in batch 2 of 40: live blocks and bytes stay flat (the failed lineage is not kept)."""
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    rng = np.random.default_rng(1)
    batches = [list(zip(rng.integers(0, 50, 2000).tolist(), [1] * 2000)) for _ in range(40)]
    batches[1][7] = (3, None)
    live = []
    store = ctx.executor.store

    def watch(q, queued):
        inputs = [r for d in queued for r in d.plan.refs]  # held by the test's list all along

        def measure(ds):  # what the store holds beyond the input batches
            live.append((store.live_blocks() - len(inputs), store.live_bytes() - sum(r.nbytes for r in inputs)))
        q.foreach_rdd(measure)

    try:
        out, errors = _drive(ssc, lambda s: s.update_state_by_key(UPDATERS[kind], 2), batches, watch=watch)
    finally:
        ssc.stop(stop_spark_context=False)
    assert len(errors) == 1 and sorted(out) == [1] + list(range(3, 41)), (errors, sorted(out))
    steady_blocks, steady_bytes = [b for b, _ in live[5:]], [n for _, n in live[5:]]
    assert max(steady_blocks) <= min(steady_blocks) + 4, steady_blocks
    assert max(steady_bytes) < 1.5 * min(steady_bytes) + 50_000, steady_bytes


def test_incremental_window_fails_while_the_bad_batch_is_in_it_then_recovers(ssc):
    import operator
    batches = [[("a", 1)], [("a", None)]] + [[("a", 1)]] * 6
    out, errors = _drive(ssc, lambda s: s.reduce_by_key_and_window(operator.add, operator.sub, 5, 1), batches)
    # windows of 5 batches: those at 2..6 s hold the bad batch 2; from 7 s they are whole again
    assert out == {1: [("a", 1)], 7: [("a", 5)], 8: [("a", 5)]}, out
    assert len(errors) == 5 and all("NoneType" in e for e in errors)


# --- on_bad_record="dead_letter" ---------------------------------------------------------------

def _dead_lettered(kind, **kw):
    dead: dict = {}

    def build(s):
        st = s.update_state_by_key(UPDATERS[kind], **kw)
        st.dead_letters().foreach_rdd(lambda t, ds: dead.__setitem__(int(t.timestamp()), ds.collect()))
        return st
    return build, dead


@pytest.mark.parametrize("kind", UPDATERS)
def test_dead_letter_mode_leaves_bad_records_out_and_the_batch_succeeds(ssc, kind):
    build, dead = _dead_lettered(kind, on_bad_record="dead_letter")
    out, errors = _drive(ssc, build, POISONED)
    assert errors == []
    assert out == {1: [("a", 1)], 2: [("a", 1), ("b", 2)], 3: [("a", 4), ("b", 2)], 4: [("a", 4), ("b", 3)]}
    assert [dead[t] for t in (1, 3, 4)] == [[], [], []]
    (key, value, error), = dead[2]
    assert (key, value) == ("a", None) and error.startswith("TypeError:") and "None" in error, error


def test_python_updater_dead_letters_every_new_value_of_the_key_it_raised_on(ssc):
    def strict(values, state):
        if any(v < 0 for v in values):
            raise ValueError(f"negative value in {values}")
        return sum(values) + (state or 0)

    batches = [[("a", 1), ("b", 1)], [("a", 2), ("a", -1), ("b", 1)], [("a", 5)]]
    dead: dict = {}

    def build(s):
        st = s.update_state_by_key(strict, on_bad_record="dead_letter")
        st.dead_letters().foreach_rdd(lambda t, ds: dead.__setitem__(int(t.timestamp()), ds.collect()))
        return st
    out, errors = _drive(ssc, build, batches)
    assert errors == []
    assert out == {1: [("a", 1), ("b", 1)], 2: [("a", 1), ("b", 2)], 3: [("a", 6), ("b", 2)]}
    assert_batches_equal([dead[2]], [[("a", 2, "ValueError: negative value in [2, -1]"),
                                      ("a", -1, "ValueError: negative value in [2, -1]")]])


def test_builtin_dead_letters_take_numbers_back_to_the_kernels(ssc):
    """After the bad values are left out, the rest is a column of numbers again (the kernel path)."""
    batches = [[("a", 1.5), ("b", "x"), ("a", None), ("b", 2.0)], [("a", 1.0)]]
    build, dead = _dead_lettered("builtin", on_bad_record="dead_letter")
    out, errors = _drive(ssc, build, batches)
    assert errors == [] and out == {1: [("a", 1.5), ("b", 2.0)], 2: [("a", 2.5), ("b", 2.0)]}
    assert sorted((k, v) for k, v, _ in dead[1]) == [("a", None), ("b", "x")]


def test_dead_letters_are_counted_and_logged_without_an_output(ssc, caplog):
    tables = []

    class Listen(StreamingListener):
        def onBatchCompleted(self, event):
            tables.append(event.batchInfo().state_tables)
    ssc.add_streaming_listener(Listen())
    with caplog.at_level(logging.WARNING, logger="runnel.state"):
        out, errors = _drive(ssc, lambda s: s.update_state_by_key(updaters.running_sum(),
                                                                   on_bad_record="dead_letter").named("totals"),
                             POISONED)
    assert errors == [] and [t["totals"]["dead_letters"] for t in tables] == [0, 1, 0, 0]
    logged = [r.getMessage() for r in caplog.records if "dead letters" in r.getMessage()]
    assert len(logged) == 1 and "totals" in logged[0] and "00:00:02" in logged[0] and "'a'" in logged[0], logged


def test_on_bad_record_default_comes_from_the_conf(ssc):
    ssc.context.conf["runnel.streaming.state.onBadRecord"] = "dead_letter"
    build, dead = _dead_lettered("python")
    out, errors = _drive(ssc, build, POISONED, 2)
    assert errors == [] and [(k, v) for k, v, _ in dead[2]] == [("a", None)]


def test_on_bad_record_is_checked(ssc):
    s = ssc.queue_stream([[("a", 1)]])
    with pytest.raises(ValueError, match="'fail' or 'dead_letter'"):
        s.update_state_by_key(add_up, on_bad_record="skip")
    with pytest.raises(ValueError, match="dead_letters.. needs"):
        s.update_state_by_key(add_up).dead_letters()
    ssc.context.conf["runnel.streaming.state.onBadRecord"] = "drop"
    with pytest.raises(ValueError, match="conf runnel.streaming.state.onBadRecord"):
        s.update_state_by_key(add_up)


def test_dead_lettered_batch_is_checkpointed_without_its_bad_records(ctx, tmp_path, clean_conf):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    try:
        ssc.checkpoint(str(tmp_path))
        ssc.context.conf["runnel.streaming.checkpoint.interval"] = "1"
        build, dead = _dead_lettered("builtin", on_bad_record="dead_letter")
        out, errors = _drive(ssc, lambda s: build(s).named("totals"), POISONED, 2)
    finally:
        ssc.stop(stop_spark_context=False)
    assert errors == [] and [(k, v) for k, v, _ in dead[2]] == [("a", None)]
    snap = load_newest(str(tmp_path))
    assert snap.time == 2000  # a restart resumes after batch 2: its bad record is not replayed
    (t, parts), = snap.tables["totals"].values()
    assert sorted(r for b in parts for r in b.sub(("key", "value")).to_records()) == [("a", 1), ("b", 2)]
