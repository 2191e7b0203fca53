"""Batch <-> Arrow IPC round trips: every column kind, layouts, empty batches, zstd."""

from __future__ import annotations

import math
import struct

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runnel.batch import Batch, object_array
from runnel.storage.ipc import batch_to_bytes, read_batch, write_batch


# -- exact comparison -------------------------------------------------------------
def same_value(a, b) -> bool:
    """Equal and of the same type all the way down (1 != 1.0 != True; NaN == NaN; -0.0 != 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def assert_same_batch(got: Batch, want: Batch) -> None:
    assert got.layout == want.layout
    assert got.names == want.names
    assert len(got) == len(want)
    for name in want.names:
        g, w = got[name], want[name]
        if isinstance(w, pa.Array):
            assert isinstance(g, pa.Array) and g.type == w.type, name
            assert g.equals(w), name
        elif w.dtype == object:
            assert g.dtype == object, name
            assert same_value(g.tolist(), w.tolist()), name
        else:
            assert g.dtype == w.dtype, name
            assert g.view(np.uint8).tobytes() == w.view(np.uint8).tobytes(), name


# -- strategies -------------------------------------------------------------------
def _ints(n):
    return st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n).map(
        lambda v: np.array(v, dtype=np.int64))


def _floats(n):
    return st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n).map(
        lambda v: np.array(v, dtype=np.float64))


def _bools(n):
    return st.lists(st.booleans(), min_size=n, max_size=n).map(lambda v: np.array(v, dtype=np.bool_))


def _datetimes(n):  # the int64 minimum is NaT
    return st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n).map(
        lambda v: np.array(v, dtype=np.int64).view("datetime64[ns]"))


def _arrow(n):
    text = st.lists(st.none() | st.text(), min_size=n, max_size=n)
    data = st.lists(st.none() | st.binary(), min_size=n, max_size=n)
    return st.one_of(text.map(lambda v: pa.array(v, pa.string())),
                     text.map(lambda v: pa.array(v, pa.large_string())),
                     data.map(lambda v: pa.array(v, pa.binary())),
                     data.map(lambda v: pa.array(v, pa.large_binary())))


_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(max_size=5)
_objects = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
                        | st.dictionaries(st.text(max_size=3), inner, max_size=2), max_leaves=8)


def _object_col(n):
    return st.lists(_objects, min_size=n, max_size=n).map(object_array)


_KINDS = [_ints, _floats, _bools, _datetimes, _arrow, _object_col]


@st.composite
def layouts(draw, names):
    if len(names) == 1 and draw(st.booleans()):
        return names[0]
    parts, rest = [], list(names)
    while rest:
        k = draw(st.integers(1, len(rest)))
        chunk, rest = rest[:k], rest[k:]
        parts.append(draw(layouts(chunk)) if k > 1 or draw(st.booleans()) else chunk[0])
    return tuple(parts)


@st.composite
def batches(draw):
    n = draw(st.integers(0, 6))
    ncols = draw(st.integers(1, 5))
    names = [f"c{i}" for i in range(ncols)]
    cols = {name: draw(draw(st.sampled_from(_KINDS))(n)) for name in names}
    order = draw(st.permutations(names))
    return Batch(cols, draw(layouts(list(order))))


# -- tests ------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(batches(), st.sampled_from([None, "zstd"]))
def test_round_trip_is_exact_for_every_column_kind_and_layout(batch, compression):
    assert_same_batch(read_batch(batch_to_bytes(batch, compression)), batch)


@pytest.mark.parametrize("batch", [Batch.empty(), Batch({}), Batch.from_records([]),
                                   Batch({"k": np.empty(0, np.int64), "v": pa.array([], pa.string())})],
                         ids=["empty", "no-columns", "from-no-records", "typed-empty"])
@pytest.mark.parametrize("compression", [None, "zstd"])
def test_empty_batches_round_trip(batch, compression):
    assert_same_batch(read_batch(batch_to_bytes(batch, compression)), batch)


def test_other_numpy_dtypes_keep_their_dtype():
    b = Batch({"c": np.array([1 + 2j, -0.0]), "d": np.array(["2020-01-02", "NaT"], "datetime64[D]"),
               "td": np.array([1, -2], "timedelta64[us]"), "be": np.array([1, 2], ">i4"),
               "f32": np.array([1.5, np.nan], np.float32), "u8": np.array([0, 255], np.uint8)})
    assert_same_batch(read_batch(batch_to_bytes(b)), b)


def test_structured_arrays_keep_their_field_names():
    rec = np.array([(1, 2.5, (1, 2)), (2, 3.5, (3, 4))], dtype=[("i", "i8"), ("f", "f8"), ("p", [("x", "i4"), ("y", "i4")])])
    back = read_batch(batch_to_bytes(Batch({"value": rec}, "value")))["value"]
    assert back.dtype == rec.dtype and back.dtype.names == ("i", "f", "p")
    assert back.tolist() == rec.tolist()


def test_object_columns_come_back_as_fresh_objects():
    b = Batch.from_records([[1, 2], [3]])
    data = batch_to_bytes(b)
    first = read_batch(data)
    first["value"][0].append(99)
    assert read_batch(data).to_records() == [[1, 2], [3]]
    assert b.to_records() == [[1, 2], [3]]


def test_unpicklable_by_pickle_objects_use_cloudpickle():
    b = Batch({"value": object_array([lambda x: x + 1, None])})
    got = read_batch(batch_to_bytes(b))
    assert got["value"][0](1) == 2 and got["value"][1] is None


def test_memory_mapped_read_is_zero_copy_and_read_only(tmp_path):
    b = Batch({"x": np.arange(1000, dtype=np.int64), "s": pa.array(["a", None] * 500)}, ("x", "s"))
    path = tmp_path / "b.arrow"
    with pa.OSFile(str(path), "wb") as f:
        write_batch(b, f)
    mm = pa.memory_map(str(path), "r")
    got = read_batch(mm)
    x = got["x"]
    assert not x.flags.writeable
    mm.seek(0)
    mapping = mm.read_buffer(mm.size())        # zero-copy: the mapping itself
    start, stop = mapping.address, mapping.address + mapping.size
    assert start <= x.__array_interface__["data"][0] < stop
    assert start <= got["s"].buffers()[2].address < stop
    assert_same_batch(got, b)


def test_zstd_compresses_and_round_trips():
    b = Batch({"x": np.zeros(100_000, dtype=np.int64), "o": object_array([(1, "a")] * 1000 + [None] * 99_000)})
    plain, packed = batch_to_bytes(b), batch_to_bytes(b, "zstd")
    assert len(packed) * 20 < len(plain)
    assert_same_batch(read_batch(packed), b)


def test_reading_something_else_says_so():
    table = pa.table({"x": [1, 2]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    with pytest.raises(ValueError, match="not a runnel batch"):
        read_batch(sink.getvalue())
