"""``python -m runnel.examples.line_server`` serves lines until Ctrl-C or SIGTERM."""

from __future__ import annotations

import re
import select
import signal
import socket
import subprocess
import sys

import pytest

from runnel.examples.line_server import VOCABULARY, LineServer

pytestmark = pytest.mark.network
WAIT = 30  # seconds: every wait below is bounded by this


def _start(*args: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "runnel.examples.line_server", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], WAIT)
    first = proc.stdout.readline() if ready else "(nothing)"  # the server prints where it listens once it does
    m = re.fullmatch(r"runnel line server: listening on 127\.0\.0\.1:(\d+), .*\(Ctrl-C stops\)\n", first)
    if m is None:
        proc.kill()
        raise AssertionError(f"unexpected first line {first!r}; stderr: {proc.communicate(timeout=WAIT)[1]}")
    return proc, int(m.group(1))


def _read_lines(port: int, n: int) -> list[str]:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn, conn.makefile("r") as f:
        return [f.readline() for _ in range(n)]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_line_server_serves_the_given_text_and_stops_cleanly(stop):
    proc, port = _start("--rate", "50", "--text", "to be or not to be")
    try:
        assert _read_lines(port, 12) == ["to be or not to be\n"] * 12
    finally:
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    sent = int(re.search(r"stopped after (\d+) lines", err).group(1))
    assert sent >= 12


def test_line_server_default_lines_are_words_of_the_vocabulary():
    proc, port = _start("--rate", "100")
    try:
        lines = _read_lines(port, 20)
    finally:
        proc.terminate()
        proc.communicate(timeout=WAIT)
    assert proc.returncode == 0
    words = [w for line in lines for w in line.split()]
    assert len(words) == 20 * 8 and set(words) <= set(VOCABULARY)


def test_line_server_refuses_a_port_in_use_with_a_message():
    with LineServer() as taken:
        done = subprocess.run([sys.executable, "-m", "runnel.examples.line_server", "--port", str(taken.port)],
                              capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{taken.port}" in done.stderr


def test_line_server_rejects_a_rate_below_one():
    with pytest.raises(ValueError, match="lines_per_second"):
        LineServer(lines_per_second=0)
