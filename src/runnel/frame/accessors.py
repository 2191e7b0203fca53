"""``.str`` and ``.dt``: string functions on Arrow columns and datetime fields, per batch.

String functions run in ``pyarrow.compute`` on the whole column; datetime
fields are integer arithmetic on the int64 nanoseconds of a ``datetime64``
column. Results follow pandas: ``str.len`` of a null is NaN, a field of NaT is
NaN (the column becomes float64, as in pandas).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..batch import Batch, is_arrow, object_array
from .expr import Expr, ExprError, arrow_to_numpy, evaluate

__all__ = ["StrAccessor", "DtAccessor"]


@dataclass(eq=False, repr=False)
class AccessorCall(Expr):
    """``arg.<accessor>.<fn>(**kw)``: a call through ``.str`` or ``.dt``, named after its column."""
    fn: str
    arg: Expr
    kw: dict

    accessor = ""

    @property
    def name(self):
        return self.arg.name

    def children(self):
        return (self.arg,)

    def __repr__(self) -> str:
        return f"{self.arg!r}.{self.accessor}.{self.fn}({self.kw})"


class StrCall(AccessorCall):
    accessor = "str"


class DtCall(AccessorCall):
    accessor = "dt"


class StrAccessor:
    """pandas' ``Series.str`` on Arrow string columns."""

    def __init__(self, expr: Expr):
        self._e = expr

    def _call(self, fn: str, **kw: Any) -> Expr:
        return StrCall(fn, self._e, kw)

    def lower(self) -> Expr:
        return self._call("lower")

    def upper(self) -> Expr:
        return self._call("upper")

    def strip(self, to_strip: str | None = None) -> Expr:
        return self._call("strip", to_strip=to_strip)

    def len(self) -> Expr:
        return self._call("len")

    def contains(self, pat: str, case: bool = True, regex: bool = True) -> Expr:
        return self._call("contains", pat=pat, case=case, regex=regex)

    def startswith(self, pat: str) -> Expr:
        return self._call("startswith", pat=pat)

    def endswith(self, pat: str) -> Expr:
        return self._call("endswith", pat=pat)

    def slice(self, start: int | None = None, stop: int | None = None, step: int | None = None) -> Expr:
        return self._call("slice", start=start, stop=stop, step=step)

    def replace(self, pat: str, repl: str, regex: bool = False) -> Expr:
        return self._call("replace", pat=pat, repl=repl, regex=regex)

    def split(self, pat: str | None = None) -> Expr:
        """Lists of the parts (a column of lists: :meth:`StreamingDataFrame.explode` makes them rows)."""
        return self._call("split", pat=pat)


class DtAccessor:
    """pandas' ``Series.dt`` fields on datetime64 columns."""

    def __init__(self, expr: Expr):
        self._e = expr

    def _call(self, fn: str, **kw: Any) -> Expr:
        return DtCall(fn, self._e, kw)

    @property
    def year(self) -> Expr:
        return self._call("year")

    @property
    def month(self) -> Expr:
        return self._call("month")

    @property
    def day(self) -> Expr:
        return self._call("day")

    @property
    def hour(self) -> Expr:
        return self._call("hour")

    @property
    def minute(self) -> Expr:
        return self._call("minute")

    def floor(self, freq: str) -> Expr:
        """Round down to a multiple of ``freq`` ("5s", "1min", "1h", "1D": pandas' fixed frequencies)."""
        import pandas as pd
        step = int(pd.Timedelta(freq).value)
        if step <= 0:
            raise ValueError(f"freq must be a positive duration, got {freq!r}")
        return self._call("floor", step_ns=step)


def _strings(x: Any, fn: str) -> pa.Array:
    if not (is_arrow(x) and (pa.types.is_string(x.type) or pa.types.is_large_string(x.type))):
        what = x.type if is_arrow(x) else getattr(x, "dtype", type(x).__name__)
        raise ExprError(f".str.{fn} needs a string column, got {what}")
    return x


def _split(s: pa.Array, pat: str | None) -> np.ndarray:
    lists = pc.utf8_split_whitespace(s) if pat is None else pc.split_pattern(s, pat)
    if pat is None:  # Python's split() drops empty strings between runs of whitespace; Arrow keeps them
        flat = pc.list_flatten(lists)
        keep = pc.not_equal(pc.utf8_length(flat), 0)
        offsets = np.asarray(lists.offsets)
        lengths = np.add.reduceat(np.asarray(keep.to_numpy(zero_copy_only=False), dtype=np.int64),
                                  offsets[:-1]) if len(flat) else np.zeros(len(s), np.int64)
        lengths = np.where(np.diff(offsets) == 0, 0, lengths)
        kept = flat.filter(keep)
        new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        lists = pa.ListArray.from_arrays(pa.array(new_offsets), kept, mask=s.is_null())
    return object_array(lists.to_pylist())


def _str_eval(e: StrCall, x: Any) -> Any:
    s = _strings(x, e.fn)
    kw = e.kw
    if e.fn == "lower":
        return pc.utf8_lower(s)
    if e.fn == "upper":
        return pc.utf8_upper(s)
    if e.fn == "strip":
        return pc.utf8_trim_whitespace(s) if kw["to_strip"] is None else pc.utf8_trim(s, kw["to_strip"])
    if e.fn == "len":
        n = arrow_to_numpy(pc.utf8_length(s))
        return n.astype(np.int64) if n.dtype.kind == "i" else n
    if e.fn == "contains":
        f = pc.match_substring_regex if kw["regex"] else pc.match_substring
        return arrow_to_numpy(f(s, kw["pat"], ignore_case=not kw["case"]))
    if e.fn == "startswith":
        return arrow_to_numpy(pc.starts_with(s, kw["pat"]))
    if e.fn == "endswith":
        return arrow_to_numpy(pc.ends_with(s, kw["pat"]))
    if e.fn == "slice":
        start = kw["start"] or 0
        stop = kw["stop"] if kw["stop"] is not None else np.iinfo(np.int64).max
        return pc.utf8_slice_codeunits(s, start, stop, kw["step"] or 1)
    if e.fn == "replace":
        f = pc.replace_substring_regex if kw["regex"] else pc.replace_substring
        return f(s, kw["pat"], kw["repl"])
    if e.fn == "split":
        return _split(s, kw["pat"])
    raise ExprError(f"unknown string function {e.fn!r}")


_NS = {"day": 86_400 * 10**9, "hour": 3_600 * 10**9, "minute": 60 * 10**9}


def _dt_eval(e: DtCall, x: Any) -> Any:
    if not (isinstance(x, np.ndarray) and x.dtype.kind == "M"):
        raise ExprError(f".dt.{e.fn} needs a datetime64 column, got {getattr(x, 'dtype', type(x).__name__)}")
    nat = np.isnat(x)
    ns = x.astype("datetime64[ns]")
    if e.fn == "floor":
        i = ns.view(np.int64)
        out = (i // e.kw["step_ns"]) * e.kw["step_ns"]
        out = out.view("datetime64[ns]").copy()
        out[nat] = np.datetime64("NaT")
        return out
    if e.fn == "year":
        v = ns.astype("datetime64[Y]").astype(np.int64) + 1970
    elif e.fn == "month":
        v = ns.astype("datetime64[M]").astype(np.int64) % 12 + 1
    elif e.fn == "day":
        v = (ns - ns.astype("datetime64[M]")).astype("timedelta64[D]").astype(np.int64) + 1
    elif e.fn == "hour":
        v = (ns - ns.astype("datetime64[D]")).astype("timedelta64[h]").astype(np.int64)
    elif e.fn == "minute":
        v = (ns - ns.astype("datetime64[h]")).astype("timedelta64[m]").astype(np.int64)
    else:
        raise ExprError(f"unknown datetime field {e.fn!r}")
    v = v.astype(np.int32)
    if nat.any():
        v = v.astype(np.float64)
        v[nat] = np.nan
    return v


def evaluate_accessor(e: Expr, batch: Batch) -> Any:
    if isinstance(e, StrCall):
        return _str_eval(e, evaluate(e.arg, batch))
    if isinstance(e, DtCall):
        return _dt_eval(e, evaluate(e.arg, batch))
    raise ExprError(f"cannot evaluate {type(e).__name__}")
