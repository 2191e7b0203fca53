"""Smoke tests of the benchmark kit: the workloads agree across systems, the comparison command runs."""

import pytest

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


def test_compare_quick_prints_a_table_with_ratios_and_skips_missing_pyspark(capsys, monkeypatch):
    monkeypatch.setattr(compare, "pyspark_missing", lambda: "pyspark is not installed")
    code = compare.main(["--quick", "--batches", "1", "--warmup", "1",
                         "--systems", "runnel-local,pandas,polars,pyspark"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("workload"))
    table = "\n".join(lines[head:])
    for name in ("W1", "W2", "W5"):
        assert f"\n{name} " in "\n" + table
    assert table.count("runnel local ") == 3 and table.count("pandas ") >= 3
    assert "÷pandas" in table and "x  " in table  # a ratio was printed
    assert "skipped: pyspark is not installed" in table
    assert "MISMATCH" not in table and "FAILED" not in table


def test_compare_rejects_unknown_workloads_and_systems():
    with pytest.raises(SystemExit):
        compare.parse_args(["--only", "W9"])
    with pytest.raises(SystemExit):
        compare.parse_args(["--systems", "flink"])
    s = compare.parse_args(["--quick", "--only", "w2,W5"])
    assert s.workloads == ("W2", "W5") and s.batches == 3
