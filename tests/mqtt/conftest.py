"""Fixtures of the MQTT tests: a mosquitto broker for the session, publishing, polling.

The broker is Debian's mosquitto, started on a free loopback port with its
own config (``broker.py``). Where it is missing it is installed under CI
(root, ``apt-get``); on another machine without it the tests skip, saying
so; under CI a broker that cannot be had fails them.
"""

from __future__ import annotations

import time

import pytest
from broker import Mosquitto, mosquitto_or_skip


@pytest.fixture(scope="session")
def mosquitto_binary() -> str:
    return mosquitto_or_skip()


@pytest.fixture(scope="session")
def broker(mosquitto_binary, tmp_path_factory):
    """A mosquitto shared by the session's tests (each test uses topics of its own)."""
    b = Mosquitto(mosquitto_binary, str(tmp_path_factory.mktemp("mosquitto")), max_inflight=100).start()
    yield b
    b.stop()


@pytest.fixture
def own_broker(mosquitto_binary, tmp_path):
    """A broker of the test's own, which the test may stop and start again."""
    b = Mosquitto(mosquitto_binary, str(tmp_path / "mosquitto"))
    yield b
    b.stop()


@pytest.fixture
def topic_root(request):
    """A topic prefix unique to the test (the session's broker is shared)."""
    return f"t/{request.node.name.replace('[', '-').replace(']', '').replace('/', '-')}"


@pytest.fixture
def poll():
    """``poll(condition, what, timeout)``: wait for a condition, bounded; raise on timeout."""

    def wait(condition, what, timeout=15.0):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.005)

    return wait
