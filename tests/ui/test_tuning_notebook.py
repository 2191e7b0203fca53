"""notebooks/tuning.ipynb runs: its trials record delays, it picks settings, its charts carry every batch."""

from __future__ import annotations

import json
import pathlib

NOTEBOOK = pathlib.Path(__file__).parent.parent.parent / "notebooks" / "tuning.ipynb"


def test_tuning_notebook_records_and_draws_the_delays(capsys):
    nb = json.loads(NOTEBOOK.read_text())
    ns: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), NOTEBOOK.name, "exec"), ns)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 6, printed
    keeps_up, verdict = ns["keeps_up"], ns["verdict"]
    for interval, rows in ns["by_interval"].items():
        assert rows, f"{interval} s: no batch completed"
        assert all(p >= 0 and s >= 0 for _, p, s in rows)
        assert [t for t, _, _ in rows] == sorted(t for t, _, _ in rows)
        assert verdict(rows, interval) in printed
    fitting = [i for i, rows in ns["by_interval"].items() if keeps_up(rows, i)]
    assert ns["interval"] == (min(fitting) if fitting else 0.5)
    assert printed[3] == f"chosen interval: {ns['interval']}"
    for master, rows in ns["by_master"].items():
        assert f"{master} {verdict(rows, ns['interval'])}" in printed
        html = ns["Charts"](rows, ns["interval"], master)._repr_html_()
        assert html.count('<circle class="point"') == 2 * len(rows)
        assert html.count('class="threshold"') == (2 if rows else 0)   # the interval's line and its label
