"""Batch: records <-> columns keep Python values exactly; pandas/Arrow/NumPy in and out."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from runnel import Batch
from runnel.batch import concat_batches
from runnel.testing import assert_batches_equal

CASES = {
    "ints": [1, -2, 0, 2**62],
    "floats": [1.5, -0.0, float("inf"), 2.0],
    "bools": [True, False, True],
    "none_with_ints": [1, None, 3],
    "none_only": [None, None],
    "strings": ["a", "", "hé", "日本語", "🙂"],
    "strings_with_none": ["a", None, ""],
    "bytes": [b"a", b"", b"\x00\xff"],
    "bytes_with_none": [b"a", None],
    "ints_and_floats": [1, 2.0, 3],
    "ints_and_bools": [1, True, 0, False],
    "big_ints": [2**63, -(2**63) - 1, 1],
    "lists": [[1, 2], [], ["a", None]],
    "nested_tuples": [((1, "a"), 2.5), ((2, "b"), None)],
    "mixed": [1, "a", b"b", 2.5, None, (1, 2), [3], True],
    "dicts": [{"a": 1}, {}],
    "pairs": [("a", 1), ("b", 2)],
    "pairs_mixed_values": [("a", 1), ("b", "x"), ("c", [1])],
    "pairs_of_tuples": [(("k", 1), (2, 3)), (("k", 2), (4, 5))],
    "triples": [(1, "a", 2.0), (2, "b", 3.0)],
    "ragged_tuples": [(1, 2), (1, 2, 3), ()],
    "tuples_and_scalars": [(1, 2), 3],
}


@pytest.mark.parametrize("records", CASES.values(), ids=CASES.keys())
def test_records_round_trip_exactly(records):
    out = Batch.from_records(records).to_records()
    assert_batches_equal([out], [records], ordered=True)


@pytest.mark.parametrize("records", CASES.values(), ids=CASES.keys())
def test_round_trip_survives_slicing_take_and_concat(records):
    b = Batch.from_records(records)
    n = len(records)
    assert_batches_equal([b.slice(1, n).to_records()], [records[1:]], ordered=True)
    idx = np.arange(n)[::-1]
    assert_batches_equal([b.take(idx).to_records()], [records[::-1]], ordered=True)
    both = concat_batches([b, Batch.from_records(records)])
    assert_batches_equal([both.to_records()], [records + records], ordered=True)


def test_records_are_native_python_values():
    recs = Batch.from_records([(1, 2.5), (3, 4.5)]).to_records()
    assert [type(x) for r in recs for x in r] == [int, float, int, float]
    assert type(Batch.from_records([True]).to_records()[0]) is bool


def test_numpy_scalars_come_back_native():
    recs = Batch.from_records([np.int64(3), np.int64(4)]).to_records()
    assert recs == [3, 4] and all(type(x) is int for x in recs)
    assert [type(x) for x in Batch.from_records([np.float32(1.5)]).to_records()] == [float]


def test_pair_and_tuple_layouts():
    assert Batch.from_records([("a", 1)]).layout == ("key", "value")
    assert Batch.from_records([(1, 2, 3)]).layout == ("_0", "_1", "_2")
    assert Batch.from_records([1, 2]).layout == "value"
    assert Batch.from_records([]).to_records() == []
    assert len(Batch.empty()) == 0


def test_a_column_keeps_ints_and_floats_apart():
    b = Batch.from_records([1, 2.0])
    assert [type(x) for x in b.to_records()] == [int, float]


def test_concat_of_different_types_widens_to_exact_objects():
    out = concat_batches([Batch.from_records([1, 2]), Batch.from_records(["a"]), Batch.from_records([2.5])])
    assert_batches_equal([out.to_records()], [[1, 2, "a", 2.5]], ordered=True)
    out = concat_batches([Batch.from_records([("a", 1)]), Batch.from_records([3])])
    assert_batches_equal([out.to_records()], [[("a", 1), 3]], ordered=True)


def test_columns_must_have_equal_lengths():
    with pytest.raises(ValueError, match="equal lengths"):
        Batch({"a": [1, 2], "b": [1]})


def test_columns_are_read_only():
    b = Batch({"value": np.arange(3)})
    with pytest.raises(ValueError):
        b["value"][0] = 5


# --- pandas / Arrow / NumPy in and out ----------------------------------------------

def test_from_numpy_array():
    b = Batch.coerce(np.array([1, 2, 3], dtype=np.int32))
    assert b.to_records() == [1, 2, 3] and all(type(x) is int for x in b.to_records())
    b = Batch.coerce(np.array(["x", "yz"]))
    assert b.to_records() == ["x", "yz"]


def test_from_pandas_frame_and_series():
    df = pd.DataFrame({"key": ["a", "b"], "value": [1, 2]})
    b = Batch.coerce(df)
    assert b.layout == ("key", "value")
    assert_batches_equal([b.to_records()], [[("a", 1), ("b", 2)]], ordered=True)
    s = Batch.coerce(pd.Series([1.5, 2.5]))
    assert_batches_equal([s.to_records()], [[1.5, 2.5]], ordered=True)
    objs = Batch.coerce(pd.Series([1, "a", None], dtype=object))
    assert_batches_equal([objs.to_records()], [[1, "a", None]], ordered=True)


def test_from_pandas_keeps_column_order_as_layout():
    df = pd.DataFrame({"x": [1], "y": ["a"], "z": [2.0]})
    assert Batch.from_pandas(df).to_records() == [(1, "a", 2.0)]


def test_to_pandas():
    df = Batch.from_records([("a", 1), ("b", 2)]).to_pandas()
    assert list(df.columns) == ["key", "value"]
    assert df["key"].tolist() == ["a", "b"] and df["value"].tolist() == [1, 2]


def test_arrow_round_trip():
    t = pa.table({"key": pa.array(["a", None, "c"]), "value": pa.array([1.0, 2.0, 3.0])})
    b = Batch.coerce(t)
    assert_batches_equal([b.to_records()], [[("a", 1.0), (None, 2.0), ("c", 3.0)]], ordered=True)
    back = b.to_arrow()
    assert back.column_names == ["key", "value"]
    assert back.column("key").to_pylist() == ["a", None, "c"]
    assert back.column("value").to_pylist() == [1.0, 2.0, 3.0]


def test_arrow_numeric_with_nulls_gives_none():
    b = Batch.coerce(pa.array([1, None, 3]))
    assert_batches_equal([b.to_records()], [[1, None, 3]], ordered=True)


def test_arrow_chunked_and_record_batch():
    chunked = pa.chunked_array([["a"], ["b", "c"]])
    assert Batch.coerce(chunked).to_records() == ["a", "b", "c"]
    rb = pa.RecordBatch.from_pydict({"key": [1, 2], "value": [b"x", b"y"]})
    assert_batches_equal([Batch.coerce(rb).to_records()], [[(1, b"x"), (2, b"y")]], ordered=True)


def test_dict_of_arrays():
    b = Batch.coerce({"key": np.array([1, 2]), "value": ["a", "b"]})
    assert_batches_equal([b.to_records()], [[(1, "a"), (2, "b")]], ordered=True)


# --- properties --------------------------------------------------------------------

scalars = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(), st.text(max_size=5),
                    st.binary(max_size=5))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.tuples(inner, inner)), max_leaves=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(values, max_size=12))
def test_any_records_round_trip(records):
    assert_batches_equal([Batch.from_records(records).to_records()], [records], ordered=True)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(scalars, values), max_size=12))
def test_any_pairs_round_trip(records):
    assert_batches_equal([Batch.from_records(records).to_records()], [records], ordered=True)


def test_nan_comes_back_as_nan():
    (x,) = Batch.from_records([float("nan")]).to_records()
    assert type(x) is float and math.isnan(x)
