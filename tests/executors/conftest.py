import pytest

from runnel.executors import make_executor
from runnel.storage.store import BlockRef

MASTERS = ["local", "local[2]"]
#: The suite exercises the pool's machinery, so no stage may run inline in the driver.
POOL_OPTIONS = {"local[2]": {"inline_bytes": 0}}


@pytest.fixture(scope="module", params=MASTERS)
def _shared_executor(request):
    ex = make_executor(request.param, **POOL_OPTIONS.get(request.param, {}))
    ex.master = request.param
    ex.options = POOL_OPTIONS.get(request.param, {})
    yield ex
    ex.close()


@pytest.fixture
def executor(_shared_executor):
    """Every executor backend; the conformance suite runs on each.

    One executor per backend and module (a pool takes ~1 s to start); each
    test starts with an empty store and must leave its workers healthy.
    """
    ex = _shared_executor
    assert ex.store.live_blocks() == 0
    yield ex
    ex.store.release([BlockRef(i, 0, 0) for i in list(ex.store._live)])


@pytest.fixture(scope="module")
def _shared_pool():
    ex = make_executor("local[2]", **POOL_OPTIONS["local[2]"])
    ex.master = "local[2]"
    ex.options = POOL_OPTIONS["local[2]"]
    yield ex
    ex.close()


@pytest.fixture
def pool(_shared_pool):
    """A process pool, for behaviour only a pool has (worker death, shipping, shared memory)."""
    ex = _shared_pool
    assert ex.store.live_blocks() == 0
    yield ex
    ex.store.release([BlockRef(i, 0, 0) for i in list(ex.store._live)])
