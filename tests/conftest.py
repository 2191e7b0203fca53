"""Shared fixtures: every graph-level test runs on ``local``, ``local[2]``, its process path, and Dask.

``local[2]`` runs kernel stages on threads and user-Python stages on worker
processes; ``local[2]:processes`` sends every stage, however small, to the
worker processes (conf ``runnel.executor.stageKind=processes``,
``runnel.executor.inlineBytes=0``), so the shared-memory path is checked by
every graph-level test too.

``dask`` is a Dask ``LocalCluster`` of 2 worker processes over loopback,
started once per session (:func:`dask_cluster`). Every graph-level test runs
on it when ``RUNNEL_TEST_MASTERS`` names ``dask`` (``RUNNEL_TEST_MASTERS=dask
pytest``); by default only the tests in :data:`DASK_DEFAULT` do (the
conformance suite runs on it always), so the default run stays quick.

Contexts are session-scoped (worker processes take a moment to start):
pytest groups the tests by master, so each pool starts once per session.
A StreamingContext wraps the shared Context and is stopped without
stopping it.
"""

from __future__ import annotations

import os

import pytest

from runnel import Context, ManualClock, StreamingContext

MASTERS = ["local", "local[2]", "local[2]:processes", "dask"]
#: conf of the process path: every stage on the worker processes
PROCESSES = {"runnel.executor.stageKind": "processes", "runnel.executor.inlineBytes": 0}
#: graph-level tests that run on ``dask`` in the default run (all do with RUNNEL_TEST_MASTERS=dask):
#: state, an inverse window checked against recomputation, a checkpoint resumed mid-stream
DASK_DEFAULT = {"test_state_after_n_batches_is_a_dict_fold", "test_inverse_window_equals_window_recomputed_from_raw_records",
                "test_resume_continues_state_and_windows_exactly"}


def dask_everywhere() -> bool:
    return "dask" in os.environ.get("RUNNEL_TEST_MASTERS", "").replace(",", " ").split()


def pytest_collection_modifyitems(config, items):
    """Keep the ``dask`` runs of graph-level tests to :data:`DASK_DEFAULT` unless asked for all."""
    if dask_everywhere():
        return
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("master") == "dask" and item.originalname not in DASK_DEFAULT:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def dask_cluster():
    """A Dask LocalCluster of 2 single-threaded worker processes over loopback, for the session.

    Skips when Dask distributed is not installed, except under CI (``CI`` set),
    where it is part of the ``test`` extra and a missing one must fail.
    """
    if os.environ.get("CI"):
        import distributed
    else:
        distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed "
                                          "(pip install 'runnel[dask]')")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=":0")
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def dask_master(dask_cluster) -> str:
    """``dask://host:port`` of the session's LocalCluster."""
    return "dask://" + dask_cluster.scheduler_address.split("://", 1)[1]


@pytest.fixture(scope="session", params=MASTERS)
def master(request) -> str:
    """The executor under test: a master string, ``:processes`` for local[2]'s process path,
    the session's LocalCluster's ``dask://`` address for ``dask``."""
    if request.param == "dask":
        return request.getfixturevalue("dask_master")
    return request.param


@pytest.fixture(scope="session")
def ctx(master):
    """A Context on ``master``, shared by the whole session."""
    if master.startswith("dask://"):          # every stage as Dask tasks, however small
        c = Context(master, conf={"runnel.executor.inlineBytes": 0})
        yield c
        c.stop()
        return
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
