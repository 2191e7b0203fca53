"""Start-up cost: ``import runnel`` stays light, and ``runnel.bench.startup`` times launch -> first record."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from runnel.bench import startup

#: imported only by the features that need them, never by ``import runnel``
HEAVY = ("pandas", "polars", "duckdb", "dask", "distributed", "prometheus_client", "http.server", "zstandard",
         "pyarrow.parquet", "pyarrow.dataset", "pyarrow.csv", "confluent_kafka", "paho")


def test_import_runnel_leaves_the_heavy_modules_unimported():
    code = ("import sys, runnel\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == []


# A stand-in for the README program: prints a pprint batch after a pause, and what it saw of its cache dir.
_FAKE = textwrap.dedent("""
    import os, sys, time
    cache = os.environ.get("NUMBA_CACHE_DIR")
    seen = sorted(os.listdir(cache)) if cache else None
    if cache:
        open(os.path.join(cache, "left-by-a-run"), "w").close()
    time.sleep(0.3)
    print("-" * 43); print("Time: 2026-01-01 00:00:01"); print("-" * 43)
    print(repr(("seen", seen, os.environ.get("PYTHONDONTWRITEBYTECODE"))), flush=True)
    time.sleep(30)   # stopped by the SIGTERM sent once the record is read
""")


def test_times_launch_to_the_first_record_and_stops_the_program(tmp_path):
    runs = startup.measure("warm", 2, program=["-c", _FAKE])
    assert len(runs) == 2
    for r in runs:
        assert r.wall is not None and 0.3 <= r.wall < 20     # the fake pauses 0.3 s; SIGTERM ended its 30 s sleep
        assert r.cpu is None or 0 <= r.cpu < r.wall + 1
        assert not r.compiled
    assert "median:" in startup.report("warm", runs)


def test_cold_runs_start_from_an_empty_numba_cache_and_no_bytecode_flag(monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    runs = startup.measure("cold", 2, program=["-c", _FAKE])
    # each run found the cache dir empty, though the run before left a file in it
    assert [r.record for r in runs] == ["('seen', [], None)"] * 2
    runs = startup.measure("cold", 1, program=["-c", _FAKE], keep_env=True)
    assert runs[0].record == "('seen', [], '1')"
