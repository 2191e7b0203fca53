import pytest

from runnel.executors import make_executor
from runnel.storage.store import BlockRef

#: Every executor kind: serial, local[2]'s threads, local[2]'s worker processes, a Dask LocalCluster
#: (its address is known once the session's cluster runs). The suite exercises each kind's machinery,
#: so no stage may run inline in the driver (inline_bytes=0).
KINDS = {
    "serial": ("local", {}),
    "threads": ("local[2]", {"stage_kind": "threads", "inline_bytes": 0}),
    "processes": ("local[2]", {"stage_kind": "processes", "inline_bytes": 0}),
    "dask": (None, {"inline_bytes": 0}),
}


def _make(kind: str, request=None):
    master, options = KINDS[kind]
    if kind == "dask":
        master = request.getfixturevalue("dask_master")
    ex = make_executor(master, **options)
    ex.master, ex.options, ex.kind = master, options, kind
    return ex


def _clean(ex):
    assert ex.store.live_blocks() == 0
    yield ex
    ex.store.release([BlockRef(i, 0, 0) for i in list(ex.store._live)])


@pytest.fixture(scope="module", params=list(KINDS))
def _shared_executor(request):
    ex = _make(request.param, request)
    yield ex
    ex.close()


@pytest.fixture
def executor(_shared_executor):
    """Every executor kind; the conformance suite runs on each.

    One executor per kind and module (worker processes take ~1 s to start);
    each test starts with an empty store and must leave its workers healthy.
    """
    yield from _clean(_shared_executor)


@pytest.fixture(scope="module")
def _shared_pool():
    ex = _make("processes")
    ex.processes                 # started now: these tests look at the workers
    yield ex
    ex.close()


@pytest.fixture
def pool(_shared_pool):
    """local[2] with every stage on its worker processes, for what only processes have
    (worker death, shipping, shared memory)."""
    yield from _clean(_shared_pool)
