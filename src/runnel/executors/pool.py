"""The process half of ``local[N]``: N worker processes over shared-memory blocks.

Workers are fresh interpreters (``python -m runnel.executors.worker``), each
talking to the driver over its own socketpair wrapped in a
``multiprocessing.connection.Connection``, plus a lifeline pipe whose EOF
tells it the driver died (see ``worker.py``). Tasks name their input blocks;
the worker memory-maps them from the driver's :class:`SharedMemoryStore`,
writes its outputs there as ``<prefix>w<worker>.<n>`` files and replies with
their refs, which the driver *adopts*: the driver owns every block's lifetime.
Outputs of at most 64 KiB travel in the reply instead and the driver holds
them in memory (no file to write, map and unlink for a tiny or empty partition).

Dispatch
--------
Each worker runs one task at a time. ``run`` pickles every task up front
(so an unpicklable function raises ``TypeError`` before anything starts),
then loops: hand the next pending task to each idle worker, block in
``multiprocessing.connection.wait`` on the busy workers, record the reply.
One message each way per task; function blobs a worker lacks ride along
with the task that needs them.

State (changed only under ``_run_lock``: by ``run``, ``close`` and the reaper thread)
-----------------------------------------------------------------------------------
``_closed``
    Set by ``close`` (under ``_close_lock``) before it waits for the run lock: a
    run in progress has its workers killed, sees them die and raises
    RuntimeError instead of replacing them, so ``close`` never waits for a
    task that may not end (``ssc.stop()`` stops the Context after waiting 30 s
    for a running batch).
``_workers: list[_Worker]``
    The live workers, one slot per unit of parallelism. A dead worker's slot
    gets a fresh worker (new ``wid``, so its file names never clash). Between
    runs a reaper thread checks every ``reap_interval`` (``Popen.poll``, which
    also reaps the zombie) for workers that died while idle and replaces them.
``_Worker.seen: set[fn id]``
    Functions that worker holds; ``_Worker.forget`` ids to tell it to drop.
``_Worker.seq``
    The task index it is running in the current ``run`` (None when idle);
    ``_Worker.sent`` when it was sent. ``_busy`` sums send-to-reply times of
    the current ``run``, added to the owner's ``activity.busy`` as it ends.
``_blobs: BlobCache``
    One pickled blob per live FnRef, made once per driver.
``stats``
    Counters: tasks sent, function blobs sent, workers started, workers died.

Failures
--------
A user exception is reported as :class:`TaskFailed` and never retried; a
worker that dies (EOF on its connection) is replaced, its leftover files
removed, and its task retried, :data:`~runnel.executors.base.MAX_ATTEMPTS`
attempts in all. Anything else that escapes ``run`` (Ctrl-C) kills the busy
workers (their results are unknown) and releases the blocks of the run.
"""

from __future__ import annotations

import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import weakref
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from time import perf_counter

from runnel.accumulators import merge_task_updates
from runnel.executors.activity import Activity
from runnel.executors.base import MAX_ATTEMPTS, Executor, Task, TaskFailed
from runnel.executors.shipping import BlobCache, dumps, ship
from runnel.memory import worker_env
from runnel.storage.ipc import read_batch
from runnel.storage.store import BlockRef, SharedMemoryStore

__all__ = ["ProcessPoolExecutor"]

_SRC_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_DUMPS = pickle.dumps
_LOADS = pickle.loads
_PROTO = pickle.HIGHEST_PROTOCOL


_warmed = False

#: A task is lent spare files (storage/spares.py) for at most this many of its inputs, those of at least LEND_MIN bytes.
LEND_MAX = 4
LEND_MIN = 256 * 1024


def warm_kernels() -> bool:
    """Compile/load ``runnel.kernels`` in the driver so workers only *read* Numba's cache.

    Once per process: after the first call the cache is filled and the
    driver's dispatchers are compiled (a second ``warm()`` costs ~1.5 s).
    """
    global _warmed
    if _warmed:
        return True
    try:
        from runnel.kernels import warm
    except ImportError:
        return False
    warm()
    _warmed = True
    return True


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Worker:
    __slots__ = ("wid", "tag", "proc", "conn", "lifeline", "seen", "forget", "seq", "ready", "lent", "sent")

    def __init__(self, wid, proc, conn, lifeline):
        self.wid = wid
        self.tag = f"w{wid}."
        self.proc = proc
        self.conn = conn
        self.lifeline = lifeline
        self.seen: set[str] = set()
        self.forget: list[str] = []
        self.seq: int | None = None
        self.ready = False
        self.lent: list = []   # spare files lent with the running task (storage/spares.py)
        self.sent = 0.0        # perf_counter when the running task was sent (its slot's busy time starts)

    def dispose(self, timeout: float = 5.0) -> int | None:
        """Ask the worker to exit (lifeline byte), reap it (kill after ``timeout``), close fds."""
        if self.lifeline is not None:
            try:
                os.write(self.lifeline, b"q")
            except OSError:
                pass
            os.close(self.lifeline)
            self.lifeline = None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.conn.close()
        return code


def _shutdown(workers: list) -> None:
    for w in workers:
        if w.lifeline is not None:
            try:
                os.write(w.lifeline, b"q")
            except OSError:
                pass
    for w in workers:
        w.dispose()
    workers.clear()


class ProcessPoolExecutor(Executor):
    """``n`` worker processes reading and writing blocks in a driver's shared-memory store.

    The process half of ``local[N]``: a
    :class:`~runnel.executors.parallel.ParallelExecutor` starts one on the
    first stage that needs processes and shares with it its store (blocks
    held in the driver's memory are written to shared memory just before a
    worker reads them), its cache of function blobs and its counters.

    Parameters
    ----------
    n : int
        Number of workers.
    store : SharedMemoryStore
        The owner's store (not closed by :meth:`close`).
    blobs : BlobCache
        Pickled user functions, one per live FnRef.
    stats : dict
        Counters updated here: tasks sent, function blobs sent, workers started and died.
    start_timeout : float
        Seconds to wait for the workers to start before raising RuntimeError.
    reap_interval : float
        Seconds between checks for workers that died while idle (a reaper
        thread replaces them, so none stays a zombie until the next task).
    activity : Activity, optional
        The owner's: a task's time from its send to its reply is added to its ``busy``.
    """

    def __init__(self, n: int, store: SharedMemoryStore, blobs: BlobCache, stats: dict,
                 start_timeout: float = 60.0, reap_interval: float = 0.5, activity: Activity | None = None) -> None:
        if n < 1:
            raise ValueError(f"a pool needs at least one worker, got {n}")
        self.parallelism = n
        if activity is not None:
            self._activity = activity
        warm_kernels()
        self.store = store
        self.stats = stats
        for key in ("tasks_sent", "fn_blobs_sent", "workers_started", "workers_died"):
            self.stats.setdefault(key, 0)
        self._blobs = blobs
        self._wids = itertools.count()
        self._run_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._closed = False
        self._workers: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)
        self._tasks: Sequence[Task] | None = None         # the tasks of the run in progress (describe_state)
        self._stop_reaper = threading.Event()
        try:
            for _ in range(n):
                self._workers.append(self._spawn())
            for w in self._workers:
                self._await_ready(w, start_timeout)
        except BaseException:
            self.close()
            raise
        self._reaper = threading.Thread(target=self._reap, args=(reap_interval,), daemon=True,
                                        name="runnel-pool-reaper")
        self._reaper.start()

    def _reap(self, interval: float) -> None:
        """Replace workers that died while idle (OOM killer, a stray kill), so none stays a zombie.

        Runs between ``run`` calls only (it takes the run lock without waiting):
        inside a run, a death is seen on the worker's connection.
        """
        while not self._stop_reaper.wait(interval):
            if not self._run_lock.acquire(blocking=False):
                continue
            try:
                if self._closed:
                    return
                for w in list(self._workers):
                    if w.seq is None and w.proc.poll() is not None:   # poll() reaps the zombie
                        self.stats["workers_died"] += 1
                        self._replace(w)
            except Exception:          # a spawn that failed: the next run reports it
                pass
            finally:
                self._run_lock.release()

    # -- workers ---------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        wid = next(self._wids)
        ours, theirs = socket.socketpair()
        r, w = os.pipe()
        env = dict(os.environ, **worker_env())    # keep freed memory as the driver does (runnel.memory)
        env["PYTHONPATH"] = os.pathsep.join([_SRC_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runnel.executors.worker", str(theirs.fileno()), str(r)],
                pass_fds=(theirs.fileno(), r), env=env, stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            os.close(w)
            raise
        finally:
            theirs.close()
            os.close(r)
        conn = Connection(ours.detach())
        store = self.store
        conn.send_bytes(_DUMPS(("init", [os.path.abspath(p) if p in ("", ".") else p for p in sys.path],
                                store.directory, store.prefix, f"w{wid}.",
                                store.compression), _PROTO))
        self.stats["workers_started"] += 1
        return _Worker(wid, proc, conn, w)

    def _await_ready(self, w: _Worker, timeout: float) -> None:
        try:
            ok = w.conn.poll(timeout)
            msg = _LOADS(w.conn.recv_bytes()) if ok else None
        except (EOFError, OSError):
            msg = None
            ok = True
        if not ok:
            raise RuntimeError(f"runnel worker {w.wid} did not start within {timeout} s")
        if msg is None or msg[0] != "ready":
            raise RuntimeError(f"runnel worker {w.wid} failed to start ({describe_exit(w.proc.wait(5))}); "
                               f"see its traceback on stderr")
        w.ready = True

    def _replace(self, w: _Worker, kill: bool = False) -> int | None:
        """Reap a dead (or, with ``kill``, a busy) worker, remove its unadopted files, start a new one."""
        if kill:
            w.proc.kill()
        code = w.dispose()
        self.store.remove_unowned(w.tag)
        for name, _ in w.lent:  # written or not, what the dead worker held is unknown
            self.store.spares.discard(name)
        w.lent = []
        if not self._closed:              # closing: the slot stays with the dead worker (close reaps it again)
            self._workers[self._workers.index(w)] = self._spawn()
        return code

    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    def describe_state(self) -> str:
        """Whether a run is on, then per worker: pid, alive or how it exited, the task it runs and since when.

        A busy worker that is alive is asked (SIGUSR1, see ``worker.py``) to print its threads' stacks
        to stderr, which it shares with the driver.
        """
        tasks, now = self._tasks, perf_counter()
        lines = [f"{self.parallelism} workers{' (closed)' if self._closed else ''}, run "
                 + (f"in progress ({len(tasks)} tasks)" if tasks is not None else "not in progress")
                 + f", reaper {'alive' if self._reaper.is_alive() else 'stopped'}"]
        for w in list(self._workers):
            code = w.proc.poll()
            line = f"    w{w.wid} pid {w.proc.pid}: {'alive' if code is None else describe_exit(code)}, "
            seq = w.seq
            if seq is None:
                line += "idle" if w.ready else "not ready yet"
            else:
                label = tasks[seq].label if tasks is not None and seq < len(tasks) else "?"
                line += f"running task {seq} ({label}) for {now - w.sent:.1f} s"
                if code is None and w.ready and self._signal_dump(w.proc.pid):
                    line += ", its stacks are on stderr"
            lines.append(line)
        return "\n".join(lines)

    @staticmethod
    def _signal_dump(pid: int) -> bool:
        sig = getattr(signal, "SIGUSR1", None)
        if sig is None:
            return False
        try:
            os.kill(pid, sig)
        except OSError:
            return False
        return True

    # -- shipping ------------------------------------------------------------------------
    def _prepare(self, task: Task) -> tuple[bytes, list[str], list[int]]:
        """The pickled task, the function blobs it needs, and the sizes spares are lent for."""
        data, refs = dumps((ship(task.fn), task.index, task.inputs, task.label))
        lend = sorted((r.nbytes for g in task.inputs for r in g if r.nbytes >= LEND_MIN), reverse=True)
        return data, self._blobs.order(refs), lend[:LEND_MAX]

    def _send(self, w: _Worker, seq: int, payload: tuple[bytes, list[str], list[int]]) -> None:
        data, fn_ids, lend = payload
        blobs = []
        for fn_id in fn_ids:
            if fn_id not in w.seen:
                blobs.append((fn_id, self._blobs.data(fn_id)))
                w.seen.add(fn_id)
        forget, w.forget = w.forget, []
        w.lent = self._lend(lend)
        w.sent = perf_counter()
        w.seq = seq                       # before sending: interrupted from here on, the worker owes a reply
        w.conn.send_bytes(_DUMPS(("task", seq, blobs, forget, data, w.lent), _PROTO))
        self.stats["tasks_sent"] += 1
        self.stats["fn_blobs_sent"] += len(blobs)

    def _lend(self, sizes: list[int]) -> list:
        """Spare files for a task's outputs, LEND_MAX at most: a best fit for each of its larger
        inputs' sizes (a stream's outputs tend to be the size of some input: state and window
        tables, partials), then the spares kept last (in a stream, the blocks released in the
        last batch are the size of those written in this one: W3's map tasks wrote their buckets
        into fresh files every batch, their input being the only size they were lent)."""
        spares = self.store.spares
        if spares is None or not len(spares):
            return []
        lent = [s for size in sizes for s in spares.take(size)]
        return lent + spares.take_newest(LEND_MAX - len(lent))

    def _settle(self, w: _Worker, unused: list) -> None:
        """The worker's reply came: spares it did not write go back to the pool."""
        w.lent = []
        if unused and self.store.spares is not None:
            self.store.spares.give(unused)

    def _collect_dead_fns(self) -> None:
        dead = self._blobs.dead
        while dead:
            fn_id = dead.popleft()
            self._blobs.drop(fn_id)
            for w in self._workers:
                if fn_id in w.seen:
                    w.seen.discard(fn_id)
                    w.forget.append(fn_id)

    def check_shippable(self, refs) -> None:
        for ref in refs:
            self._blobs.blob(ref)

    # -- run -------------------------------------------------------------------------------
    def run(self, tasks: Sequence[Task], kind: str | None = None) -> list[list[BlockRef]]:
        with self._run_lock:
            if self._closed:
                raise RuntimeError("the executor is closed")
            if not tasks:
                return []
            self._collect_dead_fns()
            refs = [r for t in tasks for g in t.inputs for r in g]
            # FnRefs stay alive (and their blobs cached) while the tasks that refer to them do
            payloads = [self._prepare(t) for t in tasks]
            self.store.spill(refs)
            self._tasks = tasks
            try:
                return self._run(tasks, payloads)
            finally:
                self._tasks = None

    def _run(self, tasks: Sequence[Task], payloads: list) -> list[list[BlockRef]]:
        n = len(tasks)
        results: list[list[BlockRef] | None] = [None] * n
        attempts = [0] * n
        failures: dict[int, TaskFailed] = {}
        pending = deque(range(n))
        busy: dict[Connection, _Worker] = {}
        stop_at = n                                       # no new task at or after the first failure
        store = self.store
        self._busy = 0.0                                  # task-seconds of this run: sends to replies
        try:
            while True:
                for w in self._workers:
                    if w.seq is None and w.conn not in busy:
                        while pending and pending[0] >= stop_at:
                            pending.popleft()
                        if not pending:
                            break
                        i = pending.popleft()
                        attempts[i] += 1
                        try:
                            self._send(w, i, payloads[i])
                        except OSError:                   # died while idle (OOM killer, say)
                            stop_at = self._died(w, i, tasks, attempts, pending, failures, stop_at)
                            continue
                        busy[w.conn] = w
                if not busy:
                    if any(i < stop_at for i in pending):
                        continue
                    break
                for conn in wait(list(busy)):
                    w = busy.pop(conn)
                    try:
                        msg = _LOADS(conn.recv_bytes())
                    except (EOFError, OSError):
                        stop_at = self._died(w, w.seq, tasks, attempts, pending, failures, stop_at)
                        continue
                    kind = msg[0]
                    if kind == "ready":
                        w.ready = True
                        if w.seq is not None:             # a task was queued behind the handshake
                            busy[conn] = w
                        continue
                    self._busy += perf_counter() - w.sent
                    i, w.seq = msg[1], None
                    self._settle(w, msg[-1])
                    if kind == "ok":
                        results[i] = self._outputs(msg[2])
                        merge_task_updates(msg[3])
                    else:
                        _, _, type_name, message, tb, blob, _ = msg
                        cause = None
                        if blob is not None:
                            try:
                                cause = _LOADS(blob)
                            except Exception:
                                cause = None
                        failures[i] = TaskFailed(tasks[i].label, type_name, message, tb, cause)
                        stop_at = min(stop_at, i)
        except BaseException:
            self.activity.add_busy(self._busy)
            # interrupted: what a worker sent a task will still reply is unknown (also one whose reply was
            # being read), so replace it: a later run must not take that reply for its own task's
            for w in [w for w in self._workers if w.seq is not None or w.conn in busy]:
                w.seq = None
                self._replace(w, kill=True)
            for w in self._workers:
                w.seq = None
            self._release(results)
            raise
        self.activity.add_busy(self._busy)
        if failures:
            self._release(results)
            raise failures[min(failures)]
        return results  # type: ignore[return-value]

    def _outputs(self, outputs: list) -> list[BlockRef]:
        """A task's outputs as blocks of the store: files adopted, small batches (IPC bytes) held."""
        refs = [out for out in outputs if type(out) is BlockRef]
        self.store.adopt(refs)
        return [out if type(out) is BlockRef else self.store.put(read_batch(out)) for out in outputs]

    def _died(self, w: _Worker, i: int | None, tasks, attempts, pending, failures, stop_at: int) -> int:
        """A worker died (running task ``i``, or idle): replace it, retry or fail the task; new ``stop_at``."""
        if w.seq is not None:
            self._busy += perf_counter() - w.sent
        w.seq = None
        self.stats["workers_died"] += 1
        code = self._replace(w)
        if self._closed:
            raise RuntimeError("the executor was closed while a stage ran on its worker processes")
        if i is None:
            return stop_at
        if attempts[i] < MAX_ATTEMPTS:
            pending.appendleft(i)
            return stop_at
        failures[i] = TaskFailed(tasks[i].label, "WorkerDied",
                                 f"worker died ({describe_exit(code)}) on each of {attempts[i]} attempts")
        return min(stop_at, i)

    def _release(self, results) -> None:
        for refs in results:
            if refs:
                self.store.release(refs)

    def close(self) -> None:
        """Stop the workers and remove their leftover files. Idempotent. A run in progress is not waited
        for: its workers are killed and it raises RuntimeError."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._stop_reaper.set()
        if not self._run_lock.acquire(blocking=False):    # a run (or the reaper) holds it: end the run
            for w in list(self._workers):
                w.proc.kill()
            self._run_lock.acquire()
        try:
            self._finalizer()
        finally:
            self._run_lock.release()
        self.store.remove_unowned("w")   # the owner's store lives on: drop what workers left behind
