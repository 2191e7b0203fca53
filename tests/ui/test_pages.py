"""The HTML pages: figures equal the listener's BatchInfo, charts carry every batch, live part, notebook."""

from __future__ import annotations

import pytest
from ui_html import expected_row, read_page
from ui_http import fetch

from runnel import ManualClock, StreamingContext


def page(url: str) -> str:
    code, headers, body = fetch(url)
    assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8", (url, code)
    return body.decode()


def test_overview_shows_the_listeners_figures(ui_ssc, recorder, tmp_path):
    ui_ssc.checkpoint(str(tmp_path))
    ui_ssc.rate_stream("pairs", records_per_batch=120, keys=7).named("pairs") \
        .update_state_by_key(lambda new, old: (old or 0) + len(new)).named("counts").foreach_rdd(lambda ds: None)
    ui_ssc.queue_stream([[1, 2, 3]]).named("queue").foreach_rdd(lambda ds: None)
    ui_ssc.start()
    ui_ssc.run_batches(5)
    infos = [recorder.completed[t] for t in sorted(recorder.completed)]
    html = page(ui_ssc.ui_url + "/")
    assert '<script src="/static/live.js"' in html and "http-equiv=\"refresh\"" in html
    r = read_page(html)
    rows = r.rows["completed-batches"]
    assert sorted(rows) == [i.batch_time for i in infos]
    for info in infos:
        assert rows[info.batch_time] == expected_row(info)
    assert "active-batches" not in r.rows          # no active batch: the table says none
    assert r.points["Input Rate"] == [(i.batch_time, float(i.num_records)) for i in infos]
    assert r.points["Input Rate pairs"] == [(i.batch_time, 120.0) for i in infos]    # per stream, 1 s batches
    assert r.points["Processing Time"] == [(i.batch_time, float(i.processing_delay)) for i in infos]
    assert r.points["Scheduling Delay"] == [(i.batch_time, float(i.scheduling_delay)) for i in infos]
    assert r.points["Total Delay"] == [(i.batch_time, float(i.total_delay)) for i in infos]
    assert r.thresholds == ["Processing Time"]     # the line at the batch interval
    assert 'data-field="numTotalCompletedBatches" data-value="5"' in html
    assert f'data-field="numProcessedRecords" data-value="{sum(i.num_records for i in infos)}"' in html
    assert '<table id="state"><tr><th>Operator</th>' in html and ">counts</td>" in html
    assert f'data-field="rows" data-value="{infos[-1].state_tables["counts"]["keys"]}"' in html
    assert r.points["State rows counts"] == [(i.batch_time, i.state_tables["counts"]["keys"]) for i in infos]
    assert r.points["State bytes counts"] == [(i.batch_time, i.state_tables["counts"]["bytes"]) for i in infos]
    assert '<table id="checkpoints">' in html and str(tmp_path) in html
    live = page(ui_ssc.ui_url + "/?part=live")
    assert "<html" not in live and read_page(live).rows == r.rows


def test_batch_page_with_a_failure(ui_ssc, recorder):
    def boom(ds):
        raise ValueError("bad <b>input</b>")
    ui_ssc.queue_stream([[1]]).foreach_rdd(lambda ds: ds.count())
    ui_ssc.queue_stream([[2]]).foreach_rdd(boom)
    ui_ssc.start()
    with pytest.raises(ValueError, match="bad <b>input</b>"):
        ui_ssc.run_batches(1)
    (info,) = recorder.completed.values()
    html = page(f"{ui_ssc.ui_url}/batch?id={info.batch_time}")
    assert read_page(html).rows["batch"][info.batch_time] == expected_row(info)
    ops = info.output_operation_infos
    for op_id, op in ops.items():
        assert f'data-field="outputOpId" data-value="{op_id}"' in html
        assert f'data-field="duration" data-value="{op.duration}"' in html
    assert "bad &lt;b&gt;input&lt;/b&gt;" in html and "<b>input</b>" not in html   # escaped
    assert html.count("<td>failed</td>") == 1 and html.count("<td>succeeded</td>") == 1
    assert "(1 failed)" in html
    with pytest.raises(ValueError):
        ui_ssc.await_termination_or_timeout(0)


def test_notebook_display(ctx, clean_conf):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    try:
        before = ssc._repr_html_()
        assert "<td style=\"text-align:left\">INITIALIZED</td>" in before and "Completed batches" not in before
        ssc.queue_stream([[1, 2], [3]]).foreach_rdd(lambda ds: None)
        ssc.start()
        ssc.run_batches(2)
        html = ssc._repr_html_()
        assert "ACTIVE" in html and "Completed batches</th><td style=\"text-align:left\">2</td>" in html
        assert "Records processed</th><td style=\"text-align:left\">3</td>" in html and "not served" in html
    finally:
        ssc.stop(stop_spark_context=False)
