"""Ship user functions to each worker once, not with every task.

The engine wraps each user function once (per operator) with :func:`ship`;
the :class:`FnRef` may sit anywhere inside a task (as ``Task.fn``, or
captured by a fused closure). Tasks are pickled with :class:`TaskPickler`,
whose ``persistent_id`` writes every FnRef as ``("fn", id)`` and records the
id; the pool sends each worker ``(id, blob)`` for the ids it has not seen yet
(dependencies first: a blob may itself refer to other FnRefs), and the
worker's :class:`TaskUnpickler` resolves ``("fn", id)`` from its cache.

Blobs are made once per driver (:class:`BlobCache`) and dropped when the
FnRef is garbage-collected; the pool then tells the workers to forget the id,
so a long run that ships a new closure per batch does not grow.
"""

from __future__ import annotations

import io
import itertools
import os
import pickle
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import cloudpickle

__all__ = ["FnRef", "ship", "TaskPickler", "TaskUnpickler", "BlobCache", "fn_name"]

_counter = itertools.count()
#: How many recently shipped raw functions keep their FnRef (an LRU; bounded so that
#: per-batch closures do not pile up).
RECENT = 256
_recent: "OrderedDict[int, FnRef]" = OrderedDict()
_recent_lock = threading.Lock()


def fn_name(fn: Any) -> str:
    """``module.qualname`` of a function-like object, for messages."""
    target = getattr(fn, "func", fn)            # functools.partial
    qual = getattr(target, "__qualname__", None) or type(target).__qualname__
    mod = getattr(target, "__module__", None) or type(target).__module__
    return f"{qual} (module {mod})"


class FnRef:
    """A picklable, callable proxy for a user function, shipped to each worker once.

    Attributes
    ----------
    fn : callable
    id : str
        Unique per process and counter: ``"<pid>-<n>"``.
    name : str
        ``qualname (module m)`` for error messages.
    """

    __slots__ = ("fn", "id", "name", "__weakref__")

    def __init__(self, fn: Callable, id: str | None = None, name: str | None = None) -> None:
        self.fn = fn
        self.id = id or f"{os.getpid()}-{next(_counter)}"
        self.name = name or fn_name(fn)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"FnRef({self.name}, id={self.id})"

    def __reduce__(self):
        # outside a TaskPickler (e.g. plain cloudpickle) the function travels by value
        return (FnRef, (self.fn, self.id, self.name))


def ship(fn: Callable) -> FnRef:
    """Wrap ``fn`` for shipping; idempotent for an FnRef.

    The last :data:`RECENT` functions shipped keep their FnRef, so a raw
    function passed again (the same module-level function every batch) is
    not shipped again; a new closure per batch is, once per worker.
    """
    if isinstance(fn, FnRef):
        return fn
    if not callable(fn):
        raise TypeError(f"expected a callable, got {type(fn).__name__}")
    key = id(fn)
    with _recent_lock:
        ref = _recent.get(key)
        if ref is not None and ref.fn is fn:       # held strongly, so the id was not reused
            _recent.move_to_end(key)
            return ref
        ref = _recent[key] = FnRef(fn)
        while len(_recent) > RECENT:
            _recent.popitem(last=False)
        return ref


class TaskPickler(cloudpickle.Pickler):
    """cloudpickle, with every FnRef written as a reference ``("fn", id)``.

    ``refs`` maps the ids met to their FnRefs (the pool ships those first).
    """

    def __init__(self, file, skip: FnRef | None = None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.refs: dict[str, FnRef] = {}
        self._skip = skip

    def persistent_id(self, obj):
        if type(obj) is FnRef and obj is not self._skip:
            self.refs[obj.id] = obj
            return ("fn", obj.id)
        return None


def dumps(obj: Any, skip: FnRef | None = None) -> tuple[bytes, dict[str, FnRef]]:
    buf = io.BytesIO()
    p = TaskPickler(buf, skip)
    p.dump(obj)
    return buf.getvalue(), p.refs


class TaskUnpickler(pickle.Unpickler):
    """Resolves ``("fn", id)`` from ``cache`` (id -> FnRef, or the exception its blob raised)."""

    def __init__(self, file, cache: dict) -> None:
        super().__init__(file)
        self._cache = cache

    def persistent_load(self, pid):
        kind, fn_id = pid
        if kind != "fn":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        try:
            got = self._cache[fn_id]
        except KeyError:
            raise pickle.UnpicklingError(f"function {fn_id} was never shipped to this worker") from None
        if isinstance(got, BaseException):
            raise got
        return got


def loads(data: bytes, cache: dict) -> Any:
    return TaskUnpickler(io.BytesIO(data), cache).load()


class BlobCache:
    """Driver side: one pickled blob per live FnRef, with its FnRef dependencies.

    ``dead`` collects ids of FnRefs that were garbage-collected (appended
    from finalizers, possibly on another thread; deque appends are atomic).
    """

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[bytes, dict[str, FnRef]]] = {}
        self.dead: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._blobs)

    def blob(self, ref: FnRef) -> tuple[bytes, dict[str, FnRef]]:
        """(blob, the FnRefs it refers to) for ``ref``; raises TypeError naming the function.

        Holding the dependencies here does not extend their lives: ``ref.fn``
        refers to them anyway.
        """
        got = self._blobs.get(ref.id)
        if got is not None:
            return got
        try:
            # pickle the FnRef itself (by value, skipping its own persistent id) so the worker
            # gets an FnRef with the same id and name
            data, deps = dumps(ref, skip=ref)
        except Exception as exc:
            raise TypeError(f"cannot ship function {ref.name} to worker processes: it cannot be pickled "
                            f"({type(exc).__name__}: {exc}). Functions must not capture locks, sockets, "
                            f"open files or the StreamingContext; move such objects inside the function "
                            f"or use a module-level function.") from exc
        got = self._blobs[ref.id] = (data, deps)
        weakref.finalize(ref, self.dead.append, ref.id)
        return got

    def has(self, fn_id: str) -> bool:
        """Is the blob of ``fn_id`` still here (its FnRef alive)?"""
        return fn_id in self._blobs

    def data(self, fn_id: str) -> bytes:
        return self._blobs[fn_id][0]

    def order(self, refs: dict[str, FnRef]) -> list[str]:
        """Ids of ``refs`` and everything they refer to, dependencies first (post-order)."""
        out: list[str] = []
        done: set[str] = set()

        def visit(ref: FnRef) -> None:
            if ref.id in done:
                return
            done.add(ref.id)
            for dep in self.blob(ref)[1].values():
                visit(dep)
            out.append(ref.id)

        for ref in refs.values():
            visit(ref)
        return out

    def drop(self, fn_id: str) -> None:
        self._blobs.pop(fn_id, None)
