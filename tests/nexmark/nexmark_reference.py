"""The Nexmark queries in plain pandas, over every generated event at once (the oracle of the tests)."""

from __future__ import annotations

import pandas as pd

from runnel.nexmark.generator import KINDS, NexmarkConfig, generate


def events(total: int, cfg: NexmarkConfig) -> dict[str, pd.DataFrame]:
    """Every person, auction and bid among the first ``total`` events of the stream."""
    return {k: generate(k, 0, total, cfg).to_pandas() for k in KINDS}


def q0(ev):
    return ev["bid"]


def q1(ev):
    return ev["bid"].assign(price=ev["bid"].price * 0.908)


def q2(ev):
    b = ev["bid"]
    return b[b.auction % 123 == 0][["auction", "price"]]


QUERIES = {"q0": q0, "q1": q1, "q2": q2}


def same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal as multisets of rows (partitions may order them differently)."""
    assert list(got.columns) == list(want.columns), (list(got.columns), list(want.columns))
    key = list(want.columns)
    g = got.sort_values(key).reset_index(drop=True)
    w = want.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(g, w, check_dtype=False)
