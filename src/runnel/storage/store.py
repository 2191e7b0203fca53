"""Block stores: where the partitions of a Dataset live, and for how long.

A block is one :class:`~runnel.batch.Batch`. Tasks carry :class:`BlockRef`
(id, rows, bytes), never data. The store that created a block — or, for
blocks written by pool workers, the driver's store that *adopted* it — owns
its lifetime: it lives until :meth:`BlockStore.release` or
:meth:`BlockStore.close`.

State
-----
``_live: dict[block id, nbytes]``
    Every block this store owns. Changed by ``put``/``adopt`` (add) and
    ``release``/``close`` (remove), under ``_lock`` (the driver's scheduler,
    receivers and UI threads share a store). ``live_blocks``/``live_bytes``
    read it.
``_dead: deque of ref lists``
    Releases queued by garbage-collection finalizers (``release_later``),
    which must not take ``_lock``: a collection can start inside any
    allocation, also one made while the same thread holds it (a deadlock).
    Every other store call first drains the queue.

Stores
------
:class:`MemoryStore`
    A dict in the process (serial executor). NumPy/Arrow columns are kept
    as they are (immutable); object columns are pickled once on ``put`` and
    unpickled on every ``get``, so callers always get fresh objects.
:class:`SharedMemoryStore`
    One Arrow IPC file per block in ``/dev/shm`` (the temp dir when there is
    no ``/dev/shm``), named ``<prefix><n>``, prefix
    ``runnel-<driver pid>-<32 random hex digits>-`` (unguessable: no other
    user can create a name first; files are created 0600, never through a
    symlink, so blocks — which may hold pickles — are the owner's alone). ``get`` memory-maps the file:
    NumPy and Arrow columns are zero-copy read-only views of the mapping.
    Releasing a block unlinks its file — or, for a file of at least 256 kB,
    keeps it as a *spare* that a later block of similar size is written
    into (fresh tmpfs pages cost more than the copy; see
    :mod:`runnel.storage.spares`). Either way views already handed out stay
    valid: a spare is only written once no process maps it.
    ``compression="zstd"`` gives the memory+serialised storage level.
    Pool workers attach to the driver's store with :meth:`SharedMemoryStore.attach`
    and write files named ``<prefix>w<worker>.<n>``; the driver adopts them.
    With ``hold_bytes`` the owner keeps its blocks up to that size in its own
    memory (a :class:`MemoryStore` inside) and writes one to shared memory
    only when a worker process is about to read it (:meth:`~SharedMemoryStore.spill`):
    ``local[N]`` holds every block (``hold_bytes=HOLD_ALL``), so stages on
    threads never copy, and only the inputs of process stages reach ``/dev/shm``.
:class:`DiskStore`
    The same files under a directory, zstd-compressed (storage level DISK).

Cleanup of shared memory, from the common case to the worst one
----------------------------------------------------------------
1. ``release`` / ``close`` unlink the files;
2. a ``weakref.finalize`` (run at interpreter exit, including after an
   uncaught ``KeyboardInterrupt``) removes every file of the prefix;
3. a SIGKILLed driver: its pool workers see EOF on their connection and
   remove every file of the prefix (see ``executors/worker.py``);
4. a SIGKILLed driver without workers: every new SharedMemoryStore sweeps
   the files of dead drivers. A driver is alive while it holds an ``flock``
   on ``<prefix>lock`` (immune to pid reuse and pid namespaces sharing a
   tmpfs); prefixes without a lock file fall back to a pid check.
"""

from __future__ import annotations

import collections
import fcntl
import itertools
import os
import pickle
import re
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from runnel.batch import Batch, object_array
from runnel.storage.durable import make_private_dirs, open_private
from runnel.storage.ipc import batch_to_buffer, dumps_objects, read_batch, write_batch
from runnel.storage.spares import DEFAULT_CAP as SPARE_CAP
from runnel.storage.spares import MIN_BYTES as SPARE_MIN
from runnel.storage.spares import SpareFiles

__all__ = ["BlockRef", "BlockStore", "MemoryStore", "SharedMemoryStore", "DiskStore", "shm_directory", "HOLD_ALL"]


@dataclass(frozen=True)
class BlockRef:
    """A handle to a stored block: small and picklable; tasks carry these.

    ``nbytes`` is the size of the stored form (file size, or in-memory size
    with object columns counted as their pickle).
    """

    id: str
    nrows: int
    nbytes: int


class BlockStore:
    """Base class: owns blocks and their lifetimes (see the module docstring)."""

    def __init__(self) -> None:
        self._live: dict[str, int] = {}
        self._lock = threading.Lock()
        self._dead: collections.deque = collections.deque()
        self._closed = False

    # -- interface ----------------------------------------------------------
    def put(self, batch: Batch) -> BlockRef:
        raise NotImplementedError

    def get(self, ref: BlockRef) -> Batch:
        raise NotImplementedError

    def put_many(self, batches: list[Batch]) -> list[BlockRef]:
        """``put`` each batch (a file store writes big ones concurrently)."""
        return [self.put(b) for b in batches]

    def release(self, refs: Iterable[BlockRef]) -> None:
        """Free blocks. Idempotent: unknown or already released refs are ignored."""
        self._drain()
        self._release(refs)

    def _release(self, refs: Iterable[BlockRef]) -> None:
        refs = list(refs)
        with self._lock:
            gone = [(r.id, n) for r in refs if (n := self._live.pop(r.id, None)) is not None]
        for block_id, nbytes in gone:
            self._free(block_id, nbytes)

    def release_later(self, refs: list[BlockRef]) -> None:
        """Queue a release (for finalizers: takes no lock; done by the next store call)."""
        self._dead.append(refs)

    def _drain(self) -> None:
        while True:
            try:
                refs = self._dead.popleft()
            except IndexError:
                return
            self._release(refs)

    def close(self) -> None:
        """Release every block. Idempotent."""
        self._dead.clear()
        with self._lock:
            ids, self._live = list(self._live), {}
            self._closed = True
        for block_id in ids:
            self._free(block_id, 0)

    def live_blocks(self) -> int:
        self._drain()
        return len(self._live)

    def live_bytes(self) -> int:
        self._drain()
        with self._lock:
            return sum(self._live.values())

    def __contains__(self, ref: BlockRef) -> bool:
        self._drain()
        return ref.id in self._live

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- for subclasses ---------------------------------------------------------
    def _register(self, block_id: str, nbytes: int) -> None:
        self._drain()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{type(self).__name__} is closed")
            self._live[block_id] = nbytes

    def _free(self, block_id: str, nbytes: int) -> None:
        raise NotImplementedError

    def _missing(self, ref: BlockRef) -> KeyError:
        return KeyError(f"block {ref.id!r} is not in this {type(self).__name__} (released, or never stored)")


    def get_many(self, refs: Iterable[BlockRef]) -> list[Batch]:
        """``get`` each block (a remote store fetches them in one round trip)."""
        return [self.get(r) for r in refs]


# ---------------------------------------------------------------------------------
def freeze(batch: Batch) -> tuple[tuple, int]:
    """A batch as kept in a process's memory, and its size: NumPy/Arrow columns as they are
    (immutable), object columns pickled once so that every :func:`thaw` gives fresh objects."""
    cols, pickled, nbytes = {}, [], 0
    for name, col in batch.columns.items():
        if isinstance(col, pa.Array) or col.dtype != object:
            cols[name] = col
            nbytes += col.nbytes
        else:
            blob = dumps_objects(list(col))
            cols[name] = blob
            pickled.append(name)
            nbytes += len(blob)
    return (cols, tuple(pickled), batch.layout, len(batch)), nbytes


def thaw(frozen: tuple) -> Batch:
    """The batch :func:`freeze` kept (object columns unpickled anew)."""
    cols, pickled, layout, n = frozen
    if pickled:
        return Batch({name: object_array(pickle.loads(v)) if name in pickled else v for name, v in cols.items()},
                     layout)
    return Batch._of_frozen(dict(cols), layout, n)    # its own dict: the stored one is never shared


class MemoryStore(BlockStore):
    """Blocks in a dict of this process (for the serial executor)."""

    def __init__(self) -> None:
        super().__init__()
        self._blocks: dict[str, tuple] = {}
        self._ids = itertools.count()

    def put(self, batch: Batch) -> BlockRef:
        frozen, nbytes = freeze(batch)
        block_id = f"mem-{next(self._ids)}"
        self._blocks[block_id] = frozen
        self._register(block_id, nbytes)
        return BlockRef(block_id, len(batch), nbytes)

    def get(self, ref: BlockRef) -> Batch:
        try:
            frozen = self._blocks[ref.id]
        except KeyError:
            raise self._missing(ref) from None
        return thaw(frozen)

    def _free(self, block_id: str, nbytes: int) -> None:
        self._blocks.pop(block_id, None)


# ---------------------------------------------------------------------------------
def shm_directory() -> str:
    """``/dev/shm`` when it is a writable directory, else the temp dir."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
        return "/dev/shm"
    return tempfile.gettempdir()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_prefix(directory: str, prefix: str) -> int:
    """Remove every file in ``directory`` whose name starts with ``prefix``; returns how many."""
    n = 0
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    for name in names:
        if name.startswith(prefix):
            _unlink(os.path.join(directory, name))
            n += 1
    return n


#: Blocks up to this size are written from one buffer and read with read(2) rather than mapped.
SMALL_BLOCK = _SMALL = 64 * 1024
#: ``hold_bytes`` that keeps every block in the owner's memory until a process needs it.
HOLD_ALL = 1 << 62
#: put_many writes blocks of at least this size concurrently.
_CONCURRENT_PUT = 1 << 20


class FileStore(BlockStore):
    """Blocks as Arrow IPC files ``<directory>/<prefix><tag><n>`` (base of shm and disk stores)."""

    def __init__(self, directory: str, prefix: str, compression: str | None = None, tag: str = "") -> None:
        super().__init__()
        if compression not in (None, "zstd", "lz4"):
            raise ValueError(f"compression must be None, 'zstd' or 'lz4', got {compression!r}")
        self.directory = directory
        self.prefix = prefix
        self.compression = compression
        self._tag = tag
        self._ids = itertools.count()
        self.spares: SpareFiles | None = None  # shared-memory stores reuse released files (storage/spares.py)
        self._writers = None                   # put_many's threads

    def _path(self, block_id: str) -> str:
        if not block_id.startswith(self.prefix) or "/" in block_id or "\0" in block_id:
            raise KeyError(f"block {block_id!r} does not belong to this store (prefix {self.prefix!r})")
        return os.path.join(self.directory, block_id)

    def put(self, batch: Batch) -> BlockRef:
        block_id = f"{self.prefix}{self._tag}{next(self._ids)}"
        nbytes = self._write(block_id, batch)
        self._register(block_id, nbytes)
        return BlockRef(block_id, len(batch), nbytes)

    def _write(self, block_id: str, batch: Batch) -> int:
        """Write ``batch`` as the file of ``block_id``; its size in bytes."""
        path = os.path.join(self.directory, block_id)
        size = batch.nbytes()
        if self.spares is not None and size >= SPARE_MIN:
            spare = self.spares.take(size)
            if spare:
                return self._rewrite(self.spares.path(spare[0][0]), path, batch)
            self.spares.stats["fresh"] += 1
        try:
            if size <= _SMALL:
                # one write(2) instead of Arrow's one per IPC piece: ~2x faster for tiny blocks
                data = batch_to_buffer(batch, self.compression)
                with open(open_private(path), "wb", buffering=0) as f:
                    f.write(data)
                return data.size
            os.close(open_private(path))      # created 0600 here; Arrow's OSFile then opens it
            with pa.OSFile(path, "wb") as sink:
                write_batch(batch, sink, self.compression)
                return sink.tell()
        except BaseException:
            _unlink(path)
            raise

    def put_many(self, batches: list[Batch]) -> list[BlockRef]:
        # Writes release the GIL: the partitions of a big input go in concurrently
        # (W3's 2 x 8 MB on 2 cores: 6.2 -> 3.7 ms). Threads are started on first use.
        big = sum(b.nbytes() >= _CONCURRENT_PUT for b in batches)
        if big < 2:
            return [self.put(b) for b in batches]
        with self._lock:
            if self._writers is None:
                from concurrent.futures import ThreadPoolExecutor
                self._writers = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="runnel-put")
        futures = [self._writers.submit(self.put, b) for b in batches]
        refs, error = [], None
        for f in futures:
            try:
                refs.append(f.result())
            except BaseException as e:  # every write has finished or failed: free what was written
                error = error or e
        if error is not None:
            self.release(refs)
            raise error
        return refs

    def close(self) -> None:
        super().close()
        if self._writers is not None:
            self._writers.shutdown(wait=True)

    def _rewrite(self, spare: str, path: str, batch: Batch) -> int:
        """Write ``batch`` into a spare file (no truncation first: its pages are reused), named ``path``."""
        try:
            with open(spare, "r+b", buffering=0) as f:
                n = write_batch(batch, f, self.compression)
                f.truncate(n)
            os.rename(spare, path)
        except BaseException:
            _unlink(spare)
            raise
        return n

    def get(self, ref: BlockRef) -> Batch:
        path = self._path(ref.id)
        try:
            if ref.nbytes <= _SMALL:
                # a fresh mapping costs page faults and a munmap: reading a small file is ~2x faster
                with open(path, "rb", buffering=0) as f:
                    source = f.read()
            else:
                source = pa.memory_map(path, "r")
        except FileNotFoundError:
            raise self._missing(ref) from None
        return read_batch(source)

    def adopt(self, refs: Iterable[BlockRef]) -> None:
        """Take ownership of blocks another process wrote into this store's directory and prefix."""
        for ref in refs:
            self._path(ref.id)
            self._register(ref.id, ref.nbytes)

    def forget(self, refs: Iterable[BlockRef]) -> None:
        """Stop tracking blocks without deleting them (their owner is now someone else)."""
        with self._lock:
            for ref in refs:
                self._live.pop(ref.id, None)

    def _free(self, block_id: str, nbytes: int) -> None:
        path = os.path.join(self.directory, block_id)
        if self.spares is None or not self.spares.keep(path, nbytes):
            _unlink(path)


_PREFIX_RE = re.compile(r"^(runnel-(\d+)-[0-9a-f]+-)")


def _new_prefix() -> str:
    """``runnel-<pid>-<128 random bits>-``: the pid for :func:`sweep_dead`, the token so names cannot be guessed."""
    return f"runnel-{os.getpid()}-{secrets.token_hex(16)}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_alive(directory: str, prefix: str, pid: int) -> bool:
    lock = os.path.join(directory, prefix + "lock")
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return _pid_alive(pid)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)                      # also drops the lock if we got it
    return False


def sweep_dead(directory: str | None = None) -> int:
    """Remove the shared-memory files of drivers that are gone; returns files removed."""
    directory = directory or shm_directory()
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    prefixes = {}
    for name in names:
        m = _PREFIX_RE.match(name)
        if m:
            prefixes[m.group(1)] = int(m.group(2))
    removed = 0
    for prefix, pid in prefixes.items():
        if pid != os.getpid() and not _owner_alive(directory, prefix, pid):
            removed += remove_prefix(directory, prefix)
    return removed


def _cleanup_prefix(directory: str, prefix: str, lock_fd: int | None) -> None:
    remove_prefix(directory, prefix)
    if lock_fd is not None:
        try:
            os.close(lock_fd)
        except OSError:
            pass


class SharedMemoryStore(FileStore):
    """Blocks as Arrow IPC files in shared memory (``/dev/shm``), memory-mapped on ``get``.

    Parameters
    ----------
    compression : {None, "zstd"}
        ``"zstd"`` stores blocks compressed (memory+serialised level):
        smaller, but ``get`` decompresses instead of mapping zero-copy.
    directory : str, optional
        Defaults to :func:`shm_directory`.
    hold_bytes : int
        Keep the owner's blocks of up to this many bytes in its own memory
        until :meth:`spill` writes them for another process (0: none,
        :data:`HOLD_ALL`: every block).
    spare_bytes : int
        Files of released blocks kept, up to this many bytes, to write new
        blocks into (:mod:`runnel.storage.spares`); 0 unlinks them at once.

    Examples
    --------
    >>> store = SharedMemoryStore()
    >>> ref = store.put(Batch.from_records([1, 2, 3]))
    >>> store.get(ref).to_records()
    [1, 2, 3]
    >>> store.close(); store.live_blocks()
    0
    """

    def __init__(self, compression: str | None = None, directory: str | None = None,
                 *, hold_bytes: int = 0, spare_bytes: int = SPARE_CAP,
                 _attach: tuple[str, str] | None = None) -> None:
        directory = directory or shm_directory()
        self._owner = _attach is None
        if self._owner:
            sweep_dead(directory)
            prefix = _new_prefix()
            lock_fd = self._take_lock(directory, prefix)
            tag = ""
        else:
            prefix, tag = _attach
            lock_fd = None
        super().__init__(directory, prefix, compression, tag)
        self._finalizer = weakref.finalize(self, _cleanup_prefix, directory, prefix, lock_fd) \
            if self._owner else None
        # The driver keeps its blocks in its own memory and writes them to shared
        # memory only when a worker is about to read them (``spill``): a batch whose
        # stages run on threads (or inline) never touches the file system.
        # W5 (10-record batches) on local[2]: ~8 file writes and reads per batch saved.
        self._held: dict[str, tuple] = {}        # block id -> the batch as frozen in memory (see freeze)
        self._spilled: set[str] = set()          # held blocks that also have their file
        self._spill_lock = threading.Lock()      # one writer per file (runs may spill concurrently)
        self._hold = hold_bytes if self._owner else 0
        # released files are written again (see storage/spares.py); a worker's spares are lent by the driver
        self.spares = SpareFiles(directory, prefix + tag, spare_bytes, keeps=self._owner) if spare_bytes > 0 else None

    def put(self, batch: Batch) -> BlockRef:
        if self._hold <= 0 or (self._hold < HOLD_ALL and batch.nbytes() > self._hold):
            return super().put(batch)
        block_id = f"{self.prefix}{self._tag}{next(self._ids)}"
        frozen, nbytes = freeze(batch)
        self._held[block_id] = frozen
        self._register(block_id, nbytes)
        return BlockRef(block_id, len(batch), nbytes)

    def get(self, ref: BlockRef) -> Batch:
        frozen = self._held.get(ref.id)
        if frozen is not None:
            return thaw(frozen)
        return super().get(ref)

    def put_many(self, batches: list[Batch]) -> list[BlockRef]:
        if self._hold >= HOLD_ALL:            # held, not written: nothing to do concurrently
            return [self.put(b) for b in batches]
        return super().put_many(batches)

    def spill(self, refs: Iterable[BlockRef]) -> int:
        """Write held blocks to shared memory so another process can read them; bytes written.

        The block stays held too (``get`` in this process reads memory); its
        file goes with it on ``release``.
        """
        written = 0
        with self._spill_lock:
            for ref in refs:
                frozen = self._held.get(ref.id)
                if frozen is not None and ref.id not in self._spilled:
                    written += self._write(ref.id, thaw(frozen))
                    self._spilled.add(ref.id)
        return written

    def is_held(self, ref: BlockRef) -> bool:
        """Is the block in this process's memory (not, or not only, a file)?"""
        return ref.id in self._held

    def _free(self, block_id: str, nbytes: int) -> None:
        if self._held.pop(block_id, None) is not None:
            with self._spill_lock:
                if block_id not in self._spilled:
                    return                    # never written: no file
                self._spilled.discard(block_id)
        super()._free(block_id, nbytes)

    @staticmethod
    def _take_lock(directory: str, prefix: str) -> int:
        # lock a temporary name first, then rename: a sweeper never sees an unlocked lock file
        tmp = os.path.join(directory, prefix + "lock.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(tmp, os.path.join(directory, prefix + "lock"))
        return fd

    @classmethod
    def attach(cls, directory: str, prefix: str, tag: str, compression: str | None = None) -> "SharedMemoryStore":
        """A non-owning view of a driver's store, for a pool worker.

        Its ``put`` writes ``<prefix><tag><n>`` files and tracks them only until
        the driver adopts them (:meth:`forget`); ``close`` deletes what it still tracks.
        """
        return cls(compression, directory, _attach=(prefix, tag))

    def files(self) -> list[str]:
        """Names of every file of this store's prefix (blocks of all processes, and the lock)."""
        try:
            return sorted(n for n in os.listdir(self.directory) if n.startswith(self.prefix))
        except FileNotFoundError:
            return []

    def remove_unowned(self, tag: str) -> int:
        """Delete files ``<prefix><tag>*`` this store does not own (a dead worker's leftovers)."""
        start = self.prefix + tag
        with self._lock:
            live = set(self._live)
        n = 0
        for name in self.files():
            if name.startswith(start) and name not in live:
                _unlink(os.path.join(self.directory, name))
                n += 1
        return n

    def close(self) -> None:
        super().close()
        if self.spares is not None:
            self.spares.clear()
        if self._finalizer is not None:
            self._finalizer()             # removes every file of the prefix, drops the lock


class DiskStore(FileStore):
    """Blocks as zstd-compressed Arrow IPC files under a directory (storage level DISK).

    Parameters
    ----------
    directory : str, optional
        Where to write; a fresh temporary directory (removed on close) by default.
    compression : {"zstd", None, "lz4"}
    """

    def __init__(self, directory: str | None = None, compression: str | None = "zstd") -> None:
        self._own_dir = directory is None
        if directory is None:
            directory = tempfile.mkdtemp(prefix="runnel-disk-")
        else:
            make_private_dirs(directory)
        prefix = _new_prefix()
        super().__init__(directory, prefix, compression)
        self._finalizer = weakref.finalize(
            self, shutil.rmtree if self._own_dir else remove_prefix,
            *((directory, True) if self._own_dir else (directory, prefix)))

    def close(self) -> None:
        super().close()
        self._finalizer()
