"""Time to first result: ``python -m runnel.bench.startup [--runs 5] [--mode both] [--python PY]``.

Launches the README's first program (``python -m
runnel.examples.network_wordcount``, or ``--program``) as a fresh process,
several times, and times launch → its first printed record (the first line
after a ``pprint`` ``Time:`` header and its rule). Two modes:

``cold``
    ``NUMBA_CACHE_DIR`` points at a directory emptied before every run, so
    every kernel the job uses compiles, as on a fresh install.
``warm``
    One unmeasured run first fills the cache (the environment's own
    ``NUMBA_CACHE_DIR``, or Numba's default next to the installed kernels),
    then every measured run loads the kernels from it.

Per run it reports the wall time to the first record and the CPU the child
had used by then (user + system, read from ``/proc/<pid>/stat`` when the
line arrives; Linux only), then the medians and the load average. On a
shared machine the CPU figure is the one that compares across loads. The
child is sent SIGTERM once its first record is read (a graceful stop).

``PYTHONDONTWRITEBYTECODE`` is removed from the child's environment (with a
note) unless ``--keep-env``: with it set, an editable install recompiles
every module's bytecode at every launch, which no user's shell does.

The first batch of a job fires at the next multiple of the batch interval
after ``ssc.start()`` (Spark's grid; README "Time to first result"), so with
1 s batches launch -> first record includes a wait of 0-1 s after the
program is ready, uniformly spread over runs: compare medians of several.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

#: the README's first program
DEFAULT_PROGRAM = ("-m", "runnel.examples.network_wordcount", "--seconds", "60")


@dataclass
class Run:
    """One launch: seconds from launch to the first record (None: none came), the child's CPU seconds by then."""

    wall: float | None
    cpu: float | None
    compiled: bool
    record: str | None = None   # the first record's line


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process, from ``/proc`` (None where there is no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_record(python: str, program: list[str], env: dict, timeout: float) -> Run:
    """Launch ``python program`` and time launch -> its first printed record (a line after a ``Time:`` header)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([python, *program], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wall = cpu = record = None
    try:
        header = False
        for line in p.stdout:
            if line.startswith("Time:"):
                header = True
            elif header and line.strip() and not line.startswith("---"):
                wall, cpu, record = time.perf_counter() - t0, _cpu_seconds(p.pid), line.rstrip("\n")
                break
            if time.perf_counter() - t0 > timeout:
                break
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
    return Run(wall, cpu, "runnel: compiling kernels" in (err or ""), record)


def child_env(cache_dir: str | None, keep_env: bool) -> dict:
    """The child's environment: ``NUMBA_CACHE_DIR`` set when given; no ``PYTHONDONTWRITEBYTECODE`` unless kept."""
    env = dict(os.environ)
    if not keep_env:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    return env


def measure(mode: str, runs: int, python: str = sys.executable, program: list[str] | None = None,
            keep_env: bool = False, timeout: float = 120.0) -> list[Run]:
    """``runs`` timed launches in ``mode`` ("cold": an emptied ``NUMBA_CACHE_DIR`` each run; "warm": after a priming run)."""
    program = list(program or DEFAULT_PROGRAM)
    if mode == "warm":
        env = child_env(None, keep_env)
        first_record(python, program, env, timeout)  # fills the cache (and the bytecode cache), not counted
        return [first_record(python, program, env, timeout) for _ in range(runs)]
    if mode != "cold":
        raise ValueError(f"mode must be 'cold' or 'warm', not {mode!r}")
    out = []
    with tempfile.TemporaryDirectory(prefix="runnel-startup-") as tmp:
        cache = os.path.join(tmp, "numba-cache")
        for _ in range(runs):
            shutil.rmtree(cache, ignore_errors=True)
            os.makedirs(cache)
            out.append(first_record(python, program, child_env(cache, keep_env), timeout))
    return out


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def report(mode: str, results: list[Run]) -> str:
    """Lines for one mode: every run, then the medians."""
    lines = [f"{mode}: launch -> first record, {len(results)} runs"]
    for i, r in enumerate(results):
        lines.append(f"  run {i}: {_fmt(r.wall)} s wall, {_fmt(r.cpu)} s CPU"
                     + ("  (kernels compiled)" if r.compiled else "")
                     + ("" if r.wall is not None else "  NO RECORD"))
    lines.append(f"  median: {_fmt(_median([r.wall for r in results]))} s wall, "
                 f"{_fmt(_median([r.cpu for r in results]))} s CPU")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="timed launches per mode (default 5)")
    p.add_argument("--mode", choices=("cold", "warm", "both"), default="both")
    p.add_argument("--python", default=sys.executable, help="the interpreter to launch (default this one)")
    p.add_argument("--program", nargs=argparse.REMAINDER,
                   help="what to run instead of the README's first program (arguments after the interpreter)")
    p.add_argument("--keep-env", action="store_true", help="keep PYTHONDONTWRITEBYTECODE in the child's environment")
    args = p.parse_args(argv)
    if not args.keep_env and os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set here; removed for the launched programs (--keep-env keeps it)")
    print(f"python: {args.python}; load average {os.getloadavg()[0]:.2f} at start")
    for mode in (("cold", "warm") if args.mode == "both" else (args.mode,)):
        print(report(mode, measure(mode, args.runs, args.python, args.program, args.keep_env)), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
