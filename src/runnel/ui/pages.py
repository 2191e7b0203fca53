"""The UI's HTML pages, rendered on the server (charts as SVG, see :mod:`.charts`).

Pages: the streaming overview (``/``), one batch (``/batch?id=<ms>``), the
DStream graph (``/graph``), the environment (``/environment``), and the notebook display
(:func:`notebook_html`). The live part of a page is a ``<div id="live">``;
``/static/live.js`` re-fetches it every 5 s (``?part=live``) and swaps it
in, so the page updates without reloading (without JavaScript a meta
refresh reloads it every 5 s). Table cells that show a batch's figures
carry ``data-field`` (Spark's REST field name) and ``data-value`` (the
exact number), so tests compare them with the listener's BatchInfo.
"""

from __future__ import annotations

import time
from datetime import datetime
from html import escape
from typing import Any

from ..graph import describe_nodes
from ..listener import BatchInfo
from . import charts, graphview
from .status import BUSY_WINDOW_S, COMPLETED, PROCESSING, QUEUED, StreamingStatus, redact

CHART_BATCHES = 120      # batches drawn in the timelines (the newest): keeps a live refresh cheap
TABLE_BATCHES = 100      # completed (and active) batches listed


def _when(ms: int | float | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000.0).strftime("%Y/%m/%d %H:%M:%S") + f".{int(ms) % 1000:03d}"


def _dur(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 or ms == int(ms) else f"{ms:.2g} ms"     # a stage may take 0.3 ms
    s = ms / 1000.0
    return f"{s:.1f} s" if s < 60 else (f"{s / 60:.1f} min" if s < 3600 else f"{s / 3600:.1f} h")


def _cell(field: str, value: Any, text: str | None = None) -> str:
    v = "" if value is None else value
    return f'<td data-field="{field}" data-value="{escape(str(v))}">{escape(text if text is not None else str(v))}</td>'


def _page(title: str, body: str, live: bool) -> str:
    refresh = '<noscript><meta http-equiv="refresh" content="5"></noscript>' if live else ""
    script = '<script src="/static/live.js" defer></script>' if live else ""
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title>{refresh}<link rel=\"stylesheet\" href=\"/static/style.css\">{script}"
            "</head><body><nav><b>runnel</b> <a href=\"/\">Streaming</a> <a href=\"/graph\">DStream Graph</a> "
            "<a href=\"/environment\">Environment</a> "
            "<a href=\"/metrics\">Metrics</a> <a href=\"/api/v1/applications\">REST</a></nav>"
            f"{body}</body></html>")


def not_found(message: str) -> str:
    return _page("Not found", f"<h1>Not found</h1><p>{escape(message)}</p>", live=False)


# -- the overview ------------------------------------------------------------------------------------
def overview(status: StreamingStatus, live_only: bool = False) -> str:
    """The streaming page; ``live_only`` gives just the part that live updates replace."""
    inner = _overview_live(status)
    if live_only:
        return inner
    return _page(f"{status.facts.app_name} - Streaming", f'<div id="live">{inner}</div>', live=True)


def _overview_live(status: StreamingStatus) -> str:
    f = status.facts
    totals = status.totals()
    up = status.uptime()
    head = (f"<h1>Streaming: {escape(f.app_name)}</h1>"
            f'<p class="summary">Running batches of <b data-field="batchDuration" data-value="{f.batch_ms}">'
            f"{_dur(f.batch_ms)}</b> for <b>{_dur(up * 1000) if up is not None else '-'}</b> since "
            f"<b>{_when(status.start_time)}</b> (master {escape(f.master)}{_dashboard(f)}); "
            f'<b data-field="numTotalCompletedBatches" data-value="{totals.completed}">{totals.completed}</b> '
            f'completed batches, <b data-field="numProcessedRecords" data-value="{totals.processed_records}">'
            f"{totals.processed_records:,}</b> records; {totals.failed} batches with a failed output.</p>")
    return (head + _busy(status) + _statistics(status) + _batch_tables(status) + _receivers(status)
            + _state(status) + _checkpoints(status) + _wal(status))


def _pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100 * ratio:.1f}%"


def _busy(status: StreamingStatus) -> str:
    act = status.facts.activity
    if act is None:
        return ""
    window = status.busy_window()
    span = f" over the last {_dur(1000 * min(window[1], BUSY_WINDOW_S))}" if window is not None else ""
    return (f'<p class="summary">Executor: <b data-field="slots" data-value="{act.slots}">{act.slots}</b> '
            f'slot{"s" if act.slots != 1 else ""}, busy <b data-field="busyRatio" '
            f'data-value="{"" if window is None else window[0]}">{_pct(window and window[0])}</b>{span} '
            f"(the share of the slots' time spent running tasks).</p>")


def _dashboard(f) -> str:
    """A link to the cluster's own dashboard (Dask's), when the executor has one."""
    if not f.dashboard:
        return ""
    return f', <a id="dashboard" href="{escape(f.dashboard, quote=True)}" target="_blank">cluster dashboard</a>'


def _statistics(status: StreamingStatus) -> str:
    done = status.completed()[-CHART_BATCHES:]
    batch_ms = status.facts.batch_ms
    rows = []
    rate = [(b.batch_time, b.num_records * 1000.0 / batch_ms) for b in done]
    series = [("Input Rate", "rec/s", rate, None),
              ("Scheduling Delay", "ms", [(b.batch_time, b.scheduling_delay) for b in done
                                          if b.scheduling_delay is not None], None),
              ("Processing Time", "ms", [(b.batch_time, b.processing_delay) for b in done
                                         if b.processing_delay is not None], batch_ms),
              ("Total Delay", "ms", [(b.batch_time, b.total_delay) for b in done if b.total_delay is not None], None)]
    for label, unit, pts, line in series:
        avg = sum(y for _, y in pts) / len(pts) if pts else None
        avg_text = "-" if avg is None else (f"{avg:,.1f} {unit}" if unit == "rec/s" else _dur(avg))
        rows.append(f"<tr><th>{label}<br><small>avg {avg_text}</small></th>"
                    f"<td>{charts.timeline(pts, unit, label, line, 'batch interval' if line else '')}</td>"
                    f"<td>{charts.histogram([y for _, y in pts], unit, label)}</td></tr>")
    act = [(b.batch_time, status.activity(b.batch_time)) for b in done] if status.facts.activity else []
    busy = [(t, round(100 * a.busy_ratio, 2)) for t, a in act if a is not None and a.busy_ratio is not None]
    if busy:
        avg = sum(y for _, y in busy) / len(busy)
        rows.append(f"<tr><th>Executor Busy<br><small>avg {avg:.1f}%</small></th>"
                    f"<td>{charts.timeline(busy, '%', 'Executor Busy')}</td>"
                    f"<td>{charts.histogram([y for _, y in busy], '%', 'Executor Busy')}</td></tr>")
    streams = sorted({name for b in done for name in b.stream_records})
    if len(streams) > 1:       # input rate per stream
        for name in streams:
            pts = [(b.batch_time, b.stream_records.get(name, 0) * 1000.0 / batch_ms) for b in done]
            rows.append(f"<tr><th>Input Rate<br><small>{escape(name)}</small></th>"
                        f"<td>{charts.timeline(pts, 'rec/s', f'Input Rate {name}')}</td><td></td></tr>")
    return (f"<h2>Statistics</h2><p class=\"note\">The last {len(done)} completed batches.</p>"
            f'<table class="stats">{"".join(rows)}</table>')


def _batch_row(state: str, b: BatchInfo) -> str:
    ops = list(b.output_operation_infos.values())
    failed = sum(1 for o in ops if o.failure_reason)
    ok = sum(1 for o in ops if o.end_time is not None and not o.failure_reason)
    return (f'<tr class="batch" data-batch="{b.batch_time}">'
            f'<td data-field="batchTime" data-value="{b.batch_time}"><a href="/batch?id={b.batch_time}">'
            f"{_when(b.batch_time)}</a></td>"
            + _cell("status", state)
            + _cell("inputSize", b.num_records, f"{b.num_records:,}")
            + _cell("schedulingDelay", b.scheduling_delay, _dur(b.scheduling_delay))
            + _cell("processingTime", b.processing_delay, _dur(b.processing_delay))
            + _cell("totalDelay", b.total_delay, _dur(b.total_delay))
            + _cell("numCompletedOutputOps", ok, f"{ok}/{len(ops)}" + (f" ({failed} failed)" if failed else ""))
            + "</tr>")


_BATCH_HEAD = ("<tr><th>Batch Time</th><th>Status</th><th>Records</th><th>Scheduling Delay</th>"
               "<th>Processing Time</th><th>Total Delay</th><th>Output Ops: Succeeded/Total</th></tr>")


def _batch_tables(status: StreamingStatus) -> str:
    batches = status.batches()
    active = [p for p in batches if p[0] in (QUEUED, PROCESSING)]
    done = [p for p in batches if p[0] == COMPLETED]
    rows_a = "".join(_batch_row(s, b) for s, b in active[:TABLE_BATCHES]) or '<tr><td colspan="7">none</td></tr>'
    rows_d = "".join(_batch_row(s, b) for s, b in done[:TABLE_BATCHES]) or '<tr><td colspan="7">none</td></tr>'
    return (f'<h2>Active Batches ({len(active)})</h2><table class="batches" id="active-batches">'
            f"{_BATCH_HEAD}{rows_a}</table>"
            f'<h2>Completed Batches (last {min(len(done), TABLE_BATCHES)} of {status.totals().completed})</h2>'
            f'<table class="batches" id="completed-batches">{_BATCH_HEAD}{rows_d}</table>')


def _receivers(status: StreamingStatus) -> str:
    recs = status.receivers()
    if not recs:
        return ""
    rows = "".join(
        f"<tr><td>{escape(r.info.name)}-{r.info.stream_id}</td>"
        f"<td>{'ACTIVE' if r.info.active else 'INACTIVE'}</td>"
        f"<td>{_when(r.last_error_time * 1000) if r.last_error_time else '-'}</td>"
        f"<td>{escape(r.info.last_error_message or '-')}"
        + (f"<details><summary>details</summary><pre>{escape(r.info.last_error)}</pre></details>"
           if r.info.last_error else "") + "</td></tr>" for r in recs)
    return (f'<h2>Receivers ({len(recs)})</h2><table id="receivers"><tr><th>Receiver</th><th>Status</th>'
            f"<th>Last Error Time</th><th>Last Error</th></tr>{rows}</table>")


def _state(status: StreamingStatus) -> str:
    tables = status.state_tables()
    if not tables:
        return ""
    done = status.completed()[-CHART_BATCHES:]
    charts_ = "".join(
        f"<tr><th>{escape(name)}</th>"
        f"<td>{charts.timeline(_series(done, name, 'keys'), 'rows', f'State rows {name}')}</td>"
        f"<td>{charts.timeline(_series(done, name, 'bytes'), 'B', f'State bytes {name}')}</td></tr>"
        for name in sorted(tables))
    late_total = status.totals().late_rows
    rows = "".join(f"<tr><td>{escape(name)}</td>" + _cell("rows", r.get("keys"), f"{r.get('keys', 0):,}")
                   + _cell("bytes", r.get("bytes"), f"{r.get('bytes', 0):,}")
                   + f"<td>{r.get('dead_letters', '-')}</td>"
                   + _cell("lateRows", r.get("late_rows"), "-" if r.get("late_rows") is None else f"{r['late_rows']:,}")
                   + _cell("totalLateRows", late_total.get(name),
                           "-" if name not in late_total else f"{late_total[name]:,}")
                   + "</tr>" for name, r in sorted(tables.items()))
    late = "".join(f"<tr><th>{escape(name)}</th><td>"
                   f"{charts.timeline(_series(done, name, 'late_rows'), 'rows', f'Late rows {name}')}</td></tr>"
                   for name in sorted(late_total))
    return (f'<h2>State ({len(tables)})</h2><table id="state"><tr><th>Operator</th><th>Rows</th><th>Bytes</th>'
            f"<th>Dead letters</th><th>Late Rows (last batch)</th><th>Late Rows (since start)</th></tr>{rows}</table>"
            f'<table class="stats" id="state-charts"><tr><th></th><th>Rows over time</th><th>Bytes over time</th>'
            f"</tr>{charts_}</table>"
            + (f'<h3>Late rows</h3><p class="note">Rows an event-time operator found behind its watermark, per '
               f"batch (they go to its <code>late_rows()</code> stream, never dropped silently).</p>"
               f'<table class="stats" id="late-charts">{late}</table>' if late else ""))


def _series(done: list[BatchInfo], name: str, what: str) -> list[tuple[int, float]]:
    return [(b.batch_time, b.state_tables[name].get(what, 0)) for b in done
            if name in b.state_tables and (what != "late_rows" or what in b.state_tables[name])]


def _checkpoints(status: StreamingStatus) -> str:
    d = status.facts.checkpoint_dir
    if d is None:
        return ""
    ck = status.checkpoints()
    rows = "".join(f"<tr><td>{_when(c['time'])}</td><td>{c['bytes']:,}</td>"
                   f"<td>{time.strftime('%H:%M:%S', time.localtime(c['written'])) if c['written'] else '-'}</td>"
                   f"</tr>" for c in ck) or '<tr><td colspan="3">none yet</td></tr>'
    infos = status.checkpoint_infos()
    written = "".join(
        f'<tr class="checkpoint" data-checkpoint="{c.batch_time}"><td>{_when(c.batch_time)}</td>'
        + _cell("snapshotTime", c.snapshot_ms, _dur(c.snapshot_ms)) + _cell("writeTime", c.write_ms, _dur(c.write_ms))
        + _cell("bytes", c.bytes, f"{c.bytes:,}") + "</tr>" for c in infos[:TABLE_BATCHES])
    chart = charts.timeline([(c.batch_time, round(c.write_ms, 3)) for c in reversed(infos[:CHART_BATCHES])], "ms",
                            "Checkpoint Write Time")
    return (f"<h2>Checkpoints</h2><p>In <code>{escape(d)}</code></p><table id=\"checkpoints\">"
            f"<tr><th>Batch Time</th><th>Bytes</th><th>Written</th></tr>{rows}</table>"
            + (f'<h3>Written since start ({len(infos)})</h3><p class="note">Snapshot: the scheduler thread computing '
               f"and holding the tables between batches; write: the writer thread writing and committing the "
               f'files while the next batches run.</p><table id="checkpoint-writes"><tr><th>Batch Time</th>'
               f"<th>Snapshot</th><th>Write</th><th>Bytes</th></tr>{written}</table>{chart}" if infos else ""))


def _wal(status: StreamingStatus) -> str:
    logs = status.wal()
    if not logs:
        return ""
    rows, charts_ = [], []
    for w in logs:
        b = w["blocks"]
        rows.append(f'<tr class="wal" data-stream="{escape(w["stream"])}"><td>{escape(w["stream"])}</td>'
                    + _cell("appendedEntries", b["appended"], f"{b['appended']:,}")
                    + _cell("appendedBytes", b["appended_bytes"], f"{b['appended_bytes']:,}")
                    + _cell("segments", b["segments"]) + _cell("bytes", b["bytes"], f"{b['bytes']:,}")
                    + f"<td>{b['first_seq']}..{b['last_seq']} (durable to {b['synced_seq']})</td>"
                    + _cell("allocatedBatches", len(w["allocated_batches"])) + "</tr>")
        pts = [(t, n) for t, n, _ in w["per_batch"]]
        sizes = [(t, nb) for t, _, nb in w["per_batch"]]
        charts_.append(f"<tr><th>{escape(w['stream'])}</th>"
                       f"<td>{charts.timeline(pts, 'blocks', 'WAL blocks ' + w['stream'])}</td>"
                       f"<td>{charts.timeline(sizes, 'B', 'WAL bytes ' + w['stream'])}</td></tr>")
    return (f'<h2>Write-Ahead Logs ({len(logs)})</h2><table id="wal"><tr><th>Receiver</th><th>Blocks Written</th>'
            f"<th>Bytes Written</th><th>Segments</th><th>Bytes on Disk</th><th>Entries Kept</th>"
            f"<th>Batches Allocated</th></tr>{''.join(rows)}</table>"
            f'<table class="stats" id="wal-charts"><tr><th></th><th>Blocks logged per batch</th>'
            f"<th>Bytes logged per batch</th></tr>{''.join(charts_)}</table>")


# -- one batch ------------------------------------------------------------------------------------
def batch_page(status: StreamingStatus, state: str, info: BatchInfo, live_only: bool = False) -> str:
    """One batch: its figures and its output operations, with durations and failures."""
    ops = sorted(info.output_operation_infos.items())
    rows = []
    for _, o in ops:
        st = "failed" if o.failure_reason else ("succeeded" if o.end_time is not None else
                                                 ("running" if o.start_time is not None else "queued"))
        rows.append(f'<tr class="op" data-op="{int(o.id)}">' + _cell("outputOpId", int(o.id))
                    + f"<td>{escape(str(o.name))}</td><td><code>{escape(str(o.description))}</code></td>"
                    + _cell("startTime", o.start_time, _when(o.start_time))
                    + _cell("duration", o.duration, _dur(o.duration))
                    + f"<td>{st}</td><td>"
                    + (f"<pre class=\"failure\">{escape(o.failure_reason)}</pre>" if o.failure_reason else "")
                    + "</td></tr>")
    inner = (f"<h1>Batch {_when(info.batch_time)}</h1>"
             f'<table class="batches" id="batch">{_BATCH_HEAD}{_batch_row(state, info)}</table>'
             f"<h2>Output Operations ({len(ops)})</h2><table id=\"operations\"><tr><th>Id</th><th>Name</th>"
             f"<th>Description</th><th>Started</th><th>Duration</th><th>Status</th><th>Failure</th></tr>"
             f"{''.join(rows)}</table>" + _stages(status, info.batch_time))
    if live_only:
        return inner
    return _page(f"Batch {info.batch_time}", f'<div id="live">{inner}</div>', live=state != COMPLETED)


def _stages(status: StreamingStatus, t: int) -> str:
    act = status.activity(t)
    if act is None:
        return ""
    rows = "".join(f'<tr class="stage" data-stage="{i}">' + _cell("stageId", r.stage)
                   + f"<td class=\"label\">{escape(r.label)}</td>" + _cell("kind", r.kind)
                   + _cell("numTasks", r.tasks) + _cell("duration", round(r.seconds * 1000, 3), _dur(r.seconds * 1000))
                   + _cell("taskTime", round(r.busy * 1000, 3), _dur(r.busy * 1000))
                   + f"<td>{'failed' if r.failed else 'succeeded'}</td>"
                   + _cell("reads", ",".join(map(str, r.reads)), ", ".join(f"stage {x}" for x in r.reads) or "-")
                   + "</tr>" for i, r in enumerate(act.stages)) \
        or '<tr><td colspan="8">none</td></tr>'
    ckpt = next((c for c in status.checkpoint_infos() if c.batch_time == t), None)
    note = "" if ckpt is None else (
        f'<p id="batch-checkpoint">Checkpoint of this batch: snapshot <b data-field="snapshotTime" '
        f'data-value="{ckpt.snapshot_ms}">{_dur(ckpt.snapshot_ms)}</b>, written in <b data-field="writeTime" '
        f'data-value="{ckpt.write_ms}">{_dur(ckpt.write_ms)}</b>, {ckpt.bytes:,} bytes.</p>')
    return (f'<h2>Executor</h2><p id="batch-executor">Wall time <b data-field="wallTime" data-value="'
            f'{round(act.wall * 1000, 3)}">{_dur(act.wall * 1000)}</b>, tasks <b data-field="taskTime" '
            f'data-value="{round(act.busy * 1000, 3)}">{_dur(act.busy * 1000)}</b> on {act.slots} '
            f'slot{"s" if act.slots != 1 else ""}: busy <b data-field="busyRatio" data-value="'
            f'{"" if act.busy_ratio is None else act.busy_ratio}">{_pct(act.busy_ratio)}</b>.</p>{note}'
            f"<h2>Stages and Tasks ({len(act.stages)} stages, {sum(r.tasks for r in act.stages)} tasks)</h2>"
            f'<p class="note">Where a stage ran: serial (local), inline (small input, in the calling thread), '
            f"threads or processes (local[N]).</p>"
            f'<table id="stages"><tr><th>Stage</th><th class="label">Name</th><th>Ran On</th><th>Tasks</th>'
            f"<th>Duration</th>"
            f"<th>Task Time</th><th>Status</th><th>Reads</th></tr>{rows}</table>")


# -- the DStream graph ----------------------------------------------------------------------------
def graph_page(status: StreamingStatus) -> str:
    """The DStream graph: drawn (SVG) and as text."""
    nodes = list(status.facts.graph)
    return _page("DStream Graph", f"<h1>DStream Graph ({len(nodes)} streams)</h1>"
                 f'<p class="note">Inputs at the top; each stream one row below its deepest parent. '
                 f"Green: inputs, blue: stateful streams (state or window tables, checkpointed by name), "
                 f"grey: outputs.</p>{graphview.dag(nodes)}"
                 f'<h2>As text</h2><pre id="graph-text">{escape(describe_nodes(nodes))}</pre>', live=False)


# -- environment ---------------------------------------------------------------------------------
def environment(status: StreamingStatus) -> str:
    """The job's settings; values of keys named like password/secret/token/key are redacted."""
    f = status.facts
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in redact(f.conf).items())
    return _page("Environment", f"<h1>Environment</h1><table id=\"conf\"><tr><th>Application</th>"
                 f"<td>{escape(f.app_name)}</td></tr><tr><th>Master</th><td>{escape(f.master)}{_dashboard(f)}</td></tr>"
                 f"<tr><th>Batch interval</th><td>{f.batch_ms} ms</td></tr></table><h2>Conf</h2>"
                 f"<table id=\"conf-values\"><tr><th>Key</th><th>Value</th></tr>{rows}</table>", live=False)


# -- notebooks --------------------------------------------------------------------------------------
def notebook_html(state: str, app_name: str, batch_ms: int, status: StreamingStatus | None,
                  url: str | None) -> str:
    """A small status table for Jupyter (``StreamingContext._repr_html_``)."""
    rows = [("State", state), ("Application", app_name), ("Batch interval", _dur(batch_ms))]
    if status is not None:
        totals, counts, done = status.totals(), status.counts(), status.completed()
        last = done[-1] if done else None
        rows += [("Completed batches", f"{totals.completed:,}"), ("Records processed", f"{totals.processed_records:,}"),
                 ("Queued / processing", f"{counts[QUEUED]} / {counts[PROCESSING]}"),
                 ("Last batch", _when(last.batch_time) if last else "-"),
                 ("Last scheduling delay", _dur(last.scheduling_delay) if last else "-"),
                 ("Last processing time", _dur(last.processing_delay) if last else "-"),
                 ("Failed batches", str(totals.failed))]
    link = f'<a href="{escape(url)}" target="_blank">{escape(url)}</a>' if url else "not served"
    rows.append(("Web UI", None))
    body = "".join(f"<tr><th style=\"text-align:left\">{escape(k)}</th><td style=\"text-align:left\">"
                   f"{link if v is None else escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="runnel-status"><caption>runnel StreamingContext</caption>{body}</table>'
