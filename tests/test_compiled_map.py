"""map/filter functions run compiled on big numeric columns and give exactly the per-record results."""

import numpy as np
import pytest

import runnel.ops as ops
from runnel import Context, PythonFallbackWarning
from runnel.functions import _unary

N = 2 * ops.COMPILE_MIN_ROWS + 10     # two partitions, each big enough for the compiled path
LOOKUP = [10, 20, 30]                  # a global Python list: Numba cannot compile a function reading it


def python_map(f, xs):
    return [f(x) for x in xs]


@pytest.mark.parametrize("f", [lambda x: x * 3 + 1, lambda x: x / 4, lambda x: x > 7], ids=["int", "div", "bool"])
def test_compiled_map_equals_per_record_python(ctx, f):
    xs = list(range(-5, N - 5))
    got = ctx.parallelize(np.arange(-5, N - 5), 2).map(f).collect()
    want = python_map(f, xs)
    assert got == want
    assert [type(v) for v in got[:2]] == [type(v) for v in want[:2]]


def test_compiled_map_on_floats_and_bools(ctx):
    xs = np.linspace(-1, 1, N)
    assert ctx.parallelize(xs, 2).map(lambda x: x * x).collect() == [x * x for x in xs.tolist()]
    flags = np.arange(N) % 3 == 0
    assert ctx.parallelize(flags, 2).map(lambda b: not b).collect() == [not b for b in flags.tolist()]


def test_compiled_filter_equals_per_record_python(ctx):
    got = ctx.parallelize(np.arange(N), 2).filter(lambda x: x % 7 == 3).collect()
    assert got == [x for x in range(N) if x % 7 == 3]


def test_function_returning_strings_stays_on_the_record_path(ctx):
    got = ctx.parallelize(np.arange(N), 2).map(lambda x: str(x % 10)).take(12)
    assert got == [str(x % 10) for x in range(12)]


def test_division_by_zero_still_raises_as_in_python(ctx):
    data = np.ones(N, dtype=np.int64)
    data[N // 2] = 0
    with pytest.raises(Exception, match="ZeroDivisionError: .*by zero"):
        ctx.parallelize(data, 2).map(lambda x: 1 // x).count()


def test_big_numeric_partitions_take_the_compiled_path_and_small_ones_do_not():
    def triple(x):
        return 3 * x

    with Context("local") as ctx:
        ctx.parallelize(np.arange(10), 1).map(triple).collect()
        assert triple.__code__ not in _unary
        ctx.parallelize(np.arange(N), 2).map(triple).collect()
        assert _unary[triple.__code__][np.dtype(np.int64)] is not None


def test_uncompilable_function_on_numbers_warns_once_and_still_works():
    with Context("local") as ctx:
        ds = ctx.parallelize(np.arange(N), 1)

        def lookup(x):
            return LOOKUP[x % 3]

        with pytest.warns(PythonFallbackWarning, match="lookup"):
            got = ds.map(lookup).take(4)
        assert got == [10, 20, 30, 10]
