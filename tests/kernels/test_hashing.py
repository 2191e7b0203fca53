from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import reference as ref
from strategies import I64_MAX, I64_MIN, byte_keys, float_keys, int_keys, string_keys

from runnel.kernels import (
    NAN_HASH,
    NULL_HASH,
    combine_hashes,
    hash_arrow,
    hash_binary,
    hash_float64,
    hash_int64,
)

SETTINGS = settings(max_examples=150, deadline=None)

FIXED_SCRIPT = """
import json, numpy as np, pyarrow as pa
from runnel.kernels import hash_int64, hash_float64, hash_arrow
print(json.dumps({
    "int": hash_int64(np.array([0, 1, -1, 2**63 - 1, -2**63])).tolist(),
    "float": hash_float64(np.array([0.5, -0.0, float("nan"), 1e300])).tolist(),
    "str": hash_arrow(pa.array(["", "a", "runnel", "日本語", None])).tolist(),
}))
"""


def _fresh_process_hashes():
    out = subprocess.run([sys.executable, "-c", FIXED_SCRIPT], capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout)


def test_hashes_are_identical_across_fresh_processes():
    # PYTHONHASHSEED differs between the children; our hashes must not.
    first, second = _fresh_process_hashes(), _fresh_process_hashes()
    assert first == second
    assert first["int"] == hash_int64(np.array([0, 1, -1, 2**63 - 1, -2**63])).tolist()


def test_hash_values_are_pinned():
    # These values partition checkpointed state: changing them is a
    # breaking change to every stored checkpoint.
    assert hash_int64(np.array([0, 1])).tolist() == [16294208416658607535, 10451216379200822465]
    assert hash_arrow(pa.array(["a"])).tolist() == [1409192626902433570]


def test_int_float_bool_equal_keys_hash_equal():
    ints = np.array([0, 1, -1, 42, -(2**53), 2**62, I64_MIN])
    np.testing.assert_array_equal(hash_int64(ints), hash_float64(ints.astype(np.float64)))
    np.testing.assert_array_equal(hash_int64(np.array([True, False])), hash_int64(np.array([1, 0])))
    for dtype in (np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32, np.uint64):
        np.testing.assert_array_equal(hash_int64(np.array([0, 1, 7], dtype=dtype)), hash_int64(np.array([0, 1, 7])))


def test_float_special_values():
    h = hash_float64(np.array([0.0, -0.0, np.nan, -np.nan, np.float64("nan") * 0, 2.0**63, -(2.0**63)]))
    assert h[0] == h[1]
    assert h[2] == h[3] == h[4] == NAN_HASH
    assert h[5] != hash_int64(np.array([I64_MAX]))[0]  # 2**63 does not fit int64
    assert h[6] == hash_int64(np.array([I64_MIN]))[0]  # -2**63 does
    nan_payload = np.array([0x7FF8000000000123], dtype=np.uint64).view(np.float64)
    assert hash_float64(nan_payload)[0] == NAN_HASH


@SETTINGS
@given(int_keys)
def test_hash_int64_is_a_function_of_the_value(keys):
    h = hash_int64(keys)
    assert h.dtype == np.uint64 and h.shape == keys.shape
    by_value = {}
    for k, v in zip(keys.tolist(), h.tolist()):
        assert by_value.setdefault(k, v) == v
    # A bijective mixer: distinct ints never collide.
    assert len(set(h.tolist())) == len(set(keys.tolist()))


@SETTINGS
@given(float_keys)
def test_hash_float64_respects_python_equality(keys):
    h = hash_float64(keys).tolist()
    for x, hx in zip(keys.tolist(), h):
        if x != x:
            assert hx == NAN_HASH
        elif x == int(x) if abs(x) != float("inf") else False:
            if -(2**63) <= int(x) < 2**63:
                assert hx == hash_int64(np.array([int(x)]))[0]
    for i in range(len(keys)):
        for j in range(len(keys)):
            if keys[i] == keys[j]:
                assert h[i] == h[j]


@SETTINGS
@given(string_keys, st.sampled_from([pa.string(), pa.large_string()]), st.data())
def test_hash_arrow_matches_bytes_and_ignores_layout(values, typ, data):
    arr = pa.array(values, typ)
    h = hash_arrow(arr)
    assert h.dtype == np.uint64 and len(h) == len(values)
    by_value = {}
    for v, hv in zip(values, h.tolist()):
        if v is None:
            assert hv == NULL_HASH
        else:
            assert by_value.setdefault(v, hv) == hv
    # Same values hash the same whatever the offset width, slicing or chunking.
    np.testing.assert_array_equal(h, hash_arrow(pa.array(values, pa.large_binary() if typ == pa.large_string() else pa.binary())))
    if values:
        start = data.draw(st.integers(0, len(values)))
        stop = data.draw(st.integers(start, len(values)))
        np.testing.assert_array_equal(hash_arrow(arr.slice(start, stop - start)), h[start:stop])
        chunked = pa.chunked_array([arr.slice(0, start), arr.slice(start)], typ)
        np.testing.assert_array_equal(hash_arrow(chunked), h)
    np.testing.assert_array_equal(hash_arrow(pa.array(values, typ).dictionary_encode()), h)


def test_hash_binary_direct_layout():
    data = np.frombuffer("xabcé".encode(), dtype=np.uint8)
    h = hash_binary(np.array([1, 4, 4, 6], dtype=np.int64), data, np.array([True, True, False]))
    expected = hash_arrow(pa.array(["abc", "", None]))
    np.testing.assert_array_equal(h[:3], expected)


def test_hash_empty_inputs():
    assert hash_int64(np.array([], dtype=np.int64)).shape == (0,)
    assert hash_float64(np.array([])).shape == (0,)
    assert hash_arrow(pa.array([], pa.string())).shape == (0,)
    assert hash_arrow(pa.chunked_array([], pa.string())).shape == (0,)
    assert hash_binary(np.array([0]), np.zeros(0, np.uint8)).shape == (0,)


def test_hash_input_errors_are_clear():
    with pytest.raises(TypeError, match="integer or bool"):
        hash_int64(np.array([1.0]))
    with pytest.raises(TypeError, match="float"):
        hash_float64(np.array([1]))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        hash_int64([1, 2])
    with pytest.raises(ValueError, match="1-dimensional"):
        hash_int64(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="offsets"):
        hash_binary(np.array([0, 5]), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="validity has length"):
        hash_binary(np.array([0, 1]), np.zeros(1, np.uint8), np.array([True, False]))
    with pytest.raises(TypeError, match="string or binary"):
        hash_arrow(pa.array([1, 2]))
    with pytest.raises(ValueError, match="differ in length"):
        combine_hashes(np.zeros(1, np.uint64), np.zeros(2, np.uint64))


def test_combine_hashes_is_order_sensitive_and_deterministic():
    a, b = hash_int64(np.array([1, 2])), hash_int64(np.array([2, 1]))
    ab, ba = combine_hashes(a, b), combine_hashes(b, a)
    assert ab[0] != ba[0]
    assert ab[0] == ba[1]  # (1, 2) in both orders of rows
    np.testing.assert_array_equal(ab, combine_hashes(a, b))


def pack_binary(values, prefix, suffix):
    """Arrow-layout (offsets, data) of ``values`` with garbage bytes around them.

    With ``suffix == b""`` the data buffer ends exactly where the last value
    ends, so the kernels' bounds-safe tail path runs; bytes in the prefix
    and suffix must never leak into a hash.
    """
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    data = np.frombuffer(prefix + b"".join(values) + suffix, dtype=np.uint8).copy()
    return offsets + len(prefix), data


@SETTINGS
@given(byte_keys, st.binary(max_size=9), st.sampled_from([b"", b"\xff", b"\xff" * 7, b"\xff" * 8, b"\xaa" * 20]),
       st.sampled_from([np.int32, np.int64]))
def test_hash_binary_matches_the_reference_definition(values, prefix, suffix, off_dtype):
    offsets, data = pack_binary(values, prefix, suffix)
    h = hash_binary(offsets.astype(off_dtype), data)
    assert h.tolist() == [ref.hash_bytes(v) for v in values]


@SETTINGS
@given(byte_keys, st.data())
def test_hash_arrow_of_sliced_binary_matches_the_reference(values, data):
    arr = pa.array(values, pa.binary())
    start = data.draw(st.integers(0, len(values)))
    stop = data.draw(st.integers(start, len(values)))
    assert hash_arrow(arr.slice(start, stop - start)).tolist() == [ref.hash_bytes(v) for v in values[start:stop]]
