"""runnel's own views: stages and executor busy ratio per batch, checkpoint write times, the DStream
graph, the receivers' write-ahead logs — REST, /metrics and pages against what the engine reports."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ui_html import read_page
from ui_http import fetch

from runnel.dstream.receivers import Receiver
from runnel.listener import CheckpointInfo, StreamingListener
from runnel.ui.graphview import layout

NAP = 0.01
WAIT = 30.0


def page(url: str) -> str:
    code, headers, body = fetch(url)
    assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8", (url, code)
    return body.decode()


def scrape(url: str) -> dict:
    """Sample values by name, or by (name, ((label, value), ...)) for labelled samples."""
    code, _, body = fetch(url + "/metrics")
    assert code == 200
    return {(s.name, tuple(sorted(s.labels.items()))) if s.labels else s.name: s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def cells(html: str, element_id: str) -> dict[str, str]:
    """data-field -> data-value inside the element with this id (up to its closing tag)."""
    part = html.split(f'id="{element_id}"', 1)[1].split("</p>", 1)[0]
    out = {}
    for chunk in part.split('data-field="')[1:]:
        name, rest = chunk.split('"', 1)
        out[name] = rest.split('data-value="', 1)[1].split('"', 1)[0]
    return out


def nap(x):
    time.sleep(NAP)
    return x * 2


def test_batch_page_shows_stages_and_the_executors_busy_ratio(ui_ssc, recorder, api):
    ui_ssc.queue_stream([[1, 2, 3], [4, 5, 6], [7, 8, 9]]).map(nap).named("slow") \
        .map(lambda x: (x % 2, x)).reduce_by_key(lambda a, b: a + b).named("sums").foreach_rdd(lambda ds: ds.count())
    ui_ssc.start()
    ui_ssc.run_batches(3)
    infos = [recorder.completed[t] for t in sorted(recorder.completed)]
    ex = api("executor")
    assert ex["slots"] == 1 and [b["batchId"] for b in ex["batches"]] == [i.batch_time for i in infos]
    for b in ex["batches"]:
        assert b["taskTime"] >= 3 * NAP * 1000 * 0.95           # three naps per batch, all in tasks
        assert b["taskTime"] <= b["wallTime"] + 0.01             # one slot: no more than the batch's time
        assert b["busyRatio"] == pytest.approx(b["taskTime"] / b["wallTime"], rel=1e-3)   # those are rounded to µs
        assert b["numStages"] == 2 and b["numTasks"] >= 2        # reduce_by_key: a shuffle map, then the reduce
    assert 0 < ex["busyRatio"] <= 1 and ex["taskTime"] >= sum(b["taskTime"] for b in ex["batches"]) - 0.01

    t = infos[-1].batch_time
    stages = api(f"batches/{t}/stages")
    assert [s["name"] for s in stages] == [f"sums at {_when(t)}, shuffle map", f"sums at {_when(t)}"]
    assert {s["kind"] for s in stages} == {"serial"} and not any(s["failed"] for s in stages)
    assert [s["reads"] for s in stages] == [[], [stages[0]["stageId"]]]      # the reduce reads the shuffle map
    assert sum(s["taskTime"] for s in stages) == pytest.approx(ex["batches"][-1]["taskTime"], abs=0.01)
    html = page(f"{ui_ssc.ui_url}/batch?id={t}")
    rows = html.split('<table id="stages">')[1].split("</table>")[0]
    assert rows.count('class="stage"') == 2
    for s in stages:
        for field in ("stageId", "kind", "numTasks", "duration", "taskTime"):
            assert f'data-field="{field}" data-value="{s[field]}"' in rows, (field, s)
        assert f'data-field="reads" data-value="{",".join(map(str, s["reads"]))}"' in rows
    mine = ex["batches"][-1]
    assert cells(html, "batch-executor") == {"wallTime": str(mine["wallTime"]), "taskTime": str(mine["taskTime"]),
                                             "busyRatio": str(mine["busyRatio"])}
    overview = read_page(page(ui_ssc.ui_url + "/"))
    assert overview.points["Executor Busy"] == [(b["batchId"], round(100 * b["busyRatio"], 2)) for b in ex["batches"]]

    fams = scrape(ui_ssc.ui_url)
    assert fams[("runnel_stages_total", (("kind", "serial"),))] == sum(b["numStages"] for b in ex["batches"])
    assert fams[("runnel_tasks_total", (("kind", "serial"),))] == sum(b["numTasks"] for b in ex["batches"])
    assert fams["runnel_executor_slots"] == 1
    assert fams["runnel_executor_task_seconds_total"] == pytest.approx(api("executor")["taskTime"] / 1000, abs=1e-5)
    assert 0 < fams["runnel_executor_busy_ratio"] <= 1


def _when(t: int) -> str:
    from runnel.listener import ms_to_datetime
    return str(ms_to_datetime(t))


class Checkpoints(StreamingListener):
    def __init__(self):
        self.infos: list[CheckpointInfo] = []
        self.changed = threading.Condition()

    def onCheckpointWritten(self, event):
        with self.changed:
            self.infos.append(event.checkpointInfo())
            self.changed.notify_all()

    def wait_for(self, n: int) -> list[CheckpointInfo]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.infos) >= n, WAIT), self.infos
            return list(self.infos)


def test_checkpoint_write_times(ui_ssc, api, tmp_path):
    ui_ssc.context.conf["runnel.streaming.checkpoint.interval"] = "1"       # a checkpoint every batch
    ui_ssc.checkpoint(str(tmp_path))
    seen = Checkpoints()
    ui_ssc.add_streaming_listener(seen)
    ui_ssc.rate_stream("pairs", records_per_batch=200, keys=20).update_state_by_key(
        lambda new, old: (old or 0) + len(new)).named("counts").foreach_rdd(lambda ds: None)
    ui_ssc.start()
    ui_ssc.run_batches(3)
    infos = seen.wait_for(4)                            # the one at start, then one per batch
    assert [i.batch_time for i in infos] == [0, 1000, 2000, 3000]
    assert infos[0].snapshot_ms is None and all(i.snapshot_ms >= 0 for i in infos[1:])
    assert all(i.write_ms > 0 and i.bytes > 0 for i in infos)
    rest = api("checkpoints")
    assert [c["batchId"] for c in rest] == [3000, 2000, 1000, 0]                 # newest first
    for c, i in zip(rest, reversed(infos)):
        assert (c["writeTime"], c["bytes"], c["path"], c.get("snapshotTime")) == \
            (i.write_ms, i.bytes, i.path, i.snapshot_ms)
    kept = infos[-3:]                                     # kept (3 by default); the writer may be removing the oldest
    assert all(i.bytes == sum(f.stat().st_size for f in (tmp_path / f"checkpoint-{i.batch_time}").iterdir())
                        for i in kept)                   # every byte of the checkpoint's files counted

    html = page(ui_ssc.ui_url + "/")
    table = html.split('<table id="checkpoint-writes">')[1].split("</table>")[0]
    for i in infos:
        assert f'data-checkpoint="{i.batch_time}"' in table and f'data-value="{i.write_ms}"' in table
    assert read_page(html).points["Checkpoint Write Time"] == [(i.batch_time, pytest.approx(i.write_ms, abs=0.01))
                                                                for i in infos]
    assert cells(page(f"{ui_ssc.ui_url}/batch?id=2000"), "batch-checkpoint") == {
        "snapshotTime": str(infos[2].snapshot_ms), "writeTime": str(infos[2].write_ms)}

    fams = scrape(ui_ssc.ui_url)
    assert fams["runnel_checkpoint_write_seconds_count"] == 4
    assert fams["runnel_checkpoint_write_seconds_sum"] == pytest.approx(sum(i.write_ms for i in infos) / 1000)
    assert fams["runnel_checkpoint_snapshot_seconds_count"] == 3


def test_dstream_graph_view(ui_ssc, api, tmp_path):
    ui_ssc.checkpoint(str(tmp_path))
    pairs = ui_ssc.rate_stream("pairs", records_per_batch=10, keys=3).named("pairs")
    words = ui_ssc.queue_stream([[("a", 1)]]).named("words")
    both = pairs.union(words).named("both")
    both.reduce_by_key_and_window(lambda a, b: a + b, None, 3, 1).named("windowed").pprint()
    both.count().foreach_rdd(lambda ds: None)
    ui_ssc.start()
    graph = api("graph")
    nodes = ui_ssc.graph.nodes()
    assert [n["name"] for n in graph["nodes"]] == [n.name for n in nodes]
    by_name = {n["name"]: n for n in graph["nodes"]}
    assert by_name["pairs"]["inputStreamId"] == 0 and by_name["words"]["inputStreamId"] == 1
    assert by_name["both"]["parents"] == ["pairs", "words"]
    assert by_name["windowed"]["windowDuration"] == 3000 and by_name["windowed"]["stateful"] is True
    assert sorted(n["outputOpId"] for n in graph["nodes"] if "outputOpId" in n) == [0, 1]
    assert graph["edges"] == [[p, n.name] for n in nodes for p in n.parents]
    assert graph["text"] == ui_ssc.graph.describe()
    assert graph["text"].splitlines()[2] == "both [union, slide 1 s] <- pairs, words"

    html = page(ui_ssc.ui_url + "/graph")
    svg = html.split('<svg class="dag"')[1].split("</svg>")[0]
    drawn = {c.split('data-name="')[1].split('"')[0] for c in svg.split('<g class="node')[1:]}
    assert drawn == {n.name for n in nodes}
    edges = {(c.split('data-from="')[1].split('"')[0], c.split('data-to="')[1].split('"')[0])
             for c in svg.split('class="edge"')[1:]}
    assert edges == {(p, n.name) for n in nodes for p in n.parents}
    assert "both [union, slide 1 s] &lt;- pairs, words" in html          # the text form, escaped
    rows = layout(nodes)
    assert all(rows[p][0] < rows[n.name][0] for n in nodes for p in n.parents)   # parents above children


class Pushed(Receiver):
    """Stores what the test hands it."""

    def on_start(self):
        pass


def test_write_ahead_log_view(ui_ssc, api, tmp_path):
    ui_ssc.context.conf["spark.streaming.receiver.writeAheadLog.enable"] = "true"
    ui_ssc.checkpoint(str(tmp_path))
    r = Pushed()
    ui_ssc.receiver_stream(r).named("feed").foreach_rdd(lambda ds: ds.count())
    ui_ssc.start()
    deadline = time.monotonic() + WAIT
    while not r.is_started():
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.005)
    r.store_many(list(range(100)))
    ui_ssc.run_batches(1)
    r.store_many(list(range(50)))
    r.store_many(list(range(7)))
    ui_ssc.run_batches(1)
    ui_ssc.run_batches(1)                                 # nothing stored: nothing logged
    (w,) = api("wal")
    assert (w["streamId"], w["streamName"]) == (0, "feed")
    assert [(b["batchId"], b["blocks"]) for b in w["perBatch"]] == [(1000, 1), (2000, 2), (3000, 0)]
    blocks = w["blocks"]
    assert blocks["appendedEntries"] == 3 and blocks["lastEntry"] == 3 and blocks["syncedEntry"] == 3
    assert blocks["appendedBytes"] == sum(b["bytes"] for b in w["perBatch"]) > 0
    assert blocks["bytes"] == blocks["appendedBytes"] and blocks["segments"] == 1   # nothing truncated yet
    assert w["allocatedBatches"] == [1000, 2000]          # batches that took blocks
    assert w["batches"]["appendedEntries"] == 2

    html = page(ui_ssc.ui_url + "/")
    row = html.split('<tr class="wal" data-stream="feed">')[1].split("</tr>")[0]
    for field, value in [("appendedEntries", 3), ("appendedBytes", blocks["appendedBytes"]),
                         ("bytes", blocks["bytes"]), ("allocatedBatches", 2)]:
        assert f'data-field="{field}" data-value="{value}"' in row, field
    pts = read_page(html).points
    assert pts["WAL blocks feed"] == [(1000, 1.0), (2000, 2.0), (3000, 0.0)]
    fams = scrape(ui_ssc.ui_url)
    assert fams[("runnel_wal_written_blocks_total", (("stream", "feed"),))] == 3
    assert fams[("runnel_wal_written_bytes_total", (("stream", "feed"),))] == blocks["appendedBytes"]
    assert fams[("runnel_wal_bytes", (("stream", "feed"),))] == blocks["bytes"]


def test_late_rows_per_operator(ui_ssc, recorder, api, tmp_path):
    import pandas as pd

    from runnel.frame import tumbling
    ui_ssc.checkpoint(str(tmp_path))
    clicks = ui_ssc.frame.queue([
        pd.DataFrame({"user": ["ann", "bob", "ann"], "ts": [1, 3, 12], "n": [1, 1, 1]}),
        pd.DataFrame({"user": ["ann", "bob", "cy"], "ts": [4, 31, 2], "n": [1, 1, 1]}),   # 4 and 2: behind 7
        pd.DataFrame({"user": ["bob"], "ts": [5], "n": [1]}),                             # behind 26
    ], schema={"user": "string", "ts": "int64", "n": "int64"})
    per_10s = clicks.with_watermark("ts", delay=5).groupby("user").event_window(tumbling(10), name="per10s") \
        .agg(clicks=("n", "sum"))
    per_10s.foreach_batch(lambda df, t: None)
    ui_ssc.start()
    ui_ssc.run_batches(3)
    infos = [recorder.completed[t] for t in sorted(recorder.completed)]
    late = [i.state_tables["per10s"]["late_rows"] for i in infos]
    assert late == [0, 2, 1]                                       # what the engine counted, batch by batch
    (op,) = [o for o in api("state") if o["operator"] == "per10s"]
    assert (op["lateRows"], op["totalLateRows"]) == (1, 3)
    assert [(b["batchId"], b["lateRows"]) for b in op["perBatch"]] == [(i.batch_time, n) for i, n in zip(infos, late)]
    html = page(ui_ssc.ui_url + "/")
    row = html.split('<table id="state">')[1].split("</table>")[0].split("<td>per10s</td>")[1].split("</tr>")[0]
    assert 'data-field="lateRows" data-value="1"' in row and 'data-field="totalLateRows" data-value="3"' in row
    assert read_page(html).points["Late rows per10s"] == [(i.batch_time, n) for i, n in zip(infos, late)]
    assert scrape(ui_ssc.ui_url)[("runnel_late_rows_total", (("operator", "per10s"),))] == 3
