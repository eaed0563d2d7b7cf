"""The pictures of `seqtool bptt`, `train-rnn` and `evaluate` (#16): each plot function is
called on the command's JSON report and its artists are read back (the lines' y values are
the report's norms and losses, the heatmaps its alignment, dependency map and confusion
matrix); `--plot FILE` writes a valid PNG, SVG, PDF and HTML file; and evaluate's new
details (confusion counts, exact share per target length, loss per position) are checked
against a count made from `seqtool predict` or from the model directly. A few tiny runs are
trained once for the module."""

from __future__ import annotations

import csv
import io
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from seqtool.render.plots import bptt as bptt_plot  # noqa: E402
from seqtool.render.plots import evaluate as evaluate_plot  # noqa: E402
from seqtool.render.plots import train as train_plot  # noqa: E402

RUNS = {  # name: train-rnn arguments (each trains in well under a second)
    "parity": ["--data", "parity", "--samples", "100", "--hidden", "8", "--epochs", "2",
               "--explain"],
    "reverse": ["--data", "reverse", "--samples", "200", "--seq-len", "6", "--hidden", "16",
                "--epochs", "1", "--explain"],
    "echo": ["--data", "echo", "--samples", "60", "--hidden", "8", "--epochs", "1"],
    "dyck": ["--data", "dyck", "--samples", "60", "--hidden", "8", "--epochs", "1"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> (run directory, the train-rnn JSON report) for each run of RUNS."""
    import json

    from typer.testing import CliRunner

    from seqtool.cli import app

    base = tmp_path_factory.mktemp("plot-runs")
    runner = CliRunner()
    out = {}
    for name, args in RUNS.items():
        directory = base / name
        result = runner.invoke(app, ["train-rnn", *args, "--out", str(directory), "-f", "json"])
        assert result.exit_code == 0, result.output
        out[name] = (directory, json.loads(result.stdout))
    return out


def run_json(cli, *args):
    result = cli(*args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return result.json()


def panel(fig, words):
    """The axes whose title holds ``words`` (colour bars have no title)."""
    found = [ax for ax in fig.axes if words in ax.get_title()]
    assert found, [ax.get_title() for ax in fig.axes]
    return found[0]


def line(ax, words):
    """The line whose legend label holds ``words``."""
    found = [ln for ln in ax.lines if words in ln.get_label()]
    assert found, [ln.get_label() for ln in ax.lines]
    return found[0]


def labelled(fig):
    """Every panel (not a colour bar) has a title and both axis labels."""
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            assert ax.get_ylabel() or ax.get_xlabel()
            continue
        assert ax.get_title(), ax
        assert ax.get_ylabel(), ax.get_title()
    assert fig.get_suptitle()


# ---------------------------------------------------------------------------------------
# bptt


def test_bptt_plot_draws_the_norms_the_rate_and_the_shares(cli):
    data = run_json(cli, "bptt", "--steps", "5")
    fig = bptt_plot.plot(data)
    labelled(fig)
    jac = panel(fig, "how much step k")
    assert jac.get_yscale() == "log"
    norms = np.array(data["jacobian_norms"]["norms"])
    measured = line(jac, "per step back")  # the solid line carries the rate in its label
    np.testing.assert_allclose(measured.get_ydata(), norms)
    np.testing.assert_allclose(measured.get_xdata(), data["jacobian_norms"]["k"])
    rate = data["jacobian_norms"]["rate_per_step"]
    assert f"×{rate:.3g} per step back" in measured.get_label()
    dashed = [ln for ln in jac.lines if ln.get_linestyle() == "--"]
    np.testing.assert_allclose(dashed[0].get_ydata(), rate ** (5 - np.arange(6)))
    assert jac.get_legend() is not None and "report's rate" in " ".join(
        t.get_text() for t in jac.get_legend().get_texts())
    grad = panel(fig, "the whole gradient")
    assert grad.get_yscale() == "log"
    np.testing.assert_allclose(grad.lines[0].get_ydata(), data["dL_dh"])
    b, _ = np.polyfit(np.arange(6), np.log(data["dL_dh"]), 1)
    assert f"fit ×{np.exp(-b):.3g} per step back" in grad.lines[0].get_label()
    assert "np.polyfit" in " ".join(t.get_text() for t in grad.get_legend().get_texts())
    shares = panel(fig, "share of")
    heights = [p.get_height() for p in shares.patches]
    np.testing.assert_allclose(heights, [s["norm"] for s in data["per_step"]])
    assert "t = 1" in shares.get_title()  # h_0 = 0: the first share is 0, and says why


def test_bptt_plot_puts_the_cells_on_one_axis_a_colour_and_marker_each(cli):
    data = run_json(cli, "bptt", "--steps", "5", "--cell", "rnn,gru,lstm")
    fig = bptt_plot.plot(data)
    labelled(fig)
    jac = panel(fig, "how much step k")
    solid = {}
    for part in data["reports"]:
        cell = part.get("cell", "rnn")
        drawn = line(jac, f"{cell}: ×")
        np.testing.assert_allclose(drawn.get_ydata(), part["jacobian_norms"]["norms"])
        solid[cell] = (drawn.get_color(), drawn.get_marker())
    assert len(set(solid.values())) == 3 and len({c for c, _ in solid.values()}) == 3
    cell_path = line(jac, "lstm: ")  # the LSTM's ‖∂c_T/∂c_k‖, dotted
    assert any(ln.get_linestyle() == ":" for ln in jac.lines) and cell_path is not None
    grad = panel(fig, "the whole gradient")
    for part in data["reports"]:
        np.testing.assert_allclose(line(grad, f"{part.get('cell', 'rnn')}: fit").get_ydata(),
                                   part["dL_dh"])
    shares = panel(fig, "share of")
    assert len(shares.patches) == 3 * 5
    assert {t.get_text() for t in shares.get_legend().get_texts()} == {"rnn", "gru", "lstm"}


def test_a_norm_of_zero_is_left_off_the_log_axis_and_said_so(cli):
    data = run_json(cli, "bptt", "--steps", "5")
    data["jacobian_norms"]["norms"][0] = 0.0  # as a dead ReLU leaves it
    data["jacobian_norms"]["rate_per_step"] = 0.0
    fig = bptt_plot.plot(data)
    jac = panel(fig, "how much step k")
    drawn = line(jac, "vanishing: ")
    np.testing.assert_allclose(drawn.get_xdata(), [1, 2, 3, 4, 5])
    assert any("not drawn (log axis)" in t.get_text() for t in jac.texts)
    # an exact exponential is fitted exactly
    a, b = bptt_plot.fitted_rate(np.arange(6), 3.0 * 0.5 ** np.arange(6))
    assert math.exp(a) == pytest.approx(3.0) and math.exp(-b) == pytest.approx(2.0)


def test_plot_files_through_the_cli_and_the_same_bptt_svg_twice(cli, tmp_path):
    for suffix in ("png", "svg", "pdf", "html"):
        path = tmp_path / f"bptt.{suffix}"
        result = cli("bptt", "--steps", "5", "--plot", str(path), "-f", "json")
        assert result.exit_code == 0, result.stderr
        assert f"plot written to {path}" in result.stderr
        content = path.read_bytes()
        if suffix == "png":
            assert content.startswith(b"\x89PNG\r\n\x1a\n")
        elif suffix == "svg":
            assert ET.fromstring(content).tag.endswith("svg")
        elif suffix == "pdf":
            assert content.startswith(b"%PDF")
        else:
            text = content.decode()
            assert "<svg" in text and "<script" not in text.lower()
            ET.fromstring(text[text.index("<svg"):text.index("</svg>") + 6])
    again = tmp_path / "again.svg"
    assert cli("bptt", "--steps", "5", "--plot", str(again), "-f", "json").exit_code == 0
    assert again.read_bytes() == (tmp_path / "bptt.svg").read_bytes()


# ---------------------------------------------------------------------------------------
# train-rnn


def test_train_plot_draws_the_history_and_the_dependency_map(runs):
    _, report = runs["parity"]
    fig = train_plot.plot(report)
    labelled(fig)
    history = report["history"]
    loss = panel(fig, "loss per epoch")
    np.testing.assert_allclose(line(loss, "train loss").get_ydata(),
                               [r["train_loss"] for r in history])
    np.testing.assert_allclose(line(loss, "validation loss").get_ydata(),
                               [r["val_loss"] for r in history])
    np.testing.assert_allclose(line(loss, "train loss").get_xdata(), [1, 2])
    assert loss.get_legend() is not None and "nats" in loss.get_ylabel()
    metric = panel(fig, "accuracy per epoch")
    np.testing.assert_allclose(line(metric, "validation accuracy").get_ydata(),
                               [r["val_accuracy"] for r in history])
    assert "majority" in " ".join(t.get_text() for t in metric.get_legend().get_texts())
    dependency = panel(fig, "which inputs each output reads")
    np.testing.assert_allclose(np.asarray(dependency.images[0].get_array()),
                               report["dependency"]["norms"])
    assert dependency.images[0].get_cmap().name == "viridis"
    ticks = [t.get_text() for t in dependency.get_xticklabels()]
    assert ticks == [f"{s + 1}: {tok}" for s, tok in enumerate(report["dependency"]["inputs"])]


def test_seq2seq_plot_draws_exact_sequences_and_the_alignment(runs):
    _, report = runs["reverse"]
    fig = train_plot.plot(report)
    labelled(fig)
    metric = panel(fig, "exact-sequence accuracy")
    np.testing.assert_allclose(line(metric, "exact").get_ydata(),
                               [r["val_exact"] for r in report["history"]])
    alignment = report["alignment"]
    ax = panel(fig, "alignment of validation pair 1")
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), alignment["weights"])
    assert [t.get_text() for t in ax.get_xticklabels()] == alignment["source"]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows[:len(alignment["output"])] == alignment["output"]
    if len(alignment["weights"]) == len(alignment["output"]) + 1:
        assert rows[-1] == "</s>"
    assert ax.get_xlabel() == "source token" and "output" in ax.get_ylabel()
    assert "attention: dot score" in fig.get_suptitle()  # what the scoring did, in the title


def test_the_title_says_when_the_scoring_never_moved():
    note = train_plot.attention_note({"score": "additive", "selector": "argmax",
                                      "scoring_change": {"attention.weight": 0.0},
                                      "gradient": "zero"})
    assert "‖Δweight‖ = 0" in note and "never moved" in note


# ---------------------------------------------------------------------------------------
# evaluate


def test_evaluate_confusion_equals_a_count_from_predict(cli, runs):
    from seqtool.commands.trained import dataset_for_model, load_model

    directory, _ = runs["parity"]
    report = run_json(cli, "evaluate", str(directory), "--data", "parity", "--samples", "80")
    confusion = report["confusion"]
    model = load_model(directory)
    data = dataset_for_model(model, "parity", samples=80)
    texts = [" ".join(model.vocab.decode(x)) for x in data.inputs]
    predicted = cli("predict", str(directory), "-f", "json", input="\n".join(texts) + "\n")
    assert predicted.exit_code == 0, predicted.stderr
    labels = confusion["labels"]
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    for row, target in zip(predicted.json(), data.targets):
        counts[int(np.ravel(target)[0]), labels.index(row["label"])] += 1
    assert confusion["counts"] == counts.tolist()
    assert np.trace(counts) / counts.sum() == pytest.approx(report["accuracy"])
    fig = evaluate_plot.plot(report)
    labelled(fig)
    ax = panel(fig, "confusion matrix")
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), counts)
    assert ax.get_ylabel() == "true label" and ax.get_xlabel().startswith("predicted")
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(c) for c in counts.ravel())
    # the CSV row keeps the scalars; the table prints the matrix
    rows = list(csv.DictReader(io.StringIO(
        cli("evaluate", str(directory), "--data", "parity", "--samples", "80",
            "-f", "csv").stdout)))
    assert len(rows) == 1 and "confusion" not in rows[0] and rows[0]["accuracy"]
    table = cli("evaluate", str(directory), "--data", "parity", "--samples", "80",
                "-f", "table").stdout
    assert "confusion (rows: true label, columns: predicted)" in table and "{" not in table
    for name, row in zip(labels, counts):
        shown = [ln for ln in table.splitlines() if ln.startswith(f"│ {name} ")]
        assert [int(c) for c in shown[0].strip("│ ").split("│")[1:]] == row.tolist()


def test_a_tagger_s_confusion_counts_its_tokens(cli, runs):
    from seqtool.commands.trained import dataset_for_model, load_model
    from seqtool.core.inference import tag

    directory, _ = runs["echo"]
    report = run_json(cli, "evaluate", str(directory), "--data", "echo", "--samples", "40")
    model = load_model(directory)
    data = dataset_for_model(model, "echo", samples=40)
    counts = np.zeros((model.spec.output_size,) * 2, dtype=int)
    for p, target in zip(tag(model.spec, model.params, list(data.inputs)), data.targets):
        real = np.asarray(target) >= 0
        np.add.at(counts, (np.asarray(target)[real], p.argmax(axis=1)[real]), 1)
    assert report["confusion"]["counts"] == counts.tolist()
    assert counts.sum() == report["count"]


def test_seq2seq_evaluate_reports_exact_accuracy_by_target_length(cli, runs, tmp_path):
    directory, _ = runs["reverse"]
    path = tmp_path / "evaluate.png"
    report = run_json(cli, "evaluate", str(directory), "--data", "reverse", "--samples", "60",
                      "--plot", str(path))
    assert path.read_bytes().startswith(b"\x89PNG")
    part = report["exact_by_length"]
    assert part["length"] == sorted(part["length"]) and sum(part["sequences"]) == 60
    assert all(0 <= v <= 1 for v in part["exact"])
    overall = sum(n * e for n, e in zip(part["sequences"], part["exact"])) / 60
    assert overall == pytest.approx(report["exact"])
    fig = evaluate_plot.plot(report)
    labelled(fig)
    ax = panel(fig, "by target length")
    np.testing.assert_allclose([p.get_height() for p in ax.patches], part["exact"])
    np.testing.assert_allclose([p.get_x() + p.get_width() / 2 for p in ax.patches],
                               part["length"])
    assert [t.get_text() for t in ax.texts] == [f"n={n}" for n in part["sequences"]]
    assert "tokens" in ax.get_xlabel()


def test_lm_evaluate_reports_the_loss_by_position(cli, runs, tmp_path):
    from seqtool.commands.use import evaluate_metrics

    directory, _ = runs["dyck"]
    path = tmp_path / "lm.html"
    report = run_json(cli, "evaluate", str(directory), "--data", "dyck", "--samples", "40",
                      "--plot", str(path))
    assert "<svg" in path.read_text() and "<script" not in path.read_text()
    part = report["loss_by_position"]
    assert part["position"] == list(range(1, len(part["loss"]) + 1))
    assert sum(part["count"]) == report["count"]
    mean = sum(v * n for v, n in zip(part["loss"], part["count"])) / sum(part["count"])
    # the model is float32: evaluate's loss and this mean take its logits by separate paths
    assert mean == pytest.approx(report["loss"], rel=1e-6)
    fig = evaluate_plot.plot(report)
    labelled(fig)
    ax = panel(fig, "by position")
    np.testing.assert_allclose(line(ax, "mean at this position").get_ydata(), part["loss"])
    assert "nats" in ax.get_ylabel()
    np.testing.assert_array_equal([p.get_height() for p in panel(fig, "targets at").patches],
                                  part["count"])
    # a recipe's summary averages scalars only
    assert "loss_by_position" not in evaluate_metrics(report) and "loss" in evaluate_metrics(report)


def test_train_and_evaluate_write_their_plots_through_the_cli(cli, runs, tmp_path):
    directory, _ = runs["parity"]
    svg = tmp_path / "train.svg"
    result = cli("train-rnn", *RUNS["parity"], "--out", str(tmp_path / "run"), "--plot",
                 str(svg), "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert ET.fromstring(svg.read_bytes()).tag.endswith("svg")
    pdf = tmp_path / "evaluate.pdf"
    assert cli("evaluate", str(directory), "--data", "parity", "--samples", "40", "--plot",
               str(pdf), "-f", "json").exit_code == 0
    assert pdf.read_bytes().startswith(b"%PDF")


def test_a_report_with_scalars_only_is_a_text_panel():
    fig = evaluate_plot.plot({"run": "r", "data": "adding", "task": "regress",
                              "sequences": 30, "loss": 0.25, "mse": 0.25, "count": 30})
    text = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "mse" in text and "0.25" in text and fig.get_suptitle()


def test_tokens_with_dollar_signs_are_drawn_as_they_are(runs):
    """Two "$" in a token would start matplotlib's math mode (and a bad formula fails)."""
    from seqtool.render.plots import encode

    _, report = runs["reverse"]
    tokens = ["$\\frac{$", "a$b", "$"]
    alignment = {**report["alignment"], "source": tokens, "target": tokens,
                 "output": tokens[:2], "weights": [[0.2, 0.3, 0.5]] * 3}
    fig = train_plot.plot({**report, "alignment": alignment, "data": "my$file$.tsv"})
    assert encode(fig, ".png").startswith(b"\x89PNG")
    ax = panel(fig, "alignment of validation pair")
    assert [t.get_text() for t in ax.get_xticklabels()] == [t.replace("$", r"\$")
                                                            for t in tokens]
