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

``Planner.compile(plan)`` turns it into a :class:`StageGraph` without running
anything or changing any Dataset: every Shuffled below the top becomes a map
stage (one task per parent partition, writing n bucket blocks), a cached
Dataset not computed yet a stage of its own (its blocks handed to it once that
stage ran), and the top one task per output partition whose program reads
blocks, runs the fused narrow ops and writes one block. Task inputs name the
outputs of earlier stages (:class:`Out`); each stage says which kind of
executor runs it (``serial``, ``threads``, ``processes``: see
:mod:`runnel.executors.kinds`), and ``StageGraph.describe()`` shows it::

    stage 0 [threads] reduce_by_key-2, shuffle map: 2 tasks
    stage 1 [threads] reduce_by_key-2: 2 tasks <- stage 0

``run_stages`` (``Planner.materialize``) carries a graph out on an executor,
stage after stage.

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
from threading import get_ident
from time import perf_counter
from typing import Callable

from .batch import Batch
from .executors.activity import StageRun
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


@dataclass(frozen=True)
class Out:
    """A stage's output not computed yet: block ``k`` of task ``task`` of stage ``stage``.

    Task inputs in a :class:`StageGraph` name these; :func:`run_stages` puts
    the real :class:`BlockRef` in their place once the stage has run.
    """
    stage: int
    task: int
    k: int


@dataclass(eq=False)
class Stage:
    """One stage of a :class:`StageGraph`: tasks that run together on one kind of executor.

    ``reads`` are the stages whose outputs its tasks take as inputs;
    ``adopt`` lists ``(k, callback)``: once the stage has run, output ``k`` of
    every task (one block per partition) goes to ``callback`` — a cached
    Dataset computed here takes its blocks (``Dataset._adopt``) — instead of
    being released with the graph's temporaries.

    ``kind`` (where it runs) is asked of ``kind_of`` (the executor's) when first
    read: a stage small enough to run inline never needs it, and the walk over
    its task programs was a tenth of a 10-record batch's cost on ``local[2]``.
    """
    id: int
    label: str
    tasks: list[Task]
    kind_of: Callable | None
    reads: list[int]
    adopt: list = field(default_factory=list)
    _kind: str | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        if self._kind is None:
            self._kind = self.kind_of(self.tasks) if self.kind_of is not None else "serial"
        return self._kind

    def describe(self) -> str:
        reads = f" <- stage {', '.join(map(str, self.reads))}" if self.reads else ""
        keeps = f", keeps {len(self.adopt)} cached" if self.adopt else ""
        return f"stage {self.id} [{self.kind}] {self.label}: {len(self.tasks)} tasks{keeps}{reads}"


@dataclass(eq=False)
class StageGraph:
    """A Dataset's lineage compiled into stages, in an order that runs each after those it reads.

    ``result`` is the stage whose output 0 per task is the Dataset's partitions
    (None when the plan is already ``refs``, blocks in the store).
    """
    stages: list[Stage]
    result: int | None
    refs: list[BlockRef] | None = None

    def describe(self) -> str:
        """One line per stage: id, executor kind, label, tasks, the stages it reads."""
        if self.result is None:
            return f"no stage: {len(self.refs or [])} blocks in the store"
        return "\n".join(st.describe() for st in self.stages)


@dataclass
class _Builder:
    """Collects a task's input groups (and Tees, by Dataset id) while its program is built.

    ``teed`` maps id -> cached Dataset computed inside the tasks of the stage being built.
    """
    index: int = -1
    teed: dict = field(default_factory=dict)
    inputs: list[list] = field(default_factory=list)
    tees: dict = field(default_factory=dict)

    def add(self, refs: list) -> int:
        self.inputs.append(refs)
        return len(self.inputs) - 1


class Planner:
    """Compiles plans into a :class:`StageGraph` (:meth:`compile`, which runs nothing and changes
    no Dataset) and carries one out on an executor (:meth:`materialize`).

    ``materialize`` returns one block per partition of the plan, owned by the
    caller; map-stage buckets are released once the graph has run (or failed).
    """

    def __init__(self, executor, label: str = "dataset"):
        self.executor = executor
        self.label = label

    def compile(self, plan: Plan) -> StageGraph:
        if isinstance(plan, Blocks):
            return StageGraph([], None, list(plan.refs))
        c = _Compiler(self.executor)
        top = c.result_stage(plan, self.label)
        return StageGraph(c.stages, top)

    def materialize(self, plan: Plan) -> list[BlockRef]:
        return run_stages(self.executor, self.compile(plan))


def run_stages(executor, graph: StageGraph) -> list[BlockRef]:
    """Run every stage of ``graph`` in order on ``executor``; the result stage's blocks.

    Each stage's placeholders (:class:`Out`) become the blocks its inputs
    produced; outputs a stage hands to a cached Dataset (``adopt``) are that
    Dataset's from then on; every other output of a stage below the result
    is released when the graph is done, whether it succeeded or not. While
    someone watches the executor's activity (the UI), each stage run is
    recorded there (:class:`~runnel.executors.activity.StageRun`).
    """
    if graph.result is None:
        return list(graph.refs or [])
    outs: dict[int, list[list[BlockRef]]] = {}
    temps: list[BlockRef] = []
    activity = getattr(executor, "activity", None)
    try:
        for st in graph.stages:
            tasks = [Task(t.fn, t.index, [[outs[r.stage][r.task][r.k] if type(r) is Out else r for r in g]
                                          for g in t.inputs], t.label) for t in st.tasks]
            if activity is None or activity.stages is None:    # the executor asks the kind if it needs it
                res = outs[st.id] = executor.run(tasks, kind=st._kind)
            else:
                res = outs[st.id] = _run_recorded(executor, activity, st, tasks)
            kept = set()
            for k, give in st.adopt:
                give([o[k] for o in res])
                kept.add(k)
            if st.id != graph.result:
                temps.extend(r for o in res for k, r in enumerate(o) if k not in kept)
        return [o[0] for o in outs[graph.result]]
    finally:
        executor.store.release(temps)


def _run_recorded(executor, activity, st: Stage, tasks: list[Task]) -> list[list[BlockRef]]:
    """``executor.run`` of one stage, recorded in the watched activity log."""
    start, busy, failed = perf_counter(), activity.busy, True
    try:
        res = executor.run(tasks, kind=st.kind)
        failed = False
        return res
    finally:
        activity.record(StageRun(st.id, st.label, activity.ran_as or st.kind, len(tasks), start,
                                 perf_counter() - start, activity.busy - busy, get_ident(), failed,
                                 tuple(st.reads)))


class _Compiler:
    """Builds the stages of one graph. Shuffles and cached Datasets met twice get one stage."""

    def __init__(self, executor):
        self.executor = executor
        self.stages: list[Stage] = []
        self._shuffles: dict[int, list[int]] = {}   # id(Shuffled) -> map stage per dep
        self._cached: dict[int, int] = {}           # id(cached Dataset) -> the stage computing it
        self._alive: list = []                      # what those ids name stays alive while compiling

    def _add(self, label: str, tasks: list[Task], adopt: list | None = None) -> int:
        reads = sorted({r.stage for t in tasks for g in t.inputs for r in g if type(r) is Out})
        self.stages.append(Stage(len(self.stages), label, tasks, getattr(self.executor, "kind_of", None), reads,
                                 adopt or []))
        return len(self.stages) - 1

    def result_stage(self, plan: Plan, label: str, owner=None) -> int:
        """A stage with one task per partition of ``plan`` (and the cached Datasets computed inside it)."""
        teed: dict = {}
        self._find_tees(plan, plan.num_partitions, teed, top=True)
        self._prepare(plan, teed, label)
        tees = list(teed.values())
        tasks = []
        for i in range(plan.num_partitions):
            b = _Builder(i, teed)
            prog = self._program(plan, i, b)
            if tees:
                entry = WriteWithTees(prog, [self._tee_of(ds, b) for ds in tees])
                tlabel = f"{label} (with {', '.join(ds.label for ds in tees)}), partition {i}"
            else:
                entry, tlabel = WriteOne(prog), f"{label}, partition {i}"
            tasks.append(Task(entry, i, b.inputs, tlabel))
        adopt = [(1 + k, ds._adopt) for k, ds in enumerate(tees)]
        if owner is not None:
            adopt.insert(0, (0, owner._adopt))
        with_ = f" (with {', '.join(ds.label for ds in tees)})" if tees else ""
        return self._add(f"{label}{with_}", tasks, adopt)

    def _find_tees(self, plan: Plan, n: int, teed: dict, top: bool = False) -> None:
        """The cached Datasets not computed yet that partition i of ``plan`` reads at partition i."""
        if isinstance(plan, Narrow):
            self._find_tees(plan.parent, n, teed)
        elif isinstance(plan, Zip):
            for p in plan.parents:
                self._find_tees(p, n, teed)
        elif isinstance(plan, Cached) and not top:
            ds = plan.dataset
            if ds.is_cached and not isinstance(ds.plan, Blocks) and ds.plan.num_partitions == n \
                    and id(ds) not in self._cached:
                teed.setdefault(id(ds), ds)

    def _tee_of(self, ds, b: _Builder) -> Tee:
        """The task's Tee of ``ds`` (built on first use: one per task however often it is read)."""
        tee = b.tees.get(id(ds))
        if tee is None:
            tee = b.tees[id(ds)] = Tee(self._program(ds.plan, b.index, b), ds.label)
        return tee

    # every wide dependency (and cached Dataset computed by a stage of its own) comes first
    def _prepare(self, plan: Plan, teed: dict, label: str) -> None:
        if isinstance(plan, Cached):
            ds = plan.dataset
            if id(ds) in teed or not ds.is_cached or isinstance(ds.plan, Blocks):
                self._prepare(ds.plan, teed, label)
            elif id(ds) not in self._cached:
                self._alive.append(ds)
                self._cached[id(ds)] = self.result_stage(ds.plan, ds.label, owner=ds)
        elif isinstance(plan, Narrow):
            self._prepare(plan.parent, teed, label)
        elif isinstance(plan, (Union, Zip)):
            for p in plan.parents:
                self._prepare(p, teed, label)
        elif isinstance(plan, Shuffled):
            if id(plan) not in self._shuffles:
                self._alive.append(plan)
                self._shuffles[id(plan)] = [self._map_stage(d, plan.n, teed, label) for d in plan.deps]
        elif isinstance(plan, Product):
            for side in (plan.left, plan.right):
                self._prepare(side, teed, label)

    def _map_stage(self, dep: ShuffleDep, n: int, teed: dict, label: str) -> int:
        self._prepare(dep.parent, teed, label)
        tasks = []
        for i in range(dep.parent.num_partitions):
            b = _Builder(-1, teed)
            prog = self._program(dep.parent, i, b)
            tasks.append(Task(WriteBuckets(prog, dep.map_op, i, n), i, b.inputs,
                              f"{label}, shuffle map partition {i}"))
        return self._add(f"{label}, shuffle map", tasks)

    def _program(self, plan: Plan, i: int, b: _Builder):
        if isinstance(plan, Blocks):
            return Read(b.add([plan.refs[i]]))
        if isinstance(plan, Cached):
            ds = plan.dataset
            if id(ds) in b.teed:
                if i != b.index:  # read at another partition (a union beside the zip): computed, not kept
                    return self._program(ds.plan, i, b)
                return self._tee_of(ds, b)
            stage = self._cached.get(id(ds))
            if stage is not None:
                return Read(b.add([Out(stage, i, 0)]))
            return self._program(ds.plan, i, b)
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
            for stage in self._shuffles[id(plan)]:
                g = b.add([Out(stage, t, i) for t in range(len(self.stages[stage].tasks))])
                groups.append((g, 1))
            return Reduce(plan.reduce_op, i, groups)
        if isinstance(plan, Zip):
            return Combine(plan.op, i, [self._program(p, i, b) for p in plan.parents])
        if isinstance(plan, Product):
            nr = plan.right.num_partitions
            return Pair(plan.op, self._program(plan.left, i // nr, b), self._program(plan.right, i % nr, b))
        raise TypeError(f"unknown plan node {plan!r}")
