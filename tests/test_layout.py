"""The test tree itself: pytest (rootdir import mode) cannot collect two test files of one basename."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path


def test_test_file_basenames_are_unique():
    seen = defaultdict(list)
    for path in Path(__file__).parent.rglob("test_*.py"):
        seen[path.name].append(str(path.parent))
    assert {name: dirs for name, dirs in seen.items() if len(dirs) > 1} == {}
