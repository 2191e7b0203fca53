"""The program's graph as bytes, for PySpark's ``getOrCreate`` contract.

``getOrCreate(dir, setup)`` recovers *without calling setup*, so the graph —
every stream and the functions it calls — is stored (cloudpickle) when a
context with a checkpoint directory starts, before any receiver runs. What
is pickled is the definition only: each stream drops its context and its
generated Datasets (``DStream.__getstate__``); a Dataset the program holds
(a queue stream's items, an initial state, one captured by a function) is
stored as its partitions and comes back as a Dataset of the new context.
State and progress are not in the graph: they live in the checkpoints and
are re-attached by stream name, as :meth:`StreamingContext.resume` does.

A function that cannot be stored fails ``start()`` with a message naming the
stream and the function (a closure over the StreamingContext is the classic
case: the contexts refuse to be pickled, with PySpark's hint).
"""

from __future__ import annotations

import io
import os
import pickle
import types
from typing import Any

import cloudpickle

from ..dataset import Dataset
from ..executors.shipping import FnRef, fn_name
from .files import CheckpointError


class _GraphPickler(cloudpickle.Pickler):
    def persistent_id(self, obj: Any):
        if isinstance(obj, Dataset):
            return ("dataset", obj.label, obj.collect_batches())
        return None


class _GraphUnpickler(pickle.Unpickler):
    def __init__(self, file, ctx):
        super().__init__(file)
        self.ctx = ctx

    def persistent_load(self, pid):
        kind, label, batches = pid
        if kind != "dataset":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r} in a stored graph")
        return self.ctx.dataset_of(batches, label)


def _dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    _GraphPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def dump_graph(graph) -> bytes:
    """The graph's bytes; :class:`CheckpointError` naming the stream and function that cannot be stored."""
    try:
        return _dumps(graph)
    except Exception as e:  # find the culprit for the message
        where = _culprit(graph) or "the stream graph"
        raise CheckpointError(
            f"cannot store the program for checkpoint recovery: {where} cannot be serialised "
            f"({type(e).__name__}: {e}). StreamingContext.get_or_create recovers the stored program, so "
            "every function of the graph must pickle. Make it picklable, or set the conf key "
            "runnel.streaming.checkpoint.graph to false and recover with StreamingContext.resume(dir, setup), "
            "which rebuilds the graph from your code") from e


def load_graph(data: bytes, ctx):
    """The graph :func:`dump_graph` stored, with its Datasets in ``ctx`` and fresh function ids."""
    graph = _GraphUnpickler(io.BytesIO(data), ctx).load()
    for ref in graph.functions:         # ids are per process: never reuse the storing process's
        ref.id = f"{os.getpid()}-recovered-{id(ref)}"
    return graph


def _culprit(graph) -> str | None:
    """``stream name: function`` of the first stream attribute that does not pickle."""
    for stream in graph.streams:
        for attr, value in stream.__getstate__().items():
            if _pickles(value):
                continue
            bad = _innermost(value) or value
            what = fn_name(bad.fn if isinstance(bad, FnRef) else bad) if callable(bad) else type(bad).__name__
            return f"{stream.name} ({type(stream).__name__}.{attr}: {what})"
    return None


def _pickles(obj: Any) -> bool:
    try:
        _dumps(obj)
        return True
    except Exception:  # noqa: BLE001 — any failure means "not this one"
        return False


def _innermost(obj: Any, depth: int = 0) -> Any:
    """The most deeply nested function inside ``obj`` that does not pickle (closures, FnRefs)."""
    if depth > 20:
        return None
    inner = []
    if isinstance(obj, FnRef):
        inner = [obj.fn]
    elif isinstance(obj, types.FunctionType):
        inner = [c.cell_contents for c in (obj.__closure__ or ()) if _has_contents(c)]
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        inner = list(vars(obj).values())
    for x in inner:
        if callable(x) and not _pickles(x):
            return _innermost(x, depth + 1) or x
    return None


def _has_contents(cell) -> bool:
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False
