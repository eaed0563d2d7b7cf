"""`seqtool bptt` end to end: generated problems, files, stdin, formats, check, explain, errors."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from compiling import quick_compile
from seqtool.core.rnn import bptt
from seqtool.core.rnn.bptt import analyse, generate_problem
from seqtool.core.rnn.cells import cell_names, get_cell

# The cells whose report is in torch's layouts (rnn keeps its own, in math names).
TORCH_LAYOUT_CELLS = [cell for cell in cell_names() if cell != "rnn"]

SMALL = {
    "W_xh": [[0.5, -0.2], [0.1, 0.3]],
    "W_hh": [[0.9, -0.4], [0.2, 0.7]],
    "W_hy": [[1.0, -1.0]],
    "b_h": [0.1, -0.1],
    "x": [[1, 0], [0, 1], [1, 1]],
    "y": [[0.5], [-0.5], [1.0]],
    "activation": "sigmoid",
}


def test_generated_problem_json_matches_core(cli):
    result = cli("bptt", "--steps", "6", "--radius", "1.5", "--seed", "3", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    report = analyse(generate_problem(6, 3, 4, 2, seed=3, radius=1.5))
    assert data["generated"] is True
    assert data["loss"] == report.loss
    assert data["gradients"]["W_hh"] == report.gradients["W_hh"].tolist()
    assert data["jacobian_norms"]["norms"] == report.jacobian_norms.tolist()
    assert data["jacobian_norms"]["spectral_radius"] == pytest.approx(1.5, rel=1e-12)
    assert set(data) >= {"loss", "losses", "hidden", "outputs", "gradients", "per_step",
                         "dL_dh", "jacobian_norms"}


def test_problem_file_json_and_yaml_and_stdin(cli, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(SMALL))
    yaml_text = "\n".join(f"{key}: {json.dumps(value)}" for key, value in SMALL.items())
    (tmp_path / "p.yaml").write_text(yaml_text)
    results = [
        cli("bptt", "--problem", str(tmp_path / "p.json"), "-f", "json"),
        cli("bptt", "--problem", str(tmp_path / "p.yaml"), "-f", "json"),
        cli("bptt", "--problem", "-", "-f", "json", input=json.dumps(SMALL)),
    ]
    for result in results:
        assert result.exit_code == 0, result.stderr
    data = [r.json() for r in results]
    assert data[0] == data[1] == data[2]
    assert data[0]["generated"] is False and data[0]["activation"] == "sigmoid"
    # the hand computation: h_1 = σ(W_xh x_1 + b_h) with h_0 = 0
    h1 = 1 / (1 + np.exp(-(np.array(SMALL["W_xh"]) @ [1, 0] + SMALL["b_h"])))
    np.testing.assert_allclose(data[0]["hidden"][0], h1, rtol=1e-15)
    # flags override the file
    tanh = cli("bptt", "--problem", str(tmp_path / "p.json"), "--activation", "tanh").json()
    assert tanh["activation"] == "tanh"
    assert tanh["hidden"][0] == pytest.approx(np.tanh(np.array(SMALL["W_xh"]) @ [1, 0] + SMALL["b_h"]).tolist(), rel=1e-15)


def test_cross_entropy_last(cli, tmp_path):
    problem = dict(SMALL, W_hy=[[1.0, -1.0], [0.5, 0.5]], y=1, loss="cross_entropy", target_at="last")
    data = cli("bptt", "--problem", "-", input=json.dumps(problem)).json()
    assert data["loss_steps"] == [3]
    logits = np.array(data["outputs"][-1])
    expected = -(logits[1] - np.log(np.exp(logits).sum()))
    assert data["loss"] == pytest.approx(expected, rel=1e-14)


def test_table_format(cli):
    out = cli("bptt", "--steps", "5", "--radius", "0.5", "-f", "table").stdout
    assert "per step" in out
    assert "vanishing" in out
    assert "∂L/∂W_hh" in out and "∂L/∂h0" in out
    assert any(ch in out for ch in "▁▂▃▄▅▆▇█")
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) >= 6  # t = 0..5


def test_csv_format(cli):
    result = cli("bptt", "--steps", "4", "-f", "csv")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["t", "loss", "dL_dh_norm", "jacobian_norm", "share_norm"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2, 3, 4]
    report = analyse(generate_problem(4, 3, 4, 2))
    assert float(rows[1][2]) == report.dL_dh[0]
    assert float(rows[5][3]) == 1.0
    assert float(rows[2][4]) == np.linalg.norm(report.per_step[0])


def test_truncate_and_check(cli):
    data = cli("bptt", "--steps", "6", "--truncate", "2", "--check", "-f", "json").json()
    assert data["truncate"] == 2
    assert data["check"]["passed"] is True and data["check"]["max_relative_error"] <= 1e-6
    assert data["truncated"]["difference_norm"]["W_xh"] > 0
    table = cli("bptt", "--steps", "6", "--truncate", "2", "--check", "-f", "table").stdout
    assert "truncated BPTT, k = 2" in table and "passed" in table


def test_failed_check_exits_1_with_one_line(cli, monkeypatch):
    monkeypatch.setattr(bptt, "CHECK_TOLERANCE", 0.0)  # no finite difference is that exact
    result = cli("bptt", "--steps", "3", "--check", "-f", "json")
    assert result.exit_code == 1
    assert result.json()["check"]["passed"] is False  # the report is still written
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "finite-difference check failed" in lines[0]


def test_explain(cli):
    data = cli("bptt", "--steps", "3", "--activation", "sigmoid", "--explain", "-f", "json").json()
    text = "\n".join(data["explanation"])
    assert "f'(z) = σ(z)(1 − σ(z)) = h(1 − h)" in text
    assert "Σ_t Σ_{k≤t}" in text
    assert "share_3 = dz_3 h_2ᵀ" in text
    table = cli("bptt", "--steps", "2", "--explain", "-f", "table").stdout
    assert "Chain rule for ∂L/∂W_hh" in table
    # each (t, k) term of the double sum, recomputed by hand for t = k = 3: δ_33 h_2ᵀ
    report = analyse(generate_problem(3, 3, 4, 2, activation="sigmoid"))
    from seqtool.render.explain_bptt import direct_hidden_gradients, pair_terms

    h = report.hidden
    delta = direct_hidden_gradients(report)[2] * h[2] * (1 - h[2])
    assert pair_terms(report)[3, 3] == pytest.approx(np.linalg.norm(np.outer(delta, h[1])), rel=1e-12)
    assert pair_terms(report)[3, 0] == 0.0


BAD = [
    (["--steps", "0"], "--steps must be a whole number ≥ 1, got 0"),
    (["--steps", "x"], "--steps is 'x'; expected a number"),
    (["--activation", "softsign"], "--activation is 'softsign'"),
    (["--loss", "hinge"], "--loss is 'hinge'"),
    (["--truncate", "0"], "--truncate must be a whole number ≥ 1, got 0"),
    (["--radius", "-1"], "--radius must be a number > 0"),
    (["--steps", "7", "--explain"], "--explain writes the chain rule for T ≤ 6"),
    (["--problem", "/no/such.json"], "--problem names the file '/no/such.json', which does not exist"),
    (["-f", "xml"], "--format is 'xml'"),
    (["--cell", "transformer"], "--cell is 'transformer'; choose one of rnn, gru, lstm"),
    (["--cell", "rnn,lstn"], "--cell is 'lstn' (did you mean lstm?); choose one of rnn, gru, lstm"),
    (["--cell", "gru,gru"], "--cell names gru twice"),
    (["--cell", ""], "--cell is empty"),
    (["--cell", "lstm", "--steps", "3", "--explain"], "--explain writes the vanilla RNN's "
     "chain rule; it needs --cell rnn (got --cell lstm)"),
    (["--cell", "gru", "--forget-bias", "x"], "--forget-bias is 'x'; expected a number"),
    (["--check", "--threads", "0"], "--threads must be a whole number ≥ 1, got 0"),
]


@pytest.mark.parametrize("args, message", BAD)
def test_bad_flags(cli, args, message):
    result = cli("bptt", *args)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"seqtool: error: {result.stderr[16:].strip()}"]
    assert message in result.stderr


BAD_PROBLEMS = [
    ({k: v for k, v in SMALL.items() if k != "W_hy"}, "W_hy is missing from the problem"),
    (dict(SMALL, W_hh=[[1, 0, 0], [0, 1, 0]]), "W_hh has shape 2×3; expected 2×2"),
    (dict(SMALL, x=[[1, 0, 1]]), "x has shape 1×3; expected 1×2"),
    (dict(SMALL, b_h=[1, 2, 3]), "b_h has length 3; expected H = 2"),
    (dict(SMALL, y=[[1], [2]]), "y has shape 2×1; expected 3×1 real targets"),
    (dict(SMALL, y=[0, 1, 2], loss="cross_entropy"), "y has the label 1; expected whole numbers in 0..0"),
    (dict(SMALL, y=[0, 0.5, 0], loss="cross_entropy"), "y has the label 0.5"),
    (dict(SMALL, x=[[1, 0], [0, "nan"], [1, 1]]), "x has"),
    (dict(SMALL, activation="swish"), "--activation is 'swish'"),
    (dict(SMALL, W_hx=[[1]]), "'W_hx' is not a parameter of bptt; did you mean 'W_xh'?"),
]


@pytest.mark.parametrize("problem, message", BAD_PROBLEMS)
def test_bad_problems(cli, problem, message):
    result = cli("bptt", "--problem", "-", input=json.dumps(problem))
    assert result.exit_code == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr


def test_nan_in_problem_file(cli, tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text("W_xh: [[.nan, 1], [0, 1]]\nW_hh: [[1, 0], [0, 1]]\nW_hy: [[1, 1]]\nx: [[1, 1]]\ny: [[1]]\n")
    result = cli("bptt", "--problem", str(path))
    assert result.exit_code == 2
    assert "W_xh has nan at row 1, item 1; expected finite numbers" in result.stderr


def test_yaml_that_builds_python_objects_is_refused(cli, tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("W_xh: !!python/object/apply:os.system ['echo hacked']\n")
    result = cli("bptt", "--problem", str(path))
    assert result.exit_code == 2
    assert "not valid YAML" in result.stderr
    assert "hacked" not in result.stdout


def test_first_run_says_it_is_compiling(tmp_path):
    """A new machine (an empty cache). First the warm-up's helper process alone
    (seqtool.core.rnn.warmup.helper_main): it compiles the backward pass into the cache and
    not the forward pass. Then `seqtool bptt`: its first run still compiles (the forward
    pass) and says so; its second says nothing; both give the same numbers."""
    import os
    import subprocess
    import sys

    # plain products and level-1 code: what is compiled where does not depend on them, and
    # they compile in well under half the time
    env = quick_compile(dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path),
                             SEQTOOL_PLAIN_PRODUCTS="1"))
    helper = subprocess.run(
        [sys.executable, "-c", "import sys; from seqtool.core.rnn.warmup import helper_main;"
         " sys.exit(helper_main(['rnn', 'float64', '0']))"], env=env, capture_output=True,
        text=True, timeout=300)
    assert helper.returncode == 0, helper.stderr
    indexes = {p.name.split("-")[0] for p in tmp_path.rglob("*.nbi")}
    assert "vanilla._rnn_backward" in indexes
    assert not {"vanilla._rnn_forward", "vanilla._rnn_backward_truncated"} & indexes
    command = [sys.executable, "-m", "seqtool", "bptt", "--steps", "2", "-f", "json"]
    first = subprocess.run(command, capture_output=True, text=True, env=env)
    second = subprocess.run(command, capture_output=True, text=True, env=env)
    assert first.returncode == 0 and second.returncode == 0
    assert "compiling" in first.stderr
    assert second.stderr == ""
    assert json.loads(first.stdout)["loss"] == json.loads(second.stdout)["loss"]


# ---------------------------------------------------------------------------------------
# --cell gru | lstm | a side-by-side list


@pytest.mark.parametrize("cell", TORCH_LAYOUT_CELLS)
def test_gated_cell_json_matches_core(cli, cell):
    from seqtool.core.rnn.gated_bptt import analyse_gated, generate_gated_problem

    result = cli("bptt", "--cell", cell, "--steps", "5", "--radius", "0.9", "--seed", "2",
                 "--truncate", "2", "--check", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    report = analyse_gated(generate_gated_problem(cell, 5, 3, 4, 2, seed=2, radius=0.9),
                           truncate=2, check=True)
    assert data["cell"] == cell and data["loss"] == report.loss
    assert data["gradients"]["weight_hh"] == report.gradients["weight_hh"].tolist()
    assert data["jacobian_norms"]["norms"] == report.jacobian_norms.tolist()
    assert data["jacobian_norms"]["spectral_radius"] == pytest.approx(0.9, rel=1e-12)
    assert data["check"]["passed"] is True
    assert data["truncated"]["gradients"]["weight_ih"] == report.truncated["weight_ih"].tolist()
    assert len(data["per_step"]) == 5 and data["dL_dh"] == report.dL_dh.tolist()
    assert ("cell_norms" in data["jacobian_norms"]) == get_cell(cell).has_cell_state
    assert data["gates"] == list(get_cell(cell).gates)


def test_gated_cell_table(cli):
    out = cli("bptt", "--cell", "lstm", "--steps", "4", "-f", "table").stdout
    assert out.startswith("LSTM (gates i, f, g, o")
    assert "∂L/∂weight_hh" in out and "∂L/∂c0 = (" in out
    assert "‖∂c_T/∂c_k‖" in out and "ρ(W_hf)" in out


def test_cells_side_by_side_on_one_sequence(cli):
    from seqtool.core.rnn.bptt import analyse, generate_problem
    from seqtool.core.rnn.gated_bptt import analyse_gated, generate_gated_problem

    result = cli("bptt", "--cell", "rnn,gru,lstm", "--steps", "20", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["cells"] == ["rnn", "gru", "lstm"] and data["k"] == list(range(21))
    rnn = analyse(generate_problem(20, 3, 4, 2))
    gru = analyse_gated(generate_gated_problem("gru", 20, 3, 4, 2))
    side = {row["cell"]: row for row in data["side_by_side"]}
    assert side["rnn"]["jacobian_norms"] == rnn.jacobian_norms.tolist()
    assert side["gru"]["dL_dh"] == gru.dL_dh.tolist()
    assert data["reports"][2]["cell"] == "lstm"
    # the same sequence for every cell
    assert data["reports"][0]["problem"]["x"] == data["reports"][1]["problem"]["x"]
    # with the default keep-gate bias the gated cells keep far more gradient than the vanilla one
    assert side["gru"]["jacobian_norms"][0] > 100 * side["rnn"]["jacobian_norms"][0]
    assert side["lstm"]["jacobian_norms"][0] > 100 * side["rnn"]["jacobian_norms"][0]


def test_cells_side_by_side_csv_and_table(cli):
    rows = list(csv.reader(io.StringIO(
        cli("bptt", "--cell", "rnn,lstm", "--steps", "3", "-f", "csv").stdout)))
    assert rows[0] == ["t", "rnn_dL_dh_norm", "rnn_jacobian_norm", "lstm_dL_dh_norm",
                       "lstm_jacobian_norm"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2, 3]
    assert float(rows[4][2]) == 1.0 and float(rows[4][4]) == 1.0
    table = cli("bptt", "--cell", "rnn,gru", "--steps", "3", "-f", "table").stdout
    assert "rnn ‖∂h_T/∂h_k‖" in table and "gru ‖∂L/∂h_k‖" in table
    assert "vanishing" in table and "‖∂h_T/∂h_0‖ =" in table


def test_gated_cell_with_a_problem_file_is_refused(cli, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(SMALL))
    result = cli("bptt", "--problem", str(tmp_path / "p.json"), "--cell", "gru")
    assert result.exit_code == 2 and result.stdout == ""
    assert "--cell is gru, but a problem file holds a vanilla RNN" in result.stderr
    assert len(result.stderr.splitlines()) == 1


# ---------------------------------------------------------------------------------------
# The core API the command calls, and the CSV from the reports' rows


@pytest.mark.parametrize("cells", [("rnn",), ("lstm",), ("rnn", "gru", "lstm")])
def test_csv_is_the_reports_rows(cli, cells):
    """`--format csv` writes report.rows(): the header is the first row's keys; the report
    is the one bptt_problems + run_bptt give for the same settings."""
    result = cli("bptt", "--cell", ",".join(cells), "--steps", "4", "--seed", "1", "-f", "csv")
    assert result.exit_code == 0, result.stderr
    problems = bptt.bptt_problems(cells, None, steps=4, input_size=3, hidden=4,
                                  output_size=2, seed=1)
    report = bptt.run_bptt(problems, generated=True)
    rows = report.rows()
    lines = list(csv.reader(io.StringIO(result.stdout)))
    assert lines[0] == list(rows[0])
    assert len(lines) == len(rows) + 1 == 6
    for line, row in zip(lines[1:], rows):
        assert [float(v) if v else v for v in line] == [
            v if v == "" else float(v) for v in row.values()]
    assert rows[0]["t"] == 0 and (len(cells) > 1 or rows[0]["loss"] == "")


def test_problems_given_as_arrays_run_through_the_core(cli, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(SMALL))
    data = cli("bptt", "--problem", str(tmp_path / "p.json"), "--truncate", "2",
               "-f", "json").json()
    given = {name: np.array(value, dtype=float) for name, value in SMALL.items()
             if name in bptt.GIVEN_ARRAYS}
    (problem,) = bptt.bptt_problems(["rnn"], given, activation="sigmoid")
    report = bptt.run_bptt([problem], truncate=2)
    assert report.to_dict() == data
    with pytest.raises(bptt.InputError, match="cell is gru, but a problem file"):
        bptt.bptt_problems(["gru"], given)
    with pytest.raises(bptt.InputError, match="cell is 'grv' \\(did you mean gru\\?\\)"):
        bptt.bptt_problems(["grv"], None)
