"""runnel.memory: a runnel process reuses freed batch memory instead of page-faulting it in again."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from runnel.memory import KEEP_FREED_KEY, keep_as_driver_does, wants_kept_memory

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
                                reason="the setting is glibc's (Linux)")

# A child process runs a kernel batch after batch (a dense reduceByKey of 500k rows over 100k keys, whose
# outputs are ~2 MiB of fresh arrays per call) and reports the minor page faults of the last 20 calls.
# Measured: ~450 faults per call with glibc's defaults, none with the setting.
_CHILD = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from runnel.context import Context
    from runnel.kernels import reduce_int64_dense
    ctx = Context("local", "memory-test", {"runnel.memory.keepFreed": sys.argv[1]})
    rng = np.random.default_rng(0)
    keys, values = rng.integers(0, 100_000, 500_000), rng.random(500_000)
    for _ in range(3):
        reduce_int64_dense(keys, values, "sum")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        reduce_int64_dense(keys, values, "sum")
    import pyarrow as pa
    print(json.dumps([resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before,
                      pa.default_memory_pool().backend_name]))
    ctx.stop()
""")


def _faults(keep: str) -> list:
    out = subprocess.run([sys.executable, "-c", _CHILD, keep], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_a_context_makes_the_process_and_arrow_reuse_freed_memory_instead_of_faulting_it_in():
    (kept, kept_pool), (default, default_pool) = _faults("true"), _faults("false")
    assert kept_pool in ("jemalloc", "system") and default_pool != kept_pool, (kept_pool, default_pool)
    assert default >= 20 * 100, f"glibc's defaults should fault the outputs in afresh; saw {default} faults"
    assert kept < 20 * 10, f"with the setting, freed arrays should be reused; saw {kept} faults"


def test_the_conf_key_parses_booleans_and_names_itself_on_anything_else():
    assert wants_kept_memory(None) and wants_kept_memory({})
    assert wants_kept_memory({KEEP_FREED_KEY: "TRUE"}) and not wants_kept_memory({KEEP_FREED_KEY: "false"})
    assert not wants_kept_memory({KEEP_FREED_KEY: False})
    with pytest.raises(ValueError, match=r"runnel\.memory\.keepFreed must be true or false, got 'maybe'"):
        wants_kept_memory({KEEP_FREED_KEY: "maybe"})


def test_a_worker_keeps_memory_only_when_its_driver_said_so():
    assert keep_as_driver_does({}) is False


@glibc_only
def test_local_n_workers_are_told_to_keep_freed_memory():
    from runnel.context import Context
    from runnel.executors.base import Task

    ctx = Context("local[2]", "memory-test", {"runnel.executor.stageKind": "processes", "runnel.executor.inlineBytes": 0})
    try:
        ex = ctx.executor
        ex.run([Task(lambda i, groups: [], 0, [], "noop")], kind="processes")
        pids = ex.worker_pids()
        assert pids
        for pid in pids:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
            assert env.get(b"RUNNEL_KEEP_FREED_BYTES", b"").isdigit(), f"worker {pid} was not told"
    finally:
        ctx.stop()
