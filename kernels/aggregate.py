"""Hash aggregation: factorize keys into group codes, reduce values by code.

reduceByKey on a partition is two kernels::

    codes, first = factorize_int64(keys)      # group of each row
    sums = reduce_codes(codes, len(first), values, "sum")
    result = keys[first], sums                # groups in first-appearance order

Groups are numbered in order of first appearance, which is the order a
Python dict (and so PySpark's reduceByKey within one partition) would give.
Merging partial aggregates needs no extra kernel: factorize the concatenated
partial keys and reduce again (sum for sum/count partials, min/max for
min/max; the engine carries mean as sum + count).

The hash table
--------------
Open addressing, linear probing, power-of-two capacity, maximum load 1/2.
The slot of a key is the *top* bits of its stable hash. Partitioning uses
``hash % n``; when n is a power of two every key in a partition shares the
hash's low bits, so a table indexed by low bits would use only 1/n of its
slots. Slots hold int32 group codes; the keys live in a dense array in code
order (see ``_factorize_int64_worker``).

The table starts at 256 slots and doubles when half full instead of being
sized ``2 * n`` up front. Measured on 1M int64 keys (2-core Xeon dev box):
100k distinct keys, 21 ms growing vs 44 ms for a 2M-slot table whose random
probes miss cache on nearly every row. The price is paid when nearly all
keys are distinct (1M distinct: 95 ms growing vs 75 ms preallocated), a
rare shape for reduceByKey on a stream. Small integer ranges skip the
table altogether (direct addressing, see ``_factorize_int64``).
"""

from __future__ import annotations

import numpy as np

from ._config import is_jitted, jit
from .hashing import (
    _as_1d,
    arrow_binary_layout,
    as_float64_keys,
    as_int64_keys,
    check_binary,
    _load8,
    _low_bytes_mask,
    _word,
    hash_bytes,
    hash_int_scalar,
    hash_short,
)
from .partition import _check_n, _hash_scatter_worker, scatter_order

__all__ = [
    "factorize_int64",
    "factorize_float64",
    "factorize_binary",
    "factorize_arrow",
    "reduce_codes",
    "reduce_codes_with",
    "reduce_int64_dense",
    "reduce_int64_dense_partitioned",
    "reduce_int64_sorted",
    "group_segments",
    "REDUCE_OPS",
]

#: The built-in reducers of :func:`reduce_codes`.
REDUCE_OPS = ("sum", "min", "max", "count", "first", "last", "mean")

_INITIAL_BITS = 8  # 256 slots; see the module docstring for why we grow


# --------------------------------------------------------------------------
# Factorize workers
# --------------------------------------------------------------------------

@jit
def _insert_code(tbl, s, mask, code):
    # Place ``code`` at the first empty slot from ``s`` (rehash helper).
    while tbl[s] >= 0:
        s = (s + 1) & mask
    tbl[s] = code


@jit
def _factorize_int64_worker(keys, codes, first, uniques):
    # The table holds only int32 group codes (-1 = empty); a code's key is
    # read from ``uniques``, the dense array of keys in code order. At 100k
    # groups that is a 1 MiB table + 0.8 MiB of uniques, which stay in L2,
    # where interleaved [key, code] int64 slots needed 4 MiB: measured on
    # 1M keys, 18 ms vs 24 ms (100k distinct) and 57 ms vs 102 ms (all
    # distinct). Load 1/2 beat 3/4 (23 ms) at 100k distinct.
    bits = _INITIAL_BITS
    tbl = np.full(1 << bits, -1, dtype=np.int32)
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    ngroups = 0
    for i in range(keys.shape[0]):
        k = keys[i]
        s = np.int64(hash_int_scalar(k) >> shift)
        while True:
            c = tbl[s]
            if c < 0:
                tbl[s] = ngroups
                uniques[ngroups] = k
                first[ngroups] = i
                codes[i] = ngroups
                ngroups += 1
                if 2 * ngroups > (1 << bits):
                    # Double and rehash from ``uniques`` (sequential reads).
                    bits += 1
                    mask = (1 << bits) - 1
                    shift = np.uint64(64 - bits)
                    tbl = np.full(1 << bits, -1, dtype=np.int32)
                    for g in range(ngroups):
                        _insert_code(tbl, np.int64(hash_int_scalar(uniques[g]) >> shift), mask, g)
                break
            if uniques[c] == k:
                codes[i] = c
                break
            # Linear probing: the next slot is usually in the same cache
            # line; quadratic probing measured no faster at load <= 1/2.
            s = (s + 1) & mask
    return ngroups


@jit
def _factorize_dense_worker(keys, lo, lut, codes, first):
    # Direct addressing for keys in a small range [lo, lo + len(lut)): no
    # hashing, no probing, one predictable lookup per row ("perfect hash"
    # aggregation, as analytical databases do for small integer keys).
    ngroups = 0
    for i in range(keys.shape[0]):
        j = keys[i] - lo
        c = lut[j]
        if c < 0:
            lut[j] = ngroups
            first[ngroups] = i
            codes[i] = ngroups
            ngroups += 1
        else:
            codes[i] = c
    return ngroups


@jit
def _bytes_equal(data, a0, b0, n):
    # ``data[a0:a0 + n] == data[b0:b0 + n]``, 8 bytes at a time.
    j = 0
    while j + 8 <= n:
        if _load8(data, a0 + j) != _load8(data, b0 + j):
            return False
        j += 8
    k = n - j
    return k == 0 or _word(data, a0 + j, k) == _word(data, b0 + j, k)


# Columns of the per-group record ``rec`` of the string kernel.
_W0, _W1, _LEN, _HASH = 0, 1, 2, 3


@jit
def _factorize_binary_worker(offsets, data, validity, has_validity, codes, first, rec):
    # Same int32-code table as the int64 kernel. ``rec[c]`` is group c's
    # (word 0, word 1, byte length, hash): a string of at most 16 bytes
    # (all of W1) is compared with a group by its two zero-padded words and
    # length, already in registers from hashing, instead of reading the
    # group's first row through ``offsets`` and ``data`` (two more cache
    # misses). Longer strings check the hash and length, then the bytes,
    # so two strings with equal 64-bit hashes still form different groups.
    # Measured on W1 (1M words, ~47k groups; thread CPU time, best of 9,
    # on a shared 2-core box): 78-89 ms before (hash_bytes, then a byte
    # compare through first/offsets on every hash match) vs 27-31 ms, with
    # pd.factorize of the same words as an Arrow-backed Series at 50-54 ms.
    # Tried and not kept (worker alone, preallocated outputs): int64 slots
    # tagged with 31 hash bits, to reject probe mismatches without reading
    # ``rec``, 22-31 ms vs 22-24 ms (no better, twice the table); sizing the
    # table at 2**17 slots up front instead of growing from 256, 23.6 vs
    # 23.3 ms (growth costs nothing measurable at 47k groups).
    bits = _INITIAL_BITS
    tbl = np.full(1 << bits, -1, dtype=np.int32)
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    ngroups = 0
    null_code = -1
    ndata = data.shape[0]
    for i in range(codes.shape[0]):
        if has_validity and not validity[i]:
            # All nulls are one group, numbered where the first null appears.
            if null_code < 0:
                null_code = ngroups
                first[ngroups] = i  # ``rec`` row unused: nulls are not in tbl
                ngroups += 1
            codes[i] = null_code
            continue
        start = offsets[i]
        end = offsets[i + 1]
        if start < 0 or end < start or end > ndata:
            raise ValueError("offsets are not non-decreasing within the data buffer")
        n = end - start
        un = np.uint64(n)
        short = n <= 16
        if short:
            # As in hashing._hash_binary_worker (see there why it is written
            # out); here the words are also needed for the comparison.
            if start + 16 <= ndata:
                w0 = _load8(data, start) & _low_bytes_mask(min(n, 8))
                w1 = _load8(data, start + 8) & _low_bytes_mask(max(n - 8, 0))
            else:
                w0 = _word(data, start, min(n, 8))
                w1 = _word(data, start + 8, max(n - 8, 0))
            h = hash_short(w0, w1, n)
        else:
            w0 = np.uint64(0)
            w1 = np.uint64(0)
            h = hash_bytes(data, start, end)
        s = np.int64(h >> shift)
        while True:
            c = tbl[s]
            if c < 0:
                tbl[s] = ngroups
                rec[ngroups, _W0] = w0
                rec[ngroups, _W1] = w1
                rec[ngroups, _LEN] = un
                rec[ngroups, _HASH] = h
                first[ngroups] = i
                codes[i] = ngroups
                ngroups += 1
                if 2 * ngroups > (1 << bits):
                    bits += 1
                    mask = (1 << bits) - 1
                    shift = np.uint64(64 - bits)
                    tbl = np.full(1 << bits, -1, dtype=np.int32)
                    for g in range(ngroups):
                        if g != null_code:
                            _insert_code(tbl, np.int64(rec[g, _HASH] >> shift), mask, g)
                break
            if rec[c, _LEN] == un:
                if short:
                    if rec[c, _W0] == w0 and rec[c, _W1] == w1:
                        codes[i] = c
                        break
                elif rec[c, _HASH] == h and _bytes_equal(data, start, offsets[first[c]], n):
                    codes[i] = c
                    break
            s = (s + 1) & mask
    return ngroups


# --------------------------------------------------------------------------
# Factorize wrappers
# --------------------------------------------------------------------------

def _dense_range(keys, rows):
    # (lo, size) of the direct-addressing table, or None when the keys' range is
    # too wide: at most 2 * rows (or 64k) slots, so the int32 table is no bigger
    # than the int64 codes of the rows.
    lo, hi = _min_max(keys)
    if hi - lo < max(2 * rows, 1 << 16):
        return lo, hi - lo + 1
    return None


@jit
def _min_max_worker(a):
    lo = hi = a[0]
    for i in range(1, a.shape[0]):
        lo = min(lo, a[i])  # no branch: LLVM vectorizes the two reductions
        hi = max(hi, a[i])
    return lo, hi


def _min_max(keys):
    # one pass instead of NumPy's min() then max()
    lo, hi = _min_max_worker(keys)
    return int(lo), int(hi)


def _finish(codes, first, ngroups):
    # ``first`` was allocated for the worst case (all distinct); copy the
    # used prefix so the n-sized buffer is freed.
    return codes, first[:ngroups].copy()


def factorize_int64(keys):
    """Group codes of integer keys, numbered in order of first appearance.

    Parameters
    ----------
    keys : numpy.ndarray
        1-D int64 (or any int/uint/bool dtype, cast to int64).

    Returns
    -------
    codes : numpy.ndarray
        int64, ``codes[i]`` is the group of row ``i``.
    first : numpy.ndarray
        int64, ``first[c]`` is the row where group ``c`` first appears, so
        ``keys[first]`` are the unique keys in first-appearance order.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import factorize_int64
    >>> codes, first = factorize_int64(np.array([5, 3, 5, 7]))
    >>> codes.tolist(), first.tolist()
    ([0, 1, 0, 2], [0, 1, 3])
    """
    return _factorize_int64(as_int64_keys(keys, "keys"), dense_ok=True)


def _factorize_int64(keys, dense_ok):
    n = keys.shape[0]
    if n >= 2**31 - 1:
        raise ValueError(f"a batch of {n} rows exceeds the int32 group table; split it")
    codes = np.empty(n, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    dense = _dense_range(keys, n) if dense_ok and n else None
    if dense is not None:
        # Direct addressing: 1M keys in [0, 100k): ~4 ms vs ~18 ms through the hash table.
        lo, size = dense
        lut = np.full(size, -1, dtype=np.int32)
        ngroups = _factorize_dense_worker(keys, np.int64(lo), lut, codes, first)
        return _finish(codes, first, ngroups)
    # ``uniques`` is n long but only its first ngroups entries are touched
    # (untouched pages of np.empty are never committed).
    uniques = np.empty(n, dtype=np.int64)
    ngroups = _factorize_int64_worker(keys, codes, first, uniques)
    return _finish(codes, first, ngroups)


def factorize_float64(keys):
    """Group codes of float keys, numbered in order of first appearance.

    Follows Python dict-key equality with one documented exception:
    ``-0.0`` and ``0.0`` are one group (as in a dict), and **all NaNs are
    one group** (a dict would only merge the *same* NaN object; pandas'
    ``dropna=False`` merges them too, and a NaN key must not explode into
    one group per row).

    Parameters
    ----------
    keys : numpy.ndarray
        1-D float array (float16/32 are cast to float64).

    Returns
    -------
    codes, first : numpy.ndarray
        As for :func:`factorize_int64`; ``keys[first]`` gives each group's
        first-seen spelling (e.g. ``-0.0`` if that came first).

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import factorize_float64
    >>> codes, first = factorize_float64(np.array([0.0, np.nan, -0.0, np.nan]))
    >>> codes.tolist(), first.tolist()
    ([0, 1, 0, 1], [0, 1])
    """
    keys = as_float64_keys(keys, "keys")
    # Canonicalise once, vectorised, then factorize the bit patterns with the
    # int64 kernel: x + 0.0 turns -0.0 into 0.0, and every NaN payload/sign
    # becomes the one canonical NaN. (~2 ms per 1M rows, cheaper than a
    # second copy of the probing loop.)
    canon = keys + 0.0
    canon[np.isnan(canon)] = np.nan
    # Bit patterns of floats are not a small dense range: hash table only.
    return _factorize_int64(canon.view(np.int64), dense_ok=False)


def factorize_binary(offsets, data, validity=None):
    """Group codes of Arrow-layout string/binary values (first-appearance order).

    Parameters
    ----------
    offsets : numpy.ndarray
        int32 or int64, length ``n + 1``.
    data : numpy.ndarray
        uint8 byte buffer.
    validity : numpy.ndarray, optional
        bool, length ``n``; False marks a null. All nulls form one group.

    Returns
    -------
    codes, first : numpy.ndarray
        As for :func:`factorize_int64`.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import factorize_binary
    >>> data = np.frombuffer(b"abba", dtype=np.uint8)
    >>> codes, first = factorize_binary(np.array([0, 1, 2, 3, 4]), data)
    >>> codes.tolist(), first.tolist()
    ([0, 1, 1, 0], [0, 1])
    """
    offsets, data, validity, has_validity = check_binary(offsets, data, validity)
    n = offsets.shape[0] - 1
    codes = np.empty(n, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    # Per-group record (see the worker); only the first ngroups rows are
    # touched, so the untouched pages of this n x 32-byte buffer are never
    # committed.
    rec = np.empty((n, 4), dtype=np.uint64)
    ngroups = _factorize_binary_worker(offsets, data, validity, has_validity, codes, first, rec)
    return _finish(codes, first, ngroups)


def factorize_arrow(arr):
    """Group codes of an Arrow string/binary array (first-appearance order).

    Parameters
    ----------
    arr : pyarrow.Array or pyarrow.ChunkedArray
        string, large_string, binary, large_binary (or the view types).
        Slices are honoured; chunks are combined. Nulls form one group.

    Returns
    -------
    codes, first : numpy.ndarray
        As for :func:`factorize_int64`; ``arr.take(first)`` are the uniques.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from runnel.kernels import factorize_arrow
    >>> codes, first = factorize_arrow(pa.array(["b", None, "b", "", None]))
    >>> codes.tolist(), first.tolist()
    ([0, 1, 0, 2, 1], [0, 1, 3])
    """
    return factorize_binary(*arrow_binary_layout(arr))


def group_segments(codes, ngroups):
    """Order rows so each group is contiguous.

    Parameters
    ----------
    codes : numpy.ndarray
        int64 group codes in ``[0, ngroups)``.
    ngroups : int
        Number of groups.

    Returns
    -------
    order, bounds : numpy.ndarray
        ``order[bounds[c]:bounds[c + 1]]`` are the rows of group ``c`` in
        arrival order; groups appear in code order.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import group_segments
    >>> order, bounds = group_segments(np.array([0, 1, 0]), 2)
    >>> order.tolist(), bounds.tolist()
    ([0, 2, 1], [0, 2, 3])
    """
    return scatter_order(codes, ngroups)


# --------------------------------------------------------------------------
# Reduce workers. Each one checks codes against ngroups because Numba does
# not bounds-check: a bad code must raise, not write foreign memory.
# --------------------------------------------------------------------------

@jit
def _sum_worker(codes, values, out):
    ng = out.shape[0]
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= ng:
            raise ValueError("codes out of range [0, ngroups)")
        out[c] += values[i]


@jit
def _count_worker(codes, out):
    ng = out.shape[0]
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= ng:
            raise ValueError("codes out of range [0, ngroups)")
        out[c] += 1


@jit
def _min_worker(codes, values, out, seen):
    # Folds Python's ``min(acc, v)`` in arrival order: v replaces acc only
    # if ``v < acc``. Bit-for-bit functools.reduce(min, group), NaN included.
    ng = out.shape[0]
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= ng:
            raise ValueError("codes out of range [0, ngroups)")
        v = values[i]
        if not seen[c]:
            seen[c] = True
            out[c] = v
        elif v < out[c]:
            out[c] = v


@jit
def _max_worker(codes, values, out, seen):
    # Python's ``max(acc, v)`` folded: v replaces acc only if ``v > acc``.
    ng = out.shape[0]
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= ng:
            raise ValueError("codes out of range [0, ngroups)")
        v = values[i]
        if not seen[c]:
            seen[c] = True
            out[c] = v
        elif v > out[c]:
            out[c] = v


@jit
def _first_worker(codes, values, out, seen):
    ng = out.shape[0]
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= ng:
            raise ValueError("codes out of range [0, ngroups)")
        if not seen[c]:
            seen[c] = True
            out[c] = values[i]


@jit
def _last_worker(codes, values, out):
    ng = out.shape[0]
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= ng:
            raise ValueError("codes out of range [0, ngroups)")
        out[c] = values[i]


# Not cached (cache=False): a dispatcher argument is typed by the identity of
# the user's function, so every process would append a new, never-reused
# entry to the on-disk cache (checked: 3 runs -> 3 .nbc files). It is
# compiled once per user function per process instead.
@jit(cache=False)
def _fold_worker(codes, values, out, seen, fn):
    ng = out.shape[0]
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= ng:
            raise ValueError("codes out of range [0, ngroups)")
        if not seen[c]:
            seen[c] = True
            out[c] = values[i]
        else:
            out[c] = fn(out[c], values[i])


# Fused factorize + reduce for int64 keys in a small range (reduce_int64_dense):
# one pass, no codes array. ``out`` starts as the first value of each group, which
# is bit for bit what the folds above give (-0.0 + v == v, 0 + v == v).
@jit
def _dense_reduce_worker(keys, values, lo, lut, ukeys, out, op):
    ng = 0
    for i in range(keys.shape[0]):
        k = keys[i]
        j = k - lo
        c = lut[j]
        v = values[i]
        if c < 0:
            lut[j] = ng
            ukeys[ng] = k
            out[ng] = v
            ng += 1
        elif op == 0:
            out[c] += v
        elif op == 1:
            if v < out[c]:
                out[c] = v
        elif v > out[c]:
            out[c] = v
    return ng


@jit
def _dense_count_worker(keys, lo, lut, ukeys, out):
    ng = 0
    for i in range(keys.shape[0]):
        k = keys[i]
        j = k - lo
        c = lut[j]
        if c < 0:
            lut[j] = ng
            ukeys[ng] = k
            out[ng] = 1
            ng += 1
        else:
            out[c] += 1
    return ng


_DENSE_OPS = {"sum": 0, "min": 1, "max": 2}


def reduce_int64_dense(keys, values, op):
    """``factorize_int64`` + ``reduce_codes`` in one pass, for keys in a small range — or None.

    The map side of reduceByKey on integer keys: no group codes are
    written, each row updates its key's slot ``key - lo`` directly. 500k
    rows over 100k keys: ~1.5 ms vs ~3.5 ms for the two kernels.

    Parameters
    ----------
    keys : numpy.ndarray
        1-D int64 keys.
    values : numpy.ndarray or None
        int64, float64 or bool values, one per key (None for ``"count"``).
    op : {"sum", "min", "max", "count"}

    Returns
    -------
    (unique keys, reduced values) or None
        Keys in order of first appearance and their values, exactly as
        ``factorize_int64`` + ``reduce_codes`` give them; None when the
        keys' range is too wide for direct addressing (or there are no rows).

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import reduce_int64_dense
    >>> k, v = reduce_int64_dense(np.array([5, 3, 5]), np.array([1.0, 2.0, 4.0]), "sum")
    >>> k.tolist(), v.tolist()
    ([5, 3], [5.0, 2.0])
    """
    r = _dense_reduce(keys, values, op)
    if r is None:
        return None
    ukeys, out, ng = r
    if 2 * ng < len(ukeys):  # free the unused tail
        return ukeys[:ng].copy(), out[:ng].copy()
    return ukeys[:ng], out[:ng]


def reduce_int64_dense_partitioned(keys, values, op, n):
    """:func:`reduce_int64_dense`, its groups split into ``n`` hash partitions — or None.

    The map side of a shuffle in one call: what ``reduce_int64_dense`` gives,
    then each group sent to partition ``hash_int64(key) % n`` (the engine's
    shuffle rule), without hashing, ordering and gathering the groups as
    separate passes.

    Parameters
    ----------
    keys, values, op
        As :func:`reduce_int64_dense`.
    n : int
        Number of partitions (>= 1).

    Returns
    -------
    (keys, values, bounds) or None
        Partition p is ``keys[bounds[p]:bounds[p + 1]]`` (and the same slice
        of values), its groups in first-appearance order; None as
        :func:`reduce_int64_dense`.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import reduce_int64_dense_partitioned
    >>> k, v, b = reduce_int64_dense_partitioned(np.array([5, 3, 5, 4]), np.array([1, 2, 4, 8]), "sum", 2)
    >>> sorted(k.tolist()), b.tolist()[0], b.tolist()[-1]
    ([3, 4, 5], 0, 3)
    """
    n = _check_n(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    r = _dense_reduce(keys, values, op)
    if r is None:
        return None
    ukeys, out, ng = r
    return _by_partition(ukeys[:ng], out[:ng], n)


def reduce_int64_sorted(keys, values, op, n=1):
    """reduceByKey of int64 keys in a small range, each hash partition sorted by key — or None.

    For the engine's internal tables (a window's per-slide partials) where
    no user sees the order: each row adds into its key's slot ``key - lo``
    (one random access per row, against two for first-appearance order),
    and a scan of the slots emits the groups sorted, which lets later
    steps merge tables sequentially (``window.window_update_sorted``).

    Parameters
    ----------
    keys, values : sequence of numpy.ndarray
        Segments folded in order, as if concatenated (no copy is made):
        int64 keys; int64, float64 or bool values (None for ``"count"``).
    op : {"sum", "min", "max", "count"}
    n : int
        Number of hash partitions (``hash_int64(key) % n``, the shuffle rule).

    Returns
    -------
    (keys, values, bounds) or None
        Partition p is ``keys[bounds[p]:bounds[p + 1]]`` (and the same slice
        of values), strictly ascending; each value is the fold of the key's
        values in row order, bit for bit what :func:`reduce_int64_dense`
        gives (but for a signalling NaN, which a sum returns quiet). None
        when the keys' range is too wide for direct addressing or there are
        no rows.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import reduce_int64_sorted
    >>> k, v, b = reduce_int64_sorted([np.array([5, 3]), np.array([5])], [np.array([1, 2]), np.array([4])], "sum")
    >>> k.tolist(), v.tolist(), b.tolist()
    ([3, 5], [2, 5], [0, 2])
    """
    if op != "count" and op not in _DENSE_OPS:
        raise ValueError(f"unknown op {op!r}; expected one of count, {', '.join(_DENSE_OPS)}")
    n = _check_n(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    keys = tuple(as_int64_keys(k, "keys") for k in keys)
    rows = sum(k.shape[0] for k in keys)
    if op == "count":
        values = tuple(np.empty(0, np.int64) for _ in keys)  # unused: every row counts 1
        dtype = np.dtype(np.int64)
    else:
        if values is None:
            raise ValueError(f"op {op!r} needs values (only 'count' accepts None)")
        values = tuple(values)
        if len(values) != len(keys):
            raise ValueError(f"{len(keys)} key segments but {len(values)} value segments")
        values = tuple(_check_values(v, k.shape[0]) for k, v in zip(keys, values))
        kinds = {v.dtype for v in values}
        if len(kinds) > 1:
            raise TypeError(f"value segments must share one dtype, got {sorted(str(d) for d in kinds)}")
        dtype = np.dtype(np.int64) if op == "sum" and values[0].dtype.kind == "b" else values[0].dtype
    present = [k for k in keys if k.shape[0]]
    if not present or rows >= 2**31 - 1:
        return None
    ranges = [_min_max(k) for k in present]
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if hi - lo >= max(2 * rows, 1 << 16):
        return None
    size = hi - lo + 1
    acc = np.full(size, -0.0 if dtype.kind == "f" else 0, dtype)  # the identity of the sum and the count
    seen = np.zeros(size, np.bool_)
    opcode = 3 if op == "count" else _DENSE_OPS[op]
    for k, v in zip(keys, values):
        if k.shape[0]:
            _sorted_fold_worker(k, v, np.int64(lo), acc, seen, opcode)
    ukeys, out = np.empty(min(rows, size) + 1, np.int64), np.empty(min(rows, size) + 1, dtype)
    ng = _sorted_emit_worker(np.int64(lo), acc, seen, ukeys, out)
    if n == 1:
        return ukeys[:ng], out[:ng], np.array([0, ng], np.int64)
    return _by_partition(ukeys[:ng], out[:ng], n)


def _by_partition(keys, values, n):
    # (keys, values, bounds): the groups in runs by shuffle partition, in order within each
    okeys, ovals, bounds = np.empty(len(keys), np.int64), np.empty(len(keys), values.dtype), np.zeros(n + 1, np.int64)
    _hash_scatter_worker((keys, values, keys[:0]), n, (okeys, ovals, okeys[:0]), bounds)
    return okeys, ovals, bounds


@jit
def _sorted_fold_worker(keys, values, lo, acc, seen, op):
    # op: 0 sum, 1 min, 2 max (as _dense_reduce_worker), 3 count (values unused). The sum and
    # the count add into acc, which starts at the identity (-0.0 + v is v bit for bit), with
    # no "first row of the key?" branch: unpredictable when keys arrive in random order.
    if op == 0:
        for i in range(keys.shape[0]):
            j = keys[i] - lo
            acc[j] += values[i]
            seen[j] = True
        return
    if op == 3:
        for i in range(keys.shape[0]):
            j = keys[i] - lo
            acc[j] += 1
            seen[j] = True
        return
    for i in range(keys.shape[0]):
        j = keys[i] - lo
        v = values[i]
        if not seen[j]:
            seen[j] = True
            acc[j] = v
        elif op == 1:
            if v < acc[j]:
                acc[j] = v
        elif v > acc[j]:
            acc[j] = v


@jit
def _sorted_emit_worker(lo, acc, seen, ukeys, out):
    # Branch-free: every slot is written at g, which advances past present keys only (one
    # spare row in ukeys and out).
    g = 0
    for j in range(seen.shape[0]):
        ukeys[g] = lo + j
        out[g] = acc[j]
        g += seen[j]
    return g


def _dense_reduce(keys, values, op):
    # (ukeys, out, number of groups) with ukeys/out allocated for the worst case, or None
    if op != "count" and op not in _DENSE_OPS:
        raise ValueError(f"unknown op {op!r}; expected one of count, {', '.join(_DENSE_OPS)}")
    keys = as_int64_keys(keys, "keys")
    n = keys.shape[0]
    if n == 0 or n >= 2**31 - 1:
        return None
    dense = _dense_range(keys, n)
    if dense is None:
        return None
    lo, size = dense
    lut = np.full(size, -1, dtype=np.int32)
    ukeys = np.empty(min(n, size), dtype=np.int64)
    if op == "count":
        out = np.empty(len(ukeys), dtype=np.int64)
        ng = _dense_count_worker(keys, np.int64(lo), lut, ukeys, out)
    else:
        if values is None:
            raise ValueError(f"op {op!r} needs values (only 'count' accepts None)")
        values = _check_values(values, n)
        dtype = np.int64 if op == "sum" and values.dtype.kind == "b" else values.dtype
        out = np.empty(len(ukeys), dtype=dtype)
        ng = _dense_reduce_worker(keys, values, np.int64(lo), lut, ukeys, out, _DENSE_OPS[op])
    return ukeys, out, ng


def _check_codes(codes, ngroups):
    if isinstance(ngroups, (bool, np.bool_)) or not isinstance(ngroups, (int, np.integer)):
        raise TypeError(f"ngroups must be an int, got {type(ngroups).__name__}")
    ngroups = int(ngroups)
    if ngroups < 0:
        raise ValueError(f"ngroups must be >= 0, got {ngroups}")
    codes = _as_1d(codes, "codes")
    if codes.dtype.kind not in "iu":
        raise TypeError(f"codes must have an integer dtype, got {codes.dtype}")
    return np.ascontiguousarray(codes, dtype=np.int64), ngroups


def _check_values(values, n):
    values = _as_1d(values, "values")
    if values.shape[0] != n:
        raise ValueError(f"values has length {values.shape[0]}, codes has {n}")
    kind = values.dtype.kind
    if kind == "b":
        return values
    if kind == "i" or (kind == "u" and values.dtype.itemsize < 8):
        return values.astype(np.int64, copy=False)
    if kind == "f":
        return values.astype(np.float64, copy=False)
    raise TypeError(f"values must be int64, float64 or bool (or a narrower int/float), got {values.dtype}")


def _empty_fill(dtype):
    # What a group with no rows gets (only possible when ngroups exceeds the
    # codes present): NaN for floats, 0/False otherwise.
    return np.nan if dtype.kind == "f" else 0


def reduce_codes(codes, ngroups, values, op):
    """Reduce ``values`` per group with a built-in reducer.

    Every reducer folds in arrival order, so results equal
    ``functools.reduce`` over each group's values in row order (what
    PySpark's reduceByKey gives within one partition), NaN included: min
    and max follow Python's ``min``/``max`` (a NaN is kept only if it comes
    first), and float sums add left to right.

    Parameters
    ----------
    codes : numpy.ndarray
        int64 group codes in ``[0, ngroups)`` (from a ``factorize_*``).
    ngroups : int
        Number of groups (length of the result).
    values : numpy.ndarray or None
        int64, float64 or bool (narrower ints/floats are widened). May be
        None for ``"count"``.
    op : {"sum", "min", "max", "count", "first", "last", "mean"}
        ``sum`` keeps int64 (wrapping on overflow like NumPy), sums bools
        into int64, and float64 stays float64; ``count`` counts rows
        (int64); ``mean`` is float64; the rest keep the values' dtype.
        A group without rows gets 0 (count, int sum), -0.0 (float sum),
        NaN (float min/max/first/last, mean) or 0/False.

    Returns
    -------
    numpy.ndarray
        One value per group, length ``ngroups``.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import reduce_codes
    >>> codes = np.array([0, 1, 0, 1, 0])
    >>> reduce_codes(codes, 2, np.array([1, 2, 3, 4, 5]), "sum").tolist()
    [9, 6]
    >>> reduce_codes(codes, 2, None, "count").tolist()
    [3, 2]
    """
    if op not in REDUCE_OPS:
        raise ValueError(f"unknown op {op!r}; expected one of {', '.join(REDUCE_OPS)}")
    codes, ngroups = _check_codes(codes, ngroups)
    n = codes.shape[0]
    if op == "count":
        if values is not None:
            _check_values(values, n)
        out = np.zeros(ngroups, dtype=np.int64)
        _count_worker(codes, out)
        return out
    if values is None:
        raise ValueError(f"op {op!r} needs values (only 'count' accepts None)")
    values = _check_values(values, n)
    if op in ("sum", "mean"):
        if values.dtype == np.float64:
            # -0.0 is the identity of IEEE addition (0.0 + -0.0 is +0.0), so
            # a group of only -0.0 sums to -0.0 exactly as a fold would.
            out = np.full(ngroups, -0.0)
        else:
            out = np.zeros(ngroups, dtype=np.int64)
        _sum_worker(codes, values, out)
        if op == "sum":
            return out
        counts = np.zeros(ngroups, dtype=np.int64)
        _count_worker(codes, counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            return out / counts
    out = np.full(ngroups, _empty_fill(values.dtype), dtype=values.dtype)
    if op == "last":
        _last_worker(codes, values, out)
        return out
    seen = np.zeros(ngroups, dtype=np.bool_)
    worker = {"min": _min_worker, "max": _max_worker, "first": _first_worker}[op]
    worker(codes, values, out, seen)
    return out


def reduce_codes_with(codes, ngroups, values, fn):
    """Fold a Numba-compiled binary function over each group, in arrival order.

    ``result[c] = fn(fn(v0, v1), v2) ...`` over group ``c``'s values in row
    order; a group of one value gives that value unchanged.

    Parameters
    ----------
    codes : numpy.ndarray
        int64 group codes in ``[0, ngroups)``.
    ngroups : int
        Number of groups.
    values : numpy.ndarray
        int64, float64 or bool (narrower ints/floats are widened).
    fn : numba dispatcher
        A function compiled with ``runnel.kernels._config.jit`` or
        ``numba.njit``. It is inlined into a kernel specialised for it,
        compiled once per function per process and not disk-cached. Plain
        Python functions are refused (TypeError): the engine runs those on
        its Python fallback path.

    Returns
    -------
    numpy.ndarray
        One value per group, of ``values``' dtype (``fn``'s results are
        cast to it). Groups without rows get NaN (float) or 0/False.

    Examples
    --------
    >>> import numba, numpy as np
    >>> from runnel.kernels import reduce_codes_with
    >>> @numba.njit
    ... def keep_larger_abs(a, b):
    ...     return a if abs(a) >= abs(b) else b
    >>> reduce_codes_with(np.array([0, 0, 1]), 2, np.array([-3, 2, 1]), keep_larger_abs).tolist()
    [-3, 1]
    """
    if not is_jitted(fn):
        raise TypeError(
            f"fn must be a Numba-compiled function (numba.njit / runnel.kernels._config.jit), "
            f"got {getattr(fn, '__qualname__', type(fn).__name__)}; use the engine's Python fallback"
        )
    codes, ngroups = _check_codes(codes, ngroups)
    values = _check_values(values, codes.shape[0])
    out = np.full(ngroups, _empty_fill(values.dtype), dtype=values.dtype)
    seen = np.zeros(ngroups, dtype=np.bool_)
    _fold_worker(codes, values, out, seen, fn)
    return out
