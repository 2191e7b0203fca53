"""Event-window kernels against plain-Python references (``reference.windows_holding``, ``reference.sessions``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runnel.kernels.event_windows import assign_windows, merge_intervals, window_pairs

import reference as R

times = st.lists(st.integers(-10**12, 10**12) | st.integers(-50, 50), max_size=60)


@settings(max_examples=200, deadline=None)
@given(ts=times, size=st.integers(1, 20), slide=st.integers(1, 20), offset=st.integers(-30, 30))
def test_assign_windows_gives_every_window_holding_each_time(ts, size, slide, offset):
    # slide > size too: a time between two windows is in none
    rows, starts = assign_windows(np.array(ts, dtype=np.int64), size, slide, offset)
    want = [(i, s) for i, t in enumerate(ts) for s in R.windows_holding(t, size, slide, offset)]
    assert list(zip(rows.tolist(), starts.tolist())) == want


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 5), st.integers(-10**9, 10**9) | st.integers(-50, 50)), max_size=60),
       size=st.integers(1, 20), slide=st.integers(1, 20), offset=st.integers(-30, 30))
def test_window_pairs_number_each_key_and_window_once(rows, size, slide, offset):
    codes = np.array([r[0] for r in rows], dtype=np.int64)
    ts = np.array([r[1] for r in rows], dtype=np.int64)
    at, starts, pairs = window_pairs(codes, ts, size, slide, offset)
    want_at, want_starts = assign_windows(ts, size, slide, offset)
    assert at.tolist() == want_at.tolist() and starts.tolist() == want_starts.tolist()
    ids: dict = {}
    for c, s, p in zip(codes[at].tolist(), starts.tolist(), pairs.tolist()):
        assert ids.setdefault((c, s), p) == p                 # one id per (key, window) ...
    assert len(set(ids.values())) == len(ids)                 # ... and a different one for each
    assert (pairs >= 0).all()


def test_window_pairs_refuse_ids_beyond_int64():
    with pytest.raises(OverflowError, match="window slots"):
        window_pairs(np.array([0, 2**40]), np.array([0, 2**40]), 1, 1)


def test_tumbling_windows_give_one_window_per_row_and_read_only_input():
    ts = np.array([0, 9, 10, -1, -10, -11], dtype=np.int64)
    ts.flags.writeable = False
    rows, starts = assign_windows(ts, 10, 10)
    assert rows.tolist() == list(range(6)) and starts.tolist() == [0, 0, 10, -10, -10, -20]


def test_assign_windows_rejects_empty_windows():
    with pytest.raises(ValueError, match="positive"):
        assign_windows(np.array([1]), 0, 1)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.integers(-20, 20), st.integers(1, 6)), max_size=30))
def test_merge_intervals_equals_repeated_pairwise_union(rows):
    codes = np.array([r[0] for r in rows], dtype=np.int64)
    starts = np.array([r[1] for r in rows], dtype=np.int64)
    ends = starts + np.array([r[2] for r in rows], dtype=np.int64)
    ids, n = merge_intervals(codes, starts, ends)
    got = {}
    for i, g in enumerate(ids.tolist()):
        got.setdefault(g, set()).add(i)
    assert sorted(map(sorted, got.values())) == sorted(map(sorted, R.sessions(codes.tolist(), starts.tolist(),
                                                                                ends.tolist())))
    assert n == len(got) and (sorted(got) == list(range(n)))


def test_touching_intervals_are_two_sessions():
    ids, n = merge_intervals(np.zeros(2, np.int64), np.array([0, 5]), np.array([5, 9]))
    assert n == 2 and ids.tolist() == [0, 1]
