"""Fixtures of the UI tests: a StreamingContext serving its UI on a free loopback port.

The UI observes the listener bus only, whatever the executor: these tests
run on the ``local`` master alone.
"""

from __future__ import annotations

import pytest

from runnel import ManualClock, StreamingContext
from runnel.listener import StreamingListener
from ui_http import get_json


@pytest.fixture(scope="session", params=["local"])
def master(request) -> str:
    return request.param


class Recorder(StreamingListener):
    """The BatchInfo snapshots of completed batches, by batch time (what the UI must show)."""

    def __init__(self):
        self.completed = {}

    def onBatchCompleted(self, event):
        info = event.batchInfo()
        self.completed[info.batch_time] = info


@pytest.fixture
def ui_ssc(ctx, clean_conf):
    """A 1 s ManualClock StreamingContext whose UI is on, on any free port."""
    ctx.conf.update({"spark.ui.enabled": "true", "spark.ui.port": "0"})
    s = StreamingContext(ctx, 1, clock=ManualClock())
    yield s
    s.stop(stop_spark_context=False)


@pytest.fixture
def recorder(ui_ssc):
    r = Recorder()
    ui_ssc.add_streaming_listener(r)
    return r


@pytest.fixture
def api(ui_ssc):
    """``api(path)``: the JSON of ``/api/v1/applications/<this app>/streaming/<path>``."""
    def go(path: str):
        app = get_json(ui_ssc.ui_url + "/api/v1/applications")[0]["id"]
        return get_json(f"{ui_ssc.ui_url}/api/v1/applications/{app}/streaming/{path}")
    return go
