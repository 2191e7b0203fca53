"""Keyed state merge: an existing (keys, values) table updated with new partial aggregates.

The state of a built-in updater (``runnel.updaters``) is a columnar table per
partition: ``keys``, one value column per aggregate and, with a time-to-live,
the batch time each key was last updated. Every batch, the new records of the
partition are reduced to one partial aggregate per key (``reduce_codes``) and
merged into the table here:

    old table           new partials          new table
    k0 v0 seen0         k2 p2                 k0 v0             seen0   (kept unless expired)
    k1 v1 seen1   (+)   k5 p5         ->      k1 v1             seen1
    k2 v2 seen2                               k2 v2 (op) p2     now     (updated)
                                              k5 p5             now     (appended)

Keys are matched by the caller (``pos[j]``: row of new key j in the old table,
or -1 for a new key), so this kernel only loops over numbers; rows whose key
expired (``now - seen >= ttl``, no new data) come back with ``keep`` False and
the caller drops them, so the table shrinks.

The same worker runs on object arrays through its ``py_func`` (Python ints
that would overflow int64, values of mixed types): one algorithm, two speeds.
"""

from __future__ import annotations

import numpy as np

from ._config import jit
from .aggregate import _min_max
from .hashing import hash_int_scalar
from .partition import _hash_scatter_worker

__all__ = ["MERGE_OPS", "match_positions", "merge_state", "sorted_reduce", "split_rows", "merge_dense", "dense_range"]

#: How a partial aggregate is folded into the stored value (count and mean merge by "sum").
MERGE_OPS = ("sum", "min", "max", "last")
_OP_CODE = {name: i for i, name in enumerate(MERGE_OPS)}


@jit
def _merge_worker(pos, table, new_vals, clock, op, out):
    # table = (values, seen); clock = (now, ttl; ttl <= 0: never expire); out = (values, seen, keep)
    vals, seen = table
    now, ttl = clock
    out_vals, out_seen, keep = out
    m = len(vals)
    for i in range(m):
        out_vals[i] = vals[i]
        out_seen[i] = seen[i]
        keep[i] = ttl <= 0 or now - seen[i] < ttl
    nxt = m
    for j in range(len(new_vals)):
        p = pos[j]
        v = new_vals[j]
        if p < 0:
            p = nxt
            nxt += 1
            out_vals[p] = v
        else:
            a = out_vals[p]
            if op == 0:
                a = a + v
            elif op == 1:
                if v < a:  # Python's min(a, v): a NaN already stored stays
                    a = v
            elif op == 2:
                if v > a:
                    a = v
            else:
                a = v
            out_vals[p] = a
        out_seen[p] = now
        keep[p] = True


def match_positions(codes: np.ndarray, m: int) -> np.ndarray:
    """Row in the old table of every new key, -1 for keys not in it.

    ``codes`` are group codes (first-appearance order) of the old table's
    ``m`` unique keys followed by the new unique keys, so an old key has code
    ``< m`` equal to its row.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if len(codes) < m:
        raise ValueError(f"codes must cover the {m} keys of the table, got {len(codes)}")
    new = codes[m:]
    return np.where(new < m, new, -1).astype(np.int64)


def _readonly(a: np.ndarray) -> np.ndarray:
    # one compiled signature whatever the inputs' flags (blocks from shared memory are read-only)
    v = a.view()
    v.flags.writeable = False
    return v


def merge_state(pos, values, seen, new_values, op, now=0, ttl=0):
    """Merge new partial aggregates into a state table.

    Parameters
    ----------
    pos : numpy.ndarray
        int64, one per new partial: its key's row in the table, or -1 (see
        :func:`match_positions`). The new keys must be unique.
    values, seen : numpy.ndarray
        The table's values and the batch time (ms, int64) each key was last
        updated.
    new_values : numpy.ndarray
        Partial aggregates, same dtype as ``values`` (int64, float64, or
        object for the Python path).
    op : {"sum", "min", "max", "last"}
    now, ttl : int
        Current batch time and time-to-live in ms; ``ttl <= 0`` keeps keys forever.

    Returns
    -------
    values, seen, keep : numpy.ndarray
        Table rows then the new keys' rows (in the order of ``pos``); drop the
        rows where ``keep`` is False.
    """
    if op not in _OP_CODE:
        raise ValueError(f"merge op must be one of {MERGE_OPS}, got {op!r}")
    pos = np.asarray(pos, dtype=np.int64)
    if len(pos) != len(new_values):
        raise ValueError(f"pos ({len(pos)}) and new_values ({len(new_values)}) differ in length")
    if len(values) != len(seen):
        raise ValueError(f"values ({len(values)}) and seen ({len(seen)}) differ in length")
    if values.dtype != new_values.dtype:
        raise TypeError(f"table values are {values.dtype} but new values are {new_values.dtype}: "
                        "cast them to one dtype (object for the Python path)")
    if len(pos) and pos.max() >= len(values):
        raise ValueError("pos points past the end of the table")
    n_new = int((pos < 0).sum())
    size = len(values) + n_new
    out = (np.empty(size, values.dtype), np.empty(size, np.int64), np.empty(size, np.bool_))
    seen = np.asarray(seen, dtype=np.int64)
    clock = (np.int64(now), np.int64(ttl))
    if values.dtype == object:
        _merge_worker.py_func(pos, (values, seen), new_values, clock, _OP_CODE[op], out)
    elif values.dtype.kind in "if" and values.dtype.itemsize == 8:
        _merge_worker(_readonly(pos), (_readonly(values), _readonly(seen)), _readonly(new_values), clock,
                      _OP_CODE[op], out)
    else:
        raise TypeError(f"merge_state runs on int64, float64 or object values, got {values.dtype}")
    return out


# --------------------------------------------------------------------------
# Int64 keys in a small range: direct addressing, tables come out sorted
# --------------------------------------------------------------------------
#
# When the keys of a table and its partials lie in a range [lo, lo + R) not
# much larger than their number, a merge needs no hash table: every key has
# its slot ``key - lo`` in arrays of R entries, and scanning the slots in
# order gives the merged table sorted by key::
#
#     table     1:a 4:b 7:c         slots  1 . . 4 . 5 . 7     (R = 7)
#     partials  4:p 5:q       ->    out    1:a 4:(b op p) 5:q 7:c
#
# A table sorted this way makes the next merge's writes sequential (the slots
# are visited in increasing order), so a batch costs sequential passes over
# state and partials instead of the random probes of factorizing the whole
# state. Sortedness is a property the kernels exploit, not one they need:
# an unsorted table (restored repartitioned from a checkpoint, say) merges
# correctly, only its first merge is slower. Keys spread over a large range
# make the wrappers return None; the caller then merges by hash.
#
# Buckets. Slot arrays for a 1M-key range are 9-25 MB: rows arriving in random
# key order would each miss the cache twice (flag, then value), ~38 ns a row
# (W4's 500k partials into a 500k-key table: 19 ms). So a range wider than
# DIRECT_SLOTS is cut into buckets of 2**BUCKET_BITS slots aligned on
# multiples of that size (bucket = key >> BUCKET_BITS, whoever computes it),
# and each bucket is folded and emitted with slot arrays that stay in L2.
# The rows must arrive grouped by bucket. An input usually comes as a few
# *runs* whose buckets never decrease: a sorted table is one run; the shuffle
# partials of several map tasks, each grouped by bucket (``split_rows``), are
# one run per task. The kernels find the runs in one pass and take bucket k
# from every run in turn, so each key's rows still fold in arrival order;
# only an input of more than MAX_RUNS runs is first grouped by a stable
# counting scatter.
#
#     bucket         0     1     2              run 0: buckets 0 0 1 2
#     run 0 rows    a b    c     d              run 1: buckets 0 2 2
#     run 1 rows    e           f g       ->    fold order: a b e | c | d f g

#: A key range at most this many times the rows (plus a constant) is addressed directly.
DENSE_FACTOR = 4
DENSE_SLACK = 1 << 16
#: Ranges up to this many slots are one bucket (its slot arrays fit in L2 as they are).
DIRECT_SLOTS = 1 << 17
#: Slots per bucket (log2) of wider ranges: 32k slots of 9-25 bytes stay in a core's L2 cache.
BUCKET_BITS = 15
#: Inputs of more runs than this are scattered by bucket first (see "Buckets").
MAX_RUNS = 64


@jit
def _fold(a, v, op):
    # Python's fold of one more value: a + v, min(a, v), max(a, v), or v (last)
    if op == 0:
        return a + v
    if op == 1:
        return v if v < a else a  # min(a, v): a NaN already stored stays
    if op == 2:
        return v if v > a else a
    return v


@jit
def _runs_worker(keys, base, bits, counts, run_starts):
    # Split the rows into maximal runs of non-decreasing bucket ((key - base) >> bits):
    # counts[r, b] = rows of run r in bucket b, run_starts[r] = its first row. Returns the
    # number of runs, or -1 past counts.shape[0] (the caller scatters instead).
    # A bucket's rows are counted in a register and stored when the bucket changes: sorted
    # input would otherwise chain every row's increment through memory.
    r = 0
    cur = 0
    n = 0
    run_starts[0] = 0
    for i in range(keys.shape[0]):
        b = (keys[i] - base) >> bits
        if b != cur:
            counts[r, cur] += n
            n = 0
            if b < cur:
                r += 1
                if r == counts.shape[0]:
                    return -1
                run_starts[r] = i
            cur = b
        n += 1
    counts[r, cur] += n
    run_starts[r + 1] = keys.shape[0]
    return r + 1


@jit
def _bucket_counts_worker(keys, base, bits, counts):
    for i in range(keys.shape[0]):
        counts[(keys[i] - base) >> bits] += 1


@jit
def _scatter_worker(rows, base, bits, fill, out):
    # Stable counting sort of rows (keys, values, counts, seen; zero-length: absent) by
    # bucket; fill[b] is bucket b's first row in out.
    keys, vals, cnt, seen = rows
    okeys, ovals, ocnt, oseen = out
    has_cnt = cnt.shape[0] > 0
    has_seen = seen.shape[0] > 0
    for i in range(keys.shape[0]):
        b = (keys[i] - base) >> bits
        j = fill[b]
        fill[b] = j + 1
        okeys[j] = keys[i]
        ovals[j] = vals[i]
        if has_cnt:
            ocnt[j] = cnt[i]
        if has_seen:
            oseen[j] = seen[i]


@jit
def _reduce_buckets_worker(keys, vals, offs, base, bits, op, zero, slots, out):
    # offs[r, b]..offs[r, b + 1]: the rows of run r in bucket b (see "Buckets"); slots =
    # (acc, flag, counts) for one bucket, acc filled with the sum's identity (see _add_rows);
    # zero-length counts: not counted. Each bucket is folded (runs in order: arrival order per
    # key), then its slots are emitted in key order and reset. Returns the number of keys.
    acc, flag, cnt = slots
    ones = keys[:0]  # zero-length: every row counts 1
    g = 0
    for b in range(offs.shape[1] - 1):
        kb = base + (b << bits)
        for r in range(offs.shape[0]):
            if op == 0:
                _add_rows(keys, vals, ones, offs[r, b], offs[r, b + 1], kb, acc, flag, np.uint8(1), cnt)
            else:
                _fold_rows(keys, vals, ones, offs[r, b], offs[r, b + 1], kb, op, acc, flag, np.uint8(1), cnt)
        g = _emit_bucket(kb, acc, flag, cnt, cnt[:0], out, g, zero)
    return g


@jit
def _add_rows(keys, vals, rows_cnt, i0, i1, kb, acc, flag, mark, cnt):
    # The sum fold without a branch per row: acc starts at the identity (-0.0 or 0; -0.0 + v
    # is v bit for bit, 0.0 + v is not for v = -0.0; a signalling NaN comes out quiet, as
    # from any Python addition), so every row just adds. Rows arriving in
    # random order within a bucket made the "first row of the key?" branch unpredictable:
    # 500k rows 4.0 ms with it, 1.7 ms without. Counts add rows_cnt (zero-length: 1 a row).
    want_cnt = cnt.shape[0] > 0
    per_row = rows_cnt.shape[0] > 0
    for i in range(i0, i1):
        s = keys[i] - kb
        acc[s] += vals[i]
        flag[s] = mark
        if want_cnt:
            cnt[s] += rows_cnt[i] if per_row else 1


@jit
def _fold_rows(keys, vals, rows_cnt, i0, i1, kb, op, acc, flag, mark, cnt):
    # The fold of any op (min, max, last): the first row of a key is stored as it is.
    want_cnt = cnt.shape[0] > 0
    per_row = rows_cnt.shape[0] > 0
    for i in range(i0, i1):
        s = keys[i] - kb
        c = rows_cnt[i] if per_row else 1
        if flag[s] == 0:
            flag[s] = mark
            acc[s] = vals[i]
            if want_cnt:
                cnt[s] = c
        else:
            acc[s] = _fold(acc[s], vals[i], op)
            if want_cnt:
                cnt[s] += c


@jit
def _emit_bucket(kb, acc, flag, cnt, seen, out, g, zero):
    # Branch-free: every slot is written at row g, which advances only past filled slots
    # (``out`` has one spare row); with 1M slots 2.5 ms vs 7.6 ms for an ``if flag[j]`` the
    # CPU cannot predict. The slots are reset for the next bucket (acc to ``zero``, the sum's
    # identity; other ops overwrite a key's first value). ``touched``: flag bit 2, a key of
    # merge_dense's partials.
    okeys, ovals, ocnt, oseen, otouched = out
    has_cnt = ocnt.shape[0] > 0
    put_seen = oseen.shape[0] > 0
    put_touched = otouched.shape[0] > 0
    for j in range(flag.shape[0]):
        okeys[g] = kb + j
        ovals[g] = acc[j]
        if has_cnt:
            ocnt[g] = cnt[j]
            cnt[j] = 0
        if put_seen:
            oseen[g] = seen[j]
        if put_touched:
            otouched[g] = flag[j] >= 2
        g += flag[j] != 0
        flag[j] = 0
        acc[j] = zero
    return g


@jit
def _merge_buckets_worker(a, aoffs, b, boffs, base, bits, op, zero, clock, slots, out):
    # a = (keys, values, counts, seen) the table, b = (keys, values, counts) the partials, each
    # with its runs' bucket offsets (as _reduce_buckets_worker); slots = (acc, flag, counts,
    # seen) for one bucket; zero-length arrays: column absent. In each bucket b's rows fold in
    # order first (a key may repeat: the partials of several map tasks), then the table's value
    # goes first in each fold. A key repeated in a returns -1 (the caller merges by hash).
    # flag bit 2: b's key, bit 1: a's. Returns the number of keys.
    akeys, avals, acnt, aseen = a
    bkeys, bvals, bcnt = b
    acc, flag, cnt, seen = slots
    now, ttl = clock
    put_seen = seen.shape[0] > 0
    g = 0
    for k in range(aoffs.shape[1] - 1):
        kb = base + (k << bits)
        for r in range(boffs.shape[0]):
            i0, i1 = boffs[r, k], boffs[r, k + 1]
            if op == 0:
                _add_rows(bkeys, bvals, bcnt, i0, i1, kb, acc, flag, np.uint8(2), cnt)
            else:
                _fold_rows(bkeys, bvals, bcnt, i0, i1, kb, op, acc, flag, np.uint8(2), cnt)
            if put_seen:
                for j in range(i0, i1):
                    seen[bkeys[j] - kb] = now
        for r in range(aoffs.shape[0]):
            if not _merge_table_rows(a, aoffs[r, k], aoffs[r, k + 1], kb, op, now, ttl, acc, flag, cnt, seen):
                return -1
        g = _emit_bucket(kb, acc, flag, cnt, seen, out, g, zero)
    return g


@jit
def _merge_table_rows(a, i0, i1, kb, op, now, ttl, acc, flag, cnt, seen):
    # The table's rows of one bucket: a key with new rows becomes ``a op fold(new)`` (the
    # table's value first), an untouched one is kept unless expired. False if a key repeats.
    akeys, avals, acnt, aseen = a
    has_cnt = cnt.shape[0] > 0
    has_aseen = aseen.shape[0] > 0
    put_seen = seen.shape[0] > 0
    if op == 0 and ttl <= 0 and not put_seen:
        # The sum without expiry: every row adds into its slot (the identity where no new rows
        # came), no branch on whether the key had new rows (unpredictable: 1.6 ms of 500k rows).
        flags = 0
        for i in range(i0, i1):
            s = akeys[i] - kb
            f = flag[s]
            flags |= f
            acc[s] = avals[i] + acc[s]
            flag[s] = f | 1
            if has_cnt:
                cnt[s] += acnt[i]
        return (flags & 1) == 0
    for i in range(i0, i1):
        s = akeys[i] - kb
        f = flag[s]
        if f & 1:
            return False
        if f == 0:
            t = aseen[i] if has_aseen else now
            if ttl > 0 and now - t >= ttl:  # untouched and expired: dropped
                continue
            if put_seen:
                seen[s] = t
            if op != 0:  # the sum adds into its identity below; other ops store the value
                acc[s] = avals[i]
        if op == 0:
            acc[s] = avals[i] + acc[s]
        elif f != 0:
            acc[s] = _fold(avals[i], acc[s], op)
        if has_cnt:
            cnt[s] += acnt[i]
        flag[s] = f | 1
    return True


@jit
def _split_rows_worker(keys, values, base, bits, nb, parts, ids, fill, okeys, ovals):
    # Stable counting sort of rows by (hash partition, bucket): group p * nb + b. fill has one
    # entry per group plus one: counts, then starts; after the scatter fill[g] is the end of
    # group g, so fill[(p + 1) * nb - 1] ends partition p.
    mask = parts - np.uint64(1)
    pow2 = (parts & mask) == 0
    for i in range(keys.shape[0]):
        h = hash_int_scalar(keys[i])
        p = np.int64(h & mask) if pow2 else np.int64(h % parts)
        g = p * nb + ((keys[i] - base) >> bits)
        ids[i] = g
        fill[g + 1] += 1
    for g in range(fill.shape[0] - 1):
        fill[g + 1] += fill[g]
    for i in range(keys.shape[0]):
        g = ids[i]
        j = fill[g]
        fill[g] = j + 1
        okeys[j] = keys[i]
        ovals[j] = values[i]


_NONE = np.zeros(0, np.int64)
_NONE.flags.writeable = False


def _int64s(a, name):
    if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype != np.int64:
        raise TypeError(f"{name} must be a 1-D int64 array, got {getattr(a, 'dtype', type(a).__name__)}")
    return _readonly(np.ascontiguousarray(a))


def _values(values, n, name):
    if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype not in (np.int64, np.float64):
        raise TypeError(f"{name} must be a 1-D int64 or float64 array, got "
                        f"{getattr(values, 'dtype', type(values).__name__)}")
    if len(values) != n:
        raise ValueError(f"{name} ({len(values)}) and their keys ({n}) differ in length")
    return _readonly(np.ascontiguousarray(values))


def dense_range(key_arrays, rows):
    """(lo, number of slots) of the keys' range if small enough to address directly, else None.

    Small enough: at most ``DENSE_FACTOR * rows + DENSE_SLACK`` slots (the kernels allocate
    about 9-25 bytes per slot, transiently).
    """
    present = [k for k in key_arrays if len(k)]
    if not present:
        return 0, 0
    ranges = [_min_max(k) for k in present]
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    size = hi - lo + 1
    return (lo, size) if size <= DENSE_FACTOR * rows + DENSE_SLACK else None


def _plan(lo, size):
    """(base, bits, buckets, slots per bucket) for keys in ``[lo, lo + size)`` (see "Buckets")."""
    if size <= DIRECT_SLOTS:
        return lo, max(size - 1, 0).bit_length(), 1, size
    return (*_aligned_buckets(lo, size), 1 << BUCKET_BITS)


def _aligned_buckets(lo, size):
    """(base, bits, buckets): the BUCKET_BITS buckets, aligned on their size, over ``[lo, lo + size)``."""
    base = (lo >> BUCKET_BITS) << BUCKET_BITS
    return base, BUCKET_BITS, ((lo + max(size, 1) - 1 - base) >> BUCKET_BITS) + 1


def _dense_input(keys, values, parts):
    """Checked keys and values and their ``dense_range`` (None: too wide), for a map-side kernel."""
    if isinstance(parts, (bool, np.bool_)) or not isinstance(parts, (int, np.integer)) or parts < 1:
        raise ValueError(f"parts must be an int >= 1, got {parts!r}")
    keys = _int64s(keys, "keys")
    values = _values(values, len(keys), "values")
    return keys, values, dense_range([keys], len(keys))


def _by_bucket(rows, plan):
    """``(rows, offs)``: offs[r, b] .. offs[r, b + 1] are the rows of run r in bucket b; rows
    of more than MAX_RUNS runs are first scattered into one (stably)."""
    base, bits, nb, _ = plan
    keys = rows[0]
    counts = np.zeros((MAX_RUNS, nb), np.int64)
    run_starts = np.zeros(MAX_RUNS + 1, np.int64)
    runs = _runs_worker(keys, np.int64(base), np.int64(bits), counts, run_starts) if len(keys) else 1  # or one empty
    if runs < 0:
        total = np.zeros(nb, np.int64)
        _bucket_counts_worker(keys, np.int64(base), np.int64(bits), total)
        fill = np.concatenate([[0], np.cumsum(total)[:-1]]).astype(np.int64)
        out = tuple(np.empty(len(c), c.dtype) for c in rows)
        _scatter_worker(rows, np.int64(base), np.int64(bits), fill, out)
        rows, counts, run_starts, runs = tuple(_readonly(c) for c in out), total[None, :], np.zeros(1, np.int64), 1
    offs = np.zeros((runs, nb + 1), np.int64)
    offs[:, 0] = run_starts[:runs]
    np.cumsum(counts[:runs], axis=1, out=offs[:, 1:])
    offs[:, 1:] += offs[:, :1]
    return rows, offs


def _zero(dtype):
    """The sum's identity in ``dtype``: -0.0 + v is v bit for bit (0.0 + -0.0 is 0.0)."""
    return np.float64(-0.0) if dtype == np.float64 else np.int64(0)


def _slots(width, dtype, counts, seen=None):
    out = (np.full(width, _zero(dtype), dtype), np.zeros(width, np.uint8), np.zeros(width if counts else 0, np.int64))
    return out if seen is None else out + (np.empty(width if seen else 0, np.int64),)


def _outputs(cap, dtype, counts, seen, touched=False):
    # one spare row for the branch-free emit
    return (np.empty(cap + 1, np.int64), np.empty(cap + 1, dtype), np.empty(cap + 1 if counts else 0, np.int64),
            np.empty(cap + 1 if seen else 0, np.int64), np.empty(cap + 1 if touched else 0, np.bool_))


def sorted_reduce(keys, values, op, counts=False, parts=1):
    """Reduce ``values`` by int64 key, unique keys in increasing order — or None.

    Each key's values fold in arrival order (as ``aggregate.reduce_codes``:
    ``sum`` adds left to right, ``min``/``max`` follow Python's, ``last``
    keeps the last). Direct addressing over the key range, bucket by
    bucket (see "Buckets" in the source): None when the range exceeds
    ``DENSE_FACTOR`` times the rows plus ``DENSE_SLACK`` (the caller then
    groups by hash).

    Parameters
    ----------
    keys : numpy.ndarray
        int64.
    values : numpy.ndarray
        int64 or float64 (int sums wrap: check for overflow first).
    op : {"sum", "min", "max", "last"}
    counts : bool
        Also count the rows of each key.
    parts : int
        Split the result by shuffle partition (``hash_int64(key) % parts``,
        as ``kernels.partition_ids``): a list of ``parts`` results, each
        sorted by key.

    Returns
    -------
    (keys, values, counts or None), a list of ``parts`` of them, or None

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels.state import sorted_reduce
    >>> k, v, c = sorted_reduce(np.array([5, 2, 5]), np.array([1.0, 2.0, 3.0]), "sum", counts=True)
    >>> k.tolist(), v.tolist(), c.tolist()
    ([2, 5], [2.0, 4.0], [1, 2])
    >>> [p[0].tolist() for p in sorted_reduce(np.arange(6), np.ones(6), "sum", parts=2)]
    [[1, 2, 4], [0, 3, 5]]
    """
    if op not in _OP_CODE:
        raise ValueError(f"op must be one of {MERGE_OPS}, got {op!r}")
    keys, values, rng = _dense_input(keys, values, parts)
    if rng is None:
        return None
    plan, size = _plan(*rng), rng[1]
    (keys, values, _, _), offs = _by_bucket((keys, values, _NONE, _NONE), plan)
    out = _outputs(min(len(keys), size), values.dtype, counts, False)
    ng = _reduce_buckets_worker(keys, values, offs, np.int64(plan[0]), np.int64(plan[1]), _OP_CODE[op],
                                _zero(values.dtype), _slots(plan[3], values.dtype, counts), out)
    k, v, c = out[0][:ng], out[1][:ng], out[2][:ng] if counts else None
    if parts == 1:
        return k, v, c
    starts = np.zeros(parts + 1, np.int64)
    out = (np.empty(ng, np.int64), np.empty(ng, values.dtype), np.empty(ng if counts else 0, np.int64))
    _hash_scatter_worker((k, v, c if counts else _NONE), parts, out, starts)
    return [tuple(o[a:b] if counts or i < 2 else None for i, o in enumerate(out))
            for a, b in zip(starts[:-1].tolist(), starts[1:].tolist())]


def split_rows(keys, values, parts):
    """Rows split into shuffle partitions, each grouped by bucket, unreduced — or None.

    The map side of a state update whose keys barely repeat within a batch
    (W4: 500k rows over 1M keys; reducing them first would save a fifth of
    the rows and cost a random-access pass over the whole key range): row i
    goes to partition ``hash_int64(keys[i]) % parts`` (as
    ``kernels.partition_ids``), where rows are grouped by bucket
    (``key >> BUCKET_BITS``, ascending) in arrival order, which is what
    :func:`merge_dense` folds without scattering them again.

    Parameters
    ----------
    keys : numpy.ndarray
        int64.
    values : numpy.ndarray
        int64 or float64.
    parts : int
        Number of partitions (>= 1).

    Returns
    -------
    list of (keys, values), one per partition, or None
        None when the keys' range is too wide (see :func:`dense_range`).

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels.state import split_rows
    >>> [k.tolist() for k, _ in split_rows(np.array([5, 0, 5, 3]), np.arange(4.0), 2)]
    [[5, 5], [0, 3]]
    """
    keys, values, rng = _dense_input(keys, values, parts)
    if rng is None:
        return None
    base, bits, nb = _aligned_buckets(*rng)
    fill = np.zeros(parts * nb + 1, np.int64)
    ids = np.empty(len(keys), np.int64)
    okeys, ovals = np.empty(len(keys), np.int64), np.empty(len(keys), values.dtype)
    _split_rows_worker(keys, values, np.int64(base), np.int64(bits), np.int64(nb), np.uint64(parts), ids, fill,
                       okeys, ovals)
    ends = fill[nb - 1:parts * nb:nb].tolist()  # the end of each partition's last group
    starts = [0] + ends[:-1]
    return [(okeys[a:b], ovals[a:b]) for a, b in zip(starts, ends)]


def merge_dense(a, b, op, now=0, ttl=0, seen=False, touched=False):
    """Merge partials into a table of int64 keys by direct addressing — or None.

    The result is sorted by key whatever the order of the inputs. Inputs
    that come as a few runs grouped by bucket of the key range (a sorted
    table; the partials of a few map tasks from :func:`sorted_reduce` or
    :func:`split_rows`) merge without being regrouped first.

    Parameters
    ----------
    a : (keys, values, counts or None, seen or None)
        The table: unique int64 keys, int64/float64 values, optional int64
        counts and batch times (ms) of each key's last update.
    b : (keys, values, counts or None)
        The partials: values of a's dtype, counts if a has them. A key may
        repeat (the partials of several map tasks, in map order): its rows
        fold in order first.
    op : {"sum", "min", "max", "last"}
        A common key gets ``a op fold(b)`` (counts add).
    now, ttl : int
        A key only in ``a`` with ``now - seen >= ttl`` (``ttl > 0``) is
        dropped; a key without a seen time counts as seen ``now``.
    seen : bool
        Also return each key's batch time of last update (``now`` for b's keys).
    touched : bool
        Also return which keys are b's (bool per key, a fifth element): the keys
        this merge updated, without keeping a batch time per key (a sum without
        ``seen`` or ``ttl`` merges the table branch-free).

    Returns
    -------
    (keys, values, counts or None, seen or None[, touched]) or None
        None when the key range is too large (see :func:`sorted_reduce`) or
        ``a`` repeats a key.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels.state import merge_dense
    >>> k, v, _, _ = merge_dense((np.array([4, 1]), np.array([2.0, 1.0]), None, None),
    ...                          (np.array([5, 4]), np.array([4.0, 3.0]), None), "sum")
    >>> k.tolist(), v.tolist()
    ([1, 4, 5], [1.0, 5.0, 4.0])
    """
    if op not in _OP_CODE:
        raise ValueError(f"op must be one of {MERGE_OPS}, got {op!r}")
    akeys, avals, acnt, aseen = a
    bkeys, bvals, bcnt = b
    akeys, bkeys = _int64s(akeys, "a keys"), _int64s(bkeys, "b keys")
    avals, bvals = _values(avals, len(akeys), "a values"), _values(bvals, len(bkeys), "b values")
    if avals.dtype != bvals.dtype:
        raise TypeError(f"a values are {avals.dtype} but b values are {bvals.dtype}")
    if (acnt is None) != (bcnt is None):
        raise ValueError("counts must be given for both sides or neither")
    counts = acnt is not None
    if counts:
        acnt, bcnt = _int64s(acnt, "a counts"), _int64s(bcnt, "b counts")
        if len(acnt) != len(akeys) or len(bcnt) != len(bkeys):
            raise ValueError("counts and keys differ in length")
    else:
        acnt = bcnt = _NONE
    aseen = _NONE if aseen is None else _int64s(aseen, "a seen")
    if len(aseen) and len(aseen) != len(akeys):
        raise ValueError("seen and keys differ in length")
    rng = dense_range([akeys, bkeys], len(akeys) + len(bkeys))
    if rng is None:
        return None
    lo, size = rng
    out = _outputs(min(len(akeys) + len(bkeys), size), avals.dtype, counts, seen, touched)
    plan = _plan(lo, size)
    a, aoffs = _by_bucket((akeys, avals, acnt, aseen), plan)
    b, boffs = _by_bucket((bkeys, bvals, bcnt, _NONE), plan)
    ng = _merge_buckets_worker(a, aoffs, b[:3], boffs, np.int64(plan[0]), np.int64(plan[1]), _OP_CODE[op],
                               _zero(avals.dtype), (np.int64(now), np.int64(ttl)),
                               _slots(plan[3], avals.dtype, counts, seen), out)
    if ng < 0:
        return None
    return tuple(o[:ng] if len(o) else None for o in out[:4]) + ((out[4][:ng],) if touched else ())


def warm() -> None:
    """Compile the merges for int64 and float64 values (see ``runnel.kernels.warm``)."""
    keys = np.array([1, 3], np.int64)
    for dt in (np.int64, np.float64):
        merge_state(np.array([0, -1]), np.zeros(1, dt), np.zeros(1, np.int64), np.ones(2, dt), "sum", 1, 1)
        vals = np.ones(2, dt)
        for counts in (False, True):
            for parts in (1, 2):
                sorted_reduce(keys, vals, "sum", counts=counts, parts=parts)
        for cnt, seen in ((None, None), (keys, None), (None, keys), (keys, keys)):
            merge_dense((keys, vals, cnt, seen), (keys, vals, cnt), "sum", 1, 1, seen=seen is not None)
        for parts in (2, 3):  # power of two (mask) or not (modulo)
            split_rows(keys, vals, parts)
        # the scatter of inputs in too many runs (tiny inputs never take it)
        ro = _readonly(keys)
        for cnt in (_NONE, ro):
            rows = (ro, _readonly(vals), cnt, cnt)
            _bucket_counts_worker(ro, np.int64(0), np.int64(1), np.zeros(2, np.int64))
            _scatter_worker(rows, np.int64(0), np.int64(1), np.array([0, 1], np.int64),
                            tuple(np.empty(len(c), c.dtype) for c in rows))
