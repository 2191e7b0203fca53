"""Smoke tests of the benchmark kit: the workloads agree across systems, the comparison command runs."""

import re

import pytest

from runnel.batch import concat_batches
from runnel.bench import compare
from runnel.bench import workloads as wl


def test_workload_batches_are_identical_for_the_same_seed_and_time():
    a = wl.make_batches("W1", 2, n=50, seed=3)
    b = wl.make_batches("W1", 2, n=50, seed=3)
    assert [x.to_records() for x in a] == [x.to_records() for x in b]
    assert a[0].to_records() != a[1].to_records()  # batch t and t+1 differ
    assert len(a[0]) == 50 and all(len(line.split(" ")) == 10 for line in a[0].to_records())


def test_every_system_computes_the_same_aggregates_on_the_same_batch():
    from runnel import Context
    for name in ("W1", "W2"):
        batch = wl.make_batches(name, 1, n=200)[0]
        expected = wl.result_summary(wl.pandas_batch(wl.to_pandas(batch)))
        assert wl.result_summary(wl.polars_batch(wl.to_polars(batch))) == pytest.approx(expected)
        with Context("local") as ctx:
            got = wl.dstream_pipeline(name, ctx.dataset_of([batch])).to_batch()
        assert wl.result_summary(got) == pytest.approx(expected)


def _run_stream(name, batches, variant=None, quick=True):
    """A workload's runnel stream on ``local`` over ``batches``: its last output and its state table (W4)."""
    import collections
    import warnings

    from runnel import Context, ManualClock, StreamingContext
    w = wl.WORKLOADS[name]
    with Context("local") as ctx:
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        queue, last = collections.deque(batches), [None]
        stream = wl.dstream_pipeline(name, ssc.queue_stream(queue), variant, quick)
        stream.foreach_rdd(lambda rdd: last.__setitem__(0, rdd.count() if w.output == "count" else rdd.to_batch()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no checkpoint directory: expected
            ssc.start()
        try:
            ssc.run_batches(len(batches))
            state = wl.state_table(stream) if w.output == "count" else None
        finally:
            ssc.stop(stop_spark_context=False)
    return last[0], state


def test_window_workload_agrees_with_pandas_and_polars_every_slide_after_the_window_fills():
    w = wl.WORKLOADS["W3"]
    assert w.window == 20 and w.min_warmup() == 21 and w.min_warmup(quick=True) == w.window_batches(True) + 1
    batches = wl.make_batches("W3", w.window_batches(True) + 3, n=300)
    pd_step, pl_step = wl.pandas_runner(w, quick=True), wl.polars_runner(w, quick=True)
    for b in batches:
        expected = wl.result_summary(pd_step(wl.to_pandas(b)))
        assert wl.result_summary(pl_step(wl.to_polars(b))) == pytest.approx(expected)
    # the pandas window sums the last `window` batches; keys whose records all left stay (at ~0), as in
    # PySpark's incremental window without a filterFunc -- and so in runnel's
    recent = wl.pandas_batch(wl.to_pandas(concat_batches(batches[-w.window_batches(True):])))
    assert float(pd_step.total.sum()) == pytest.approx(float(recent.sum()))
    assert pd_step.total.loc[recent.index].to_numpy() == pytest.approx(recent.to_numpy())
    assert len(pd_step.total) > len(recent)
    got, _ = _run_stream("W3", batches)
    assert wl.result_summary(got) == pytest.approx(expected)


def test_state_workload_variants_agree_with_pandas_and_polars():
    w = wl.WORKLOADS["W4"]
    assert w.keys == 1_000_000 and w.variants == ("python", "running_sum", "map_with_state")
    batches = wl.make_batches("W4", 3, n=200)
    assert int(max(b["key"].max() for b in batches)) > 100_000  # W4's key range, not W2's
    pd_step, pl_step = wl.pandas_runner(w), wl.polars_runner(w)
    for b in batches:
        expected = wl.result_summary(pd_step(wl.to_pandas(b)))
        assert wl.result_summary(pl_step(wl.to_polars(b))) == pytest.approx(expected)
    assert expected[0] > len(batches[0])  # the state outgrows a batch
    for variant in w.variants:
        count, state = _run_stream("W4", batches, variant)
        assert wl.result_summary(state) == pytest.approx(expected), variant
        if variant != "map_with_state":  # mapWithState's stream is the mapped records, one per input record
            assert count == expected[0]


def test_compare_quick_prints_a_table_with_ratios_and_skips_missing_pyspark(capsys, monkeypatch):
    monkeypatch.setattr(compare, "pyspark_missing", lambda: "pyspark is not installed")
    code = compare.main(["--quick", "--batches", "1", "--warmup", "1",
                         "--systems", "runnel-local,pandas,polars,pyspark"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("workload"))
    table = "\n".join(lines[head:])
    for name in ("W1", "W2", "W3", "W4", "W5", "W6"):
        assert f"\n{name} " in "\n" + table
    # W4 runs three runnel variants
    rows = [line for line in lines[head:] if not line.startswith(("state:", "target:", "note:"))]
    assert sum("runnel local " in line for line in rows) == 8 and sum("pandas " in line for line in rows) >= 6
    for variant in ("python", "running_sum", "map_with_state"):
        assert f"runnel local {variant} " in table
    assert "state: W4 runnel local running_sum: " in out and "bytes/key" in out
    assert "÷pandas" in table and "x  " in table  # a ratio was printed
    assert "skipped: pyspark is not installed" in table
    assert "MISMATCH" not in table and "FAILED" not in table


def test_python_map_workload_agrees_with_pandas_and_polars_and_runs_on_the_python_path():
    from runnel import Context
    from runnel.executors.kinds import runs_python
    batch = wl.make_batches("W6", 1, n=300)[0]
    expected = wl.result_summary(wl.pandas_py_map(wl.to_pandas(batch)))
    assert expected[0] == len({int(k) % wl.PY_MAP_KEYS for k in batch["key"]})
    assert wl.result_summary(wl.polars_py_map(wl.to_polars(batch))) == pytest.approx(expected)
    with Context("local") as ctx:
        ds = wl.dstream_pipeline("W6", ctx.dataset_of([batch]))
        assert wl.result_summary(ds.to_batch()) == pytest.approx(expected)
        assert runs_python(ds.plan.deps[0].parent.ops)       # the map stage goes to processes on local[N]


def test_compare_runs_any_master_and_prints_the_ratio_to_local(capsys):
    code = compare.main(["--quick", "--batches", "1", "--warmup", "1", "--only", "W2,W6",
                         "--masters", "local,local[2],local[2]:processes", "--systems", "pandas"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("workload"))
    assert "÷local" in lines[head]
    for name in ("W2", "W6"):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{name} "))
        block = lines[start:lines.index("", start)]
        systems = {re.split(r"\s{2,}", line.strip())[1 if i == 0 else 0] for i, line in enumerate(block)}
        assert systems == {"runnel local", "runnel local[2]", "runnel local[2] processes", "pandas"}
        col = lines[head].index("÷local")                   # the ratio sits under its header
        for line in block:
            shown = re.match(r"\d+\.\d\dx", line[col:])
            assert bool(shown) == ("runnel local[2]" in line), line
    ratios = [line for line in lines if line.startswith("target: W2 runnel local[2]") and "x local" in line]
    assert len(ratios) == 2, out                              # local[2] and local[2] processes, over local
    assert "MISMATCH" not in out and "FAILED" not in out


def test_compare_rejects_unknown_workloads_and_systems():
    with pytest.raises(SystemExit):
        compare.parse_args(["--only", "W9"])
    with pytest.raises(SystemExit):
        compare.parse_args(["--systems", "flink"])
    s = compare.parse_args(["--quick", "--only", "w2,W5"])
    assert s.workloads == ("W2", "W5") and s.batches == 3
    with pytest.raises(SystemExit):
        compare.parse_args(["--variants", "spark_sql"])
    assert compare.parse_args(["--variants", "running_sum"]).variants == ("running_sum",)
    with pytest.raises(SystemExit):
        compare.parse_args(["--masters", "local[2]:fibers"])
    s = compare.parse_args(["--masters", "local[4]:threads,local"])
    assert s.masters == ("local[4]:threads", "local") and "runnel" in s.systems
    s = compare.parse_args(["--systems", "runnel-local[2],pandas"])
    assert s.masters == ("local[2]",) and s.systems == ("runnel", "pandas")
    assert compare.parse_args(["--systems", "pandas"]).masters == ()


def test_target_lines_show_the_ratio_with_and_without_putting_the_input():
    results = [compare.Result("W3", "pandas", rate=1e6, batch_ms=60.0),
               compare.Result("W3", "runnel local[2]", rate=2.5e6, batch_ms=24.0, put_ms=4.0)]
    [line] = compare.target_lines(results, compare.Settings(workloads=("W3",)))
    assert line == ("target: W3 runnel local[2] >= 3x pandas per batch: 2.50x (NOT met); "
                    "3.00x without the 4.0 ms put of the input")


def test_compare_help_explains_every_workload_in_plain_text(capsys):
    with pytest.raises(SystemExit) as done:
        compare.parse_args(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name in wl.WORKLOADS:  # each workload named at the start of a line, with what it computes
        assert f"\n{name}  " in out, name
    assert "word count" in out and "reduceByKeyAndWindow(add, sub, 20, 1)" in out and "10 records per batch" in out
    assert "``" not in out  # plain text, not reStructuredText


def test_ui_overhead_takes_the_ratio_pair_by_pair():
    from runnel.bench.ui_overhead import paired
    # round 2's machine was twice as fast for both runs: the pair's ratio is unmoved
    got = paired({False: [100.0, 200.0, 100.0, 100.0], True: [99.0, 198.0, 101.0, 97.0]})
    assert got["pairs"] == 4 and got["median"] == pytest.approx(0.99) and got["slower"] == 3
    assert (got["min"], got["max"]) == (pytest.approx(0.97), pytest.approx(1.01))
    assert got["q1"] <= got["median"] <= got["q3"]


def test_scaling_runs_the_call_once_per_thread_in_turn_and_at_once(capsys):
    import threading

    from runnel.bench import scaling
    seen = []
    s, p, x = scaling.speedup(lambda: seen.append(threading.get_ident()), threads=3, rounds=2)
    # one warm-up call, then per round 3 calls on this thread and 1 on each of 3 threads
    assert len(seen) == 1 + 2 * (3 + 3) and len(set(seen[1:4])) == 1 and len(set(seen[4:7])) == 3
    assert s > 0 and p > 0 and x == pytest.approx(s / p)
    scaling.main(["--threads", "2", "--rows", "2000", "--rounds", "1"])
    out = capsys.readouterr().out
    assert re.search(r"^dense reduce, 100,000 keys +[\d.]+ ms +[\d.]+ ms +[\d.]+x$", out, re.M), out
    with pytest.raises(SystemExit):
        scaling.main(["--threads", "1"])
