"""Checkpoints on disk: atomic, checksummed directories, newest good one first.

Layout of a checkpoint directory (``ssc.checkpoint(dir)``)::

    dir/graph-<crc>.pkl            the program's graph (cloudpickle), for getOrCreate
    dir/checkpoint-<t>/            one per checkpoint, t = batch time in ms
        manifest.json              {"crc32": c, "body": {...}}: c is the CRC-32 of the body's JSON
        f00000.arrow ...           tables (Arrow IPC, zstd), listed in the body with their CRC-32
    dir/.tmp-checkpoint-<t>-<hex>/ a checkpoint being written (never read)
    dir/receivedData/              receivers' write-ahead logs (``runnel.storage.wal``)

Writing is atomic: every file of a checkpoint goes into a temp directory and
is fsynced, the manifest last, then one rename makes ``checkpoint-<t>``
visible (and the parent directory is fsynced). A reader therefore sees a
checkpoint whole or not at all; what can still go wrong is the disk, or a
person: a file truncated, overwritten or from another program. Every file
is checked against its CRC-32 when read, and an unusable checkpoint is
reported (a ``RuntimeWarning`` naming the file) and the one before it used.

Trust: the graph file is a pickle and tables may hold pickled object
columns, so whoever can write ``dir`` can run code as the user who
recovers from it. Directories are created 0700 and files 0600 (owner only);
with ``RUNNEL_CHECKPOINT_KEY`` set (:mod:`runnel.storage.signing`) the
manifest carries an HMAC-SHA256 of its body (``"hmac"`` next to
``"crc32"``) and lists one for every file (its ``"hmac"`` entry, also in
``graph_file``), all checked before anything is unpickled: a checkpoint
that is unsigned or signed with another key is unusable, like a corrupt one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import warnings
import zlib
from dataclasses import dataclass, field

from ..batch import Batch
from ..storage import signing
from ..storage.durable import fsync_dir, make_private_dirs, write_durably
from ..storage.ipc import batch_to_bytes, read_batch

FORMAT = "runnel-checkpoint"
VERSION = 1
MANIFEST = "manifest.json"
_NAME = re.compile(r"checkpoint-(\d+)$")
_L_MANIFEST = b"runnel checkpoint manifest"
_L_FILE = b"runnel checkpoint file"

log = logging.getLogger("runnel.checkpoint")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written, read or applied to this program."""


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _canonical(body: dict) -> bytes:
    """The body's canonical JSON (what a reader recomputes from the parsed body)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _manifest_bytes(body: dict, key: bytes | None = None) -> bytes:
    doc = {"crc32": crc32(_canonical(body)), "body": body}
    if key is not None:
        doc["hmac"] = signing.mac(key, _L_MANIFEST, _canonical(body)).hex()
    return json.dumps(doc, sort_keys=True, indent=1).encode()


def _file_entry(data: bytes, key: bytes | None) -> dict:
    """A file's entry in the manifest: its size, CRC-32 and, with a key, its signature."""
    entry = {"crc32": crc32(data), "bytes": len(data)}
    if key is not None:
        entry["hmac"] = signing.mac(key, _L_FILE, data).hex()
    return entry


def _parse_manifest(data: bytes, key: bytes | None = None, what: str = MANIFEST) -> dict:
    """The body of manifest ``data``; the signature is checked first (SignatureError names ``what``)."""
    doc = json.loads(data)
    body = doc["body"]
    if key is not None:
        signing.check(key, doc.get("hmac"), _L_MANIFEST, _canonical(body), what=what)
    if crc32(_canonical(body)) != doc["crc32"]:
        raise ValueError("manifest checksum mismatch")
    if body.get("format") != FORMAT:
        raise ValueError(f"not a runnel checkpoint (format {body.get('format')!r})")
    if body.get("version") != VERSION:
        raise ValueError(f"checkpoint format version {body.get('version')!r}; this runnel reads {VERSION}")
    return body


# -- writing -------------------------------------------------------------------------------
class CheckpointWriter:
    """Writes one checkpoint directory: tables first, :meth:`commit` makes it visible."""

    def __init__(self, directory: str, t: int):
        self.directory = directory
        self.t = t
        self.key = signing.key_from_env()
        self.tmp = os.path.join(directory, f".tmp-checkpoint-{t}-{secrets.token_hex(4)}")
        make_private_dirs(self.tmp)
        self.files: dict[str, dict] = {}
        self.bytes = 0                      # written so far (tables, then the manifest)

    def add_table(self, batch: Batch) -> str:
        """Write one partition; returns its file name (to list in the manifest)."""
        data = batch_to_bytes(batch, "zstd")
        name = f"f{len(self.files):05d}.arrow"
        write_durably(os.path.join(self.tmp, name), data, private=True)
        self.files[name] = _file_entry(data, self.key)
        self.bytes += len(data)
        return name

    def commit(self, body: dict) -> str:
        """Write the manifest and rename the checkpoint into place (replacing one of the same time)."""
        body = {**body, "format": FORMAT, "version": VERSION, "time": self.t, "files": self.files}
        manifest = _manifest_bytes(body, self.key)
        write_durably(os.path.join(self.tmp, MANIFEST), manifest, private=True)
        self.bytes += len(manifest)
        fsync_dir(self.tmp)
        final = os.path.join(self.directory, f"checkpoint-{self.t}")
        if os.path.isdir(final):           # checkpointed again (re-run batch, resumed start): swap, drop the old
            # a crash between the renames leaves only .old-…: restore_replaced() puts it back
            old = os.path.join(self.directory, f".old-checkpoint-{self.t}-{secrets.token_hex(4)}")
            os.rename(final, old)
            os.rename(self.tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(self.tmp, final)
        fsync_dir(self.directory)
        return final

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def prepare_directory(directory: str) -> None:
    """Create the checkpoint directory (0700) and make sure it can be written; warn when others
    may write it (they could make the program run their code on recovery)."""
    make_private_dirs(directory)
    probe = os.path.join(directory, f".probe-{os.getpid()}-{secrets.token_hex(4)}")
    write_durably(probe, b"", private=True)
    os.remove(probe)
    mode = os.stat(directory).st_mode
    if mode & 0o022 and signing.key_from_env() is None:
        log.warning("runnel: checkpoint directory %s is writable by other users (mode %o); whoever can write "
                    "it can run code as you when the program recovers. Make it private (chmod 700) or sign "
                    "checkpoints with %s", directory, mode & 0o777, signing.KEY_ENV)


def write_graph(directory: str, data: bytes) -> tuple[str, dict]:
    """Store the pickled graph as ``graph-<crc>.pkl`` (atomically; once per content).

    Returns its name and its manifest entry (size, CRC-32, signature) for the manifests that refer to it.
    """
    name = f"graph-{crc32(data):08x}.pkl"
    path = os.path.join(directory, name)
    try:
        with open(path, "rb") as f:
            same = f.read() == data        # a CRC is no identity: a different file of that name is replaced
    except FileNotFoundError:
        same = False
    if not same:
        tmp = os.path.join(directory, f".tmp-{name}-{secrets.token_hex(4)}")
        write_durably(tmp, data, private=True)
        os.rename(tmp, path)
        fsync_dir(directory)
    return name, _file_entry(data, signing.key_from_env())


# -- reading -------------------------------------------------------------------------------
@dataclass
class Loaded:
    """A checkpoint read back: its manifest body and every table's partitions."""
    path: str
    body: dict
    tables: dict[str, dict[str, tuple[int, list[Batch]]]] = field(default_factory=dict)
    graph: bytes | None = None

    @property
    def time(self) -> int:
        return self.body["time"]


def checkpoint_times(directory: str) -> list[int]:
    """Times of the checkpoint directories in ``directory``, newest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted((int(m.group(1)) for n in names if (m := _NAME.match(n))), reverse=True)


def _read_checked(path: str, expect: dict, key: bytes | None) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if key is not None:
        signing.check(key, expect.get("hmac"), _L_FILE, data, what=path)
    if len(data) != expect["bytes"] or crc32(data) != expect["crc32"]:
        raise ValueError(f"{path}: checksum mismatch ({len(data)} bytes, expected {expect['bytes']})")
    return data


def read_checkpoint(path: str, with_graph: bool = False) -> Loaded:
    """Read and verify one checkpoint directory; ValueError/OSError say what is wrong.

    With ``RUNNEL_CHECKPOINT_KEY`` set, every signature is checked before the file is decoded.
    """
    if not os.path.isdir(path):
        raise ValueError(f"{path} is not a runnel checkpoint directory")
    key = signing.key_from_env()
    mpath = os.path.join(path, MANIFEST)
    try:
        with open(mpath, "rb") as f:
            body = _parse_manifest(f.read(), key, mpath)
    except signing.SignatureError:
        raise
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"{mpath}: unreadable manifest ({type(e).__name__}: {e})") from e
    except ValueError as e:
        raise ValueError(f"{mpath}: {e}") from e
    entries = [*body.get("files", {}).values(), body.get("graph_file") or {}]
    if key is None and any("hmac" in e for e in entries):
        log.warning("runnel: checkpoint %s is signed, but %s is not set: its signatures are not checked",
                    path, signing.KEY_ENV)
    try:
        return _read_tables(path, body, with_graph, key)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{mpath}: malformed manifest ({type(e).__name__}: {e})") from e


def _read_tables(path: str, body: dict, with_graph: bool, key: bytes | None) -> Loaded:
    out = Loaded(path, body)
    for stream, entry in body.get("streams", {}).items():
        tables = out.tables[stream] = {}
        for label, (t, parts) in entry["tables"].items():
            batches = []
            for name in parts:
                data = _read_checked(os.path.join(path, name), body["files"][name], key)
                try:
                    batches.append(read_batch(data))
                except Exception as e:  # a checksum collision or a bug: still name the file
                    raise ValueError(f"{os.path.join(path, name)}: unreadable table ({e})") from e
            tables[label] = (t, batches)
    if with_graph:
        graph = body.get("graph")
        if graph is None:
            raise ValueError(f"{path} stores no program graph (written with runnel.streaming.checkpoint.graph "
                             "off); recover with StreamingContext.resume(dir, setup)")
        gpath = os.path.join(os.path.dirname(path), graph)
        out.graph = _read_checked(gpath, body["graph_file"], key)
    return out


def load_newest(directory: str, with_graph: bool = False) -> Loaded | None:
    """The newest checkpoint of ``directory`` that reads back whole, or None when there is none.

    An unusable checkpoint is skipped with a ``RuntimeWarning`` naming the
    file; when checkpoints exist but none is usable, :class:`CheckpointError`
    (starting afresh would silently lose the state they hold).
    """
    restore_replaced(directory)
    problems = []
    for t in checkpoint_times(directory):
        path = os.path.join(directory, f"checkpoint-{t}")
        try:
            return read_checkpoint(path, with_graph)
        except (ValueError, OSError) as e:   # read_checkpoint reports a malformed manifest as ValueError
            problems.append(f"{e}")
            warnings.warn(f"runnel: checkpoint {path} is unusable ({e}); trying the one before it",
                          RuntimeWarning, stacklevel=3)
    if problems:
        raise CheckpointError(f"no usable checkpoint in {directory}: " + "; ".join(problems))
    return None


def clean(directory: str, keep: int, graph: str | None) -> list[tuple[int, dict | None]]:
    """Remove all but the ``keep`` newest checkpoints, leftovers of interrupted writes, and
    graph files no kept checkpoint (nor the running program, ``graph``) refers to.

    Returns (time, manifest body or None when unreadable) of the checkpoints kept, newest first.
    Unusable newer checkpoints count towards ``keep`` (they are evidence; reading is where
    they are skipped).
    """
    restore_replaced(directory)
    times = checkpoint_times(directory)
    for t in times[keep:]:
        shutil.rmtree(os.path.join(directory, f"checkpoint-{t}"), ignore_errors=True)
    kept, graphs, key = [], {graph}, signing.key_from_env()
    for t in times[:keep]:
        try:
            mpath = os.path.join(directory, f"checkpoint-{t}", MANIFEST)
            with open(mpath, "rb") as f:
                body = _parse_manifest(f.read(), key, mpath)
            graphs.add(body.get("graph"))
        except (OSError, ValueError, KeyError, TypeError):
            body = None
        kept.append((t, body))
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.startswith((".old-checkpoint-", ".tmp-checkpoint-", ".tmp-graph-", ".probe-")):
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
        elif name.startswith("graph-") and name.endswith(".pkl") and name not in graphs:
            os.remove(path)
    return kept


def restore_replaced(directory: str) -> None:
    """Undo a replacement a crash interrupted: ``.old-checkpoint-<t>-*`` is put back as
    ``checkpoint-<t>`` when that name is missing (see :meth:`CheckpointWriter.commit`)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        m = re.match(r"\.old-checkpoint-(\d+)-[0-9a-f]+$", name)
        if m and not os.path.exists(os.path.join(directory, f"checkpoint-{m.group(1)}")):
            os.rename(os.path.join(directory, name), os.path.join(directory, f"checkpoint-{m.group(1)}"))
