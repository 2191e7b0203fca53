"""A reliable receiver for tests: it tails a text file and acknowledges what it stored.

``FileTailReceiver(path)`` reads the complete lines of ``path`` from the byte
offset recorded in ``path + ".ack"`` (0 when missing), stores them as one
block per read, and only after ``store`` returned — the block is durable
when the write-ahead log is on — records the new offset (atomically, via
rename). A receiver started after a crash resumes at the last acknowledged
offset, so with the log on no acknowledged line is lost; lines stored but
not yet acknowledged when the process died are read again (at least once).

Examples
--------
The writer appends lines to ``path``; a test or a child process runs::

    ssc.checkpoint(checkpoint_dir)
    stream = ssc.receiver_stream(FileTailReceiver(path))
"""

from __future__ import annotations

import os
import threading

from runnel.dstream.receivers import Receiver, ReceiverStoppedError


def acknowledged(path: str) -> int:
    """The byte offset of ``path`` up to which lines were stored and acknowledged."""
    try:
        with open(path + ".ack") as f:
            return int(f.read() or 0)
    except FileNotFoundError:
        return 0


class FileTailReceiver(Receiver):
    """Tails ``path`` line by line; acknowledges each stored block by recording its end offset."""

    def __init__(self, path: str, *, max_bytes: int = 1 << 16, poll: float = 0.005):
        super().__init__()
        self.path = path
        self.max_bytes = max_bytes
        self.poll = poll
        self.blocks = 0

    def on_start(self) -> None:
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"file-tail-{self.path}", daemon=True)
        self._thread.start()

    def on_stop(self) -> None:
        self._halt.set()
        self._thread.join(10)

    def _run(self) -> None:
        offset = acknowledged(self.path)
        try:
            while not self._halt.is_set():
                offset = self._read_from(offset)
                self._halt.wait(self.poll)
        except ReceiverStoppedError:
            return
        except Exception as e:  # noqa: BLE001 — let the supervisor restart us (from the acked offset)
            self.restart(f"error reading {self.path}", e)

    def _read_from(self, offset: int) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read(self.max_bytes)
        except FileNotFoundError:
            return offset
        end = data.rfind(b"\n") + 1
        if end == 0:
            return offset
        self.store(data[:end].decode().splitlines())       # a block: durable when store returns (WAL on)
        offset += end
        tmp = f"{self.path}.ack.tmp"
        with open(tmp, "w") as f:
            f.write(str(offset))
        os.replace(tmp, self.path + ".ack")
        self.blocks += 1
        return offset
