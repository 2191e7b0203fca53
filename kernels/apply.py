"""Apply a compiled user function to every value of a column: ``map`` and ``filter``.

The engine compiles a user's ``lambda x: x * 2`` with Numba (when it can)
and hands the dispatcher here; the loop below then runs it over a NumPy
column without creating a Python object per value.
"""

from __future__ import annotations

import numpy as np

from ._config import is_jitted, jit

__all__ = ["map_values", "filter_mask"]


# Not cached, like ``aggregate._fold_worker``: a dispatcher argument is typed by
# the identity of the user's function, so a disk cache would only grow.
@jit(cache=False)
def _map_worker(values, out, fn):
    for i in range(values.shape[0]):
        out[i] = fn(values[i])


@jit(cache=False)
def _mask_worker(values, out, fn):
    for i in range(values.shape[0]):
        out[i] = True if fn(values[i]) else False


def _check(values, fn):
    if not is_jitted(fn):
        raise TypeError(f"fn must be a Numba-compiled function, got {getattr(fn, '__qualname__', type(fn).__name__)}")
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype.kind not in "biuf":
        raise TypeError(f"values must be a 1-D numeric or bool array, got {values.dtype} with shape {values.shape}")
    return values


def map_values(values, fn, out_dtype):
    """``out[i] = fn(values[i])`` for a Numba-compiled unary ``fn``.

    Parameters
    ----------
    values : numpy.ndarray
        1-D bool, int or float array.
    fn : numba dispatcher
        Compiled for ``values``' element type.
    out_dtype : numpy dtype
        Dtype of ``fn``'s results.

    Examples
    --------
    >>> import numba, numpy as np
    >>> map_values(np.array([1, 2, 3]), numba.njit(lambda x: x * 10), np.int64).tolist()
    [10, 20, 30]
    """
    values = _check(values, fn)
    out = np.empty(values.shape[0], dtype=out_dtype)
    _map_worker(values, out, fn)
    return out


def filter_mask(values, fn):
    """``mask[i] = bool(fn(values[i]))`` for a Numba-compiled predicate ``fn``.

    Examples
    --------
    >>> import numba, numpy as np
    >>> filter_mask(np.array([1, 2, 3, 4]), numba.njit(lambda x: x % 2 == 0)).tolist()
    [False, True, False, True]
    """
    values = _check(values, fn)
    out = np.empty(values.shape[0], dtype=np.bool_)
    _mask_worker(values, out, fn)
    return out
