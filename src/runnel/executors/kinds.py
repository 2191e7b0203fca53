"""Which kind of executor a stage runs on: threads (kernels) or processes (user Python).

``local[N]`` runs a stage on N threads of the driver unless its task
programs run user Python per record — the Python fallback of a function
Numba cannot compile (``map``, ``filter``, ``flat_map``, a reducer),
a Python updater, ``map_with_state``'s function, ``map_batches``: the GIL
would run those threads one at a time, so such a stage goes to N worker
processes. :func:`runs_python` decides by walking the task programs, which
are small trees of dataclasses (``plan.py``'s programs, ``ops.py``'s ops):

* an object whose class sets ``runs_python`` (a bool) says so itself (an op
  that holds a user function only as a fallback it rarely takes, such as
  ``SplitWords``, sets False);
* a *dispatch record* — an object with ``fn``, ``op`` and ``jitted``
  attributes (:class:`~runnel.functions.Reducer`, a window's inverse) — runs
  Python when it has neither a kernel op nor a Numba function;
* an :class:`~runnel.executors.shipping.FnRef` (a shipped user function) runs
  Python unless it wraps a Numba dispatcher; so does a bare Python function,
  method or ``functools.partial`` met in a program (a task function handed
  to :meth:`Executor.run` directly);
* dataclasses, runnel objects with a ``__dict__``, lists and tuples are
  walked; anything else (numbers, strings, arrays, kernel-only ops) is not
  Python.

The conf key :data:`STAGE_KIND_KEY` (``auto``, ``threads`` or ``processes``)
overrides the choice for every stage.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Sequence

from runnel.executors.shipping import FnRef

__all__ = ["KINDS", "STAGE_KIND_KEY", "check_kind", "runs_python", "stage_kind"]

KINDS = ("auto", "threads", "processes")
#: Context conf key overriding the automatic choice.
STAGE_KIND_KEY = "runnel.executor.stageKind"


def check_kind(kind: str) -> str:
    k = str(kind).strip().lower()
    if k not in KINDS:
        raise ValueError(f"{STAGE_KIND_KEY} must be one of {', '.join(KINDS)}; got {kind!r}")
    return k


def _is_compiled(fn) -> bool:
    # a Numba dispatcher (a user's reducer compiled by functions.compile_binary)
    return type(fn).__module__.startswith("numba.")


def runs_python(obj, _seen: set | None = None) -> bool:
    """Does this task program (or op, or task function) run user Python per record?

    Examples
    --------
    >>> import operator
    >>> from runnel.functions import Reducer
    >>> runs_python(Reducer(operator.add, op="sum")), runs_python(Reducer(lambda a, b: str(a) + str(b)))
    (False, True)
    """
    declared = getattr(type(obj), "runs_python", None)
    if isinstance(declared, bool):
        return declared
    if obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return False
    if isinstance(obj, FnRef):
        return not _is_compiled(obj.fn)
    if all(hasattr(obj, a) for a in ("fn", "op", "jitted")):
        return obj.op is None and obj.jitted is None
    if isinstance(obj, (types.FunctionType, types.MethodType, functools.partial)):
        return True
    seen = _seen if _seen is not None else set()
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        return any(runs_python(x, seen) for x in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return any(runs_python(getattr(obj, f.name), seen) for f in dataclasses.fields(obj))
    if type(obj).__module__.startswith("runnel.") and hasattr(obj, "__dict__"):
        return any(runs_python(v, seen) for v in vars(obj).values())
    return False


def stage_kind(fns: Sequence, override: str = "auto") -> str:
    """``"threads"`` or ``"processes"`` for a stage whose tasks run ``fns``."""
    override = check_kind(override)
    if override != "auto":
        return override
    seen: set = set()
    return "processes" if any(runs_python(fn, seen) for fn in fns) else "threads"
