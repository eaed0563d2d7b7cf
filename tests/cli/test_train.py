"""`seqtool train-rnn`, `predict`, `sample` and `evaluate` end to end: formats, files,
--explain, Ctrl-C and --resume, bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from seqtool.core.training import evaluate
from seqtool.commands.trained import dataset_for_model, load_model

PARITY = ["--data", "parity", "--seq-len", "6", "--samples", "200", "--hidden", "8",
          "--embedding-dim", "4", "--epochs", "2", "--batch-size", "16"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three small trained runs: classify (parity), tag (echo), lm (dyck)."""
    from typer.testing import CliRunner

    from seqtool.cli import app

    base = tmp_path_factory.mktemp("runs")
    runner = CliRunner()
    commands = {
        "parity": PARITY + ["--cell", "gru", "--epochs", "12", "--hidden", "16", "--lr", "0.02",
                            "--samples", "600"],
        "echo": ["--data", "echo", "--delay", "2", "--samples", "600", "--cell", "lstm",
                 "--hidden", "32", "--lr", "0.01", "--epochs", "10"],
        "dyck": ["--data", "dyck", "--samples", "400", "--cell", "lstm", "--hidden", "24",
                 "--lr", "0.01", "--epochs", "4"],
    }
    for name, args in commands.items():
        result = runner.invoke(app, ["train-rnn", *args, "--out", str(base / name), "-f", "json"])
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
    assert "majority_accuracy" in data["baseline"]
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "metrics.jsonl", "model.npz",
                                              "model.json", "last.npz", "last.json"}
    # the summary's numbers are the model's: evaluate the saved best model again
    model = load_model(out)
    assert model.spec.task == "classify" and model.labels == ["even", "odd"]
    val = data["best_val"]
    assert 0.0 <= val["accuracy"] <= 1.0 and val["loss"] > 0


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


def test_explain_in_the_output(cli, tmp_path):
    result = cli("train-rnn", "--data", "echo", "--samples", "100", "--hidden", "8",
                 "--epochs", "1", "--out", str(tmp_path / "e"), "--explain", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["dependency"]["per_step"] is True
    assert data["dependency"]["max_above_diagonal"] == 0.0
    assert any("dependency map" in line for line in data["explanation"])
    assert any("reads x_1..x_t only" in line for line in data["explanation"])


def test_predict_classify_from_flags_and_stdin(cli, runs):
    one = cli("predict", str(runs / "parity"), "--text", "0 1 1 0 1 0", "--text", "1 1 0 0 0 0")
    assert one.exit_code == 0, one.stderr
    rows = [json.loads(line) for line in one.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["odd", "even"]
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1.0)
    piped = cli("predict", str(runs / "parity"), input="0 1 1 0 1 0\n1 1 0 0 0 0\n")
    assert piped.stdout == one.stdout
    table = cli("predict", str(runs / "parity"), "--text", "0 0 0 0 0 1", "-f", "table").stdout
    assert "odd" in table and "p(label)" in table


def test_predict_tags(cli, runs):
    result = cli("predict", str(runs / "echo"), "--text", "abcdef")  # echo reads characters
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["tokens"] == ["a", "b", "c", "d", "e", "f"]
    assert row["tags"][2:] == ["a", "b", "c", "d"]  # the token two steps back


def test_sample_is_seeded_and_greedy_at_temperature_0(cli, runs):
    a = cli("sample", str(runs / "dyck"), "--length", "30", "--seed", "4", "-f", "json")
    b = cli("sample", str(runs / "dyck"), "--length", "30", "--seed", "4", "-f", "json")
    assert a.exit_code == 0, a.stderr
    assert a.stdout == b.stdout
    data = a.json()
    assert set(data["text"]) <= set("()[]$") and 0 < len(data["tokens"]) <= 30
    assert data["logprob"] <= 0
    greedy = [cli("sample", str(runs / "dyck"), "--temperature", "0", "--seed", str(s),
                  "-f", "json").json()["text"] for s in (1, 2)]
    assert greedy[0] == greedy[1]


def test_sample_continues_a_prime(cli, runs):
    result = cli("sample", str(runs / "dyck"), "--prime", "^([", "--length", "20", "--seed", "2",
                 "--temperature", "0", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["prime"] == "^([" and data["start"] == "^(["
    assert set(data["text"]) <= set("()[]$")
    err = one_line_error(cli("sample", str(runs / "dyck"), "--prime", "(x"))
    assert "--prime has 'x', which the model's vocabulary lacks" in err


def test_evaluate_matches_the_core(cli, runs):
    result = cli("evaluate", str(runs / "parity"), "--data", "parity", "--seed", "7",
                 "--samples", "100")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    model = load_model(runs / "parity")
    expected = evaluate(model.spec, model.params,
                        dataset_for_model(model, "parity", seed=7, samples=100))
    assert data["loss"] == expected.loss and data["accuracy"] == expected.metric
    assert data["sequences"] == 100


def test_evaluate_a_file(cli, runs, tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("text\tlabel\n0 1 1 0 0 0\teven\n1 0 0 0 0 0\todd\n")
    result = cli("evaluate", str(runs / "parity"), "--data", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.json()["sequences"] == 2


def one_line_error(result, code=2):
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("seqtool: error: ")
    return result.stderr


@pytest.mark.parametrize("args, message", [
    (["--data", "/no/such.tsv", "--task", "classify"], "does not exist"),
    (["--cell", "transformer"], "--cell is 'transformer'"),
    (["--dropout", "1"], "--dropout must be in [0, 1)"),
    (["--lr", "0"], "--lr must be a number > 0"),
    (["--val-fraction", "1.5"], "--val-fraction must be between 0 and 1"),
    (["--cell", "bow", "--data", "echo"], "bow (the bag-of-words baseline)"),
    (["--format", "xml"], "--format is 'xml'"),
    (["--hidden", "many"], "--hidden is 'many'"),
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


def test_bad_use_of_a_run(cli, runs, tmp_path):
    assert "no such directory" in one_line_error(cli("predict", str(tmp_path / "none"),
                                                     "--text", "x"))
    assert "sample needs a language model" in one_line_error(
        cli("sample", str(runs / "parity")))
    assert "predict labels texts with a classify or tag model" in one_line_error(
        cli("predict", str(runs / "dyck"), "--text", "()"))
    assert "--temperature must be ≥ 0" in one_line_error(
        cli("sample", str(runs / "dyck"), "--temperature", "-1"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.npz", "model.json"):
        (broken / name).write_bytes((runs / "parity" / name).read_bytes())
    (broken / "model.npz").write_bytes(b"PK\x03\x04 truncated")
    assert "model.npz" in one_line_error(cli("predict", str(broken), "--text", "0 1"))


def test_resume_refuses_a_changed_model(cli, tmp_path):
    out = tmp_path / "r"
    assert cli("train-rnn", *PARITY, "--out", str(out), "-f", "json").exit_code == 0
    err = one_line_error(cli("train-rnn", "--resume", str(out), "--lr", "0.5"))
    assert "--lr cannot change on --resume" in err
    longer = cli("train-rnn", "--resume", str(out), "--epochs", "3", "-f", "json")
    assert longer.exit_code == 0, longer.stderr
    assert longer.json()["epochs_run"] == 3
    assert longer.json()["resumed_from"]["global_step"] > 0


def test_a_diverging_run_exits_1_and_keeps_its_checkpoint(cli, tmp_path):
    path = tmp_path / "numbers.csv"
    rows = ["seq,x1,y1"]
    for s in range(40):
        for t in range(3):
            rows.append(f"{s},{0.1 * t},{1e200 if s == 37 and t == 2 else 0.5}")
    path.write_text("\n".join(rows) + "\n")
    result = cli("train-rnn", "--data", str(path), "--task", "regress", "--cell", "rnn",
                 "--hidden", "4", "--epochs", "2", "--batch-size", "40", "--val-fraction", "0.1",
                 "--out", str(tmp_path / "d"), "-f", "json")
    err = one_line_error(result, code=1)
    assert "training diverged" in err and "loss became" in err


def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path):
    """A real SIGINT to the installed entry point: exit 1, one line naming the command that
    resumes; the resumed run finishes the schedule."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "seqtool", "train-rnn", "--data", "parity", "--seq-len", "8",
            "--samples", "2000", "--hidden", "32", "--epochs", "400", "--out", str(out),
            "-f", "jsonl"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    deadline = time.monotonic() + 120
    metrics = out / "metrics.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("seqtool: error")]
    assert len(lines) == 1 and f"seqtool train-rnn --resume {out}" in lines[0]
    last = json.loads((out / "last.json").read_text())
    done = last["position"]["global_step"]
    assert done > 0
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
