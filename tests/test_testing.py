"""The public test kit itself: its docstring examples run, and its comparison is type-exact."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import runnel.testing
from runnel.testing import assert_batches_equal, run_stream


def test_docstring_examples_run():
    result = doctest.testmod(runnel.testing, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("actual,expected", [
    ([[1]], [[1.0]]), ([[(1, 2)]], [[[1, 2]]]), ([[np.int64(1)]], [[1]]), ([[True]], [[1]]),
    ([[1, 1]], [[1]]), ([[1], []], [[1]]), ([[("a", [1, 2])]], [[("a", [2, 1])]]),
])
def test_assert_batches_equal_is_type_exact(actual, expected):
    with pytest.raises(AssertionError):
        assert_batches_equal(actual, expected)


def test_assert_batches_equal_unordered_by_default():
    assert_batches_equal([[("a", [1]), ("b", {"x": 1})], []], [[("b", {"x": 1}), ("a", [1])], []])
    assert_batches_equal([[float("nan")]], [[float("nan")]])
    with pytest.raises(AssertionError, match="ordered"):
        assert_batches_equal([[1, 2]], [[2, 1]], ordered=True)


def test_run_stream_re_raises_a_pipeline_error(ctx):
    def boom(x):
        raise RuntimeError("pipeline broke")
    with pytest.raises(Exception, match="pipeline broke"):
        run_stream(lambda s: s.map(boom), [[1]], ctx)
    assert not ctx.stopped


def test_run_stream_with_the_context_and_several_partitions(ctx):
    out = run_stream(lambda ssc, s: s.glom(), [[1, 2, 3]], ctx, num_partitions=3)
    assert out == [[[1], [2], [3]]]
