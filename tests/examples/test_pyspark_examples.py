"""Spark's streaming examples and the Streaming Guide's accumulator/broadcast snippet, as PySpark
programs with only their imports changed, give what plain Python gives on the same input.

The socket programs run against a loopback ``LineFeed`` for a bounded time and stop gracefully (so
every line received is processed); each is loaded afresh per run, as a new driver would be.
"""

from __future__ import annotations

import ast
import collections
import importlib.util
import pathlib
import re

import pytest

from line_feed import LineFeed

HERE = pathlib.Path(__file__).parent
EXCLUDED = {"a", "b", "c"}


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def words_of(lines):
    return collections.Counter(w for line in lines for w in line.split(" "))


def counts_in(lines_with_lists):
    """Sum the ``[(word, n), ...]`` lists printed after "Counts at time <time> "."""
    total: collections.Counter = collections.Counter()
    for line in lines_with_lists:
        for word, n in ast.literal_eval(line[line.index("["):]):
            assert type(n) is int
            total[word] += n
    return total


RUN_1 = ["a quick brown fox", "jumps over a lazy dog", "c is for cookie", "the fox and the dog"] * 15
RUN_2 = ["b is for bread", "the lazy fox sleeps", "a dog barks at the fox"] * 15


@pytest.mark.network
def test_recoverable_network_wordcount_recovers_and_its_counts_continue(tmp_path, capsys):
    checkpoint, output = str(tmp_path / "checkpoint"), str(tmp_path / "counts.txt")
    with LineFeed([RUN_1, RUN_2]) as feed:
        load("pyspark_recoverable_network_wordcount").run("127.0.0.1", feed.port, checkpoint, output, 2.0)
        first = capsys.readouterr().out
        with open(output) as f:
            after_first = f.read().splitlines()
        # a new driver: getOrCreate finds the checkpoint and recovers instead of calling createContext
        load("pyspark_recoverable_network_wordcount").run("127.0.0.1", feed.port, checkpoint, output, 2.0)
        second = capsys.readouterr().out
    assert first.count("Creating new context") == 1 and "Creating new context" not in second
    with open(output) as f:
        lines = f.read().splitlines()
    assert lines[:len(after_first)] == after_first and len(lines) > len(after_first)   # appended, not recreated
    assert all(line.startswith("Counts at time ") for line in lines)
    expected_1 = {w: n for w, n in words_of(RUN_1).items() if w not in EXCLUDED}
    assert counts_in(after_first) == expected_1
    assert counts_in(lines) == {w: n for w, n in words_of(RUN_1 + RUN_2).items() if w not in EXCLUDED}
    # the accumulator is a singleton of each driver: run 1 counted its excluded words, the recovered run its own
    dropped = [[int(n) for n in re.findall(r"Dropped (\d+) word\(s\) totally", out)] for out in (first, second)]
    assert dropped[0][-1] == sum(n for w, n in words_of(RUN_1).items() if w in EXCLUDED)
    assert dropped[1][-1] == sum(n for w, n in words_of(RUN_2).items() if w in EXCLUDED)


SENTIMENTS = {"happy": 3, "good": 2, "fine": 1, "bad": -3, "sad": -2, "meh": 0}
TEXT = ["happy happy good day", "bad sad day", "fine good happy", "meh meh unknown", "good"] * 12


@pytest.mark.network
def test_network_wordjoinsentiments_scores_words_as_plain_python(tmp_path, capsys):
    path = tmp_path / "AFINN-111.txt"
    path.write_text("".join(f"{w}\t{s}\n" for w, s in SENTIMENTS.items()) + "malformed line\n")
    sink: list = []
    with LineFeed([TEXT]) as feed:
        load("pyspark_network_wordjoinsentiments").run("127.0.0.1", feed.port, str(path), 2.0, sink)
    scored: collections.Counter = collections.Counter()
    for batch in sink:
        assert [h for h, _ in batch] == sorted((h for h, _ in batch), reverse=True)   # sortByKey(False)
        for happiness, word in batch:
            assert type(happiness) is float
            scored[word] += happiness
    counts = words_of(TEXT)
    assert scored == {w: float(s * counts[w]) for w, s in SENTIMENTS.items() if counts[w]}
    out = capsys.readouterr().out
    assert "Happiest topics in the last 5 seconds" in out
    best = max(SENTIMENTS, key=lambda w: SENTIMENTS[w] * counts[w])
    if len(sink) == 1:
        assert f"{best} ({SENTIMENTS[best] * counts[best]} happiness)" in out


SQL_TEXT = ["the cat sat on the mat", "the dog sat", "a cat and a dog", "mat"] * 10


@pytest.mark.network
def test_sql_network_wordcount_counts_with_sql_as_plain_python(capsys):
    pytest.importorskip("duckdb")
    with LineFeed([SQL_TEXT]) as feed:
        load("pyspark_sql_network_wordcount").run("127.0.0.1", feed.port, 2.0)
    out = capsys.readouterr().out
    assert "=========" in out
    totals: collections.Counter = collections.Counter()
    tables = 0
    for line in out.splitlines():
        if line == "|word|total|":
            tables += 1
        m = re.fullmatch(r"\|\s*(\S+)\|\s*(\d+)\|", line)
        if m:
            totals[m.group(1)] += int(m.group(2))
    assert tables >= 1 and "only showing" not in out
    assert totals == words_of(SQL_TEXT)


GUIDE_BATCHES = [["a x b", "y c x"], ["z a", "x"], [], ["c c c", "w"]]


@pytest.mark.parametrize("master", ["local", "local[2]"])
def test_guide_accumulator_and_broadcast_snippet(master):
    out: list = []
    load("pyspark_guide_accumulator_broadcast").run(GUIDE_BATCHES, master, out)
    dropped_so_far = 0
    assert len(out) == len(GUIDE_BATCHES)
    for (line, dropped), batch in zip(out, GUIDE_BATCHES):
        words = words_of(batch)
        assert dict(counts_in([line])) == {w: n for w, n in words.items() if w not in EXCLUDED}
        dropped_so_far += sum(n for w, n in words.items() if w in EXCLUDED)
        assert dropped == dropped_so_far
