"""Lineage plans and the stage planner.

A Dataset's partitions are described by a small tree of plan nodes:

    Blocks(refs)                 materialised partitions in the block store
    Narrow(parent, ops)          per-partition ops, fused: one task per partition
    Union(parents)               partitions of each parent, in parent order
    Shuffled(deps, n, reduce)    the one wide primitive: every dep's parent is cut
                                 into n buckets by a map op; partition j is
                                 reduce(j, [buckets j of dep 0, buckets j of dep 1 ...])
    Product(left, right)         partition (i, j) pairs left i with right j (cartesian)
    Zip(parents, op)             partition i is op(i, [partition i of each parent]): a narrow
                                 combine of co-partitioned plans (window partials, state tables
                                 hashed with the same partitioner), no shuffle
    Cached(dataset)              a cached Dataset's blocks, computed when first needed

``materialize(plan)`` runs it: every Shuffled below the top is computed as a
map stage (one task per parent partition, writing n bucket blocks) and the top
is one task per output partition whose program reads blocks, runs the fused
narrow ops and writes one block.

A cached Dataset not computed yet, met below the top through Narrow and Zip
nodes only (so top partition i reads its partition i), is computed *inside*
the top's tasks rather than by a stage of its own: task i also writes its
partition i as an extra output (``Tee``), which becomes the cached Dataset's
blocks. A window's new per-slide partials are computed this way, in the same
task as the window update that reads them: one stage and one worker round
trip less per batch, and the partial is not read back from shared memory.

Task programs (``Program`` trees) are small picklable objects; user functions
inside them are ``FnRef`` handles that the executor ships to each worker once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .batch import Batch
from .executors.base import Task
from .storage.store import BlockRef

PartitionOp = Callable[[int, Batch], Batch]


class Plan:
    num_partitions: int


@dataclass(eq=False)
class Blocks(Plan):
    refs: list[BlockRef]

    @property
    def num_partitions(self) -> int:
        return len(self.refs)


@dataclass(eq=False)
class Narrow(Plan):
    parent: Plan
    ops: tuple

    @property
    def num_partitions(self) -> int:
        return self.parent.num_partitions


@dataclass(eq=False)
class Union(Plan):
    parents: list[Plan]

    @property
    def num_partitions(self) -> int:
        return sum(p.num_partitions for p in self.parents)


@dataclass(eq=False)
class ShuffleDep:
    parent: Plan
    map_op: Callable[[int, Batch, int], list[Batch]]  # (index, batch, n) -> n buckets


@dataclass(eq=False)
class Shuffled(Plan):
    deps: list[ShuffleDep]
    n: int
    reduce_op: Callable[[int, list[list[Batch]]], Batch]

    @property
    def num_partitions(self) -> int:
        return self.n


@dataclass(eq=False)
class Product(Plan):
    left: Plan
    right: Plan
    op: Callable[[Batch, Batch], Batch]

    @property
    def num_partitions(self) -> int:
        return self.left.num_partitions * self.right.num_partitions


@dataclass(eq=False)
class Cached(Plan):
    """A cached Dataset: computed once, when first needed, then read from its blocks."""
    dataset: object

    @property
    def num_partitions(self) -> int:
        return self.dataset.plan.num_partitions

    def resolve(self) -> Plan:
        """The dataset's blocks (computing them now if needed), or its lineage once unpersisted."""
        if self.dataset.is_cached:
            self.dataset._materialize()
        return self.dataset.plan


@dataclass(eq=False)
class Zip(Plan):
    parents: list[Plan]
    op: Callable[[int, list[Batch]], Batch]

    def __post_init__(self):
        counts = {p.num_partitions for p in self.parents}
        if len(counts) != 1:
            raise ValueError(f"zip needs plans with equal partition counts, got {sorted(counts)}")

    @property
    def num_partitions(self) -> int:
        return self.parents[0].num_partitions


def narrow(parent: Plan, op: PartitionOp) -> Plan:
    """Append a per-partition op, fusing with a narrow parent."""
    if isinstance(parent, Narrow):
        return Narrow(parent.parent, parent.ops + (op,))
    return Narrow(parent, (op,))


# --- task programs -------------------------------------------------------
# A program turns a task's input block groups into batches. They nest like
# the plan they came from and are pickled with every task, so they stay tiny.

@dataclass(eq=False)
class Read:
    group: int
    pos: int = 0

    def __call__(self, inputs: list[list[Batch]]) -> Batch:
        return inputs[self.group][self.pos]


@dataclass(eq=False)
class Apply:
    child: object
    ops: tuple
    index: int

    def __call__(self, inputs):
        batch = self.child(inputs)
        for op in self.ops:
            batch = op(self.index, batch)
        return batch


@dataclass(eq=False)
class Reduce:
    op: Callable
    index: int
    groups: list[tuple[int, int]]  # (first input group, number of groups) per dep

    def __call__(self, inputs):
        return self.op(self.index, [inputs[g] for g, _ in self.groups])


@dataclass(eq=False)
class Pair:
    op: Callable
    left: object
    right: object

    def __call__(self, inputs):
        return self.op(self.left(inputs), self.right(inputs))


@dataclass(eq=False)
class Combine:
    op: Callable
    index: int
    children: list

    def __call__(self, inputs):
        return self.op(self.index, [c(inputs) for c in self.children])


@dataclass(eq=False)
class WriteOne:
    """Task entry point: the program's batch is the task's single output."""
    program: object

    def __call__(self, index: int, inputs: list[list[Batch]]) -> list[Batch]:
        return [self.program(inputs)]


class Tee:
    """A cached Dataset's partition computed inside the consumer's task (see the module docstring).

    Evaluated once per task, however often the program reads it; the value
    never travels with the task (``__getstate__``).
    """

    def __init__(self, child, label: str):
        self.child = child
        self.label = label
        self.value: Batch | None = None

    def __call__(self, inputs):
        if self.value is None:
            self.value = self.child(inputs)
        return self.value

    def __getstate__(self):
        return {"child": self.child, "label": self.label, "value": None}


@dataclass(eq=False)
class WriteWithTees:
    """Task entry point: the program's batch, then the partition of each Tee'd Dataset."""
    program: object
    tees: list

    def __call__(self, index: int, inputs: list[list[Batch]]) -> list[Batch]:
        try:
            out = [self.program(inputs)]
            return out + [t(inputs) for t in self.tees]
        finally:
            for t in self.tees:  # an inline run must not keep the batches alive
                t.value = None


@dataclass(eq=False)
class WriteBuckets:
    """Task entry point of a map stage: n bucket batches."""
    program: object
    map_op: Callable
    index: int
    n: int

    def __call__(self, index, inputs):
        return self.map_op(self.index, self.program(inputs), self.n)


@dataclass
class _Builder:
    """Collects a task's input groups (and Tees, by Dataset id) while its program is built."""
    index: int = -1
    inputs: list[list[BlockRef]] = field(default_factory=list)
    tees: dict = field(default_factory=dict)

    def add(self, refs: list[BlockRef]) -> int:
        self.inputs.append(refs)
        return len(self.inputs) - 1


class Planner:
    """Turns plans into tasks and runs them on an executor.

    ``materialize`` returns one block per partition of the plan, owned by the
    caller; map-stage buckets are released as soon as their reduce stage is
    done.
    """

    def __init__(self, executor, label: str = "dataset"):
        self.executor = executor
        self.label = label
        self._temps: list[BlockRef] = []
        self._buckets: dict[int, list[list[list[BlockRef]]]] = {}
        self._tee: dict[int, object] = {}  # id -> cached Dataset computed inside the top's tasks

    def materialize(self, plan: Plan) -> list[BlockRef]:
        if isinstance(plan, Blocks):
            return list(plan.refs)
        try:
            return self._run_partitions(plan, range(plan.num_partitions))
        finally:
            self.executor.store.release(self._temps)
            self._temps = []
            self._buckets = {}
            self._tee = {}

    def _run_partitions(self, plan: Plan, indices) -> list[BlockRef]:
        self._find_tees(plan, plan.num_partitions, top=True)
        self._prepare(plan)
        tees = list(self._tee.values())
        tasks = []
        for i in indices:
            b = _Builder(i)
            prog = self._program(plan, i, b)
            if tees:
                entry = WriteWithTees(prog, [self._tee_of(ds, b) for ds in tees])
                label = f"{self.label} (with {', '.join(ds.label for ds in tees)}), partition {i}"
            else:
                entry, label = WriteOne(prog), f"{self.label}, partition {i}"
            tasks.append(Task(entry, i, b.inputs, label))
        outs = self.executor.run(tasks)
        for k, ds in enumerate(tees):
            ds._adopt([out[1 + k] for out in outs])
        return [out[0] for out in outs]

    def _find_tees(self, plan: Plan, n: int, top: bool = False) -> None:
        """The cached Datasets not computed yet that partition i of ``plan`` reads at partition i."""
        if isinstance(plan, Narrow):
            self._find_tees(plan.parent, n)
        elif isinstance(plan, Zip):
            for p in plan.parents:
                self._find_tees(p, n)
        elif isinstance(plan, Cached) and not top:
            ds = plan.dataset
            if ds.is_cached and not isinstance(ds.plan, Blocks) and ds.plan.num_partitions == n:
                self._tee.setdefault(id(ds), ds)

    def _tee_of(self, ds, b: _Builder) -> Tee:
        """The task's Tee of ``ds`` (built on first use: one per task however often it is read)."""
        tee = b.tees.get(id(ds))
        if tee is None:
            tee = b.tees[id(ds)] = Tee(self._program(ds.plan, b.index, b), ds.label)
        return tee

    # every wide dependency below the pipeline is computed first
    def _prepare(self, plan: Plan) -> None:
        if isinstance(plan, Cached):
            ds = self._tee.get(id(plan.dataset))
            self._prepare(plan.resolve() if ds is None else ds.plan)
        elif isinstance(plan, Narrow):
            self._prepare(plan.parent)
        elif isinstance(plan, Union):
            for p in plan.parents:
                self._prepare(p)
        elif isinstance(plan, Shuffled):
            if id(plan) not in self._buckets:
                self._buckets[id(plan)] = [self._map_stage(d, plan.n) for d in plan.deps]
        elif isinstance(plan, Zip):
            for p in plan.parents:
                self._prepare(p)
        elif isinstance(plan, Product):
            for side in (plan.left, plan.right):
                if not isinstance(side, Blocks):
                    self._prepare(side)

    def _map_stage(self, dep: ShuffleDep, n: int) -> list[list[BlockRef]]:
        self._prepare(dep.parent)
        tasks = []
        for i in range(dep.parent.num_partitions):
            b = _Builder()
            prog = self._program(dep.parent, i, b)
            tasks.append(Task(WriteBuckets(prog, dep.map_op, i, n), i, b.inputs,
                              f"{self.label}, shuffle map partition {i}"))
        outs = self.executor.run(tasks)
        for o in outs:
            self._temps.extend(o)
        return outs

    def _program(self, plan: Plan, i: int, b: _Builder):
        if isinstance(plan, Blocks):
            return Read(b.add([plan.refs[i]]))
        if isinstance(plan, Cached):
            ds = self._tee.get(id(plan.dataset))
            if ds is None:
                return self._program(plan.resolve(), i, b)
            if i != b.index:  # read at another partition (a union beside the zip): computed, not kept
                return self._program(ds.plan, i, b)
            return self._tee_of(ds, b)
        if isinstance(plan, Narrow):
            return Apply(self._program(plan.parent, i, b), plan.ops, i)
        if isinstance(plan, Union):
            for p in plan.parents:
                if i < p.num_partitions:
                    return self._program(p, i, b)
                i -= p.num_partitions
            raise IndexError("union partition out of range")
        if isinstance(plan, Shuffled):
            groups = []
            for buckets in self._buckets[id(plan)]:
                g = b.add([task_out[i] for task_out in buckets])
                groups.append((g, 1))
            return Reduce(plan.reduce_op, i, groups)
        if isinstance(plan, Zip):
            return Combine(plan.op, i, [self._program(p, i, b) for p in plan.parents])
        if isinstance(plan, Product):
            nr = plan.right.num_partitions
            return Pair(plan.op, self._program(plan.left, i // nr, b), self._program(plan.right, i % nr, b))
        raise TypeError(f"unknown plan node {plan!r}")

