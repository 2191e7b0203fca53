"""warm() compiles every signature the engine will hit; kernels compile lazily, once, and say so."""

from __future__ import annotations

import re

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


# -- compiling lazily, and saying so ------------------------------------------------------------

_FIRST_USE = r"""
import sys, threading
import numpy as np
import runnel.kernels as K
from runnel.kernels import hashing
from runnel.kernels._config import REPORT

# two threads reach a kernel no one has compiled, at once: Numba's compiler lock makes it one compile
ints = np.arange(-500, 500, dtype=np.int64)
start, results = threading.Barrier(2), [None, None]
def call(i):
    start.wait(30)
    results[i] = K.hash_int64(ints)
threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join(120)
assert all(r is not None for r in results), "a thread did not finish"
assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], K.hash_int64(ints.copy()))
assert len(hashing._hash_int64_worker.signatures) == 1
with REPORT.summary():
    K.partition_ids(results[0], 3)
    K.combine_hashes(results[0], results[1])
print(REPORT.compiled)
"""


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with NUMBA_DISABLE_JIT")
def test_first_use_compiles_once_says_so_and_a_warm_cache_says_nothing(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    cold = subprocess.run([sys.executable, "-c", _FIRST_USE], capture_output=True, text=True, env=env, timeout=300)
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout.split() == ["3"]
    lines = cold.stderr.splitlines()
    assert lines[0] == "runnel: compiling kernels (first run only) [1] hashing.hash_int64"
    assert re.fullmatch(r"runnel: compiling kernels \(first run only\) \.\. 2 compiled in \d+\.\d s", lines[1])
    assert len(lines) == 2
    warm = subprocess.run([sys.executable, "-c", _FIRST_USE], capture_output=True, text=True, env=env, timeout=300)
    assert warm.returncode == 0, warm.stderr
    assert (warm.stdout.split(), warm.stderr) == (["0"], "")


def test_compile_report_never_fails_a_compile_without_stderr(monkeypatch):
    from runnel.kernels._config import REPORT

    monkeypatch.setattr("sys.stderr", None)
    REPORT._write("nothing to write to\n")  # no exception: a compile must not fail over its report


_PRELOADED = r"""
import sys
import numpy as np
import runnel
import runnel.kernels as K
from runnel.kernels import _config

_config._preloading.join(120)
assert not _config._preloading.is_alive()
before = set(sys.modules)
h = K.hash_int64(np.array([1, 2], dtype=np.int64))
assert h[0] != h[1]
print(sorted(m for m in set(sys.modules) - before if m.startswith(("numba", "llvmlite"))))
"""


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="nothing is compiled with NUMBA_DISABLE_JIT")
def test_import_preloads_numbas_compiler_state_so_the_first_kernel_call_does_not():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _PRELOADED], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # Numba's implementation modules (numba.cpython.*, numba.np.* ...: ~70 when nothing preloads) are
    # imported and registered already: the first call has nothing left to load
    assert done.stdout.strip() == "[]"
