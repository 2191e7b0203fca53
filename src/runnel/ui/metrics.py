"""Prometheus metrics of a streaming job, at the UI's ``/metrics`` (needs ``runnel[ui]``).

Written with ``prometheus_client`` (the Prometheus project's own client: its
text format, escaping and histogram conventions are the reference), in a
registry of this job's own, so several contexts in one process never share
or clash. Names follow Prometheus's rules: one prefix ``runnel_``, base
units (seconds, bytes), ``_total`` counters, labels only for names of
streams, operators and statuses (never record values).

============================================  =========  ===============================================
``runnel_batches_total{status}``               counter    completed batches, ``succeeded`` or ``failed``
``runnel_batches_active{status}``              gauge      batches ``queued`` and ``processing`` now
``runnel_batch_scheduling_delay_seconds``      histogram  submission to processing start
``runnel_batch_processing_seconds``            histogram  processing start to end
``runnel_batch_total_delay_seconds``           histogram  submission to processing end
``runnel_batch_interval_seconds``              gauge      the batch interval
``runnel_input_records_total{stream}``         counter    records each input stream brought
``runnel_state_rows{operator}``                gauge      rows of each stateful operator's table
``runnel_state_bytes{operator}``               gauge      bytes of each stateful operator's table
``runnel_late_rows_total{operator}``           counter    rows an event-time operator found behind its
                                                          watermark (its ``late_rows()`` stream)
``runnel_receivers{state}``                    gauge      receivers ``active`` and ``inactive``
``runnel_checkpoint_last_timestamp_seconds``   gauge      batch time of the newest checkpoint on disk
``runnel_checkpoint_size_bytes``               gauge      bytes of the newest checkpoint on disk
``runnel_checkpoint_write_seconds``            histogram  writing a checkpoint (writer thread, per commit)
``runnel_checkpoint_snapshot_seconds``         histogram  taking its snapshot (scheduler thread, between batches)
``runnel_executor_task_seconds_total``         counter    seconds the executor's slots spent running tasks
``runnel_executor_slots``                      gauge      the executor's threads or processes
``runnel_executor_busy_ratio``                 gauge      task seconds / (slots x wall seconds), last minute
``runnel_stages_total{kind}``                  counter    stages the batches ran, by where they ran
``runnel_tasks_total{kind}``                   counter    their tasks
``runnel_wal_bytes{stream}``                   gauge      a receiver's write-ahead log on disk (blocks)
``runnel_wal_written_bytes_total{stream}``     counter    bytes it appended to its block log
``runnel_wal_written_blocks_total{stream}``    counter    blocks it appended
============================================  =========  ===============================================

``rate(runnel_executor_task_seconds_total[5m]) / runnel_executor_slots`` is
the busy ratio over any window Prometheus keeps.
"""

from __future__ import annotations

from ..listener import StreamingListener
from .status import PROCESSING, QUEUED, StreamingStatus

try:
    from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
except ImportError:    # the runnel[ui] extra is not installed: no /metrics
    CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
    CollectorRegistry = None

#: delay buckets in seconds: a few ms (small local batches) to minutes (a job far behind)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, float("inf"))


def available() -> bool:
    """True when prometheus_client is installed."""
    return CollectorRegistry is not None


class JobMetrics(StreamingListener):
    """Counts and histograms updated per completed batch; gauges read from the status when scraped."""

    def __init__(self, status: StreamingStatus):
        if not available():
            raise ImportError("runnel's /metrics needs prometheus_client: pip install 'runnel[ui]'")
        self.status = status
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.batches = Counter("runnel_batches", "Completed batches by outcome", ["status"], registry=r)
        for s in ("succeeded", "failed"):
            self.batches.labels(s)
        self.scheduling = Histogram("runnel_batch_scheduling_delay_seconds",
                                    "Time a batch waited from submission to the start of its processing",
                                    buckets=BUCKETS, registry=r)
        self.processing = Histogram("runnel_batch_processing_seconds", "Time a batch took to process",
                                    buckets=BUCKETS, registry=r)
        self.total = Histogram("runnel_batch_total_delay_seconds",
                               "Time from a batch's submission to the end of its processing",
                               buckets=BUCKETS, registry=r)
        self.records = Counter("runnel_input_records", "Records each input stream brought", ["stream"],
                               registry=r)
        self.ckpt_write = Histogram("runnel_checkpoint_write_seconds",
                                    "Time the checkpoint writer took to write and commit a checkpoint",
                                    buckets=BUCKETS, registry=r)
        self.ckpt_snapshot = Histogram("runnel_checkpoint_snapshot_seconds",
                                       "Time a scheduler thread took to snapshot a checkpoint's tables",
                                       buckets=BUCKETS, registry=r)
        self.late = Counter("runnel_late_rows", "Rows an event-time operator found behind its watermark",
                            ["operator"], registry=r)
        self.stages = Counter("runnel_stages", "Stages the batches ran, by where they ran", ["kind"], registry=r)
        self.tasks = Counter("runnel_tasks", "Tasks of the stages the batches ran, by where they ran", ["kind"],
                             registry=r)
        r.register(_ScrapeTime(status))

    def onBatchCompleted(self, event) -> None:
        info = event.batch_info
        self.batches.labels("failed" if info.failed else "succeeded").inc()
        for hist, ms in ((self.scheduling, info.scheduling_delay), (self.processing, info.processing_delay),
                         (self.total, info.total_delay)):
            if ms is not None:
                hist.observe(ms / 1000.0)
        for name, n in info.stream_records.items():
            self.records.labels(name).inc(n)
        for name, report in info.state_tables.items():
            late = report.get("late_rows")
            if late is not None:
                self.late.labels(name).inc(late)
        act = self.status.activity(info.batch_time)
        if act is not None:
            for run in act.stages:
                self.stages.labels(run.kind).inc()
                self.tasks.labels(run.kind).inc(run.tasks)

    def onCheckpointWritten(self, event) -> None:
        info = event.checkpoint_info
        self.ckpt_write.observe(info.write_ms / 1000.0)
        if info.snapshot_ms is not None:
            self.ckpt_snapshot.observe(info.snapshot_ms / 1000.0)

    def render(self) -> bytes:
        """The Prometheus text exposition of this job's metrics."""
        return generate_latest(self.registry)


class _ScrapeTime:
    """Gauges read from the status when Prometheus scrapes."""

    def __init__(self, status: StreamingStatus):
        self.status = status

    def collect(self):
        st = self.status
        counts = st.counts()
        active = GaugeMetricFamily("runnel_batches_active", "Batches queued or processing now", labels=["status"])
        active.add_metric(["queued"], counts[QUEUED])
        active.add_metric(["processing"], counts[PROCESSING])
        yield active
        yield GaugeMetricFamily("runnel_batch_interval_seconds", "The batch interval",
                                value=st.facts.batch_ms / 1000.0)
        tables = st.state_tables()
        rows = GaugeMetricFamily("runnel_state_rows", "Rows of a stateful operator's table", labels=["operator"])
        size = GaugeMetricFamily("runnel_state_bytes", "Bytes of a stateful operator's table", labels=["operator"])
        for name, report in sorted(tables.items()):
            rows.add_metric([name], report.get("keys", 0))
            size.add_metric([name], report.get("bytes", 0))
        yield rows
        yield size
        recs = st.receivers()
        receivers = GaugeMetricFamily("runnel_receivers", "Receivers by state", labels=["state"])
        on = sum(1 for r in recs if r.info.active)
        receivers.add_metric(["active"], on)
        receivers.add_metric(["inactive"], len(recs) - on)
        yield receivers
        ckpts = st.checkpoints()
        if ckpts:
            yield GaugeMetricFamily("runnel_checkpoint_last_timestamp_seconds",
                                    "Batch time of the newest checkpoint on disk", value=ckpts[0]["time"] / 1000.0)
            yield GaugeMetricFamily("runnel_checkpoint_size_bytes", "Bytes of the newest checkpoint on disk",
                                    value=ckpts[0]["bytes"])
        act = st.facts.activity
        if act is not None:
            yield CounterMetricFamily("runnel_executor_task_seconds", "Seconds the executor's slots spent running "
                                      "tasks", value=act.busy)
            yield GaugeMetricFamily("runnel_executor_slots", "Threads or processes the executor runs tasks on",
                                    value=act.slots)
            window = st.busy_window()
            if window is not None:
                yield GaugeMetricFamily("runnel_executor_busy_ratio", "Task seconds over slots times wall seconds, "
                                        "over the last minute", value=window[0])
        logs = st.wal()
        if logs:
            disk = GaugeMetricFamily("runnel_wal_bytes", "Bytes of a receiver's write-ahead block log on disk",
                                     labels=["stream"])
            written = CounterMetricFamily("runnel_wal_written_bytes", "Bytes a receiver appended to its "
                                          "write-ahead block log", labels=["stream"])
            blocks = CounterMetricFamily("runnel_wal_written_blocks", "Blocks a receiver appended to its "
                                         "write-ahead block log", labels=["stream"])
            for w in logs:
                disk.add_metric([w["stream"]], w["blocks"]["bytes"])
                written.add_metric([w["stream"]], w["blocks"]["appended_bytes"])
                blocks.add_metric([w["stream"]], w["blocks"]["appended"])
            yield disk
            yield written
            yield blocks
