import pytest

from runnel.executors import make_executor

MASTERS = ["local", "local[2]"]


@pytest.fixture(params=MASTERS)
def executor(request):
    """Every executor backend; the conformance suite runs on each."""
    ex = make_executor(request.param)
    ex.master = request.param
    yield ex
    ex.close()


@pytest.fixture
def pool(executor):
    """The executor, for behaviour only a process pool has (skipped on ``local``)."""
    if executor.parallelism == 1 and executor.master == "local":
        pytest.skip("process pool only")
    return executor
