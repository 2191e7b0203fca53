"""``dask://host:port``: stages as Dask tasks on a Dask distributed cluster.

A stage's tasks are submitted together, each as one Dask task
(:func:`~runnel.executors.dask_worker.run_task`) whose dependencies are the
futures of the blocks it reads — a shuffle is ordinary task dependencies:
reducer j depends on bucket j of every map task. Blocks stay in worker
memory (:class:`~runnel.executors.dask_store.DaskStore`); the driver fetches
only what it reads (``collect``, ``foreach_rdd``, checkpoints).

Each task tells the driver its outputs' sizes (a BlockRef carries rows and
bytes) or its error in a Dask event (``log_event``) that travels with the
news that it finished, so a stage costs one round trip through the scheduler.

Placement: partition i has an owner worker, ``workers[i % n]`` over the
sorted worker addresses; task i of every stage (map task i, reducer i, the
update of state partition i, window partition i) is pinned to it, so state
and window tables stay on their worker batch after batch, as Dask's
locality docs describe (``workers=[owner]``). The restriction is *loose*
(``allow_other_workers=True``): while the owner lives Dask runs the task
there, and when it dies the task and the recomputation of what it held go to
another worker instead of waiting forever for a worker at a dead address;
owners are re-dealt over the workers alive.

User functions are pickled once per driver (:class:`BlobCache`) and
scattered once; a task names its functions' futures, so Dask fetches each
to a worker the first time a task there needs it, and the worker keeps the
unpickled function (``dask_worker._fns``). Numba kernels are loaded on each
worker by a worker plugin (:class:`~runnel.executors.dask_worker.WarmKernels`),
after the driver compiled them.

Stages whose inputs are all in the driver and small (``inline_bytes``, the
conf key ``runnel.executor.inlineBytes``) run in the driver, as on ``local[N]``.

Failures
--------
A user exception is caught on the worker and reported as
:class:`~runnel.executors.base.TaskFailed` for the first failing task in task
order; it is never retried (every task of the stage has run; outputs of the
stage are released). A worker lost mid-stage: Dask reruns the tasks it was
running elsewhere; blocks it held are recomputed from their lineage
(``DaskStore.revive``) when a task needs them, and the tasks that could not
run are submitted again, :data:`RECOVERIES` times at most per stage.

State (changed by the thread that calls ``run``)
------------------------------------------------
``_workers``       the sorted worker addresses partition owners are dealt from;
                   refreshed every ``refresh`` seconds and after a failure;
``_blob_futures``  fn id -> the future of its scattered blob (dropped when its FnRef dies);
``stats``          counters: tasks and stages submitted, function blobs sent, recoveries.
"""

from __future__ import annotations

import itertools
import pickle
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence

from runnel.accumulators import merge_task_updates
from runnel.executors.base import Executor, Task, TaskFailed, run_inline
from runnel.executors.shipping import BlobCache, dumps, ship
from runnel.executors.dask_comm import RETRY_SECONDS, RETRY_SECONDS_KEY, ClusterUnreachable
from runnel.executors.dask_store import DEPTH_LIMIT, GONE, DaskStore, Recipe
from runnel.executors.dask_worker import WarmKernels, describe, forget_soon, run_pinned
from runnel.executors.kinds import INLINE_BYTES_KEY
from runnel.executors.parallel import INLINE_BYTES
from runnel.executors.pool import warm_kernels
from runnel.storage.store import BlockRef

__all__ = ["DaskExecutor", "require_distributed", "RECOVERIES", "ClusterUnreachable"]

#: Times a stage is submitted again after losing tasks to dead workers.
RECOVERIES = 5
#: Seconds between looks at the futures of a stage while waiting for its tasks' events.
EVENT_WAIT = 0.5


def require_distributed():
    """The ``distributed`` module, or an ImportError saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("the dask:// master needs Dask distributed: pip install 'runnel[dask]' "
                          "(or pip install 'dask[distributed]')") from exc
    return distributed


def _key_label(label: str) -> str:
    """A Dask key prefix from a task label: the dashboard groups tasks by it."""
    head = re.sub(r", partition \d+$", "", label)
    return re.sub(r"[^A-Za-z0-9_.]+", "_", head).strip("_")[:60] or "task"


class DaskExecutor(Executor):
    """Runs stages on a Dask distributed cluster (see the module docstring).

    Parameters
    ----------
    cluster : str or distributed.Client
        ``"dask://host:port"`` (or ``tcp://host:port``) of a running scheduler,
        or a connected ``Client`` (not closed by :meth:`close`).
    conf : mapping, optional
        Read at every stage for ``runnel.executor.inlineBytes`` (overrides
        ``inline_bytes``); at start for ``runnel.dask.retrySeconds``: how long a
        call to the scheduler is retried while its connection is down
        (:mod:`runnel.executors.dask_comm`) before the batch fails with
        :class:`~runnel.executors.dask_comm.ClusterUnreachable`.
    depth_limit : int
        Lineage depth after which a block is backed up to the driver
        (:mod:`runnel.executors.dask_store`).
    connect_timeout : float
        Seconds to wait for the scheduler.
    refresh : float
        Seconds between looks at which workers are alive.
    inline_bytes : int
        A stage whose input blocks are all in the driver (put there, or
        fetched) and total at most this many bytes runs in the driver, its
        outputs kept there: a 10-record or empty batch costs no round trip
        to the cluster. 0: every stage runs as Dask tasks (the tests' setting).

    Examples
    --------
    >>> from distributed import Client, LocalCluster                         # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))     # doctest: +SKIP
    >>> ssc = StreamingContext(client, 1)                                    # doctest: +SKIP
    """

    def __init__(self, cluster, conf: Mapping | None = None, depth_limit: int | None = None,
                 connect_timeout: float = 30.0, refresh: float = 2.0, inline_bytes: int = INLINE_BYTES) -> None:
        distributed = require_distributed()
        if isinstance(cluster, str):
            address = cluster.strip()
            address = "tcp://" + address[len("dask://"):] if address.startswith("dask://") else address
            self.client = distributed.Client(address, timeout=connect_timeout, set_as_default=False)
            self._owns_client = True
        else:
            self.client = cluster
            self._owns_client = False
        self._distributed = distributed
        self.master = "dask://" + self.client.scheduler.address.split("://", 1)[-1]
        self._conf = conf
        self.inline_bytes = inline_bytes
        warm_kernels()                     # workers on this machine then only read Numba's cache
        self.client.register_plugin(WarmKernels())
        retry = (conf or {}).get(RETRY_SECONDS_KEY)
        self.store = DaskStore(self.client, DEPTH_LIMIT if depth_limit is None else depth_limit,
                               self.client.scheduler.address, RETRY_SECONDS if retry is None else float(retry))
        self.stats = {"tasks_sent": 0, "stages": 0, "fn_blobs_sent": 0, "recoveries": 0}
        self._blobs = BlobCache()
        self._blob_futures: dict = {}
        self._keys = itertools.count()
        self._refresh = refresh
        self._workers: list[str] = []
        self._seen_at = 0.0
        self._lock = threading.Lock()
        self._closed = False
        self._topic = f"runnel-{uuid.uuid4().hex}"
        self._inbox: dict = {}
        self._expected: set = set()
        self._inbox_cond = threading.Condition()
        self.client.subscribe_topic(self._topic, self._on_event)
        self._look_at_workers()

    # -- the cluster ------------------------------------------------------------------------
    def _look_at_workers(self) -> None:
        info = self.store.call("asking which workers are alive", self.client.scheduler_info)["workers"]
        self._workers = sorted(info)
        self._threads = sum(w.get("nthreads", 1) for w in info.values()) or 1
        self._seen_at = time.monotonic()

    @property
    def parallelism(self) -> int:
        """Worker threads in the cluster (at least 1): the default number of partitions."""
        return max(1, self._threads)

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's address (shown by runnel's UI)."""
        try:
            return self.client.dashboard_link
        except Exception:
            return None

    def worker_addresses(self) -> list[str]:
        """The workers partition owners are dealt from (as last seen)."""
        return list(self._workers)

    def owner(self, index: int) -> str | None:
        """The worker partition ``index`` is pinned to."""
        return self._workers[index % len(self._workers)] if self._workers else None

    def _owner_of(self, recipe) -> str | None:
        """For a recipe submitted again: its function blobs scattered anew if lost; its owner worker."""
        if all(self._blobs.has(i) for i in recipe.fn_ids):       # else its FnRef is gone: keep the old
            recipe.blobs = self._blob_futures_of(recipe.fn_ids, recipe.label)
        return self.owner(recipe.owner)

    def kind_of(self, tasks: Sequence[Task]) -> str:
        return "dask"

    def describe_state(self) -> str:
        """The workers last seen, the task events awaited and not yet come, the counters."""
        waiting = sorted(self._expected - set(self._inbox))
        return (f"{self.master}{' (closed)' if self._closed else ''}, workers last seen {self._workers}; "
                f"{len(waiting)} task events awaited {waiting[:8]}{' ...' if len(waiting) > 8 else ''}; "
                + ", ".join(f"{k} {v}" for k, v in self.stats.items()))

    # -- functions ------------------------------------------------------------------------------
    def check_shippable(self, refs) -> None:
        for ref in refs:
            self._blobs.blob(ref)

    def _collect_dead_fns(self) -> None:
        dead = self._blobs.dead
        gone = []
        while dead:
            fn_id = dead.popleft()
            self._blobs.drop(fn_id)
            if self._blob_futures.pop(fn_id, None) is not None:
                gone.append(fn_id)
        if gone:
            self.client.run(forget_soon, gone, wait=False)

    def _blob_futures_of(self, fn_ids: list[str], label: str = "") -> list:
        """Futures of the functions' blobs, scattered to every worker (so a lost worker does not lose them)."""
        missing = [i for i in fn_ids if i not in self._blob_futures or self._blob_futures[i].status in GONE]
        if missing:
            futures = self.store.call(f"sending the functions of {label or 'a task'}", lambda: self.client.scatter(
                [self._blobs.data(i) for i in missing], hash=False, broadcast=True))
            self._blob_futures.update(zip(missing, futures))
            self.stats["fn_blobs_sent"] += len(missing)
        return [self._blob_futures[i] for i in fn_ids]

    # -- run -----------------------------------------------------------------------------------
    def run(self, tasks: Sequence[Task], kind: str | None = None) -> list[list[BlockRef]]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is closed")
            if not tasks:
                return []
            if self._runs_inline(tasks):
                self.activity.ran_as = "inline"
                return run_inline(self.store, tasks, self.activity)
            self._collect_dead_fns()
            if time.monotonic() - self._seen_at > self._refresh:
                self._look_at_workers()
            recipes = []
            for t in tasks:                     # every function pickled before anything is submitted
                data, refs = dumps((ship(t.fn), t.index))
                fn_ids = self._blobs.order(refs)
                blocks = [[self.store.block(r) for r in g] for g in t.inputs]
                recipes.append((t, data, fn_ids, blocks))
            made = []
            for t, data, fn_ids, blocks in recipes:
                key = f"{_key_label(t.label)}-{next(self._keys)}-{id(self):x}"
                made.append(Recipe(key, data, fn_ids, self._blob_futures_of(fn_ids, t.label), blocks, t.index, t.label))
            self.stats["stages"] += 1
            return self._run(tasks, made)

    def run_on(self, worker: str, fn, args: tuple, label: str, timeout: float = 60.0) -> tuple[list[BlockRef], object]:
        """Run runnel's worker-side ``fn(*args)`` (returning a Result) on ``worker`` and no other.

        Returns its outputs as blocks, and the Result's ``updates`` (here: what
        ``fn`` tells the driver besides its outputs, not accumulator updates).
        For what lives on one worker only (a receiver's buffered blocks,
        :mod:`runnel.dstream.worker_receivers`): the blocks have no lineage, so
        they are lost with their worker. Raises TaskFailed when ``fn`` raised or
        the worker is gone.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is closed")
            key = f"{_key_label(label)}-{next(self._keys)}-{id(self):x}"
            with self._inbox_cond:
                self._expected.add(key)
            try:
                future = self.client.submit(run_pinned, fn, args, self._topic, key, key=key, pure=False,
                                            workers=[worker], allow_other_workers=False)
                future.add_done_callback(self._wake)
                deadline = time.monotonic() + timeout
                with self._inbox_cond:
                    while key not in self._inbox:
                        if future.status in GONE or future.status == "error":
                            raise TaskFailed(label, "WorkerDied", f"worker {worker} was lost ({future.status})")
                        if time.monotonic() > deadline:
                            raise TaskFailed(label, "TimeoutError", f"no answer from worker {worker} in {timeout} s")
                        self._inbox_cond.wait(EVENT_WAIT)
                    sizes, error, updates, _ = self._inbox.pop(key)
            finally:
                with self._inbox_cond:
                    self._expected.discard(key)
            if error is not None:
                raise TaskFailed(label, error[0], error[1], error[2])
            self.stats["tasks_sent"] += 1
            recipe = Recipe(key, b"", [], [], [], 0, label)     # no lineage: revive says the block is lost
            return [self.store.add_output(future, k, recipe, nrows, nbytes, lineage=False)
                    for k, (nrows, nbytes) in enumerate(sizes)], updates

    def _runs_inline(self, tasks: Sequence[Task]) -> bool:
        limit = self.inline_bytes
        if self._conf is not None and self._conf.get(INLINE_BYTES_KEY) is not None:
            limit = int(self._conf[INLINE_BYTES_KEY])
        refs = [r for t in tasks for g in t.inputs for r in g]
        return bool(limit) and sum(r.nbytes for r in refs) <= limit and self.store.in_driver(refs)

    def _on_event(self, event) -> None:
        """A task's description, sent by its worker (runs on the client's event loop thread)."""
        key, described = pickle.loads(event[1])
        with self._inbox_cond:
            if key in self._expected:
                self._inbox[key] = described
                self._inbox_cond.notify_all()

    def _wake(self, _future) -> None:
        with self._inbox_cond:
            self._inbox_cond.notify_all()

    def _submit(self, recipes: list, indices: list[int]) -> list[str]:
        """Submit the tasks of ``indices`` (reviving the blocks they read first); their keys (expected events)."""
        owners: dict[int, str] = {}
        for i in indices:
            for g in recipes[i].inputs:
                for b in g:
                    owners.setdefault(id(b), self.owner(recipes[i].owner))
        self.store.revive([b for i in indices for g in recipes[i].inputs for b in g], owners, self._owner_of)
        keys = []
        for i in indices:
            r = recipes[i]
            if r.future is not None:           # a retry: its function blobs may have been lost too
                self._owner_of(r)
            key = r.key if r.future is None else f"{r.key}-r{next(self._keys)}"
            with self._inbox_cond:
                self._expected.add(key)
            keys.append(key)
            r.future = self.store.submit(r, key, self.owner(r.owner), self._topic)
            r.future.add_done_callback(self._wake)
        self.stats["tasks_sent"] += len(indices)
        return keys

    def _describe(self, futures: list) -> list:
        """Descriptions of finished tasks whose event did not come (a lost message): one more task each."""
        return self.store.call("asking how tasks ended", lambda: self.client.gather(
            [self.client.submit(describe, f, pure=False) for f in futures]))

    def _connected(self) -> None:
        if self.client.status != "running":
            raise ConnectionError(f"the client is {self.client.status}")

    def _run(self, tasks: Sequence[Task], recipes: list) -> list[list[BlockRef]]:
        n = len(tasks)
        keys = self._submit(recipes, list(range(n)))      # every attempt's: forgotten however the stage ends
        described: dict[int, tuple] = {}
        lost: dict[int, str] = {}
        finished_at: dict[int, float] = {}
        recoveries = 0
        try:
            while len(described) < n:
                with self._inbox_cond:
                    for i in range(n):
                        if i not in described and recipes[i].future.key in self._inbox:
                            described[i] = self._inbox.pop(recipes[i].future.key)
                    if len(described) == n:
                        break
                    waiting = [i for i in range(n) if i not in described]
                    if all(recipes[i].future.status == "pending" for i in waiting):
                        self._inbox_cond.wait(EVENT_WAIT)
                        continue
                now = time.monotonic()
                lost = {}
                late = []
                for i in waiting:
                    f = recipes[i].future
                    if f.status in GONE:
                        lost[i] = f"{f.status}: {f.exception()!r}" if f.status == "error" else f.status
                    elif f.status == "finished" and now - finished_at.setdefault(i, now) > EVENT_WAIT:
                        late.append(i)
                if late:
                    for i, got in zip(late, self._describe([recipes[i].future for i in late])):
                        described[i] = got
                if lost:
                    recoveries += 1
                    if recoveries > RECOVERIES:
                        break
                    self.stats["recoveries"] += 1
                    # the driver may hear of lost blocks after their tasks were cancelled: give it time
                    time.sleep(min(0.1 * 2 ** recoveries, 2.0))
                    # a lost connection to the scheduler cancels every future: wait (bounded) for it to come back
                    self.store.call(f"running {tasks[0].label}", self._connected)
                    self._look_at_workers()
                    keys += self._submit(recipes, sorted(lost))
                elif not late:
                    with self._inbox_cond:
                        self._inbox_cond.wait(EVENT_WAIT)
        except BaseException:
            for r in recipes:
                if r.future is not None:
                    r.future.cancel()
                    r.future = None
            raise
        finally:
            with self._inbox_cond:
                for key in keys:
                    self._expected.discard(key)
                    self._inbox.pop(key, None)
        failures = {i: TaskFailed(tasks[i].label, "WorkerDied",
                                  f"its worker was lost on each of {recoveries} attempts ({why})")
                    for i, why in lost.items() if i not in described}
        self.activity.ran_as = "dask"
        self.activity.add_busy(sum(d[3] for d in described.values()))
        for i, (sizes, error, _, _) in described.items():
            if error is not None:
                type_name, message, tb, blob = error
                cause = None
                if blob is not None:
                    try:
                        cause = pickle.loads(blob)
                    except Exception:
                        cause = None
                failures[i] = TaskFailed(tasks[i].label, type_name, message, tb, cause)
        if failures:
            for r in recipes:
                r.future = None
            raise failures[min(failures)]
        out = [self._outputs(recipes[i], *described[i]) for i in range(n)]
        self.store.back_up([r for refs in out for r in refs])     # lineage too deep: cut it (see dask_store)
        return out

    def _outputs(self, recipe, sizes: list, error, updates: list, seconds: float) -> list[BlockRef]:
        """The task's outputs as blocks (output k of its result, which stays on its worker)."""
        merge_task_updates(updates)
        result, recipe.future = recipe.future, None     # the blocks hold it
        return [self.store.add_output(result, k, recipe, nrows, nbytes) for k, (nrows, nbytes) in enumerate(sizes)]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.client.unsubscribe_topic(self._topic)
        except Exception:
            pass
        self.store.close()
        self._blob_futures.clear()
        if self._owns_client:
            self.client.close()
