"""DStreamGraph: the streams of one StreamingContext, their names and zero time.

Names are stable and deterministic — ``<kind>-<n>`` in definition order, or
one the user sets — because checkpointed state is keyed by them.

The graph is what streams, the scheduler and the checkpointer share; it
knows no StreamingContext. ``sealed`` (set by the context at start and stop)
says why streams can no longer be added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .dstream.base import DStream
    from .dstream.inputs import InputDStream
    from .dstream.outputs import ForEachDStream


@dataclass(frozen=True)
class StreamNode:
    """One stream of a graph as :meth:`DStreamGraph.nodes` describes it (what the UI draws)."""
    name: str
    kind: str                       # "rate_stream", "map", "update_state_by_key", "foreachRDD" ...
    parents: tuple[str, ...]        # names of the streams it reads
    slide_ms: int
    window_ms: int | None = None    # a window's length
    input_id: int | None = None     # an input's stream id (creation order, as Spark numbers them)
    output_id: int | None = None    # an output operation's id
    stateful: bool = False          # keeps state or window tables (checkpointed by name)


class DStreamGraph:
    """The streams of one program, in definition order, and the times they share.

    Parameters
    ----------
    batch_ms : int
        The batch interval in milliseconds.
    """

    def __init__(self, batch_ms: int):
        self.batch_ms = batch_ms
        self.sealed: str | None = None      # why streams can no longer be added, or None
        self.streams: list[DStream] = []
        self.inputs: list[InputDStream] = []
        self.outputs: list[ForEachDStream] = []
        self.names: dict[str, DStream] = {}
        self.zero_ms: int | None = None
        self.remember_ms: int = 0
        self.functions: list = []   # FnRefs of every operator, checked for shipping at start
        self.restored_ms: int | None = None  # time of the checkpoint a recovered context started from
        self._count = 0

    def attach(self, ssc) -> None:
        """Bind the streams of an unpickled graph (getOrCreate) to their new context."""
        self.sealed = None
        for s in self.streams:
            s.ssc, s.graph = ssc, self

    def _check_mutable(self) -> None:
        if self.sealed is not None:
            raise RuntimeError(f"Adding new inputs, transformations, and output operations after {self.sealed} "
                               "is not supported")

    def add(self, stream: "DStream") -> str:
        self._check_mutable()
        self.streams.append(stream)
        self._count += 1
        name = f"{stream.kind}-{self._count}"
        self.names[name] = stream
        return name

    def rename(self, stream: "DStream", name: str) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a stream name must be a non-empty string, got {name!r}")
        other = self.names.get(name)
        if other is not None and other is not stream:
            raise ValueError(f"a stream named {name!r} already exists in this context")
        self.names.pop(stream.name, None)
        self.names[name] = stream
        return name

    def add_input(self, stream: "InputDStream") -> None:
        self.inputs.append(stream)

    def add_output(self, stream: "ForEachDStream") -> int:
        self.outputs.append(stream)
        return len(self.outputs) - 1

    def start(self, zero_ms: int) -> None:
        self.zero_ms = zero_ms
        batch = self.batch_ms
        for out in self.outputs:
            out.init_remember(max(self.remember_ms, batch))
        for s in self.streams:
            if s.remember_ms == 0:
                s.remember_ms = max(self.remember_ms, s.slide_ms)

    def generate_jobs(self, t: int) -> list[tuple["ForEachDStream", Callable[[], None]]]:
        """Jobs for batch time t, in output definition order.

        A failure while building a job's Dataset (say, a transform function
        that raises) becomes that job's failure, not the batch's.
        """
        from .executors.base import TaskFailed
        from .listener import ms_to_datetime
        jobs = []
        for out in self.outputs:
            try:
                job = out.generate_job(t)
            except Exception as e:  # surfaced when the job runs, naming the output and the batch
                err = TaskFailed.from_exception(f"{out.description} at {ms_to_datetime(t)}", e)
                job = (lambda err: lambda: _reraise(err))(err)
            if job is not None:
                jobs.append((out, job))
        return jobs

    def settle(self, t: int) -> list[Exception]:
        """After batch t's outputs: let stateful streams compute what batch t + 1 builds on.

        Returns the errors of those that could not (each has fallen back to
        its last good table; see ``StatefulDStream.settle``), parents first.
        """
        errors = []
        for s in self.streams:
            settle = getattr(s, "settle", None)
            if settle is not None:
                try:
                    settle(t)
                except Exception as e:  # noqa: BLE001  (reported by the scheduler as the batch's error)
                    errors.append(e)
        return errors

    def forget_before(self, t: int) -> None:
        for s in self.streams:
            s.forget_before(t)

    def nodes(self) -> list[StreamNode]:
        """Every stream, in definition order (parents before children), with its parents' names."""
        inputs = {id(s): i for i, s in enumerate(self.inputs)}
        outputs = {id(s): i for i, s in enumerate(self.outputs)}
        out = []
        for s in self.streams:
            out.append(StreamNode(s.name, getattr(s, "op_name", None) or s.kind,
                                  tuple(p.name for p in s.parents), s.slide_ms, getattr(s, "window_ms", None),
                                  inputs.get(id(s)), outputs.get(id(s)), hasattr(s, "checkpoint_tables")))
        return out

    def describe(self) -> str:
        """The stream lineage as text, one line per stream: ``name [kind, details] <- parents``.

        Examples
        --------
        >>> from runnel import ManualClock, StreamingContext
        >>> ssc = StreamingContext("local", 1, clock=ManualClock())
        >>> ssc.queue_stream([[1]]).map(lambda x: x).foreach_rdd(lambda ds: None)
        >>> print(ssc.graph.describe())
        queue_stream-1 [queue_stream, input 0, slide 1 s]
        map-2 [map, slide 1 s] <- queue_stream-1
        foreachRDD-3 [foreachRDD, output 0, slide 1 s] <- map-2
        """
        return describe_nodes(self.nodes())

    def num_records(self, t: int) -> int:
        return sum(i.records.get(t, 0) for i in self.inputs)


def describe_nodes(nodes: list[StreamNode]) -> str:
    """:meth:`DStreamGraph.describe` of nodes already taken (the UI keeps them)."""
    lines = []
    for n in nodes:
        bits = [n.kind]
        if n.input_id is not None:
            bits.append(f"input {n.input_id}")
        if n.output_id is not None:
            bits.append(f"output {n.output_id}")
        if n.stateful:
            bits.append("stateful")
        if n.window_ms is not None:
            bits.append(f"window {n.window_ms / 1000:g} s")
        bits.append(f"slide {n.slide_ms / 1000:g} s")
        reads = f" <- {', '.join(n.parents)}" if n.parents else ""
        lines.append(f"{n.name} [{', '.join(bits)}]{reads}")
    return "\n".join(lines)


def _reraise(err: BaseException) -> None:
    raise err
