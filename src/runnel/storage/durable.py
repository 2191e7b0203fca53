"""Making files survive a crash: data fsynced before it is named, names fsynced in their directory.

A file written and renamed into place is durable only once its bytes are
fsynced (before the rename, so the name never points at missing data) and
its directory is fsynced (so the new name itself survives). The checkpoint
writer, the write-ahead log and the exactly-once sinks all follow this.

Modes: what runnel keeps for itself — checkpoints, write-ahead logs, block
files in shared memory or on disk — is the owner's alone: files
:data:`PRIVATE_FILE` (0600), directories :data:`PRIVATE_DIR` (0700), created
so from the start (never chmod-ed after, which would leave a window).
Outputs (text, Parquet, SQLite files) are the user's data, meant to be
shared, and get the umask's modes, as Spark's and every Unix tool's do.
"""

from __future__ import annotations

import os

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "fsync_dir", "fsync_file", "make_private_dirs", "open_private",
           "write_durably"]

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


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


def make_private_dirs(path: str) -> None:
    """Create directory ``path`` and every missing parent with mode 0700 (``os.makedirs`` gives
    parents the umask's mode); directories that exist are left as they are."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for p in reversed(missing):
        try:
            os.mkdir(p, PRIVATE_DIR)
        except FileExistsError:      # made meanwhile by another thread or process
            if not os.path.isdir(p):
                raise


def open_private(path: str, flags: int = 0) -> int:
    """A descriptor of a *new* file ``path`` (mode 0600; never through a symlink), opened for writing."""
    return os.open(path, _CREATE | flags, PRIVATE_FILE)


def write_durably(path: str, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to a new file ``path`` and fsync it (its name: :func:`fsync_dir`).

    ``private``: the file is created 0600 (runnel's own files), else with the umask's mode (outputs).
    """
    with (open(open_private(path), "wb") if private else open(path, "wb")) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
