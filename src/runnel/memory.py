"""How a runnel process keeps the memory its batches free: glibc's malloc told to reuse it.

Every batch allocates and frees arrays of the same few sizes (a kernel's
output, a partition's columns). By default glibc serves blocks of more than
128 KiB (then a threshold it moves) with a fresh ``mmap`` and unmaps them on
``free``, and it returns the top of the heap to the OS when more than
128 KiB is free there; the next batch then page-faults the same memory in
again, one fault per 4 KiB page. Measured on the 2-core KVM host (issue 11):
a fault costs about 4 µs, a dense reduce of 500k rows paid 456 of them per
call (4.2 ms, against 2.4 ms once the memory was kept), and two threads
faulting at once contend in the kernel, which made W2 on ``local[2]``
10.8 ms per batch against 5.9 ms with this setting.

:func:`keep_freed_memory` sets two ``mallopt`` parameters for the whole
process, and gives Arrow a pool that keeps its memory too:

* ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's maximum): blocks up to that size
  come from the heap, whose freed chunks are reused. Larger arrays are still
  mapped; NumPy asks for transparent huge pages for those, so they fault
  per 2 MiB, not per 4 KiB.
* ``M_TRIM_THRESHOLD`` = ``keep_bytes`` (default 512 MiB): free memory at the
  top of a heap is given back to the OS only beyond this much.

* Arrow's default pool becomes jemalloc with dirty-page decay off
  (:func:`pyarrow.jemalloc_set_decay_ms` ``(-1)``), or the system allocator
  (glibc, tuned as above) where pyarrow was built without jemalloc. Arrow's
  default, mimalloc, gives freed pages back within milliseconds: W1 (string
  split and word counting in Arrow) faulted ~370 pages per batch on
  ``local[2]`` and spent 10-15% more CPU than with jemalloc kept (thread CPU
  per batch, runs alternated at load ~20: 77.0/69.7 ms against 61.7/64.1 ms).

The cost is resident memory: a process keeps up to its peak batch working
set (plus ``keep_bytes`` at most at each heap's top) instead of returning it
between batches — what the JVM under Spark does with its heap.

A :class:`~runnel.context.Context` calls it when it starts, and so does each
worker process of ``local[N]``; the conf key ``runnel.memory.keepFreed``
(``"false"``) leaves malloc as it is. Dask workers are not touched: their
nanny manages their memory. On a C library other than glibc (musl, macOS,
Windows) it does nothing and says so by returning False.
"""

from __future__ import annotations

import ctypes
import sys
import threading

__all__ = ["KEEP_FREED_KEY", "keep_freed_memory", "wants_kept_memory", "worker_env", "keep_as_driver_does"]

#: conf key: "false" leaves glibc's malloc settings alone
KEEP_FREED_KEY = "runnel.memory.keepFreed"

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2, which is 32 MiB on 64-bit
_MMAP_MAX = 32 << 20
KEEP_BYTES = 512 << 20

#: environment variable telling a worker process to keep freed memory as its driver does
_ENV = "RUNNEL_KEEP_FREED_BYTES"

_lock = threading.Lock()
_applied: int | None = None      # the keep_bytes applied, once applied


def _glibc_mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")   # glibc's soname; find_library would run ldconfig at every start
        libc.gnu_get_libc_version      # glibc only (musl has mallopt as a no-op stub, or not at all)
        return libc.mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory(keep_bytes: int = KEEP_BYTES) -> bool:
    """Make glibc's malloc reuse freed batch memory instead of returning it to the OS.

    Idempotent; the first call's ``keep_bytes`` holds for the process.

    Parameters
    ----------
    keep_bytes : int
        Free memory a heap keeps at its top before giving the rest back.

    Returns
    -------
    bool
        True when the settings are in force (glibc), False where they do not apply.

    Examples
    --------
    >>> import sys
    >>> keep_freed_memory() == sys.platform.startswith("linux")   # glibc Linux
    True
    """
    global _applied
    if keep_bytes < 0:
        raise ValueError(f"keep_bytes must be >= 0, got {keep_bytes}")
    with _lock:
        if _applied is not None:
            return True
        mallopt = _glibc_mallopt()
        if mallopt is None:
            return False
        if not (mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX) and mallopt(_M_TRIM_THRESHOLD, min(keep_bytes, 2**31 - 1))):
            return False
        _keep_arrow_memory()
        _applied = keep_bytes
        return True


def _keep_arrow_memory() -> None:
    import pyarrow as pa
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(-1)
    except NotImplementedError:              # a pyarrow built without jemalloc
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)


def wants_kept_memory(conf) -> bool:
    """Whether ``conf`` (a mapping, or None) lets runnel tune malloc (``runnel.memory.keepFreed``)."""
    value = (conf or {}).get(KEEP_FREED_KEY, True)
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{KEEP_FREED_KEY} must be true or false, got {value!r}")
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def worker_env() -> dict[str, str]:
    """Environment for a worker process this driver starts: keep freed memory if the driver does."""
    return {_ENV: str(_applied)} if _applied is not None else {}


def keep_as_driver_does(environ) -> bool:
    """In a worker process: apply :func:`keep_freed_memory` if its driver said so (:func:`worker_env`)."""
    value = environ.get(_ENV)
    return keep_freed_memory(int(value)) if value else False
