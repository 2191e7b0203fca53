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

When kernels compile
--------------------
Lazily: a kernel compiles (or loads from the cache) for an argument type on
its first call, so a job compiles only the kernels it uses, and a warm cache
compiles nothing. Whenever a kernel really compiles (not a cache load), one
line on stderr says so (:class:`CompileReport`): a fresh install's first run
is slower, and the user is told why. Compiles are serialised by Numba's
compiler lock, so two threads reaching the same new signature compile it once.

Before its first kernel call, compiled or loaded from the cache, a process
spends about a second loading Numba's compiler state (type and lowering
registries). :func:`preload` does that on a background thread, which
``import runnel`` starts, so it overlaps the program's own start-up and the
wait for the first batch instead of delaying the first result.

``os.fork()`` (``multiprocessing``'s fork start method included) waits for
that thread first (:func:`_settle_before_fork`): a child forked while it holds
the compiler lock would inherit a lock nobody in the child can release, and
its first compile would wait forever.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import sys
import threading
import time

import numba
import numpy as np
from numba.core import event

__all__ = ["JIT_OPTIONS", "jit", "is_jitted", "CompileReport", "REPORT", "preload"]

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


class CompileReport(event.Listener):
    """Tells the user on stderr when a runnel kernel compiles; silent when kernels load from the cache.

    Each top-level kernel compile prints
    ``runnel: compiling kernels (first run only) [k] family.kernel`` as it
    starts; inside :meth:`summary` (used by :func:`runnel.kernels.warm`, which
    compiles ~190 signatures) a dot per kernel instead, then how many and how
    long. Kernels compiled inside another one (inlined helpers) are not
    counted. Numba calls the listener under its global compiler lock, so
    there is one compile at a time.

    Attributes
    ----------
    compiled : int
        Top-level kernel compiles seen by this process.
    """

    HEADER = "runnel: compiling kernels (first run only)"

    def __init__(self) -> None:
        self.compiled = 0
        self._depth = 0
        self._summary: list | None = None   # [count, start time] while a summary is open

    @staticmethod
    def _kernel_name(dispatcher) -> str | None:
        fn = getattr(dispatcher, "py_func", None)
        module = getattr(fn, "__module__", "") or ""
        if not module.startswith("runnel.kernels."):
            return None
        name = fn.__name__.strip("_").removesuffix("_worker")
        return f"{module.rpartition('.')[2]}.{name}"

    def on_start(self, ev) -> None:
        self._depth += 1
        if self._depth != 1:
            return
        name = self._kernel_name(ev.data["dispatcher"])
        if name is None:
            return
        self.compiled += 1
        if self._summary is None:
            self._write(f"{self.HEADER} [{self.compiled}] {name}\n")
        else:
            if self._summary[0] == 0:
                self._summary[1] = time.perf_counter()
                self._write(self.HEADER + " ")
            self._summary[0] += 1
            self._write(".")

    def on_end(self, ev) -> None:
        self._depth -= 1

    @contextlib.contextmanager
    def summary(self):
        """Report the compiles of the block as one line of dots and a total."""
        outer, self._summary = self._summary, [0, 0.0]
        try:
            yield
        finally:
            n, start = self._summary
            self._summary = outer
            if n:
                self._write(f" {n} compiled in {time.perf_counter() - start:.1f} s\n")

    @staticmethod
    def _write(text: str) -> None:
        stream = sys.stderr  # looked up each time: pytest and users may replace it
        try:
            stream.write(text)
            stream.flush()
        except (AttributeError, OSError, ValueError):  # no stderr, or closed: never fail a compile over it
            pass


#: The process's compile reporter (registered with Numba when this module is imported).
REPORT = CompileReport()
event.register("numba:compile", REPORT)


_preloading: threading.Thread | None = None


def preload() -> threading.Thread | None:
    """Load Numba's compiler state on a background thread (once per process).

    Every process pays ~1 s (more on a loaded machine) for it before its
    first kernel runs, whether the kernel compiles or loads from the cache;
    measured with cProfile, nearly all of it is Numba's ``refresh()`` of the
    CPU target's registries. The thread holds Numba's compiler lock while it
    works, so a kernel called meanwhile waits for it rather than doing the
    same work; an error here is left for that first call to raise. The
    thread is joined at exit (never cut off inside LLVM).

    Returns
    -------
    threading.Thread or None
        The thread (already started), or None with ``NUMBA_DISABLE_JIT=1``.
    """
    global _preloading
    if numba.config.DISABLE_JIT:
        return None
    if _preloading is None:
        _preloading = threading.Thread(target=_refresh, name="runnel-numba-preload", daemon=True)
        _preloading.start()
        atexit.register(_preloading.join, _PRELOAD_WAIT)
        os.register_at_fork(before=_settle_before_fork)
    return _preloading


#: Seconds exit and fork wait for the preload at most (it takes ~1-3 s).
_PRELOAD_WAIT = 60


def _settle_before_fork() -> None:
    """``os.fork`` hook: let the preload release Numba's compiler lock before the process forks.

    Not waited for when the forking thread holds the compiler lock itself (the
    preload is waiting for that lock, so it cannot finish first; the child
    owns the lock and releases it as the parent would), when the preload
    thread forks (a thread cannot join itself), or during interpreter
    shutdown (daemon threads are frozen then and would never finish).
    """
    thread = _preloading
    if thread is None or not thread.is_alive() or thread is threading.current_thread():
        return
    if sys.is_finalizing():
        return
    from numba.core.compiler_lock import global_compiler_lock

    if global_compiler_lock.is_locked():  # held by this very thread
        return
    thread.join(_PRELOAD_WAIT)


def _refresh() -> None:
    try:
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.registry import cpu_target

        with global_compiler_lock:
            cpu_target.target_context.refresh()
    except Exception:  # noqa: BLE001 - the first kernel call does this again and raises it
        pass
