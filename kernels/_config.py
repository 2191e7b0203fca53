"""The single home of runnel's Numba compile options.

Every kernel in ``runnel.kernels`` is compiled through :func:`jit`; a test
(``tests/kernels/test_config.py``) fails if ``njit(`` or ``numba.jit(``
appears in any other kernel module, so the options below are the options.

Why these options
-----------------
``nogil=True``
    Kernels release the GIL so the driver's threads (scheduler, receivers,
    UI) keep running while a kernel loops, and a thread pool can overlap them.
``cache=True``
    Compiled machine code is written next to the sources (``__pycache__``)
    so worker processes load it instead of compiling. Numba's cache is not
    safe against concurrent first writers (numba#4807, numba#10128): the
    driver calls :func:`runnel.kernels.warm` before a process pool starts,
    so workers only ever *read* the cache.
``error_model="numpy"``
    Float division by zero gives inf/nan like NumPy instead of a checked
    ``ZeroDivisionError`` branch in every loop. Integer divisors are
    validated by the Python wrappers before a kernel runs.
no ``parallel=True``
    Never together with ``cache=True`` (cached parallel gufuncs crash in
    pools); parallelism comes from the process pool, one serial kernel per
    partition.
no ``fastmath``
    It would let LLVM assume there are no NaNs, and the kernels give NaN and
    -0.0 exact, Python-compatible meaning.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

__all__ = ["JIT_OPTIONS", "jit", "is_jitted"]

#: Options every runnel kernel is compiled with (see the module docstring).
JIT_OPTIONS: dict = {"nogil": True, "cache": True, "error_model": "numpy"}


def jit(fn=None, **overrides):
    """Compile ``fn`` in nopython mode with runnel's options.

    Usable bare (``@jit``) or with overrides (``@jit(cache=False)``).
    Overrides exist for the rare kernel that must differ (e.g. a kernel that
    takes a user's function as an argument cannot be cached: every process
    would append a new entry to the cache, see ``aggregate.reduce_codes_with``).

    Parameters
    ----------
    fn : callable, optional
        The Python function to compile.
    **overrides
        Options replacing entries of :data:`JIT_OPTIONS`.

    Returns
    -------
    numba.core.dispatcher.Dispatcher or decorator
        The compiled dispatcher, or a decorator when ``fn`` is omitted.
    """
    options = {**JIT_OPTIONS, **overrides}
    if options.get("parallel") and options.get("cache"):
        raise ValueError("parallel=True with cache=True crashes process pools (numba#4807)")
    if fn is None:
        return lambda f: jit(f, **overrides)
    if numba.config.DISABLE_JIT:
        return _as_python(fn)
    return numba.njit(**options)(fn)


def _as_python(fn):
    """``fn`` for ``NUMBA_DISABLE_JIT=1`` runs (readable kernel failures).

    Compiled kernels wrap uint64/int64 arithmetic silently, as the hashes
    rely on; NumPy scalars warn instead, and tests turn warnings into errors.
    """

    @functools.wraps(fn)
    def run(*args):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return fn(*args)

    run.py_func = fn
    return run


def is_jitted(fn) -> bool:
    """Return True if ``fn`` is a Numba dispatcher usable inside a kernel.

    With ``NUMBA_DISABLE_JIT=1`` every function is plain Python, so any
    callable qualifies.
    """
    if numba.config.DISABLE_JIT:
        return callable(fn)
    from numba.core.dispatcher import Dispatcher

    return isinstance(fn, Dispatcher)
