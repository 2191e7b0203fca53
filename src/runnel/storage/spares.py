"""Spare block files: released shared-memory files kept to be written again.

Why
---
A new block file needs fresh tmpfs pages, and a fresh page costs far more
than copying into one the kernel already has: measured on the 2-core VMs we
run on (free memory is handed back to the host), writing 8 MB into a new
``/dev/shm`` file took 3.3 ms and into an existing one 1.4 ms; touching 16 MB
of fresh anonymous memory took 16 ms, of reused memory 0.06 ms. A stream
writes about the same blocks every batch, so the driver keeps the files of
released blocks (at least :data:`MIN_BYTES`) as spares, renamed
``<prefix>spare.<n>``, and the next block of similar size is written into
one instead of into a new file. Writers are the driver's own ``put`` and pool
workers, which get spares lent with each task and hand back what they did
not use.

Safety: a spare is written only when no process maps it
---------------------------------------------------------------
Releasing a block does not end the views already handed out: a user may keep
a collected batch, a worker a view, and a plain unlink left those mappings
valid. Rewriting such a file would change data under them. So a spare is
taken only if this process can get a *write lease* on it (``F_SETLEASE``,
Linux): the kernel grants one only when no other open file or mapping
refers to the file, in any process. Nobody can map a spare afterwards (its
name is known to the store alone), so the check cannot go stale. Where
leases are not available the pool stays empty and files are unlinked, as
before.
"""

from __future__ import annotations

import bisect
import collections
import errno
import fcntl
import itertools
import os
import threading

__all__ = ["SpareFiles", "unshared", "MIN_BYTES", "MAX_FILES"]

#: Released files smaller than this are unlinked: small writes gain little from reuse.
MIN_BYTES = 256 * 1024
#: Spare bytes kept at most by default (the oldest spares beyond it are unlinked).
DEFAULT_CAP = 256 << 20
#: Spare files kept at most (the oldest beyond are unlinked): a stream reuses a few sizes, and
#: hundreds of odd-sized spares made every ``take`` slow without ever being written again.
MAX_FILES = 64

_F_SETLEASE = getattr(fcntl, "F_SETLEASE", None)
_leases_work: bool | None = None


def unshared(path: str) -> bool:
    """True when no open file or mapping other than ours refers to ``path`` (a write lease is granted)."""
    global _leases_work
    if _F_SETLEASE is None or _leases_work is False:
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_WRLCK)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EBUSY):  # EINVAL, ENOLCK...: no leases on this file system
            _leases_work = False
        return False
    else:
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        _leases_work = True
        return True
    finally:
        os.close(fd)


class SpareFiles:
    """The spare files of one store (thread-safe): ``keep`` a released file, ``take`` one to write.

    Parameters
    ----------
    directory, prefix : str
        Where spares live and how they are named (``<prefix>spare.<n>``).
    cap : int
        Spare bytes kept at most; the oldest spares beyond it are unlinked.
    keeps : bool
        Whether released files become spares (a pool worker's store only
        writes into spares the driver lends it).
    """

    def __init__(self, directory: str, prefix: str, cap: int = DEFAULT_CAP, keeps: bool = True):
        self.directory = directory
        self.prefix = prefix + "spare."
        self.cap = cap
        self.keeps = keeps
        self._files: collections.OrderedDict[str, int] = collections.OrderedDict()  # name -> size, oldest first
        self._by_size: list[tuple[int, str]] = []  # the same spares sorted by size, for the best fit
        self._bytes = 0
        self._ids = itertools.count()
        self._lock = threading.Lock()
        # kept: released files made spares; reused: spares taken (to write or to lend); busy: spares
        # skipped, still mapped; evicted: unlinked beyond the caps; fresh: big writes that found none
        self.stats = {"kept": 0, "reused": 0, "busy": 0, "evicted": 0, "fresh": 0}

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def keep(self, path: str, size: int) -> bool:
        """Make the released file at ``path`` a spare (renamed); False if it was not kept."""
        if not self.keeps or size < MIN_BYTES or size > self.cap or _leases_work is False or _F_SETLEASE is None:
            return False
        name = f"{self.prefix}{next(self._ids)}"
        try:
            os.rename(path, self.path(name))
        except OSError:
            return False
        self.give([(name, size)])
        self.stats["kept"] += 1
        return True

    def give(self, spares: list[tuple[str, int]]) -> None:
        """Take spares back (lent ones a worker did not use); evict the oldest beyond the cap."""
        evicted = []
        with self._lock:
            for name, size in spares:
                self._files[name] = size
                bisect.insort(self._by_size, (size, name))
                self._bytes += size
            while (self._bytes > self.cap or len(self._files) > MAX_FILES) and self._files:
                name, size = self._files.popitem(last=False)
                self._drop(size, name)
                evicted.append(name)
            self.stats["evicted"] += len(evicted)
        for name in evicted:
            _unlink(self.path(name))

    def _drop(self, size: int, name: str) -> None:
        del self._by_size[bisect.bisect_left(self._by_size, (size, name))]
        self._bytes -= size

    def take(self, nbytes: int) -> list[tuple[str, int]]:
        """``[(name, size)]`` of a spare no process maps that suits a block of ``nbytes``, or ``[]``.

        The smallest spare that holds ``nbytes``, unless it is much bigger (writing would
        cut it down, and the big block it suits would need fresh pages); else the largest
        smaller one. A spare still mapped somewhere (a view outlived its block) stays in the pool.
        """
        with self._lock:
            i = bisect.bisect_left(self._by_size, (nbytes, ""))
            fits = [e for e in self._by_size[i:i + 3] if e[0] <= 4 * nbytes + MIN_BYTES]
            order = fits or self._by_size[max(i - 3, 0):i][::-1]
            for size, name in order:              # a few tries: a busy spare is rarely the only one
                if unshared(self.path(name)):
                    del self._files[name]
                    self._drop(size, name)
                    self.stats["reused"] += 1
                    return [(name, size)]
                self.stats["busy"] += 1
        return []

    def take_newest(self, k: int) -> list[tuple[str, int]]:
        """Up to ``k`` of the spares kept last that no process maps, whatever their size."""
        out = []
        with self._lock:
            for name in reversed(list(self._files)[-2 * k:]):  # a few more than k: some may be busy
                if len(out) == k:
                    break
                if unshared(self.path(name)):
                    size = self._files.pop(name)
                    self._drop(size, name)
                    out.append((name, size))
                else:
                    self.stats["busy"] += 1
            self.stats["reused"] += len(out)
        return out

    def take_all(self) -> list[tuple[str, int]]:
        """Every spare, out of the pool (a worker handing back what it did not use)."""
        with self._lock:
            out, self._files, self._by_size, self._bytes = list(self._files.items()), collections.OrderedDict(), [], 0
        return out

    def discard(self, name: str) -> None:
        """Unlink a spare that is out of the pool (lent to a worker that died)."""
        _unlink(self.path(name))

    def clear(self) -> None:
        """Unlink every spare."""
        with self._lock:
            names, self._files, self._by_size, self._bytes = list(self._files), collections.OrderedDict(), [], 0
        for name in names:
            _unlink(self.path(name))

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._files)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
