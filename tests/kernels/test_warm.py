"""warm() compiles every signature the engine will hit."""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pytest

import runnel.kernels as K
from runnel.kernels import aggregate, hashing, join, partition


def _dispatchers():
    from numba.core.dispatcher import Dispatcher

    return {
        f"{mod.__name__}.{name}": obj
        for mod in (hashing, partition, aggregate, join)
        for name, obj in vars(mod).items()
        if isinstance(obj, Dispatcher) and obj.__module__ == mod.__name__ and obj.py_func.__name__ != "_fold_worker"
    }


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with NUMBA_DISABLE_JIT")
def test_warm_leaves_nothing_to_compile():
    K.warm()
    before = {name: len(d.signatures) for name, d in _dispatchers().items()}
    # Engine-like calls: Arrow-backed (read-only) and fresh arrays, every dtype.
    for make in (lambda a: a, _readonly):
        ints = make(np.array([5, 6, 5], dtype=np.int64))
        floats = make(np.array([0.5, np.nan, 0.5]))
        bools = make(np.array([True, False, True]))
        K.factorize_int64(ints)
        K.factorize_int64(make(np.array([1, 2**50])))
        K.factorize_float64(floats)
        codes, first = K.factorize_int64(ints)
        for values in (ints, floats, bools):
            for op in K.REDUCE_OPS:
                K.reduce_codes(codes, len(first), values, op)
        K.partition_ids(make(K.hash_int64(ints)), 3)
        K.combine_hashes(make(K.hash_int64(ints)), K.hash_float64(floats))
    K.factorize_arrow(pa.array(["x", None, "y"], pa.large_string()))
    K.hash_arrow(pa.chunked_array([pa.array(["x"]), pa.array(["yy"])]))
    K.join_indices(np.array([0]), np.array([0]), 1, "left")
    after = {name: len(d.signatures) for name, d in _dispatchers().items()}
    assert after == before


def test_warm_runs():
    K.warm()
