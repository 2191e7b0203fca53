"""The DataFrame benchmark workloads compute what pandas computes (timing is not tested)."""

from __future__ import annotations

import pandas as pd
import polars as pl

from runnel.bench import frames as fb
from runnel.testing import assert_frame_batches_equal, run_frame


def test_frame_pipelines_equal_the_pandas_and_polars_baselines(ctx, tmp_path):
    batches = [b.head(300).assign(k=lambda d: d.k % 17) for b in fb.make_batches(fb.WORKLOADS["F1"], 6, True)]
    f1 = run_frame(lambda s: fb.frame_pipeline("F1", s, 0), batches, ctx)
    step, pstep = fb.pandas_step("F1", 0), fb.polars_step("F1", 0)
    assert_frame_batches_equal(f1, [step(b).reset_index() for b in batches], rtol=1e-9)
    assert_frame_batches_equal(f1, [pstep(pl.from_pandas(b)).to_pandas().rename(columns={"w": "t"}) for b in batches],
                               rtol=1e-9)
    f3 = run_frame(lambda s: fb.frame_pipeline("F3", s, 3), batches, ctx, checkpoint=str(tmp_path))
    step = fb.pandas_step("F3", 3)
    want = [step(b).reset_index().rename(columns={"count": "n"})[["k", "n", "m"]] for b in batches]
    assert_frame_batches_equal(f3, want, check_dtype=False, rtol=1e-9)


def test_running_mean_pipeline_equals_pandas(ctx, tmp_path):
    batches = [b.head(200).assign(k=lambda d: d.k % 13) for b in fb.make_batches(fb.WORKLOADS["F2"], 4, True)]
    f2 = run_frame(lambda s: s.groupby("k").running().agg(m=("v", "mean")), batches, ctx, checkpoint=str(tmp_path))
    step = fb.pandas_step("F2", 0)
    want = [step(b).rename("m").reset_index() for b in batches]
    assert_frame_batches_equal(f2, want, rtol=1e-9)


def test_quick_run_prints_every_system(capsys):
    results = fb.run(["F1"], 1, True)
    assert [r[1] for r in results] == ["runnel.frame local", "DStream local", "pandas", "polars"]
    assert all(r[2] > 0 for r in results)
    text = fb.format_results(results)
    assert "F1: filter + assign" in text and "frame ÷ DStream on local: wall" in text


def test_cpu_of_stages_in_worker_processes_is_not_reported():
    # local[2] sends the DStream pipeline's Python lambdas to worker processes: their CPU is not this
    # process's, so the table says n/a instead of a figure that leaves it out
    batches = [b.head(20_000) for b in fb.make_batches(fb.WORKLOADS["F1"], 1, True)]   # 320 kB: not inline
    seen = {}
    for variant in ("frame", "dstream"):
        runner = fb.RunnelFrames(fb.WORKLOADS["F1"], batches[0], variant, True, "local[2]")
        try:
            for b in batches:
                runner.step(b)
            seen[variant] = runner.ran_in_processes()
        finally:
            runner.close()
    assert seen == {"frame": False, "dstream": True}
    text = fb.format_results([("F1", "runnel.frame local[2]", 0.02, 0.03), ("F1", "DStream local[2]", 0.5, float("nan")),
                              ("F1", "pandas", 0.2, 0.2)])
    assert "frame ÷ DStream on local[2]: wall 0.04x, CPU n/a" in text
    assert "10.00x, 6.67x as fast" in text and "CPU n/a: stages ran in worker processes" in text
