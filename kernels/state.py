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

__all__ = ["MERGE_OPS", "match_positions", "merge_state"]

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


def warm() -> None:
    """Compile the merge for int64 and float64 values (see ``runnel.kernels.warm``)."""
    for dt in (np.int64, np.float64):
        merge_state(np.array([0, -1]), np.zeros(1, dt), np.zeros(1, np.int64), np.ones(2, dt), "sum", 1, 1)
