"""A loopback line server for the example programs: the i-th connection gets the i-th list of lines.

Each connection is held open after its lines are sent until the client
closes it (a socket receiver that saw EOF would reconnect and take the next
session early). Every wait is bounded: accept and recv poll a stop event.
"""

from __future__ import annotations

import socket
import threading


class LineFeed:
    def __init__(self, sessions: list[list[str]], chunk: int = 333):
        self.sessions = [list(s) for s in sessions]
        self.connections = 0
        self._chunk = chunk
        self._stop = threading.Event()
        self._srv = socket.create_server(("127.0.0.1", 0))
        self._srv.settimeout(0.2)
        self.port = self._srv.getsockname()[1]
        self._thread = threading.Thread(target=self._loop, name="line-feed", daemon=True)

    def __enter__(self) -> "LineFeed":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
        self._srv.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except (socket.timeout, OSError):
                continue
            lines = self.sessions[self.connections] if self.connections < len(self.sessions) else []
            self.connections += 1
            with conn:
                payload = "".join(line + "\n" for line in lines).encode()
                # odd chunk sizes split lines (and multi-byte characters) across reads
                for i in range(0, len(payload), self._chunk):
                    conn.sendall(payload[i:i + self._chunk])
                conn.settimeout(0.2)
                while not self._stop.is_set():
                    try:
                        if not conn.recv(4096):
                            break                  # the receiver closed: this session is over
                    except socket.timeout:
                        continue
                    except OSError:
                        break
