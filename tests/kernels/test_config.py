"""Compile options live in kernels/_config.py and nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

import numba
import numpy as np
import pytest

from runnel.kernels import _config

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
# Calls, decorators and imports of Numba's own jit; ``@jit`` from _config is
# the allowed spelling. Doctest lines (user code in Examples) are skipped.
FORBIDDEN = re.compile(
    r"\bnjit\s*\(|\bnumba\s*\.\s*n?jit\s*\("
    r"|^\s*@\s*(numba\s*\.\s*)?njit\b|^\s*@\s*numba\s*\.\s*jit\b"
    r"|\bfrom\s+numba\s+import\s+.*\bn?jit\b"
)
DOCTEST = re.compile(r"^\s*(>>>|\.\.\.)")


def test_only_config_calls_numba_jit():
    offenders = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(KERNELS.glob("*.py"))
        if path.name != "_config.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if FORBIDDEN.search(line) and not DOCTEST.match(line)
    ]
    assert offenders == [], "compile options outside kernels/_config.py:\n" + "\n".join(offenders)


def test_config_options_are_the_documented_ones():
    assert _config.JIT_OPTIONS["nogil"] is True
    assert _config.JIT_OPTIONS["cache"] is True
    assert not _config.JIT_OPTIONS.get("parallel", False)


def test_parallel_with_cache_is_refused():
    with pytest.raises(ValueError, match="parallel"):
        _config.jit(lambda x: x, parallel=True)


def test_jit_bare_and_with_overrides():
    def double(x):
        return 2 * x

    assert _config.jit(double)(np.int64(3)) == 6
    assert _config.jit(cache=False)(double)(np.int64(4)) == 8
    assert _config.is_jitted(numba.njit(double)) or numba.config.DISABLE_JIT
