"""``python -m runnel.bench.kafka`` runs both readers on one mock topic and prints their ratio."""

from __future__ import annotations

import re

from runnel.bench import kafka as bench


def test_the_benchmark_counts_the_same_words_and_prints_the_ratio(capsys):
    assert bench.main(["--records", "2000", "--rounds", "1"]) == 0     # it checks both counts against Python's
    out = capsys.readouterr().out
    assert "produced 2,000 lines" in out
    assert re.search(r"runnel / consumer loop \(both count words\): \d+\.\d\dx", out), out
