"""Function dispatch: which path runs a user's function.

A PySpark program passes plain Python callables. On the hot path we want
kernels, so each callable is classified once, in the driver, when the
operator is defined:

* a well-known reducer (``operator.add``, ``lambda a, b: a + b``, ``min``,
  ``max``, NumPy's ufuncs) maps to a kernel op name;
* a few very common record lambdas are recognised by their bytecode —
  ``lambda w: (w, 1)`` (pair with a constant), ``lambda l: l.split(" ")`` /
  ``l.split()`` / ``str.split`` (word splitting) — and run columnar;
* any other reducer is compiled with Numba; if that fails it runs on the
  Python path, and we say so once with a :class:`PythonFallbackWarning`
  naming the function.

Recognising bytecode is exact, not heuristic: two lambdas with identical
instructions, constants and names compute the same thing.
"""

from __future__ import annotations

import builtins
import dis
import operator
import types
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .executors.shipping import FnRef


class PythonFallbackWarning(UserWarning):
    """A user function runs per record in Python because Numba cannot compile it."""


_warned: set = set()


def describe(fn: Any) -> str:
    """A human name for a function: qualname and where it was defined."""
    inner = getattr(fn, "fn", fn)  # FnRef
    name = getattr(inner, "__qualname__", None) or getattr(inner, "__name__", None) or repr(inner)
    code = getattr(inner, "__code__", None)
    if code is not None:
        return f"{name} ({code.co_filename}:{code.co_firstlineno})"
    mod = getattr(inner, "__module__", None)
    return f"{mod}.{name}" if mod else name


def warn_fallback(fn: Any, why: str) -> None:
    key = getattr(fn, "__code__", fn)
    try:
        if key in _warned:
            return
        _warned.add(key)
    except TypeError:
        pass
    warnings.warn(f"{describe(fn)} runs on the Python path ({why}); "
                  "use a built-in operator or a Numba-compilable function for kernel speed",
                  PythonFallbackWarning, stacklevel=4)


def _shape(fn: Any) -> tuple | None:
    """Instructions of a plain function, normalised for comparison."""
    if isinstance(fn, FnRef):  # DStream methods ship functions before the Dataset op recognises them
        fn = fn.fn
    if not isinstance(fn, types.FunctionType) or fn.__closure__:
        return None
    code = fn.__code__
    ops = []
    for ins in dis.get_instructions(code):
        if ins.opname in ("RESUME", "NOP", "CACHE", "PRECALL", "COPY_FREE_VARS"):
            continue
        arg = ins.argval if ins.opname in ("LOAD_CONST", "LOAD_ATTR", "LOAD_METHOD", "LOAD_GLOBAL",
                                          "BINARY_OP", "COMPARE_OP", "BUILD_TUPLE", "CALL") else None
        if ins.opname in ("LOAD_FAST", "LOAD_FAST_LOAD_FAST", "STORE_FAST"):
            arg = ins.arg
        if ins.opname == "RETURN_CONST":
            ops.extend([("LOAD_CONST", ins.argval), ("RETURN_VALUE", None)])
            continue
        ops.append((ins.opname, arg))
    return (code.co_argcount, tuple(ops))


def _globals_are_builtins(fn: types.FunctionType, names) -> bool:
    return all(fn.__globals__.get(n, getattr(builtins, n, None)) is getattr(builtins, n, object()) for n in names)


_ADD = _shape(lambda a, b: a + b)
_MIN = _shape(lambda a, b: min(a, b))
_MAX = _shape(lambda a, b: max(a, b))

_SUB = _shape(lambda a, b: a - b)
_KNOWN_SUBTRACTIONS = (operator.sub, operator.isub, np.subtract)


def is_subtraction(fn: Callable) -> bool:
    """Is ``fn`` ``a - b`` (the inverse of add, for incremental windows)?"""
    fn = fn.fn if isinstance(fn, FnRef) else fn
    try:
        if fn in _KNOWN_SUBTRACTIONS:
            return True
    except TypeError:
        pass
    return _shape(fn) == _SUB


_KNOWN_REDUCERS: dict[Any, str] = {
    operator.add: "sum", operator.iadd: "sum", np.add: "sum",
    builtins.min: "min", np.minimum: "min", np.fmin: "min",
    builtins.max: "max", np.maximum: "max", np.fmax: "max",
}


def reducer_op(fn: Callable) -> str | None:
    """The kernel op a binary reduce function is equivalent to, or None."""
    try:
        op = _KNOWN_REDUCERS.get(fn)
    except TypeError:
        op = None
    if op:
        return op
    shape = _shape(fn)
    if shape is None:
        return None
    if shape == _ADD:
        return "sum"
    if shape == _MIN and _globals_are_builtins(fn, ["min"]):
        return "min"
    if shape == _MAX and _globals_are_builtins(fn, ["max"]):
        return "max"
    return None


_compiled: "weakref.WeakKeyDictionary[Callable, Any]" = weakref.WeakKeyDictionary()


def compile_binary(fn: Callable):
    """A Numba dispatcher for ``fn(a, b)`` on int64 and float64, or None.

    Only when ``fn`` returns its arguments' type (int64 for ints, float64 for
    floats): the kernel casts results to the values' dtype, which would turn
    ``(a + b) / 2`` on ints into ints. Memoised per function, so a reducer
    passed again (in ``transform``, every batch) is compiled once.
    """
    if not isinstance(fn, types.FunctionType):
        return None
    try:
        return _compiled[fn]
    except KeyError:
        pass
    jf = None
    try:
        from numba import types as nt
        from runnel.kernels._config import jit
        jf = jit(fn, cache=False)  # a user's function: not disk-cached (see kernels/_config.py)
        for t in (nt.int64, nt.float64):
            jf.compile((t, t))
            if jf.overloads[(t, t)].signature.return_type != t:
                jf = None
                break
    except Exception:  # any typing/lowering failure means: not compilable
        jf = None
    _compiled[fn] = jf
    return jf


#: function (or its code) -> {input dtype: (dispatcher, output dtype) or None when it does not compile}
_unary: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def compile_unary(fn: Callable, dtype: np.dtype):
    """``(dispatcher, result dtype)`` for ``fn(x)`` on ``dtype`` values, or None.

    Compiled lazily, in the process that runs the task, the first time a
    column big enough to repay the compilation arrives; with Python's error
    model, so ``1 / 0`` still raises ZeroDivisionError as it would per record.
    A function whose result is not a number or a bool (say, a string) is
    left to the Python path silently: Numba could not make it a column
    anyway. One that fails to compile at all gets the fallback warning once.
    Caveat: int64 results wrap on overflow where Python ints would not.
    """
    fn = fn.fn if isinstance(fn, FnRef) else fn
    if not isinstance(fn, types.FunctionType):
        return None
    # a lambda re-created per batch (inside transform) has the same code: compile it once
    key = fn.__code__ if fn.__closure__ is None and not fn.__defaults__ else fn
    per_fn = _unary.setdefault(key, {})
    if dtype in per_fn:
        return per_fn[dtype]
    result = None
    try:
        from numba import from_dtype
        from numba import types as nt
        from runnel.kernels._config import jit
        jf = jit(fn, cache=False, error_model="python")
        arg = from_dtype(dtype)
        jf.compile((arg,))
        rt = jf.overloads[(arg,)].signature.return_type
        if isinstance(rt, nt.Boolean):
            result = (jf, np.dtype(np.bool_))
        elif isinstance(rt, (nt.Integer, nt.Float)):
            result = (jf, np.dtype(str(rt)))
    except Exception:  # any typing/lowering failure means: not compilable
        warn_fallback(fn, f"Numba cannot compile it for {dtype} values")
    per_fn[dtype] = result
    return result


@dataclass(frozen=True)
class Reducer:
    """How a binary reduce function runs: a kernel op, a Numba function or Python."""
    fn: Any                    # the user's function (an FnRef when shipped)
    op: str | None = None      # kernel op name
    jitted: Any = None         # Numba dispatcher

    @classmethod
    def of(cls, fn: Callable, ship: Callable = lambda f: f) -> "Reducer":
        op = reducer_op(fn)
        if op:
            return cls(ship(fn), op=op)
        jitted = compile_binary(fn)
        if jitted is not None:
            return cls(ship(fn), jitted=ship(jitted))
        warn_fallback(fn, "Numba cannot compile it")
        return cls(ship(fn))


# --- record lambdas ----------------------------------------------------------

_PAIR_CONST = _shape(lambda w: (w, 1))
_SPLIT_SEP = _shape(lambda line: line.split(" "))
_SPLIT_WS = _shape(lambda line: line.split())


def pair_with_constant(fn: Callable) -> tuple[bool, Any]:
    """Is fn ``lambda x: (x, c)`` for a constant c? Returns (True, c)."""
    shape = _shape(fn)
    if shape is None or shape[0] != 1:
        return False, None
    ops = shape[1]
    ref = _PAIR_CONST[1]
    if len(ops) != len(ref):
        return False, None
    for (o, a), (ro, ra) in zip(ops, ref):
        if o != ro or (o != "LOAD_CONST" and a != ra):
            return False, None
    const = next(a for o, a in ops if o == "LOAD_CONST")
    if type(const) not in (int, float, bool, str):
        return False, None
    return True, const


def split_pattern(fn: Callable) -> tuple[bool, str | None]:
    """Is fn a word splitter? Returns (True, sep) with sep None for whitespace."""
    if getattr(fn, "fn", fn) is str.split:
        return True, None
    shape = _shape(fn)
    if shape is None:
        return False, None
    if shape == _SPLIT_WS:
        return True, None
    if shape is not None and _SPLIT_SEP is not None and len(shape[1]) == len(_SPLIT_SEP[1]):
        consts = [a for o, a in shape[1] if o == "LOAD_CONST"]
        rest = [(o, a) for o, a in shape[1] if o != "LOAD_CONST"]
        ref_rest = [(o, a) for o, a in _SPLIT_SEP[1] if o != "LOAD_CONST"]
        if shape[0] == 1 and rest == ref_rest and len(consts) == 1 and isinstance(consts[0], str) and consts[0]:
            return True, consts[0]
    return False, None
