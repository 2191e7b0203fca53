"""One suite every executor kind passes (serial, threads, processes: see conftest.py).

Task functions live at module level so workers import them by reference
(the pool sends the driver's sys.path to its workers).
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback

import pytest

from runnel.batch import Batch
from runnel.executors import MAX_ATTEMPTS, Task, TaskFailed, make_executor, ship


# -- task functions -----------------------------------------------------------------
def echo_groups(index, groups):
    """One output: [index, group sizes..., all values...]; plus ``index % 3`` extra outputs."""
    values = [v for g in groups for b in g for v in b.to_records()]
    out = [Batch.from_values([index, *[len(g) for g in groups], *values])]
    return out + [Batch.from_values([index] * k) for k in range(1, index % 3 + 1)]


def fail_on_odd(index, groups):
    if index % 2:
        raise ValueError(f"boom {index}")
    return [Batch.from_values([index])]


def mutate_objects(index, groups):
    batch = groups[0][0]
    batch["value"][0].append("mutated")
    return [batch]


def count_attempts_then_raise(path):
    def fn(index, groups):
        with open(path, "a") as f:
            f.write("x")
        raise RuntimeError("deterministic")
    return fn


class Counter:
    """Counts its calls: when shipped once per worker, calls accumulate per process."""

    def __init__(self):
        self.calls = 0
        self._lock = threading.Lock()        # tasks on threads share the one object

    def __getstate__(self):
        return {"calls": self.calls}

    def __setstate__(self, state):
        self.__init__()
        self.calls = state["calls"]

    def __call__(self, index, groups):
        with self._lock:
            self.calls += 1
            return [Batch.from_values([os.getpid(), self.calls])]


def kill_self_once(marker):
    def fn(index, groups):
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))   # exactly one task wins
        except FileExistsError:
            return [Batch.from_values([index])]
        os.kill(os.getpid(), signal.SIGKILL)
        return [Batch.from_values([index])]
    return fn


def always_kill_self(marker):
    def fn(index, groups):
        with open(marker, "a") as f:
            f.write("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return fn


def empty(index, groups):
    return []


def big_outputs(index, groups):
    """Outputs too big to travel in a worker's reply: files in shared memory."""
    import numpy as np
    return [Batch.from_values(np.arange(100_000) + index) for _ in range(2)]


def add_one(x):
    return x + 1


def apply_twice(f, x):
    return f(f(x))


def compose_task(b, c, index, groups):
    return [Batch.from_values([b(c(index))])]


def shm_files(store) -> list[str]:
    prefix = getattr(store, "prefix", None)
    if prefix is None or not os.path.isdir(store.directory):
        return []
    return sorted(n for n in os.listdir(store.directory) if n.startswith(prefix))


def worker_fn_loads(executor) -> int:
    """Function blobs the Dask workers unpickled so far (0 for the other kinds)."""
    if executor.kind != "dask":
        return 0
    from runnel.executors.dask_worker import fn_loads
    return sum(executor.client.run(fn_loads).values())


def values(executor, refs):
    return [executor.store.get(r).to_records() for r in refs]


# -- the suite --------------------------------------------------------------------------
def test_tasks_return_their_blocks_in_task_order(executor):
    inp = executor.store.put(Batch.from_records([10, 20]))
    tasks = [Task(echo_groups, i, [[inp]], f"echo, partition {i}") for i in range(7)]
    out = executor.run(tasks)
    assert len(out) == 7
    for i, refs in enumerate(out):
        assert len(refs) == 1 + i % 3
        assert values(executor, refs) == [[i, 1, 10, 20]] + [[i] * k for k in range(1, i % 3 + 1)]
    assert executor.store.live_blocks() == 1 + sum(len(r) for r in out)
    assert executor.run([]) == []


def test_multiple_input_groups(executor):
    a, b, c = (executor.store.put(Batch.from_records(v)) for v in ([1], [2, 3], ["x"]))
    [[ref]] = executor.run([Task(echo_groups, 0, [[a, b], [], [c]], "cogroup, partition 0")])
    assert executor.store.get(ref).to_records() == [0, 2, 0, 1, 1, 2, 3, "x"]


def test_user_exception_raises_task_failed_and_leaks_no_blocks(executor):
    before = shm_files(executor.store)
    inp = executor.store.put(Batch.from_records([1]))
    tasks = [Task(fail_on_odd, i, [[inp]], f"flaky-1 at 00:00:02, partition {i}") for i in range(6)]
    with pytest.raises(TaskFailed) as info:
        executor.run(tasks)
    err = info.value
    assert str(err).startswith("flaky-1 at 00:00:02, partition 1: ValueError: boom 1")
    cause = err.__cause__                                    # the task's traceback, shown once: in the cause's
    shown = "".join(traceback.format_exception(cause)) if cause.__traceback__ is not None else str(err)
    assert "fail_on_odd" in shown and "fail_on_odd" in err.remote_traceback
    assert err.label == "flaky-1 at 00:00:02, partition 1"
    assert isinstance(err.__cause__, ValueError) and str(err.__cause__) == "boom 1"
    assert executor.store.live_blocks() == 1
    executor.store.release([inp])                            # its file, if a worker needed one, goes with it
    assert shm_files(executor.store) == before


def test_user_exceptions_are_not_retried(executor, tmp_path):
    path = tmp_path / "attempts"
    with pytest.raises(TaskFailed, match="RuntimeError: deterministic"):
        executor.run([Task(count_attempts_then_raise(str(path)), 0, [], "once")])
    assert path.read_text() == "x"


def test_stored_blocks_are_isolated_from_task_mutation(executor):
    inp = executor.store.put(Batch.from_records([["a"], ["b"]]))
    [[out]] = executor.run([Task(mutate_objects, 0, [[inp]], "mutate")])
    assert executor.store.get(inp).to_records() == [["a"], ["b"]]
    assert executor.store.get(out).to_records() == [["a", "mutated"], ["b"]]


def test_functions_are_shipped_once_per_worker(executor):
    sent = getattr(executor, "stats", {}).get("fn_blobs_sent", 0)
    loaded = worker_fn_loads(executor)
    counter = ship(Counter())
    seen: dict[int, list[int]] = {}
    for _ in range(2):
        out = executor.run([Task(counter, i, [], f"count, partition {i}") for i in range(8)])
        for [ref] in out:
            pid, calls = executor.store.get(ref).to_records()
            seen.setdefault(pid, []).append(calls)
    # one object per process, reused by every task there: its calls count 1, 2, 3, ...
    assert sum(len(c) for c in seen.values()) == 16
    for calls in seen.values():
        assert sorted(calls) == list(range(1, len(calls) + 1))
    if executor.kind == "processes":
        assert executor.stats["fn_blobs_sent"] - sent == len(seen) <= executor.parallelism
    elif executor.kind == "dask":                            # pickled and scattered once; unpickled once per worker
        assert executor.stats["fn_blobs_sent"] - sent == 1
        assert len(seen) <= executor.parallelism and os.getpid() not in seen
        assert worker_fn_loads(executor) - loaded == len(seen)
    else:                                                    # in the driver: nothing is shipped
        assert list(seen) == [os.getpid()]
        assert getattr(executor, "stats", {}).get("fn_blobs_sent", 0) == sent


def test_nested_shipped_functions_reach_workers_dependencies_first(executor):
    c = ship(add_one)
    b = ship(functools.partial(apply_twice, c))
    a = ship(functools.partial(compose_task, b, c))     # a -> b -> c and a -> c
    out = executor.run([Task(a, i, [], f"nested, partition {i}") for i in range(4)])
    assert [values(executor, refs) for refs in out] == [[[i + 3]] for i in range(4)]


def test_raw_module_function_is_not_reshipped_every_run(pool):
    pool.run([Task(empty, i, [], "empty") for i in range(2 * pool.parallelism)])
    sent = pool.stats["fn_blobs_sent"]
    for _ in range(20):
        pool.run([Task(empty, 0, [], "empty")])
    assert pool.stats["fn_blobs_sent"] == sent


def test_small_outputs_come_back_in_the_reply_and_big_ones_as_files(pool):
    [small, [big1, big2]] = pool.run([Task(echo_groups, 0, [], "small"), Task(big_outputs, 1, [], "big")])
    assert pool.store.is_held(small[0]) and not pool.store.is_held(big1)
    assert values(pool, small) == [[0]]
    assert pool.store.get(big2).to_records()[:2] == [1, 2]
    files = [n for n in shm_files(pool.store) if not n.endswith("lock") and "spare" not in n]
    assert sorted(files) == sorted([big1.id, big2.id])


def test_unpicklable_function_raises_type_error_naming_it(pool):
    lock = threading.Lock()

    def holds_a_lock(index, groups):
        with lock:
            return []

    sent = pool.stats["tasks_sent"]
    with pytest.raises(TypeError, match=r"holds_a_lock.*test_conformance.*lock") as info:
        pool.run([Task(empty, 0, [], "ok"), Task(holds_a_lock, 1, [], "bad")])
    assert "pickle" in str(info.value.__cause__).lower() or info.value.__cause__ is not None
    assert pool.stats["tasks_sent"] == sent
    assert pool.store.live_blocks() == 0


def test_worker_killed_mid_task_is_replaced_and_the_task_retried(pool, tmp_path):
    marker = str(tmp_path / "killed-once")
    died = pool.stats["workers_died"]
    tasks = [Task(kill_self_once(marker), i, [], f"fragile, partition {i}") for i in range(4)]
    out = pool.run(tasks)
    assert [values(pool, refs) for refs in out] == [[[i]] for i in range(4)]
    assert pool.stats["workers_died"] - died == 1
    assert len(pool.worker_pids()) == pool.parallelism
    assert pool.store.live_blocks() == 4


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return False


def test_worker_that_died_while_idle_is_reaped_and_replaced_before_the_next_task(pool):
    died = pool.stats["workers_died"]
    victim = pool.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10                           # the reaper looks every 0.5 s
    while victim in pool.worker_pids() or os.path.exists(f"/proc/{victim}"):
        assert time.monotonic() < deadline, f"worker {victim} not reaped (zombie: {_zombie(victim)})"
        time.sleep(0.05)
    assert pool.stats["workers_died"] == died + 1
    assert len(pool.worker_pids()) == pool.parallelism
    with pytest.raises(ChildProcessError):
        os.waitpid(victim, os.WNOHANG)                         # already reaped by the pool
    out = pool.run([Task(echo_groups, i, [], f"after idle death, partition {i}") for i in range(4)])
    assert [values(pool, refs)[0] for refs in out] == [[i] for i in range(4)]


def test_task_that_always_kills_its_worker_fails_after_bounded_attempts(pool, tmp_path):
    marker = tmp_path / "attempts"
    ok = pool.store.put(Batch.from_records([1]))
    with pytest.raises(TaskFailed) as info:
        pool.run([Task(echo_groups, 0, [[ok]], "fine"), Task(always_kill_self(str(marker)), 1, [], "doomed-2, partition 1")])
    msg = str(info.value)
    assert msg.startswith("doomed-2, partition 1: ")
    assert "worker died (killed by signal SIGKILL)" in msg
    assert marker.read_text() == "x" * MAX_ATTEMPTS
    assert pool.store.live_blocks() == 1                      # the successful task's output was released
    [[ref]] = pool.run([Task(echo_groups, 3, [], "after")])   # the pool still works
    assert pool.store.get(ref).to_records() == [3]


def test_close_is_idempotent_and_frees_shared_memory(executor):
    executor = make_executor(executor.master, **executor.options)  # its own: this one gets closed
    executor.run([Task(echo_groups, i, [], "x") for i in range(4)])
    executor.store.put(Batch.from_records([1]))
    pids = executor.worker_pids() if hasattr(executor, "worker_pids") else []
    executor.close()
    executor.close()
    assert executor.store.live_blocks() == 0
    assert shm_files(executor.store) == []
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)                      # already reaped: no zombies, no orphans
    with pytest.raises(RuntimeError, match="closed"):
        executor.run([Task(empty, 0, [], "late")])


#: Per empty task: 2 ms in one machine; on Dask a task's round trip goes driver -> scheduler -> worker
#: -> scheduler -> driver over TCP, each hop a process that must get a core: a few ms on an idle 2-core
#: box, 46-119 ms measured at load 10-17. The bound stays below the executor's 0.5 s look at its futures
#: (EVENT_WAIT), so a task whose event is missed still fails it.
ROUND_TRIP = {"dask": 250e-3}


def test_empty_task_round_trip_is_fast(executor):
    executor.run([Task(empty, 0, [], "warm")])
    n = 200 if executor.kind != "dask" else 20
    start = time.perf_counter()
    for _ in range(n):
        executor.run([Task(empty, 0, [], "empty")])
    per_task = (time.perf_counter() - start) / n
    assert per_task < ROUND_TRIP.get(executor.kind, 2e-3), f"{per_task * 1e6:.0f} us per empty task"


@pytest.mark.parametrize("master", ["", "local[0]", "spark://host:7077", "local[x]", "local[2"])
def test_unknown_master_names_the_accepted_forms(master):
    with pytest.raises(ValueError, match=r"'local', 'local\[N\]'.*'local\[\*\]'"):
        make_executor(master)


# -- driver death --------------------------------------------------------------------------
def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **extra}


class _Lines:
    """Lines from a subprocess's stdout pipe, each read with a bounded wait (no buffering surprises)."""

    def __init__(self, proc, stderr_path):
        self.proc, self.fd, self.buf, self.stderr_path = proc, proc.stdout.fileno(), b"", stderr_path

    def read(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            chunk = os.read(self.fd, 65536) if ready else None
            if not chunk:
                self.proc.kill()
                self.proc.wait()
                what = "exited" if chunk == b"" else f"printed no line within {timeout} s"
                raise AssertionError(f"the driver {what}; its stderr:\n{self.stderr_path.read_text()}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def _wait_exited(pid: int, timeout: float) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise TimeoutError(f"worker {pid} still running {timeout} s after its driver died")
    finally:
        os.close(fd)


_DRIVER = textwrap.dedent("""
    import json, sys
    from runnel.batch import Batch
    from runnel.executors import Task, make_executor
    from test_conformance import big_outputs
    ex = make_executor("{master}", stage_kind="processes", inline_bytes=0)
    out = ex.run([Task(big_outputs, i, [], str(i)) for i in range(4)])
    ex.store.put(Batch.from_records([1, 2, 3]))
    print(json.dumps({{"dir": ex.store.directory, "prefix": ex.store.prefix, "pids": ex.worker_pids(),
                      "files": ex.store.files()}}), flush=True)
    sys.stdin.read()
""")


def test_sigkilled_driver_leaves_no_segments_and_no_workers(pool, tmp_path):
    stderr = tmp_path / "stderr"
    with open(stderr, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", _DRIVER.format(master=pool.master)], env=_env(),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    lines = _Lines(proc, stderr)
    try:
        info = json.loads(lines.read(180))
        assert len(info["files"]) > 5 and len(info["pids"]) == 2
        proc.kill()
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    for pid in info["pids"]:
        _wait_exited(pid, 30)
    assert [n for n in os.listdir(info["dir"]) if n.startswith(info["prefix"])] == []


def test_files_of_a_driver_killed_with_its_workers_are_swept_by_the_next_driver(pool, tmp_path):
    from runnel.storage.store import SharedMemoryStore
    stderr = tmp_path / "stderr"
    with open(stderr, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", _DRIVER.format(master=pool.master)], env=_env(),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    lines = _Lines(proc, stderr)
    try:
        info = json.loads(lines.read(180))
        for pid in info["pids"]:                      # killed together: no worker gets to clean up
            os.kill(pid, signal.SIGSTOP)
        proc.kill()
        assert proc.wait(10) == -signal.SIGKILL
        for pid in info["pids"]:
            os.kill(pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    for pid in info["pids"]:
        _wait_exited(pid, 30)
    left = [n for n in os.listdir(info["dir"]) if n.startswith(info["prefix"])]
    assert len(left) > 5 and info["prefix"] + "lock" in left
    SharedMemoryStore(directory=info["dir"]).close()   # the next driver's store sweeps them
    assert [n for n in os.listdir(info["dir"]) if n.startswith(info["prefix"])] == []


_BUSY_DRIVER = textwrap.dedent("""
    import json, sys
    from runnel.executors import Task, make_executor
    from test_conformance import announce_and_sleep
    ex = make_executor("{master}", stage_kind="processes", inline_bytes=0)
    ex.processes
    print(json.dumps({{"dir": ex.store.directory, "prefix": ex.store.prefix, "pids": ex.worker_pids()}}),
          flush=True)
    ex.run([Task(announce_and_sleep, i, [], str(i)) for i in range(2)])
""")


def announce_and_sleep(index, groups):
    os.write(1, f"started {os.getpid()}\n".encode())  # workers share the driver's stdout; one atomic write
    time.sleep(120)
    return []


def test_workers_busy_in_a_task_exit_when_the_driver_is_sigkilled(pool, tmp_path):
    stderr = tmp_path / "stderr"
    with open(stderr, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", _BUSY_DRIVER.format(master=pool.master)], env=_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    lines = _Lines(proc, stderr)
    try:
        info = json.loads(lines.read(180))
        started = [lines.read(120) for _ in range(2)]
        assert all(line.startswith("started ") for line in started), started
        started = {int(line.split()[1]) for line in started}
        assert started == set(info["pids"])
        proc.kill()
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    for pid in info["pids"]:
        _wait_exited(pid, 30)
    assert [n for n in os.listdir(info["dir"]) if n.startswith(info["prefix"])] == []


def test_functions_of_past_runs_are_forgotten(pool, monkeypatch):
    from runnel.executors import shipping
    monkeypatch.setattr(shipping, "RECENT", 4)
    for k in range(40):
        def per_run(index, groups, k=k):
            return [Batch.from_values([k])]
        [[ref]] = pool.run([Task(per_run, 0, [], f"run {k}")])
        assert pool.store.get(ref).to_records() == [k]
    # bounded by the LRU of recently shipped functions plus what this module holds
    assert len(pool._blobs) <= 4 + 8
    assert all(len(w.seen) <= 4 + 8 for w in pool.processes._workers)


_COLD_NUMBA = textwrap.dedent("""
    import sys
    sys.path.insert(0, {kdir!r})
    import numpy as np
    from runnel.batch import Batch
    from runnel.executors import Task, make_executor
    import numba_kernel                          # compiles (cache=True) into its empty __pycache__

    def use_kernel(index, groups):
        return [Batch.from_values([int(numba_kernel.total(np.arange(index + 10)))])]

    for attempt in range(2):
        numba_kernel.total(np.arange(3))          # the driver warms, as runnel.kernels.warm() does
        with make_executor("local[2]", stage_kind="processes", inline_bytes=0) as ex:
            out = ex.run([Task(use_kernel, i, [], str(i)) for i in range(4)])
            print([ex.store.get(r).to_records() for [r] in out], flush=True)
""")


def test_pool_starts_twice_on_a_cold_numba_cache(tmp_path):
    """A user's ``cache=True`` kernel, compiled by the driver into an empty cache while pools start
    and their workers read it, twice (numba#4807, numba#10128).

    Only the user's kernel is cold: its cache is the ``__pycache__`` next to its fresh source file.
    runnel's own kernels keep their cache (an empty ``NUMBA_CACHE_DIR`` made ``warm()`` compile all of
    them again: ~40 s alone, over 280 s at load 20); they are compiled cold by the driver before any
    worker starts in the first pool of every fresh checkout's run (CI), as ``warm_kernels`` does.
    """
    kdir = tmp_path / "kernels"
    kdir.mkdir()
    (kdir / "numba_kernel.py").write_text(textwrap.dedent("""
        import numba

        @numba.njit(cache=True, nogil=True)
        def total(x):
            s = 0
            for v in x:
                s += v
            return s
    """))
    env = _env()
    env.pop("NUMBA_CACHE_DIR", None)                 # the kernel caches next to its source
    proc = subprocess.run([sys.executable, "-c", _COLD_NUMBA.format(kdir=str(kdir))], env=env,
                          capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr
    expected = str([[sum(range(i + 10))] for i in range(4)])
    assert proc.stdout.splitlines() == [expected, expected]
    assert any((kdir / "__pycache__").glob("numba_kernel.total-*.nbi"))
