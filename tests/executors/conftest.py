import pytest

from runnel.executors import make_executor
from runnel.storage.store import BlockRef

MASTERS = ["local", "local[2]"]


@pytest.fixture(scope="module", params=MASTERS)
def _shared_executor(request):
    ex = make_executor(request.param)
    ex.master = request.param
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


@pytest.fixture
def pool(executor):
    """The executor, for behaviour only a process pool has (skipped on ``local``)."""
    if executor.master == "local":
        pytest.skip("process pool only")
    return executor
