"""The Nexmark queries in plain pandas, over every generated event at once (the oracle of the tests).

Event times are int64 milliseconds here; a windowed query's result holds the
windows its stream's watermark closed by the end of the run (the largest
event time of that stream minus the delay): the engine emits each window in
the batch whose watermark passes the window's end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runnel.nexmark.generator import KINDS, NexmarkConfig, generate


def events(total: int, cfg: NexmarkConfig, per_batch: int | None = None) -> dict[str, pd.DataFrame]:
    """Every person, auction and bid among the first ``total`` events, with the batch each came in."""
    per = per_batch or total or 1
    return {k: pd.concat([generate(k, a, min(a + per, total), cfg).to_pandas().assign(batch=a // per)
                          for a in range(0, max(total, 1), per)], ignore_index=True) for k in KINDS}


def _bare(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns="batch")


def q0(ev):
    return _bare(ev["bid"])


def q1(ev):
    return _bare(ev["bid"]).assign(price=ev["bid"].price * 0.908)


def q2(ev):
    b = ev["bid"]
    return b[b.auction % 123 == 0][["auction", "price"]]


def q3(ev):
    """With ``batch``: pairs come out in the batch of the later of their two rows."""
    a, p = ev["auction"], ev["person"]
    m = a[a.category == 10].merge(p[p.state.isin(["OR", "ID", "CA"])], left_on="seller", right_on="id")
    m = m.assign(batch=np.maximum(m.batch_x, m.batch_y)).rename(columns={"id_x": "id"})
    return m[["name", "city", "state", "id", "batch"]]


def _ms(s) -> np.ndarray:
    return s.to_numpy().astype("datetime64[ms]").astype(np.int64)


def _closing(df: pd.DataFrame, delay_ms: int) -> int:
    """The watermark after the last batch: the largest event time minus the delay."""
    return int(_ms(df.date_time).max()) - delay_ms


def _dt(ms) -> np.ndarray:
    return np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")


def q5(ev, size_ms: int, slide_ms: int, delay_ms: int):
    b = ev["bid"]
    ts = _ms(b.date_time)
    rows = []
    k = 0
    while (k * slide_ms) < size_ms:     # each bid in every window holding it
        start = (ts // slide_ms) * slide_ms - k * slide_ms
        inside = start + size_ms > ts
        rows.append(pd.DataFrame({"auction": b.auction.to_numpy()[inside], "start": start[inside]}))
        k += 1
    w = pd.concat(rows, ignore_index=True)
    counts = w.groupby(["auction", "start"]).size().rename("num").reset_index()
    counts = counts[counts.start + size_ms <= _closing(b, delay_ms)]
    top = counts.groupby("start").num.transform("max")
    hot = counts[counts.num >= top]
    return pd.DataFrame({"auction": hot.auction.to_numpy(), "num": hot.num.to_numpy(),
                         "window_start": _dt(hot.start), "window_end": _dt(hot.start + size_ms)})


def q7(ev, size_ms: int, delay_ms: int):
    """``B.dateTime BETWEEN B1.dateTime - 10 s AND B1.dateTime``: both ends, so a bid at a window's end
    (it belongs to the next window) also meets the window's maximum."""
    b = _bare(ev["bid"])
    ms = _ms(b.date_time)
    b = b.assign(start=(ms // size_ms) * size_ms)
    closed = b[b.start + size_ms <= _closing(ev["bid"], delay_ms)]
    tops = closed.groupby("start").price.max().rename("maxprice").reset_index()
    at_end = b[ms % size_ms == 0].assign(start=lambda d: d.start - size_ms)
    pairs = pd.concat([b, at_end], ignore_index=True).merge(tops, on="start")
    return pairs[pairs.price == pairs.maxprice][["auction", "price", "bidder", "date_time", "extra"]]


def q8(ev, size_ms: int, delay_ms: int):
    p, a = ev["person"], ev["auction"]
    pw = p.assign(start=(_ms(p.date_time) // size_ms) * size_ms)
    pw = pw[pw.start + size_ms <= _closing(p, delay_ms)][["id", "name", "start"]].drop_duplicates()
    aw = a.assign(start=(_ms(a.date_time) // size_ms) * size_ms)
    aw = aw[aw.start + size_ms <= _closing(a, delay_ms)][["seller", "start"]].drop_duplicates()
    m = pw.merge(aw, left_on=["id", "start"], right_on=["seller", "start"])
    return pd.DataFrame({"id": m.id.to_numpy(), "name": m.name.to_numpy(), "window_start": _dt(m.start)})


def q11(ev, gap_ms: int, delay_ms: int):
    b = ev["bid"]
    df = pd.DataFrame({"bidder": b.bidder.to_numpy(), "ts": _ms(b.date_time)}).sort_values(["bidder", "ts"],
                                                                                             kind="stable")
    new = (df.bidder != df.bidder.shift()) | (df.ts - df.ts.shift() >= gap_ms)
    df = df.assign(session=new.cumsum())
    s = df.groupby("session").agg(bidder=("bidder", "first"), bid_count=("ts", "size"), lo=("ts", "min"),
                                  hi=("ts", "max"))
    s = s[s.hi + gap_ms <= _closing(b, delay_ms)]
    return pd.DataFrame({"bidder": s.bidder.to_numpy(), "bid_count": s.bid_count.to_numpy(),
                         "window_start": _dt(s.lo), "window_end": _dt(s.hi + gap_ms)})


STATELESS = {"q0": q0, "q1": q1, "q2": q2}


def same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal as multisets of rows (partitions may order them differently)."""
    assert list(got.columns) == list(want.columns), (list(got.columns), list(want.columns))
    key = list(want.columns)
    g = got.sort_values(key).reset_index(drop=True)
    w = want.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(g, w, check_dtype=False)
