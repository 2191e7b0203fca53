"""Part files of a batch directory: names, the atomic write of the directory, the text format.

What ``Dataset.save_as_text_file`` and the stream savers (:mod:`runnel.dstream.savers`,
whose docstring describes the layout and formats) share. It knows Datasets only
through their partitions, so the batch side needs nothing of the streams to write files.
"""

from __future__ import annotations

import os
import secrets
import shutil
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .batch import Batch
from .storage.durable import fsync_dir, fsync_file, write_durably

if TYPE_CHECKING:
    from .dataset import Dataset

SUCCESS = "_SUCCESS"
_TEXT_CHUNK = 65536          # records per write: bounds the size of one joined string


# -- naming ----------------------------------------------------------------------------
def batch_path(prefix: str, suffix: str | None, t: int) -> str:
    """PySpark's ``rddToFileName``: ``prefix-<ms>`` or ``prefix-<ms>.suffix``.

    >>> batch_path("out/words", None, 2000), batch_path("out/words", "txt", 2000)
    ('out/words-2000', 'out/words-2000.txt')
    """
    return f"{prefix}-{t}" if suffix is None else f"{prefix}-{t}.{suffix}"


def part_name(i: int) -> str:
    return f"part-{i:05d}"


def check_path(path: Any, op: str, what: str = "path") -> str:
    """``path`` (str or PathLike) as a non-empty string, else a TypeError naming ``op``."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise TypeError(f"{op}: {what} must be a non-empty path string, got {path!r}")
    return path


# -- writing one batch -----------------------------------------------------------------
def _partitions(ds: "Dataset") -> Iterator[Batch]:
    """The partitions of ``ds`` one at a time (blocks released when done)."""
    refs, owner = ds.materialize()
    store = ds.ctx.executor.store
    try:
        for ref in refs:
            yield store.get(ref)
    finally:
        if owner is not None:
            owner.release()


def write_batch_dir(path: str, write_parts: Callable[[str], None]) -> None:
    """Write directory ``path`` atomically: ``write_parts(tmp_dir)`` writes the part files
    into a temp dir, then ``_SUCCESS``, then one rename makes it visible.

    An existing ``path`` is replaced (see the module docstring).
    """
    path = os.path.abspath(path)
    parent, base = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{base}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(tmp)
    try:
        write_parts(tmp)
        # durable before visible: recovery trusts a batch's output once its checkpoint is written
        for name in os.listdir(tmp):
            fsync_file(os.path.join(tmp, name))
        write_durably(os.path.join(tmp, SUCCESS), b"")
        fsync_dir(tmp)
        _replace_dir(tmp, path)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_dir(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
        return
    except OSError:
        if not os.path.isdir(dst):
            raise
    # dst exists (recovery recomputed this batch): move it aside, move ours in, drop the old one
    old = f"{os.path.dirname(dst)}/.{os.path.basename(dst)}.old-{secrets.token_hex(4)}"
    os.rename(dst, old)
    os.rename(src, dst)
    shutil.rmtree(old, ignore_errors=True)


def _per_partition(write_part: Callable[[str, Batch], None]) -> Callable[[str, "Dataset", str, int], None]:
    """A ``write_parts`` that streams partitions one by one into ``part-NNNNN`` files."""
    def write_parts(tmp: str, ds: "Dataset", name: str, t: int) -> None:
        for i, part in enumerate(_partitions(ds)):
            write_part(os.path.join(tmp, part_name(i)), part)
    return write_parts


# -- text --------------------------------------------------------------------------------
def _encode(record: Any) -> bytes:
    if isinstance(record, bytes):
        return record
    return str(record).encode("utf-8")


def _write_text_part(path: str, part: Batch) -> None:
    with open(path, "wb") as f:
        n = len(part)
        for a in range(0, n, _TEXT_CHUNK):
            records = part.slice(a, a + _TEXT_CHUNK).to_records()
            f.write(b"\n".join(map(_encode, records)) + b"\n")


def save_dataset_as_text(ds: "Dataset", path: Any) -> None:
    """``rdd.saveAsTextFile(path)``: the text format above into directory ``path``, which must not
    exist yet (Spark raises then too); written atomically like a batch directory."""
    path = check_path(path, "saveAsTextFile")
    if os.path.exists(path):
        raise FileExistsError(f"saveAsTextFile: output directory {path} already exists")
    write_batch_dir(path, lambda tmp: _per_partition(_write_text_part)(tmp, ds, ds.label, 0))
