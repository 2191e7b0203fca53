"""updateStateByKey and mapWithState: batch tables on the manual clock (local and local[2])."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from runnel import StreamingListener
from runnel.checkpoint import load_newest
from runnel.testing import assert_batches_equal, keyed_records
from runnel.updaters import StateSpec, running_sum


def stateful(make, tmp_path):
    """build(ssc, stream) with a checkpoint directory set (no restart warning)."""
    def build(ssc, s):
        ssc.checkpoint(str(tmp_path))
        return make(s)
    return build


def add_up(values, state):
    return sum(values) + (state or 0)


INPUT = [[("a", 1), ("b", 2), ("a", 3)], [("b", 1)], [], [("c", 5)]]


def test_every_key_every_batch_and_full_state_emitted(run, tmp_path):
    calls = []

    def f(values, state):
        calls.append((tuple(values), state))
        return add_up(values, state)
    out = run(stateful(lambda s: s.update_state_by_key(f), tmp_path), INPUT, batches=5)
    assert_batches_equal(out, [[("a", 4), ("b", 2)], [("a", 4), ("b", 3)], [("a", 4), ("b", 3)],
                               [("a", 4), ("b", 3), ("c", 5)], [("a", 4), ("b", 3), ("c", 5)]])


def test_first_batch_calls_only_present_keys_and_values_in_arrival_order(ctx, tmp_path):
    from runnel import ManualClock, StreamingContext
    seen = []
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    try:
        ssc.checkpoint(str(tmp_path))
        s = ssc.queue_stream([ctx.parallelize([("a", 3), ("b", 1), ("a", 1), ("a", 2)], 2), []])
        s.update_state_by_key(lambda vs, st: seen.append((len(vs), list(vs), st)) or vs).foreach_rdd(
            lambda ds: ds.count())
        ssc.start()
        ssc.run_batches(2)
    finally:
        ssc.stop(stop_spark_context=False)
    if ctx.executor.store.__class__.__name__ == "MemoryStore":  # calls are visible in this process
        assert sorted(seen[:2], key=repr) == sorted([(3, [3, 1, 2], None), (1, [1], None)], key=repr)
        assert sorted(seen[2:], key=repr) == sorted([(0, [], [3, 1, 2]), (0, [], [1])], key=repr)


def test_none_deletes_and_new_data_recreates_from_none(run, tmp_path):
    def f(values, state):
        if values == ["drop"]:
            return None
        return (state or ()) + tuple(values)
    inp = [[("k", "x"), ("j", "y")], [("k", "drop")], [], [("k", "z")]]
    out = run(stateful(lambda s: s.update_state_by_key(f), tmp_path), inp)
    assert_batches_equal(out, [[("k", ("x",)), ("j", ("y",))], [("j", ("y",))], [("j", ("y",))],
                               [("j", ("y",)), ("k", ("z",))]])


def test_initial_rdd_keys_are_kept_and_emitted(run, ctx, tmp_path):
    init = ctx.parallelize([("a", 10), ("z", 100)])
    out = run(stateful(lambda s: s.update_state_by_key(add_up, 3, init), tmp_path), [[("a", 1)], []])
    assert_batches_equal(out, [[("a", 11), ("z", 100)], [("a", 11), ("z", 100)]])


def test_mutating_lists_and_state_leaves_earlier_batches_alone(run, tmp_path):
    def f(values, state):
        state = state if state is not None else []
        state.extend(values)
        values.append("junk")
        return state
    out = run(stateful(lambda s: s.update_state_by_key(f), tmp_path), [[("a", 1)], [("a", 2)], []])
    assert_batches_equal(out, [[("a", [1])], [("a", [1, 2])], [("a", [1, 2])]])


def test_builtin_updaters_match_python_functions(run, tmp_path):
    from runnel import updaters as U
    inp = [[("a", 1), ("b", 5), ("a", -2)], [("b", 1)], [], [("c", 3), ("a", 7)]]
    for make in (U.running_sum, U.running_count, U.running_min, U.running_max, U.last_value):
        got = run(stateful(lambda s: s.update_state_by_key(make()), tmp_path), inp)
        want = run(stateful(lambda s: s.update_state_by_key(lambda vs, st, u=make(): u(vs, st)), tmp_path), inp)
        assert_batches_equal(got, want)
    got = run(stateful(lambda s: s.update_state_by_key(U.running_mean()), tmp_path), inp)
    assert_batches_equal(got[-1:], [[("a", 2.0), ("b", 3.0), ("c", 3.0)]])


def test_builtin_ttl_removes_idle_keys_and_data_recreates_them(run, tmp_path):
    inp = [[("a", 1), ("b", 1)], [("a", 1)], [("a", 1)], [], [("b", 4)], []]
    out = run(stateful(lambda s: s.update_state_by_key(running_sum(ttl=2)), tmp_path), inp, batches=7)
    assert_batches_equal(out, [[("a", 1), ("b", 1)], [("a", 2), ("b", 1)], [("a", 3)], [("a", 3)],
                               [("b", 4)], [("b", 4)], []])


def test_builtin_on_float_and_string_keys_and_huge_ints(run, tmp_path):
    inp = [[(1.5, 2**62), (None, 1)], [(1.5, 2**62), ("x", 1)]]
    out = run(stateful(lambda s: s.update_state_by_key(running_sum()), tmp_path), inp)
    assert_batches_equal(out, [[(1.5, 2**62), (None, 1)], [(1.5, 2**63), (None, 1), ("x", 1)]])


def counter(key, value, state):
    if state.is_timing_out():
        return ("timeout", key, state.get())
    n = (state.get() if state.exists() else 0) + value
    if n < 0:
        state.remove()
    else:
        state.update(n)
    return (key, n)


def test_map_with_state_calls_per_record_and_times_out(run, tmp_path):
    inp = [[("a", 1), ("a", 2), ("b", 1)], [("a", 1)], [("b", -5)], [], [], []]
    spec = StateSpec.function(counter).timeout(2)
    mapped = run(stateful(lambda s: s.map_with_state(spec), tmp_path), inp)
    assert_batches_equal(mapped, [[("a", 1), ("a", 3), ("b", 1)], [("a", 4)], [("b", -4)],
                                  [("timeout", "a", 4)], [], []])
    snaps = run(stateful(lambda s: s.map_with_state(spec).state_snapshots(), tmp_path), inp)
    assert_batches_equal(snaps, [[("a", 3), ("b", 1)], [("a", 4), ("b", 1)], [("a", 4)], [], [], []])


def test_map_with_state_initial_state_and_partitions(run, ctx, tmp_path):
    spec = StateSpec.function(counter).initial_state(ctx.parallelize([("z", 10)])).num_partitions(3)
    out = run(stateful(lambda s: s.map_with_state(spec).state_snapshots(), tmp_path), [[("z", 1), ("y", 2)]])
    assert_batches_equal(out, [[("z", 11), ("y", 2)]])


def test_timing_out_state_cannot_be_updated(run, tmp_path):
    def f(k, v, state):
        if state.isTimingOut():
            state.update(1)
        state.update(v)
    with pytest.raises(Exception, match="timing out"):
        run(stateful(lambda s: s.map_with_state(StateSpec.function(f).timeout(1)), tmp_path), [[("a", 1)], []],
            batches=3)


def test_missing_checkpoint_dir_warns_once_at_start(run):
    with pytest.warns(RuntimeWarning, match="will not survive a restart"):
        run(lambda s: s.update_state_by_key(add_up), [[("a", 1)]])


def test_listener_reports_state_keys_and_bytes_and_state_frame(ctx, tmp_path):
    from runnel import ManualClock, StreamingContext
    infos = []

    class L(StreamingListener):
        def onBatchCompleted(self, e):
            infos.append(e.batchInfo().state_tables)
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    try:
        ssc.checkpoint(str(tmp_path))
        ssc.add_streaming_listener(L())
        s = ssc.queue_stream([[("a", 1), ("b", 2)], [("c", 1)]])
        st = s.update_state_by_key(running_sum()).named("sums")
        st.foreach_rdd(lambda ds: ds.count())
        ssc.start()
        ssc.run_batches(2)
        frame = st.state_frame()
        assert isinstance(frame, pd.DataFrame)
        assert dict(zip(frame.key, frame.value)) == {"a": 1, "b": 2, "c": 1}
        ssc._checkpointer.after_batch(2000, final=True)     # the checkpoint writes the table as it is
        ssc._checkpointer.flush()
        (t, parts), = load_newest(str(tmp_path)).tables["sums"].values()
        assert t == 2000 and len(parts) == st.state_at().get_num_partitions()
        assert sorted(r for b in parts for r in b.sub(("key", "value")).to_records()) == \
            sorted(st.state_at().collect())
    finally:
        ssc.stop(stop_spark_context=False)
    assert [i["sums"]["keys"] for i in infos] == [2, 3]
    assert all(i["sums"]["bytes"] > 0 for i in infos)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(keyed_records(max_size=12), min_size=1, max_size=4), st.integers(1, 3),
       st.booleans())
def test_state_after_n_batches_is_a_dict_fold(run, tmp_path, batches, n, builtin):
    state: dict = {}
    want = []
    for b in batches:
        for k, v in b:
            state[k] = state.get(k, 0) + v
        want.append(sorted(state.items()))
    fn = running_sum() if builtin else add_up
    out = run(stateful(lambda s: s.update_state_by_key(fn, n), tmp_path), batches)
    assert_batches_equal(out, want)


def test_compressed_hour_keeps_state_and_blocks_bounded(tmp_path):
    # an hour of one-second batches is kept fast on the serial executor; memory bounds do not
    # depend on the executor (the local[2] store holds the same blocks)
    from runnel import Context, ManualClock, StreamingContext
    ctx = Context("local")
    rng = np.random.default_rng(0)
    n_batches, per_batch = 3600, 300
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    sizes, live = [], []
    try:
        ssc.checkpoint(str(tmp_path))
        batches = []
        for i in range(n_batches):  # keys churn: batch i draws from a window of 20 batches' worth of keys
            keys = rng.integers(i * 50, i * 50 + 1000, per_batch)
            batches.append(pd.DataFrame({"key": keys, "value": np.ones(per_batch)}))
        s = ssc.queue_stream(batches)
        st = s.update_state_by_key(running_sum(ttl=3), 2)
        st.foreach_rdd(lambda ds: sizes.append(ds.count()) or live.append(ds.ctx.executor.store.live_bytes()))
        ssc.start()
        ssc.run_batches(n_batches, timeout=30)
    finally:
        ssc.stop(stop_spark_context=False)
        live_at_end = ctx.executor.store.live_bytes()
        ctx.stop()
    assert len(sizes) == n_batches
    assert max(sizes) < 4 * 300  # at most the keys of the last 3 batches (ttl 3 s)
    steady = live[100:]
    assert max(steady) < 1.5 * min(steady) + 200_000  # flat: no growth over the hour
    assert live_at_end <= live[0] + 200_000
