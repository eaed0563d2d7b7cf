"""`seqtool compare-selectors` end to end: agreement with attend, formats, learning, errors."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from harness import assert_close
from seqtool.core.selectors import selector_names

FAST = ("--repeats", "2")


@pytest.fixture(scope="module")
def worked():
    """Every selector on the worked example's keys, two queries (computed once)."""
    from typer.testing import CliRunner

    from seqtool.cli import app

    result = CliRunner().invoke(app, ["compare-selectors", "-q", "3,-1;1,2", *FAST, "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_default_selectors_and_keys(worked):
    assert [row["selector"] for row in worked["rows"]] == list(selector_names())
    assert worked["example"] is True
    assert worked["cost"] == [] and worked["learning"] == []
    for row in worked["rows"]:
        assert list(row) == ["selector", "params", "weights", "outputs", "entropy", "support",
                             "max_weight", "grad_norm_query", "grad_norm_keys", "gradient",
                             "cost_us", "cost_spread_us"]


@pytest.mark.parametrize("selector", selector_names())
def test_each_row_agrees_with_attend(cli, worked, selector):
    row = next(r for r in worked["rows"] if r["selector"] == selector)
    attend = cli("attend", "-q", "3,-1;1,2", "-s", selector, "--grad", "-f", "json").json()
    assert row["weights"] == attend["weights"]
    assert row["outputs"] == attend["outputs"]
    assert row["gradient"] == attend["gradient"]
    assert row["support"] == [len(s) for s in attend["support"]]
    assert_close(row["grad_norm_query"], np.linalg.norm(attend["gradients"]["query"]))
    assert_close(row["grad_norm_keys"], np.linalg.norm(attend["gradients"]["keys"]))
    w = np.array(attend["weights"])
    expected = -(w * np.log(np.where(w > 0, w, 1))).sum(axis=1)
    assert_close(row["entropy"], expected)
    assert row["max_weight"] == w.max(axis=1).tolist()


def test_argmax_gradient_norms_are_exactly_zero(worked):
    row = next(r for r in worked["rows"] if r["selector"] == "argmax")
    assert row["grad_norm_query"] == 0.0 and row["grad_norm_keys"] == 0.0
    assert row["gradient"] == "zero"


def test_parameters_and_upstream_apply(cli):
    data = cli("compare-selectors", "-q", "3,-1", "-s", "softmax,topk,entmax", "-t", "2",
               "--k", "3", "--alpha", "2", "--upstream", "1,0,0", *FAST).json()
    rows = {r["selector"]: r for r in data["rows"]}
    assert rows["softmax"]["params"] == {"temperature": 2.0}
    assert rows["topk"]["params"] == {"k": 3, "temperature": 2.0}
    assert rows["topk"]["support"] == [3]
    attend = cli("attend", "-q", "3,-1", "-s", "softmax", "-t", "2", "--upstream", "1,0,0").json()
    assert_close(rows["softmax"]["grad_norm_query"], np.linalg.norm(attend["gradients"]["query"]))
    assert data["upstream"] == [1.0, 0.0, 0.0]


def test_cost_table(cli):
    data = cli("compare-selectors", "-s", "softmax,argmax", "--cost", "--sizes", "8,32",
               "--dim", "4", *FAST).json()
    assert [(c["selector"], c["n"]) for c in data["cost"]] == [
        ("softmax", 8), ("argmax", 8), ("softmax", 32), ("argmax", 32)]
    assert data["cost_dim"] == 4
    by = {(c["selector"], c["n"]): c for c in data["cost"]}
    for (name, n), c in by.items():  # one scores timing per n; ratios of this run's times
        assert c["scores_us"] == by[("argmax", n)]["scores_us"]
        assert c["ratio_to_argmax"] == c["select_us"] / by[("argmax", n)]["select_us"]


def test_a_slow_noisy_cost_table_still_fits_80_columns_whole():
    """Times are whatever the machine gave: a call stalled by another process (2264 µs,
    127× argmax's) must not widen the table past 80 columns or cut a cell ("…")."""
    from rich.console import Console

    from seqtool.core.compare import CompareReport, CostRow
    from seqtool.render.compare import _fits, cost_table

    names = selector_names()
    sizes = (16, 64, 256, 1024)
    cost = [CostRow(name, n, scores_us=10.1 + 99 * (n == 1024), select_us=18.8 * ratio,
                    select_spread_us=(0.0, 0.0), ratio_to_argmax=ratio)
            for n in sizes for name in names
            for ratio in [1.0 if name == "argmax" else 120.4 if name == "entmax" else 3.1]]
    report = CompareReport(example=True, scale=1.0, queries=[[3.0, -1.0]], keys=[[1.0, 0.0]],
                           values=[[1.0]], upstream=[1.0], selector_rows=[], cost=cost,
                           cost_dim=64)
    console = Console(width=80, record=True, highlight=False, emoji=False)
    table = cost_table(report)
    console.print(table if _fits(console, table) else cost_table(report, by_selector=True))
    out = console.export_text()
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    assert "2264 (×120)" in out and "58.3 (×3.1)" in out and "109" in out  # 10.1 + 99 µs


def test_learning_run_small(cli):
    data = cli("compare-selectors", "-s", "softmax,argmax", "--learn", "--steps", "150",
               "--pairs", "4", "--dim", "16", "--vocab", "16", "--lr", "0.05", *FAST).json()
    runs = {r["selector"]: r for r in data["learning"]}
    assert runs["softmax"]["accuracy"] >= runs["softmax"]["chance"] + 0.5
    assert runs["argmax"]["grad_norm_Wq"] == 0.0 and runs["argmax"]["grad_norm_Wk"] == 0.0
    assert runs["argmax"]["weights_changed"] is False
    assert runs["argmax"]["accuracy"] == runs["argmax"]["accuracy_at_init"]
    assert len(runs["softmax"]["losses"]) == 150
    assert data["learning_setup"]["pairs"] == 4


def test_csv_has_one_row_per_selector_and_query_with_extras(cli):
    result = cli("compare-selectors", "-q", "3,-1;1,2", "-s", "softmax,argmax", "--cost",
                 "--sizes", "8", "--learn", "--steps", "3", "--pairs", "2", "--dim", "4",
                 "--vocab", "4", *FAST, "-f", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][:3] == ["selector", "query", "entropy"]
    assert "select_us_n8" in rows[0] and "accuracy" in rows[0] and "grad_norm_Wq" in rows[0]
    assert [(r[0], r[1]) for r in rows[1:]] == [("softmax", "0"), ("softmax", "1"),
                                                 ("argmax", "0"), ("argmax", "1")]
    col = rows[0].index("grad_norm_Wq")
    assert float(rows[3][col]) == 0.0
    assert all(len(r) == len(rows[0]) for r in rows)


def test_table_and_explain(cli):
    out = cli("compare-selectors", "-s", "softmax,argmax,st-argmax,sparsemax", "--learn",
              "--steps", "100", "--pairs", "4", "--dim", "16", "--vocab", "16", "--lr", "0.05",
              "--cost", "--sizes", "8", "--dim", "16", *FAST, "-f", "table", "--explain").stdout
    assert "what each selector computed" in out  # 80 columns: the two-table layout
    assert "cost per call" in out and "associative recall" in out
    assert "‖∂o/∂q‖ = 0 and ‖∂o/∂K‖ = 0 for argmax" in out
    assert "W_q and W_k never changed" in out
    assert "sparsemax also pass no gradient here" in out
    data = cli("compare-selectors", "-s", "softmax,argmax", *FAST, "--explain", "-f", "json").json()
    text = "\n".join(data["explanation"])
    soft = next(r for r in data["rows"] if r["selector"] == "softmax")
    assert f"{soft['grad_norm_query']:.4g}" in text
    assert "Run with --learn" in text


BAD = [
    (["--selectors", "softmax,argmx"], "--selectors is 'argmx' (did you mean argmax?)"),
    (["--selectors", ","], "--selectors is empty"),
    (["--selectors", "softmax,softmax"], "--selectors names softmax twice"),
    (["--cost", "--sizes", "16,0"], "--sizes must be a whole number ≥ 1, got 0"),
    (["--cost", "--sizes", "16,x"], "--sizes is 'x'; expected a number"),
    (["--cost", "--sizes", "99999999"], "--sizes has 99999999; at most"),
    (["--dim", "0"], "--dim must be a whole number ≥ 1"),
    (["--learn", "--pairs", "8", "--vocab", "4"], "--vocab is 4 but there are 8 pairs"),
    (["--learn", "--vocab", "1000000"], "--vocab is 1,000,000; at most 10,000 (each held-out "
     "evaluation scores 2,000 sequences against every token)"),
    (["--lr", "-1"], "--lr must be a number > 0"),
    (["-q", "3,-1", "-k", "1,2,3"], "--keys has rows of length 3 but the query has 2"),
    (["--k", "9"], "--k must be a whole number in 1..4"),
]


@pytest.mark.parametrize("args, message", BAD)
def test_bad_input(cli, args, message):
    result = cli("compare-selectors", *args, *FAST)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqtool: error: ")
    assert message in lines[0]


def test_the_learning_runs_memory_counts_its_held_out_logits():
    """The held-out evaluation scores every sequence against every token: (2,000, vocab)
    arrays, which the estimate made before the run must count (it once counted only the
    training batch, and a large --vocab ran for many minutes instead of being refused)."""
    from seqtool.commands.compare import memory_needed
    from seqtool.config import CompareConfig
    from seqtool.core.recall import EVAL_SEQUENCES

    small = CompareConfig.from_mapping({"learn": True, "vocab": 64, "dim": 4})
    large = CompareConfig.from_mapping({"learn": True, "vocab": 10_000, "dim": 4})
    needed, flag, _ = memory_needed(large)
    assert flag == "vocab"
    assert needed >= 8.0 * 3 * EVAL_SEQUENCES * 10_000  # logits and their temporaries
    assert needed - memory_needed(small)[0] >= 8.0 * 3 * EVAL_SEQUENCES * (10_000 - 64)
