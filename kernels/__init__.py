"""runnel.kernels: pure Numba/NumPy kernels on arrays (no engine imports).

Families: :mod:`.hashing` (stable 64-bit hashes), :mod:`.partition`
(counting-sort scatter), :mod:`.aggregate` (factorize + reduce),
:mod:`.join` (hash join on codes), :mod:`.ewm` (exponentially weighted
moments carried per group), :mod:`.event_windows` (event-time window
assignment, session merge), :mod:`.running` (cumulative and rolling sums per
group). Compile options live in :mod:`._config`.

Kernels compile lazily, on first call, for the types they are called with
(see :mod:`._config`). Call :func:`warm` in the driver before starting a
process pool: it compiles every kernel for every supported input type once,
so Numba's on-disk cache is complete and workers only read it (concurrent
first writes to the cache crash pools: numba#4807, numba#10128).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .aggregate import (
    REDUCE_OPS,
    factorize_arrow,
    factorize_binary,
    factorize_float64,
    factorize_int64,
    group_segments,
    reduce_codes,
    reduce_codes_with,
    reduce_int64_dense,
    reduce_int64_dense_partitioned,
    reduce_int64_sorted,
)
from ._config import REPORT as _REPORT
from .apply import filter_mask, map_values
from .event_windows import assign_windows, merge_intervals, window_pairs
from .event_windows import warm as _warm_event_windows
from .ewm import EWM_OPS, ewm_state, ewm_update
from .ewm import warm as _warm_ewm
from .hashing import (
    NAN_HASH,
    NULL_HASH,
    combine_hashes,
    hash_arrow,
    hash_binary,
    hash_float64,
    hash_int64,
)
from .join import JOIN_HOWS, cogroup_segments, join_indices
from .partition import partition_ids, scatter_order
from .running import group_cumsum, segment_rolling_sum
from .running import warm as _warm_running
from .state import warm as _warm_state
from .window import warm as _warm_window

__all__ = [
    "NAN_HASH",
    "NULL_HASH",
    "REDUCE_OPS",
    "JOIN_HOWS",
    "hash_int64",
    "hash_float64",
    "hash_binary",
    "hash_arrow",
    "combine_hashes",
    "partition_ids",
    "scatter_order",
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
    "join_indices",
    "cogroup_segments",
    "map_values",
    "filter_mask",
    "EWM_OPS",
    "ewm_state",
    "ewm_update",
    "assign_windows",
    "merge_intervals",
    "window_pairs",
    "group_cumsum",
    "segment_rolling_sum",
    "warm",
]


def _writeable_and_readonly(a):
    # Numba compiles a separate signature for read-only arrays, and blocks
    # mapped from Arrow IPC / shared memory arrive read-only: warm both.
    ro = a.copy()
    ro.flags.writeable = False
    return (a, ro)


def warm():
    """Compile every kernel once for every supported input type.

    Runs each public kernel on tiny inputs: int64/float64/bool values,
    int32 and int64 string offsets, with and without nulls, on writeable
    and read-only arrays. With ``cache=True`` the machine code lands in
    Numba's on-disk cache, so worker processes started afterwards load it
    instead of compiling (and never race to write it).
    ``reduce_codes_with`` is specialised per user function and not cached;
    it cannot be warmed ahead of time. What compiles (not what loads from
    the cache) is reported on stderr as one line,
    ``runnel: compiling kernels (first run only) ...... 186 compiled in 41.0 s``.

    Examples
    --------
    >>> from runnel.kernels import warm
    >>> warm()
    """
    with _REPORT.summary():
        _warm_all()


def _warm_all():
    rw = _writeable_and_readonly
    for ints in rw(np.array([3, -1, 3], dtype=np.int64)):
        hash_int64(ints)
        factorize_int64(ints)  # dense path
    for ints in rw(np.array([0, 2**40], dtype=np.int64)):
        factorize_int64(ints)  # hash-table path
    for floats in rw(np.array([1.5, np.nan, -0.0], dtype=np.float64)):
        hash_float64(floats)
        factorize_float64(floats)
    hashes = rw(hash_int64(np.array([1, 2, 3])))
    for h1 in hashes:
        partition_ids(h1, 2)
        for h2 in hashes:  # one signature per read-only combination
            combine_hashes(h1, h2)
    for codes in rw(np.array([0, 1, 0], dtype=np.int64)):
        scatter_order(codes, 2)
        group_segments(codes, 2)
        for how in JOIN_HOWS:
            join_indices(codes, codes, 2, how)
        for values in (np.array([1, 2, 3], dtype=np.int64),
                       np.array([1.0, 2.0, 3.0]),
                       np.array([True, False, True])):
            for v in rw(values):
                for op in REDUCE_OPS:
                    reduce_codes(codes, 2, v, op)
                for op in ("sum", "min", "max"):
                    reduce_int64_dense(codes, v, op)
                    for n in (2, 3):  # power of two (mask) and not (modulo): one compiled kernel
                        reduce_int64_dense_partitioned(codes, v, op, n)
                        reduce_int64_sorted([codes], [v], op, n)
        reduce_int64_dense(codes, None, "count")
        reduce_int64_dense_partitioned(codes, None, "count", 2)
        reduce_int64_sorted([codes], None, "count", 2)
        reduce_codes(codes, 2, None, "count")
    strings = pa.array(["a", None, "bcdefghijk"])
    for arr in (strings, strings.cast(pa.large_string()),
                pa.array(["a", "b"]), pa.array(["a", "b"], pa.large_string())):
        hash_arrow(arr)  # read-only Arrow buffers, with/without validity
        factorize_arrow(arr)
    for off_dtype in (np.int32, np.int64):
        offsets = np.array([0, 1, 1], dtype=off_dtype)
        data = np.frombuffer(b"ab", dtype=np.uint8).copy()
        for validity in (None, np.array([True, False])):
            hash_binary(offsets, data, validity)
            factorize_binary(offsets, data, validity)
    _warm_state()
    _warm_window()
    _warm_ewm()
    _warm_event_windows()
    _warm_running()
