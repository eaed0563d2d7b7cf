"""Hostile input (#14): every bad input is exit 2 with one line naming the flag, key or
file, never a traceback or an "internal error", and nothing is written where it should
not be."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from seqtool.io.output import NON_FINITE_KEY, write_json, write_jsonl


def one_line_error(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines()  # after any compile notice
             if not line.startswith(("seqtool: compiling the ", "seqtool: compiled the "))]
    assert len(lines) == 1, result.stderr
    assert "internal error" not in lines[0] and "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("args", [
    ("attend", "-q", "3,-1", "-s", "gumbel", "--seed", "-1"),
    ("bptt", "--steps", "3", "--seed", "-1"),
    ("compare-selectors", "-q", "3,-1", "--seed", "-1"),
    ("train-rnn", "--data", "parity", "--seed", "-1"),
])
def test_a_negative_seed_is_refused_by_the_config(cli, args):
    assert "--seed must be a whole number ≥ 0 (a seed), got -1" in one_line_error(cli(*args))


@pytest.mark.parametrize("value", ["3,,-1", "3, ,-1", "1,2;3,,4"])
def test_two_commas_with_nothing_between_are_a_typo(cli, value):
    assert "--query has two commas with nothing between them" in one_line_error(
        cli("attend", "-q", value))


def test_a_whole_number_of_hundreds_of_digits_is_refused(cli):
    big = "9" * 400
    error = one_line_error(cli("bptt", "--steps", big))
    assert "--steps is 999" in error and "(400 characters)" in error and len(error) < 200


def recipe(tmp_path, text: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, words", [
    ("name: x\ncommand: [attend]\nparams: {query: '3,-1'}\n", "command: is a list"),
    ("name: x\ncommand: bptt\nparams: {steps: 3}\nsweep: {seeds: [0, -1]}\n",
     "params.seed: must be a whole number ≥ 0"),
    ("name: x\ncommand: bptt\nparams: {steps: " + "1" * 300 + "}\n", "params.steps: is 111"),
    ("name: ../outside\ncommand: attend\nparams: {query: '3,-1'}\n", "name: is '../outside'"),
    ("name: /tmp/abs\ncommand: attend\nparams: {query: '3,-1'}\n", "name: is '/tmp/abs'"),
])
def test_recipes_that_cannot_run_are_refused_before_anything_is_written(cli, tmp_path,
                                                                         monkeypatch, text,
                                                                         words):
    monkeypatch.chdir(tmp_path)
    path = recipe(tmp_path, text)
    assert words in one_line_error(cli("run", path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml"]


def test_json_output_writes_null_for_nan_and_infinity_and_says_where():
    out = io.StringIO()
    write_json({"loss": float("nan"), "curve": [1.0, np.float32(np.inf)],
                "weights": np.array([[0.5, -np.inf]]), "ok": 2}, out)
    data = json.loads(out.getvalue())  # valid JSON: no NaN or Infinity tokens
    assert data["loss"] is None and data["curve"] == [1.0, None] and data["ok"] == 2
    assert data["weights"] == [[0.5, None]]
    assert data[NON_FINITE_KEY]["at"] == ["loss", "curve[1]", "weights[0][1]"]
    assert data[NON_FINITE_KEY]["count"] == 3
    clean = io.StringIO()
    write_json({"loss": 0.25}, clean)
    assert NON_FINITE_KEY not in json.loads(clean.getvalue())
    line = io.StringIO()
    write_jsonl({"epoch": 3, "val_loss": math.inf, "acc": np.float32(0.5)}, line)
    assert json.loads(line.getvalue()) == {"epoch": 3, "val_loss": None, "acc": 0.5}


# -- Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_while_seqtool_starts_is_one_line(tmp_path):
    """A Ctrl-C that lands while the imports run (made deterministic: importing typer
    raises KeyboardInterrupt) ends with seqtool's line and exit 1, not a traceback."""
    import subprocess
    import sys

    code = ("import sys\n"
            "class CtrlC:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'typer':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, CtrlC())\n"
            "sys.argv = ['seqtool', 'attend', '-q', '3,-1']\n"
            "from seqtool.cli import main\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr, done.stdout) == (1, "seqtool: error: interrupted\n", "")


@pytest.mark.parametrize("command", ["bptt", "attend", "compare-selectors"])
def test_ctrl_c_inside_a_command_is_one_line(command):
    """Typer answers a KeyboardInterrupt inside a command with a silent exit 130; seqtool
    says its line and exits 1 (made deterministic: the command's run raises it)."""
    import subprocess
    import sys

    module = {"compare-selectors": "compare"}.get(command, command)
    code = ("import sys\n"
            f"import seqtool.commands.{module} as command\n"
            "def ctrl_c(*args, **kwargs):\n"
            "    raise KeyboardInterrupt\n"
            "command.run = ctrl_c\n"
            f"sys.argv = ['seqtool', '{command}', '-q', '3,-1'][:2 if '{command}' == 'bptt' else 4]\n"
            "from seqtool.cli import main\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr, done.stdout) == (1, "seqtool: error: interrupted\n", "")


def test_a_second_ctrl_c_ends_with_one_line_and_a_run_that_resumes(tmp_path, long_training):
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    proc = long_training(out)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("seqtool: error")]
    assert len(errors) == 1, stderr
    resumed = subprocess.run([sys.executable, "-m", "seqtool", "train-rnn", "--resume", str(out),
                              "--epochs", str(1 + json.loads((out / "last.json").read_text())
                                              ["position"]["epoch"]), "-f", "json"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr


# -- the file system -------------------------------------------------------------------------


def test_an_out_folder_under_a_file_is_one_line_naming_it(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    error = one_line_error(cli("train-rnn", "--data", "parity", "--samples", "64", "--epochs",
                               "1", "--out", str(blocker / "run")))
    assert f"cannot use {blocker / 'run'}: Not a directory" in error
    assert blocker.read_text() == "not a folder\n"  # nothing lost


def test_a_folder_that_refuses_writes_is_one_line_naming_it(cli, tmp_path, monkeypatch):
    """A read-only folder or mount (made so for any user, root included, by refusing the
    mkdir the way the kernel would)."""
    from pathlib import Path

    real_mkdir = Path.mkdir
    denied = tmp_path / "read-only"

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(denied)):
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    error = one_line_error(cli("train-rnn", "--data", "parity", "--samples", "64", "--epochs",
                               "1", "--out", str(denied / "run")))
    assert f"cannot use {denied / 'run'}: Permission denied" in error
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "argmax-attention.yaml"
    error = one_line_error(cli("run", str(recipe), "--out", str(denied / "x")))
    assert "Permission denied" in error and str(denied) in error


def test_output_to_a_full_disk_is_one_line():
    import subprocess
    import sys

    with open("/dev/full", "w") as full:  # Linux's always-full device
        done = subprocess.run([sys.executable, "-m", "seqtool", "attend", "-q", "3,-1", "-f",
                               "json"], stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    assert (done.returncode, done.stderr) == (
        2, "seqtool: error: cannot write the output: No space left on device\n")


# -- YAML and JSON bombs ---------------------------------------------------------------------

LAUGHS = "".join(f"{a}: &{a} [{', '.join([f'*{p}'] * 9)}]\n" for p, a in zip("abcdefgh", "bcdefghi"))
BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + LAUGHS


def test_an_alias_bomb_is_refused_at_once(cli, tmp_path):
    """The "billion laughs" (nine lines of anchors, 10⁹ items when walked): refused from the
    node graph before any object is walked, in a recipe and in --input."""
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(BOMB + "name: bomb\ncommand: attend\nparams: {query: '3,-1', keys: *i}\n")
    error = one_line_error(cli("run", str(recipe), "--out", str(tmp_path / "out")))
    assert "uses aliases (*name) that expand" in error and "926,177,1" in error
    assert not (tmp_path / "out").exists()
    problem = tmp_path / "input.yaml"
    problem.write_text(BOMB + "query: '3,-1'\nkeys: *i\n")
    assert "--input reads" in one_line_error(cli("attend", "--input", str(problem)))
    looped = tmp_path / "loop.yaml"
    looped.write_text("query: &q [1, *q]\n")
    assert "refers to itself" in one_line_error(cli("attend", "--input", str(looped)))


def test_a_few_aliases_are_fine(tmp_path):
    from seqtool.io.documents import load_yaml

    data, _ = load_yaml("base: &b {hidden: 8, lr: 0.1}\nrun1: *b\nrun2: *b\n")
    assert data["run1"] == data["run2"] == {"hidden": 8, "lr": 0.1}


@pytest.mark.parametrize("text", ["[" * 200_000, '{"a":' * 5_000 + "1" + "}" * 5_000])
def test_json_nested_thousands_deep_is_refused(cli, text):
    error = one_line_error(cli("attend", "-q", "-", input=text))
    assert "nests deeper than 100 levels" in error


def test_yaml_nested_thousands_deep_is_refused(cli, tmp_path):
    problem = tmp_path / "deep.yaml"
    problem.write_text("query: " + "[" * 5_000 + "1" + "]" * 5_000 + "\n")
    assert "nests deeper than 100 levels" in one_line_error(cli("attend", "--input",
                                                                str(problem)))


def test_a_jsonl_data_row_nested_thousands_deep_is_refused(cli, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "a b", "label": "x"}\n' + "[" * 100_000 + "\n")
    error = one_line_error(cli("train-rnn", "--data", str(data), "--task", "classify"))
    assert "line 2 nests too deeply" in error


# -- sizes that cannot fit, work that never ends ---------------------------------------------


@pytest.mark.parametrize("args, flag", [
    (("bptt", "--input-size", "1000000000"), "--input-size"),
    (("bptt", "--hidden", "100000", "--cell", "lstm"), "--hidden"),
    (("bptt", "--steps", "10000", "--hidden", "2000"), "--hidden"),
    (("compare-selectors", "-q", "3,-1", "--cost", "--sizes", "16", "--dim", "1000000000"),
     "--dim"),
    # (--vocab itself is bounded at 10,000 before any estimate: tests/cli/test_compare.py)
    (("compare-selectors", "-q", "3,-1", "--learn", "--vocab", "10000", "--dim", "100000"),
     "--dim"),
])
def test_sizes_that_cannot_fit_are_refused_before_allocating(cli, args, flag):
    """The estimate of what the run needs, against what the machine has: refused naming the
    flag and the estimate (these need terabytes or hundreds of gigabytes)."""
    import re

    error = one_line_error(cli(*args))
    assert error.startswith(f"seqtool: error: {flag} makes ")
    assert re.search(r"need about [0-9.,]+ (GB|TB); this machine has [0-9.,]+ (GB|MB|TB) "
                     "available", error)


def test_memory_estimates_grow_with_the_sizes_and_name_the_flag_that_grows():
    from seqtool.commands.bptt import _bytes_for
    from seqtool.core.resources import check_memory, size_text

    small = _bytes_for(10, 3, 4, 2, 4)
    assert _bytes_for(10, 3, 8, 2, 4) > small and _bytes_for(20, 3, 4, 2, 4) > small
    # T·D, G·H·D, G·H·H, O·H, the targets and outputs 2·T·O, T·(G+2)·H, the shares, H·H
    assert _bytes_for(10, 3, 4, 2, 4) == 8.0 * 6 * (30 + 48 + 64 + 8 + 40 + 240 + 640 + 16)
    assert _bytes_for(10, 3, 4, 20, 4) - small == 8.0 * 6 * (18 * 4 + 2 * 10 * 18)
    check_memory("hidden", 10.0, "x", available=100)  # fits: nothing raised
    with pytest.raises(Exception) as err:
        check_memory("hidden", 2e9, "the analysis", available=10**9)
    assert err.value.key == "hidden" and "need about 2.0 GB" in err.value.message
    assert [size_text(n) for n in (500, 1.5e6, 2.5e10, 3e12)] == [
        "500 bytes", "1.5 MB", "25 GB", "3.0 TB"]


@pytest.mark.parametrize("args, words", [
    (("bptt", "--steps", "1000000", "--cell", "lstm"), "--steps is 1,000,000; at most 10,000"),
    (("bptt", "--steps", "200", "--hidden", "512", "--cell", "lstm"),
     "multiply 200 Jacobians of 1024 × 1024"),
    (("compare-selectors", "-q", "3,-1", "--repeats", "1000000000000"), "at most 1,000"),
    (("compare-selectors", "-q", "3,-1", "--learn", "--steps", "1000000000000"),
     "at most 100,000"),
    (("sample", "runs/none", "--length", "1000000000000"), "--length is 1,000,000,000,000; "
     "at most 100,000"),
    (("bptt", "--input-size", "1000000"), "hold 18,000,148 numbers (the problem, its outputs "
     "and every gradient); at most 4,000,000: a smaller --input-size"),
    (("bptt", "--output-size", "1000000", "--steps", "3"), "at most 4,000,000: a smaller "
     "--output-size"),
])
def test_work_that_would_not_end_is_refused_with_its_bound(cli, args, words):
    assert words in one_line_error(cli(*args))


# -- files that lie --------------------------------------------------------------------------


def test_npy_files_that_lie_are_refused_before_allocating(cli, tmp_path):
    from numpy.lib import format as npy_format

    npz = tmp_path / "keys.npy"
    np.savez(tmp_path / "keys", k=np.ones((2, 2)))  # keys.npz
    (tmp_path / "keys.npz").rename(npz)
    assert "it is a zip file (an .npz?), not a .npy" in one_line_error(
        cli("attend", "-q", "3,-1", "-k", f"@{npz}"))
    huge = tmp_path / "huge.npy"
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                               "shape": (10**12,)})
    huge.write_bytes(header.getvalue() + b"\0" * 64)
    error = one_line_error(cli("attend", "-q", "3,-1", "-k", f"@{huge}"))
    assert "its header claims (1000000000000,) float64" in error and "file holds 64" in error
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "holds object data; expected numbers" in one_line_error(
        cli("attend", "-q", "3,-1", "-k", f"@{objects}"))
    good = tmp_path / "good.npy"
    np.save(good, np.array([[1.0, 5.0], [1.0, 0.0]]))
    result = cli("attend", "-q", "3,-1", "-k", f"@{good}", "-f", "json")
    assert result.exit_code == 0 and result.json()["keys"] == [[1.0, 5.0], [1.0, 0.0]]


# -- warnings --------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e150, 1e153, 1e154, 1e300])
def test_selectors_at_extreme_scores_warn_nothing_and_sum_to_one(scale):
    """Scores far apart (up to ±1e308 after the product): every registered selector's
    weights are finite and sum to 1, with no NumPy warning at all."""
    import warnings

    from seqtool.core.selectors.registry import select, selector_names

    scores = np.array([[1.0, -1.0, 0.5, -0.25]]) * scale
    for name in selector_names():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any RuntimeWarning fails the test
            with np.errstate(over="warn", invalid="warn", divide="warn"):  # NumPy's defaults
                weights = select(name, scores).weights
        assert np.all(np.isfinite(weights)), name
        assert abs(weights.sum() - 1.0) < 1e-12, name


def test_numpy_warnings_during_a_command_become_one_note(capsys):
    import warnings

    from seqtool.cli.commands import RuntimeWarningsAsNote

    with RuntimeWarningsAsNote():
        for _ in range(3):
            warnings.warn("overflow encountered in exp", RuntimeWarning)
        warnings.warn("invalid value encountered in divide", RuntimeWarning)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("seqtool: note: NumPy reported ")
    assert "invalid value encountered in divide; overflow encountered in exp" in err
    with RuntimeWarningsAsNote():
        pass
    assert capsys.readouterr().err == ""


# -- forged or damaged run directories -------------------------------------------------------


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """A small trained run of an lstm and of the bag-of-words baseline."""
    from typer.testing import CliRunner

    from seqtool.cli import app

    root = tmp_path_factory.mktemp("runs")
    for cell in ("lstm", "bow"):
        done = CliRunner().invoke(app, ["train-rnn", "--data", "parity", "--cell", cell,
                                        "--samples", "64", "--epochs", "1", "--hidden", "8",
                                        "--out", str(root / cell), "-f", "json"])
        assert done.exit_code == 0, done.output
    return root


FORGERIES = {
    "vocab": (lambda d: d.update(vocab=[1, 2, 3]), "vocab that is not a list of strings"),
    "dtype": (lambda d: d.update(dtype="float99"), "dtype 'float99'"),
    "hidden text": (lambda d: d["spec"].update(hidden="abc"), "spec.hidden 'abc'"),
    "hidden huge": (lambda d: d["spec"].update(hidden=10**9), "spec.hidden 1000000000"),
    "hidden large": (lambda d: d["spec"].update(hidden=10**6), "far larger than model.npz"),
    "no spec": (lambda d: d.pop("spec"), "no \"spec\" object"),
    "labels": (lambda d: d.update(labels={"a": 1}), "labels that is not a list of strings"),
    "tokenizer": (lambda d: d.update(tokenizer=5), "tokenizer 5"),
    "builtin": (lambda d: d.update(builtin=[1]), "builtin that is not an object"),
    "max_len": (lambda d: d.update(max_len=-5), "max_len -5"),
    "dropout": (lambda d: d["spec"].update(dropout="x"), "spec.dropout 'x'"),
    "cell": (lambda d: d["spec"].update(cell="xyz"), "cell is 'xyz'"),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_model_json_is_refused_naming_the_field(cli, trained_runs, tmp_path, forgery):
    import shutil

    change, words = FORGERIES[forgery]
    run = tmp_path / "run"
    shutil.copytree(trained_runs / "lstm", run)
    meta = json.loads((run / "model.json").read_text())
    change(meta)
    (run / "model.json").write_text(json.dumps(meta))
    for args in (("predict", str(run), "-t", "0101"), ("evaluate", str(run), "--data", "parity")):
        error = one_line_error(cli(*args))
        assert words in error and "model.json" in error, error


def test_nan_weights_are_refused(cli, trained_runs, tmp_path):
    import shutil

    from seqtool.io.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    shutil.copytree(trained_runs / "lstm", run)
    arrays, meta = load_checkpoint(run, "model")
    arrays["head.weight"] = arrays["head.weight"].copy()
    arrays["head.weight"][0, 0] = np.nan
    save_checkpoint(run, "model", arrays, meta)  # a consistent pair, with a NaN in it
    assert "holds NaN or infinity in head.weight" in one_line_error(
        cli("predict", str(run), "-t", "0101"))


@pytest.mark.parametrize("cell", ["lstm", "bow"])
def test_genuine_runs_still_load(cli, trained_runs, cell):
    result = cli("predict", str(trained_runs / cell), "-t", "0101", "-f", "json")
    assert result.exit_code == 0, result.stderr


# -- sizes of models and data that cannot fit ------------------------------------------------


@pytest.mark.parametrize("args, flag", [
    (("--hidden", "10000000"), "--hidden"),
    (("--embedding-dim", "100000000"), "--embedding-dim"),
    (("--layers", "100000"), "--layers"),
    (("--hidden", "30000", "--cell", "gru"), "--hidden"),
])
def test_models_that_cannot_fit_are_refused_before_allocating(cli, tmp_path, args, flag):
    import re

    out = tmp_path / "run"
    error = one_line_error(cli("train-rnn", "--data", "parity", "--samples", "64", *args,
                               "--out", str(out)))
    assert error.startswith(f"seqtool: error: {flag} makes training (a model of up to ")
    assert re.search(r"need about [0-9.,]+ (GB|TB); this machine has", error)
    assert not out.exists()  # refused before the run directory is made


@pytest.mark.parametrize("cell, task, pool", [
    ("rnn", "parity", "last"), ("gru", "parity", "last"), ("lstm", "parity", "last"),
    ("gru", "echo", "last"), ("lstm", "dyck", "last"), ("gru", "parity", "attention")])
def test_the_training_memory_estimate_bounds_what_a_step_allocates(cell, task, pool):
    """memory_bound is an upper bound on the NumPy memory of an epoch of training (the
    estimate must never let through what then fails), and not a wild one."""
    import tracemalloc

    from seqtool.core.data import builtin
    from seqtool.core.models import ModelSpec, init_params, memory_bound
    from seqtool.core.training import TrainSettings, train

    data = builtin(task, samples=96, seq_len=40)
    spec = ModelSpec(task=data.task, cell=cell, input_size=data.input_size,
                     output_size=data.output_size, hidden=48, embedding_dim=16, pool=pool,
                     target_at=data.target_at, score="additive")
    settings = TrainSettings(optimizer="adam", lr=0.01, batch_size=32, epochs=1)
    params = init_params(spec, dtype=np.float32)
    train(spec, settings, params, data, data)  # compiled and warm before measuring
    tracemalloc.start()
    try:
        train(spec, settings, init_params(spec, dtype=np.float32), data, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    weights, step = memory_bound(spec, 32, 40, np.float32, training=True)
    _, evaluation = memory_bound(spec, 96, 40, np.float32, training=False)
    estimate = weights + step + evaluation  # as check_fits adds them
    assert peak <= estimate <= 30 * peak, (peak, estimate)


def test_texts_and_data_too_long_to_fit_are_refused(cli, trained_runs, tmp_path, monkeypatch):
    from seqtool.config import MAX_TEXT_CHARS

    error = one_line_error(cli("predict", str(trained_runs / "lstm"),
                               input="0" * (MAX_TEXT_CHARS + 1) + "\n"))
    assert f"--text has a text of {MAX_TEXT_CHARS + 1:,} characters (text 1)" in error
    # a machine with 1 MB free: the forward pass over the data is refused, naming the flag
    monkeypatch.setattr("seqtool.core.resources.available_bytes", lambda: 10**6)
    data = tmp_path / "long.tsv"
    data.write_text("text\tlabel\n" + "0 1 " * 20_000 + "\todd\n")
    for args, flag in (
            (("evaluate", str(trained_runs / "lstm"), "--data", str(data)), "--data"),
            (("predict", str(trained_runs / "lstm"), "-t", "0 1 " * 20_000), "--text")):
        error = one_line_error(cli(*args))
        assert error.startswith(f"seqtool: error: {flag} makes a forward pass over sequences "
                                "of up to "), error


def test_predicting_many_texts_in_batches_gives_what_one_batch_gives(trained_runs):
    """predict splits its texts into batches of INFERENCE_BATCH; the probabilities are those
    of the texts taken one by one."""
    from seqtool.commands.trained import load_model
    from seqtool.core import inference
    from seqtool.core.models import INFERENCE_BATCH

    model = load_model(trained_runs / "lstm")
    rng = np.random.default_rng(0)
    ids = [rng.integers(2, model.spec.input_size, size=rng.integers(1, 9))
           for _ in range(INFERENCE_BATCH + 7)]
    together = inference.classify(model.spec, model.params, ids)
    alone = np.concatenate([inference.classify(model.spec, model.params, [x]) for x in ids[-9:]])
    assert together.shape == (len(ids), model.spec.output_size)
    np.testing.assert_allclose(together[-9:], alone, rtol=1e-5, atol=1e-7)


# -- a forged last.json: --resume refuses it, naming the field -------------------------------


def _set(path: str, value):
    def change(meta):
        *parents, last = path.split(".")
        target = meta
        for key in parents:
            target = target[key]
        target[last] = value
    return change


LAST_FORGERIES = {
    "epoch text": (_set("position.epoch", "2"), "position.epoch '2'"),
    "epoch negative": (_set("position.epoch", -1), "position.epoch -1"),
    "epoch float": (_set("position.epoch", 1e20), "position.epoch 1e+20"),
    "step beyond": (_set("position.step_in_epoch", 99), "position.step_in_epoch 99, beyond"),
    "history short": (_set("position.history", []), "position.history that does not list the 2"),
    "history text": (_set("position.history", "x"), "position.history that does not list"),
    "history value": (lambda m: m["position"]["history"][1].update(val_loss="low"),
                      "position.history[1] that is not epoch 2's numbers"),
    "best loss": (_set("position.best_val_loss", "abc"), "position.best_val_loss 'abc'"),
    "best epoch": (_set("position.best_epoch", 99), "position.best_epoch 99"),
    "running": (_set("position.running", {"loss_sum": "x"}), "position.running that is not"),
    "no position": (lambda m: m.pop("position"), "is not a train-rnn checkpoint"),
    "position list": (_set("position", [1]), "a position that is not an object"),
    "config hidden": (_set("config.hidden", "abc"), "a config that cannot be used: hidden"),
    "config list": (_set("config", [1]), "is not a train-rnn checkpoint"),
    "config key": (lambda m: m["config"].update(colour=1), "a config that cannot be used"),
}


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    from typer.testing import CliRunner

    from seqtool.cli import app

    out = tmp_path_factory.mktemp("resume") / "run"
    done = CliRunner().invoke(app, ["train-rnn", "--data", "parity", "--samples", "64",
                                    "--epochs", "2", "--hidden", "8", "--out", str(out),
                                    "-f", "json"])
    assert done.exit_code == 0, done.output
    return out


@pytest.mark.parametrize("forgery", list(LAST_FORGERIES))
def test_a_forged_last_json_is_refused_naming_the_field(cli, two_epochs, tmp_path, forgery):
    import shutil

    change, words = LAST_FORGERIES[forgery]
    run = tmp_path / "run"
    shutil.copytree(two_epochs, run)
    meta = json.loads((run / "last.json").read_text())
    change(meta)
    (run / "last.json").write_text(json.dumps(meta))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    error = one_line_error(cli("train-rnn", "--resume", str(run), "--epochs", "3"))
    assert words in error and "last.json" in error, error
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing touched


def test_a_genuine_last_json_resumes(cli, two_epochs, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(two_epochs, run)
    result = cli("train-rnn", "--resume", str(run), "--epochs", "3", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert [r["epoch"] for r in json.loads(result.stdout)["history"]] == [1, 2, 3]


# -- long analyses: bounded, and followed while they run -------------------------------------


@pytest.mark.parametrize("args, words", [
    (("--steps", "1000", "--cell", "lstm", "--hidden", "64"),
     "--hidden makes the report of the analysis (T = 1000, D = 3, H = 64, O = 2) hold "
     "16,384,000 numbers"),
    (("--steps", "10000", "--hidden", "30"), "--steps makes the report of the analysis"),
    (("--steps", "1000", "--cell", "lstm", "--hidden", "30", "--check"),
     "--check on the analysis (T = 1000, D = 3, H = 30, O = 2) runs four forward passes"),
])
def test_analyses_too_large_to_report_or_check_are_refused(cli, args, words):
    assert words in one_line_error(cli("bptt", *args))


def test_the_check_reports_its_progress_per_cell():
    from seqtool.core.rnn.bptt import bptt_problems, run_bptt

    heard = []
    problems = bptt_problems(("rnn", "gru"), None, steps=4, input_size=2, hidden=3,
                             output_size=2, seed=0)
    report = run_bptt(problems, check=True, on_check=lambda *a: heard.append(a))
    for cell, problem in zip(("rnn", "gru"), problems):
        total = sum(v.size for v in problem.params.values())
        counts = [done for c, done, n in heard if c == cell and n == total]
        assert counts == list(range(1, total + 1)), cell  # every entry once, in order
    assert report.check["passed"]


def test_the_progress_bar_draws_on_a_terminal_and_stays_silent_on_a_pipe(monkeypatch):
    import io

    import rich.console

    from seqtool.render.progress import AnalysisProgress

    real = rich.console.Console
    drawn = io.StringIO()
    terminal = real(file=drawn, force_terminal=True, width=60)
    monkeypatch.setattr(rich.console, "Console", lambda **kw: terminal)
    with AnalysisProgress(None) as view:
        for done in range(1, 33):
            view.update("checking lstm", done, 32)
        assert view.progress.tasks[0].completed == 32
    assert "checking lstm" in drawn.getvalue()
    piped = real(file=io.StringIO(), force_terminal=False)
    monkeypatch.setattr(rich.console, "Console", lambda **kw: piped)
    with AnalysisProgress(None) as view:
        view.update("checking lstm", 1, 32)
        assert view.progress is False
    assert piped.file.getvalue() == ""


def test_json_of_numpy_values_is_written_as_their_plain_python_values():
    """write_json's fast path (json's C encoder, NumPy through its default hook) writes what
    the plain() walk would."""
    from seqtool.io.output import plain

    data = {"a": np.arange(6, dtype=np.float32).reshape(2, 3) / 7, "b": np.float64(1 / 3),
            "c": [np.int64(5), {"d": np.array([True, False])}], 4: "four"}
    out = io.StringIO()
    write_json(data, out)
    assert json.loads(out.getvalue()) == plain(data)
    assert out.getvalue().splitlines()[1].startswith('  "a": [[0.0, 0.1428571')


def test_an_out_that_is_a_file_is_refused_and_the_file_kept(cli, tmp_path):
    precious = tmp_path / "notes.txt"
    precious.write_text("precious")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: a\ncommand: attend\nparams: {query: [3, -1]}\n")
    for args in (("train-rnn", "--data", "parity", "--steps", "1", "--out", str(precious)),
                 ("run", str(recipe), "--out", str(precious))):
        error = one_line_error(cli(*args))
        assert f"cannot use {precious} as a folder: it is a file (left as it is)" in error
        assert precious.read_text() == "precious"


@pytest.mark.parametrize("command", [
    ["bptt", "--steps", "3"],
    ["evaluate", "{runs}/lstm", "--data", "parity", "--samples", "16"],
    ["predict", "{runs}/lstm", "-t", "0101"],
])
def test_a_bad_seqtool_threads_is_refused_before_any_compile(cli, trained_runs, monkeypatch,
                                                             command):
    """The count is checked before the warm-up, which on a new machine compiles for seconds
    before the run could say that its setting was wrong."""
    from seqtool.commands import events

    warmed = []
    monkeypatch.setattr(events.Events, "warm_up", lambda self, *a, **k: warmed.append(a))
    monkeypatch.setenv("SEQTOOL_THREADS", "abc")
    args = [part.replace("{runs}", str(trained_runs)) for part in command]
    error = one_line_error(cli(*args))
    assert "SEQTOOL_THREADS is 'abc'; expected a whole number of threads" in error
    assert warmed == []
