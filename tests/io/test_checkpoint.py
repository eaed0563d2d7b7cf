"""Checkpoints: bit-exact round trips, atomic writes, and clear refusals of bad files."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

from seqtool.core.errors import InputError
from seqtool.io.checkpoint import (CheckpointError, append_jsonl, load_checkpoint,
                                   save_checkpoint, write_atomic)


def sample_arrays():
    rng = np.random.default_rng(0)
    return {
        "weight_ih": rng.normal(size=(4, 3)).astype(np.float32),
        "weight_hh": rng.normal(size=(4, 4)),  # float64
        "tokens": rng.integers(-2**40, 2**40, size=(5,), dtype=np.int64),
        "m.weight_ih": np.array([[np.nan, -0.0, np.inf, 5e-324]], dtype=np.float64),
        "step": np.array(7, dtype=np.int64),  # 0-d
        "empty": np.zeros((0, 3), dtype=np.float32),
        "fortran": np.asfortranarray(rng.normal(size=(3, 2))),
        "file": np.ones(2),  # a key np.savez(file, **kw) could not take
    }


META = {"model": "lstm", "step": 120, "lr": 0.1 + 0.2, "seed": None,
        "config": {"hidden": [16, 32], "nested": {"deep": True, "name": "é"}}}


def only_files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_round_trip_is_bit_exact(tmp_path):
    arrays = sample_arrays()
    save_checkpoint(tmp_path / "run" / "x", "model", arrays, META)  # creates the folders
    loaded, meta = load_checkpoint(tmp_path / "run" / "x", "model")
    assert meta == META
    assert list(loaded) == list(arrays)
    for k, a in arrays.items():
        assert type(loaded[k]) is np.ndarray and loaded[k].dtype == a.dtype, k
        assert loaded[k].shape == a.shape
        assert loaded[k].tobytes() == a.tobytes(), k  # bit for bit, NaN and -0.0 included
    document = json.loads((tmp_path / "run" / "x" / "model.json").read_text())
    assert document["format"] == "seqtool-checkpoint" and document["format_version"] == 1
    assert document["arrays"]["weight_ih"] == [[4, 3], "<f4"]
    assert document["arrays"]["step"] == [[], "<i8"]
    assert only_files(tmp_path / "run" / "x") == ["model.json", "model.npz"]


def test_npz_is_readable_by_numpy_without_pickle(tmp_path):
    arrays = sample_arrays()
    save_checkpoint(tmp_path, "model", arrays, {})
    with np.load(tmp_path / "model.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted(arrays)
        np.testing.assert_array_equal(z["weight_hh"], arrays["weight_hh"])


def test_overwrite_replaces_both_files(tmp_path):
    save_checkpoint(tmp_path, "model", {"w": np.zeros(3)}, {"step": 1})
    save_checkpoint(tmp_path, "model", {"w": np.ones((2, 2), np.float32)}, {"step": 2})
    arrays, meta = load_checkpoint(tmp_path, "model")
    assert meta == {"step": 2} and arrays["w"].dtype == np.float32
    assert only_files(tmp_path) == ["model.json", "model.npz"]


# --------------------------------------------------------------------------- atomic writes

def test_write_atomic_writes_bytes_and_text(tmp_path):
    write_atomic(tmp_path / "a.txt", "héllo\n")
    write_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_write_atomic_failure_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    write_atomic(target, "old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert only_files(tmp_path) == ["metrics.json"]


def test_save_failure_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, "model", {"w": np.zeros(3)}, {"step": 1})
    before = {n: (tmp_path / n).read_bytes() for n in only_files(tmp_path)}
    calls = []

    def broken_replace(src, dst):
        calls.append(dst)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CheckpointError, match="cannot write the checkpoint .No space left"):
        save_checkpoint(tmp_path, "model", {"w": np.ones(3)}, {"step": 2})
    assert not any(str(c).endswith(".json") for c in calls)  # the json was never tried
    assert {n: (tmp_path / n).read_bytes() for n in only_files(tmp_path)} == before
    monkeypatch.undo()
    assert load_checkpoint(tmp_path, "model")[1] == {"step": 1}


def test_json_failure_after_npz_loads_the_old_pair(tmp_path, monkeypatch):
    """A failure between the two renames leaves the new npz beside the old json: the old
    npz, kept aside, is what the json names, so the old checkpoint loads whole."""
    save_checkpoint(tmp_path, "model", {"w": np.zeros(3)}, {"step": 1})
    real_replace = os.replace

    def fail_on_json(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_json)
    with pytest.raises(CheckpointError):
        save_checkpoint(tmp_path, "model", {"w": np.ones(3)}, {"step": 2})
    monkeypatch.undo()
    arrays, meta = load_checkpoint(tmp_path, "model")
    assert meta == {"step": 1} and arrays["w"].tolist() == [0.0, 0.0, 0.0]
    save_checkpoint(tmp_path, "model", {"w": np.ones(3)}, {"step": 3})
    assert load_checkpoint(tmp_path, "model")[1] == {"step": 3}
    assert only_files(tmp_path) == ["model.json", "model.npz"]


class Killed(BaseException):
    """The process dying at a file-system call: no except clause of ours runs after it."""


@pytest.mark.parametrize("at", range(6))
def test_a_save_killed_at_any_step_leaves_a_whole_checkpoint(tmp_path, monkeypatch, at):
    """kill -9 at each rename or removal of a save (deterministically: the at-th call dies):
    the checkpoint loads as the old pair or the new one, never a torn pair, and the next
    save leaves exactly the two files."""
    old = ({"w": np.zeros(3), "b": np.arange(2.0)}, {"step": 1})
    new = ({"w": np.ones(3), "b": np.arange(2.0) + 5}, {"step": 2})
    save_checkpoint(tmp_path, "model", *old)
    calls = {"n": 0}
    real_replace, real_unlink = os.replace, os.unlink

    def dying(real):
        def call(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == at + 1:
                raise Killed
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(os, "replace", dying(real_replace))
    monkeypatch.setattr(os, "unlink", dying(real_unlink))
    monkeypatch.setattr(type(tmp_path), "unlink", lambda self, missing_ok=False:
                        dying(real_unlink)(self))
    try:
        save_checkpoint(tmp_path, "model", *new)
        finished = True
    except Killed:
        finished = False
    monkeypatch.undo()
    arrays, meta = load_checkpoint(tmp_path, "model")
    expected = new if finished or meta == new[1] else old
    assert meta == expected[1]
    assert all(arrays[k].tolist() == v.tolist() for k, v in expected[0].items())
    save_checkpoint(tmp_path, "model", *new)
    assert load_checkpoint(tmp_path, "model")[1] == new[1]
    assert only_files(tmp_path) == ["model.json", "model.npz"]


# --------------------------------------------------------------------------- bad files

@pytest.fixture
def saved(tmp_path):
    save_checkpoint(tmp_path, "model", {"w": np.arange(6.0).reshape(2, 3),
                                        "b": np.zeros(3, np.float32)}, {"step": 3})
    return tmp_path


def refused(directory, match, key="checkpoint"):
    with pytest.raises(CheckpointError, match=match) as err:
        load_checkpoint(directory, "model", key=key)
    text = str(err.value)
    assert "\n" not in text and str(directory) in text
    assert err.value.key == key and isinstance(err.value, InputError)
    return text


def edit_json(directory, change):
    path = directory / "model.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_error_message_reads_after_the_flag(saved):
    (saved / "model.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    text = refused(saved, "bad zip file", key="resume")
    assert text.startswith(f"resume {saved}: model.npz is not a seqtool checkpoint (bad zip file")


def test_object_array_npz_is_refused(saved):
    np.savez(saved / "model.npz", w=np.array([{"a": 1}, None], dtype=object),
             b=np.zeros(3, np.float32))
    refused(saved, r"model\.npz holds 'w' as an object array")


def test_truncated_npz_is_refused(saved):
    data = (saved / "model.npz").read_bytes()
    (saved / "model.npz").write_bytes(data[: len(data) // 2])
    refused(saved, r"model\.npz is not a seqtool checkpoint \(bad zip file")


def test_truncated_entry_is_refused_before_reading(saved):
    """A zip whose .npy entry is cut short (zip directory intact)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        full = io.BytesIO()
        np.lib.format.write_array(full, np.arange(6.0).reshape(2, 3))
        zf.writestr("w.npy", full.getvalue()[:-8])
        full = io.BytesIO()
        np.lib.format.write_array(full, np.zeros(3, np.float32))
        zf.writestr("b.npy", full.getvalue())
    (saved / "model.npz").write_bytes(buf.getvalue())
    refused(saved, r"model\.npz holds 'w' truncated")


def test_random_bytes_are_refused(saved):
    (saved / "model.npz").write_bytes(np.random.default_rng(0).bytes(300))
    refused(saved, r"model\.npz is not a seqtool checkpoint \(not a zip file\)")


def test_npy_instead_of_npz_is_refused(saved):
    np.save(saved / "x.npy", np.zeros(3))
    os.replace(saved / "x.npy", saved / "model.npz")
    refused(saved, r"model\.npz is not a seqtool checkpoint \(not a zip file\)")


def test_json_that_is_not_json(saved):
    (saved / "model.json").write_text("{'step': 3,")
    refused(saved, r"model\.json is not JSON \(.* at line 1 column 2\)")
    (saved / "model.json").write_bytes(b"\xff\xfe\x00garbage")
    refused(saved, r"model\.json is not JSON \(not UTF-8 text\)")


def test_json_from_another_program(saved):
    (saved / "model.json").write_text(json.dumps({"name": "my-model", "epochs": 3}))
    refused(saved, r"model\.json is not a seqtool checkpoint \(no \"format\" key")
    (saved / "model.json").write_text(json.dumps({"format": "keras"}))
    refused(saved, r"model\.json is not a seqtool checkpoint \(format 'keras'")
    (saved / "model.json").write_text("[1, 2, 3]")
    refused(saved, r"model\.json is not a seqtool checkpoint \(a JSON list")


def test_newer_format_version(saved):
    edit_json(saved, lambda d: d.update(format_version=2))
    refused(saved, r"model\.json has format_version 2, written by a newer seqtool")


def test_malformed_array_listing(saved):
    edit_json(saved, lambda d: d["arrays"].update(w="float64"))
    refused(saved, r"model\.json has a malformed \"arrays\" entry for 'w'")
    edit_json(saved, lambda d: d["arrays"].update(w=[[2, 3], "not-a-dtype"]))
    refused(saved, r"model\.json has a malformed \"arrays\" entry for 'w'")


def test_missing_npz(saved):
    (saved / "model.npz").unlink()
    refused(saved, r"model\.npz is missing \(model\.json names it\)")


def test_missing_json(saved):
    (saved / "model.json").unlink()
    refused(saved, r"model\.json is missing")


def test_missing_both_and_missing_directory(saved):
    (saved / "model.json").unlink()
    (saved / "model.npz").unlink()
    refused(saved, r"no checkpoint 'model' \(model\.npz and model\.json are both missing\)")
    refused(saved / "nope", r"nope: no such directory")


def test_shape_mismatch(saved):
    edit_json(saved, lambda d: d["arrays"].update(w=[[3, 2], "<f8"]))
    refused(saved, r"model\.npz holds 'w' as <f8 \(2, 3\) but model\.json says <f8 \(3, 2\)")


def test_dtype_mismatch(saved):
    edit_json(saved, lambda d: d["arrays"].update(b=[[3], "<f8"]))
    refused(saved, r"model\.npz holds 'b' as <f4 \(3,\) but model\.json says <f8 \(3,\)")


def test_extra_array(saved):
    edit_json(saved, lambda d: d["arrays"].pop("b"))
    refused(saved, r"model\.npz holds an array 'b' that model\.json does not list")


def test_missing_array(saved):
    edit_json(saved, lambda d: d["arrays"].update(c=[[1], "<f8"]))
    refused(saved, r"model\.npz lacks the array 'c' that model\.json lists")


def test_npz_from_another_save_is_refused(saved, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    save_checkpoint(other, "model", {"w": np.ones((2, 3)), "b": np.ones(3, np.float32)}, {})
    os.replace(other / "model.npz", saved / "model.npz")  # same keys, shapes and dtypes
    refused(saved, r"model\.npz does not match model\.json \(checksum differs")


# --------------------------------------------------------------------------- never unpickle

class SideEffect:
    """Unpickling this creates the file ``path`` (what a hostile pickle could do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def write_hostile_npz(path, marker):
    np.savez(path, w=np.array([SideEffect(marker)], dtype=object), b=np.zeros(3, np.float32))


def test_the_bait_works(tmp_path):
    """Control: loading the hostile file WITH pickle does create the marker file."""
    marker = tmp_path / "pwned-control"
    write_hostile_npz(tmp_path / "bait.npz", marker)
    with np.load(tmp_path / "bait.npz", allow_pickle=True) as z:
        z["w"]
    assert marker.exists()


@pytest.mark.parametrize("listed_as", [[[2, 3], "<f8"], [[1], "|O"]])
def test_pickled_content_is_never_unpickled(saved, listed_as):
    marker = saved / "pwned"
    write_hostile_npz(saved / "model.npz", marker)
    edit_json(saved, lambda d: d["arrays"].update(w=listed_as))
    refused(saved, r"model\.(npz holds 'w' as an object array|json lists 'w' with dtype '\|O')")
    assert not marker.exists()


def test_save_refuses_object_arrays_and_bad_names(tmp_path):
    with pytest.raises(CheckpointError, match=r"'w' has dtype object; .*no pickle"):
        save_checkpoint(tmp_path, "model", {"w": np.array([None], dtype=object)}, {})
    with pytest.raises(CheckpointError, match="not a plain file name"):
        save_checkpoint(tmp_path, "../model", {}, {})
    with pytest.raises(CheckpointError, match="reserved key 'arrays'"):
        save_checkpoint(tmp_path, "model", {}, {"arrays": 1})
    with pytest.raises(CheckpointError, match=r"meta is not JSON"):
        save_checkpoint(tmp_path, "model", {}, {"loss": float("nan")})
    with pytest.raises(CheckpointError, match=r"meta is not JSON"):
        save_checkpoint(tmp_path, "model", {}, {"f": object()})
    assert only_files(tmp_path) == []


def test_checkpoint_error_takes_key_and_message_like_input_error():
    err = CheckpointError("runs/x: model.npz is missing")
    assert err.key == "checkpoint" and str(err) == "checkpoint runs/x: model.npz is missing"
    err = CheckpointError("resume", "runs/x: model.npz is missing")
    assert err.key == "resume" and err.message == "runs/x: model.npz is missing"
    assert isinstance(err, InputError) and isinstance(err, ValueError)
    with pytest.raises(TypeError):
        CheckpointError()


# --------------------------------------------------------------------------- jsonl

def test_append_jsonl(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    append_jsonl(path, {"step": 1, "loss": np.float32(0.5), "grad": np.array([1.0, 2.0])})
    append_jsonl(path, {"step": np.int64(2), "loss": float("nan"), "note": "a\nb"})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"step": 1, "loss": 0.5, "grad": [1.0, 2.0]},
        {"step": 2, "loss": None, "note": "a\nb"},
    ]
