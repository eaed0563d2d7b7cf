"""`seqtool export` through the CLI: the written file computes the model (run here in its
runtime against seqtool's forward pass), its format follows --to or the extension, the
check refuses a file that differs (exit 1, nothing written), and bad requests are one line
with exit 2 that never overwrite a file that is not an export."""

from __future__ import annotations

import io
import json
import re
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from seqtool.commands.use import load_run
from seqtool.export.check import reference_outputs, sample_inputs

COMMON = ["--hidden", "6", "--embedding-dim", "4", "--epochs", "1", "--samples", "64",
          "--batch-size", "16", "-f", "json"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny trained runs: a float64 GRU classifier with attention pooling, and a
    float32 LSTM seq2seq model with a bidirectional encoder."""
    from typer.testing import CliRunner

    from seqtool.cli import app

    root = tmp_path_factory.mktemp("export")
    specs = {
        "classify": ["--data", "parity", "--cell", "gru", "--pool", "attention",
                     "--selector", "sparsemax", "--dtype", "float64"],
        "seq2seq": ["--data", "reverse", "--cell", "lstm", "--bidirectional",
                    "--score", "general"],
    }
    for name, args in specs.items():
        done = CliRunner().invoke(app, ["train-rnn", *args, *COMMON, "--out", str(root / name)])
        assert done.exit_code == 0, done.output
    return root


def test_onnx_export_computes_the_model(cli, runs, tmp_path):
    out = tmp_path / "parity.onnx"
    result = cli("export", str(runs / "classify"), "-o", str(out), "-f", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "onnx" and report["written"] and report["bytes"] == out.stat().st_size
    assert report["checked_with"].startswith("onnxruntime ")
    assert report["max_error"] <= 1e-9  # float64 end to end
    assert [i["name"] for i in report["inputs"]] == ["ids", "lengths"]
    assert [o["name"] for o in report["outputs"]] == ["logits", "attention"]
    # independently of the command's own check: onnxruntime on other inputs
    model = load_run(str(runs / "classify"))
    inputs = sample_inputs(model.spec, batch=5, steps=11, seed=7)
    session = onnxruntime.InferenceSession(out.read_bytes(), providers=["CPUExecutionProvider"])
    logits, attention = session.run(None, inputs)
    expected = reference_outputs(model.spec, model.params, inputs)
    np.testing.assert_allclose(logits, expected["logits"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(attention, expected["attention"], rtol=1e-9, atol=1e-12)
    meta = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["seqtool"])
    assert meta["vocab"] == model.meta["vocab"] and meta["labels"] == model.labels
    assert meta["tokenizer"] == "char" and meta["tokenizer_pattern"] is None  # parity: chars


def test_the_word_pattern_in_the_metadata_is_seqtools_tokenizer(runs):
    """Code without seqtool tokenises with the metadata's pattern as training did."""
    from seqtool.core.data.vocab import tokenize
    from seqtool.export import metadata

    model = load_run(str(runs / "classify"))
    meta = metadata(model.spec, {**model.meta, "tokenizer": "word"})
    for text in ("Don't stop -- it's 3.5 stars, not 2!", "ÉTÉ à Zürich: l'été", "a\tb\nc"):
        assert re.findall(meta["tokenizer_pattern"], text.lower()) == tokenize(text, "word")


def test_torch_export_from_the_extension_runs_without_seqtool_code(cli, runs, tmp_path):
    out = tmp_path / "rev.pt"
    result = cli("export", str(runs / "seq2seq"), "-o", str(out), "-f", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == "torch" and report["max_error"] <= 1e-4
    files = {"seqtool.json": ""}
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; it still loads
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(io.BytesIO(out.read_bytes()), _extra_files=files)
    meta = json.loads(files["seqtool.json"])
    assert meta["spec"]["task"] == "seq2seq" and meta["vocab"][2:4] == ["<s>", "</s>"]
    model = load_run(str(runs / "seq2seq"))
    inputs = sample_inputs(model.spec, batch=3, steps=6, seed=4)
    with torch.no_grad():
        logits, attention = module(*[torch.from_numpy(inputs[n]) for n in
                                     ("src", "src_lengths", "tgt", "tgt_lengths")])
    expected = reference_outputs(model.spec, model.params, inputs)
    real = np.arange(logits.shape[1])[None, :] < inputs["tgt_lengths"][:, None]
    np.testing.assert_allclose(logits.numpy()[real], expected["logits"][real], rtol=1e-4,
                               atol=1e-5)


def test_table_says_what_was_written_and_checked(cli, runs, tmp_path):
    out = tmp_path / "m.onnx"
    result = cli("export", str(runs / "classify"), "--to", "onnx", "-o", str(out),
                 "-f", "table")
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())  # undo the table's line wrapping
    assert f"wrote {out}: ONNX of the classify gru model" in text
    assert "checked with onnxruntime" in text and "tolerance 1e-09" in text
    assert "inputs ids (B, T) int64" in text and "outputs logits (B, 2) float" in text


def test_no_check_writes_and_says_so(cli, runs, tmp_path):
    out = tmp_path / "m.onnx"
    result = cli("export", str(runs / "classify"), "-o", str(out), "--no-check", "-f", "json")
    report = json.loads(result.stdout)
    assert out.exists() and report["checked_with"] is None and report["max_error"] is None
    assert report["notes"] == ["not checked (--no-check)"]


def test_a_file_that_differs_fails_and_is_not_written(cli, runs, tmp_path, monkeypatch):
    from seqtool.export import check

    real = check.run_exported

    def off_by_a_little(fmt, data, spec, inputs):
        outputs = real(fmt, data, spec, inputs)
        outputs["logits"] = outputs["logits"] + 1e-3
        return outputs

    monkeypatch.setattr(check, "run_exported", off_by_a_little)
    out = tmp_path / "m.onnx"
    out.write_bytes(b"an earlier export")
    result = cli("export", str(runs / "classify"), "-o", str(out), "-f", "json")
    assert result.exit_code == 1
    assert "differs from seqtool by 0.001" in result.stderr and "not written" in result.stderr
    assert out.read_bytes() == b"an earlier export"
    assert json.loads(result.stdout)["written"] is False


@pytest.mark.parametrize("args, message", [
    (["-o", "x.txt"], "--to is not given and 'x.txt' does not say it: give --to torch or "
     "onnx, or an --out ending in .pt or .onnx"),
    (["--to", "tflite", "-o", "x.tfl"], "--to is 'tflite'; choose one of torch, onnx"),
    (["--to", "onnx"], "--out is missing: give the file to write, e.g. -o model.onnx"),
    (["-o", "no/such/folder/x.onnx"], "--out is no/such/folder/x.onnx, in a folder that "
     "does not exist (no/such/folder)"),
])
def test_bad_requests_are_one_line(cli, runs, args, message):
    result = cli("export", str(runs / "classify"), *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"seqtool: error: {message}"


def test_never_overwrites_a_file_that_is_not_an_export(cli, runs):
    checkpoint = runs / "classify" / "model.npz"
    before = checkpoint.read_bytes()
    result = cli("export", str(runs / "classify"), "--to", "onnx", "-o", str(checkpoint))
    assert result.exit_code == 2
    assert "an existing file that is not a .onnx export; seqtool will not overwrite it" \
        in result.stderr
    assert checkpoint.read_bytes() == before


def test_missing_run_and_missing_package(cli, runs, tmp_path, monkeypatch):
    result = cli("export", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.onnx"))
    assert result.exit_code == 2 and "nothing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    from seqtool.commands import export

    monkeypatch.setattr(export, "_installed", lambda module: module != "onnx")
    result = cli("export", str(runs / "classify"), "-o", str(tmp_path / "x.onnx"))
    assert result.exit_code == 2
    assert result.stderr.strip() == ("seqtool: error: --to onnx needs the onnx package, which "
                                     "is not installed: pip install 'seqtool[export]'")
    monkeypatch.setattr(export, "_installed", lambda module: module != "onnxruntime")
    result = cli("export", str(runs / "classify"), "-o", str(tmp_path / "y.onnx"), "-f", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["notes"] == [
        "not checked: onnxruntime is not installed (pip install 'seqtool[export]')"]
