"""Column expressions: lazy trees evaluated on a whole batch at a time.

``sdf["v"] * 2 + 1`` builds a tree of :class:`Expr` nodes; nothing runs until a
batch arrives, and then each node is one vectorised call per batch — NumPy
for numeric, bool and datetime columns, ``pyarrow.compute`` for Arrow strings
— never a Python call per row. The one exception is :meth:`Expr.map` with a
function Numba cannot compile: it runs per value in Python, with the engine's
one :class:`~runnel.functions.PythonFallbackWarning`
(``runnel.functions.compile_unary``).

Nulls follow pandas: NaN in float columns, NaT in datetimes, null in Arrow
strings, ``None`` in object columns. A comparison with a null is False
(``!=`` is True); arithmetic with a NaN gives NaN.

Examples
--------
>>> import numpy as np
>>> from runnel.frame.schema import frame_batch
>>> b = frame_batch({"v": np.array([1, -2, 3])})
>>> evaluate((col("v").abs() * 10).clip(upper=25), b).tolist()
[10, 20, 25]
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..batch import Batch, Column, column_to_list, infer_column, is_arrow, object_array

__all__ = ["Expr", "col", "lit", "evaluate"]


class Expr:
    """A lazy column expression (see the module docstring)."""

    # -- arithmetic and comparisons -------------------------------------------------------------
    def _bin(self, op: str, other: Any, reflected: bool = False) -> "Expr":
        other = as_expr(other)
        return BinOp(op, other, self) if reflected else BinOp(op, self, other)

    def __add__(self, o): return self._bin("add", o)
    def __radd__(self, o): return self._bin("add", o, True)
    def __sub__(self, o): return self._bin("sub", o)
    def __rsub__(self, o): return self._bin("sub", o, True)
    def __mul__(self, o): return self._bin("mul", o)
    def __rmul__(self, o): return self._bin("mul", o, True)
    def __truediv__(self, o): return self._bin("truediv", o)
    def __rtruediv__(self, o): return self._bin("truediv", o, True)
    def __floordiv__(self, o): return self._bin("floordiv", o)
    def __rfloordiv__(self, o): return self._bin("floordiv", o, True)
    def __mod__(self, o): return self._bin("mod", o)
    def __rmod__(self, o): return self._bin("mod", o, True)
    def __pow__(self, o): return self._bin("pow", o)
    def __rpow__(self, o): return self._bin("pow", o, True)
    def __eq__(self, o): return self._bin("eq", o)          # type: ignore[override]
    def __ne__(self, o): return self._bin("ne", o)          # type: ignore[override]
    def __lt__(self, o): return self._bin("lt", o)
    def __le__(self, o): return self._bin("le", o)
    def __gt__(self, o): return self._bin("gt", o)
    def __ge__(self, o): return self._bin("ge", o)
    def __and__(self, o): return self._bin("and", o)
    def __rand__(self, o): return self._bin("and", o, True)
    def __or__(self, o): return self._bin("or", o)
    def __ror__(self, o): return self._bin("or", o, True)
    def __xor__(self, o): return self._bin("xor", o)
    def __invert__(self): return Call("invert", self)
    def __neg__(self): return Call("neg", self)
    def __pos__(self): return self
    def __abs__(self): return self.abs()

    __hash__ = object.__hash__

    def __bool__(self):
        raise TypeError("the truth value of a column expression is decided per row: use & | ~ instead of "
                        "and / or / not, and a mask (sdf[expr]) instead of if")

    # -- element-wise functions ------------------------------------------------------------------
    def isin(self, values) -> "Expr":
        """True where the value is one of ``values``."""
        return Call("isin", self, values=tuple(values))

    def isnull(self) -> "Expr":
        """True where the value is null (NaN, NaT, None)."""
        return Call("isnull", self)

    isna = isnull

    def notnull(self) -> "Expr":
        return Call("notnull", self)

    notna = notnull

    def abs(self) -> "Expr":
        return Call("abs", self)

    def round(self, decimals: int = 0) -> "Expr":
        """Round half to even, as pandas and NumPy do."""
        return Call("round", self, decimals=int(decimals))

    def clip(self, lower: Any = None, upper: Any = None) -> "Expr":
        return Call("clip", self, lower=lower, upper=upper)

    def where(self, cond: Any, other: Any = np.nan) -> "Expr":
        """pandas' ``Series.where``: this value where ``cond`` is true, else ``other``."""
        return Where(as_expr(cond), self, as_expr(other))

    def mask(self, cond: Any, other: Any = np.nan) -> "Expr":
        """pandas' ``Series.mask``: ``other`` where ``cond`` is true, else this value."""
        return Where(as_expr(cond), as_expr(other), self)

    def between(self, left: Any, right: Any, inclusive: str = "both") -> "Expr":
        """``left <= x <= right`` (``inclusive`` is "both", "neither", "left" or "right")."""
        if inclusive not in ("both", "neither", "left", "right"):
            raise ValueError(f"inclusive must be 'both', 'neither', 'left' or 'right', got {inclusive!r}")
        lo = (self >= left) if inclusive in ("both", "left") else (self > left)
        hi = (self <= right) if inclusive in ("both", "right") else (self < right)
        return lo & hi

    def fillna(self, value: Any) -> "Expr":
        return Call("fillna", self, value=value)

    def astype(self, dtype: Any) -> "Expr":
        from .schema import normalize_dtype
        return Call("astype", self, dtype=normalize_dtype(dtype))

    def map(self, fn: Callable, na_action: str | None = None) -> "Expr":
        """Apply ``fn`` to every value: compiled with Numba for numeric columns when it can be
        (``runnel.functions.compile_unary``), else per value in Python with one warning."""
        if not callable(fn):
            raise TypeError(f"map expects a function, got {type(fn).__name__}: {fn!r}")
        return MapFn(self, fn)

    apply = map

    @property
    def str(self) -> "StrAccessor":
        """String functions on Arrow string columns (``pyarrow.compute``)."""
        from .accessors import StrAccessor
        return StrAccessor(self)

    @property
    def dt(self) -> "DtAccessor":
        """Datetime fields of datetime64 columns."""
        from .accessors import DtAccessor
        return DtAccessor(self)

    def alias(self, name: str) -> "Expr":
        return Alias(self, str(name))

    @property
    def name(self) -> str | None:
        return None

    def columns(self) -> set[str]:
        """Names of the columns this expression reads."""
        out: set[str] = set()
        for c in self.children():
            out |= c.columns()
        return out

    def children(self) -> tuple["Expr", ...]:
        return ()


@dataclass(eq=False, repr=False)
class Col(Expr):
    col_name: str

    @property
    def name(self) -> str:
        return self.col_name

    def columns(self) -> set[str]:
        return {self.col_name}

    def __repr__(self) -> str:
        return f"col({self.col_name!r})"


@dataclass(eq=False, repr=False)
class Lit(Expr):
    value: Any

    def __repr__(self) -> str:
        return f"lit({self.value!r})"


@dataclass(eq=False, repr=False)
class Alias(Expr):
    expr: Expr
    alias_name: str

    @property
    def name(self) -> str:
        return self.alias_name

    def children(self):
        return (self.expr,)

    def __repr__(self) -> str:
        return f"{self.expr!r}.alias({self.alias_name!r})"


@dataclass(eq=False, repr=False)
class BinOp(Expr):
    op: str
    left: Expr
    right: Expr

    @property
    def name(self) -> str | None:
        return self.left.name

    def children(self):
        return (self.left, self.right)

    def __repr__(self) -> str:
        return f"({self.left!r} {_SYMBOLS[self.op]} {self.right!r})"


@dataclass(eq=False, repr=False)
class Call(Expr):
    """A built-in function of one column: ``fn`` names it in :data:`_CALLS`; ``kw`` its options."""
    fn: str
    arg: Expr
    kw: dict

    def __init__(self, fn: str, arg: Expr, **kw: Any):
        self.fn, self.arg, self.kw = fn, arg, kw

    @property
    def name(self) -> str | None:
        return self.arg.name

    def children(self):
        return (self.arg,)

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.kw.items())
        return f"{self.fn}({self.arg!r}{opts})"


@dataclass(eq=False, repr=False)
class Where(Expr):
    cond: Expr
    then: Expr
    other: Expr

    @property
    def name(self) -> str | None:
        return self.then.name

    def children(self):
        return (self.cond, self.then, self.other)


@dataclass(eq=False, repr=False)
class MapFn(Expr):
    arg: Expr
    fn: Callable

    @property
    def name(self) -> str | None:
        return self.arg.name

    def children(self):
        return (self.arg,)


def col(name: str) -> Expr:
    """A reference to column ``name``."""
    return Col(str(name))


def lit(value: Any) -> Expr:
    """A constant (broadcast to every row)."""
    return Lit(value)


def as_expr(x: Any) -> Expr:
    return x if isinstance(x, Expr) else Lit(x)


# --- evaluation --------------------------------------------------------------------------------

_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%", "pow": "**",
            "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "and": "&", "or": "|",
            "xor": "^"}
_NUMPY_OPS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
              "floordiv": np.floor_divide, "mod": np.mod, "pow": np.power, "eq": np.equal, "ne": np.not_equal,
              "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
              "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}
_ARROW_CMP = {"eq": pc.equal, "ne": pc.not_equal, "lt": pc.less, "le": pc.less_equal, "gt": pc.greater,
              "ge": pc.greater_equal}
_PY_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
           "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow, "eq": operator.eq,
           "ne": operator.ne, "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
           "and": operator.and_, "or": operator.or_, "xor": operator.xor}


class ExprError(ValueError):
    """An expression cannot be evaluated on a batch (names the expression and what was wrong)."""


def evaluate(expr: Any, batch: Batch) -> Column | Any:
    """The value of ``expr`` on ``batch``: a column as long as the batch, or a scalar for a literal."""
    if not isinstance(expr, Expr):
        return expr
    if isinstance(expr, Col):
        try:
            return batch.columns[expr.col_name]
        except KeyError:
            raise ExprError(f"no column {expr.col_name!r} (columns: {list(batch.columns)})") from None
    if isinstance(expr, Lit):
        return expr.value
    if isinstance(expr, Alias):
        return evaluate(expr.expr, batch)
    if isinstance(expr, BinOp):
        return binary(expr.op, evaluate(expr.left, batch), evaluate(expr.right, batch), len(batch))
    if isinstance(expr, Call):
        return _CALLS[expr.fn](evaluate(expr.arg, batch), len(batch), **expr.kw)
    if isinstance(expr, Where):
        return where(evaluate(expr.cond, batch), evaluate(expr.then, batch), evaluate(expr.other, batch),
                     len(batch))
    if isinstance(expr, MapFn):
        return map_column(broadcast(evaluate(expr.arg, batch), len(batch)), expr.fn)
    from .accessors import evaluate_accessor
    return evaluate_accessor(expr, batch)


def broadcast(x: Any, n: int) -> Column:
    """A scalar repeated n times as a column (columns pass through)."""
    if isinstance(x, (np.ndarray, pa.Array)):
        return x
    if isinstance(x, str):
        return pa.array([x] * n, pa.string())
    if x is None:
        return object_array([None] * n)
    return infer_column([x]) if n == 1 else np.full(n, x) if not isinstance(x, (bytes, tuple)) else \
        infer_column([x] * n)


def _np(x: Any) -> Any:
    """A column as something NumPy computes on: Arrow numbers with nulls become float NaN."""
    if is_arrow(x):
        t = x.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) \
                or pa.types.is_large_binary(t):
            return object_array(x.to_pylist())
        return arrow_to_numpy(x)
    return x


def arrow_to_numpy(a: pa.Array) -> np.ndarray:
    """A numeric/bool Arrow result as NumPy: nulls become NaN (numbers) or False (bools)."""
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    if pa.types.is_boolean(a.type):
        return np.asarray(a.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    if a.null_count:
        return np.asarray(a.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False))
    return a.to_numpy(zero_copy_only=False)


def _is_str(x: Any) -> bool:
    return (is_arrow(x) and (pa.types.is_string(x.type) or pa.types.is_large_string(x.type))) or isinstance(x, str)


def binary(op: str, a: Any, b: Any, n: int) -> Column:
    """``a op b`` element-wise (columns or scalars)."""
    if _is_str(a) or _is_str(b):
        if op in _ARROW_CMP:
            if not (isinstance(a, (str, pa.Array)) and isinstance(b, (str, pa.Array))):
                raise ExprError(f"cannot compare strings with {type(b if _is_str(a) else a).__name__} values "
                                f"(operator {_SYMBOLS[op]})")
            out = _ARROW_CMP[op](a, b)
            if isinstance(out, pa.Scalar):
                return np.full(n, out.as_py())
            return np.asarray(out.fill_null(op == "ne").to_numpy(zero_copy_only=False), dtype=bool)
        if op == "add":
            return pc.binary_join_element_wise(broadcast(a, n), broadcast(b, n), "")
        raise ExprError(f"operator {_SYMBOLS[op]} is not defined for strings")
    a, b = _np(a), _np(b)
    if (isinstance(a, np.ndarray) and a.dtype == object) or (isinstance(b, np.ndarray) and b.dtype == object):
        f = _PY_OPS[op]
        av = a.tolist() if isinstance(a, np.ndarray) else [a] * n
        bv = b.tolist() if isinstance(b, np.ndarray) else [b] * n
        return infer_column([None if x is None or y is None else f(x, y) for x, y in zip(av, bv)])
    if op in ("and", "or", "xor"):
        a = a.astype(bool) if isinstance(a, np.ndarray) else bool(a)
        b = b.astype(bool) if isinstance(b, np.ndarray) else bool(b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = _NUMPY_OPS[op](a, b)
    if not isinstance(out, np.ndarray):
        out = np.full(n, out)
    return out


def where(cond: Any, then: Any, other: Any, n: int) -> Column:
    """``then`` where ``cond`` is true, else ``other`` (pandas' ``where``)."""
    mask = as_mask(cond, n)
    if _is_str(then) or _is_str(other):
        if other is None or (isinstance(other, float) and np.isnan(other)):
            other = pa.nulls(n, pa.string())
        if then is None or (isinstance(then, float) and np.isnan(then)):
            then = pa.nulls(n, pa.string())
        return pc.if_else(pa.array(mask), broadcast(then, n), broadcast(other, n))
    t, o = _np(then), _np(other)
    return np.where(mask, t, o)


def as_mask(x: Any, n: int) -> np.ndarray:
    """A boolean row mask (nulls are False)."""
    x = _np(x)
    if not isinstance(x, np.ndarray):
        return np.full(n, bool(x))
    if x.dtype == bool:
        return x
    if x.dtype == object:
        return np.array([bool(v) if v is not None else False for v in x.tolist()], dtype=bool)
    raise ExprError(f"a row mask must be boolean, got a column of {x.dtype}")


# --- built-in functions of one column ---------------------------------------------------------------

def isnull_column(x: Any, n: int) -> np.ndarray:
    if is_arrow(x):
        return np.asarray(x.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if not isinstance(x, np.ndarray):
        return np.full(n, x is None or (isinstance(x, float) and x != x))
    if x.dtype.kind == "f":
        return np.isnan(x)
    if x.dtype.kind in "mM":
        return np.isnat(x)
    if x.dtype == object:
        return np.array([v is None or (isinstance(v, float) and v != v) for v in x.tolist()], dtype=bool)
    return np.zeros(len(x), dtype=bool)


def _isin(x, n, values):
    if is_arrow(x):
        return np.asarray(pc.is_in(x, value_set=pa.array([v for v in values if isinstance(v, (str, bytes))],
                                                          x.type)).fill_null(False)
                          .to_numpy(zero_copy_only=False), dtype=bool)
    x = _np(broadcast(x, n))
    if x.dtype == object:
        s = set(values)
        return np.array([v in s for v in x.tolist()], dtype=bool)
    nums = [v for v in values if isinstance(v, (int, float, bool, np.number)) and not isinstance(v, str)]
    return np.isin(x, np.array(nums)) if nums else np.zeros(len(x), dtype=bool)


def _round(x, n, decimals):
    x = _np(x)
    return np.round(x, decimals) if isinstance(x, np.ndarray) else round(x, decimals)


def _clip(x, n, lower, upper):
    x = _np(x)
    if lower is None and upper is None:
        return x
    return np.clip(x, lower, upper)


def _fillna(x, n, value):
    if is_arrow(x):
        return x.fill_null(pa.scalar(value, x.type))
    x = _np(x)
    if not isinstance(x, np.ndarray):
        return value if x is None else x
    miss = isnull_column(x, n)
    if not miss.any():
        return x
    if x.dtype == object:
        filled = x.copy()
        filled[miss] = value
        return infer_column(filled.tolist())
    out = x.copy()
    out[miss] = value
    return out


def _astype(x, n, dtype):
    from .schema import dtype_of
    x = broadcast(x, n)
    if dtype_of(x) == dtype:
        return x
    if dtype in ("string", "binary"):
        target = pa.string() if dtype == "string" else pa.binary()
        if is_arrow(x):
            return x.cast(target)
        if x.dtype == object:
            return pa.array([None if v is None else (str(v) if dtype == "string" else bytes(v)) for v in x.tolist()],
                            target)
        if x.dtype.kind == "f":   # Python's repr of floats ("1.0"), as pandas' astype(str)
            return pa.array([str(v) for v in x.tolist()], target)
        return pc.cast(pa.array(x), target)
    if dtype == "object":
        return object_array(column_to_list(x))
    if is_arrow(x):
        try:
            return arrow_to_numpy(pc.cast(x, pa.from_numpy_dtype(np.dtype(dtype))))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise ExprError(f"cannot convert strings to {dtype}: {e}") from None
    try:
        if np.dtype(dtype).kind in "iu" and x.dtype.kind == "f" and np.isnan(x).any():
            raise ExprError(f"cannot convert a column holding NaN to {dtype}")
        return x.astype(dtype)
    except (TypeError, ValueError) as e:
        raise ExprError(f"cannot convert a column of {x.dtype} to {dtype}: {e}") from None


def _invert(x, n):
    x = _np(x)
    if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
        return ~x
    return ~as_mask(x, n)


def _neg(x, n):
    x = _np(x)
    return -x


def _abs(x, n):
    return np.abs(_np(x))


_CALLS: dict[str, Callable] = {
    "isin": _isin, "isnull": isnull_column, "notnull": lambda x, n: ~isnull_column(x, n), "abs": _abs,
    "round": _round, "clip": _clip, "fillna": _fillna, "astype": _astype, "invert": _invert, "neg": _neg,
}


# --- user functions ------------------------------------------------------------------------------

def map_column(x: Column, fn: Callable) -> Column:
    """``fn`` on every value: compiled when Numba can (numeric columns of at least
    ``ops.COMPILE_MIN_ROWS`` rows), else per value in Python — the engine's rule."""
    from .. import ops
    from ..functions import compile_unary, warn_fallback
    from runnel.kernels import map_values
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf" and len(x) >= ops.COMPILE_MIN_ROWS:
        got = compile_unary(fn, x.dtype)
        if got is not None:
            jf, out_dtype = got
            return map_values(x, jf, out_dtype)
    elif len(x) >= ops.COMPILE_MIN_ROWS:
        warn_fallback(getattr(fn, "fn", fn), f"Numba does not compile functions of {_describe_col(x)} values")
    f = getattr(fn, "fn", fn)
    return infer_column([f(v) for v in column_to_list(x)])


def _describe_col(x: Column) -> str:
    return str(x.type) if is_arrow(x) else str(x.dtype)
