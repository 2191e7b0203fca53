"""Shared fixtures: every graph-level test runs on ``local``, ``local[2]`` and its process path.

``local[2]`` runs kernel stages on threads and user-Python stages on worker
processes; ``local[2]:processes`` sends every stage, however small, to the
worker processes (conf ``runnel.executor.stageKind=processes``,
``runnel.executor.inlineBytes=0``), so the shared-memory path is checked by
every graph-level test too.

Contexts are session-scoped (worker processes take a moment to start):
pytest groups the tests by master, so each pool starts once per session.
A StreamingContext wraps the shared Context and is stopped without
stopping it.
"""

from __future__ import annotations

import pytest

from runnel import Context, ManualClock, StreamingContext

MASTERS = ["local", "local[2]", "local[2]:processes"]
#: conf of the process path: every stage on the worker processes
PROCESSES = {"runnel.executor.stageKind": "processes", "runnel.executor.inlineBytes": 0}


@pytest.fixture(scope="session", params=MASTERS)
def master(request) -> str:
    """The executor under test: a master string, ``:processes`` for local[2]'s process path."""
    return request.param


@pytest.fixture(scope="session")
def ctx(master):
    """A Context on ``master``, shared by the whole session."""
    name, _, kind = master.partition(":")
    c = Context(name, conf=PROCESSES if kind == "processes" else None)
    yield c
    c.stop()


@pytest.fixture
def clean_conf(ctx):
    """The shared Context's conf as it was before the test (a test's settings must not reach the next)."""
    saved = dict(ctx.conf)
    yield
    ctx.conf.clear()
    ctx.conf.update(saved)


@pytest.fixture
def ssc(ctx, clean_conf):
    """A StreamingContext with a 1 s batch on a ManualClock; stopped after the test."""
    s = StreamingContext(ctx, 1, clock=ManualClock())
    yield s
    s.stop(stop_spark_context=False)
    assert not ctx.stopped, "a test stopped the shared Context"


@pytest.fixture
def collect():
    """``collect(stream)`` registers an output and returns the list it fills per batch."""
    def attach(stream):
        out: list = []
        stream.foreach_rdd(lambda ds: out.append(ds.collect()))
        return out
    return attach


@pytest.fixture
def run(ctx, clean_conf):
    """:func:`runnel.testing.run_stream` on the shared Context (several inputs: ``run(build, a, b)``)."""
    from runnel.testing import run_streams

    def go(build, *inputs, **kw):
        return run_streams(build, inputs, ctx, **kw)
    return go
