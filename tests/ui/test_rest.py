"""Spark's streaming REST API: paths, field names and values against the listener's BatchInfo."""

from __future__ import annotations

import json
import threading

import pytest

from runnel.dstream.receivers import Receiver
from runnel.listener import StreamingListener
from runnel.ui.rest import spark_date

from ui_http import fetch, get_json

# Spark's field names (org.apache.spark.status.api.v1.streaming); optional ones appear only when known
STATISTICS = {"startTime", "batchDuration", "numReceivers", "numActiveReceivers", "numInactiveReceivers",
              "numTotalCompletedBatches", "numRetainedCompletedBatches", "numActiveBatches",
              "numProcessedRecords", "numReceivedRecords", "avgInputRate", "avgSchedulingDelay",
              "avgProcessingTime", "avgTotalDelay"}
BATCH = {"batchId", "batchTime", "status", "batchDuration", "inputSize", "schedulingDelay", "processingTime",
         "totalDelay", "numActiveOutputOps", "numCompletedOutputOps", "numFailedOutputOps", "numTotalOutputOps",
         "firstFailureReason"}
BATCH_REQUIRED = BATCH - {"schedulingDelay", "processingTime", "totalDelay", "firstFailureReason"}
OPERATION = {"outputOpId", "name", "description", "startTime", "endTime", "duration", "failureReason", "jobIds"}
RECEIVER = {"streamId", "streamName", "isActive", "executorId", "executorHost", "lastErrorTime",
            "lastErrorMessage", "lastError", "avgEventRate", "eventRates"}


def test_spark_dates():
    assert spark_date(0) == "1970-01-01T00:00:00.000GMT"
    assert spark_date(1_700_000_000_123) == "2023-11-14T22:13:20.123GMT"
    assert spark_date(None) is None


def test_applications_lists_this_job(ui_ssc):
    ui_ssc.queue_stream([[1]]).foreach_rdd(lambda ds: None)
    ui_ssc.start()
    apps = get_json(ui_ssc.ui_url + "/api/v1/applications")
    assert len(apps) == 1 and apps[0]["name"] == "runnel" and apps[0]["id"].startswith("local-")
    attempt = apps[0]["attempts"][0]
    assert attempt["completed"] is False and attempt["endTimeEpoch"] == -1
    assert get_json(f"{ui_ssc.ui_url}/api/v1/applications/{apps[0]['id']}")["id"] == apps[0]["id"]
    code, _, body = fetch(ui_ssc.ui_url + "/api/v1/applications/app-nope/streaming/statistics")
    assert code == 404 and b"unknown app" in body


def test_statistics_and_batches_equal_the_listener(ui_ssc, recorder, api):
    ui_ssc.rate_stream("pairs", records_per_batch=250).foreach_rdd(lambda ds: ds.count())
    ui_ssc.queue_stream([[1, 2, 3], [4]]).foreach_rdd(lambda ds: ds.count())
    ui_ssc.start()
    ui_ssc.run_batches(4)
    infos = [recorder.completed[t] for t in sorted(recorder.completed)]
    assert len(infos) == 4

    stats = api("statistics")
    assert STATISTICS - {"avgInputRate", "avgSchedulingDelay", "avgProcessingTime", "avgTotalDelay"} <= set(stats)
    assert set(stats) <= STATISTICS
    records = sum(i.num_records for i in infos)
    assert records == 4 * 250 + 4
    assert stats["batchDuration"] == 1000
    assert stats["numTotalCompletedBatches"] == stats["numRetainedCompletedBatches"] == 4
    assert stats["numActiveBatches"] == 0
    assert stats["numProcessedRecords"] == stats["numReceivedRecords"] == records
    assert stats["avgInputRate"] == pytest.approx(records / 4)      # records per second of 1 s batches
    assert stats["avgProcessingTime"] == sum(i.processing_delay for i in infos) // 4
    assert stats["avgSchedulingDelay"] == sum(i.scheduling_delay for i in infos) // 4
    assert stats["avgTotalDelay"] == sum(i.total_delay for i in infos) // 4
    assert stats["numReceivers"] == 0

    batches = api("batches")
    assert [b["batchId"] for b in batches] == [i.batch_time for i in reversed(infos)]   # newest first
    for b, info in zip(batches, reversed(infos)):
        assert BATCH_REQUIRED <= set(b) <= BATCH
        assert b["batchTime"] == spark_date(info.batch_time)
        assert (b["status"], b["batchDuration"], b["inputSize"]) == ("COMPLETED", 1000, info.num_records)
        assert (b["schedulingDelay"], b["processingTime"], b["totalDelay"]) == (
            info.scheduling_delay, info.processing_delay, info.total_delay)
        assert (b["numTotalOutputOps"], b["numCompletedOutputOps"], b["numFailedOutputOps"],
                b["numActiveOutputOps"]) == (2, 2, 0, 0)
        assert api(f"batches/{b['batchId']}") == b
    assert api("batches?status=COMPLETED") == batches
    assert api("batches?status=QUEUED") == [] and api("batches?status=PROCESSING") == []

    t = infos[0].batch_time
    ops = api(f"batches/{t}/operations")
    assert [o["outputOpId"] for o in ops] == sorted(infos[0].output_operation_infos)
    for o in ops:
        assert set(o) <= OPERATION and {"outputOpId", "name", "description", "jobIds"} <= set(o)
        op = infos[0].output_operation_infos[o["outputOpId"]]
        assert (o["name"], o["description"]) == (op.name, op.description) == ("foreachRDD", op.description)
        assert (o["startTime"], o["endTime"], o["duration"]) == (
            spark_date(op.start_time), spark_date(op.end_time), op.duration)
        assert "failureReason" not in o
        assert api(f"batches/{t}/operations/{o['outputOpId']}") == o


def test_failed_output_operation(ui_ssc, recorder, api):
    def boom(ds):
        raise ValueError("bad record <script>")
    ui_ssc.queue_stream([[1]]).foreach_rdd(boom)
    ui_ssc.start()
    with pytest.raises(ValueError, match="bad record <script>"):
        ui_ssc.run_batches(1)
    (info,) = recorder.completed.values()
    (b,) = api("batches")
    assert (b["numFailedOutputOps"], b["numCompletedOutputOps"], b["numTotalOutputOps"]) == (1, 0, 1)
    reason = info.output_operation_infos[0].failure_reason
    assert "ValueError: bad record <script>" in reason
    assert b["firstFailureReason"] == reason
    assert api(f"batches/{b['batchId']}/operations/0")["failureReason"] == reason
    with pytest.raises(ValueError):
        ui_ssc.await_termination_or_timeout(0)


def test_queued_and_processing_batches(ui_ssc, api):
    release, running, submitted = threading.Event(), threading.Event(), threading.Event()

    class Submitted(StreamingListener):
        def onBatchSubmitted(self, event):
            if event.batch_info.batch_time == 2000:
                submitted.set()

    def slow(ds):
        running.set()
        assert release.wait(30)
    ui_ssc.queue_stream([[1], [2]]).foreach_rdd(slow)
    ui_ssc.start()
    ui_ssc.add_streaming_listener(Submitted())     # after the UI's status (registered at start): sees it after
    try:
        ui_ssc.clock.advance(1000)
        assert running.wait(30)
        ui_ssc.clock.advance(1000)
        assert submitted.wait(30)
        (q,) = api("batches?status=QUEUED")
        (p,) = api("batches?status=PROCESSING")
        assert (p["batchId"], q["batchId"]) == (1000, 2000)
        assert p["numActiveOutputOps"] == 1 and "processingTime" not in p and "schedulingDelay" in p
        assert q["numActiveOutputOps"] == 0 and "schedulingDelay" not in q
        assert api("statistics")["numActiveBatches"] == 2
        assert [b["status"] for b in api("batches")] == ["QUEUED", "PROCESSING"]
        assert api("batches?status=queued,processing") == api("batches")
        code, _, body = fetch(ui_ssc.ui_url + "/api/v1/applications/"
                              + get_json(ui_ssc.ui_url + "/api/v1/applications")[0]["id"]
                              + "/streaming/batches?status=DONE")
        assert code == 400 and b"DONE" in body
    finally:
        release.set()


class _Flaky(Receiver):
    def __init__(self, ready):
        super().__init__()
        self.ready = ready

    def on_start(self):
        self.store_many(["a", "b", "c"])
        self.report_error("lost the feed", ConnectionError("reset by peer"))
        self.ready.set()

    def on_stop(self):
        pass


def test_receivers(ui_ssc, recorder, api):
    ready = threading.Event()
    ui_ssc.receiver_stream(_Flaky(ready)).foreach_rdd(lambda ds: ds.count())
    ui_ssc.start()
    assert ready.wait(30)
    ui_ssc.run_batches(2)
    (r,) = api("receivers")
    assert set(r) <= RECEIVER and {"streamId", "streamName", "isActive", "eventRates"} <= set(r)
    assert (r["streamId"], r["streamName"], r["isActive"]) == (0, "_Flaky-0", True)
    assert r["lastErrorMessage"] == "lost the feed" and "ConnectionError" in r["lastError"]
    assert r["lastErrorTime"].endswith("GMT")
    infos = [recorder.completed[t] for t in sorted(recorder.completed)]
    assert r["eventRates"] == [[i.batch_time, i.stream_input_infos[0].num_records * 1.0] for i in infos]
    assert sum(n for _, n in r["eventRates"]) == 3
    assert r["avgEventRate"] == pytest.approx(1.5)
    assert api("receivers/0") == r
    _, _, page = fetch(ui_ssc.ui_url + "/")
    row = page.decode().split('<table id="receivers">')[1].split("</table>")[0]
    assert "<td>_Flaky-0</td><td>ACTIVE</td>" in row and "lost the feed" in row and "ConnectionError" in row
    stats = api("statistics")
    assert (stats["numReceivers"], stats["numActiveReceivers"], stats["numInactiveReceivers"]) == (1, 1, 0)
    code, _, _ = fetch(ui_ssc.ui_url + "/api/v1/applications/"
                       + get_json(ui_ssc.ui_url + "/api/v1/applications")[0]["id"] + "/streaming/receivers/7")
    assert code == 404


def test_unknown_batch_and_operation_are_404(ui_ssc, api):
    ui_ssc.queue_stream([[1]]).foreach_rdd(lambda ds: None)
    ui_ssc.start()
    ui_ssc.run_batches(1)
    base = ui_ssc.ui_url + "/api/v1/applications/" + get_json(ui_ssc.ui_url + "/api/v1/applications")[0]["id"]
    for path, words in [("/streaming/batches/5", b"unknown batch"), ("/streaming/batches/1000/operations/9",
                                                                   b"unknown output operation"),
                        ("/streaming/batches/x", b"must be a number"), ("/streaming/nope", b"no such endpoint")]:
        code, headers, body = fetch(base + path)
        assert code == 404 and words in body, (path, body)
        assert headers["Content-Type"] == "application/json" and "error" in json.loads(body)
