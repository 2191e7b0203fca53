"""Checkpoints are the owner's alone, and with RUNNEL_CHECKPOINT_KEY nothing unsigned is unpickled."""

from __future__ import annotations

import glob
import json
import logging
import os
import pickle
import stat

import numpy as np
import pytest

from runnel import Batch, ManualClock, StreamingContext, updaters
from runnel.batch import object_array
from runnel.checkpoint import files
from runnel.checkpoint.files import CheckpointError, CheckpointWriter, load_newest
from runnel.storage.ipc import batch_to_bytes
from runnel.storage.signing import KEY_ENV

SEEN: list = []


class Evil:
    """Unpickling it creates ``path``: what a crafted checkpoint could do with any command."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def keep(rdd):
    SEEN.append(sorted(rdd.collect()))


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def write(directory, t, values):
    w = CheckpointWriter(str(directory), t)
    name = w.add_table(Batch({"key": np.arange(len(values)), "value": np.asarray(values, np.float64)},
                             ("key", "value")))
    return w.commit({"zero": 0, "batch_ms": 1000, "graph": None, "streams": {
        "s": {"signature": {}, "tables": {"table": [t, [name]]}}}, "inputs": {}})


def reseal(checkpoint, edit):
    """Change a manifest as an attacker can: CRCs recomputed, the signature (if any) left as it was."""
    path = os.path.join(checkpoint, files.MANIFEST)
    with open(path) as f:
        doc = json.load(f)
    edit(doc["body"])
    doc["crc32"] = files.crc32(files._canonical(doc["body"]))
    with open(path, "w") as f:
        json.dump(doc, f)


def plant_table(checkpoint, marker, fix_manifest):
    """Replace the checkpoint's table by one whose object column runs Evil when read."""
    data = batch_to_bytes(Batch({"value": object_array([Evil(marker)])}, "value"))
    with open(os.path.join(checkpoint, "f00000.arrow"), "wb") as f:
        f.write(data)
    if fix_manifest:
        reseal(checkpoint, lambda body: body["files"]["f00000.arrow"].update(crc32=files.crc32(data),
                                                                           bytes=len(data)))


def test_a_crafted_table_is_not_unpickled_when_its_signature_does_not_match(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "a secret of the owner")
    write(tmp_path, 1000, [1.0])
    newest = write(tmp_path, 2000, [2.0])
    marker = tmp_path.parent / f"{tmp_path.name}-pwned"
    plant_table(newest, marker, fix_manifest=False)           # a signed manifest cannot be fixed without the key
    with pytest.warns(RuntimeWarning, match=rf"checkpoint {newest} is unusable .*f00000\.arrow: signature mismatch"):
        got = load_newest(str(tmp_path))
    assert got.time == 1000 and not marker.exists()          # fell back to the older, valid checkpoint
    plant_table(newest, marker, fix_manifest=True)            # and one whose manifest is fixed is refused too
    with pytest.warns(RuntimeWarning, match=r"manifest\.json: signature mismatch"):
        assert load_newest(str(tmp_path)).time == 1000
    assert not marker.exists()


def test_without_a_key_a_crafted_checkpoint_runs_code(tmp_path):
    """The trust boundary the README states: without a key, who can write the directory runs code as you."""
    newest = write(tmp_path, 1000, [1.0])
    marker = tmp_path.parent / f"{tmp_path.name}-pwned"
    plant_table(newest, marker, fix_manifest=True)
    load_newest(str(tmp_path))
    assert marker.exists()


def test_a_crafted_program_is_not_unpickled_by_get_or_create(ctx, clean_conf, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "a secret of the owner")
    directory = str(tmp_path / "ck")

    def setup():
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(directory)
        ssc.queue_stream([[("a", 1)], [("a", 2)], [("b", 5)]]) \
            .update_state_by_key(updaters.running_sum()).named("totals").checkpoint(1).foreach_rdd(keep)
        return ssc

    ssc = setup()
    ssc.start()
    ssc.run_batches(2)
    ssc.stop(stop_spark_context=False)
    (graph,) = glob.glob(os.path.join(directory, "graph-*.pkl"))
    marker = tmp_path / "pwned"
    crafted = pickle.dumps(Evil(marker))
    with open(graph, "wb") as f:
        f.write(crafted)
    with pytest.warns(RuntimeWarning, match=r"graph-.*\.pkl: signature mismatch"), \
            pytest.raises(CheckpointError, match="no usable checkpoint"):
        StreamingContext.get_or_create(directory, setup)
    assert not marker.exists()


def test_a_checkpoint_unsigned_or_signed_with_another_key_is_refused(tmp_path, monkeypatch, caplog):
    write(tmp_path / "plain", 1000, [1.0])                    # written without a key
    monkeypatch.setenv(KEY_ENV, "key one")
    write(tmp_path / "one", 1000, [1.0])
    assert load_newest(str(tmp_path / "one")).time == 1000    # the same key reads it back
    with pytest.warns(RuntimeWarning, match=r"manifest\.json: not signed, but RUNNEL_CHECKPOINT_KEY is set"), \
            pytest.raises(CheckpointError):
        load_newest(str(tmp_path / "plain"))
    monkeypatch.setenv(KEY_ENV, "key two")
    with pytest.warns(RuntimeWarning, match=r"manifest\.json: signature mismatch"), pytest.raises(CheckpointError):
        load_newest(str(tmp_path / "one"))
    monkeypatch.delenv(KEY_ENV)
    with caplog.at_level(logging.WARNING, logger="runnel.checkpoint"):
        assert load_newest(str(tmp_path / "one")).time == 1000    # without a key nothing is checked ...
    assert f"is signed, but {KEY_ENV} is not set: its signatures are not checked" in caplog.text   # ... and said


def test_a_table_missing_from_a_signed_manifest_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "k")
    newest = write(tmp_path, 1000, [1.0])
    reseal(newest, lambda body: body["files"]["f00000.arrow"].pop("hmac"))    # the manifest's own MAC breaks
    with pytest.warns(RuntimeWarning, match="manifest.json: signature mismatch"), pytest.raises(CheckpointError):
        load_newest(str(tmp_path))


def test_checkpoint_files_and_directories_are_owner_only(ctx, clean_conf, tmp_path):
    old = os.umask(0o022)                                     # the usual umask: 0644 files, 0755 directories
    try:
        directory = str(tmp_path / "new" / "ck")              # runnel creates it
        ssc = StreamingContext(ctx, 1, clock=ManualClock())
        ssc.checkpoint(directory)
        ssc.queue_stream([[("a", 1)], [("a", 2)]]) \
            .update_state_by_key(updaters.running_sum()).named("totals").checkpoint(1).foreach_rdd(keep)
        ssc.start()
        ssc.run_batches(2)
        ssc.stop(stop_spark_context=False)
    finally:
        os.umask(old)
    assert mode(directory) == 0o700
    made = [os.path.join(root, n) for root, dirs, names in os.walk(directory) for n in dirs + names]
    assert any(p.endswith(".arrow") for p in made) and any("graph-" in p for p in made)
    assert {p: mode(p) for p in made} == {p: 0o700 if os.path.isdir(p) else 0o600 for p in made}


def test_a_checkpoint_directory_others_can_write_is_warned_about(tmp_path, caplog):
    d = tmp_path / "shared"
    d.mkdir()
    os.chmod(d, 0o777)
    with caplog.at_level(logging.WARNING, logger="runnel.checkpoint"):
        files.prepare_directory(str(d))
    assert f"checkpoint directory {d} is writable by other users" in caplog.text and KEY_ENV in caplog.text
