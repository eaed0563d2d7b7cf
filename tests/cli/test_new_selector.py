"""A selector registered at run time works everywhere a built-in does, with no other change:
`seqtool attend`, `seqtool compare-selectors`, a recipe; and unregistered, it is unknown."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import assert_close
from seqtool.config import AttendConfig, CompareConfig
from seqtool.core.errors import InputError
from seqtool.core.selectors import Forward, Selector, registered, selector_names

EXAMPLE_VALUES = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [6, 1, 2]], dtype=float)
BUILT_IN = ["softmax", "argmax", "sparsemax", "entmax", "topk", "gumbel", "st-argmax"]


def _uniform_forward(s: np.ndarray) -> Forward:
    """w_i = 1/n whatever the scores."""
    return Forward(np.full_like(s, 1.0 / s.shape[-1]))


def _uniform_backward(fwd: Forward, g: np.ndarray) -> np.ndarray:
    return np.zeros_like(g)  # w does not depend on s: J = 0 exactly, everywhere


UNIFORM = Selector("uniform", _uniform_forward, _uniform_backward, (), "exact",
                   formula="w_i = 1/n")


@pytest.fixture
def uniform():
    with registered(UNIFORM):
        yield UNIFORM
    assert "uniform" not in selector_names()


def test_attend_json(cli, uniform):
    result = cli("attend", "-q", "3,-1", "-s", "uniform", "--grad", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["selector"] == "uniform" and data["params"] == {} and data["gradient"] == "exact"
    assert data["weights"] == [[0.25] * 4]
    assert_close(data["outputs"], [EXAMPLE_VALUES.mean(axis=0)])  # (1.75, 0.5, 0.75)
    assert data["support"] == [[0, 1, 2, 3]] and data["ties"] == [False]
    assert data["gradients"]["query"] == [[0.0, 0.0]]
    assert data["gradients"]["keys"] == [[0.0, 0.0]] * 4
    assert_close(data["gradients"]["values"], np.full((4, 3), 0.25))  # Wᵀ·ones
    assert data["notes"] == []


def test_attend_csv_table_and_explain(cli, uniform):
    rows = cli("attend", "-q", "3,-1", "-s", "uniform", "-f", "csv").stdout.splitlines()
    assert rows == ["query,key,score,weight", "0,0,-2.0,0.25", "0,1,3.0,0.25", "0,2,0.0,0.25",
                    "0,3,6.0,0.25"]
    table = cli("attend", "-q", "3,-1", "-s", "uniform", "-f", "table", "--explain").stdout
    assert "support: 0, 1, 2, 3" in table
    assert "2. Selection with uniform: w_i = 1/n" in table
    assert "output o = Σ w_i v_i = (1.75, 0.5, 0.75)" in table


def test_compare_selectors(cli, uniform):
    data = cli("compare-selectors", "-q", "3,-1", "--repeats", "1", "-f", "json").json()
    assert [row["selector"] for row in data["rows"]] == BUILT_IN + ["uniform"]  # the default
    row = data["rows"][-1]
    assert row["weights"] == [[0.25] * 4] and row["support"] == [4]
    assert_close(row["entropy"], [np.log(4)])
    assert (row["grad_norm_query"], row["grad_norm_keys"]) == (0.0, 0.0)
    learned = cli("compare-selectors", "-s", "softmax,uniform", "--learn", "--steps", "5",
                  "--pairs", "2", "--dim", "4", "--vocab", "4", "--repeats", "1").json()
    run = learned["learning"][1]
    assert run["selector"] == "uniform" and run["weights_changed"] is False
    assert run["grad_norm_Wq"] == 0.0 and run["accuracy"] == run["accuracy_at_init"]
    csv = cli("compare-selectors", "-s", "uniform", "--repeats", "1", "-f", "csv").stdout
    assert csv.splitlines()[1].startswith(f"uniform,0,{float(np.log(4))!r},4,0.25,0.0,0.0,exact,")


def test_recipe(cli, uniform, tmp_path):
    recipe = tmp_path / "uniform.yaml"
    recipe.write_text("name: uniform\nsteps:\n"
                      "  - name: one\n    command: attend\n"
                      "    params: {query: [3, -1], selector: uniform}\n"
                      "  - name: two\n    command: compare-selectors\n"
                      "    params: {query: [3, -1], selectors: [uniform, argmax], repeats: 1}\n")
    result = cli("run", str(recipe), "--out", str(tmp_path / "out"), "-f", "json")
    assert result.exit_code == 0, result.stderr
    runs = result.json()["runs"]
    assert [r["status"] for r in runs] == ["done", "done"]
    assert_close([runs[0]["metrics"][f"output[{j}]"] for j in range(3)],
                 EXAMPLE_VALUES.mean(axis=0))
    assert runs[0]["metrics"]["max_weight"] == 0.25
    report = json.loads((tmp_path / "out" / runs[0]["id"] / "report.json").read_text())
    assert report["selector"] == "uniform" and report["weights"] == [[0.25] * 4]
    compared = json.loads((tmp_path / "out" / runs[1]["id"] / "report.json").read_text())
    assert [r["selector"] for r in compared["rows"]] == ["uniform", "argmax"]


def test_configs_see_the_registry_when_built(uniform):
    assert AttendConfig.from_mapping({"selector": "uniform"}).selector == "uniform"
    assert CompareConfig.from_mapping({}).selectors == tuple(BUILT_IN + ["uniform"])


def test_unregistered_it_is_unknown_everywhere(cli, tmp_path):
    with registered(UNIFORM):
        pass
    result = cli("attend", "-q", "3,-1", "-s", "uniform")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "seqtool: error: --selector is 'uniform'; choose one of softmax, argmax, sparsemax, "
        "entmax, topk, gumbel, st-argmax"]
    result = cli("compare-selectors", "-s", "softmax,uniform")
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert "--selectors is 'uniform'" in result.stderr
    with pytest.raises(InputError) as info:
        AttendConfig.from_mapping({"selector": "uniform"})
    assert info.value.key == "selector"
    assert CompareConfig.from_mapping({}).selectors == tuple(BUILT_IN)
    recipe = tmp_path / "x.yaml"
    recipe.write_text("command: attend\nparams: {selector: uniform}\n")
    result = cli("run", str(recipe), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "x.yaml:2: params.selector: is 'uniform'" in result.stderr
