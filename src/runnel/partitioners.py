"""PySpark's default partitioner, ``portable_hash``, for ``partitionBy``.

``rdd.partitionBy(n)`` puts the pair ``(k, v)`` into partition
``portable_hash(k) % n`` (Python's ``%``: never negative), as PySpark does,
so a ported program that ``glom()``\\ s a partitioned dataset sees the same
partitions for keys that are ints, bools, floats, ``None`` and tuples of
those:

* ``None`` hashes to 0;
* a tuple folds its items' hashes: ``h = 0x345678``, then per item
  ``h = ((h ^ portable_hash(item)) * 1000003) & sys.maxsize``, then
  ``h ^= len(tuple)`` (-1 becomes -2);
* anything else is Python's ``hash()``, which for numbers is not salted
  (``hash(n)`` is ``n`` reduced modulo the Mersenne prime 2**61 - 1, keeping
  the sign; -1 becomes -2).

What differs: PySpark hashes ``str`` (and ``bytes``) with Python's salted
``hash()``, which only agrees across processes when every worker runs with
the same ``PYTHONHASHSEED`` (PySpark refuses to run without one). runnel's
workers are fresh interpreters with their own seeds, so strings and bytes,
also inside tuples, get a stable 63-bit hash of their UTF-8 bytes instead:
each string key still lands in one partition on every executor and every
run, just not necessarily the one PySpark with some seed would pick.

NaN hashes to 0 (Python 3.10+ hashes each NaN object by its identity).

This is only ``partitionBy``'s default. The engine's shuffles (reduceByKey,
join, state tables) keep their own stable 64-bit hash (``runnel.keyed``).
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import numpy as np

#: Python's numeric hash modulus (``sys.hash_info.modulus``, 2**61 - 1 on 64-bit builds).
_MODULUS = sys.hash_info.modulus


def stable_text_hash(x: str | bytes) -> int:
    """A non-negative 63-bit hash of a string's UTF-8 bytes (or of bytes), the same in every process."""
    data = x.encode("utf-8", "surrogatepass") if isinstance(x, str) else bytes(x)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") & sys.maxsize


def portable_hash(x: Any) -> int:
    """PySpark's ``portable_hash``: the hash ``partitionBy`` places a key by.

    Examples
    --------
    >>> portable_hash(None), portable_hash(7), portable_hash(-1), portable_hash(2 ** 61)
    (0, 7, -2, 1)
    >>> portable_hash((1, 2)) == portable_hash((1, 2)) and portable_hash((1, 2)) != portable_hash((2, 1))
    True
    """
    if x is None:
        return 0
    if isinstance(x, tuple):
        h = 0x345678
        for item in x:
            h = ((h ^ portable_hash(item)) * 1000003) & sys.maxsize
        h ^= len(x)
        return -2 if h == -1 else h
    if isinstance(x, (str, bytes)):
        return stable_text_hash(x)
    if isinstance(x, float) and x != x:
        return 0        # NaN: Python >= 3.10 hashes it by identity, which no two processes share
    return hash(x)


def int_hashes(keys: np.ndarray) -> np.ndarray:
    """``hash(int(k))`` for every k of an integer (or bool) array, vectorised.

    >>> int_hashes(np.array([0, 5, -1, -7, 2 ** 61, -2 ** 63], dtype=np.int64)).tolist() == \\
    ...     [hash(k) for k in (0, 5, -1, -7, 2 ** 61, -2 ** 63)]
    True
    """
    k = keys.astype(np.int64, copy=False)
    neg = k < 0
    # |k| as uint64 is exact even for -2**63 (two's complement negation in unsigned arithmetic)
    mag = np.where(neg, (~k.view(np.uint64)) + np.uint64(1), k.view(np.uint64))
    h = (mag % np.uint64(_MODULUS)).astype(np.int64)
    h = np.where(neg, -h, h)
    h[h == -1] = -2
    return h


def portable_partition_ids(keys: Any, n: int) -> np.ndarray:
    """``portable_hash(k) % n`` for every key of a column (NumPy array, Arrow array or object array)."""
    if isinstance(keys, np.ndarray) and keys.dtype.kind in "iub" and keys.dtype != np.uint64:
        return int_hashes(keys) % n
    values = keys.to_pylist() if hasattr(keys, "to_pylist") else keys.tolist()
    return np.fromiter((portable_hash(k) % n for k in values), dtype=np.int64, count=len(values))
