"""``os.fork()`` right after ``import runnel`` leaves the child a usable Numba.

``import runnel`` starts a thread that holds Numba's compiler lock while it
loads the compiler state (``_config.preload``). A child forked in that window
inherits the lock held by a thread that does not exist in the child; before
the fix the child's first compile waited for it forever. Each scenario runs in
a fresh interpreter so the preload is really in flight; the refresh is slowed
and signalled so the fork lands inside the window every time, and every wait
is bounded (``signal.alarm`` in the child, ``timeout`` on the interpreter).
"""

from __future__ import annotations

import subprocess
import sys

import numba
import pytest

pytestmark = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no compiler lock with NUMBA_DISABLE_JIT")

_FORK_INSIDE_PRELOAD = r"""
import os, signal, threading, time
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import cpu_target

inside = threading.Event()
context = cpu_target.target_context
slow_refresh = context.refresh
def refresh():           # Numba calls it again from inside: only the outer call lingers
    if not inside.is_set():
        inside.set()      # the preload thread now holds the compiler lock
        time.sleep(0.5)
    slow_refresh()
context.refresh = refresh

HOLD = {hold}
if HOLD:
    global_compiler_lock.acquire()   # the forking thread holds the lock: the preload waits for it
import runnel
from runnel.kernels import _config
if HOLD:
    assert _config._preloading.is_alive() and not inside.is_set()
else:
    assert inside.wait(60), "the preload thread never started"
start = time.monotonic()
pid = os.fork()
if pid == 0:
    signal.alarm(30)                 # a hung child dies with SIGALRM instead of hanging the test
    if HOLD:
        global_compiler_lock.release()
    import numba
    @numba.njit(cache=False)
    def plus_one(x):
        return x + 1
    print("child", plus_one(1), flush=True)
    os._exit(0)
forked_after = time.monotonic() - start
if HOLD:
    global_compiler_lock.release()
_, status = os.waitpid(pid, 0)
print("status", status, flush=True)
print("forked_after", forked_after, flush=True)
"""


def _run(hold: bool) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _FORK_INSIDE_PRELOAD.format(hold=hold)],
        capture_output=True, text=True, timeout=240,
    )


def test_child_forked_while_import_preloads_compiles_a_kernel():
    done = _run(hold=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:4] == ["child", "2", "status", "0"], (done.stdout, done.stderr)


def test_fork_by_a_thread_holding_the_compiler_lock_does_not_wait_for_the_preload():
    # the preload waits for the lock the forking thread holds: joining it before the fork would
    # deadlock, so the fork goes ahead at once (the child, owning the lock, releases it itself)
    done = _run(hold=True)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert words[:4] == ["child", "2", "status", "0"], (done.stdout, done.stderr)
    assert float(words[5]) < 5, "the fork waited for a preload that cannot finish before it"
