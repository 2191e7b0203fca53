"""Fixtures of the input-stream tests (receivers, sockets, files, rate).

They build on the session-wide ``ctx`` fixture of ``tests/conftest.py`` (one
Context per master, ``local`` and ``local[2]``), so a process pool starts
once per session, not once per module.
"""

import time

import pytest

from runnel import ManualClock, StreamingContext


@pytest.fixture
def inputs_ssc(ctx):
    """A factory of manual-clock StreamingContexts on the shared Context, stopped after the test."""
    made = []

    def make(batch_seconds=1):
        ssc = StreamingContext(ctx, batch_seconds, clock=ManualClock())
        made.append(ssc)
        return ssc

    yield make
    for ssc in made:
        ssc.stop(stop_spark_context=False)
    assert not ctx.stopped, "a test stopped the shared Context"


@pytest.fixture
def inputs_poll():
    """``poll(condition, what, timeout)``: wait for a condition, bounded; raise on timeout."""

    def poll(condition, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.005)

    return poll
