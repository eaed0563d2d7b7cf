"""The pictures of `seqtool attend` and `seqtool compare-selectors` (`--plot FILE`).

What is drawn is read back from the figure (the heatmap's array, the bars' heights, the
lines' points, the cells' text) and compared with the report it was drawn from; then the
files `--plot` writes, its refusals, and the run without matplotlib.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

from seqtool.core.attention import attend_report
from seqtool.render.plots import MARKERS, PALETTE
from seqtool.render.plots.attend import plot as plot_attend
from seqtool.render.plots.compare import moving_mean
from seqtool.render.plots.compare import plot as plot_compare

QUERIES = "3,-1;1,2"
FAST = ("--repeats", "1")
SELECTORS = ("softmax", "argmax", "sparsemax")
LEARN = ("--learn", "--steps", "50", "--pairs", "4", "--vocab", "16", "--dim", "8")
COST = ("--cost", "--sizes", "16,64", "--dim", "8")


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def _cells(ax) -> dict[tuple[int, int], dict[str, float]]:
    """The annotation of each heatmap cell, {(query, key): {"s": score, "w": weight, ...}}."""
    cells = {}
    for text in ax.texts:
        x, y = text.get_position()
        fields = dict(line.split(" ", 1) for line in text.get_text().splitlines())
        cells[(round(y), round(x))] = {k: _number(v) for k, v in fields.items()}
    return cells


def _outlined(ax) -> set[tuple[int, int]]:
    """The (query, key) cells outlined as selected."""
    return {(round(p.get_y() + p.get_height() / 2), round(p.get_x() + p.get_width() / 2))
            for p in ax.patches if isinstance(p, Rectangle) and p.get_label() == "_selected"}


@pytest.fixture(scope="module")
def compared():
    """compare-selectors with --cost and --learn on two queries, small (computed once)."""
    from typer.testing import CliRunner

    from seqtool.cli import app

    result = CliRunner().invoke(app, ["compare-selectors", "-q", QUERIES, "--selectors",
                                      ",".join(SELECTORS), *FAST, *COST, *LEARN, "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------------
# attend


def test_attend_heatmap_is_the_weights_with_scores_in_the_cells(cli):
    data = cli("attend", "-q", QUERIES, "-f", "json").json()
    fig = plot_attend(data)
    ax, ax_out = fig.axes[:2]  # the weights, the outputs (then their colour bars)
    image = ax.images[0]
    np.testing.assert_array_equal(np.asarray(image.get_array()), data["weights"])
    assert image.get_cmap().name == "viridis"
    assert image.get_clim() == (0.0, 1.0)
    assert image.colorbar.ax.get_ylabel() == "weight"
    cells = _cells(ax)
    scores, weights = np.array(data["scores"]), np.array(data["weights"])
    assert set(cells) == {(j, i) for j in range(2) for i in range(4)}
    for (j, i), cell in cells.items():
        assert cell["s"] == pytest.approx(scores[j, i], rel=5e-3)
        assert cell["w"] == pytest.approx(weights[j, i], rel=5e-3)
    assert "key" in ax.get_xlabel() and "query" in ax.get_ylabel()
    assert "softmax" in ax.get_title() and "softmax" in fig._suptitle.get_text()
    # the outputs beside it, on the same query rows
    np.testing.assert_array_equal(np.asarray(ax_out.images[0].get_array()), data["outputs"])
    assert ax_out.images[0].colorbar.ax.get_ylabel() == "output value"
    outputs = np.array(data["outputs"])
    for text in ax_out.texts:
        c, j = (round(v) for v in text.get_position())
        assert _number(text.get_text()) == pytest.approx(outputs[j, c], rel=5e-3)
    assert len(ax_out.texts) == outputs.size
    assert "component" in ax_out.get_xlabel() and ax_out.get_title()
    assert ax_out.get_shared_y_axes().joined(ax, ax_out)


@pytest.mark.parametrize("selector, expected", [
    ("argmax", {(0, 3), (1, 0)}),  # the argmax of each query: scores (−2,3,0,6), (11,1,7,2)
    ("topk", {(0, 1), (0, 3), (1, 0), (1, 2)}),  # the two largest of each
    ("softmax", {(j, i) for j in range(2) for i in range(4)}),  # every weight is > 0
])
def test_attend_outlines_the_keys_the_report_selected(cli, selector, expected):
    data = cli("attend", "-q", QUERIES, "-s", selector, "-f", "json").json()
    assert {(j, i) for j, row in enumerate(data["support"]) for i in row} == expected
    ax = plot_attend(data).axes[0]
    assert _outlined(ax) == expected
    bold = {(round(t.get_position()[1]), round(t.get_position()[0]))
            for t in ax.texts if t.get_fontweight() == "bold"}
    assert bold == expected
    assert ("the selected key" in ax.get_title()) == (selector == "argmax")


def test_attend_shows_gumbel_noise_and_a_tie(cli):
    data = cli("attend", "-q", QUERIES, "-s", "gumbel", "-f", "json").json()
    cells = _cells(plot_attend(data).axes[0])
    noise = np.array(data["noise"])
    for (j, i), cell in cells.items():
        assert cell["g"] == pytest.approx(noise[j, i], rel=5e-3, abs=1e-12)
    tied = cli("attend", "-q", QUERIES, "-k", "1,5;1,0;1,5", "-s", "argmax", "-f", "json").json()
    assert tied["ties"] == [False, True]
    labels = [t.get_text() for t in plot_attend(tied).axes[0].get_yticklabels()]
    assert "tie" not in labels[0] and "tie" in labels[1]


def test_attend_plot_of_to_dict_and_of_many_keys():
    """A report's to_dict() as a recipe keeps it; past 16 keys the cells are not annotated
    (unreadable) but the heatmap is whole; a null (NaN in report.json) draws as NaN."""
    rng = np.random.default_rng(0)
    report = attend_report(rng.normal(size=(3, 4)), rng.normal(size=(40, 4)),
                           rng.normal(size=(40, 2)), selector="sparsemax", scale="sqrt")
    data = json.loads(json.dumps(report.to_dict()))
    fig = plot_attend(data)
    ax = fig.axes[0]
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), report.weights)
    assert len(ax.texts) == 0
    assert "too small" in ax.get_title()
    assert _outlined(ax) == {(j, i) for j, row in enumerate(report.support) for i in row}
    assert "1/√d" in fig._suptitle.get_text()
    data["weights"][0][0] = None
    assert np.isnan(np.asarray(plot_attend(data).axes[0].images[0].get_array())[0, 0])


# ---------------------------------------------------------------------------------------
# compare-selectors


def test_compare_weights_are_grouped_bars_on_one_scale(compared):
    fig = plot_compare(compared)
    panels = fig.axes[:2]  # one per query, then cost, loss, accuracy
    for j, ax in enumerate(panels):
        assert [c.get_label() for c in ax.containers] == list(SELECTORS)
        for s, (bars, row) in enumerate(zip(ax.containers, compared["rows"])):
            np.testing.assert_allclose([b.get_height() for b in bars], row["weights"][j])
            assert {to_hex(b.get_facecolor()) for b in bars} == {PALETTE[s].lower()}
        assert ax.get_ylim() == (0.0, 1.05)
        assert ax.get_ylabel() == "weight" and f"query {j}" in ax.get_title()
    assert panels[1].get_xlabel() == "key i"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [t.split(" ")[0].rstrip(";") for t in legend[:3]] == list(SELECTORS)
    assert "gradient: zero" in legend[1]
    assert legend[3:] == ["scores q·K", "chance"]
    assert "3 selectors" in fig._suptitle.get_text()


def test_compare_cost_is_time_against_n_on_log_log_axes(compared):
    fig = plot_compare(compared)
    ax = fig.axes[2]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert "µs" in ax.get_ylabel() and "n" in ax.get_xlabel()
    assert "d = 8" in ax.get_title()
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines) == [*SELECTORS, "scores q·K"]
    for s, name in enumerate(SELECTORS):
        points = [(c["n"], c["select_us"]) for c in compared["cost"] if c["selector"] == name]
        np.testing.assert_allclose(lines[name].get_xydata(), points)
        assert lines[name].get_color() == PALETTE[s]
        assert lines[name].get_marker() == MARKERS[s]
    scores = sorted({(c["n"], c["scores_us"]) for c in compared["cost"]})
    np.testing.assert_allclose(lines["scores q·K"].get_xydata(), scores)
    assert lines["scores q·K"].get_linestyle() == "--"
    # the 25th-75th percentile of each point, as a vertical bar
    spreads = [seg for coll in ax.collections for seg in coll.get_segments()]
    expected = [[[c["n"], c["select_spread_us"][0]], [c["n"], c["select_spread_us"][1]]]
                for c in compared["cost"]]
    assert sorted(map(str, np.round(spreads, 6).tolist())) == \
        sorted(map(str, np.round(expected, 6).tolist()))


def test_compare_learning_curves_and_held_out_accuracy(compared):
    fig = plot_compare(compared)
    loss, accuracy = fig.axes[3], fig.axes[4]
    assert loss.get_xlabel() == "Adam step" and "nats" in loss.get_ylabel()
    window = 50 // 25
    for s, r in enumerate(compared["learning"]):
        faint, solid = [line for line in loss.lines if r["selector"] in line.get_label()]
        np.testing.assert_allclose(faint.get_xydata(),
                                   np.c_[np.arange(1, 51), r["losses"]])
        np.testing.assert_allclose(solid.get_ydata(), moving_mean(np.array(r["losses"]), window))
        assert solid.get_label() == r["selector"] and solid.get_color() == PALETTE[s]
        assert faint.get_label().startswith("_")  # not in a legend
        # held-out accuracy along the run: from the untrained number to the trained one
        curve = np.array(r["accuracy_curve"])
        assert curve[0].tolist() == [0, r["accuracy_at_init"]]
        assert curve[-1].tolist() == [50, r["accuracy"]] and len(curve) > 10
        line = next(line for line in accuracy.lines if line.get_label() == r["selector"])
        np.testing.assert_allclose(line.get_xydata(), curve)
    argmax = compared["learning"][1]
    assert argmax["selector"] == "argmax" and not argmax["weights_changed"]
    assert len(set(argmax["losses"])) > 1  # new batches, same weights: a flat, noisy line
    # no gradient reaches W_q, W_k: the same held-out sequences score the same all along
    assert len({a for _, a in argmax["accuracy_curve"]}) == 1
    chance = [line for line in accuracy.lines if line.get_label() == "_chance"]
    assert [line.get_ydata()[0] for line in chance] == sorted({r["chance"] for r in
                                                               compared["learning"]})
    assert accuracy.get_xlabel() == "Adam step"
    assert "held-out" in accuracy.get_title() and "held-out" in accuracy.get_ylabel()


def test_compare_accuracy_without_a_curve_is_two_points_per_selector(compared):
    """A report from before the curve was kept (or a recipe's older report.json)."""
    old = {**compared, "learning": [{k: v for k, v in r.items() if k != "accuracy_curve"}
                                    for r in compared["learning"]]}
    accuracy = plot_compare(old).axes[4]
    for s, r in enumerate(old["learning"]):
        segment = next(line for line in accuracy.lines if line.get_label() == r["selector"])
        np.testing.assert_allclose(segment.get_xydata(),
                                   [[s, r["accuracy_at_init"]], [s, r["accuracy"]]])
    assert [t.get_text() for t in accuracy.get_xticklabels()] == list(SELECTORS)


def test_compare_without_cost_or_learn_is_the_weights_alone(cli):
    data = cli("compare-selectors", "-q", "3,-1", *FAST, "-f", "json").json()
    fig = plot_compare(data)
    assert len(fig.axes) == 1
    assert len(fig.axes[0].containers) == len(data["rows"])
    assert len(fig.legends[0].get_texts()) == len(data["rows"])


# ---------------------------------------------------------------------------------------
# the files --plot writes


def _check_file(path, suffix: str) -> None:
    raw = path.read_bytes()
    if suffix == ".png":
        assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    elif suffix == ".pdf":
        assert raw.startswith(b"%PDF")
    elif suffix == ".svg":
        text = raw.decode("utf-8")
        assert "<svg" in text
        assert ET.fromstring(text).tag.endswith("svg")
    else:
        text = raw.decode("utf-8")
        assert text.startswith("<!DOCTYPE html>") and "<svg" in text
        assert "<script" not in text.lower()
        # nothing fetched: every link inside the page is to an id in it or inline data (a
        # heatmap is an embedded PNG), and the page names no URL at all (the inline SVG
        # drops matplotlib's namespace declarations and metadata, which HTML does not need)
        links = re.findall(r'(?:href|src)\s*=\s*"([^"]*)"', text)
        assert links and all(link.startswith(("#", "data:")) for link in links)
        assert "http" not in text and "<link" not in text and "@import" not in text


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf", ".html"])
def test_plot_writes_every_format(cli, tmp_path, suffix):
    out = tmp_path / f"attend{suffix}"
    result = cli("attend", "-q", "3,-1", "--plot", str(out), "-f", "json")
    assert result.exit_code == 0, result.output
    assert result.json()["selector"] == "softmax"  # the report is still written
    assert f"plot written to {out}" in result.stderr
    _check_file(out, suffix)
    out = tmp_path / f"compare{suffix}"
    result = cli("compare-selectors", "-q", "3,-1", "-s", "softmax,argmax", *FAST,
                 "--plot", str(out), "-f", "json")
    assert result.exit_code == 0, result.output
    _check_file(out, suffix)


def test_the_same_run_gives_the_same_svg(cli, tmp_path):
    for args in (("attend", "-q", QUERIES, "-s", "gumbel"),
                 ("compare-selectors", "-q", "3,-1", "-s", "softmax,topk", *FAST)):
        first, second = tmp_path / "a.svg", tmp_path / "b.svg"
        for out in (first, second):
            assert cli(*args, "--plot", str(out), "-f", "json").exit_code == 0
        assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("where, said", [
    ("plot.jpg", "the extension chooses the format"),
    ("missing/plot.png", "a folder that does not exist"),
    ("pictures.svg", "a folder; give a file name"),
])
def test_a_bad_plot_path_is_refused_before_the_run(cli, tmp_path, monkeypatch, where, said):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pictures.svg").mkdir()
    for command in (("attend", "-q", "3,-1"), ("compare-selectors", "-q", "3,-1", *FAST)):
        result = cli(*command, "--plot", where)
        assert result.exit_code == 2
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "--plot" in lines[0] and said in lines[0], lines
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["pictures.svg"]  # nothing written


def test_without_matplotlib_plot_is_refused_and_the_rest_works(cli, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    for command in (("attend", "-q", "3,-1"), ("compare-selectors", "-q", "3,-1", *FAST)):
        result = cli(*command, "--plot", str(tmp_path / "x.png"))
        assert result.exit_code == 2
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "pip install 'seqtool[plot]'" in lines[0], lines
        assert not (tmp_path / "x.png").exists()
        done = cli(*command, "-f", "json")
        assert done.exit_code == 0, done.output
        assert done.json()
