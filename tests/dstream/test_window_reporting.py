"""Windows are observable and checkpoint-aware, like per-key state (manual clock, ``local`` and ``local[2]``).

Every window stream reports what it keeps on ``BatchInfo.state_tables`` under
its name — keys of the window table (records for a plain window) and bytes of
the table and the partials / parent batches of the window — and, without
``ssc.checkpoint(dir)``, warns once at start that its window will not
survive a restart.
"""

from __future__ import annotations

import operator
import warnings

import pytest

from runnel import StreamingListener

RESTART = "will not survive a restart"

# batch i: 20 keys of its own (value 1.0) and the key "hot"; then the input drains to empty batches
FILLED = 8
INPUT = [[(f"k{i}-{j}", 1.0) for j in range(20)] + [("hot", float(i + 1))] for i in range(FILLED)]


class Reports(StreamingListener):
    """Collects ``state_tables`` of every completed batch, and whether chosen blocks are still stored."""

    def __init__(self, store):
        self.store = store
        self.tables: list[dict] = []
        self.watch: list = []  # block refs of earlier window tables
        self.alive: list[list[bool]] = []

    def onBatchCompleted(self, e):
        self.tables.append(dict(e.batchInfo().state_tables))
        self.alive.append([r in self.store for r in self.watch])


def observed(ctx, tmp_path, make, watch_tables=False):
    """build(ssc, stream) for ``run``: a checkpoint dir, the listener, ``make(stream)`` named "win"."""
    reports = Reports(ctx.executor.store)

    def build(ssc, s):
        ssc.checkpoint(str(tmp_path))
        ssc.add_streaming_listener(reports)
        win = make(s).named("win")
        if watch_tables:  # after batch t, remember the refs of window table t (the listener checks them later)
            # that output holds the block store, which no checkpoint can store: resume-only checkpoints,
            # and none while the test runs (a snapshot being written holds its tables a little longer)
            ssc.context.conf["runnel.streaming.checkpoint.graph"] = "false"
            ssc.context.conf["runnel.streaming.checkpoint.interval"] = "1000"
            win.foreach_rdd(lambda ds: ds.count() is not None and reports.watch.extend(ds.plan.refs))
        return win
    return build, reports


def _check_fill_and_drain(out, tables, window):
    reports = [t["win"] for t in tables]
    assert len(reports) == len(out)
    keys = [r["keys"] for r in reports]
    nbytes = [r["bytes"] for r in reports]
    # the window fills: bytes grow with every batch until it is full
    assert all(a < b for a, b in zip(nbytes[:window], nbytes[1:window])), nbytes
    # the input drains to empty batches: bytes fall with every batch until the window is empty
    drain = nbytes[FILLED - 1:FILLED + window]
    assert all(a > b for a, b in zip(drain, drain[1:])), nbytes
    assert nbytes[-1] < min(nbytes[:window]) and nbytes[-1] < 100  # empty partitions, no keys
    return keys, nbytes


@pytest.mark.parametrize("how", ["inverse+filterFunc", "no inverse"])
def test_reduced_window_reports_its_keys_and_bytes_every_batch(run, ctx, tmp_path, how):
    if how == "no inverse":
        make = lambda s: s.reduceByKeyAndWindow(operator.add, None, 5, 1, 2)
    else:
        make = lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1, 2, lambda kv: kv[1] != 0)
    build, rep = observed(ctx, tmp_path, make)
    out = run(build, INPUT, batches=FILLED + 7)
    keys, _ = _check_fill_and_drain(out, rep.tables, 5)
    assert keys == [len(batch) for batch in out]  # the window's keys are what it outputs
    assert max(keys) == 5 * 20 + 1 and keys[-1] == 0


def test_inverse_window_without_filter_keeps_zero_keys_but_frees_its_partials(run, ctx, tmp_path):
    build, rep = observed(ctx, tmp_path, lambda s: s.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1, 2))
    out = run(build, INPUT, batches=FILLED + 7)
    reports = [t["win"] for t in rep.tables]
    assert [r["keys"] for r in reports] == [len(b) for b in out]
    # keys at the zero stay in the table (PySpark's semantics), the partials of the window empty out
    assert reports[-1]["keys"] == FILLED * 20 + 1
    assert reports[-1]["bytes"] < max(r["bytes"] for r in reports)


def test_keys_removed_by_filter_func_free_the_previous_tables(run, ctx, tmp_path):
    build, rep = observed(ctx, tmp_path, lambda s: s.reduceByKeyAndWindow(
        operator.add, operator.sub, 5, 1, 2, lambda kv: kv[1] != 0), watch_tables=True)
    run(build, INPUT, batches=FILLED + 7)
    # after batch t only the window table of t is stored (2 partitions): the table at t does not keep the
    # previous one (or the partials that left) alive through its lineage, and removed keys are gone with it
    assert len(rep.alive) == FILLED + 7
    for i, alive in enumerate(rep.alive):
        assert len(alive) == 2 * (i + 1) and all(alive[-2:]) and not any(alive[:-2]), (i, alive)


def test_plain_window_reports_its_records(run, ctx, tmp_path):
    build, rep = observed(ctx, tmp_path, lambda s: s.window(3, 1))
    out = run(build, INPUT, batches=FILLED + 4)
    keys, _ = _check_fill_and_drain(out, rep.tables, 3)
    assert keys == [len(batch) for batch in out]
    assert max(keys) == 3 * 21 and keys[-1] == 0


def test_window_with_a_longer_slide_reports_on_its_slide_times(run, ctx, tmp_path):
    build, rep = observed(ctx, tmp_path, lambda s: s.window(4, 2))
    out = run(build, INPUT[:4], batches=8)
    fired = [t["win"]["keys"] for t in rep.tables if "win" in t]
    assert fired == [len(b) for b in out] == [42, 84, 42, 0]
    assert ["win" in t for t in rep.tables] == [False, True] * 4


def test_group_by_key_and_window_reports_the_records_of_its_window(run, ctx, tmp_path):
    reports = Reports(ctx.executor.store)

    def build(ssc, s):
        ssc.checkpoint(str(tmp_path))
        ssc.add_streaming_listener(reports)
        return s.groupByKeyAndWindow(2, 1).mapValues(list)
    out = run(build, [[("a", 1), ("b", 2)], [("a", 3)], []], batches=4)
    assert [len(b) for b in out] == [2, 2, 1, 0]
    [name] = {n for t in reports.tables for n in t}
    assert name.startswith("window-")
    assert [t[name]["keys"] for t in reports.tables] == [2, 3, 1, 0]  # records in the window


# --- the restart warning ---------------------------------------------------------------------

def test_window_without_checkpoint_dir_warns_once_per_windowed_stream(run):
    def build(s):
        w = s.window(2, 1).named("plain")
        w.count().foreach_rdd(lambda ds: None)  # two outputs on one window: still one warning
        return s.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1).named("keyed").union(
            w.map(lambda kv: kv))
    with pytest.warns(RuntimeWarning, match=RESTART) as record:
        run(build, INPUT[:2], batches=4)
    msgs = sorted(str(w.message) for w in record if RESTART in str(w.message))
    assert msgs == ["keyed: no checkpoint directory is set (ssc.checkpoint(dir)); its window " + RESTART,
                    "plain: no checkpoint directory is set (ssc.checkpoint(dir)); its window " + RESTART]


@pytest.mark.parametrize("op", ["countByWindow", "countByValueAndWindow", "reduceByWindow", "groupByKeyAndWindow"])
def test_every_window_operation_warns_once_without_checkpoint_dir(run, op):
    build = {"countByWindow": lambda s: s.countByWindow(2, 1),
             "countByValueAndWindow": lambda s: s.countByValueAndWindow(2, 1),
             "reduceByWindow": lambda s: s.reduceByWindow(operator.add, operator.sub, 2, 1),
             "groupByKeyAndWindow": lambda s: s.groupByKeyAndWindow(2, 1)}[op]
    with pytest.warns(RuntimeWarning, match=RESTART) as record:
        run(build, [[("a", 1)], [("b", 2)]], batches=3)
    assert len([w for w in record if RESTART in str(w.message)]) == 1


def test_window_with_checkpoint_dir_does_not_warn(run, tmp_path):
    def build(ssc, s):
        ssc.checkpoint(str(tmp_path))
        return s.window(2, 1).union(s.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run(build, INPUT[:2], batches=3)
    assert not [w for w in record if RESTART in str(w.message)]
