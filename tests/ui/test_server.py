"""The UI server: read-only, loopback by default, ports, conf switches, secrets redacted."""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request

import pytest
from ui_http import fetch

from runnel import ManualClock, StreamingContext
from runnel.ui import redact
from runnel.ui.server import UIServer, is_loopback
from runnel.ui.status import JobFacts, StreamingStatus


def _status(**conf) -> StreamingStatus:
    return StreamingStatus(JobFacts("app", "local", 1000, conf))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_only_get_and_head(ui_ssc, method):
    ui_ssc.queue_stream([[1]]).foreach_rdd(lambda ds: None)
    ui_ssc.start()
    for path in ("/", "/api/v1/applications", "/metrics"):
        code, headers, _ = fetch(ui_ssc.ui_url + path, method)
        assert code == 405 and headers["Allow"] == "GET, HEAD", (method, path)
    code, headers, body = fetch(ui_ssc.ui_url + "/api/v1/applications", "HEAD")
    assert code == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_binds_loopback_and_stops_with_the_context(ui_ssc):
    ui_ssc.queue_stream([[1]]).foreach_rdd(lambda ds: None)
    ui_ssc.start()
    url = ui_ssc.ui_url
    assert url.startswith("http://127.0.0.1:")
    assert fetch(url + "/")[0] == 200
    ui_ssc.stop(stop_spark_context=False)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/", timeout=5)


def test_a_taken_port_moves_to_the_next():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        server = UIServer(_status(), "127.0.0.1", taken)
        try:
            assert taken < server.port <= taken + 16
            assert fetch(server.url + "/api/v1/applications")[0] == 200
        finally:
            server.stop()


def test_default_off_on_a_manual_clock_and_switchable(ctx, clean_conf):
    ssc = StreamingContext(ctx, 1, clock=ManualClock())
    ssc.queue_stream([[1]]).foreach_rdd(lambda ds: None)
    ssc.start()
    try:
        assert ssc.ui_url is None          # tests' contexts open no port unless asked
    finally:
        ssc.stop(stop_spark_context=False)
    ctx.conf.update({"spark.ui.enabled": "false"})
    ssc = StreamingContext(ctx, 1)         # the system clock: on by default, off by the conf key
    ssc.queue_stream([[1]]).foreach_rdd(lambda ds: None)
    ssc.start()
    try:
        assert ssc.ui_url is None
    finally:
        ssc.stop(stop_spark_context=False)


def test_on_by_default_with_the_system_clock(ctx, clean_conf):
    ctx.conf.update({"spark.ui.port": "0"})
    ssc = StreamingContext(ctx, 1)
    ssc.queue_stream([[1]]).foreach_rdd(lambda ds: None)
    ssc.start()
    try:
        assert ssc.ui_url is not None and fetch(ssc.ui_url + "/")[0] == 200
    finally:
        ssc.stop(stop_spark_context=False)


def test_warns_when_not_loopback(ui_ssc, caplog):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    ui_ssc.context.conf["spark.ui.host"] = "0.0.0.0"
    ui_ssc.queue_stream([[1]]).foreach_rdd(lambda ds: None)
    with caplog.at_level(logging.WARNING, "runnel.ui"):
        ui_ssc.start()
    assert ui_ssc.ui_url.startswith("http://0.0.0.0:")
    assert any("not only on this machine" in r.getMessage() for r in caplog.records)


def test_secrets_are_redacted(ui_ssc):
    conf = {"spark.ssl.keyPassword": "p1", "my.api.token": "t0k", "aws.secret": "s3", "spark.ssl.keyStore": "/k",
            "spark.app.name": "job", "db.credentials": "c"}
    shown = redact(conf)
    assert shown["spark.app.name"] == "job"
    assert all(shown[k] == "*********(redacted)" for k in conf if k != "spark.app.name")
    ui_ssc.context.conf.update(conf)
    ui_ssc.queue_stream([[1]]).foreach_rdd(lambda ds: None)
    ui_ssc.start()
    for path in ("/environment", "/", "/api/v1/applications", "/metrics"):
        body = fetch(ui_ssc.ui_url + path)[2]
        for secret in ("p1", "t0k", "s3", "/k", ">c<"):
            assert secret.encode() not in body, (path, secret)
    assert b"spark.app.name" in fetch(ui_ssc.ui_url + "/environment")[2]


def test_static_files_and_unknown_pages():
    server = UIServer(_status(), "127.0.0.1", 0)
    try:
        code, headers, body = fetch(server.url + "/static/live.js")
        assert code == 200 and headers["Content-Type"].startswith("text/javascript") and b"part=live" in body
        assert fetch(server.url + "/static/../server.py")[0] == 404
        assert fetch(server.url + "/nope")[0] == 404
        assert fetch(server.url + "/batch?id=12")[0] == 404
    finally:
        server.stop()


def test_no_free_port_leaves_the_job_running_without_its_ui(ui_ssc, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        ui_ssc.context.conf.update({"spark.ui.port": str(taken), "spark.port.maxRetries": "0"})
        out = []
        ui_ssc.queue_stream([[1]]).foreach_rdd(lambda ds: out.append(ds.collect()))
        with caplog.at_level(logging.WARNING, "runnel.ui"):
            ui_ssc.start()
    assert ui_ssc.ui_url is None
    assert any(f"could not bind 127.0.0.1 on ports {taken}..{taken}" in r.getMessage() for r in caplog.records)
    ui_ssc.run_batches(1)
    assert out == [[1]]
