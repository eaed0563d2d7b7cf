"""`seqtool run`: recipe validation (file:line: key path, suggestions, safe_load), extends
and --set, --dry-run, sweeps here and on real Dask clusters, failed-run isolation,
skip-on-rerun, every shipped recipe, and the README's pipelines."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from harness import assert_close

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"

BPTT_SWEEP = """\
name: sweep
command: bptt
params:
  steps: 8
  hidden: 3
sweep:
  grid: {radius: [0.5, 1.5]}
  seeds: [0, 1]
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line_error(result, code=2):
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == "" or code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize("text, expected", [
    (BPTT_SWEEP.replace("hidden: 3", "hidden: 0"),
     "x.yaml:5: params.hidden: must be a whole number ≥ 1, got 0"),
    (BPTT_SWEEP.replace("hidden: 3", "hiden: 3"),
     "x.yaml:5: params.hiden: is not a parameter of bptt; did you mean 'hidden'?"),
    (BPTT_SWEEP.replace("sweep:", "sweeep:"),
     "x.yaml:6: sweeep: is not a recipe key; did you mean 'sweep'?"),
    (BPTT_SWEEP.replace("grid:", "gird:"), "x.yaml:7: sweep.gird: is not a sweep key; did you mean 'grid'?"),
    (BPTT_SWEEP.replace("radius: [0.5, 1.5]", "radius: [0.5, -1]"),
     "x.yaml:7: sweep.grid.radius: must be a number > 0, got -1"),
    (BPTT_SWEEP.replace("radius: [0.5, 1.5]", "radius: []"),
     "x.yaml:7: sweep.grid.radius: must be a non-empty list of values"),
    (BPTT_SWEEP.replace("command: bptt", "command: bpt"),
     "x.yaml:2: command: is not a command recipes run; did you mean 'bptt'?"),
    ("name: x\ncommand: train-rnn\nparams: {data: nowhere.tsv, task: classify}\n",
     "x.yaml:3: params.data: names the file 'nowhere.tsv', which does not exist"),
    ("command: attend\nparams:\n  query: [3, -1, 2]\n  keys: [[1, 5], [1, 0]]\n",
     "x.yaml:4: params.keys: has rows of length 2 but the query has 3"),
    ("steps:\n  - command: attend\n    params: {selector: argmx}\n",
     "x.yaml:3: steps[0].params.selector: is 'argmx' (did you mean argmax?)"),
    ("command: attend\nparams: [1, 2]\n", "x.yaml:2: params: must be a mapping"),
    ("steps:\n  - {name: a, command: attend}\n  - name: b\n    command: sample\n"
     "    params: {run: '{run:train}'}\n",
     "x.yaml:5: steps[1].params.run: refers to {run:train}, but no earlier step is named 'train'"),
    ("steps:\n  - {name: b, command: sample}\n", "x.yaml:2: steps[0].params.run: is missing"),
    ("", "x.yaml: is empty"),
    ("command: attend\nparams: {query: [3, -1]\n", "x.yaml:"),  # broken YAML, with its line
])
def test_validation_errors_name_file_line_and_key(cli, tmp_path, monkeypatch, text, expected):
    write(tmp_path, "x.yaml", text)
    monkeypatch.chdir(tmp_path)
    line = one_line_error(cli("run", "x.yaml", "--out", str(tmp_path / "out")))
    assert line.startswith("seqtool: error: " + expected.split(":")[0])
    assert expected in line
    assert not (tmp_path / "out" / "summary.json").exists()  # nothing ran


def test_python_tags_are_refused_and_never_built(cli, tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, "evil.yaml",
                 "command: attend\nparams:\n  query: !!python/object/apply:os.system "
                 f"['touch {marker}']\n")
    line = one_line_error(cli("run", str(path)))
    assert f"{path}:3" in line and "safe_load" in line
    assert not marker.exists()


def test_extends_and_set(cli, tmp_path):
    write(tmp_path, "base.yaml", "command: bptt\nparams: {steps: 6, hidden: 3, radius: 0.9}\n")
    child = write(tmp_path, "child.yaml",
                  "name: child\nextends: base.yaml\nparams: {hidden: 5}\n")
    result = cli("run", str(child), "--dry-run", "-f", "json",
                 "--set", "params.steps=4", "--set", "sweep.seeds=[1, 2]")
    assert result.exit_code == 0, result.stderr
    runs = result.json()["runs"]
    assert [r["params"] for r in runs] == [
        {"steps": 4, "hidden": 5, "radius": 0.9, "seed": 1},
        {"steps": 4, "hidden": 5, "radius": 0.9, "seed": 2},
    ]
    # an error in a key that came from --set says so
    line = one_line_error(cli("run", str(child), "--set", "params.hidden=0"))
    assert "--set params.hidden: params.hidden: must be a whole number ≥ 1" in line
    # an error inside the base points into the base
    write(tmp_path, "base.yaml", "command: bptt\nparams: {steps: 0}\n")
    line = one_line_error(cli("run", str(child)))
    assert "base.yaml:2: params.steps: must be a whole number ≥ 1" in line


def test_extends_cycle_and_missing_base(cli, tmp_path):
    a = write(tmp_path, "a.yaml", "extends: b.yaml\ncommand: attend\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    assert "a cycle" in one_line_error(cli("run", str(a)))
    c = write(tmp_path, "c.yaml", "extends: none.yaml\ncommand: attend\n")
    assert "none.yaml', which does not exist" in one_line_error(cli("run", str(c)))


def test_dry_run_expands_grid_times_seeds(cli, tmp_path):
    path = write(tmp_path, "sweep.yaml", BPTT_SWEEP)
    result = cli("run", str(path), "--dry-run", "-f", "json", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.stderr
    runs = result.json()["runs"]
    assert [r["id"] for r in runs] == ["001-radius=0.5-seed=0", "002-radius=0.5-seed=1",
                                       "003-radius=1.5-seed=0", "004-radius=1.5-seed=1"]
    assert len({r["hash"] for r in runs}) == 4
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------
# Running


def check_sweep_output(out: Path, data: dict) -> None:
    from seqtool.core.rnn.bptt import analyse, generate_problem

    assert data["done"] == 4 and data["failed"] == 0
    groups = {g["point"]["radius"]: g for g in data["summary"]}
    for radius, group in groups.items():
        losses = [analyse(generate_problem(8, 3, 3, 2, seed=s, radius=radius)).loss
                  for s in (0, 1)]
        stat = group["metrics"]["loss"]
        assert stat["n"] == 2
        assert_close(stat["mean"], sum(losses) / 2, kind="exact", what="mean")
        # the sample standard deviation of two values is |a − b|/√2; the summary's formula
        # subtracts the mean first, which cancels: 1e-9 relative, as before
        assert_close(stat["std"], abs(losses[0] - losses[1]) / 2 ** 0.5, kind="exact",
                     scale=1e3, what="std")
    for run in data["runs"]:
        run_dir = out / run["id"]
        assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
        assert json.loads((run_dir / "config.json").read_text())["params"] == run["params"]
        assert "jacobian_norms" in json.loads((run_dir / "report.json").read_text())
    assert (out / "summary.csv").read_text().startswith("step,radius,runs,failed,")
    assert json.loads((out / "summary.json").read_text())["done"] == 4


def test_sequential_sweep_summary_and_skip_on_rerun(cli, tmp_path):
    path = write(tmp_path, "sweep.yaml", BPTT_SWEEP)
    out = tmp_path / "out"
    first = cli("run", str(path), "--out", str(out), "-f", "json")
    assert first.exit_code == 0, first.stderr
    check_sweep_output(out, first.json())
    stamp = (out / "001-radius=0.5-seed=0" / "report.json").stat().st_mtime_ns
    again = cli("run", str(path), "--out", str(out), "-f", "json").json()
    assert again["skipped"] == 4
    assert (out / "001-radius=0.5-seed=0" / "report.json").stat().st_mtime_ns == stamp
    # a changed setting reruns exactly the runs it changes
    changed = cli("run", str(path), "--out", str(out), "-f", "json",
                  "--set", "sweep.grid.radius=[0.5, 1.2]").json()
    assert changed["skipped"] == 2 and changed["done"] == 4


def test_a_failing_run_does_not_stop_the_others(cli, tmp_path):
    good = write(tmp_path, "good.tsv", "text\tlabel\n" + "".join(
        f"{'great fun' if i % 2 else 'dull mess'} {i}\t{'pos' if i % 2 else 'neg'}\n"
        for i in range(40)))
    write(tmp_path, "bad.tsv", "words\tlabel\nhello\tpos\n")  # no text column
    path = write(tmp_path, "r.yaml",
                 "name: mixed\ncommand: train-rnn\n"
                 "params: {task: classify, hidden: 4, embedding_dim: 4, epochs: 1}\n"
                 f"sweep:\n  grid: {{data: [{good.name}, bad.tsv]}}\n")
    result = cli("run", str(path), "--out", str(tmp_path / "out"), "-f", "json")
    line = one_line_error(result, code=1)
    assert "1 of 2 runs failed" in line and "text" in line
    data = json.loads(result.stdout)
    status = {r["point"]["data"]: r["status"] for r in data["runs"]}
    assert status == {good.name: "done", "bad.tsv": "failed"}
    failed = tmp_path / "out" / data["runs"][1]["id"] / "status.json"
    assert "text" in json.loads(failed.read_text())["error"]
    assert (tmp_path / "out" / data["runs"][0]["id"] / "model.npz").exists()


def test_sweep_on_a_local_dask_cluster(cli, tmp_path, recwarn):
    pytest.importorskip("dask.distributed")
    path = write(tmp_path, "sweep.yaml", BPTT_SWEEP)
    out = tmp_path / "out"
    # Dask's default HTTP port taken (by another cluster, say): the sweep says nothing of it
    taken = socket.socket()
    try:
        taken.bind(("", 8787))
        taken.listen()
    except OSError:
        pass  # something else holds it already
    try:
        result = cli("run", str(path), "--out", str(out), "--jobs", "2", "-f", "json")
    finally:
        taken.close()
    assert result.exit_code == 0, result.stderr
    check_sweep_output(out, result.json())
    assert not [w for w in recwarn if "already in use" in str(w.message)]


def test_sweep_on_a_dask_scheduler_and_worker_started_apart(cli, tmp_path):
    pytest.importorskip("dask.distributed")
    dask = shutil.which("dask") or str(Path(sys.executable).parent / "dask")
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        # no nanny: a nanny answers SIGTERM by closing its worker gracefully, ~8 s here
        procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1",
                                       "--no-dashboard", "--no-nanny"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        path = write(tmp_path, "sweep.yaml", BPTT_SWEEP)
        out = tmp_path / "out"
        result = cli("run", str(path), "--out", str(out), "--scheduler", address, "-f", "json")
        assert result.exit_code == 0, result.stderr
        check_sweep_output(out, result.json())
    finally:
        # the worker is killed: without a nanny it sometimes never finishes closing after
        # SIGTERM (a 10-s wait in one cold suite run of four); its shutdown is Dask's, not
        # what this tests
        for proc in procs[1:]:
            proc.kill()
        procs[0].terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def test_an_unreachable_scheduler_is_one_line(cli, tmp_path):
    pytest.importorskip("dask.distributed")
    path = write(tmp_path, "sweep.yaml", BPTT_SWEEP)
    line = one_line_error(cli("run", str(path), "--out", str(tmp_path / "o"),
                              "--scheduler", "tcp://127.0.0.1:9"))
    assert "--scheduler is tcp://127.0.0.1:9, which did not answer" in line


# ---------------------------------------------------------------------------------------
# Every shipped recipe, at a small size


SMALL = {  # --set overrides that keep each recipe quick; the rest runs as shipped
    "attention-pooling-selectors.yaml": ["params.epochs=1", "params.hidden=8",
                                         "sweep.seeds=[0]"],
    "attention-selectors-seq2seq.yaml": ["params.epochs=1", "params.hidden=8",
                                         "params.samples=200", "sweep.seeds=[0]"],
    "cells-on-sentiment.yaml": ["params.epochs=1", "params.hidden=8", "sweep.seeds=[0]",
                                "sweep.grid.lr=[0.01]"],
    "dyck-lm.yaml": ["steps[0].params.epochs=1", "steps[0].params.hidden=8"],
    "echo-tagging.yaml": ["params.epochs=1", "params.hidden=8"],
    "compare-selectors-learn.yaml": ["params.steps=40"],
    "vanishing-exploding.yaml": ["sweep.seeds=[0]"],
}
SHIPPED = sorted(p.name for p in RECIPES.glob("*.yaml"))


def test_every_recipe_is_listed():
    assert len(SHIPPED) >= 8 and set(SMALL) <= set(SHIPPED)
    for name in SHIPPED:
        text = (RECIPES / name).read_text()
        assert text.startswith("#") and "What it shows" in text, name


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_runs(cli, tmp_path, name):
    sets = [arg for s in SMALL.get(name, []) for arg in ("--set", s)]
    result = cli("run", str(RECIPES / name), "--out", str(tmp_path / "out"), "-f", "json", *sets)
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["failed"] == 0 and data["done"] == len(data["runs"]) >= 1
    if name == "argmax-attention.yaml":  # the value of the key with the largest score q·k
        for step in ("argmax", "softmax"):
            run = next(r for r in data["runs"] if r["step"] == step)
            report = json.loads((tmp_path / "out" / run["id"] / "report.json").read_text())
            K, V = np.array(report["keys"]), np.array(report["values"])
            scores = K @ np.array(report["queries"][0]) * report["scale"]
            weights = (np.eye(len(K))[scores.argmax()] if step == "argmax"
                       else np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum())
            group = next(g for g in data["summary"] if g["step"] == step)
            outputs = [group["metrics"][f"output[{j}]"]["mean"] for j in range(V.shape[1])]
            assert_close(outputs, weights @ V, kind="exact", what=step)
    if name == "bptt-sigmoid-worked.yaml":
        assert data["summary"][0]["metrics"]["check_max_error"]["mean"] < 1e-6
    if name == "dyck-lm.yaml":  # sample and evaluate read the train step's run directory
        evaluate = next(g for g in data["summary"] if g["step"] == "evaluate")
        assert evaluate["metrics"]["sequences"]["mean"] == 500
        sample = json.loads((tmp_path / "out" / "002-sample" / "report.json").read_text())
        assert set(sample["text"]) <= set("()[]$")
    if name == "attention-pooling-selectors.yaml":  # argmax's scoring never moves
        change = {g["point"]["selector"]: g["metrics"]["attention_change"]["mean"]
                  for g in data["summary"]}
        assert change["argmax"] == 0.0 and change["softmax"] > 0 and change["sparsemax"] > 0
    if name == "attention-selectors-seq2seq.yaml":  # argmax's W_a never moves, nor gets any
        metrics = {g["point"]["selector"]: g["metrics"] for g in data["summary"]}
        assert metrics["argmax"]["attention_change"]["mean"] == 0.0
        assert metrics["argmax"]["score_grad_norm"]["mean"] == 0.0
        for selector in ("softmax", "sparsemax", "reinforce", "gumbel"):
            assert metrics[selector]["attention_change"]["mean"] > 0, selector
            assert metrics[selector]["score_grad_norm"]["mean"] > 0, selector
        assert all("val_exact" in m and "val_attention_entropy" in m for m in metrics.values())
    if name == "compare-selectors-learn.yaml":
        assert data["summary"][0]["metrics"]["argmax.grad_norm_query"]["mean"] == 0.0


# ---------------------------------------------------------------------------------------
# Pipelines, as the README shows them


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def test_pipeline_attend_into_jq(tmp_path):
    if shutil.which("jq") is None:
        pytest.fail("jq is needed for the README's pipelines (apt-get install jq)")
    done = shell("seqtool attend --query 3,-1 --selector argmax --format json | jq -c '.outputs'",
                 tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[6, 1, 2]]


def test_pipeline_bptt_into_python(tmp_path):
    done = shell("seqtool bptt --steps 20 --radius 1.5 --activation identity --format json | "
                 "python -c 'import json,sys; d=json.load(sys.stdin); "
                 "print(d[\"jacobian_norms\"][\"verdict\"], round(d[\"jacobian_norms\"][\"rate_per_step\"], 1))'",
                 tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["exploding", "1.5"]


def test_pipeline_csv_queries_through_stdin(tmp_path):
    done = shell("printf 'x,y\\n3,-1\\n0,1\\n' | seqtool attend --query - --selector argmax "
                 "--format csv | tail -n +2 | cut -d, -f1,2,4 | grep ',1.0$'", tmp_path)
    assert done.returncode == 0, done.stderr
    # query 0 = (3,-1) picks key 3; query 1 = (0,1) picks key 0 (score 5)
    assert done.stdout.split() == ["0,3,1.0", "1,0,1.0"]


def test_pipeline_recipe_summary_into_jq(tmp_path):
    if shutil.which("jq") is None:
        pytest.fail("jq is needed for the README's pipelines (apt-get install jq)")
    done = shell(f"seqtool run {RECIPES / 'argmax-attention.yaml'} --out runs/a --format json "
                 "| jq -c '[.summary[] | {step, out: .metrics[\"output[0]\"].mean}]'", tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0] == {"step": "argmax", "out": 6}


def test_a_dry_run_with_plot_is_refused_before_it_prints(cli, tmp_path):
    picture = tmp_path / "summary.png"
    result = cli("run", str(RECIPES / "echo-tagging.yaml"), "--dry-run", "--plot", str(picture))
    assert result.exit_code == 2 and result.stdout == ""
    assert "--plot has nothing to draw: --dry-run runs nothing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not picture.exists()
