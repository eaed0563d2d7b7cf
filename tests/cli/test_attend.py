"""`seqtool attend` end to end: formats, inputs, gradients, explanations and bad input."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from harness import assert_close
from naive import numeric_grad, ref_softmax
from seqtool.core.selectors import selector_names

EXAMPLE_SCORES = [-2.0, 3.0, 0.0, 6.0]
EXAMPLE_KEYS = [[1, 5], [1, 0], [1, 3], [2, 0]]
EXAMPLE_VALUES = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [6, 1, 2]]


def test_worked_example_argmax_json(cli):
    result = cli("attend", "--query", "3,-1", "--selector", "argmax", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    data = result.json()
    assert data["selector"] == "argmax"
    assert data["example"] is True
    assert data["queries"] == [[3.0, -1.0]]
    assert data["keys"] == EXAMPLE_KEYS
    assert data["values"] == EXAMPLE_VALUES
    assert data["scores"] == [EXAMPLE_SCORES]
    assert data["weights"] == [[0.0, 0.0, 0.0, 1.0]]
    assert data["outputs"] == [[6.0, 1.0, 2.0]]
    assert data["support"] == [[3]]
    assert data["ties"] == [False]
    assert data["scale"] == 1.0
    assert data["params"] == {}
    assert data["gradient"] == "zero"


def test_default_is_json_when_piped_and_softmax(cli):
    result = cli("attend", "-q", "3,-1")
    assert result.exit_code == 0
    data = result.json()  # CliRunner's stdout is not a terminal: json by default
    w = ref_softmax(np.array(EXAMPLE_SCORES), 1.0)
    assert data["selector"] == "softmax"
    assert data["params"] == {"temperature": 1.0}
    assert_close(data["weights"][0], w, kind="reference")
    assert_close(data["outputs"][0], w @ np.array(EXAMPLE_VALUES), kind="reference")
    assert data["support"] == [[0, 1, 2, 3]]


def test_json_keeps_full_float_precision(cli):
    data = cli("attend", "-q", "3,-1", "-f", "json").json()
    w = ref_softmax(np.array(EXAMPLE_SCORES), 1.0)
    # repr round-trips: the printed float is the computed one, not a rounded one
    assert abs(data["weights"][0][1] - w[1]) < 1e-16


def test_table_format_shows_rows_output_and_support(cli):
    result = cli("attend", "-q", "3,-1", "-s", "argmax", "-f", "table")
    assert result.exit_code == 0
    out = result.stdout
    assert "worked example" in out
    assert "(6, 1, 2)" in out  # value row and output
    assert "output o = Σ w_i v_i = (6, 1, 2)" in out
    assert "selected: 3" in out
    assert "exactly zero gradient" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 4
    assert "█" * 20 in rows[3] and "█" not in rows[0]


def test_table_precision(cli):
    # w_1 = e^-3 / (e^-8 + e^-3 + e^-6 + 1) = 0.04729908...
    out = cli("attend", "-q", "3,-1", "-f", "table", "--precision", "2").stdout
    assert " 0.047 " in out and "0.0473" not in out
    out6 = cli("attend", "-q", "3,-1", "-f", "table", "--precision", "6").stdout
    assert " 0.0472991 " in out6


def test_csv_format(cli):
    result = cli("attend", "-q", "3,-1;1,2", "-s", "sparsemax", "-f", "csv")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["query", "key", "score", "weight"]
    assert len(rows) == 1 + 2 * 4
    assert [int(r[0]) for r in rows[1:]] == [0] * 4 + [1] * 4
    assert [int(r[1]) for r in rows[1:]] == [0, 1, 2, 3] * 2
    # query (1, 2): scores 11, 1, 7, 2 -> sparsemax puts all mass on key 0
    assert [float(r[2]) for r in rows[5:]] == [11.0, 1.0, 7.0, 2.0]
    assert [float(r[3]) for r in rows[5:]] == [1.0, 0.0, 0.0, 0.0]


def test_several_queries_and_values_default_to_keys(cli):
    data = cli("attend", "-q", "1,0;0,1", "-k", "2,0;0,3", "-s", "argmax").json()
    assert data["example"] is False
    assert data["values"] == [[2.0, 0.0], [0.0, 3.0]]
    assert data["scores"] == [[2.0, 0.0], [0.0, 3.0]]
    assert data["outputs"] == [[2.0, 0.0], [0.0, 3.0]]


def test_scale_sqrt_and_number(cli):
    data = cli("attend", "-q", "3,-1", "--scale", "sqrt").json()
    assert_close(data["scale"], 1 / np.sqrt(2))
    assert data["scale_rule"] == "sqrt"
    assert_close(data["scores"][0], np.array(EXAMPLE_SCORES) / np.sqrt(2), kind="reference")
    data = cli("attend", "-q", "3,-1", "--scale", "0.5").json()
    assert data["scores"] == [[-1.0, 1.5, 0.0, 3.0]]


def test_temperature_topk_entmax_params(cli):
    data = cli("attend", "-q", "3,-1", "-s", "softmax", "-t", "2").json()
    assert_close(data["weights"][0], ref_softmax(np.array(EXAMPLE_SCORES), 2.0), kind="reference")
    data = cli("attend", "-q", "3,-1", "-s", "topk", "--k", "2").json()
    assert data["support"] == [[1, 3]]
    assert data["params"] == {"k": 2, "temperature": 1.0}
    e = np.exp(np.array([3.0, 6.0]) - 6)
    assert_close(np.array(data["weights"][0])[[1, 3]], e / e.sum(), kind="reference")
    data = cli("attend", "-q", "3,-1", "--scale", "0.1", "-s", "entmax", "--alpha", "2").json()
    sparse = cli("attend", "-q", "3,-1", "--scale", "0.1", "-s", "sparsemax").json()
    assert_close(data["weights"], sparse["weights"])


def test_gumbel_is_reproducible_by_seed(cli):
    a = cli("attend", "-q", "3,-1", "-s", "gumbel", "--seed", "7").json()
    b = cli("attend", "-q", "3,-1", "-s", "gumbel", "--seed", "7").json()
    c = cli("attend", "-q", "3,-1", "-s", "gumbel", "--seed", "8").json()
    assert a["weights"] == b["weights"] and a["noise"] == b["noise"]
    assert a["noise"] != c["noise"]
    noisy = np.array(EXAMPLE_SCORES) + np.array(a["noise"][0])
    assert_close(a["weights"][0], ref_softmax(noisy, 1.0), kind="reference")
    hard = cli("attend", "-q", "3,-1", "-s", "gumbel", "--seed", "7", "--hard").json()
    assert hard["weights"][0] == list(np.eye(4)[int(np.argmax(noisy))])
    assert hard["gradient"] == "surrogate"


def test_tie_is_reported(cli):
    result = cli("attend", "-q", "1,1", "-k", "1,0;2,0;0,2", "-s", "argmax")
    data = result.json()
    assert data["ties"] == [True]
    assert data["support"] == [[1]]
    assert any("tie" in note for note in data["notes"])
    table = cli("attend", "-q", "1,1", "-k", "1,0;2,0;0,2", "-s", "argmax", "-f", "table").stdout
    assert "tie" in table


def _loss(q, K, V, u, selector):
    from seqtool.core.attention import attend

    return float(np.sum(attend(q, K, V, selector).outputs * u))


@pytest.mark.parametrize("selector", ["softmax", "sparsemax", "entmax", "topk"])
def test_grad_matches_finite_differences(cli, selector):
    q, K, V = "0.3,-0.2", "1,0.5;0.2,0.1;-0.4,0.9", "1,2;3,-1;0.5,0.5"
    data = cli("attend", "-q", q, "-k", K, "-v", V, "-s", selector, "--upstream", "1,-2").json()
    Q = np.array([[0.3, -0.2]])
    Km = np.array([[1, 0.5], [0.2, 0.1], [-0.4, 0.9]])
    Vm = np.array([[1, 2], [3, -1], [0.5, 0.5]])
    u = np.array([1.0, -2.0])
    assert data["upstream"] == [[1.0, -2.0]]
    g = data["gradients"]
    assert_close(g["query"], numeric_grad(lambda x: _loss(x, Km, Vm, u, selector), Q),
                 kind="finite-difference")
    assert_close(g["keys"], numeric_grad(lambda x: _loss(Q, x, Vm, u, selector), Km),
                 kind="finite-difference")
    assert_close(g["values"], numeric_grad(lambda x: _loss(Q, Km, x, u, selector), Vm),
                 kind="finite-difference")


def test_argmax_grad_is_exactly_zero_for_query_and_keys(cli):
    data = cli("attend", "-q", "3,-1", "-s", "argmax", "--grad").json()
    g = data["gradients"]
    assert g["query"] == [[0.0, 0.0]]
    assert g["keys"] == [[0.0, 0.0]] * 4
    assert g["values"] == [[0.0] * 3] * 3 + [[1.0, 1.0, 1.0]]
    assert data["gradient"] == "zero"
    table = cli("attend", "-q", "3,-1", "-s", "argmax", "--grad", "-f", "table").stdout
    assert "∂L/∂q" in table and "∂L/∂K" in table and "∂L/∂V" in table


def test_st_argmax_grad_equals_softmax_grad(cli):
    st = cli("attend", "-q", "3,-1", "-s", "st-argmax", "--grad").json()
    soft = cli("attend", "-q", "3,-1", "-s", "softmax", "--grad").json()
    assert st["outputs"] == [[6.0, 1.0, 2.0]]
    # the weights differ (hard vs soft), so ∂L/∂W = U Vᵀ is the same but ∂L/∂V is not
    assert st["gradients"]["scores"] == soft["gradients"]["scores"]
    assert st["gradients"]["query"] == soft["gradients"]["query"]


def test_explain_writes_the_worked_answer(cli):
    out = cli("attend", "-q", "3,-1", "-s", "argmax", "-f", "table", "--explain").stdout
    assert "s_0 = 3·1 + (-1)·5 = -2" in out
    assert "s_3 = 3·2 + (-1)·0 = 6" in out
    assert "the largest is s_3 = 6" in out
    assert "o = Σ_i w_i v_i = 1·(6, 1, 2) = (6, 1, 2)" in out
    data = cli("attend", "-q", "3,-1", "--explain", "-f", "json").json()
    text = "\n".join(data["explanation"])
    assert "normaliser Z" in text
    z = np.exp(np.array(EXAMPLE_SCORES) - 6).sum()
    assert f"Z = Σ = {z:.4g}" in text


# --explain's selection step for q = (3, -1) over the worked example at scale 0.3 (scores
# -0.6, 0.9, 0, 1.8), as written before the selectors became a registry.
SELECTION_STEP = {
    ("softmax",): [
        "2. Selection with softmax, T = 1: w_i = exp(s_i/T) / Σ_j exp(s_j/T)",
        "   exp((s_i − 1.8)/T) = (0.09072, 0.4066, 0.1653, 1)   (shifted by the max: same "
        "weights, no overflow)",
        "   normaliser Z = Σ = 1.663",
        "   w_i = exp(...)/Z = (0.05456, 0.2445, 0.09942, 0.6015)",
    ],
    ("argmax",): [
        "2. Selection with argmax: the largest is s_3 = 1.8 (the next largest is 0.9), so "
        "the choice is index 3; w = (0, 0, 0, 1)",
    ],
    ("sparsemax",): [
        "2. Selection with sparsemax: w_i = max(s_i − τ, 0), the projection of s onto the "
        "simplex",
        "   sorted scores (1.8, 0.9, 0, -0.6); support [1, 3] (size 2)",
        "   τ = (Σ_support s_i − 1)/2 = 0.85; w = (0, 0.05, 0, 0.95)",
    ],
    ("entmax",): [
        "2. Selection with entmax, α = 1.5: w_i = [(α−1)s_i − τ]₊^(1/(α−1))",
        "   τ = 0.004646 makes Σ w = 1; support [1, 3]; w = (0, 0.1983, 0, 0.8017)",
    ],
    ("topk",): [
        "2. Selection with topk, k = 2, T = 1: keep the k largest scores (indices [1, 3]), "
        "softmax over them, 0 elsewhere",
        "   w = (0, 0.2891, 0, 0.7109)",
    ],
    ("gumbel",): [
        "2. Selection with gumbel, T = 1, seed 0: w = softmax((s + G)/T), G_i = −log(−log "
        "U_i)",
        "   noise G = (0.7962, -0.2701, -1.162, -1.412); s + G = (0.1962, 0.6299, -1.162, "
        "0.3883)",
        "   exp(((s+G)_i − 0.6299)/T) = (0.6481, 1, 0.1667, 0.7854)   (shifted by the max: "
        "same weights, no overflow)",
        "   normaliser Z = Σ = 2.6",
        "   w_i = exp(...)/Z = (0.2492, 0.3846, 0.06412, 0.3021)",
    ],
    ("st-argmax",): [
        "2. Selection with st-argmax: the largest is s_3 = 1.8 (the next largest is 0.9), so "
        "the choice is index 3; w = (0, 0, 0, 1)",
        "   backward pass uses softmax(s/T), T = 1: (0.05456, 0.2445, 0.09942, 0.6015)",
    ],
    ("gumbel", "--hard", "--seed", "2"): [
        "2. Selection with gumbel, T = 1, seed 2: w = softmax((s + G)/T), G_i = −log(−log "
        "U_i)",
        "   noise G = (-0.2933, -0.1898, 1.582, -0.87); s + G = (-0.8933, 0.7102, 1.582, "
        "0.93)",
        "   hard: the largest is s_2 = 1.582 (the next largest is 0.93), so the choice is "
        "index 2; w = (0, 0, 1, 0) (the backward pass uses the soft weights)",
    ],
}


@pytest.mark.parametrize("selector", selector_names())
def test_explain_has_a_selection_step_for_every_selector(cli, selector):
    lines = cli("attend", "-q", "3,-1", "-s", selector, "--explain", "-f", "json").json()[
        "explanation"]
    steps = [line[:2] for line in lines if line[:1].isdigit()]
    assert steps == ["1.", "2.", "3."]
    assert next(line for line in lines if line.startswith("2. ")).startswith(
        f"2. Selection with {selector}")


@pytest.mark.parametrize("args", list(SELECTION_STEP), ids=" ".join)
def test_explain_every_selector(cli, args):
    result = cli("attend", "-q", "3,-1", "--scale", "0.3", "-s", *args, "--explain", "-f", "json")
    assert result.exit_code == 0, result.stderr
    lines = result.json()["explanation"]
    assert lines[0] == "Query 0: q = (3, -1)"
    assert lines[2] == "   s_0 = 0.3·(3·1 + (-1)·5) = -0.6"
    start = next(i for i, line in enumerate(lines) if line.startswith("2. "))
    end = next(i for i, line in enumerate(lines) if line.startswith("3. "))
    assert lines[start:end] == SELECTION_STEP[args]
    assert lines[-1].startswith("3. Output o = Σ_i w_i v_i =")


def test_stdin_json_input(cli):
    payload = {"query": [3, -1], "keys": [[1, 5], [2, 0]], "values": [[1], [2]], "selector": "argmax"}
    result = cli("attend", "--input", "-", input=json.dumps(payload))
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["outputs"] == [[2.0]]
    assert data["selector"] == "argmax"
    # flags override the input object
    data = cli("attend", "--input", "-", "-s", "softmax", input=json.dumps(payload)).json()
    assert data["selector"] == "softmax"


def test_stdin_csv_of_queries(cli):
    data = cli("attend", "-q", "-", "-s", "argmax", input="x,y\n3,-1\n0,1\n").json()
    assert data["queries"] == [[3.0, -1.0], [0.0, 1.0]]
    assert data["support"] == [[3], [0]]


def test_file_inputs(cli, tmp_path):
    (tmp_path / "keys.csv").write_text("a,b\n1,5\n1,0\n1,3\n2,0\n")
    np.save(tmp_path / "values.npy", np.array(EXAMPLE_VALUES, dtype=float))
    (tmp_path / "q.json").write_text(json.dumps({"query": [3, -1]}))
    (tmp_path / "input.json").write_text(json.dumps({"query": "3,-1", "selector": "argmax"}))
    result = cli(
        "attend", "-q", f"@{tmp_path / 'q.json'}", "-k", f"@{tmp_path / 'keys.csv'}",
        "-v", f"@{tmp_path / 'values.npy'}", "-s", "argmax",
    )
    assert result.exit_code == 0, result.stderr
    assert result.json()["outputs"] == [[6.0, 1.0, 2.0]]
    assert result.json()["example"] is False
    data = cli("attend", "--input", str(tmp_path / "input.json")).json()
    assert data["outputs"] == [[6.0, 1.0, 2.0]]


BAD_INPUTS = [
    (["-q", "3,x"], "--query has 'x' where a number was expected"),
    (["-q", ""], "--query is empty"),
    (["-q", "1,2;3"], "--query has ragged rows"),
    (["-q", "3,-1", "-k", "1,2,3"], "--keys has rows of length 3 but the query has 2"),
    (["-q", "3,-1", "-k", "1,2;3,4", "-v", "1;2;3"], "--values has 3 rows but there are 2 keys"),
    (["-q", "nan,1"], "--query has nan at row 1, item 1; expected finite numbers"),
    (["-q", "inf,1"], "--query has inf"),
    (["-q", "3,-1", "-s", "softmx"], "--selector is 'softmx' (did you mean softmax?)"),
    (["-q", "3,-1", "-t", "0"], "--temperature must be a finite number > 0, got 0.0"),
    (["-q", "3,-1", "-t", "-1"], "--temperature must be a finite number > 0"),
    (["-q", "3,-1", "-s", "topk", "--k", "0"], "--k must be a whole number in 1..4"),
    (["-q", "3,-1", "-s", "topk", "--k", "5"], "--k must be a whole number in 1..4"),
    (["-q", "3,-1", "-s", "entmax", "--alpha", "1"], "--alpha must be a finite number > 1"),
    (["-q", "3,-1", "-s", "entmax", "--alpha", "0.5"], "--alpha must be a finite number > 1"),
    (["-q", "3,-1", "-k", "@/no/such/file.csv"], "--keys names the file '/no/such/file.csv', which does not exist"),
    (["-q", "3,-1", "--scale", "big"], "--scale is 'big'; expected 1, sqrt"),
    (["-q", "3,-1", "--upstream", "1,2"], "--upstream has length 2 but the values have 3 columns"),
    (["-q", "3,-1", "-f", "xml"], "--format is 'xml'; choose one of table, json, csv"),
    (["-q", "3,-1", "--nope"], "No such option"),
    (["-k", "1,2"], "--query is missing"),
    (["-q", "1e300,1e300", "-k", "1e300,1e300"], "overflow"),
]


@pytest.mark.parametrize("args, message", BAD_INPUTS)
def test_bad_input_gives_one_line_and_exit_2(cli, args, message):
    result = cli("attend", *args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("seqtool: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_input_files(cli, tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    result = cli("attend", "--input", str(bad_json))
    assert result.exit_code == 2 and "--input reads" in result.stderr and "not valid JSON" in result.stderr
    result = cli("attend", "-q", f"@{bad_json}")
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    result = cli("attend", "--input", "-", input="[1, 2]")
    assert result.exit_code == 2 and "does not hold an object" in result.stderr
    result = cli("attend", "--input", "-", input='{"qeury": [3, -1]}')
    assert result.exit_code == 2
    assert "'qeury' is not a parameter of attend; did you mean 'query'?" in result.stderr
    result = cli("attend", "--input", "-", "-q", "-", input="{}")
    assert result.exit_code == 2 and "both read stdin" in result.stderr
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    result = cli("attend", "-q", f"@{pickled}")
    assert result.exit_code == 2 and "--query" in result.stderr
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    result = cli("attend", "-q", f"@{binary}")
    assert result.exit_code == 2 and "not UTF-8" in result.stderr
    assert bad_json.read_text() == "{not json"  # a user's file is never touched
