"""What a newcomer meets first (#13): shipped examples, messages said once, --debug in
either place, a recipe read as a problem file, a jsonl stream whose every line has val_loss."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness import assert_close

ROOT = Path(__file__).resolve().parents[2]


def test_an_unknown_command_suggests_its_name_once(cli):
    result = cli("atend", "-q", "3,-1")
    assert result.exit_code == 2
    assert result.stderr.count("Did you mean 'attend'?") == 1


def test_debug_works_after_the_subcommand_too(cli):
    quiet = cli("attend", "-q", "3,a")
    assert quiet.exit_code == 2 and "No such option" not in quiet.stderr
    loud = cli("attend", "-q", "3,a", "--debug")
    assert "No such option" not in loud.stderr
    assert loud.exception is not None  # the InputError itself, for its traceback
    assert "where a number was expected" in str(loud.exception)


def test_a_one_run_recipe_is_a_problem_file_and_explains_the_worked_example(cli):
    recipe = ROOT / "recipes" / "bptt-sigmoid-worked.yaml"
    params = yaml.safe_load(recipe.read_text())["params"]
    from_recipe = cli("bptt", "--problem", str(recipe), "--explain", "-f", "json")
    assert from_recipe.exit_code == 0, from_recipe.stderr
    data = from_recipe.json()
    assert data["activation"] == "sigmoid" and data["explanation"]
    assert_close(np.array(data["problem"]["W_hh"]), np.array(params["W_hh"]))
    flags = cli("bptt", "--activation", "sigmoid", "--problem", "-", "-f", "json",
                input=json.dumps({k: v for k, v in params.items() if k != "check"}))
    assert flags.exit_code == 0, flags.stderr
    assert flags.json()["gradients"] == data["gradients"]  # the same problem, the same bits


def test_a_recipe_of_another_command_or_of_several_steps_is_refused_in_one_line(cli):
    for name, words in (("argmax-attention.yaml", "several steps"),
                        ("vanishing-exploding.yaml", "'sweep'")):
        result = cli("bptt", "--problem", str(ROOT / "recipes" / name))
        assert result.exit_code == 2
        assert len(result.stderr.splitlines()) == 1 and words in result.stderr


def test_the_shipped_problem_file_passes_its_check(cli):
    result = cli("bptt", "--problem", str(ROOT / "examples" / "problem.yaml"), "--truncate",
                 "3", "--check", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["check"]["passed"] and data["truncate"] == 3
    assert data["shapes"] == {"T": 6, "D": 2, "H": 3, "O": 1}


def test_the_shipped_reviews_train_a_classifier_and_evaluate(cli, tmp_path):
    out = tmp_path / "reviews"
    train = cli("train-rnn", "--data", str(ROOT / "examples" / "reviews.tsv"), "--task",
                "classify", "--val", str(ROOT / "examples" / "test.tsv"), "--cell", "gru",
                "--hidden", "8", "--epochs", "2", "--out", str(out), "-f", "jsonl")
    assert train.exit_code == 0, train.stderr
    lines = [json.loads(line) for line in train.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["epoch", "epoch", "summary"]
    # every line has val_loss: `... --format jsonl | jq .val_loss` prints numbers only
    best = min(lines[:2], key=lambda line: line["val_loss"])
    assert lines[-1]["val_loss"] == best["val_loss"]
    assert lines[-1]["val_accuracy"] == best["val_accuracy"]
    assert lines[-1]["val_size"] == 40 and lines[-1]["train_size"] == 200
    scored = cli("evaluate", str(out), "--data", str(ROOT / "examples" / "test.tsv"), "-f",
                 "json")
    assert scored.exit_code == 0, scored.stderr
    assert scored.json()["sequences"] == 40


def test_run_dir_arguments_say_what_they_are(cli):
    for command in ("predict", "sample", "evaluate"):
        help_text = " ".join(cli(command, "--help").stdout.split())
        assert "RUN_DIR: The run directory of" in help_text, command


def test_a_flag_that_does_not_apply_is_refused_not_ignored(cli):
    refused = [
        (("attend", "-q", "3,-1", "-s", "argmax", "--hard"), "--hard does not apply to argmax"),
        (("attend", "-q", "3,-1", "-s", "softmax", "--k", "2"), "--k does not apply to softmax"),
        (("compare-selectors", "-s", "softmax,argmax", "--alpha", "2"),
         "--alpha does not apply to softmax, argmax"),
        (("bptt", "--steps", "3", "--cell", "gru", "--activation", "sigmoid"),
         "--activation does not apply to --cell gru"),
        (("bptt", "--steps", "3", "--forget-bias", "2"), "--forget-bias does not apply"),
        (("train-rnn", "--cell", "gru", "--nonlinearity", "relu"),
         "--nonlinearity does not apply to --cell gru"),
    ]
    for args, message in refused:
        result = cli(*args)
        assert result.exit_code == 2, args
        assert len(result.stderr.splitlines()) == 1 and message in result.stderr, args
    # what does apply still runs: the same flags where some chosen selector or cell reads them
    for args in (("attend", "-q", "3,-1", "-s", "gumbel", "--hard", "--seed", "2"),
                 ("compare-selectors", "-s", "softmax,entmax", "--alpha", "2", "--repeats", "1"),
                 ("compare-selectors", "-s", "softmax", "--seed", "3", "--repeats", "1"),
                 ("bptt", "--steps", "3", "--cell", "rnn,gru", "--activation", "sigmoid")):
        result = cli(*args, "-f", "json")
        assert result.exit_code == 0, (args, result.stderr)


def test_a_misspelt_built_in_set_is_named(cli, tmp_path):
    run = tmp_path / "run"
    trained = cli("train-rnn", "--data", "sentiment", "--samples", "60", "--epochs", "1",
                  "--cell", "rnn", "--hidden", "4", "--out", str(run), "-f", "json")
    assert trained.exit_code == 0, trained.stderr
    for args in (("train-rnn", "--data", "sentimnet"),
                 ("evaluate", str(run), "--data", "sentimnt")):
        result = cli(*args)
        assert result.exit_code == 2, args
        assert result.stderr.strip().endswith("did you mean the built-in set 'sentiment'?")
    far = cli("train-rnn", "--data", str(tmp_path / "nothing.tsv"))
    assert far.exit_code == 2 and "did you mean" not in far.stderr


def test_a_run_that_diverges_at_once_says_no_checkpoint_was_saved_and_prints_no_warnings(
        cli, tmp_path):
    out = tmp_path / "diverge"
    result = cli("train-rnn", "--data", "sine", "--samples", "60", "--cell", "rnn",
                 "--nonlinearity", "relu", "--optimizer", "sgd", "--lr", "1000", "--epochs",
                 "3", "--out", str(out), "-f", "json")
    assert result.exit_code == 1
    assert "RuntimeWarning" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "training diverged" in last and "holds no checkpoint" in last
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml"]  # as the message says


def test_a_file_read_without_task_says_what_it_was_taken_for(cli, tmp_path):
    text = tmp_path / "notes.yaml"
    text.write_text("name: x\ncommand: bptt\n" * 30)
    result = cli("train-rnn", "--data", str(text), "--epochs", "1", "--cell", "rnn",
                 "--hidden", "4", "--out", str(tmp_path / "run"), "-f", "json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    said = [line for line in result.stderr.splitlines() if "read " in line]
    assert said == [f"seqtool: read {text} as lm data (char tokens): {report['train_size']} "
                    f"train / {report['val_size']} validation sequences; --task sets what it is"]
    given = cli("train-rnn", "--data", str(text), "--task", "lm", "--epochs", "1", "--cell",
                "rnn", "--hidden", "4", "--out", str(tmp_path / "run2"), "-f", "json")
    assert given.exit_code == 0 and "read " not in given.stderr


def test_explain_with_one_loss_term_writes_only_the_terms_that_exist(cli):
    result = cli("bptt", "--steps", "3", "--target-at", "last", "--explain", "--precision",
                 "17", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    text = "\n".join(data["explanation"])
    assert "∂L_3/∂h_3" in text and "∂L_2/∂h_2" not in text and "∂L_1/∂h_1" not in text
    assert "summed over the steps with a loss: t = 3" in text
    for t in (1, 2, 3):  # each ∂L/∂h_t written out has the norm the report measured
        line = next(line for line in data["explanation"] if line.startswith(f"  t={t}: ∂L/∂h_"))
        values = np.array([float(v) for v in line.split("= (")[1].split(")")[0].split(",")])
        assert_close(np.linalg.norm(values), data["dL_dh"][t], scale=1e3)  # 17 digits printed


def test_train_explain_gives_the_tensor_shapes_at_this_runs_sizes(cli, tmp_path):
    result = cli("train-rnn", "--data", "sentiment", "--samples", "80", "--epochs", "1",
                 "--cell", "gru", "--hidden", "8", "--embedding-dim", "6", "--layers", "2",
                 "--batch-size", "16", "--pool", "mean", "--explain", "--out",
                 str(tmp_path / "run"), "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    shapes = [line.strip() for line in data["explanation"] if "shapes:" in line]
    classes = data["spec"]["output_size"]  # the label set the run found
    assert shapes == [f"shapes: ids (T, 16) → embeddings (T, 16, 6) → states (T, 16, 8) ×2 "
                      f"layers → mean state (16, 8) → logits (16, {classes})"]


def test_jacobian_matrices_equal_finite_differences_of_the_forward_pass(cli):
    recipe = ROOT / "recipes" / "bptt-sigmoid-worked.yaml"
    result = cli("bptt", "--problem", str(recipe), "--jacobian", "3,1;2,0", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    p = {k: np.array(v, dtype=float) for k, v in data["problem"].items()}
    assert np.abs(p["h0"]).max() > 0  # the worked example's h0 is not zero

    def h_from(k, h_k, t):  # h_t from h_k, the sigmoid recurrence written out
        h = h_k
        for j in range(k, t):  # x[j] is step j+1's input
            h = 1.0 / (1.0 + np.exp(-(p["W_xh"] @ p["x"][j] + p["W_hh"] @ h + p["b_h"])))
        return h

    states = [p["h0"], *np.array(data["hidden"])]
    for entry in data["jacobians"]:
        t, k = entry["t"], entry["k"]
        eps = 1e-6
        numeric = np.column_stack([
            (h_from(k, states[k] + eps * e, t) - h_from(k, states[k] - eps * e, t)) / (2 * eps)
            for e in np.eye(len(states[k]))])
        assert_close(np.array(entry["matrix"]), numeric, kind="finite-difference")
        assert entry["norm"] == np.linalg.norm(np.array(entry["matrix"]), 2)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_jacobian_matrices_equal_finite_differences_of_the_cell(cli, cell):
    """∂h_t/∂h_k of a gated cell: the h-block of the product of its state Jacobians (for the
    LSTM with c_k held fixed), against central differences of the cell's own forward pass
    run from (h_k, c_k) over steps k+1..t."""
    from seqtool.core.rnn.cells import get_cell

    result = cli("bptt", "--cell", cell, "--steps", "5", "--hidden", "3", "--seed", "2",
                 "--jacobian", "4,1;5,0;2,1", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    p = {k: np.array(v, dtype=float) for k, v in data["problem"].items()}
    layer = get_cell(cell)
    hs = np.vstack([p["h0"], np.array(data["hidden"])])
    cs = np.vstack([p["c0"], np.array(data["cell_state"])]) if cell == "lstm" else None

    def h_from(k, h_k, t):
        c_k = None if cs is None else cs[k][None]
        record = layer.forward(p["x"][k:t, None, :], p["weight_ih"], p["weight_hh"],
                               p["bias_ih"], p["bias_hh"], h_k[None], c_k)
        return record.h[-1, 0]

    assert [(j["t"], j["k"]) for j in data["jacobians"]] == [(4, 1), (5, 0), (2, 1)]
    for entry in data["jacobians"]:
        t, k = entry["t"], entry["k"]
        eps = 1e-6
        numeric = np.column_stack([
            (h_from(k, hs[k] + eps * e, t) - h_from(k, hs[k] - eps * e, t)) / (2 * eps)
            for e in np.eye(3)])
        assert_close(np.array(entry["matrix"]), numeric, kind="finite-difference")
        assert entry["norm"] == np.linalg.norm(np.array(entry["matrix"]), 2)
    table = cli("bptt", "--cell", cell, "--steps", "5", "--hidden", "3", "--seed", "2",
                "--jacobian", "4,1", "-f", "table").stdout
    words = " ".join(table.split())  # the formula's line may wrap
    assert "∂h_4/∂h_1, ‖·‖₂" in words and ("c_k held fixed" in words) == (cell == "lstm")


def test_jacobian_steps_out_of_reach_are_one_line_errors(cli):
    for args, words in ((("--steps", "4", "--jacobian", "5,1"), "T = 4 steps"),
                        (("--steps", "4", "--jacobian", "1,3"), "0 ≤ k < t"),
                        (("--steps", "4", "--jacobian", "3"), "two steps t,k"),
                        (("--steps", "4", "--cell", "gru,lstm", "--jacobian", "3,1"),
                         "one --cell")):
        result = cli("bptt", *args)
        assert result.exit_code == 2, args
        assert len(result.stderr.splitlines()) == 1 and words in result.stderr, args


def test_shell_completion_completes_commands_and_flags():
    import os
    import subprocess
    import sys

    def complete(words: str, index: int) -> list[str]:
        env = dict(os.environ, COMP_WORDS=words, COMP_CWORD=str(index),
                   _SEQTOOL_COMPLETE="complete_bash")
        done = subprocess.run([sys.executable, "-m", "seqtool"], env=env, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("seqtool att", 1) == ["attend"]
    assert complete("seqtool bptt --ce", 2) == ["--cell"]
    assert set(complete("seqtool compare-selectors --le", 2)) == {"--learn"}


def test_compare_selectors_tables_fit_80_columns_and_keep_every_number(cli, monkeypatch):
    from rich.cells import cell_len

    data = cli("compare-selectors", "-q", "3,-1", "--repeats", "1", "-f", "json").json()
    for width, tables in ((80, 2), (200, 1)):
        monkeypatch.setenv("COLUMNS", str(width))
        out = cli("compare-selectors", "-q", "3,-1", "--repeats", "1", "-f", "table").stdout
        assert max(cell_len(line) for line in out.splitlines()) <= width
        assert out.count("┏") == tables
        rows = [[c.strip() for c in line.strip("│").split("│")]
                for line in out.splitlines() if line.startswith("│")]
        for row in data["rows"]:  # every selector, with its support size and gradient kind
            lines = [r for r in rows if r[0] == row["selector"]]
            assert any(str(row["support"][0]) in r for r in lines), row["selector"]
            assert any(row["gradient"] in r for r in lines), row["selector"]


def test_the_cost_and_learning_tables_fit_80_columns_whole(cli, monkeypatch):
    """--cost turns its table (a row per selector) and --learn splits its table in two when
    one does not fit: no line wider than the terminal, no cell cut short ("…"), and the
    numbers are the report's."""
    from rich.cells import cell_len

    args = ("compare-selectors", "-q", "3,-1", "--cost", "--sizes", "16,64,256,1024",
            "--repeats", "1", "--learn", "--steps", "5")
    data = cli(*args, "-f", "json").json()
    for width in (80, 200):
        monkeypatch.setenv("COLUMNS", str(width))
        out = cli(*args, "-f", "table").stdout
        assert max(cell_len(line) for line in out.splitlines()) <= width
        assert "…" not in out
        rows = [[c.strip() for c in line.strip("│").split("│")]
                for line in out.splitlines() if line.startswith("│")]
        learned = {r["selector"]: r for r in data["learning"]}
        for selector, result in learned.items():
            lines = [r for r in rows if r and r[0] == selector]
            assert any(("yes" if result["weights_changed"] else "no") in r for r in lines)
            assert any(r[-1] and set(r[-1]) <= set("▁▂▃▄▅▆▇█") for r in lines)  # its curve
        if width == 80:  # a row per selector, a column per n of --sizes (timings differ
            # from run to run: the layout is checked, and argmax's ratios to itself)
            header = next(line for line in out.splitlines() if "n keys" in line)
            assert header.split("┃")[2:-1] and [c.strip() for c in header.split("┃")[2:-1]] == [
                "16", "64", "256", "1024"]
            for name in learned:
                line = next(r for r in rows if r[0] == name and "(×" in r[1])
                assert len(line) == 5
                assert all(re.fullmatch(r"[0-9.]+ \(×[0-9.e+]+\)", cell) for cell in line[1:])
                if name == "argmax":
                    assert all(cell.endswith("(×1)") for cell in line[1:])


def test_a_recipe_explains_its_runs_with_run_explain_or_its_params(cli, tmp_path):
    """`seqtool run RECIPE --explain` and `--set params.explain=true` give each run the
    explanation its command's --explain gives (the worked sigmoid example: the same lines
    as `bptt --problem RECIPE --explain`), in the JSON and under the summary table."""
    recipe = str(ROOT / "recipes" / "bptt-sigmoid-worked.yaml")
    direct = cli("bptt", "--problem", recipe, "--explain", "-f", "json").json()["explanation"]
    by_flag = cli("run", recipe, "--explain", "--out", str(tmp_path / "a"), "-f", "json")
    assert by_flag.exit_code == 0, by_flag.stderr
    assert by_flag.json()["explanation"] == ["── 001 (bptt) ──", *direct]
    by_param = cli("run", recipe, "--set", "params.explain=true", "--out",
                   str(tmp_path / "b"), "-f", "json").json()
    assert by_param["explanation"] == ["── 001 (bptt) ──", *direct]
    stored = json.loads((tmp_path / "b" / "001" / "report.json").read_text())
    assert stored["explanation"] == direct  # kept with the run: a rerun skips it, still says it
    table = cli("run", recipe, "--explain", "--out", str(tmp_path / "a"), "-f", "table").stdout
    assert "1 done (1 skipped)" in table and direct[0] in table
    plain = cli("run", recipe, "--out", str(tmp_path / "c"), "-f", "json").json()
    assert "explanation" not in plain


def test_a_recipe_explain_that_cannot_be_is_a_one_line_error(cli, tmp_path):
    recipe = str(ROOT / "recipes" / "bptt-sigmoid-worked.yaml")
    long = str(ROOT / "recipes" / "vanishing-exploding.yaml")  # T = 30: too long to write out
    for args, words in (((recipe, "--set", "params.explain=maybe"), "expected true or false"),
                        ((long, "--explain"), "T ≤ 6")):
        result = cli("run", *args, "--out", str(tmp_path))
        assert result.exit_code == 2, args
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert "params.explain" in result.stderr and words in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())  # refused before any run
