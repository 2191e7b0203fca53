"""Frames from DStreams and sources: schemas given or inferred, checked on every batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from runnel.frame import SchemaError, StreamingDataFrame
from runnel.testing import assert_frame_batches_equal


def run(ssc, sdf, n):
    out = []
    sdf.foreach_batch(lambda df, t: out.append(df))
    ssc.start()
    ssc.run_batches(n)
    return out


def test_queue_of_pandas_frames_knows_its_schema_before_start(ssc):
    frames = [pd.DataFrame({"k": ["a", "b"], "v": [1.5, 2.0]}), pd.DataFrame({"k": ["c"], "v": [3.0]})]
    sdf = ssc.frame.queue(frames)
    assert sdf.columns == ["k", "v"]
    assert sdf.dtypes == {"k": "string", "v": "float64"}
    assert_frame_batches_equal(run(ssc, sdf, 2), frames, check_order=True)


def test_dstream_of_dicts_infers_its_schema_from_the_first_batch(ssc):
    s = ssc.queue_stream([[{"k": "a", "v": 1}, {"k": "b", "v": 2}], [{"k": "c", "v": 3}]])
    sdf = s.to_frame()
    with pytest.raises(RuntimeError, match="not known yet"):
        sdf.dtypes
    out = run(ssc, sdf, 2)
    assert sdf.dtypes == {"k": "string", "v": "int64"}
    assert_frame_batches_equal(out, [pd.DataFrame({"k": ["a", "b"], "v": [1, 2]}),
                                     pd.DataFrame({"k": ["c"], "v": [3]})])


def test_tuples_are_named_by_columns(ssc):
    s = ssc.queue_stream([[("a", 1, 0.5), ("b", 2, 1.5)]])
    sdf = s.to_frame(columns=["k", "n", "x"])
    assert_frame_batches_equal(run(ssc, sdf, 1), [pd.DataFrame({"k": ["a", "b"], "n": [1, 2], "x": [0.5, 1.5]})])


def test_arrow_and_numpy_batches(ssc):
    t = pa.table({"a": [1, 2], "b": ["x", "y"]})
    rec = np.array([(1, 2.5), (2, 3.5)], dtype=[("i", "i8"), ("f", "f8")])
    a = ssc.queue_stream([t]).to_frame()
    b = ssc.queue_stream([rec]).to_frame()
    oa, ob = [], []
    a.foreach_batch(lambda df, _: oa.append(df))
    b.foreach_batch(lambda df, _: ob.append(df))
    ssc.start()
    ssc.run_batches(1)
    assert_frame_batches_equal(oa, [t.to_pandas()])
    assert_frame_batches_equal(ob, [pd.DataFrame({"i": [1, 2], "f": [2.5, 3.5]})])


def test_scalar_stream_becomes_one_column(ssc):
    sdf = ssc.queue_stream([["x y", "z"]]).to_frame(columns=["line"])
    assert_frame_batches_equal(run(ssc, sdf, 1), [pd.DataFrame({"line": ["x y", "z"]})])


def test_a_batch_that_does_not_fit_the_schema_fails_naming_column_stream_and_time(ssc):
    sdf = ssc.frame.queue([pd.DataFrame({"k": ["a"], "v": [1]}), pd.DataFrame({"k": ["b"], "v": ["oops"]})],
                          schema={"k": "string", "v": "int64"})
    with pytest.raises(Exception) as e:          # run_batches raises the failed batch's error
        run(ssc, sdf, 2)
    msg = str(e.value)
    assert "'v'" in msg and "expected int64" in msg and "to_frame" in msg and "00:00:02" in msg


def test_a_batch_with_a_missing_column_fails(ssc):
    sdf = ssc.frame.queue([pd.DataFrame({"k": ["a"], "v": [1]}), pd.DataFrame({"k": ["b"]})])
    with pytest.raises(Exception, match=r"missing column\(s\) \['v'\]"):
        run(ssc, sdf, 2)


def test_ints_widen_to_a_float_schema(ssc):
    sdf = ssc.frame.queue([pd.DataFrame({"v": [1, 2]})], schema={"v": float})
    out = run(ssc, sdf, 1)
    assert out[0]["v"].dtype == np.float64


def test_rate_source_has_its_schema(ssc):
    sdf = ssc.frame.rate("pairs", 5, columns=["id", "x"])
    assert sdf.dtypes == {"id": "int64", "x": "float64"}
    out = run(ssc, sdf, 2)
    assert [len(df) for df in out] == [5, 5]


def test_socket_and_files_give_one_string_column(ssc, tmp_path):
    s = ssc.frame.files(str(tmp_path), column="line")
    assert s.dtypes == {"line": "string"}
    assert ssc.frame.socket("localhost", 9, column="text").dtypes == {"text": "string"}


def test_repr_and_html_show_the_schema(ssc):
    sdf = ssc.frame.queue([pd.DataFrame({"k": ["a"], "v": [1]})])
    assert "k: string" in repr(sdf) and "v: int64" in repr(sdf)
    html = sdf._repr_html_()
    assert "<table>" in html and "<td>k</td><td>string</td>" in html


def test_print_shows_each_batch(ssc, capsys):
    sdf = ssc.frame.queue([pd.DataFrame({"k": ["a", "b"], "v": [1, 2]}), pd.DataFrame({"k": [], "v": []})])
    sdf.print()
    ssc.start()
    ssc.run_batches(2)
    printed = capsys.readouterr().out
    assert "Time: 1970-01-01 00:00:01" in printed and "(no rows)" in printed
    assert " a  1" in printed


def test_head_per_batch(ssc):
    sdf = ssc.frame.queue([pd.DataFrame({"v": list(range(10))})])
    out = run(ssc, sdf.head(3), 1)
    assert out[0]["v"].tolist() == [0, 1, 2]


def test_to_frame_returns_a_streaming_data_frame(ssc):
    assert isinstance(ssc.queue_stream([[1]]).to_frame(columns=["v"]), StreamingDataFrame)


def test_files_source_reads_new_lines_as_a_string_column(ssc, tmp_path):
    import os
    sdf = ssc.frame.files(str(tmp_path), column="line")
    out = []
    sdf.assign(n=sdf.line.str.len()).foreach_batch(lambda df, t: out.append(df))
    ssc.start()
    path = tmp_path / "a.txt"
    path.write_text("hello\nwide world\n")
    os.utime(path, ns=(900 * 1_000_000, 900 * 1_000_000))   # modification time inside the first batch
    ssc.run_batches(2)
    assert_frame_batches_equal(out, [pd.DataFrame({"line": ["hello", "wide world"], "n": [5, 10]}),
                                     pd.DataFrame({"line": [], "n": []})])
