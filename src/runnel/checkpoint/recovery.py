"""Two ways back from a checkpoint, one mechanism.

* :func:`recover` — PySpark's ``getOrCreate`` contract: the program is the
  stored graph (``pickling.py``), so ``setup`` is not called.
* :func:`attach` — runnel's ``resume``: the program is whatever ``setup``
  built now (new functions, parallelism, operators), and the checkpoint's
  state and progress are matched to it *by stream name*.

Both end in a :class:`Recovery` that ``StreamingContext.start`` turns into
the scheduler core's ``Recovered`` event and carries out as its ``Restore``
instruction: the graph keeps the checkpoint's zero time, every stateful stream gets its
tables back (``restore_tables``; repartitioned if its partition count
changed), every input its progress (``restore_progress``), and batch times
after the checkpoint — those pending at the crash and those missed while
down — are generated again.

Nothing is dropped silently: checkpointed state whose operator is gone, or
whose table no longer fits the operator of that name (another kind of
operator, window, reducer or state columns), is a :class:`CheckpointError`
listing every such operator, unless the program opts out for those names
(``discard_state``).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Iterable

from ..batch import Batch
from . import files
from .files import CheckpointError
from .pickling import load_graph


@dataclass
class Recovery:
    path: str
    time: int
    zero: int
    tables: dict = field(default_factory=dict)    # stream -> {label: (t, Dataset)}
    inputs: dict = field(default_factory=dict)    # input stream -> progress


@dataclass
class StoredProgram:
    """What getOrCreate needs to rebuild a context from a checkpoint (``recover``)."""
    context: object            # runnel.context.Context
    batch_ms: int
    clock: object | None
    graph: object              # the stored DStreamGraph, unbound
    loaded: files.Loaded


def recover(directory: str, clock=None) -> StoredProgram | None:
    """The program stored with the newest usable checkpoint of ``directory``, or None."""
    from ..context import Context
    loaded = files.load_newest(directory, with_graph=True)
    if loaded is None:
        return None
    body = loaded.body
    # a PySpark program recovers on a SparkContext (rdd.context.broadcast, getConf …), if runnel.pyspark is loaded
    kind = Context.kinds.get(body.get("context", "Context"), Context)
    ctx = kind.recreate(body["master"], body["app_name"], body["conf"])
    if clock is None and body.get("clock") == "manual":   # a program driven by hand stays so
        from ..clock import ManualClock
        clock = ManualClock()
    try:
        graph = load_graph(loaded.graph, ctx)
    except Exception as e:
        raise CheckpointError(f"the program stored in {loaded.path} cannot be loaded ({type(e).__name__}: {e}); "
                              "recover with StreamingContext.resume(dir, setup), which rebuilds it from your "
                              "code") from e
    return StoredProgram(ctx, body["batch_ms"], clock, graph, loaded)


def attach(graph, ctx, loaded: files.Loaded, discard: Iterable[str] | bool, warn_generated: bool = True) -> Recovery:
    """Match the checkpoint's state and progress to ``graph``'s streams by name (see the module docstring);
    ``ctx`` (the Context) holds the restored tables. The Recovery is for ``StreamingContext.start``."""
    from ..dstream.inputs import InputDStream
    from ..dstream.stateful import StatefulDStream
    body = loaded.body
    if body["batch_ms"] != graph.batch_ms:
        raise CheckpointError(f"{loaded.path} was written with a batch interval of {body['batch_ms']} ms, this "
                              f"program's is {graph.batch_ms} ms: batch times and windows would not line up")
    rec = Recovery(loaded.path, loaded.time, body["zero"])
    problems, generated = [], []
    for name, entry in body.get("streams", {}).items():
        stream = graph.names.get(name)
        tables = loaded.tables.get(name, {})
        if not isinstance(stream, StatefulDStream):
            problem = ("no operator of that name keeps state in this program" if stream is None else
                       f"it is now a {type(stream).__name__}, which keeps no state")
        else:
            columns = sorted({c for _, batches in tables.values() for b in batches if len(b) for c in b.names})
            problem = stream.restore_problem(entry["signature"], columns)
        if problem is not None:
            if discard is True or name in discard:
                warnings.warn(f"runnel: discarding the checkpointed state of {name!r} ({problem}), as asked",
                              RuntimeWarning, stacklevel=3)
                continue
            problems.append(f"{name!r}: {problem}")
            continue
        rec.tables[stream] = {label: (t, ctx.dataset_of(batches or [Batch.empty()], f"{name} {label} (restored)"))
                              for label, (t, batches) in tables.items()}
        if warn_generated and tables and re.fullmatch(rf"{re.escape(stream.kind)}-\d+", name):
            generated.append(name)
    if generated:
        warnings.warn(f"runnel: the checkpointed state of {', '.join(map(repr, generated))} was matched by "
                      "generated name; an operator added before it renumbers it. Give stateful operators "
                      "stable names with .named(...)", RuntimeWarning, stacklevel=3)
    if problems:
        raise CheckpointError(
            f"the checkpoint {loaded.path} holds state this program cannot take: " + "; ".join(problems) +
            ". Give stateful operators stable names with .named(...) so that they keep them across program "
            "versions, or pass discard_state=[those names] (or True) to drop that state explicitly")
    for name, progress in body.get("inputs", {}).items():
        stream = graph.names.get(name)
        if isinstance(stream, InputDStream):
            rec.inputs[stream] = progress
        else:
            warnings.warn(f"runnel: the checkpoint's input {name!r} is not in this program; its progress is "
                          "ignored", RuntimeWarning, stacklevel=3)
    return rec
