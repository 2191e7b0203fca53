"""A small TCP server that sends generated lines of text.

It stands in for ``nc -lk 9999`` so the network word count runs on a machine
with nothing installed: each connection gets lines of words drawn from a
Zipf distribution over a fixed vocabulary (or one fixed line), at a steady
rate, until the server is stopped. From a shell::

    python -m runnel.examples.line_server                  # 127.0.0.1:9999, 1000 lines/s
    python -m runnel.examples.line_server --port 0 --rate 10 --text "to be or not to be"

and in another one ``python -m runnel.examples.network_wordcount --port 9999``.
Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading

import numpy as np

VOCABULARY = ("the quick brown fox jumps over lazy dog stream batch window state spark runnel "
              "numba arrow column kernel shuffle python data engine").split()


class LineServer:
    """Serve ``lines_per_second`` generated lines to every client.

    Parameters
    ----------
    lines_per_second : int
        Lines sent to each client per second (in ticks of 0.1 s).
    words_per_line : int
        Words of a generated line.
    seed : int
        Seed of every connection's generator (each client gets the same lines).
    lines : list of str, optional
        Send exactly these lines once to each client instead, then keep the
        connection open until the server stops.
    host, port : str, int
        Where to listen; port 0 picks a free port (see :attr:`port`).
    text : str, optional
        Send this line, ``lines_per_second`` times a second, instead of
        generated ones.

    Examples
    --------
    >>> with LineServer(lines_per_second=100) as server:
    ...     server.port > 0
    True
    """

    def __init__(self, lines_per_second: int = 1000, words_per_line: int = 8, seed: int = 7,
                 lines: list[str] | None = None, host: str = "127.0.0.1", port: int = 0,
                 text: str | None = None):
        if lines_per_second < 1:
            raise ValueError(f"lines_per_second must be at least 1, got {lines_per_second}")
        self.lines_per_second = lines_per_second
        self.words_per_line = words_per_line
        self.seed = seed
        self.fixed_lines = lines
        self.text = text
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.2)
        self.host = host
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="runnel-line-server", daemon=True)
        self._count = threading.Lock()
        self._clients: list[threading.Thread] = []
        #: Lines sent so far, to all clients.
        self.sent = 0

    def start(self) -> "LineServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for client in self._clients:      # so `sent` counts every line a client was sent
            client.join(5)
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
            client = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._clients.append(client)
            client.start()

    def _serve(self, conn: socket.socket) -> None:
        rng = np.random.default_rng(self.seed)
        tick = 0.1
        per_tick = max(1, int(self.lines_per_second * tick))
        with conn:
            if self.fixed_lines is not None:
                conn.sendall("".join(line + "\n" for line in self.fixed_lines).encode())
                self._counted(len(self.fixed_lines))
                self._stop.wait()
                return
            while not self._stop.is_set():
                lines = [self.text] * per_tick if self.text is not None else self._lines(rng, per_tick)
                try:
                    conn.sendall(("\n".join(lines) + "\n").encode())
                except OSError:
                    return
                self._counted(per_tick)
                self._stop.wait(tick)

    def _counted(self, n: int) -> None:
        with self._count:
            self.sent += n


def main(argv: list[str] | None = None) -> None:
    """``python -m runnel.examples.line_server``: serve lines until Ctrl-C or SIGTERM."""
    p = argparse.ArgumentParser(prog="python -m runnel.examples.line_server", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9999, help="port to listen on, 0 for any free one (default 9999)")
    p.add_argument("--rate", type=int, default=1000, help="lines per second to each client (default 1000)")
    p.add_argument("--text", default=None, help="send this line every time instead of generated words")
    args = p.parse_args(argv)
    if args.rate < 1:
        p.error("--rate must be at least 1")
    try:
        server = LineServer(lines_per_second=args.rate, host=args.host, port=args.port, text=args.text)
    except OSError as e:
        p.exit(1, f"runnel line server: cannot listen on {args.host}:{args.port}: {e}\n")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # set even where a shell started us with SIGINT ignored
        signal.signal(sig, lambda *_: stop.set())
    with server:
        print(f"runnel line server: listening on {server.host}:{server.port}, {args.rate} lines/s per client "
              "(Ctrl-C stops)", flush=True)
        while not stop.wait(0.5):
            pass
    print(f"runnel line server: stopped after {server.sent} lines", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
