"""Spark's streaming REST API (``/api/v1``), with Spark's paths and field names.

Tools written for Spark's ``/api/v1/applications/{app}/streaming/...``
endpoints read these unchanged. As in Spark: times are dates like
``2026-12-03T13:49:41.123GMT``, durations and delays milliseconds, a batch's
id is its time in ms, unknown optional fields are left out, and batches are
listed newest first. ``inputSize`` is runnel's record count of the batch
(every input's records, :attr:`BatchInfo.num_records`).

runnel's own endpoints sit beside Spark's under ``.../streaming/`` (Spark
has no such data; the Spark objects above stay exactly Spark's), with the
same conventions (camelCase, milliseconds, dates as above):

``batches/{id}/stages``  the stages the batch ran: ``stageId``, ``name``, ``kind`` (where it ran:
                         serial, inline, threads, processes), ``numTasks``, ``duration``,
                         ``taskTime`` (task-ms of its tasks), ``failed``, ``reads`` (ids of
                         the stages whose outputs it read, as ``describe_stages()`` shows)
``executor``             ``slots``, ``taskTime`` (task-ms since the executor started: a Context
                         may run several jobs), ``busyRatio`` over the
                         last ``busyRatioWindow`` ms, and per retained batch ``batchId``,
                         ``wallTime``, ``taskTime``, ``busyRatio``, ``numStages``, ``numTasks``
``checkpoints``          each checkpoint committed: ``batchId``, ``batchTime``, ``snapshotTime``,
                         ``writeTime``, ``bytes``, ``path``; newest first
``graph``                the DStream graph: ``nodes`` (``name``, ``kind``, ``parents``,
                         ``slideDuration``, ``windowDuration``, ``inputStreamId``,
                         ``outputOpId``, ``stateful``), ``edges`` ([parent, child]), ``text``
``state``                per stateful operator: its table's ``rows`` and ``bytes`` now,
                         ``deadLetters``, ``lateRows`` (event-time operators: rows behind the
                         watermark in the last batch) and ``totalLateRows`` since start, and
                         ``perBatch``: ``batchId``, ``rows``, ``bytes``, ``lateRows``
``wal``                  per receiver with a write-ahead log: its block and allocation logs
                         (``segments``, ``bytes``, ``firstEntry``, ``lastEntry``,
                         ``syncedEntry``, ``appendedEntries``, ``appendedBytes``) and
                         ``perBatch``: blocks and bytes logged since the batch before

:func:`route` maps a path and query to ``(HTTP status, JSON-able value)``;
the server only serialises it.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from ..graph import describe_nodes
from ..listener import BatchInfo, CheckpointInfo, OutputOperationInfo
from .status import BUSY_WINDOW_S, COMPLETED, PROCESSING, QUEUED, StreamingStatus

PREFIX = "/api/v1/applications"
STATUSES = (QUEUED, PROCESSING, COMPLETED)


def spark_date(ms: int | float | None) -> str | None:
    """A time in ms as Spark's REST API writes dates (UTC, millisecond precision, ``GMT`` suffix)."""
    if ms is None:
        return None
    d = datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}GMT"


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def app_id(status: StreamingStatus) -> str:
    """The application's id, Spark's local-mode style: ``local-<start ms>``."""
    start = status.start_wall
    return f"local-{int(start * 1000) if start is not None else 0}"


def application(status: StreamingStatus) -> dict:
    """``/applications`` entry (Spark's ApplicationInfo with one running attempt)."""
    start = int((status.start_wall or time.time()) * 1000)
    now = int(time.time() * 1000)
    from .._version import __version__
    return {"id": app_id(status), "name": status.facts.app_name, "attempts": [{
        "startTime": spark_date(start), "endTime": spark_date(-1), "lastUpdated": spark_date(now),
        "duration": now - start, "sparkUser": _user(), "completed": False,
        "appSparkVersion": f"runnel {__version__}",
        "startTimeEpoch": start, "endTimeEpoch": -1, "lastUpdatedEpoch": now}]}


def _user() -> str:
    import getpass
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 — no user name in this environment
        return ""


def _avg(values: list[int]) -> int | None:
    return sum(values) // len(values) if values else None


def statistics(status: StreamingStatus) -> dict:
    """``/streaming/statistics``: Spark's StreamingStatistics over the retained completed batches."""
    done = status.completed()
    totals = status.totals()
    counts = status.counts()
    receivers = status.receivers()
    active = sum(1 for r in receivers if r.info.active)
    batch_ms = status.facts.batch_ms
    return _drop_none({
        "startTime": spark_date(status.start_time),
        "batchDuration": batch_ms,
        "numReceivers": len(receivers),
        "numActiveReceivers": active,
        "numInactiveReceivers": len(receivers) - active,
        "numTotalCompletedBatches": totals.completed,
        "numRetainedCompletedBatches": len(done),
        "numActiveBatches": counts[QUEUED] + counts[PROCESSING],
        "numProcessedRecords": totals.processed_records,
        "numReceivedRecords": totals.received_records,
        "avgInputRate": (sum(b.num_records for b in done) * 1000.0 / (len(done) * batch_ms)) if done else None,
        "avgSchedulingDelay": _avg([b.scheduling_delay for b in done if b.scheduling_delay is not None]),
        "avgProcessingTime": _avg([b.processing_delay for b in done if b.processing_delay is not None]),
        "avgTotalDelay": _avg([b.total_delay for b in done if b.total_delay is not None]),
    })


def batch(state: str, info: BatchInfo, batch_ms: int) -> dict:
    """One batch as Spark's streaming BatchInfo."""
    ops = list(info.output_operation_infos.values())
    failed = [o for o in ops if o.failure_reason]
    done = [o for o in ops if o.end_time is not None and not o.failure_reason]
    return _drop_none({
        "batchId": info.batch_time,
        "batchTime": spark_date(info.batch_time),
        "status": state,
        "batchDuration": batch_ms,
        "inputSize": info.num_records,
        "schedulingDelay": info.scheduling_delay,
        "processingTime": info.processing_delay,
        "totalDelay": info.total_delay,
        "numActiveOutputOps": sum(1 for o in ops if o.start_time is not None and o.end_time is None),
        "numCompletedOutputOps": len(done),
        "numFailedOutputOps": len(failed),
        "numTotalOutputOps": len(ops),
        "firstFailureReason": failed[0].failure_reason if failed else None,
    })


def operation(op: OutputOperationInfo) -> dict:
    """One output operation as Spark's OutputOperationInfo (runnel runs no Spark jobs: ``jobIds`` is empty)."""
    return _drop_none({
        "outputOpId": int(op.id),
        "name": str(op.name),
        "description": str(op.description),
        "startTime": spark_date(op.start_time),
        "endTime": spark_date(op.end_time),
        "duration": op.duration,
        "failureReason": op.failure_reason,
        "jobIds": [],
    })


def receivers(status: StreamingStatus) -> list[dict]:
    """Spark's ReceiverInfo per receiver; event rates are records/s of each retained batch."""
    done = status.completed()
    batch_ms = status.facts.batch_ms
    out = []
    for r in status.receivers():
        sid = r.info.stream_id
        rates = [[b.batch_time, b.stream_input_infos[sid].num_records * 1000.0 / batch_ms]
                 for b in done if sid in b.stream_input_infos]
        out.append(_drop_none({
            "streamId": sid,
            "streamName": f"{r.info.name}-{sid}",
            "isActive": r.info.active,
            "executorId": "driver",
            "executorHost": "localhost",
            "lastErrorTime": spark_date(r.last_error_time * 1000) if r.last_error_time is not None else None,
            "lastErrorMessage": r.info.last_error_message,
            "lastError": r.info.last_error,
            "avgEventRate": sum(x for _, x in rates) / len(rates) if rates else None,
            "eventRates": rates,
        }))
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def stages(status: StreamingStatus, batch_time: int) -> list[dict]:
    """``batches/{id}/stages``: the stages a completed batch ran (empty without a web UI's activity)."""
    act = status.activity(batch_time)
    return [{"stageId": r.stage, "name": r.label, "kind": r.kind, "numTasks": r.tasks,
             "duration": _ms(r.seconds), "taskTime": _ms(r.busy), "failed": r.failed, "reads": list(r.reads)}
            for r in (act.stages if act is not None else ())]


def executor(status: StreamingStatus) -> dict:
    """``executor``: the executor's slots, task time and busy ratio, overall and per retained batch."""
    act = status.facts.activity
    window = status.busy_window()
    per = []
    for b in status.completed():
        a = status.activity(b.batch_time)
        if a is not None:
            per.append(_drop_none({"batchId": b.batch_time, "wallTime": _ms(a.wall), "taskTime": _ms(a.busy),
                                   "busyRatio": a.busy_ratio, "numStages": len(a.stages),
                                   "numTasks": sum(r.tasks for r in a.stages)}))
    return _drop_none({
        "slots": act.slots if act is not None else None,
        "taskTime": _ms(act.busy) if act is not None else None,
        "busyRatio": window[0] if window is not None else None,
        "busyRatioWindow": _ms(min(window[1], BUSY_WINDOW_S)) if window is not None else None,
        "batches": per,
    })


def checkpoint(info: CheckpointInfo) -> dict:
    """One committed checkpoint (``onCheckpointWritten``)."""
    return _drop_none({"batchId": info.batch_time, "batchTime": spark_date(info.batch_time),
                       "snapshotTime": info.snapshot_ms, "writeTime": info.write_ms, "bytes": info.bytes,
                       "path": info.path})


def graph(status: StreamingStatus) -> dict:
    """``graph``: the DStream graph's nodes and edges, and its text form."""
    nodes = status.facts.graph
    return {"nodes": [_drop_none({"name": n.name, "kind": n.kind, "parents": list(n.parents),
                                  "slideDuration": n.slide_ms, "windowDuration": n.window_ms,
                                  "inputStreamId": n.input_id, "outputOpId": n.output_id, "stateful": n.stateful})
                      for n in nodes],
            "edges": [[p, n.name] for n in nodes for p in n.parents],
            "text": describe_nodes(list(nodes))}


def _log(st: dict) -> dict:
    return {"directory": st["directory"], "segments": st["segments"], "bytes": st["bytes"],
            "firstEntry": st["first_seq"], "lastEntry": st["last_seq"], "syncedEntry": st["synced_seq"],
            "appendedEntries": st["appended"], "appendedBytes": st["appended_bytes"]}


def wal(status: StreamingStatus) -> list[dict]:
    """``wal``: each receiver's write-ahead log."""
    return [{"streamId": w["stream_id"], "streamName": w["stream"], "blocks": _log(w["blocks"]),
             "batches": _log(w["batches"]), "allocatedBatches": w["allocated_batches"],
             "perBatch": [{"batchId": t, "blocks": n, "bytes": b} for t, n, b in w["per_batch"]]}
            for w in status.wal()]


def state(status: StreamingStatus) -> list[dict]:
    """``state``: every stateful operator's table, late rows included, now and per retained batch."""
    tables, totals, done = status.state_tables(), status.totals(), status.completed()
    out = []
    for name, r in sorted(tables.items()):
        per = [_drop_none({"batchId": b.batch_time, "rows": b.state_tables[name].get("keys"),
                           "bytes": b.state_tables[name].get("bytes"),
                           "lateRows": b.state_tables[name].get("late_rows")})
               for b in done if name in b.state_tables]
        out.append(_drop_none({"operator": name, "rows": r.get("keys"), "bytes": r.get("bytes"),
                               "deadLetters": r.get("dead_letters"), "lateRows": r.get("late_rows"),
                               "totalLateRows": totals.late_rows.get(name), "perBatch": per}))
    return out


_RUNNEL = {"executor": executor, "graph": graph, "wal": wal, "state": state,
           "checkpoints": lambda status: [checkpoint(c) for c in status.checkpoint_infos()]}


def _not_found(what: str) -> tuple[int, dict]:
    return 404, {"error": what}


def route(status: StreamingStatus, path: str, query: str = "") -> tuple[int, Any]:
    """The REST answer for ``path`` (under ``/api/v1``): ``(HTTP status, JSON-able value)``."""
    parts = [p for p in path.split("/") if p]
    if parts[:3] != ["api", "v1", "applications"]:
        return _not_found(f"no such endpoint: {path}")
    rest = parts[3:]
    if not rest:
        return 200, [application(status)]
    if rest[0] != app_id(status):
        return _not_found(f"unknown app: {rest[0]} (this UI serves {app_id(status)})")
    rest = rest[1:]
    if not rest:
        return 200, application(status)
    if rest[0] != "streaming" or len(rest) < 2:
        return _not_found(f"no such endpoint: {path} (runnel serves the streaming endpoints)")
    what, args = rest[1], rest[2:]
    if what == "statistics" and not args:
        return 200, statistics(status)
    if what == "receivers":
        recs = receivers(status)
        if not args:
            return 200, recs
        if len(args) == 1:
            found = [r for r in recs if str(r["streamId"]) == args[0]]
            return (200, found[0]) if found else _not_found(f"unknown receiver: {args[0]}")
    if what == "batches":
        return _batches(status, args, parse_qs(query))
    if what in _RUNNEL and not args:
        return 200, _RUNNEL[what](status)
    return _not_found(f"no such endpoint: {path}")


def _batches(status: StreamingStatus, args: list[str], query: dict) -> tuple[int, Any]:
    batch_ms = status.facts.batch_ms
    if not args:
        wanted = [s.upper() for v in query.get("status", []) for s in v.split(",") if s]
        bad = [s for s in wanted if s not in STATUSES]
        if bad:
            return 400, {"error": f"unknown batch status {', '.join(bad)}; use one of {', '.join(STATUSES)}"}
        return 200, [batch(s, b, batch_ms) for s, b in status.batches() if not wanted or s in wanted]
    try:
        t = int(args[0])
    except ValueError:
        return _not_found(f"batch id must be a number (its time in ms), got {args[0]!r}")
    found = status.batch(t)
    if found is None:
        return _not_found(f"unknown batch: {t}")
    state, info = found
    if len(args) == 1:
        return 200, batch(state, info, batch_ms)
    if args[1:] == ["stages"]:
        return 200, stages(status, t)
    if args[1] != "operations" or len(args) > 3:
        return _not_found(f"no such endpoint under batch {t}: {'/'.join(args[1:])}")
    ops = [operation(o) for _, o in sorted(info.output_operation_infos.items())]
    if len(args) == 2:
        return 200, ops
    found_op = [o for o in ops if str(o["outputOpId"]) == args[2]]
    return (200, found_op[0]) if found_op else _not_found(f"unknown output operation {args[2]} of batch {t}")
