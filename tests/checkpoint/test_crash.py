"""Drivers killed with SIGKILL and restarted: results equal an uninterrupted run.

Each test runs ``crash_job.py`` (a word count with updateStateByKey, a
built-in running sum and an inverse window, writing through the
exactly-once SQLite sink; or, with ``--job frame``, the same through the
DataFrame API: a running group-by and per-key cumsum, rolling and ewm
carries) as its own process; the process dies by SIGKILL
in the middle of a batch, after one output committed, and is started again
with ``get_or_create`` or ``resume`` (then as a changed program). Its
output database must equal, batch by batch, that of a run never killed —
no batch missing, none counted twice. The socket test checks that with the
write-ahead log on, no line the receiver stored before the kill is lost.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest

JOB = os.path.join(os.path.dirname(__file__), "crash_job.py")
TIMEOUT = 240


def job(*args, check=True):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    p = subprocess.run([sys.executable, JOB, *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT,
                       env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"crash_job {args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def started(p) -> int:
    """The first batch a run of the job ran: one after the checkpoint it recovered from."""
    word, first = p.stdout.split()[:2]
    assert word == "start", p.stdout
    return int(first)


def rows(workdir, tables=("totals", "window", "builtin")) -> dict[str, list]:
    """Each table's rows with the batch time first, in order (its other columns, as stored)."""
    with sqlite3.connect(os.path.join(workdir, "out.db")) as db:
        out = {}
        for t in tables:
            cols = [c[1] for c in db.execute(f"PRAGMA table_info({t})") if c[1] != "batch_time"]
            order = ", ".join(["batch_time", *cols])
            out[t] = db.execute(f"SELECT {order} FROM {t} ORDER BY {order}").fetchall()
        return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work = tmp_path_factory.mktemp("reference")
    job("fresh", work, 12)
    return rows(work)


@pytest.mark.parametrize("master", ["local", "local[2]"])
def test_killed_driver_recovers_with_get_or_create(tmp_path, reference, master):
    p = job("fresh", tmp_path, 12, "--die-in-batch", 7, "--master", master, check=False)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert "done 6" in p.stdout and "done 7" not in p.stdout
    p = job("get_or_create", tmp_path, 12, "--master", master)
    # from the checkpoint at 6 s, or an earlier one if the writer (asynchronous) was behind at the kill
    assert started(p) in (7, 5, 3, 1), p.stdout
    got = rows(tmp_path)
    assert got == reference
    assert [r for r in got["totals"] if r[0] == 7000]   # the half-written batch is there once


FRAME = ("frame_totals", "frame_rows")


@pytest.fixture(scope="module")
def frame_reference(tmp_path_factory):
    work = tmp_path_factory.mktemp("frame_reference")
    job("fresh", work, 10, "--job", "frame")
    return rows(work, FRAME)


@pytest.mark.parametrize("master", ["local", "local[2]"])
def test_killed_frame_job_recovers_with_get_or_create(tmp_path, frame_reference, master):
    # a running group-by and cumsum/rolling/ewm carries per key, killed between the batch's two outputs
    p = job("fresh", tmp_path, 10, "--job", "frame", "--die-in-batch", 6, "--master", master, check=False)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert "done 5" in p.stdout and "done 6" not in p.stdout
    p = job("get_or_create", tmp_path, 10, "--job", "frame", "--master", master)
    assert started(p) in (5, 3, 1), p.stdout
    got = rows(tmp_path, FRAME)
    assert got == frame_reference
    assert len({r[0] for r in got["frame_rows"]}) == 10 and [r for r in got["frame_totals"] if r[0] == 6000]


EVENT_TIME = ("et_windows", "et_late", "et_sessions", "et_dedup")


@pytest.fixture(scope="module")
def event_time_reference(tmp_path_factory):
    work = tmp_path_factory.mktemp("event_time_reference")
    job("fresh", work, 10, "--job", "eventtime")
    return rows(work, EVENT_TIME)


@pytest.mark.parametrize("master", ["local", "local[2]"])
def test_killed_event_time_job_recovers_watermark_windows_and_seen_keys(tmp_path, event_time_reference, master):
    # the watermark, the window and session tables and drop_duplicates' seen keys come back from the checkpoint
    p = job("fresh", tmp_path, 10, "--job", "eventtime", "--die-in-batch", 6, "--master", master, check=False)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert "done 5" in p.stdout and "done 6" not in p.stdout
    p = job("get_or_create", tmp_path, 10, "--job", "eventtime", "--master", master)
    assert started(p) in (5, 3, 1), p.stdout
    got = rows(tmp_path, EVENT_TIME)
    assert all(got[t] for t in EVENT_TIME), "the job should close windows, see late rows and keep words"
    assert got == event_time_reference


def test_killed_driver_resumes_as_a_changed_program(tmp_path, reference):
    p = job("fresh", tmp_path, 12, "--die-in-batch", 6, check=False)
    assert p.returncode == -signal.SIGKILL
    p = job("resume", tmp_path, 12, "--v2", "--master", "local[2]")
    assert started(p) in (5, 3, 1), p.stdout
    assert rows(tmp_path) == reference


def test_killed_twice_still_exact(tmp_path, reference):
    assert job("fresh", tmp_path, 12, "--die-in-batch", 4, check=False).returncode == -signal.SIGKILL
    p = job("resume", tmp_path, 12, "--die-in-batch", 9, check=False)
    assert p.returncode == -signal.SIGKILL and started(p) in (3, 1), p.stdout
    p = job("get_or_create", tmp_path, 12)          # the program stored by the second start
    assert started(p) in (9, 7, 5), p.stdout
    assert rows(tmp_path) == reference


class OneShotServer:
    """Sends ``lines`` to the first client only; later clients get a quiet open connection."""

    def __init__(self, lines: list[str]):
        self.data = "".join(line + "\n" for line in lines).encode()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if not self.conns:
                conn.sendall(self.data)
            self.conns.append(conn)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("restart", [["get_or_create"], ["resume", "--v2"]])
def test_wal_loses_no_line_the_receiver_stored_before_a_kill(tmp_path, restart):
    lines = [f"a b{i % 7} c{i % 3}" for i in range(3000)]
    server = OneShotServer(lines)
    try:
        child = subprocess.Popen([sys.executable, JOB, "fresh", str(tmp_path), "3", "--source", "socket",
                                  "--port", str(server.port), "--expect", str(len(lines))],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONWARNINGS": "ignore"})
        try:
            for line in child.stdout:               # bounded: the job gives up waiting after 60 s
                if line.startswith("received"):
                    break
            assert line.strip() == f"received {len(lines)}", child.stderr.read() if child.poll() else line
            child.send_signal(signal.SIGKILL)       # lines stored, most of them in no batch yet
            child.wait(TIMEOUT)
        finally:
            if child.poll() is None:
                child.kill()
            child.stdout.close()
            child.stderr.close()
        job(restart[0], tmp_path, 0, "--source", "socket", "--port", server.port, "--more", 3, *restart[1:])
    finally:
        server.close()
    got = rows(tmp_path)
    last = max(r[0] for r in got["totals"])
    totals = {w: n for t, w, n in got["totals"] if t == last}
    want: dict = {}
    for line in lines:
        for w in line.split():
            want[w] = want.get(w, 0) + 1
    assert totals == want
