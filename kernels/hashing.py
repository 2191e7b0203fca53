"""Stable 64-bit hashes of int, float and string/binary keys.

The same key hashes to the same ``uint64`` in every process and every run:
the functions below depend on nothing but the key's value (never Python's
salted ``hash()``), so a key lands in the same shuffle partition on every
worker and after every restart. The exact values are part of runnel's
on-disk contract (state tables are partitioned by them); changing a constant
here re-partitions every checkpoint, so ``tests/kernels/test_hashing.py``
pins a few of them.

Keys that Python treats as the same dict key hash equal: ``1``, ``1.0`` and
``True``; ``0.0`` and ``-0.0``. All NaNs hash equal, and all nulls hash to
:data:`NULL_HASH`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ._config import jit

__all__ = [
    "NULL_HASH",
    "NAN_HASH",
    "hash_int64",
    "hash_float64",
    "hash_binary",
    "hash_arrow",
    "combine_hashes",
    "arrow_binary_layout",
]

# Odd 64-bit constants with well-mixed bits (golden ratio and two primes
# from the common 64-bit hashing literature).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x85EBCA77C2B2AE63)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_FLOAT_SALT = np.uint64(0x3C6EF372FE94F82B)
_BYTES_SEED = np.uint64(0x27D4EB2F165667C5)

#: Hash of a null (None) key, in every column type.
NULL_HASH = np.uint64(0x2545F4914F6CDD1D)
#: Hash of every NaN, whatever its payload or sign bit.
NAN_HASH = np.uint64(0x7FF8DEADBEEF0001)

_S6 = np.uint64(6)
_S2 = np.uint64(2)
_U1, _U2, _U3, _U4, _U5, _U6, _U7 = (np.uint64(k) for k in range(1, 8))


@jit
def mix64(x):
    """splitmix64's finaliser: a bijection on uint64 with full avalanche."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@jit
def hash_int_scalar(x):
    """Hash of one int64 (the building block other kernels inline)."""
    # Adding the golden gamma first keeps 0 from hashing to 0.
    return mix64(np.uint64(x) + _GOLDEN)


@jit
def hash_float_scalar(x, bits):
    """Hash of one float64 ``x`` whose IEEE bit pattern is ``bits``."""
    if x != x:
        return NAN_HASH
    # Integral floats in int64 range hash as that int so that 1.0 and 1
    # co-partition (they are the same Python dict key). -0.0 == 0 lands here
    # too. The upper bound is exclusive: 2.0**63 does not fit in int64.
    if -9.223372036854775808e18 <= x < 9.223372036854775808e18 and x == np.floor(x):
        return hash_int_scalar(np.int64(x))
    return mix64(bits ^ _FLOAT_SALT)


@jit
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@jit
def _round(h, w):
    k = _rotl(w * _P2, 31) * _P1
    h ^= k
    return _rotl(h, 27) * _P1 + _P3


@jit
def _load8(data, i):
    # Little-endian 8-byte word from single bytes: Arrow string offsets are
    # unaligned, and LLVM can fold this pattern into one unaligned load. The
    # index is made unsigned so Numba emits no negative-index wraparound on
    # each of the 8 reads (presumably what blocked the fold): a loop doing
    # only this load at 1M W1 word offsets took 4.4 ms with the int64 index
    # vs 1.2 ms with the uint64 one (thread CPU time, 2-core dev box).
    i = np.uint64(i)
    return (
        np.uint64(data[i])
        | (np.uint64(data[i + _U1]) << np.uint64(8))
        | (np.uint64(data[i + _U2]) << np.uint64(16))
        | (np.uint64(data[i + _U3]) << np.uint64(24))
        | (np.uint64(data[i + _U4]) << np.uint64(32))
        | (np.uint64(data[i + _U5]) << np.uint64(40))
        | (np.uint64(data[i + _U6]) << np.uint64(48))
        | (np.uint64(data[i + _U7]) << np.uint64(56))
    )


@jit
def _low_bytes_mask(k):
    # The low ``k`` bytes set, 0 <= k <= 8, without a branch; two half
    # shifts keep every shift count below 64 (k = 8 wraps 1 << 64 to 0).
    half = np.uint64(4 * k)
    return ((np.uint64(1) << half) << half) - np.uint64(1)


@jit
def _word(data, i, k):
    """``data[i:i + k]`` (0 <= k <= 8) zero-padded to a little-endian word."""
    if i + 8 <= data.shape[0]:
        # Load a whole word and mask it. Only the last few strings of a
        # buffer (the last 7 bytes) take the byte loop below.
        return _load8(data, i) & _low_bytes_mask(k)
    w = np.uint64(0)
    for j in range(k):
        w |= np.uint64(data[i + j]) << np.uint64(8 * j)
    return w


@jit
def hash_short(w0, w1, n):
    """:func:`hash_bytes` of a string of ``n <= 16`` bytes given its two words.

    Same value as the word loop in :func:`hash_bytes` (0, 1 or 2 rounds), but
    both rounds are always computed and the result is selected, so the cost
    does not depend on the length. Measured on 1M W1 words (2-10 bytes),
    both with the unsigned loads: 7.8 ms this way vs 12.1 ms for the word
    loop with a masked tail (30 ms for the loop before this change).
    """
    h0 = _BYTES_SEED ^ (np.uint64(n) * _P1)
    h1 = _round(h0, w0)
    h2 = _round(h1, w1)
    return mix64(h2 if n > 8 else (h1 if n > 0 else h0))


@jit
def hash_bytes(data, start, end):
    """Hash of ``data[start:end]`` (uint8) as one 64-bit value.

    Defined as: seed the state with the length, run one round per 8-byte
    little-endian word, the last word zero-padded (the seeded length keeps
    "a" and "a\0" apart), then mix. The row loops hash strings of at most
    16 bytes through :func:`hash_short` instead (same values).
    """
    n = end - start
    h = _BYTES_SEED ^ (np.uint64(n) * _P1)
    i = start
    while i + 8 <= end:
        h = _round(h, _load8(data, i))
        i += 8
    if i < end:
        h = _round(h, _word(data, i, end - i))
    return mix64(h)


@jit
def _hash_int64_worker(a, out):
    for i in range(a.shape[0]):
        out[i] = hash_int_scalar(a[i])


@jit
def _hash_float64_worker(a, bits, out):
    for i in range(a.shape[0]):
        out[i] = hash_float_scalar(a[i], bits[i])


@jit
def _hash_binary_worker(offsets, data, validity, has_validity, out):
    # ``validity`` is a zero-length array when ``has_validity`` is False: one
    # compiled signature instead of a second one for ``None``.
    ndata = data.shape[0]
    for i in range(out.shape[0]):
        if has_validity and not validity[i]:
            out[i] = NULL_HASH
            continue
        start = offsets[i]
        end = offsets[i + 1]
        # Numba does not bounds-check: a corrupt offsets buffer must raise,
        # not read foreign memory. Two well-predicted compares per row.
        if start < 0 or end < start or end > ndata:
            raise ValueError("offsets are not non-decreasing within the data buffer")
        n = end - start
        if n <= 16 and start + 16 <= ndata:
            # Short strings with 16 readable bytes: one well-predicted branch,
            # two masked loads, no loop. Written out here rather than inside
            # hash_bytes: with this fast path inside hash_bytes, a row loop
            # calling hash_bytes took 26 ms per 1M W1 words vs 7.8 ms (LLVM
            # apparently does not inline a callee holding loops); likewise a
            # helper returning the (w0, w1) tuple cost 26 ms vs 7.5 ms.
            out[i] = hash_short(_load8(data, start) & _low_bytes_mask(min(n, 8)),
                                _load8(data, start + 8) & _low_bytes_mask(max(n - 8, 0)), n)
        else:
            out[i] = hash_bytes(data, start, end)


@jit
def _combine_worker(h1, h2, out):
    for i in range(out.shape[0]):
        a = h1[i]
        # boost::hash_combine's shape, then a full mix: order-sensitive, so
        # (a, b) and (b, a) keys land in different partitions.
        out[i] = mix64(a ^ (h2[i] + _GOLDEN + (a << _S6) + (a >> _S2)))


# --------------------------------------------------------------------------
# Python wrappers: validate, allocate, call the worker.
# --------------------------------------------------------------------------

def _as_1d(a, name):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {a.shape}")
    return np.ascontiguousarray(a)


def as_int64_keys(a, name="a"):
    """Return ``a`` as a contiguous int64 array (ints, bools; TypeError otherwise)."""
    a = _as_1d(a, name)
    if a.dtype == np.int64:
        return a
    if a.dtype.kind in "biu":
        return a.astype(np.int64)
    raise TypeError(f"{name} must have an integer or bool dtype, got {a.dtype}")


def as_float64_keys(a, name="a"):
    """Return ``a`` as a contiguous float64 array (floats only; TypeError otherwise)."""
    a = _as_1d(a, name)
    if a.dtype == np.float64:
        return a
    if a.dtype.kind == "f":
        return a.astype(np.float64)
    raise TypeError(f"{name} must have a float dtype, got {a.dtype}")


def check_binary(offsets, data, validity):
    """Validate an Arrow-layout binary column; return normalised arrays.

    Returns ``(offsets, data, validity, has_validity)`` where ``validity``
    is a zero-length bool array when there is none.
    """
    offsets = _as_1d(offsets, "offsets")
    if offsets.dtype not in (np.int32, np.int64):
        raise TypeError(f"offsets must be int32 or int64, got {offsets.dtype}")
    if offsets.shape[0] < 1:
        raise ValueError("offsets must have length n + 1 >= 1")
    data = _as_1d(data, "data")
    if data.dtype != np.uint8:
        raise TypeError(f"data must be a uint8 buffer, got {data.dtype}")
    n = offsets.shape[0] - 1
    if validity is None:
        return offsets, data, np.zeros(0, dtype=np.bool_), False
    validity = _as_1d(validity, "validity")
    if validity.dtype != np.bool_:
        raise TypeError(f"validity must be a bool array, got {validity.dtype}")
    if validity.shape[0] != n:
        raise ValueError(f"validity has length {validity.shape[0]}, expected {n} (len(offsets) - 1)")
    return offsets, data, validity, True


def hash_int64(a):
    """Stable 64-bit hash of integer keys.

    Parameters
    ----------
    a : numpy.ndarray
        1-D array of int64 (or any int/uint/bool dtype, cast to int64;
        uint64 values above 2**63 - 1 wrap and hash like their negative
        int64 twin).

    Returns
    -------
    numpy.ndarray
        uint64 hashes, one per element; equal to :func:`hash_float64` of the
        same values as floats.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import hash_int64, hash_float64
    >>> h = hash_int64(np.array([1, 2, 3]))
    >>> h.dtype
    dtype('uint64')
    >>> bool((h == hash_float64(np.array([1.0, 2.0, 3.0]))).all())
    True
    """
    a = as_int64_keys(a)
    out = np.empty(a.shape[0], dtype=np.uint64)
    _hash_int64_worker(a, out)
    return out


def hash_float64(a):
    """Stable 64-bit hash of float keys with Python dict-key semantics.

    ``-0.0`` and ``0.0`` hash equal, every NaN hashes to :data:`NAN_HASH`,
    and an integral float that fits int64 hashes equal to
    :func:`hash_int64` of that int (``1.0 == 1`` are one dict key).

    Parameters
    ----------
    a : numpy.ndarray
        1-D float array (float16/32 are cast to float64).

    Returns
    -------
    numpy.ndarray
        uint64 hashes.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import hash_float64
    >>> h = hash_float64(np.array([0.0, -0.0, np.nan, -np.nan]))
    >>> bool(h[0] == h[1]), bool(h[2] == h[3])
    (True, True)
    """
    a = as_float64_keys(a)
    out = np.empty(a.shape[0], dtype=np.uint64)
    _hash_float64_worker(a, a.view(np.uint64), out)
    return out


def hash_binary(offsets, data, validity=None):
    """Stable 64-bit hash of Arrow-layout string/binary values.

    Parameters
    ----------
    offsets : numpy.ndarray
        int32 or int64, length ``n + 1``; value ``i`` is
        ``data[offsets[i]:offsets[i + 1]]``.
    data : numpy.ndarray
        uint8 byte buffer (UTF-8 for strings).
    validity : numpy.ndarray, optional
        bool, length ``n``; False marks a null, which hashes to
        :data:`NULL_HASH`.

    Returns
    -------
    numpy.ndarray
        uint64 hashes, length ``n``.

    Raises
    ------
    ValueError
        If the offsets decrease or point outside ``data``.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import hash_binary
    >>> data = np.frombuffer(b"abab", dtype=np.uint8)
    >>> h = hash_binary(np.array([0, 2, 4]), data)
    >>> bool(h[0] == h[1])
    True
    """
    offsets, data, validity, has_validity = check_binary(offsets, data, validity)
    out = np.empty(offsets.shape[0] - 1, dtype=np.uint64)
    _hash_binary_worker(offsets, data, validity, has_validity, out)
    return out


_BINARY_TYPES = (pa.types.is_string, pa.types.is_large_string,
                 pa.types.is_binary, pa.types.is_large_binary)


def arrow_binary_layout(arr):
    """Return ``(offsets, data, validity_or_None)`` of an Arrow binary-like array.

    Accepts string, large_string, binary, large_binary (plain arrays,
    honouring ``arr.offset`` of slices), and string_view/binary_view (cast to
    the large variant). ChunkedArrays are combined into one array first.
    Offsets stay absolute into the (shared, zero-copy) data buffer.
    """
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 1:
            arr = arr.chunk(0)
        else:
            if sum(c.nbytes for c in arr.chunks) >= 2**31 - 1 and arr.type in (pa.string(), pa.binary()):
                # 32-bit offsets would overflow once the chunks are joined.
                arr = arr.cast(pa.large_string() if arr.type == pa.string() else pa.large_binary())
            arr = arr.combine_chunks()
    if not isinstance(arr, pa.Array):
        raise TypeError(f"expected a pyarrow Array or ChunkedArray, got {type(arr).__name__}")
    t = arr.type
    if pa.types.is_string_view(t):
        arr, t = arr.cast(pa.large_string()), pa.large_string()
    elif pa.types.is_binary_view(t):
        arr, t = arr.cast(pa.large_binary()), pa.large_binary()
    if not any(test(t) for test in _BINARY_TYPES):
        raise TypeError(f"expected a string or binary Arrow array, got type {t}")
    off_dtype = np.int64 if (pa.types.is_large_string(t) or pa.types.is_large_binary(t)) else np.int32
    n, start = len(arr), arr.offset
    bufs = arr.buffers()
    if bufs[1] is None:
        offsets = np.zeros(n + 1, dtype=off_dtype)
    else:
        offsets = np.frombuffer(bufs[1], dtype=off_dtype)[start:start + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    validity = None
    if arr.null_count > 0:
        bits = np.frombuffer(bufs[0], dtype=np.uint8)
        validity = np.unpackbits(bits, count=start + n, bitorder="little")[start:].view(np.bool_)
    return offsets, data, validity


def hash_arrow(arr):
    """Stable 64-bit hash of an Arrow string or binary array.

    Parameters
    ----------
    arr : pyarrow.Array or pyarrow.ChunkedArray
        string, large_string, binary, large_binary, string_view,
        binary_view, or a dictionary array with such values. Slices are
        honoured; chunks are hashed in order.

    Returns
    -------
    numpy.ndarray
        uint64 hashes, equal to :func:`hash_binary` of the same bytes, and
        the same whether the array is string or large_string, chunked or not.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from runnel.kernels import hash_arrow, NULL_HASH
    >>> h = hash_arrow(pa.array(["a", None, "a"]))
    >>> bool(h[0] == h[2]), bool(h[1] == NULL_HASH)
    (True, True)
    """
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 0:
            return np.zeros(0, dtype=np.uint64)
        # Hashing chunk by chunk avoids copying the data buffers together.
        return np.concatenate([hash_arrow(c) for c in arr.chunks])
    if isinstance(arr, pa.DictionaryArray):
        # Hash each dictionary entry once, then gather by index.
        out = np.full(len(arr), NULL_HASH, dtype=np.uint64)
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        indices = arr.indices.to_numpy(zero_copy_only=False)
        out[valid] = hash_arrow(arr.dictionary)[indices[valid].astype(np.int64)]
        return out
    return hash_binary(*arrow_binary_layout(arr))


def combine_hashes(h1, h2):
    """Combine two hash columns into one (for multi-column keys).

    Order-sensitive: ``combine_hashes(a, b) != combine_hashes(b, a)``
    in general. Fold left for more columns.

    Parameters
    ----------
    h1, h2 : numpy.ndarray
        uint64 arrays of equal length.

    Returns
    -------
    numpy.ndarray
        uint64 hashes.

    Examples
    --------
    >>> import numpy as np
    >>> from runnel.kernels import combine_hashes, hash_int64
    >>> a, b = hash_int64(np.array([1])), hash_int64(np.array([2]))
    >>> bool(combine_hashes(a, b)[0] != combine_hashes(b, a)[0])
    True
    """
    h1 = _as_1d(h1, "h1")
    h2 = _as_1d(h2, "h2")
    for name, h in (("h1", h1), ("h2", h2)):
        if h.dtype != np.uint64:
            raise TypeError(f"{name} must be uint64 hashes, got {h.dtype}")
    if h1.shape != h2.shape:
        raise ValueError(f"h1 and h2 differ in length: {h1.shape[0]} != {h2.shape[0]}")
    out = np.empty(h1.shape[0], dtype=np.uint64)
    _combine_worker(h1, h2, out)
    return out
