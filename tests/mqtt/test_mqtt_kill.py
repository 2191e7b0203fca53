"""A driver killed (SIGKILL) while messages are published at QoS 1 loses none of them.

``mqtt_job.py`` (an MQTT word count with the receiver write-ahead log on,
totals through the exactly-once SQLite sink) runs as its own process; a
publisher sends ``N`` messages ``"id<i> w<i % 7>"`` at QoS 1 while the job
runs, is killed, and is down; the job is then started again with
``get_or_create``. Every message must be counted at least once in the final
totals, and the only duplicates allowed are messages that were logged but
not yet acknowledged when the driver died (the broker sends them again):
QoS 1 is at-least-once. Deduplicated by the id each payload carries, the
job's second totals are exact.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from broker import publish

from runnel.storage.wal import WriteAheadLog

JOB = os.path.join(os.path.dirname(__file__), "mqtt_job.py")
TIMEOUT = 120
N = 3000


def spawn(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, JOB, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def read_until(child: subprocess.Popen, done, what: str) -> str:
    """Lines of the child's stdout until ``done(line)``; bounded by the job's own 60 s deadline."""
    for line in child.stdout:
        if done(line):
            return line
    child.wait(10)
    raise AssertionError(f"the job ended before {what} ({child.returncode}):\n{child.stderr.read()[-3000:]}")


def logged_ids(workdir) -> list[str]:
    """The ids of the messages in the receiver's write-ahead log, read as after a crash."""
    (stream,) = os.listdir(os.path.join(workdir, "ck", "receivedData"))
    wal = WriteAheadLog(os.path.join(workdir, "ck", "receivedData", stream, "blocks"))
    return [line.split()[0] for _, block in wal.read_batches() for line in block.to_records()]


def final_totals(workdir, table: str = "totals") -> dict[str, int]:
    with sqlite3.connect(os.path.join(workdir, "out.db")) as db:
        return dict(db.execute(f"SELECT word, n FROM {table} WHERE batch_time = (SELECT max(batch_time) FROM {table})"))


@pytest.mark.parametrize("kill", ["any_time", "between_log_and_ack"])
def test_a_driver_killed_while_messages_are_published_at_qos1_loses_none(own_broker, tmp_path, kill):
    """``any_time``: the test kills the driver once it received a third of the messages;
    ``between_log_and_ack``: the driver kills itself then, right after a block is durable in the log
    and before its messages are acknowledged, so the broker sends them again: duplicates for sure."""
    own_broker.start()
    topic = "kill"
    messages = [(f"{topic}/s{i % 3}", f"id{i} w{i % 7}") for i in range(N)]
    first = spawn("fresh", tmp_path, own_broker.url, topic,
                  *(["--die-before-ack", N // 3] if kill == "between_log_and_ack" else []))
    publisher_error: list = []

    def publish_slowly():           # ~1.5 s of messages, in chunks: before, during and after the kill
        try:
            for start in range(0, N, 100):
                publish(own_broker.url, messages[start:start + 100], qos=1)
                time.sleep(0.05)
        except Exception as e:  # noqa: BLE001 — reported by the test below
            publisher_error.append(e)

    publisher = threading.Thread(target=publish_slowly)
    try:
        read_until(first, lambda line: line.startswith("subscribed"), "subscribing")
        publisher.start()
        if kill == "any_time":          # once it has counted some messages and received a third of them
            read_until(first, lambda line: line.startswith("done") and int(line.split()[2]) >= N // 3
                       and int(line.split()[3]) > 0, "receiving")
            first.send_signal(signal.SIGKILL)
        first.wait(TIMEOUT)
        assert first.returncode == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(TIMEOUT)
        first.stdout.close()
        first.stderr.close()
        publisher.join(TIMEOUT)
    assert not publisher.is_alive() and not publisher_error, publisher_error
    logged_before = logged_ids(tmp_path)
    assert len(logged_before) == len(set(logged_before))
    counted_before = final_totals(tmp_path)
    assert 0 < sum(n for w, n in counted_before.items() if w.startswith("id")) < N   # killed mid-stream

    second = spawn("get_or_create", tmp_path, own_broker.url, topic, "--expect", N)
    try:
        start = read_until(second, lambda line: line.startswith("subscribed"), "subscribing again")
        assert int(start.split()[1]) > 1, start          # it recovered from a checkpoint
        read_until(second, lambda line: line.strip() == "final", "counting every message")
        second.wait(TIMEOUT)
        assert second.returncode == 0, second.stderr.read()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(TIMEOUT)
        second.stdout.close()
        second.stderr.close()

    totals = final_totals(tmp_path)
    ids = {w: n for w, n in totals.items() if w.startswith("id")}
    assert sorted(ids) == sorted(f"id{i}" for i in range(N))            # nothing lost
    duplicates = {w: n - 1 for w, n in ids.items() if n > 1}
    # at least once: only messages logged before the kill come twice (sent again, never acknowledged)
    assert set(duplicates) <= set(logged_before) and set(duplicates.values()) <= {1}, duplicates
    if kill == "between_log_and_ack":
        assert duplicates, "the block logged and never acknowledged was not sent again"
    for k in range(7):                                                  # the word totals carry the same duplicates
        dup = sum(n for w, n in duplicates.items() if int(w[2:]) % 7 == k)
        assert totals[f"w{k}"] == len(range(k, N, 7)) + dup
    # deduplicated by the id in the payload, the totals are exact
    assert final_totals(tmp_path, "exact") == {f"w{k}": len(range(k, N, 7)) for k in range(7)}
