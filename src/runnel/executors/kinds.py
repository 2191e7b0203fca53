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
* a *dispatch record* — a dataclass with ``fn``, ``op`` and ``jitted``
  fields (:class:`~runnel.functions.Reducer`, a window's inverse) — runs
  Python when it has neither a kernel op nor a Numba function;
* an :class:`~runnel.executors.shipping.FnRef` (a shipped user function) runs
  Python unless it wraps a Numba dispatcher; so does a bare Python function,
  method or ``functools.partial`` met in a program (a task function handed
  to :meth:`Executor.run` directly);
* dataclasses, other runnel objects (their ``__dict__``), lists and tuples
  are walked; anything else (numbers, strings, arrays, kernel-only ops) is
  not Python.

The conf key :data:`STAGE_KIND_KEY` (``auto``, ``threads`` or ``processes``)
overrides the choice for every stage; :data:`INLINE_BYTES_KEY` sets the input
size up to which a stage runs inline in the calling thread whatever its kind
(0: never; the tests run the process path that way).
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Sequence

from runnel.executors.shipping import FnRef

__all__ = ["KINDS", "STAGE_KIND_KEY", "INLINE_BYTES_KEY", "check_kind", "runs_python", "stage_kind"]

KINDS = ("auto", "threads", "processes")
#: Context conf key overriding the automatic choice.
STAGE_KIND_KEY = "runnel.executor.stageKind"
#: Context conf key: stages whose inputs total at most this many bytes run inline (default 256 KiB).
INLINE_BYTES_KEY = "runnel.executor.inlineBytes"


def check_kind(kind: str) -> str:
    k = str(kind).strip().lower()
    if k not in KINDS:
        raise ValueError(f"{STAGE_KIND_KEY} must be one of {', '.join(KINDS)}; got {kind!r}")
    return k


def _is_compiled(fn) -> bool:
    # a Numba dispatcher (a user's reducer compiled by functions.compile_binary)
    return type(fn).__module__.startswith("numba.")


_ATOMS = (str, bytes, int, float, complex, bool, type(None))
#: type -> how to classify its instances: a bool, "fnref", "seq", ("dispatch",), ("fields", names)
#: or ("vars+slots", slot names) (walk the instance's __dict__, then its slots)
#: (decided once per type: a stage is classified on every batch, W5's tiny ones too)
_RULES: dict = {}


def _rule(tp: type):
    rule = _RULES.get(tp)
    if rule is not None:
        return rule
    declared = getattr(tp, "runs_python", None)
    if isinstance(declared, bool):
        rule = declared
    elif issubclass(tp, _ATOMS):
        rule = False
    elif tp is FnRef:
        rule = "fnref"
    elif issubclass(tp, (types.FunctionType, types.MethodType, functools.partial)):
        rule = True
    elif issubclass(tp, (list, tuple)):
        rule = "seq"
    elif dataclasses.is_dataclass(tp):
        names = tuple(f.name for f in dataclasses.fields(tp))
        rule = ("dispatch",) if {"fn", "op", "jitted"} <= set(names) else ("fields", names)
    elif tp.__module__.startswith("runnel.") and not tp.__module__.startswith("runnel.kernels"):
        mro = [c for c in tp.__mro__ if c is not object]
        slots = tuple(n for c in mro for n in ((c.__dict__.get("__slots__", ()),) if isinstance(
            c.__dict__.get("__slots__", ()), str) else c.__dict__.get("__slots__", ()))
            if n not in ("__dict__", "__weakref__"))
        has_dict = any("__slots__" not in c.__dict__ or "__dict__" in c.__slots__ for c in mro)
        rule = ("vars+slots", slots) if has_dict else ("fields", slots)
    else:
        rule = False
    _RULES[tp] = rule
    return rule


def runs_python(obj, _seen: set | None = None) -> bool:
    """Does this task program (or op, or task function) run user Python per record?

    Examples
    --------
    >>> import operator
    >>> from runnel.functions import Reducer
    >>> runs_python(Reducer(operator.add, op="sum")), runs_python(Reducer(lambda a, b: str(a) + str(b)))
    (False, True)
    """
    rule = _rule(type(obj))
    if rule is True or rule is False:
        return rule
    if rule == "fnref":
        return not _is_compiled(obj.fn)
    if rule[0] == "dispatch":
        return obj.op is None and obj.jitted is None
    seen = _seen if _seen is not None else set()
    if id(obj) in seen:        # met before in this stage: had it run Python, the walk would have stopped
        return False
    seen.add(id(obj))
    if rule == "seq":
        return any(runs_python(x, seen) for x in obj)
    if rule[0] == "vars+slots" and any(runs_python(v, seen) for v in vars(obj).values()):
        return True
    return any(runs_python(getattr(obj, name, None), seen) for name in rule[1])


def stage_kind(fns: Sequence, override: str = "auto") -> str:
    """``"threads"`` or ``"processes"`` for a stage whose tasks run ``fns``."""
    override = check_kind(override)
    if override != "auto":
        return override
    seen: set = set()
    return "processes" if any(runs_python(fn, seen) for fn in fns) else "threads"
