"""The Nexmark harness: doctests of its modules, and the command runs and reports what it measured."""

from __future__ import annotations

import doctest
import importlib
import io

import pytest

from runnel.bench import nexmark as bench


@pytest.mark.parametrize("name", ["runnel.nexmark.generator", "runnel.nexmark.queries", "runnel.dstream.nexmark",
                                  "runnel.frame.source"])
def test_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_the_command_reports_events_per_second_per_core_beside_flink():
    out = io.StringIO()
    rows = bench.main(["--query", "q0,q7", "--events", "4000", "--batch-events", "2000", "--master",
                       "local,local[2]", "--rate", "1000"], out=out)
    assert [(r["query"], r["master"]) for r in rows] == [("q0", "local"), ("q0", "local[2]"), ("q7", "local"),
                                                          ("q7", "local[2]")]
    for r in rows:
        assert r["events"] == 4000 and r["query_s"] > 0 and r["generator_s"] > 0
        assert r["events_s_core"] == pytest.approx(r["events_s"] / (2 if r["master"] == "local[2]" else 1))
        assert r["flink_core"] == bench.FLINK_PER_CORE[r["query"]]
    text = out.getvalue()
    assert "q7     local[2]" in text and "155 K" in text and "12 K" in text


def test_cores_of_a_master():
    assert bench.cores("local") == 1 and bench.cores("local[2]") == 2 and bench.cores("local[3]:processes") == 3
    with pytest.raises(ValueError, match="unknown master"):
        bench.cores("spark://x")


def test_unknown_queries_are_refused():
    with pytest.raises(SystemExit):
        bench.main(["--query", "q99"], out=io.StringIO())
