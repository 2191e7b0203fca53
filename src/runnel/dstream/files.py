"""File streams: the files that appear in a directory, each read once.

``text_file_stream(dir)`` gives the lines of new files (without their line
terminators), ``binary_records_stream(dir, n)`` their fixed-length ``bytes``
records. Rules (PySpark's, with one deliberate difference):

* files present when the context starts are ignored, as are names starting
  with ``.`` or ``_`` (write a file as ``.name`` or elsewhere and rename it
  into place, so a half-written file is never read);
* a new file is read by the first batch whose time (ms on the context's
  clock) is >= the file's modification time, and never again;
* Spark also silently ignores a new file whose modification time is older
  than the start (or than a minute before the batch), e.g. one moved in
  with its old mtime preserved; runnel reads it in the next batch instead,
  because received data is never dropped silently.

State: ``ignored`` (names present at start) and ``processed`` (names read),
both changed only by ``start`` and ``compute`` on the job generator thread.
One partition per non-empty file, in (mtime, name) order.
"""

from __future__ import annotations

import logging
import os
import threading

import numpy as np
import pyarrow as pa

from ..batch import Batch
from ..context import read_lines
from ..listener import ms_to_datetime
from .inputs import InputDStream

log = logging.getLogger("runnel.files")


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
        self.processed: set[str] = set()
        self._taken: dict[int, list[str]] = {}   # batch time -> names it read, until checkpointed
        self._failed: dict[int, Exception] = {}
        self._restored = False
        self._lock = threading.Lock()

    def start(self) -> None:
        if not self._restored:          # a recovered stream keeps the files its first start ignored
            self.ignored = {name for name, _, _ in self._candidates()}

    def _candidates(self) -> list[tuple[str, int, str]]:
        """(name, mtime ms, path) of visible regular files not read or ignored yet."""
        out = []
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.name}: directory {self.directory!r} has disappeared") from None
        for e in entries:
            if e.name.startswith((".", "_")) or e.name in self.processed or e.name in self.ignored:
                continue
            try:
                if not e.is_file():
                    continue
                mtime = e.stat().st_mtime_ns // 1_000_000
            except FileNotFoundError:       # deleted between listing and stat
                continue
            out.append((e.name, mtime, e.path))
        return out

    def compute(self, t: int):
        if t in self._failed:               # a second output of the same batch sees the same error
            raise self._failed[t]
        new = sorted((m, n, p) for n, m, p in self._candidates() if m <= t)
        with self._lock:                 # progress() reads both on the job-runner thread
            if self.ssc.checkpoint_dir is not None:   # pruned by checkpoint_written, so kept only then
                self._taken[t] = [n for _, n, _ in new]
            self.processed.update(n for _, n, _ in new)
        try:
            batches = [b for b in (self._read(p, t) for _, _, p in new) if len(b)]
        except Exception as e:
            self._failed[t] = e
            raise
        ctx = self.ssc.context
        ds = ctx.dataset_of(batches, self.name) if batches else ctx.empty_dataset(self.name)
        return self._counted(t, ds)

    def _read(self, path: str, t: int) -> Batch:
        if self.file_kind == "text":
            try:
                lines = read_lines(path)
            except UnicodeDecodeError as e:
                raise ValueError(f"{self.name} (batch {ms_to_datetime(t)}): file {path} is not UTF-8 text: {e}") \
                    from e
            return Batch({"value": pa.array(lines, pa.string())}, "value")
        with open(path, "rb") as f:
            data = f.read()
        n, rest = divmod(len(data), self.record_length)
        if rest:
            raise ValueError(f"{self.name} (batch {ms_to_datetime(t)}): file {path} has {len(data)} bytes, "
                             f"not a multiple of the record length {self.record_length} "
                             f"({rest} bytes left over)")
        # zero-copy columnar records: one Arrow binary array over the file's bytes
        large = len(data) >= 2**31
        offsets = np.arange(0, len(data) + 1, self.record_length, dtype=np.int64 if large else np.int32)
        typ = pa.large_binary() if large else pa.binary()
        col = pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        return Batch({"value": col}, "value")

    def forget_before(self, t: int) -> None:
        super().forget_before(t)
        for old in [k for k in self._failed if k <= t]:
            del self._failed[old]

    _runtime = ("_lock", "_failed")

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._failed = {}

    # -- checkpoints: a file read by a batch after the checkpoint is read again on recovery ------
    def progress(self, t: int) -> dict:
        with self._lock:
            later = {n for bt, names in self._taken.items() if bt > t for n in names}
            return {"directory": os.path.abspath(self.directory), "ignored": sorted(self.ignored),
                    "processed": sorted(self.processed - later)}

    def restore_progress(self, progress: dict, t: int) -> None:
        was = progress.get("directory")
        if was is not None and was != os.path.abspath(self.directory):
            log.warning("%s: the checkpoint's progress is for directory %s, this stream reads %s; "
                        "starting it afresh (files present now are ignored)", self.name, was, self.directory)
            return
        self.ignored = set(progress.get("ignored", ()))
        self.processed = set(progress.get("processed", ()))
        self._restored = True

    def checkpoint_written(self, t: int, progress: dict | None) -> None:
        with self._lock:
            for old in [k for k in self._taken if k <= t]:
                del self._taken[old]
