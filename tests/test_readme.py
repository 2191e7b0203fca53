"""The README's runnable example (the manual-clock test of a pipeline) works as printed."""

import pathlib
import re

README = pathlib.Path(__file__).parent.parent / "README.md"


def test_readme_manual_clock_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    runnable = [b for b in blocks if "ManualClock" in b and "run_batches" in b]
    assert runnable, "the README lost its manual-clock example"
    for block in runnable:
        exec(compile(block, "README.md", "exec"), {})
