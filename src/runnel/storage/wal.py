"""A write-ahead log: numbered, checksummed entries in segment files, fsynced on demand.

Pure storage: it knows entries (bytes, or Batches through :mod:`runnel.storage.ipc`)
and sequence numbers, nothing about streams or batches of a stream.

Layout of a log directory::

    <dir>/00000000000000000001.wal    entries 1 .. 41
    <dir>/00000000000000000042.wal    entries 42 .. (the active segment: appends go here)

A segment is named after the sequence number of its first entry, so the
newest file name tells the next number even when it is still empty, and the
numbers keep growing across restarts and truncations. Entry ``seq`` is the
``seq``-th entry ever appended (the first is 1). A segment holds entries
back to back, each a frame::

    magic "RWAL" (4) | seq u64 | length u64 | crc32 u32 | payload (length bytes)

little-endian; the CRC-32 covers seq, length and the payload, so a torn
write (a crash in the middle of an append: a short frame, or one whose
bytes never reached the disk, often zeros) and a flipped bit are both caught.

Signed logs (``key``, from ``RUNNEL_CHECKPOINT_KEY``: :mod:`runnel.storage.signing`):
a frame written with a key has magic ``"RWAH"`` and is followed by a 32-byte
HMAC-SHA256 of its seq and payload. Reading with a key checks it before the
payload is handed out (payloads may be batches with pickled object columns),
and an unsigned or wrongly signed entry raises :class:`WALSignatureError`
naming the segment and the entry. Reading without a key skips signatures.
Segment files are 0600 and the log's directories 0700 (owner only).

Crash behaviour: only the last entries of the active segment can be torn
(a segment is fsynced before the next one is created). Opening a log checks
the active segment, and cuts it at the first invalid frame with a warning;
earlier entries are kept and the next append gets the next number. An
invalid frame anywhere else is corruption, not a crash, and reading it
raises :class:`WALCorruptionError`.

Durability: ``append(..., sync=True)`` returns once the entry is on disk
(``fdatasync``). ``append(..., sync=False)`` + a later ``sync()`` lets one
fsync cover many entries (group commit); ``sync`` runs outside the append
lock, so appends go on while it waits for the disk.

Truncation drops whole segments whose entries are all <= the given number
(rolling the active segment first when it is fully covered), so a log
whose entries are consumed regularly stays about one segment long.

State, under ``_lock`` (``sync`` also takes ``_sync_lock`` so that one fsync runs at a time):

    segments     first seq of each segment file, oldest first   append (roll), truncate
    next_seq     number of the next entry                       append
    synced_seq   entries <= it are on disk                      sync, roll
    fd, size     the active segment's descriptor and length     append, roll, close
    appended     entries and bytes (frames) appended by this       append
                 object, for monitoring
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import Any

from ..batch import Batch
from . import signing
from .durable import PRIVATE_FILE, fsync_dir, make_private_dirs
from .ipc import batch_to_buffer, read_batch

__all__ = ["WriteAheadLog", "WALCorruptionError", "WALSignatureError", "encode_batch", "DEFAULT_SEGMENT_BYTES"]

log = logging.getLogger("runnel.wal")

DEFAULT_SEGMENT_BYTES = 16 << 20
_MAGIC = b"RWAL"
_MAGIC_SIGNED = b"RWAH"
_MAGICS = re.compile(b"RWA[LH]")
_LABEL = b"runnel write-ahead log entry"
_HEADER = struct.Struct("<4sQQI")
_SUFFIX = ".wal"


class WALCorruptionError(IOError):
    """An entry of a write-ahead log is invalid somewhere a crash cannot have torn it."""


class WALSignatureError(WALCorruptionError):
    """An entry read with a key is unsigned or its signature is wrong (written by someone else)."""


def _crc(seq: int, payload: Any) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<QQ", seq, len(payload))))


_datasync = getattr(os, "fdatasync", os.fsync)


class WriteAheadLog:
    """An append-only log of numbered, checksummed entries in ``directory``.

    Parameters
    ----------
    directory : str
        Created if missing. One log per directory, one writer process.
    segment_bytes : int
        A segment that reached this size is closed and a new one started.
    key : bytes or None
        Sign every entry appended, and check every entry read (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> wal = WriteAheadLog(tempfile.mkdtemp())
    >>> wal.append(b"first"), wal.append(b"second")
    (1, 2)
    >>> [(seq, bytes(p)) for seq, p in wal.read(after=1)]
    [(2, b'second')]
    >>> wal.close()
    """

    def __init__(self, directory: str, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES, key: bytes | None = None):
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be positive, got {segment_bytes!r}")
        self.directory = os.fspath(directory)
        self.segment_bytes = segment_bytes
        self._key = key
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fd: int | None = None
        make_private_dirs(self.directory)
        self._segments = sorted(int(f[:-len(_SUFFIX)]) for f in os.listdir(self.directory)
                                if f.endswith(_SUFFIX) and f[:-len(_SUFFIX)].isdigit())
        self._next_seq, self._size = (self._check_tail() if self._segments else (1, 0))
        self._synced_seq = self._next_seq - 1
        self._appended = [0, 0]          # entries, bytes appended by this object

    # -- inspection ------------------------------------------------------------------------------
    @property
    def first_seq(self) -> int:
        """Number of the oldest entry kept (``last_seq + 1`` when the log is empty)."""
        with self._lock:
            return self._segments[0] if self._segments else self._next_seq

    @property
    def last_seq(self) -> int:
        """Number of the newest entry appended (0 before the first append)."""
        with self._lock:
            return self._next_seq - 1

    @property
    def synced_seq(self) -> int:
        """Entries up to this number are durable."""
        with self._lock:
            return self._synced_seq

    @property
    def appended(self) -> tuple[int, int]:
        """(entries, bytes) appended by this object since it was opened (cheap: two ints)."""
        with self._lock:
            return self._appended[0], self._appended[1]

    def stats(self) -> dict:
        """What the log holds and what this object wrote, for monitoring (the streaming UI's WAL view).

        ``segments`` files and their ``bytes`` on disk now, entries ``first_seq`` ..
        ``last_seq`` (``synced_seq`` durable), and ``appended`` entries of
        ``appended_bytes`` (frames) written since it was opened.
        """
        with self._lock:
            segments, last, synced = list(self._segments), self._next_seq - 1, self._synced_seq
            entries, nbytes = self._appended
            first = segments[0] if segments else self._next_seq
        size = 0
        for first_seq in segments:
            try:
                size += os.stat(self._path(first_seq)).st_size
            except OSError:            # truncated away while we looked
                pass
        return {"directory": self.directory, "segments": len(segments), "bytes": size, "first_seq": first,
                "last_seq": last, "synced_seq": synced, "appended": entries, "appended_bytes": nbytes}

    def _path(self, first: int) -> str:
        return os.path.join(self.directory, f"{first:020d}{_SUFFIX}")

    # -- opening: cut a torn tail ---------------------------------------------------------------
    def _check_tail(self) -> tuple[int, int]:
        """Validate the active segment; cut it after its last valid entry. Returns (next seq, size)."""
        first = self._segments[-1]
        path = self._path(first)
        seq, end, problem = first, 0, None
        with open(path, "rb") as f:
            for seq_read, _, _, frame_end, problem in _frames(f, first):
                if problem is not None:
                    break
                seq, end = seq_read + 1, frame_end
            size = os.fstat(f.fileno()).st_size
        if problem is not None:
            if not _torn_tail(path, end):
                # valid-looking data follows the bad entry: damage, not a crash mid-append. Cutting here
                # would lose acknowledged entries and hand out their numbers again; keep the evidence
                raise WALCorruptionError(f"write-ahead log {path}: {problem} at byte {end}, with more entries "
                                         "after it; the log is damaged (not a write torn by a crash)")
            log.warning("write-ahead log %s: %s at byte %d of %s; dropping the last %d bytes (a write torn "
                        "by a crash); entries before it are kept", self.directory, problem, end,
                        os.path.basename(path), size - end)
            os.truncate(path, end)
        return seq, end

    # -- writing -------------------------------------------------------------------------------
    def append(self, payload: Any, *, sync: bool = True) -> int:
        """Append one entry (bytes-like or ``pyarrow.Buffer``); returns its sequence number.

        With ``sync`` (default) it returns once the entry is durable; else
        call :meth:`sync` later (one fsync then covers every entry before it).
        """
        view = memoryview(payload).cast("B")
        with self._lock:
            if self._size >= self.segment_bytes or not self._segments:
                self._roll()
            elif self._fd is None:                      # closed: reopen the active segment
                self._fd = os.open(self._path(self._segments[-1]), os.O_WRONLY | os.O_APPEND)
            seq, before = self._next_seq, self._size
            if self._key is None:
                self._write_all([_HEADER.pack(_MAGIC, seq, len(view), _crc(seq, view)), view])
            else:
                self._write_all([_HEADER.pack(_MAGIC_SIGNED, seq, len(view), _crc(seq, view)), view,
                                 _signature(self._key, seq, view)])
            self._next_seq += 1
            self._appended[0] += 1
            self._appended[1] += self._size - before
        if sync:
            self.sync()
        return seq

    def _write_all(self, parts: list) -> None:
        start = self._size
        want = sum(len(p) for p in parts)
        try:
            done = os.writev(self._fd, parts)
            while done < want:               # a short write (signal, nearly full disk): go on from there
                done += os.write(self._fd, b"".join(bytes(p) for p in parts)[done:])
        except BaseException:
            # a half-written frame would hide every later entry: cut it before giving up
            os.ftruncate(self._fd, start)
            raise
        self._size = start + want

    def _roll(self) -> None:
        """Close the active segment (durable first) and start one for ``next_seq``; under ``_lock``."""
        if self._fd is not None:
            _datasync(self._fd)
            os.close(self._fd)
            self._fd = None
            self._synced_seq = self._next_seq - 1
        self._fd = os.open(self._path(self._next_seq), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        self._segments.append(self._next_seq)
        self._size = 0
        fsync_dir(self.directory)

    def sync(self) -> int:
        """Make every entry appended so far durable; returns the durable sequence number."""
        with self._sync_lock:
            with self._lock:
                if self._synced_seq == self._next_seq - 1 or self._fd is None:
                    return self._synced_seq
                written = self._next_seq - 1
                # a duplicate descriptor: a roll may close the original while the disk works
                fd = os.dup(self._fd)
            try:
                _datasync(fd)
            finally:
                os.close(fd)
            with self._lock:
                self._synced_seq = max(self._synced_seq, written)
                return self._synced_seq

    def append_batch(self, batch: Batch, *, sync: bool = True) -> int:
        """Append a Batch as one entry (Arrow IPC, zstd; see :mod:`runnel.storage.ipc`)."""
        return self.append(encode_batch(batch), sync=sync)

    # -- reading ---------------------------------------------------------------------------------
    def read(self, after: int = 0, through: int | None = None) -> Iterator[tuple[int, memoryview]]:
        """Entries ``after < seq <= through`` (default: up to the newest), oldest first, as (seq, payload).

        Entries truncated away are skipped silently (they start at
        :attr:`first_seq`); entries appended while reading may or may not
        be included.
        """
        with self._lock:
            last = self._next_seq - 1 if through is None else min(through, self._next_seq - 1)
            segments = list(self._segments)
            ends = segments[1:] + [self._next_seq]
        for first, end in zip(segments, ends):
            if end - 1 <= after or first > last:
                continue
            try:
                f = open(self._path(first), "rb")
            except FileNotFoundError:        # truncated by another thread meanwhile
                continue
            with f:
                for seq, payload, mac, _, problem in _frames(f, first, skip_through=after):
                    if seq > last:
                        return
                    if problem is not None:
                        raise WALCorruptionError(f"write-ahead log {self.directory}: {problem} in "
                                                 f"{os.path.basename(f.name)} (entry {seq})")
                    if self._key is not None:
                        self._check_signature(f.name, seq, payload, mac)
                    yield seq, payload
                    if seq == last:
                        return

    def _check_signature(self, path: str, seq: int, payload: memoryview, mac: bytes | None) -> None:
        if mac is not None and hmac.compare_digest(mac, _signature(self._key, seq, payload)):
            return
        why = "not signed" if mac is None else "signature mismatch (written with another key, or altered)"
        raise WALSignatureError(f"write-ahead log {path}, entry {seq}: {why}, but {signing.KEY_ENV} is set; "
                                "refusing to read it")

    def read_batches(self, after: int = 0, through: int | None = None) -> Iterator[tuple[int, Batch]]:
        """Like :meth:`read`, for entries written by :meth:`append_batch`."""
        for seq, payload in self.read(after, through):
            yield seq, read_batch(payload)

    # -- truncation and closing ----------------------------------------------------------------------
    def truncate(self, through: int) -> int:
        """Delete the segments whose entries are all ``<= through``; returns how many were deleted."""
        with self._lock:
            if self._segments and self._segments[-1] < self._next_seq <= through + 1:
                # the active segment is consumed: start the next one (its name keeps the numbering
                # across restarts) so that this one can go; a closed log gets the file, not a descriptor
                if self._fd is None:
                    os.close(os.open(self._path(self._next_seq), os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
                    self._segments.append(self._next_seq)
                    self._size = 0
                    fsync_dir(self.directory)
                else:
                    self._roll()
            ends = self._segments[1:] + [self._next_seq]
            gone = [first for first, end in zip(self._segments, ends) if first < end <= through + 1]
            for first in gone:
                os.remove(self._path(first))
            self._segments = [s for s in self._segments if s not in gone]
        return len(gone)

    def close(self) -> None:
        """Sync and close the active segment (a later append opens it again)."""
        with self._sync_lock, self._lock:   # closed implies synced: sync() has no descriptor to use
            if self._fd is not None:
                _datasync(self._fd)
                os.close(self._fd)
                self._fd = None
                self._synced_seq = self._next_seq - 1


def encode_batch(batch: Batch) -> Any:
    """The WAL payload of a Batch: its Arrow IPC file form with zstd (:func:`ipc.batch_to_buffer`)."""
    return batch_to_buffer(batch, "zstd")


def _signature(key: bytes, seq: int, payload: Any) -> bytes:
    return signing.mac(key, _LABEL, struct.pack("<Q", seq), payload)


def _torn_tail(path: str, at: int) -> bool:
    """Whether the bad entry at byte ``at`` ends the file as a crash mid-append leaves it: no
    valid entry (magic, length within the file, checksum) starts anywhere after it."""
    with open(path, "rb") as f:
        f.seek(at)
        rest = f.read()
    for m in _MAGICS.finditer(rest, 1):
        pos = m.start()
        if pos + _HEADER.size <= len(rest):
            _, seq, length, crc = _HEADER.unpack_from(rest, pos)
            body = pos + _HEADER.size
            if body + length <= len(rest) and _crc(seq, rest[body:body + length]) == crc:
                return False
    return True


def _frames(f, first: int, skip_through: int = 0):
    """(seq, payload, signature or None, end offset, problem) per frame of segment file ``f``
    starting at entry ``first``.

    Frames with ``seq <= skip_through`` are skipped without reading their
    payloads. Stops after the first frame with a problem (payload None).
    """
    expected, offset, size = first, 0, 0
    while True:
        header = f.read(_HEADER.size)
        if not header:
            return
        if len(header) < _HEADER.size:
            yield expected, None, None, offset, "short entry header"
            return
        magic, seq, length, crc = _HEADER.unpack(header)
        if magic not in (_MAGIC, _MAGIC_SIGNED) or seq != expected:
            yield expected, None, None, offset, "invalid entry header"
            return
        macs = signing.MAC_BYTES if magic == _MAGIC_SIGNED else 0
        end = offset + _HEADER.size + length + macs
        if end > size and end > (size := os.fstat(f.fileno()).st_size):
            # checked before reading: a corrupt length must not make us allocate gigabytes
            yield seq, None, None, offset, "short entry"
            return
        if seq <= skip_through:
            f.seek(length + macs, os.SEEK_CUR)
        else:
            payload = f.read(length)
            mac = f.read(macs) if macs else None
            if _crc(seq, payload) != crc:
                yield seq, None, None, offset, "checksum mismatch"
                return
            yield seq, memoryview(payload), mac, end, None
        expected, offset = seq + 1, end
