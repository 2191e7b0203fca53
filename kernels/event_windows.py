"""Event-time window kernels: window assignment and session merging over int64 event times.

Event times reach these kernels as int64 in the column's own unit (a
``datetime64[ms]`` column's int64 view, or an int column as it is); sizes,
slides, offsets and gaps come in the same unit.

Tumbling and hopping windows (``assign_windows``): the windows holding a
time ``ts`` are ``[s, s + size)`` for every start ``s = offset + k * slide``
with ``s <= ts < s + size``. A row of a hopping window of size 10 and slide 5
lands in two windows; the kernel writes one (row, start) pair per window, so
the engine aggregates the pairs as rows keyed by (key, start)::

    size 10, slide 5      ts = 12
    ... [0 ....... 10)
              [5 ....... 15)     <- holds 12
                   [10 ...... 20) <- holds 12
                        [15 ...... 25)

Sessions (``merge_intervals``): a row is the interval ``[ts, ts + gap)``, an
open session the interval ``[start, end)`` of its rows; intervals of one key
that overlap belong to one session. One sweep over the intervals sorted by
(key, start) gives each its session; the same kernel merges the sessions a
batch's rows bridge, so sessions are right across batches::

    key a:  [1 ---- 4)                 rows 1, 3 (gap 3): 3 < 4 -> one session [1, 6)
                [3 ---- 6)
                             [9 -- 12)  row 9: 9 >= 6       -> a new session [9, 12)
    a later batch's row 7:      [7 -- 10)  7 >= 6 but 9 < 10: it bridges into [9, 12),
                                           sessions [1, 6) and [7, 12)

(``start < end reached so far`` merges: a row exactly ``gap`` after the last one
starts a new session, as "a session ends after ``gap`` without rows" says.)
"""

from __future__ import annotations

import numpy as np

from ._config import jit

__all__ = ["assign_windows", "window_pairs", "merge_intervals", "warm"]


@jit
def _span(t, size, slide, offset):
    # the first and the last start of the windows holding t; first > last when none does (slide > size
    # leaves gaps between windows). Floor division: right for negative times too.
    last = ((t - offset) // slide) * slide + offset
    if last + size <= t:
        return last + slide, last
    first = last
    while first - slide + size > t:
        first -= slide
    return first, last


@jit
def _count_windows_worker(ts, size, slide, offset):
    # (row, window) pairs, and the earliest and latest window start of any (a row's windows are contiguous)
    n = 0
    lo = np.int64(0)
    hi = np.int64(0)
    for i in range(ts.shape[0]):
        first, last = _span(ts[i], size, slide, offset)
        if first > last:
            continue
        if n == 0 or first < lo:
            lo = first
        if n == 0 or last > hi:
            hi = last
        n += (last - first) // slide + 1
    return n, lo, hi


@jit
def _assign_windows_worker(ts, size, slide, offset, rows, starts, ids):
    # one (row, start) pair per window holding a row, earliest window first; with ``ids`` (codes, lo,
    # slots, out) also the pair's group id, code * slots + (start - lo) // slide
    codes, lo, slots, pairs = ids
    with_ids = codes.shape[0] > 0
    j = 0
    for i in range(ts.shape[0]):
        first, last = _span(ts[i], size, slide, offset)
        s = first
        while s <= last:
            rows[j] = i
            starts[j] = s
            if with_ids:
                pairs[j] = codes[i] * slots + (s - lo) // slide
            j += 1
            s += slide


_NO_IDS = (np.zeros(0, dtype=np.int64), np.int64(0), np.int64(0), np.zeros(0, dtype=np.int64))


def _checked(size, slide, offset, ts):
    size, slide, offset = int(size), int(slide), int(offset)
    if size <= 0 or slide <= 0:
        raise ValueError(f"window size and slide must be positive, got size {size} and slide {slide}")
    return size, slide, offset, np.ascontiguousarray(ts, dtype=np.int64)


def assign_windows(ts, size, slide, offset=0):
    """The tumbling (``slide == size``) or hopping windows holding each event time.

    Parameters
    ----------
    ts : numpy.ndarray
        int64 event times.
    size, slide, offset : int
        Window length, distance between window starts, and the start of one
        window (windows start at ``offset + k * slide``), in the unit of ``ts``.

    Returns
    -------
    rows, starts : numpy.ndarray
        int64: pair ``j`` says row ``rows[j]`` lies in the window starting at
        ``starts[j]``; rows in order, each row's windows in time order.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels.event_windows import assign_windows
    >>> rows, starts = assign_windows(np.array([12, 3], dtype=np.int64), 10, 5)
    >>> rows.tolist(), starts.tolist()
    ([0, 0, 1, 1], [5, 10, -5, 0])
    """
    size, slide, offset, ts = _checked(size, slide, offset, ts)
    n, _, _ = _count_windows_worker(ts, size, slide, offset)
    rows = np.empty(n, dtype=np.int64)
    starts = np.empty(n, dtype=np.int64)
    _assign_windows_worker(ts, size, slide, offset, rows, starts, _NO_IDS)
    return rows, starts


#: the largest pair id ``window_pairs`` makes (key codes x window slots must stay below it)
MAX_PAIR = 2**62


def window_pairs(codes, ts, size, slide, offset=0):
    """``assign_windows`` with a group id per (key, window) pair: the per-window aggregation's groups.

    The id is ``code * slots + (start - earliest start) // slide``, so a
    ``factorize_int64`` of the ids (dense: they span keys x window slots) gives
    the group codes without factorizing the window starts or combining codes.

    Parameters
    ----------
    codes : numpy.ndarray
        int64 key codes of the rows, in ``[0, ngroups)``.
    ts, size, slide, offset
        As :func:`assign_windows`.

    Returns
    -------
    rows, starts, pairs : numpy.ndarray
        int64, one entry per (row, window): as :func:`assign_windows`, and the pair's id.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels.event_windows import window_pairs
    >>> rows, starts, pairs = window_pairs(np.array([0, 1, 0]), np.array([3, 4, 12]), 10, 10)
    >>> rows.tolist(), starts.tolist(), pairs.tolist()
    ([0, 1, 2], [0, 0, 10], [0, 2, 1])
    """
    size, slide, offset, ts = _checked(size, slide, offset, ts)
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    if len(codes) != len(ts):
        raise ValueError(f"codes and ts must be equally long, got {len(codes)} and {len(ts)}")
    n, lo, hi = _count_windows_worker(ts, size, slide, offset)
    rows, starts, pairs = (np.empty(n, dtype=np.int64) for _ in range(3))
    if n == 0:
        return rows, starts, pairs
    slots = (hi - lo) // slide + 1
    if (int(codes.max()) + 1) * int(slots) > MAX_PAIR:
        raise OverflowError(f"{int(codes.max()) + 1} keys x {int(slots)} window slots do not fit an int64 id")
    _assign_windows_worker(ts, size, slide, offset, rows, starts, (codes, lo, np.int64(slots), pairs))
    return rows, starts, pairs


@jit
def _merge_intervals_worker(order, codes, starts, ends, out):
    # one sweep over the intervals sorted by (code, start): a new group when the key changes or an
    # interval starts at or after the end reached so far (written into out, a buffer of the caller's)
    g = -1
    prev = np.int64(0)
    end = np.int64(0)
    for j in range(order.shape[0]):
        i = order[j]
        if j == 0 or codes[i] != prev or starts[i] >= end:
            g += 1
            prev = codes[i]
            end = ends[i]
        elif ends[i] > end:
            end = ends[i]
        out[i] = g
    return g + 1


def merge_intervals(codes, starts, ends):
    """Merge the overlapping intervals of each key: a session id per interval.

    Parameters
    ----------
    codes : numpy.ndarray
        int64 key codes, one per interval.
    starts, ends : numpy.ndarray
        int64 interval bounds, ``[start, end)``, ``start < end``.

    Returns
    -------
    ids : numpy.ndarray
        int64 session of each interval, numbered ``0 .. n - 1`` in (key, start) order.
    n : int
        The number of sessions.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels.event_windows import merge_intervals
    >>> ids, n = merge_intervals(np.array([0, 0, 0, 1]), np.array([1, 9, 3, 2]), np.array([4, 12, 6, 5]))
    >>> ids.tolist(), n
    ([0, 1, 0, 2], 3)
    """
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if not (len(codes) == len(starts) == len(ends)):
        raise ValueError(f"codes, starts and ends must be equally long, got {len(codes)}, {len(starts)}, "
                         f"{len(ends)}")
    order = np.lexsort((starts, codes)).astype(np.int64)
    out = np.empty(len(codes), dtype=np.int64)
    n = _merge_intervals_worker(order, codes, starts, ends, out) if len(codes) else 0
    return out, int(n)


def warm() -> None:
    """Compile the event-window kernels (writeable and read-only int64 inputs)."""
    ts = np.array([3, 12], dtype=np.int64)
    ro = ts.copy()
    ro.flags.writeable = False
    for a in (ts, ro):
        assign_windows(a, 10, 5)
        window_pairs(np.array([0, 1], dtype=np.int64), a, 10, 5)
        window_pairs(a - a, a, 10, 5)
        merge_intervals(a, a, a + 1)
