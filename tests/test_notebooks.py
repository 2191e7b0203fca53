"""The notebooks run: every code cell executes without error, in order."""

import json
import pathlib

import pytest

ALL_NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
#: notebooks whose own test runs them and checks what they show (tests/ui/test_tuning_notebook.py):
#: not run a second time here (the tuning trials take ~20 s)
CHECKED_ELSEWHERE = {"tuning.ipynb"}
NOTEBOOKS = [p for p in ALL_NOTEBOOKS if p.name not in CHECKED_ELSEWHERE]


def test_every_notebook_is_run_by_a_test():
    names = {p.name for p in ALL_NOTEBOOKS}
    assert CHECKED_ELSEWHERE <= names
    assert "tuning.ipynb" in (pathlib.Path(__file__).parent / "ui" / "test_tuning_notebook.py").read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path):
    nb = json.loads(path.read_text())
    ns: dict = {}
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert cells, f"{path.name} has no code"
    for cell in cells:
        src = "".join(cell["source"])
        exec(compile(src, f"{path.name}", "exec"), ns)


def test_quickstart_counts(capsys):
    path = next(p for p in NOTEBOOKS if p.name == "quickstart.ipynb")
    nb = json.loads(path.read_text())
    ns: dict = {}
    exec(compile("".join(nb["cells"][1]["source"]), "quickstart", "exec"), ns)
    results = [r for _, r in ns["results"]]
    assert results[0] == [("be", 2), ("not", 1), ("or", 1), ("to", 2)]
    assert results[2] == [("not", 1), ("or", 1), ("stream", 1), ("to", 1)]
