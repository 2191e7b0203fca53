"""A small loopback TCP server that sends generated lines of text.

It stands in for ``nc -lk 9999`` so the network word count runs on a machine
with nothing installed: each connection gets lines of words drawn from a
Zipf distribution over a fixed vocabulary, at a steady rate, until the
server is stopped.
"""

from __future__ import annotations

import socket
import threading

import numpy as np

VOCABULARY = ("the quick brown fox jumps over lazy dog stream batch window state spark runnel "
              "numba arrow column kernel shuffle python data engine").split()


class LineServer:
    """Serve ``lines_per_second`` generated lines to every client on 127.0.0.1.

    Examples
    --------
    >>> with LineServer(lines_per_second=100) as server:
    ...     server.port > 0
    True
    """

    def __init__(self, lines_per_second: int = 1000, words_per_line: int = 8, seed: int = 7,
                 lines: list[str] | None = None):
        self.lines_per_second = lines_per_second
        self.words_per_line = words_per_line
        self.seed = seed
        self.fixed_lines = lines
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="runnel-line-server", daemon=True)
        self.sent_lines: list[str] = []

    def start(self) -> "LineServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def __enter__(self) -> "LineServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _lines(self, rng: np.random.Generator, n: int) -> list[str]:
        # Zipf(1.3) bounded to the vocabulary: P(rank k) is proportional to k ** -1.3
        weights = np.arange(1, len(VOCABULARY) + 1, dtype=np.float64) ** -1.3
        ranks = rng.choice(len(VOCABULARY), size=(n, self.words_per_line), p=weights / weights.sum())
        return [" ".join(VOCABULARY[r] for r in row) for row in ranks]

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        rng = np.random.default_rng(self.seed)
        tick = 0.1
        per_tick = max(1, int(self.lines_per_second * tick))
        with conn:
            if self.fixed_lines is not None:
                conn.sendall("".join(line + "\n" for line in self.fixed_lines).encode())
                self.sent_lines.extend(self.fixed_lines)
                self._stop.wait()
                return
            while not self._stop.is_set():
                lines = self._lines(rng, per_tick)
                try:
                    conn.sendall(("\n".join(lines) + "\n").encode())
                except OSError:
                    return
                self.sent_lines.extend(lines)
                self._stop.wait(tick)
