"""File streams: the files that appear in a directory, each read once.

``text_file_stream(dir)`` gives the lines of new files (without their line
terminators), ``binary_records_stream(dir, n)`` their fixed-length ``bytes``
records. Rules (PySpark's, with deliberate differences where Spark drops data):

* files present when the context starts are ignored, as are names starting
  with ``.`` or ``_``;
* a new file is read by the first batch whose time (ms on the context's
  clock) is >= the file's modification time, and never again;
* Spark also silently ignores a new file whose modification time is older
  than the start (or than a minute before the batch), e.g. one moved in
  with its old mtime preserved; runnel reads it in the next batch instead,
  because received data is never dropped silently.

Publishing files: write a file elsewhere (or as ``.name``/``_name`` in the
directory) and *rename* it into place, so it appears whole (Spark's rule).
A file written in place may be read half-written. runnel notices when a
file it read changes afterwards (its size or modification time) and logs a
warning naming it:

* grown, with the bytes it read unchanged (their last 64 kB are compared):
  an append — the appended bytes are read by that batch (from the byte
  where the earlier read stopped: a line that read cut comes out as two
  lines);
* otherwise (shorter, or different bytes): rewritten — its new content is
  *not* read (there is no telling what is new); write a new file instead.

A text read that ends inside a multi-byte UTF-8 character (a writer's buffer
flushed mid-character) holds those 1-3 bytes back: they are read with the
bytes appended after them, so the character comes out whole. A file still
unchanged at the next batch's scan has its held-back bytes read as they are
(and, being no whole character, fails as not UTF-8, below).

A file that cannot be read (not UTF-8, not a whole number of records, no
permission) fails its batch with an error naming the stream, the batch time
and the file, and is *set aside*: not read again until its size or
modification time changes (a fixed version is read). The other new files
of that batch are not consumed: the next batch reads them.

State, changed only by ``start`` and ``compute`` on the scheduler thread
generating a batch (``_lock`` guards what ``progress`` reads on the scheduler
thread that ran an earlier one; see ``runnel.scheduler.scheduler``):

    ignored    names present at start
    processed  name -> (bytes read, mtime ns, CRC-32 of the last 64 kB read) or None (restored from
               an old checkpoint: taken as it is at the next scan); the bytes read stop short of
               the file's size at that mtime when a cut character was held back
    rejected   name -> (size, mtime ns) of a file set aside
    _taken     batch time -> {name: its ``processed`` entry before that batch}, until checkpointed

``ignored``, ``processed`` and ``rejected`` forget names that are no longer
in the directory, so they are bounded by the directory's listing (Spark
instead forgets files older than ``minRememberDuration`` and ignores files
with older modification times, which would drop the moved-in files above).
One partition per non-empty read, in (mtime, name) order.
"""

from __future__ import annotations

import logging
import os
import threading
import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..batch import Batch
from ..context import split_lines
from ..listener import ms_to_datetime
from .inputs import InputDStream

log = logging.getLogger("runnel.files")

#: bytes before the end of what was read that must be unchanged for a grown file to count as appended
FINGERPRINT_BYTES = 64 << 10
PUBLISH_HINT = "publish files by writing them elsewhere and renaming them into the directory"


@dataclass(frozen=True)
class _Visible:
    name: str
    path: str
    size: int
    mtime_ns: int

    @property
    def mtime_ms(self) -> int:
        return self.mtime_ns // 1_000_000


def _cut_character(data: bytes) -> int:
    """How many bytes at the end of ``data`` begin a UTF-8 character they do not finish (0-3)."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b & 0xC0 != 0x80:                # not a continuation byte: where the last character starts
            need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
            return back if need > back else 0
    return 0


class FileInputDStream(InputDStream):
    """New files of ``directory``: ``kind="text"`` lines or ``"binary"`` fixed-length records."""

    kind = "file_stream"

    def __init__(self, ssc, directory: str, kind: str = "text", record_length: int | None = None):
        if kind not in ("text", "binary"):
            raise ValueError(f"file stream kind must be 'text' or 'binary', got {kind!r}")
        if kind == "binary":
            if isinstance(record_length, bool) or not isinstance(record_length, (int, np.integer)):
                raise TypeError(f"binaryRecordsStream: recordLength must be an int, got "
                                f"{type(record_length).__name__}: {record_length!r}")
            if record_length <= 0:
                raise ValueError(f"binaryRecordsStream: recordLength must be positive, got {record_length!r}")
            record_length = int(record_length)
        elif record_length is not None:
            raise ValueError("record_length applies to binary file streams only")
        what = "textFileStream" if kind == "text" else "binaryRecordsStream"
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"{what}: directory {directory!r} does not exist or is not a directory")
        self.kind = "text_file_stream" if kind == "text" else "binary_records_stream"
        super().__init__(ssc)
        self.directory = directory
        self.file_kind = kind
        self.record_length = record_length
        self.ignored: set[str] = set()
        self.processed: dict[str, tuple[int, int, int] | None] = {}
        self.rejected: dict[str, tuple[int, int]] = {}
        self._taken: dict[int, dict[str, tuple | None]] = {}   # batch time -> entries before it, until checkpointed
        self._failed: dict[int, Exception] = {}
        self._restored = False
        self._lock = threading.Lock()

    def start(self) -> None:
        if not self._restored:          # a recovered stream keeps the files its first start ignored
            self.ignored = set(self._scan())

    def _scan(self) -> dict[str, _Visible]:
        """The visible regular files of the directory, by name."""
        out = {}
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.name}: directory {self.directory!r} has disappeared") from None
        for e in entries:
            if e.name.startswith((".", "_")):
                continue
            try:
                if not e.is_file():
                    continue
                st = e.stat()
            except FileNotFoundError:       # deleted between listing and stat
                continue
            out[e.name] = _Visible(e.name, e.path, st.st_size, st.st_mtime_ns)
        return out

    def _due(self, t: int, files: dict[str, _Visible]) -> list[tuple[_Visible, int, bool]]:
        """(file, offset to read from, whether a cut character at the end may be held back) for
        batch t: new files, appends, held-back bytes not completed since; reports rewritten files."""
        due = []
        for f in files.values():
            if f.name in self.ignored or self.rejected.get(f.name) == (f.size, f.mtime_ns):
                continue
            if f.name not in self.processed:
                if f.mtime_ms <= t:
                    due.append((f, 0, True))
                continue
            done = self.processed[f.name]
            if done is None:                                   # restored from an old checkpoint
                self.processed[f.name] = (f.size, f.mtime_ns, self._fingerprint(f.path, f.size))
            elif (f.size, f.mtime_ns) != done[:2]:
                size, mtime_ns, crc = done
                if f.mtime_ns == mtime_ns and 0 < f.size - size < 4:   # a held-back cut character, unchanged
                    due.append((f, size, False))
                elif f.size > size and crc is not None and self._fingerprint(f.path, size) == crc:
                    log.warning("%s (batch %s): file %s changed after it was read (%d -> %d bytes): its %d "
                                "appended bytes are read by batch %s; %s", self.name, ms_to_datetime(t), f.path,
                                size, f.size, f.size - size, ms_to_datetime(t), PUBLISH_HINT)
                    due.append((f, size, True))
                else:
                    log.warning("%s (batch %s): file %s was rewritten after it was read (%d -> %d bytes, "
                                "modified again): its new content is not read; %s", self.name, ms_to_datetime(t),
                                f.path, size, f.size, PUBLISH_HINT)
                    self.processed[f.name] = (f.size, f.mtime_ns, self._fingerprint(f.path, f.size))
        return sorted(due, key=lambda d: (d[0].mtime_ns, d[0].name))

    def compute(self, t: int):
        if t in self._failed:               # a second output of the same batch sees the same error
            raise self._failed[t]
        files = self._scan()
        with self._lock:                    # forget what left the directory (progress() reads these)
            self.ignored &= files.keys()
            self.processed = {n: e for n, e in self.processed.items() if n in files}
        self.rejected = {n: e for n, e in self.rejected.items() if n in files}
        due = self._due(t, files)
        batches, done, bad = [], {}, []
        for f, offset, hold in due:
            try:
                batch, end, crc = self._read(f, offset, t, hold)
            except FileNotFoundError:       # deleted since the scan: nothing left to read
                continue
            except Exception as e:
                bad.append((f, e))
                continue
            if len(batch):
                batches.append(batch)
            done[f.name] = (end, f.mtime_ns, crc)
        if bad:
            for f, _ in bad:
                self.rejected[f.name] = (f.size, f.mtime_ns)
            others = len(due) - len(bad)
            rest = f"; the {others} other files of this batch are read by the next batch" if others else ""
            err = ValueError("; ".join(str(e) for _, e in bad) + " — set aside (read again once changed)" + rest)
            err.__cause__ = bad[0][1]
            self._failed[t] = err
            raise err
        with self._lock:
            if self.ssc.checkpoint_dir is not None:   # pruned by checkpoint_written, so kept only then
                self._taken[t] = {n: self.processed.get(n) for n in done}
            self.processed.update(done)
        for n in done:
            self.rejected.pop(n, None)
        ctx = self.ssc.context
        ds = ctx.dataset_of(batches, self.name) if batches else ctx.empty_dataset(self.name)
        return self._counted(t, ds)

    @staticmethod
    def _fingerprint(path: str, end: int) -> int | None:
        """CRC-32 of the last :data:`FINGERPRINT_BYTES` before byte ``end`` of the file (None: it is gone)."""
        try:
            with open(path, "rb") as f:
                f.seek(max(0, end - FINGERPRINT_BYTES))
                return zlib.crc32(f.read(end - f.tell()))
        except FileNotFoundError:           # deleted since the scan: forgotten at the next one
            return None

    def _read(self, f: _Visible, offset: int, t: int, hold: bool = True) -> tuple[Batch, int, int]:
        """The records of ``f`` from byte ``offset`` up to its size at the scan; the end read and its fingerprint.

        ``hold``: text ending inside a UTF-8 character stops before that character (the module docstring).
        """
        where = f"{self.name} (batch {ms_to_datetime(t)}): file {f.path}"
        with open(f.path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(max(0, f.size - offset))
        if self.file_kind == "text" and hold:
            cut = _cut_character(data)
            if cut:
                data = data[:-cut]
        end = offset + len(data)
        crc = self._fingerprint(f.path, end)
        if self.file_kind == "text":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{where} is not UTF-8 text: {e}") from e
            return Batch({"value": pa.array(split_lines(text), pa.string())}, "value"), end, crc
        n, rest = divmod(len(data), self.record_length)
        if rest:
            what = f"has {len(data)} bytes" if not offset else f"grew by {len(data)} bytes"
            raise ValueError(f"{where} {what}, not a multiple of the record length {self.record_length} "
                             f"({rest} bytes left over)")
        # zero-copy columnar records: one Arrow binary array over the file's bytes
        large = len(data) >= 2**31
        offsets = np.arange(0, len(data) + 1, self.record_length, dtype=np.int64 if large else np.int32)
        typ = pa.large_binary() if large else pa.binary()
        col = pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        return Batch({"value": col}, "value"), end, crc

    def forget_before(self, t: int) -> None:
        super().forget_before(t)
        for old in [k for k in self._failed if k <= t]:
            del self._failed[old]

    _runtime = ("_lock", "_failed")

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._failed = {}

    # -- checkpoints: what batches after the checkpoint read is read again on recovery -----------
    def progress(self, t: int) -> dict:
        with self._lock:
            processed = dict(self.processed)
            for bt in sorted((bt for bt in self._taken if bt > t), reverse=True):   # undo, newest first
                for name, before in self._taken[bt].items():
                    if before is None:
                        processed.pop(name, None)
                    else:
                        processed[name] = before
            return {"directory": os.path.abspath(self.directory), "ignored": sorted(self.ignored),
                    "processed": {n: None if e is None else list(e) for n, e in sorted(processed.items())}}

    def restore_progress(self, progress: dict, t: int) -> None:
        was = progress.get("directory")
        if was is not None and was != os.path.abspath(self.directory):
            log.warning("%s: the checkpoint's progress is for directory %s, this stream reads %s; "
                        "starting it afresh (files present now are ignored)", self.name, was, self.directory)
            return
        self.ignored = set(progress.get("ignored", ()))
        processed = progress.get("processed", ())
        if isinstance(processed, dict):
            self.processed = {n: None if e is None else tuple(e) for n, e in processed.items()}
        else:                               # written by an older runnel: names only
            self.processed = dict.fromkeys(processed)
        self._restored = True

    def checkpoint_written(self, t: int, progress: dict | None) -> None:
        with self._lock:
            for old in [k for k in self._taken if k <= t]:
                del self._taken[old]
