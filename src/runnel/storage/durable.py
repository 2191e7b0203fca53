"""Making files survive a crash: data fsynced before it is named, names fsynced in their directory.

A file written and renamed into place is durable only once its bytes are
fsynced (before the rename, so the name never points at missing data) and
its directory is fsynced (so the new name itself survives). The checkpoint
writer, the write-ahead log and the exactly-once sinks all follow this.
"""

from __future__ import annotations

import os

__all__ = ["fsync_dir", "fsync_file", "write_durably"]


def fsync_dir(path: str) -> None:
    """Make the names created, renamed or removed in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str) -> None:
    """Make the bytes of an already written file durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: str, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` and fsync it (its name: :func:`fsync_dir`)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
