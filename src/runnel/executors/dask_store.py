"""Blocks in the memory of Dask workers: a :class:`BlockStore` whose refs name Dask futures.

The block store of :class:`~runnel.executors.dask_executor.DaskExecutor`.
A task's outputs stay on the worker that computed them, as the value of the
task's future (a :class:`~runnel.executors.dask_worker.Result`); a block is
output ``k`` of it. (A reducer on another worker fetches the whole result of
a map task, every bucket: a ``pick`` task per bucket would fetch only its
own but cost two more scheduler hops on the stage's critical path; with few
workers, most buckets are local anyway.) A block the driver puts (received data, ``parallelize``) is kept
in the driver, frozen as :class:`MemoryStore` keeps it, and scattered to the
worker that first reads it.

Lineage, and what a lost worker costs
-------------------------------------
Every block remembers how to get it back (:class:`Block`): a block the
driver put has its frozen batch; a task's output has its :class:`Recipe`
(the pickled task, its function blobs, the blocks it read). When a worker
dies, the blocks it held are recomputed from their recipes
(:meth:`DaskStore.revive`), which first revive the blocks *they* read, and
so on down to frozen batches. A released block whose recipe a live block
still needs stays behind as a *ghost* (its future released, its recipe
kept), so lineage survives the release of last batch's state table.

Lineage must not grow without end (a running state's table of batch t is
computed from that of batch t-1 ...): a block whose recipe is more than
``depth_limit`` tasks deep is *backed up* — fetched once and frozen in the
driver, which cuts its lineage (:meth:`DaskStore.back_up`), as Spark
checkpoints a stateful stream's RDDs every few batches. A block the driver
reads with ``get`` is backed up the same way, for free: the checkpointer
reads state tables, so checkpointed state is never recomputed.

State (under the base class's ``_lock``)
----------------------------------------
``_blocks: dict[block id, Block]``
    Every live block. ``put``/``add_output`` add, ``release``/``close`` remove
    (releasing the future; the Block object lives on while a recipe needs it).
``Block.future``
    The Dask future holding it on a worker (None until first scattered, or
    once released); replaced by :meth:`revive` when its worker was lost.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from runnel.batch import Batch
from runnel.executors.dask_comm import RETRY_SECONDS, retrying
from runnel.executors.dask_worker import run_task
from runnel.storage.store import BlockRef, BlockStore, freeze, thaw

__all__ = ["DaskStore", "Block", "Recipe", "BlockLost", "DEPTH_LIMIT"]

#: Tasks of lineage a block may depend on before it is backed up to the driver (see the module docstring).
DEPTH_LIMIT = 8
#: Future states after which the value is gone for good (its worker died, or a dependency was lost).
GONE = ("cancelled", "lost", "error")


class BlockLost(RuntimeError):
    """A block without lineage was on a worker that was lost."""


class Recipe:
    """How a task's outputs are computed again: the pickled task, its functions, the blocks it read.

    ``owner`` is the task's partition index (its owner worker is chosen at
    submission); ``future`` the latest submission's result future; ``label``
    the runnel task's (it names the stream and batch time in errors).
    """

    __slots__ = ("key", "payload", "fn_ids", "blobs", "inputs", "owner", "future", "label", "__weakref__")

    def __init__(self, key: str, payload: bytes, fn_ids: list[str], blobs: list, inputs: list[list["Block"]],
                 owner: int, label: str = "") -> None:
        self.key = key
        self.label = label
        self.payload = payload
        self.fn_ids = fn_ids
        self.blobs = blobs            # the blob futures: kept alive while the recipe may be needed
        self.inputs = inputs
        self.owner = owner
        self.future = None

    @property
    def depth(self) -> int:
        return 1 + max((b.depth for g in self.inputs for b in g), default=0)


class Block:
    """One block: where it lives and how to get it back.

    ``future``'s value is a Result whose output ``k`` is the block (output
    ``k`` of its ``recipe``), or (``k`` None) the Batch itself; ``frozen`` is
    the driver's copy, if any.
    """

    __slots__ = ("future", "k", "frozen", "recipe", "depth", "lineage", "__weakref__")

    def __init__(self, future=None, k: int | None = None, frozen: tuple | None = None,
                 recipe: Recipe | None = None) -> None:
        self.future = future
        self.k = k
        self.frozen = frozen
        self.recipe = recipe
        self.depth = 0 if recipe is None else recipe.depth
        self.lineage = True               # False: the recipe cannot run again (see DaskStore.add_output)

    def alive(self) -> bool:
        return self.future is not None and self.future.status not in GONE


class DaskStore(BlockStore):
    """Blocks on Dask workers (task outputs) and in the driver (what the driver put), with lineage.

    Parameters
    ----------
    client : distributed.Client
    depth_limit : int
        Lineage depth after which a block is backed up to the driver.
    address : str
        The scheduler's, for errors (``client.scheduler`` is gone once the client closed).
    retry_seconds : float
        How long a scatter or gather is retried while the connection to the
        scheduler is down (:func:`~runnel.executors.dask_comm.retrying`).
    """

    def __init__(self, client, depth_limit: int = DEPTH_LIMIT, address: str = "", retry_seconds: float = RETRY_SECONDS
                 ) -> None:
        super().__init__()
        self.client = client
        self.address = address or client.scheduler.address
        self.retry_seconds = retry_seconds
        self.depth_limit = depth_limit
        self._blocks: dict[str, Block] = {}
        self._ids = itertools.count()
        self.stats = {"scattered": 0, "fetched": 0, "backed_up": 0, "recomputed": 0}

    def call(self, what: str, attempt, on_retry=None):
        """``attempt()`` retried while the scheduler's connection is down (see :mod:`~runnel.executors.dask_comm`)."""
        return retrying(self.client, self.address, what, attempt, self.retry_seconds, on_retry)

    def _fetch(self, blocks: list[Block], why: str) -> list:
        """The values of blocks on workers (revived first: a retry recomputes what the lost connection took)."""
        def attempt():
            self.revive(blocks, {})
            return self.client.gather([b.future for b in blocks])
        return self.call(f"{why} {_named(blocks)}", attempt)

    # -- what the driver puts and reads ------------------------------------------------
    def put(self, batch: Batch) -> BlockRef:
        frozen, nbytes = freeze(batch)
        return self._add(Block(frozen=frozen), len(batch), nbytes)

    def _add(self, block: Block, nrows: int, nbytes: int) -> BlockRef:
        block_id = f"dask-{next(self._ids)}"
        self._register(block_id, nbytes)
        with self._lock:
            self._blocks[block_id] = block
        return BlockRef(block_id, nrows, nbytes)

    def add_output(self, future, k: int, recipe: Recipe, nrows: int, nbytes: int, lineage: bool = True) -> BlockRef:
        """Register output ``k`` of ``recipe``'s task, whose Result ``future`` holds.

        ``lineage=False``: the recipe cannot be run again (data that exists on
        one worker only); the block is lost with its worker, and reading it
        then raises an error naming the recipe's label.
        """
        block = Block(future, k, recipe=recipe)
        block.lineage = lineage
        return self._add(block, nrows, nbytes)

    def block(self, ref: BlockRef) -> Block:
        self._drain()
        try:
            return self._blocks[ref.id]
        except KeyError:
            raise self._missing(ref) from None

    def get(self, ref: BlockRef) -> Batch:
        return self.get_many([ref])[0]

    def get_many(self, refs: Iterable[BlockRef]) -> list[Batch]:
        """The blocks, those on workers fetched in one round trip (and backed up: see the module docstring)."""
        blocks = [self.block(r) for r in refs]
        remote = [b for b in blocks if b.frozen is None]
        if remote:
            values = self._fetch(remote, "fetching to the driver")
            self.stats["fetched"] += len(remote)
            for b, v in zip(remote, values):
                self._freeze(b, v)
        return [thaw(b.frozen) for b in blocks]

    def in_driver(self, refs: Iterable[BlockRef]) -> bool:
        """Are all these blocks held in the driver (a task reading them needs no worker)?"""
        return all(self.block(r).frozen is not None for r in refs)

    def _freeze(self, block: Block, value) -> None:
        """Keep a fetched value in the driver: the block's lineage ends here."""
        block.frozen = freeze(value if block.k is None else value.batches[block.k])[0]
        block.recipe, block.depth = None, 0

    def back_up(self, refs: Iterable[BlockRef]) -> int:
        """Fetch the blocks of ``refs`` whose lineage is deeper than ``depth_limit``; how many were."""
        deep = [b for b in map(self.block, refs) if b.frozen is None and b.depth > self.depth_limit]
        if deep:
            for b, v in zip(deep, self._fetch(deep, "backing up to the driver")):
                self._freeze(b, v)
            self.stats["backed_up"] += len(deep)
        return len(deep)

    # -- bringing blocks to workers ------------------------------------------------------
    def revive(self, blocks: list[Block], owners: dict[int, str], owner_of=None) -> None:
        """Make every block's future live: scatter frozen ones, resubmit recipes of lost ones.

        ``owners`` maps a block's id() to the worker to scatter it to (when
        absent, Dask picks one); ``owner_of(recipe)`` readies a recipe for
        submission again (its function blobs may need scattering anew) and
        names the worker its task is pinned to (the executor's partition owners).
        """
        scatter: dict[str | None, list[Block]] = {}
        for b in blocks:
            if b.alive():
                continue
            if b.frozen is not None:
                scatter.setdefault(owners.get(id(b)), []).append(b)
            elif not b.lineage:
                raise BlockLost(f"a block of {b.recipe.label} was held by one Dask worker only, which was lost "
                                "(it has no lineage to recompute it from)")
            else:
                self._resubmit(b.recipe, owner_of)
                self.stats["recomputed"] += 1
                b.future = b.recipe.future
        for worker, group in scatter.items():
            futures = self.call(f"scattering {len(group)} blocks the driver holds to {worker or 'the workers'}",
                                lambda: self.client.scatter([thaw(b.frozen) for b in group], hash=False,
                                                            workers=[worker] if worker else None))
            self.stats["scattered"] += len(group)
            for b, f in zip(group, futures):
                b.future, b.k = f, None            # the future's value is the batch itself now

    def _resubmit(self, recipe: Recipe, owner_of) -> None:
        if recipe.future is not None and recipe.future.status not in GONE:
            return
        self.revive([b for g in recipe.inputs for b in g], {}, owner_of)
        worker = owner_of(recipe) if owner_of is not None else None
        recipe.future = self.submit(recipe, f"{recipe.key}-revived{next(self._ids)}", worker)

    def submit(self, recipe: Recipe, key: str, worker: str | None, topic: str | None = None):
        """Submit ``recipe``'s task (its inputs must be live) as Dask task ``key``, pinned loosely to ``worker``."""
        return self.client.submit(run_task, recipe.payload, recipe.fn_ids, recipe.blobs,
                                  [[(b.future, b.k) for b in g] for g in recipe.inputs], topic, key,
                                  key=key, pure=False, workers=[worker] if worker else None,
                                  allow_other_workers=bool(worker))   # no worker known (none up): Dask picks

    # -- lifetimes -------------------------------------------------------------------------
    def _free(self, block_id: str, nbytes: int) -> None:
        with self._lock:
            b = self._blocks.pop(block_id, None)
        if b is not None:
            # not Future.release(): the blocks of one task share its future (dropping the last
            # reference releases the key)
            b.future = None


def _named(blocks: list[Block]) -> str:
    """``"3 blocks (of <task label>, ...)"`` for an error message."""
    labels = sorted({b.recipe.label for b in blocks if b.recipe is not None and b.recipe.label})
    more = f" (of {', '.join(labels[:3])}{' ...' if len(labels) > 3 else ''})" if labels else ""
    return f"{len(blocks)} block(s){more}"
