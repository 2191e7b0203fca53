"""Columns, rows and expressions, against pandas on the same frames (local and local[2])."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from runnel.frame import col
from runnel.functions import PythonFallbackWarning
from runnel.testing import assert_frame_batches_equal, run_frame

FRAMES = [
    pd.DataFrame({"k": ["a", "B", None, "ax"], "v": [1.5, -2.0, np.nan, 4.0], "n": [1, 2, 3, 4],
                  "t": pd.to_datetime(["2024-01-02 03:04:05", "2024-02-03 04:05:06", "2024-12-31 23:59:59",
                                       "2025-06-07 08:09:10"])}),
    pd.DataFrame({"k": [" x ", "y"], "v": [0.0, 7.25], "n": [-5, 6],
                  "t": pd.to_datetime(["2024-03-04 05:06:07", "2024-04-05 06:07:08"])}),
]


def check(ctx, build, expect, **kw):
    out = run_frame(build, FRAMES, ctx, **kw)
    assert_frame_batches_equal(out, [expect(f.copy()) for f in FRAMES], **{"check_dtype": False, **kw.pop("cmp", {})})


def test_select_columns(ctx):
    check(ctx, lambda s: s[["v", "k"]], lambda d: d[["v", "k"]])


def test_setitem_and_assign(ctx):
    def build(s):
        s["w"] = s["v"] * 2 + s["n"]
        return s.assign(z=lambda f: f.n % 3, c=10)
    check(ctx, build, lambda d: d.assign(w=d.v * 2 + d.n, z=d.n % 3, c=10))


def test_rename_drop_astype(ctx):
    check(ctx, lambda s: s.rename(columns={"v": "value"}).drop(columns=["t"]).astype({"n": "float64"}),
          lambda d: d.rename(columns={"v": "value"}).drop(columns=["t"]).astype({"n": "float64"}))


def test_fillna(ctx):
    check(ctx, lambda s: s[["k", "v"]].fillna({"k": "?", "v": -1.0}),
          lambda d: d[["k", "v"]].fillna({"k": "?", "v": -1.0}))


def test_mask_and_query(ctx):
    check(ctx, lambda s: s[(s.v > 0) & ~(s.n == 4)], lambda d: d[(d.v > 0) & ~(d.n == 4)])
    check(ctx, lambda s: s.query("v > 0 and k != 'ax' or n in [2, 3]"),
          lambda d: d.query("v > 0 and k != 'ax' or n in [2, 3]"))
    check(ctx, lambda s: s.query("n >= lo", lo=2), lambda d: d[d.n >= 2])


def test_query_rejects_what_it_does_not_understand(ssc):
    import pandas as pd
    s = ssc.frame.queue([pd.DataFrame({"v": [1]})])
    with pytest.raises(ValueError, match="neither a column"):
        s.query("w > 1")
    with pytest.raises(ValueError, match="not supported"):
        s.query("__import__('os').system('true')")


def test_arithmetic_comparisons_and_functions(ctx):
    def build(s):
        return s.assign(
            a=(s.v + 1) / 2 - s.n * 3, b=s.v // 1, c=s.n ** 2, d=s.v.abs(), e=s.v.round(1),
            f=s.v.clip(0, 3), g=s.n.isin([1, 6]), h=s.v.isnull(), i=s.k.notnull(), j=s.v.between(0, 4),
            w=s.v.where(s.v > 0, -1.0), neg=-s.n, m=s.v.mask(s.n > 2, 0.0))
    check(ctx, build, lambda d: d.assign(
        a=(d.v + 1) / 2 - d.n * 3, b=d.v // 1, c=d.n ** 2, d=d.v.abs(), e=d.v.round(1), f=d.v.clip(0, 3),
        g=d.n.isin([1, 6]), h=d.v.isnull(), i=d.k.notnull(), j=d.v.between(0, 4), w=d.v.where(d.v > 0, -1.0),
        neg=-d.n, m=d.v.mask(d.n > 2, 0.0)))


def test_string_functions(ctx):
    def build(s):
        k = s.k
        return s.assign(lo=k.str.lower(), up=k.str.upper(), has=k.str.contains("a"), st=k.str.startswith("a"),
                        en=k.str.endswith("x"), ln=k.str.len(), sl=k.str.slice(0, 1), sp=k.str.strip(),
                        rp=k.str.replace("a", "_"), cat=k + "!")
    check(ctx, build, lambda d: d.assign(
        lo=d.k.str.lower(), up=d.k.str.upper(), has=d.k.str.contains("a").fillna(False).astype(bool),
        st=d.k.str.startswith("a").fillna(False).astype(bool), en=d.k.str.endswith("x").fillna(False).astype(bool),
        ln=d.k.str.len(), sl=d.k.str.slice(0, 1), sp=d.k.str.strip(), rp=d.k.str.replace("a", "_"), cat=d.k + "!"))


def test_split_and_explode(ctx):
    frames = [pd.DataFrame({"line": ["a b  c", "", "d"]}), pd.DataFrame({"line": ["e f"]})]
    out = run_frame(lambda s: s.assign(w=s.line.str.split()).explode("w")[["w"]], frames, ctx)
    exp = [f.assign(w=f.line.str.split()).explode("w")[["w"]] for f in frames]
    exp = [e.assign(w=e.w.where(e.w.notna(), None)) for e in exp]
    assert_frame_batches_equal(out, exp, check_dtype=False)


def test_datetime_fields(ctx):
    def build(s):
        t = s.t
        return s.assign(y=t.dt.year, mo=t.dt.month, d=t.dt.day, h=t.dt.hour, mi=t.dt.minute,
                        fl=t.dt.floor("15min"))[["y", "mo", "d", "h", "mi", "fl"]]
    check(ctx, build, lambda d: d.assign(y=d.t.dt.year, mo=d.t.dt.month, d=d.t.dt.day, h=d.t.dt.hour,
                                         mi=d.t.dt.minute, fl=d.t.dt.floor("15min"))[["y", "mo", "d", "h", "mi", "fl"]])


def test_map_with_a_python_function(ctx):
    check(ctx, lambda s: s.assign(m=s.n.map(lambda x: x * 10 + 1), s=s.k.map(lambda x: x.upper() if isinstance(x, str) else "-")),
          lambda d: d.assign(m=d.n.map(lambda x: x * 10 + 1), s=d.k.map(lambda x: x.upper() if isinstance(x, str) else "-")))


def test_map_compiles_on_big_numeric_columns(ctx):
    big = [pd.DataFrame({"n": np.arange(30_000)})]
    out = run_frame(lambda s: s.assign(m=s.n.map(lambda x: x * 2 + 1)), big, ctx, num_partitions=1)
    assert (out[0]["m"].to_numpy() == np.arange(30_000) * 2 + 1).all()


def test_map_of_an_uncompilable_function_warns_once():
    from runnel.frame.expr import map_column
    seen = {}

    def f(x):
        return seen.setdefault(x, x)   # a dict: Numba cannot compile it
    with pytest.warns(PythonFallbackWarning, match="Python path"):
        out = map_column(np.arange(30_000), f)
    assert out.tolist() == list(range(30_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        map_column(np.arange(30_000), f)   # once per function


def test_map_batches(ctx):
    check(ctx, lambda s: s[["n", "v"]].map_batches(lambda df: df.assign(s=df.n + df.v)),
          lambda d: d[["n", "v"]].assign(s=d.n + d.v))


def test_nlargest_per_batch(ctx):
    check(ctx, lambda s: s[["n", "v"]].nlargest(2, "v"), lambda d: d[["n", "v"]].nlargest(2, "v"))
    check(ctx, lambda s: s[["n"]].nsmallest(1, "n"), lambda d: d[["n"]].nsmallest(1, "n"))


def test_col_and_expression_errors(ssc):
    s = ssc.frame.queue([pd.DataFrame({"v": [1]})])
    with pytest.raises(TypeError, match="truth value"):
        bool(col("v") > 1)
    with pytest.raises(KeyError, match="no column"):
        s.drop(columns=["zz"])
    with pytest.raises(AttributeError, match="no attribute or column"):
        s.nope
