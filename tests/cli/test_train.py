"""`seqtool train-rnn` end to end: formats, files, --explain, Ctrl-C and --resume, bad input,
and a trained tagger used through `seqtool predict` (predict, sample and evaluate against
references: tests/cli/test_predict.py)."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from harness import assert_close
from naive import ref_log_softmax, ref_model_logits

from seqtool.commands.train import load_data
from seqtool.commands.trained import dataset_for_model, load_model
from seqtool.config import TrainConfig

PARITY = ["--data", "parity", "--seq-len", "6", "--samples", "200", "--hidden", "8",
          "--embedding-dim", "4", "--epochs", "2", "--batch-size", "16"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A trained tagger (echo, delay 2) that has learned its task."""
    from typer.testing import CliRunner

    from seqtool.cli import app

    base = tmp_path_factory.mktemp("runs")
    args = ["--data", "echo", "--delay", "2", "--samples", "600", "--cell", "lstm",
            "--hidden", "32", "--lr", "0.01", "--epochs", "10"]
    result = CliRunner().invoke(app, ["train-rnn", *args, "--out", str(base / "echo"), "-f", "json"])
    assert result.exit_code == 0, result.output
    return base


def test_json_summary_and_files(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("train-rnn", *PARITY, "--out", str(out), "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["task"] == "classify" and data["cell"] == "lstm"
    assert data["epochs_run"] == 2 and data["stop_reason"] == "completed"
    assert len(data["history"]) == 2 and data["out"] == str(out)
    assert set(data["history"][0]) >= {"epoch", "train_loss", "val_loss", "val_accuracy",
                                       "grad_norm", "tokens_per_s"}
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "metrics.jsonl", "model.npz",
                                              "model.json", "last.npz", "last.json"}
    # the baseline is the training set's majority label's rate on the validation set
    train, val_data = load_data(TrainConfig.from_mapping(
        {"data": "parity", "seq_len": 6, "samples": 200}))
    assert (len(train), len(val_data)) == (data["train_size"], data["val_size"]) == (180, 20)
    majority = np.bincount([int(y) for y in train.targets]).argmax()
    val_labels = np.array([int(y) for y in val_data.targets])
    assert data["baseline"] == {"majority_accuracy": float(np.mean(val_labels == majority))}
    # the summary's numbers are the model's: evaluate the saved best model again
    model = load_model(out)
    assert model.spec.task == "classify" and model.labels == ["even", "odd"]
    val = data["best_val"]
    logp = np.array([ref_log_softmax(ref_model_logits("lstm", model.params, x)[-1])
                     for x in val_data.inputs])  # (20, 2), from the loop reference
    assert_close(val["loss"], -logp[np.arange(len(val_labels)), val_labels].mean(),
                 dtype=np.float32, kind="exact", what="val loss")
    assert val["accuracy"] == np.mean(logp.argmax(axis=1) == val_labels)
    best = min(data["history"], key=lambda r: r["val_loss"])
    assert (best["epoch"], best["val_loss"], best["val_accuracy"]) == (
        data["best_epoch"], val["loss"], val["accuracy"])


def test_jsonl_streams_one_object_per_epoch_then_a_summary(cli, tmp_path):
    result = cli("train-rnn", *PARITY, "--epochs", "3", "--out", str(tmp_path / "r"),
                 "-f", "jsonl")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["epoch", "epoch", "epoch", "summary"]
    assert [line["epoch"] for line in lines[:3]] == [1, 2, 3]
    on_disk = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_loss"] for r in on_disk] == [line["val_loss"] for line in lines[:3]]


def test_csv_and_table(cli, tmp_path):
    rows = list(csv.reader(io.StringIO(
        cli("train-rnn", *PARITY, "--out", str(tmp_path / "a"), "-f", "csv").stdout)))
    assert rows[0][:5] == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
    assert [r[0] for r in rows[1:]] == ["1", "2"]
    on_disk = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [{k: float(v) for k, v in zip(rows[0], r) if k in ("train_loss", "val_loss",
                                                              "val_accuracy")} for r in rows[1:]] \
        == [{k: r[k] for k in ("train_loss", "val_loss", "val_accuracy")} for r in on_disk]
    table = cli("train-rnn", *PARITY, "--out", str(tmp_path / "b"), "-f", "table").stdout
    assert "classify on parity" in table and "val acc" in table and "summary" in table
    assert "majority accuracy" in table


def test_explain_shows_a_one_way_dependency_map(cli, runs):
    """The trained tagger's ‖∂y_t/∂x_s‖ is exactly zero above the diagonal."""
    from seqtool.core.dependency import dependency_map

    model = load_model(runs / "echo")
    data = dataset_for_model(model, "echo", seed=3, samples=20)
    dep = dependency_map(model.spec, model.params, data)
    norms = np.array(dep["norms"])
    assert norms.shape == (dep["steps"], dep["steps"])
    assert np.all(np.triu(norms, 1) == 0.0) and dep["max_above_diagonal"] == 0.0
    assert np.all(np.diag(norms) > 0) and np.all(np.tril(norms, -1)[1:, :-1].diagonal() > 0)


def test_dependency_map_is_torchs_jacobian_norms(runs, torch_model):
    """‖∂y_t/∂x_s‖_F (x_s the embedding row) from torch's autograd on the same weights."""
    import torch

    from seqtool.core.dependency import dependency_map

    model = load_model(runs / "echo")
    data = dataset_for_model(model, "echo", seed=3, samples=20)
    dep = dependency_map(model.spec, model.params, data)
    net = torch_model("lstm", model.params)
    ids = torch.as_tensor(np.asarray(data.inputs[dep["sequence"]])[:dep["steps"]])
    X = net.embedding(ids).detach()  # (T, E)

    def outputs(X):
        out, _ = net.rnn(X)
        return net.head(out)  # (T, O)

    J = torch.autograd.functional.jacobian(outputs, X).numpy()  # (T, O, T, E)
    expected = np.sqrt((J.astype(np.float64) ** 2).sum(axis=(1, 3)))  # (t, s)
    assert_close(np.array(dep["norms"]), expected, dtype=np.float32, kind="exact")


def test_explain_in_the_output(cli, tmp_path):
    result = cli("train-rnn", "--data", "echo", "--samples", "100", "--hidden", "8",
                 "--epochs", "1", "--out", str(tmp_path / "e"), "--explain", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["dependency"]["per_step"] is True
    assert data["dependency"]["max_above_diagonal"] == 0.0
    assert any("dependency map" in line for line in data["explanation"])
    assert any("reads x_1..x_t only" in line for line in data["explanation"])


def test_a_trained_tagger_predicts_the_token_two_steps_back(cli, runs):
    result = cli("predict", str(runs / "echo"), "--text", "abcdef")  # echo reads characters
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["tokens"] == ["a", "b", "c", "d", "e", "f"]
    assert row["tags"] == ["-", "-", "a", "b", "c", "d"]  # the token two steps back


COMPILE_NOTICES = ("seqtool: compiling the ", "seqtool: compiled the ")


def one_line_error(result, code=2):
    """The one error line (after any notice of a first compile, which depends on what this
    process or the cache holds already)."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines()
             if not line.startswith(COMPILE_NOTICES)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("seqtool: error: ")
    return lines[0] + "\n"


@pytest.mark.parametrize("args, message", [
    (["--data", "/no/such.tsv", "--task", "classify"], "does not exist"),
    (["--cell", "transformer"], "--cell is 'transformer'"),
    (["--dropout", "1"], "--dropout must be in [0, 1)"),
    (["--lr", "0"], "--lr must be a number > 0"),
    (["--val-fraction", "1.5"], "--val-fraction must be between 0 and 1"),
    (["--cell", "bow", "--data", "echo"], "bow (the bag-of-words baseline)"),
    (["--format", "xml"], "--format is 'xml'"),
    (["--hidden", "many"], "--hidden is 'many'"),
    (["--threads", "0"], "--threads must be a whole number ≥ 1, got 0"),
    (["--threads", "257"], "--threads is 257; at most 256 (threads of one process)"),
])
def test_bad_training_input(cli, tmp_path, args, message):
    err = one_line_error(cli("train-rnn", *args, "--out", str(tmp_path / "x")))
    assert message in err
    assert not (tmp_path / "x" / "model.npz").exists()


def test_bad_user_file_is_one_line(cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nfine film,pos\n")
    path.write_bytes(path.read_bytes() + b"\xff\xfe broken,neg\n")
    err = one_line_error(cli("train-rnn", "--data", str(path), "--task", "classify",
                             "--out", str(tmp_path / "x")))
    assert "UTF-8" in err or "utf-8" in err


def test_resume_refuses_a_changed_model(cli, tmp_path):
    out = tmp_path / "r"
    assert cli("train-rnn", *PARITY, "--out", str(out), "-f", "json").exit_code == 0
    err = one_line_error(cli("train-rnn", "--resume", str(out), "--lr", "0.5"))
    assert "--lr cannot change on --resume" in err
    longer = cli("train-rnn", "--resume", str(out), "--epochs", "3", "-f", "json")
    assert longer.exit_code == 0, longer.stderr
    assert longer.json()["epochs_run"] == 3
    steps_per_epoch = -(-180 // 16)  # 180 training sequences, batches of 16
    assert longer.json()["resumed_from"]["global_step"] == 2 * steps_per_epoch
    assert longer.json()["position"]["global_step"] == 3 * steps_per_epoch


def test_a_diverging_run_exits_1_and_keeps_its_checkpoint(cli, tmp_path):
    path = tmp_path / "numbers.csv"
    rows = ["seq,x1,y1"]
    for s in range(40):
        for t in range(3):
            rows.append(f"{s},{0.1 * t},{1e200 if s == 37 and t == 2 else 0.5}")
    path.write_text("\n".join(rows) + "\n")
    # in float64 1e200 fits, and its squared error (1e400) overflows: the loss diverges
    result = cli("train-rnn", "--data", str(path), "--task", "regress", "--cell", "rnn",
                 "--hidden", "4", "--epochs", "2", "--batch-size", "40", "--val-fraction", "0.1",
                 "--dtype", "float64", "--out", str(tmp_path / "d"), "-f", "json")
    err = one_line_error(result, code=1)
    assert "training diverged" in err and "loss became" in err
    # in float32 the value itself does not fit: the data is refused, naming it
    refused = one_line_error(cli("train-rnn", "--data", str(path), "--task", "regress",
                                 "--out", str(tmp_path / "e")))
    assert "--data has 1e+200 in sequence" in refused and "beyond the range of float32" in refused
    assert not (tmp_path / "e").exists()


def test_a_validation_loss_that_is_not_finite_stops_the_run_like_divergence(cli, tmp_path):
    def write(name, big_at):
        rows = ["seq,x1,y1"]
        for s in range(40 if name == "train" else 5):
            rows += [f"{s},{0.1 * t},{1e200 if s == big_at and t == 2 else 0.5}"
                     for t in range(3)]
        (tmp_path / f"{name}.csv").write_text("\n".join(rows) + "\n")
        return str(tmp_path / f"{name}.csv")

    result = cli("train-rnn", "--data", write("train", None), "--val", write("val", 2),
                 "--task", "regress", "--cell", "rnn", "--hidden", "4", "--epochs", "2",
                 "--dtype", "float64", "--out", str(tmp_path / "v"), "-f", "json")
    err = one_line_error(result, code=1)
    assert "the validation loss is not finite after epoch 1" in err
    assert not (tmp_path / "v" / "metrics.jsonl").exists()  # the epoch was not recorded


def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path, long_training):
    """A real SIGINT to the installed entry point: exit 1, one line naming the command that
    resumes; the resumed run finishes the schedule."""
    out = tmp_path / "run"
    proc = long_training(out)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("seqtool: error")]
    assert len(lines) == 1 and f"seqtool train-rnn --resume {out}" in lines[0]
    last = json.loads((out / "last.json").read_text())
    done = last["position"]["global_step"]
    assert done >= -(-1800 // 32)  # at least the epoch whose metrics line was awaited
    resumed = subprocess.run(
        [sys.executable, "-m", "seqtool", "train-rnn", "--resume", str(out), "--steps",
         str(done + 3), "-f", "json"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)
    assert data["resumed_from"]["global_step"] == done
    assert data["position"]["global_step"] == done + 3


def test_a_new_run_never_overwrites_an_old_one(cli, tmp_path):
    out = tmp_path / "r"
    assert cli("train-rnn", *PARITY, "--out", str(out), "-f", "json").exit_code == 0
    before = (out / "model.npz").read_bytes(), (out / "metrics.jsonl").read_text()
    err = one_line_error(cli("train-rnn", *PARITY, "--seed", "5", "--out", str(out)))
    assert "already holds a run" in err and f"--resume {out}" in err
    assert ((out / "model.npz").read_bytes(), (out / "metrics.jsonl").read_text()) == before


class Killed(BaseException):
    """The process dying (kill -9): nothing of seqtool's runs after it."""


@pytest.mark.parametrize("dies_in", ["last", "best"])
def test_a_run_killed_between_an_epochs_line_and_its_checkpoint_lists_each_epoch_once(
        cli, tmp_path, monkeypatch, dies_in):
    """Epoch 3's metrics line is written, then the process dies saving its checkpoint: the
    resumed run repeats epoch 3 from epoch 2's checkpoint, and metrics.jsonl lists every
    epoch once, with the numbers of a run that was never killed."""
    from seqtool.commands import train

    whole = tmp_path / "whole"
    assert cli("train-rnn", *PARITY, "--epochs", "4", "--out", str(whole)).exit_code == 0
    real = getattr(train.RunFiles, dies_in)

    def dying(self, *args):
        if (self.out / "metrics.jsonl").read_text().count("\n") == 3:
            raise Killed
        return real(self, *args)

    monkeypatch.setattr(train.RunFiles, dies_in, dying)
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        cli("train-rnn", *PARITY, "--epochs", "4", "--out", str(out))
    monkeypatch.undo()
    assert (out / "metrics.jsonl").read_text().count("\n") == 3  # epoch 3 listed, not saved
    resumed = cli("train-rnn", "--resume", str(out), "--epochs", "4", "-f", "json")
    assert resumed.exit_code == 0, resumed.stderr

    def lines(run):
        timing = ("seconds", "tokens_per_s")
        return [{k: v for k, v in json.loads(line).items() if k not in timing}
                for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert [r["epoch"] for r in lines(out)] == [1, 2, 3, 4]
    assert lines(out) == lines(whole)
