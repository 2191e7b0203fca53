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
from .hashing import hash_int_scalar

__all__ = ["MERGE_OPS", "match_positions", "merge_state", "sorted_reduce", "merge_dense", "dense_range"]

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

#: A key range at most this many times the rows (plus a constant) is addressed directly.
DENSE_FACTOR = 4
DENSE_SLACK = 1 << 16


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
def _dense_fold_worker(keys, values, lo, op, slots):
    # slots = (acc, flag, counts); zero-length counts: not counted. Rows in arrival order.
    acc, flag, cnt = slots
    want_cnt = cnt.shape[0] > 0
    ng = 0
    for i in range(keys.shape[0]):
        j = keys[i] - lo
        if flag[j] == 0:
            flag[j] = 1
            acc[j] = values[i]
            ng += 1
        else:
            acc[j] = _fold(acc[j], values[i], op)
        if want_cnt:
            cnt[j] += 1
    return ng


@jit
def _dense_merge_worker(a, b, lo, op, clock, slots):
    # a = (keys, values, counts, seen) the table, b = (keys, values, counts) the partials;
    # slots = (acc, flag, counts, seen); zero-length arrays: column absent. b's rows fold in
    # order first (a key may repeat: the partials of several map tasks), then the table's
    # value goes first in each fold. A key repeated in a returns -1 (the caller merges by
    # hash). flag 2: b's key, 3: b's and a's, 1: a's only.
    akeys, avals, acnt, aseen = a
    bkeys, bvals, bcnt = b
    acc, flag, cnt, seen = slots
    now, ttl = clock
    has_cnt = cnt.shape[0] > 0
    has_aseen = aseen.shape[0] > 0
    put_seen = seen.shape[0] > 0
    ng = 0
    for j in range(bkeys.shape[0]):
        s = bkeys[j] - lo
        if flag[s] == 0:
            flag[s] = 2
            acc[s] = bvals[j]
            if has_cnt:
                cnt[s] = bcnt[j]
            if put_seen:
                seen[s] = now
            ng += 1
        else:
            acc[s] = _fold(acc[s], bvals[j], op)
            if has_cnt:
                cnt[s] += bcnt[j]
    for i in range(akeys.shape[0]):
        s = akeys[i] - lo
        f = flag[s]
        if f == 2:  # the table's value first, as the fold over (its rows, then the new ones)
            acc[s] = _fold(avals[i], acc[s], op)
            if has_cnt:
                cnt[s] += acnt[i]
            flag[s] = 3
        elif f != 0:
            return -1
        else:
            t = aseen[i] if has_aseen else now
            if ttl <= 0 or now - t < ttl:  # untouched: kept unless expired
                flag[s] = 1
                acc[s] = avals[i]
                if has_cnt:
                    cnt[s] = acnt[i]
                if put_seen:
                    seen[s] = t
                ng += 1
    return ng


@jit
def _dense_compact_worker(lo, slots, out):
    # Scan the slots in key order. Branch-free: every slot is written at row g and g
    # advances only past filled slots, so ``out`` has one spare row; with 1M slots
    # 2.5 ms vs 7.6 ms for an ``if flag[j]`` branch the CPU cannot predict.
    acc, flag, cnt, seen = slots
    okeys, ovals, ocnt, oseen = out
    has_cnt = ocnt.shape[0] > 0
    put_seen = oseen.shape[0] > 0
    g = 0
    for j in range(flag.shape[0]):
        okeys[g] = lo + j
        ovals[g] = acc[j]
        if has_cnt:
            ocnt[g] = cnt[j]
        if put_seen:
            oseen[g] = seen[j]
        g += flag[j] != 0


@jit
def _split_buckets_worker(table, nparts, ids, starts, out):
    # Scatter a compacted table (keys, values, counts) into the runs of its shuffle
    # partitions, hash_int64(key) % n as kernels.partition_ids, keeping key order in each
    # run. Fused instead of ids + scatter_order + take per column, and a power-of-two n
    # masks instead of dividing: W4 map task (393k partials, 2 partitions) ~8 ms -> ~3 ms.
    keys, vals, cnt = table
    okeys, ovals, ocnt = out
    has_cnt = ocnt.shape[0] > 0
    n = np.uint64(nparts)
    mask = n - np.uint64(1)
    pow2 = (n & mask) == 0
    for i in range(keys.shape[0]):
        h = hash_int_scalar(keys[i])
        p = np.int64(h & mask) if pow2 else np.int64(h % n)
        ids[i] = p
        starts[p + 1] += 1
    for p in range(nparts):
        starts[p + 1] += starts[p]
    fill = starts[:-1].copy()
    for i in range(keys.shape[0]):
        p = ids[i]
        g = fill[p]
        okeys[g] = keys[i]
        ovals[g] = vals[i]
        if has_cnt:
            ocnt[g] = cnt[i]
        fill[p] = g + 1


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
    lo = min(int(k.min()) for k in present)
    hi = max(int(k.max()) for k in present)
    size = hi - lo + 1
    return (lo, size) if size <= DENSE_FACTOR * rows + DENSE_SLACK else None


def _compact(lo, slots, ng, dtype, counts, seen):
    out = (np.empty(ng + 1, np.int64), np.empty(ng + 1, dtype), np.empty(ng + 1 if counts else 0, np.int64),
           np.empty(ng + 1 if seen else 0, np.int64))
    _dense_compact_worker(np.int64(lo), slots, out)
    return tuple(o[:ng] if len(o) else None for o in out)


def sorted_reduce(keys, values, op, counts=False, parts=1):
    """Reduce ``values`` by int64 key, unique keys in increasing order — or None.

    Each key's values fold in arrival order (as ``aggregate.reduce_codes``:
    ``sum`` adds left to right, ``min``/``max`` follow Python's, ``last``
    keeps the last). Direct addressing over the key range: None when the
    range exceeds ``DENSE_FACTOR`` times the rows plus ``DENSE_SLACK``
    (the caller then groups by hash).

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
    if isinstance(parts, (bool, np.bool_)) or not isinstance(parts, (int, np.integer)) or parts < 1:
        raise ValueError(f"parts must be an int >= 1, got {parts!r}")
    keys = _int64s(keys, "keys")
    values = _values(values, len(keys), "values")
    rng = dense_range([keys], len(keys))
    if rng is None:
        return None
    lo, size = rng
    slots = (np.empty(size, values.dtype), np.zeros(size, np.uint8),
             np.zeros(size if counts else 0, np.int64), np.empty(0, np.int64))
    ng = _dense_fold_worker(keys, values, np.int64(lo), _OP_CODE[op], slots[:3])
    k, v, c, _ = _compact(lo, slots, ng, values.dtype, counts, False)
    if parts == 1:
        return k, v, c
    ids = np.empty(ng, np.int64)
    starts = np.zeros(parts + 1, np.int64)
    out = (np.empty(ng, np.int64), np.empty(ng, values.dtype), np.empty(ng if counts else 0, np.int64))
    _split_buckets_worker((k, v, c if counts else out[2]), parts, ids, starts, out)
    return [tuple(o[a:b] if counts or i < 2 else None for i, o in enumerate(out))
            for a, b in zip(starts[:-1].tolist(), starts[1:].tolist())]


def merge_dense(a, b, op, now=0, ttl=0, seen=False):
    """Merge partials into a table of int64 keys by direct addressing — or None.

    The result is sorted by key whatever the order of the inputs (sorted
    inputs merge faster: their slots are visited in order).

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

    Returns
    -------
    (keys, values, counts or None, seen or None) or None
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
    # zero-length slot arrays: column absent (writeable, like the others: one compiled signature)
    slots = (np.empty(size, avals.dtype), np.zeros(size, np.uint8), np.empty(size if counts else 0, np.int64),
             np.empty(size if seen else 0, np.int64))
    ng = _dense_merge_worker((akeys, avals, acnt, aseen), (bkeys, bvals, bcnt), np.int64(lo), _OP_CODE[op],
                             (np.int64(now), np.int64(ttl)), slots)
    if ng < 0:
        return None
    return _compact(lo, slots, ng, avals.dtype, counts, seen)


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
