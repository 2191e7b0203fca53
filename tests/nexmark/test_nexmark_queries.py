"""Every Nexmark query on the streaming source gives what pandas computes over all the events."""

from __future__ import annotations

import pandas as pd
import pytest

from runnel.nexmark import queries
from runnel.nexmark.generator import NexmarkConfig

from nexmark_reference import QUERIES, events, same_rows

EVENTS_PER_BATCH, BATCHES = 2_000, 4


def run_query(ssc, name: str, cfg: NexmarkConfig, batches: int = BATCHES) -> list[pd.DataFrame]:
    nx = ssc.frame.nexmark(events_per_batch=EVENTS_PER_BATCH, seed=cfg.seed, rate=cfg.rate,
                           out_of_order=cfg.out_of_order)
    out: list = []
    getattr(queries, name)(nx).foreach_batch(lambda df, t: out.append(df))
    ssc.start()
    ssc.run_batches(batches)
    return out


@pytest.mark.parametrize("name", ["q0", "q1", "q2"])
def test_stateless_queries_equal_pandas_batch_by_batch(ssc, name):
    cfg = NexmarkConfig(seed=4)
    got = run_query(ssc, name, cfg)
    assert len(got) == BATCHES
    for i, df in enumerate(got):
        ev = {k: v for k, v in events(EVENTS_PER_BATCH * (i + 1), cfg).items()}
        before = events(EVENTS_PER_BATCH * i, cfg)
        batch = {k: ev[k].iloc[len(before[k]):] for k in ev}
        same_rows(df, QUERIES[name](batch).reset_index(drop=True))
    assert sum(map(len, got)) > 0
