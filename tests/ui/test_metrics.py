"""/metrics: Prometheus text, parsed by prometheus_client's own parser, against the listener's BatchInfo."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ui_http import fetch


def scrape(url: str) -> dict:
    code, headers, body = fetch(url + "/metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=")
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def value(families: dict, name: str, sample: str | None = None, **labels) -> float:
    fam = families[name]
    got = [s.value for s in fam.samples if s.name == (sample or name) and all(s.labels.get(k) == v
                                                                                for k, v in labels.items())]
    assert len(got) == 1, (name, sample, labels, fam.samples)
    return got[0]


def test_metrics_follow_prometheus_naming_and_equal_batch_infos(ui_ssc, recorder, tmp_path):
    ui_ssc.checkpoint(str(tmp_path / "ckpt"))
    pairs = ui_ssc.rate_stream("pairs", records_per_batch=300, keys=50).named("pairs")
    totals = pairs.update_state_by_key(lambda new, old: (old or 0) + sum(new)).named("totals")
    totals.foreach_rdd(lambda ds: ds.count())
    ui_ssc.queue_stream([[1, 2], [3]]).foreach_rdd(lambda ds: None)

    def boom(ds):
        raise RuntimeError("failed output")
    ui_ssc.queue_stream([[], ["x"]]).foreach_rdd(boom)
    ui_ssc.start()
    with pytest.raises(RuntimeError, match="failed output"):
        ui_ssc.run_batches(3)
    infos = [recorder.completed[t] for t in sorted(recorder.completed)]
    fams = scrape(ui_ssc.ui_url)

    for name, fam in fams.items():
        assert name.startswith("runnel_"), name
        if fam.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in fam.samples), fam.samples
    failed = sum(1 for i in infos if i.failed)
    assert failed == 3       # every batch runs the failing output
    assert value(fams, "runnel_batches", "runnel_batches_total", status="failed") == failed
    assert value(fams, "runnel_batches", "runnel_batches_total", status="succeeded") == 3 - failed
    for metric, attr in [("runnel_batch_processing_seconds", "processing_delay"),
                         ("runnel_batch_scheduling_delay_seconds", "scheduling_delay"),
                         ("runnel_batch_total_delay_seconds", "total_delay")]:
        assert fams[metric].type == "histogram"
        assert value(fams, metric, metric + "_count") == 3
        assert value(fams, metric, metric + "_sum") == pytest.approx(sum(getattr(i, attr) for i in infos) / 1000)
    for stream in infos[0].stream_records:
        assert value(fams, "runnel_input_records", "runnel_input_records_total", stream=stream) == \
            sum(i.stream_records[stream] for i in infos)
    assert value(fams, "runnel_input_records", "runnel_input_records_total", stream="pairs") == 900
    table = infos[-1].state_tables["totals"]
    assert table["keys"] == 50
    assert value(fams, "runnel_state_rows", operator="totals") == table["keys"]
    assert value(fams, "runnel_state_bytes", operator="totals") == table["bytes"] > 0
    assert value(fams, "runnel_batches_active", status="queued") == 0
    assert value(fams, "runnel_batch_interval_seconds") == 1.0
    assert value(fams, "runnel_checkpoint_last_timestamp_seconds") == 0.0      # the checkpoint at start
    assert value(fams, "runnel_checkpoint_size_bytes") > 0
    # no record values in labels: only stream, operator and status names, and where stages ran
    labels = {k for f in fams.values() for s in f.samples for k in s.labels}
    assert labels <= {"status", "stream", "operator", "state", "kind", "le"}
    assert {s.labels["kind"] for f in fams.values() for s in f.samples if "kind" in s.labels} <= \
        {"serial", "inline", "threads", "processes"}
    with pytest.raises(RuntimeError):
        ui_ssc.await_termination_or_timeout(0)
