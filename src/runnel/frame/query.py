"""``sdf.query("v > 0 and k != 'x'")``: a query string parsed with :mod:`ast` into an expression tree.

Nothing is evaluated with ``eval``: only names (columns, or values passed as
keywords), constants, lists/tuples of constants, arithmetic, comparisons
(chained too), ``and``/``or``/``not``, ``in``/``not in`` and a few methods
(``isnull``, ``notnull``, ``isin``, ``between``, ``abs``, ``str.*``) are
accepted; anything else is a ``ValueError`` naming what was not understood.
"""

from __future__ import annotations

import ast
from typing import Any

from .expr import Expr, as_expr, col

__all__ = ["parse_query"]

_BIN = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__", ast.Div: "__truediv__",
        ast.FloorDiv: "__floordiv__", ast.Mod: "__mod__", ast.Pow: "__pow__", ast.BitAnd: "__and__",
        ast.BitOr: "__or__"}
_CMP = {ast.Eq: "__eq__", ast.NotEq: "__ne__", ast.Lt: "__lt__", ast.LtE: "__le__", ast.Gt: "__gt__",
        ast.GtE: "__ge__"}
_METHODS = {"isnull", "isna", "notnull", "notna", "isin", "between", "abs", "round", "clip", "fillna"}
_STR_METHODS = {"lower", "upper", "strip", "len", "contains", "startswith", "endswith", "slice", "replace"}


def parse_query(text: str, columns: Any, values: dict[str, Any] | None = None) -> Expr:
    """The expression a query string stands for; ``columns``: names of the frame's columns."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"query {text!r} is not a valid expression: {e.msg}") from None
    return _Builder(text, set(columns), values or {}).expr(tree.body)


class _Builder:
    def __init__(self, text: str, columns: set[str], values: dict[str, Any]):
        self.text, self.columns, self.values = text, columns, values

    def fail(self, node: ast.AST, why: str) -> ValueError:
        return ValueError(f"query {self.text!r}: {why} (at {ast.unparse(node)!r})")

    def expr(self, node: ast.AST) -> Any:
        if isinstance(node, ast.BoolOp):
            parts = [as_expr(self.expr(v)) for v in node.values]
            out = parts[0]
            for p in parts[1:]:
                out = (out & p) if isinstance(node.op, ast.And) else (out | p)
            return out
        if isinstance(node, ast.UnaryOp):
            v = self.expr(node.operand)
            if isinstance(node.op, (ast.Not, ast.Invert)):
                return ~as_expr(v)
            if isinstance(node.op, ast.USub):
                return -v
            return v
        if isinstance(node, ast.BinOp):
            op = _BIN.get(type(node.op))
            if op is None:
                raise self.fail(node, f"operator {type(node.op).__name__} is not supported")
            left, right = self.expr(node.left), self.expr(node.right)
            if not isinstance(left, Expr):
                left = as_expr(left)
            return getattr(left, op)(right)
        if isinstance(node, ast.Compare):
            out = None
            left = self.expr(node.left)
            for op, comp in zip(node.ops, node.comparators):
                right = self.expr(comp)
                if isinstance(op, (ast.In, ast.NotIn)):
                    if not isinstance(right, (list, tuple, set)):
                        raise self.fail(node, "'in' needs a list of values on its right")
                    term = as_expr(left).isin(right)
                    if isinstance(op, ast.NotIn):
                        term = ~term
                else:
                    name = _CMP.get(type(op))
                    if name is None:
                        raise self.fail(node, f"comparison {type(op).__name__} is not supported")
                    term = getattr(as_expr(left), name)(right)
                out = term if out is None else out & term
                left = right
            return out
        if isinstance(node, ast.Name):
            if node.id in self.columns:
                return col(node.id)
            if node.id in self.values:
                return self.values[node.id]
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            raise self.fail(node, f"{node.id!r} is neither a column ({sorted(self.columns)}) nor a value "
                                  "passed as a keyword")
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            vals = [self.expr(e) for e in node.elts]
            if any(isinstance(v, Expr) for v in vals):
                raise self.fail(node, "a list in a query holds constants only")
            return vals
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return self.method(node)
        raise self.fail(node, f"{type(node).__name__} is not supported in a query")

    def method(self, node: ast.Call) -> Expr:
        attr = node.func
        args = [self.expr(a) for a in node.args]
        kwargs = {k.arg: self.expr(k.value) for k in node.keywords}
        target = attr.value
        if isinstance(target, ast.Attribute) and target.attr == "str" and attr.attr in _STR_METHODS:
            return getattr(as_expr(self.expr(target.value)).str, attr.attr)(*args, **kwargs)
        if attr.attr in _METHODS:
            return getattr(as_expr(self.expr(target)), attr.attr)(*args, **kwargs)
        raise self.fail(node, f"method {attr.attr!r} is not supported in a query")
