"""The checkpoint format on disk: atomic commits, checksums, fallback, cleanup (``runnel.checkpoint.files``)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runnel import Batch
from runnel.checkpoint import files
from runnel.checkpoint.files import CheckpointError, CheckpointWriter, checkpoint_times, load_newest


def write(directory, t, values, graph=None):
    w = CheckpointWriter(str(directory), t)
    b = Batch({"key": np.arange(len(values)), "value": np.asarray(values, dtype=np.float64)}, ("key", "value"))
    name = w.add_table(b)
    return w.commit({"zero": 0, "batch_ms": 1000, "graph": graph, "streams": {
        "s": {"signature": {}, "tables": {"table": [t, [name]]}}}, "inputs": {"q": {"consumed": t // 1000}}})


def values(loaded):
    (_, [batch]), = loaded.tables["s"].values()
    return batch.columns["value"].tolist()


def test_round_trip(tmp_path):
    write(tmp_path, 2000, [1.5, 2.5])
    got = load_newest(str(tmp_path))
    assert got.time == 2000 and values(got) == [1.5, 2.5] and got.body["inputs"] == {"q": {"consumed": 2}}


def test_an_aborted_write_is_invisible_and_cleaned(tmp_path):
    write(tmp_path, 1000, [1.0])
    w = CheckpointWriter(str(tmp_path), 2000)
    w.add_table(Batch.from_values([1]))               # the process dies here: no manifest, no rename
    assert checkpoint_times(str(tmp_path)) == [1000]
    assert load_newest(str(tmp_path)).time == 1000
    files.clean(str(tmp_path), 3, None)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-1000"]


def test_committing_the_same_time_again_replaces_it(tmp_path):
    write(tmp_path, 1000, [1.0])
    write(tmp_path, 1000, [2.0])                      # a batch re-run after recovery, checkpointed again
    assert values(load_newest(str(tmp_path))) == [2.0]
    assert os.listdir(tmp_path) == ["checkpoint-1000"]


def test_clean_keeps_the_newest_and_the_graphs_they_use(tmp_path):
    g1, _ = files.write_graph(str(tmp_path), b"graph one")
    g2, _ = files.write_graph(str(tmp_path), b"graph two")
    for t in (1000, 2000):
        write(tmp_path, t, [1.0], graph=g1)
    for t in (3000, 4000):
        write(tmp_path, t, [1.0], graph=g2)
    assert [t for t, _ in files.clean(str(tmp_path), 2, g2)] == [4000, 3000]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-3000", "checkpoint-4000", g2]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damaged_byte_of_the_newest_checkpoint_falls_back(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("ck")
    write(d, 1000, [1.0, 2.0])
    newest = write(d, 2000, [3.0, 4.0])
    name = data.draw(st.sampled_from(sorted(os.listdir(newest))))
    path = os.path.join(newest, name)
    size = os.path.getsize(path)
    if data.draw(st.booleans()):                      # truncated
        with open(path, "r+b") as f:
            f.truncate(data.draw(st.integers(0, size - 1)))
    else:                                             # one byte changed
        at = data.draw(st.integers(0, size - 1))
        with open(path, "r+b") as f:
            f.seek(at)
            old = f.read(1)
            f.seek(at)
            f.write(bytes([old[0] ^ data.draw(st.integers(1, 255))]))
    with pytest.warns(RuntimeWarning, match=f"checkpoint {newest} is unusable .*{name}"):
        got = load_newest(str(d))
    assert got.time == 1000 and values(got) == [1.0, 2.0]


def test_a_checkpoint_of_another_format_is_foreign(tmp_path):
    newest = write(tmp_path, 2000, [1.0])
    with open(os.path.join(newest, "manifest.json"), "rb") as f:
        text = f.read().decode()
    body = files._parse_manifest(text.encode())
    body["format"] = "something-else"
    with open(os.path.join(newest, "manifest.json"), "wb") as f:
        f.write(files._manifest_bytes(body))
    with pytest.warns(RuntimeWarning, match="not a runnel checkpoint"), pytest.raises(CheckpointError):
        load_newest(str(tmp_path))
