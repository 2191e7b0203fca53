"""A Kafka word count whose driver is SIGKILLed and recovered with get_or_create.

The mock cluster lives in this process and outlives the killed driver
(``kafka_job.py``, a subprocess). After recovery the counts written to the
output topic must equal, batch by batch, those of a run never killed — no
batch missing, no record written twice — their per-word totals must be the
input's word counts, and the offsets committed to the group must be where
the input ends.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys

import pytest

from runnel.kafka.sink import BATCH_HEADER, SEQ_HEADER, written_records

JOB = os.path.join(os.path.dirname(__file__), "kafka_job.py")
TIMEOUT = 240
BATCHES = 9
LINES = [f"w{i % 11} w{i % 4} x{i % 3}" for i in range(100)]   # 25 per partition: 5 batches at 5 records/s


def job(cluster, mode, workdir, topic, out, *extra, check=True):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    p = subprocess.run([sys.executable, JOB, mode, str(workdir), cluster.bootstrap_servers, topic, out, str(BATCHES),
                        *map(str, extra)], capture_output=True, text=True, timeout=TIMEOUT, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"kafka_job {mode} {extra} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def outputs(cluster, out) -> dict[int, list]:
    """Batch time -> sorted (word, count, seq) written to ``out``."""
    got = collections.defaultdict(list)
    for msgs in written_records({"bootstrap.servers": cluster.bootstrap_servers}, out, 4, 10**6, 30, "test").values():
        for m in msgs:
            h = dict(m.headers())
            got[int(h[BATCH_HEADER])].append((m.key().decode(), int(m.value()), int(h[SEQ_HEADER])))
    return {t: sorted(v) for t, v in got.items()}


@pytest.fixture(scope="module")
def source(cluster):
    cluster.produce("lines", LINES)
    return "lines"


@pytest.fixture(scope="module")
def reference(cluster, source, tmp_path_factory):
    job(cluster, "fresh", tmp_path_factory.mktemp("reference"), source, "counts-reference")
    return outputs(cluster, "counts-reference")


def check(cluster, committed, out, reference):
    got = outputs(cluster, out)
    assert got == reference
    seqs = [(t, s) for t, recs in got.items() for _, _, s in recs]
    assert len(seqs) == len(set(seqs))                    # no record written twice
    totals = collections.Counter()
    for recs in got.values():
        for word, n, _ in recs:
            totals[word] += n
    assert totals == collections.Counter(w for line in LINES for w in line.split())
    assert committed(f"wc-{out}", "lines") == {p: high for p, (_, high) in cluster.watermarks("lines").items()}


def test_reference_run_reads_the_topic_over_several_batches(reference):
    assert sorted(reference) == [1000, 2000, 3000, 4000, 5000]


def test_killed_after_a_batch_was_written_recovers_without_duplicates(cluster, source, reference, committed,
                                                                      tmp_path):
    p = job(cluster, "fresh", tmp_path, source, "counts-a", "--die-in-batch", 3, check=False)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert "done 2" in p.stdout and "done 3" not in p.stdout
    p = job(cluster, "get_or_create", tmp_path, source, "counts-a")
    assert p.stdout.split()[:2] in (["start", "3"], ["start", "1"]), p.stdout   # batch 3 runs again
    check(cluster, committed, "counts-a", reference)


def test_killed_while_writing_a_batch_recovers_without_duplicates(cluster, source, reference, committed, tmp_path):
    p = job(cluster, "fresh", tmp_path, source, "counts-b", "--die-in-write", 4, check=False)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert "done 3" in p.stdout and "done 4" not in p.stdout
    half = outputs(cluster, "counts-b").get(4000, [])
    assert 0 < len(half) < len(reference[4000])            # batch 4 was half written at the kill
    job(cluster, "get_or_create", tmp_path, source, "counts-b")
    check(cluster, committed, "counts-b", reference)
