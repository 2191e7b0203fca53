"""Hash join on factorized codes.

The kernel is key-type agnostic: the caller factorizes the left keys
concatenated with the right keys (so a code means the same key on both
sides, numbered by first appearance over left then right), splits the codes
back, and asks for the row pairs::

    codes, first = factorize_int64(np.concatenate([lkeys, rkeys]))
    li, ri = join_indices(codes[:nl], codes[nl:], len(first), "inner")

Output order is PySpark's cogroup-then-product order: groups in code order;
within a group, for each left row (arrival order), each right row (arrival
order). Unmatched rows of an outer side appear at their group's position
with -1 on the missing side.
"""

from __future__ import annotations

import numpy as np

from ._config import jit
from .aggregate import _check_codes
from .partition import scatter_order

__all__ = ["JOIN_HOWS", "join_indices", "cogroup_segments"]

#: Join types accepted by :func:`join_indices`.
JOIN_HOWS = ("inner", "left", "right", "full")


@jit
def _join_size(lb, rb, keep_left, keep_right):
    # First pass sizes the output exactly so the fill pass writes into arrays
    # allocated once (outputs can be far larger than the inputs).
    total = 0
    for c in range(lb.shape[0] - 1):
        nl = lb[c + 1] - lb[c]
        nr = rb[c + 1] - rb[c]
        if nl > 0 and nr > 0:
            total += nl * nr
        elif nl > 0 and keep_left:
            total += nl
        elif nr > 0 and keep_right:
            total += nr
    return total


@jit
def _join_fill(lorder, lb, rorder, rb, keep_left, keep_right, li, ri):
    k = 0
    for c in range(lb.shape[0] - 1):
        l0, l1 = lb[c], lb[c + 1]
        r0, r1 = rb[c], rb[c + 1]
        if l1 > l0 and r1 > r0:
            for a in range(l0, l1):
                left_row = lorder[a]
                for b in range(r0, r1):
                    li[k] = left_row
                    ri[k] = rorder[b]
                    k += 1
        elif l1 > l0 and keep_left:
            for a in range(l0, l1):
                li[k] = lorder[a]
                ri[k] = -1
                k += 1
        elif r1 > r0 and keep_right:
            for b in range(r0, r1):
                li[k] = -1
                ri[k] = rorder[b]
                k += 1


def cogroup_segments(left_codes, right_codes, ngroups):
    """Group both sides' rows by code.

    Parameters
    ----------
    left_codes, right_codes : numpy.ndarray
        int64 codes in ``[0, ngroups)`` from one shared factorization.
    ngroups : int
        Number of codes.

    Returns
    -------
    left_order, left_bounds, right_order, right_bounds : numpy.ndarray
        As :func:`runnel.kernels.scatter_order` for each side: rows of group
        ``c`` are ``left_order[left_bounds[c]:left_bounds[c + 1]]`` (and
        likewise on the right), in arrival order.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import cogroup_segments
    >>> lo, lb, ro, rb = cogroup_segments(np.array([1, 0]), np.array([1]), 2)
    >>> lo.tolist(), lb.tolist(), ro.tolist(), rb.tolist()
    ([1, 0], [0, 1, 2], [0], [0, 0, 1])
    """
    left_codes, ngroups = _check_codes(left_codes, ngroups)
    right_codes, _ = _check_codes(right_codes, ngroups)
    lorder, lb = scatter_order(left_codes, ngroups)
    rorder, rb = scatter_order(right_codes, ngroups)
    return lorder, lb, rorder, rb


def join_indices(left_codes, right_codes, ngroups, how="inner"):
    """Row index pairs of a hash join on factorized codes.

    Parameters
    ----------
    left_codes, right_codes : numpy.ndarray
        int64 codes in ``[0, ngroups)`` from one shared factorization of
        the left keys followed by the right keys.
    ngroups : int
        Number of codes.
    how : {"inner", "left", "right", "full"}
        Which unmatched rows to keep.

    Returns
    -------
    left_idx, right_idx : numpy.ndarray
        int64, equal length; ``-1`` marks the missing side of an outer row.
        Groups in code order; within a group, each left row (arrival order)
        paired with each right row (arrival order).

    Raises
    ------
    ValueError
        For an unknown ``how`` or a code outside ``[0, ngroups)``.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import join_indices
    >>> li, ri = join_indices(np.array([0, 1]), np.array([1, 2, 1]), 3, "full")
    >>> li.tolist(), ri.tolist()
    ([0, 1, 1, -1], [-1, 0, 2, 1])
    """
    if how not in JOIN_HOWS:
        raise ValueError(f"unknown join how={how!r}; expected one of {', '.join(JOIN_HOWS)}")
    lorder, lb, rorder, rb = cogroup_segments(left_codes, right_codes, ngroups)
    keep_left = how in ("left", "full")
    keep_right = how in ("right", "full")
    size = _join_size(lb, rb, keep_left, keep_right)
    li = np.empty(size, dtype=np.int64)
    ri = np.empty(size, dtype=np.int64)
    _join_fill(lorder, lb, rorder, rb, keep_left, keep_right, li, ri)
    return li, ri
