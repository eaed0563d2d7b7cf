"""`seqtool report DIR -o page.html` and `seqtool run RECIPE --plot FILE`: a tiny sweep and a
direct train-rnn run made once; the page holds their configs and the summary's numbers,
every <svg> is well-formed XML, nothing is scripted or fetched, the recipe plot's error bars
are the summary's mean ± std, and headless Chromium draws the page without a console error.

The train-rnn plot (seqtool.render.plots.train) is another module of #16: when it is not
there yet, a stand-in is registered for the test (as tests/cli/test_new_selector.py
registers a selector); either way the dict it is given is recorded and checked.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
import yaml

pytest.importorskip("matplotlib")

TRAIN_PLOT = "seqtool.render.plots.train"
RECIPE = """\
name: tiny
command: train-rnn
params: {data: parity, task: classify, samples: 100, hidden: 8, epochs: 2}
sweep:
  grid: {cell: [rnn, gru], lr: [0.01, 0.003]}
  seeds: [0, 1]
"""
ORANGE = (0xE6, 0x9F, 0x00)  # PALETTE[1]: the second series of the recipe plot


def _runner():
    from typer.testing import CliRunner

    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps them apart always
        return CliRunner()


def invoke(*args: str):
    from seqtool.cli import app

    return _runner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A sweep of 8 train-rnn runs (cell × lr, two seeds) and a direct train-rnn run."""
    root = tmp_path_factory.mktemp("report")
    recipe = root / "tiny.yaml"
    recipe.write_text(RECIPE)
    result = invoke("run", recipe, "--out", root / "sweep", "-f", "json")
    assert result.exit_code == 0, result.stderr
    result = invoke("train-rnn", "--data", "parity", "--samples", "100", "--hidden", "8",
                    "--epochs", "2", "--out", root / "direct", "-f", "json")
    assert result.exit_code == 0, result.stderr
    return types.SimpleNamespace(root=root, recipe=recipe, sweep=root / "sweep",
                                 direct=root / "direct")


def _stand_in_plot(data):
    """A train plot for when seqtool.render.plots.train is not written yet."""
    from seqtool.render.plots import color, figure, style

    fig = figure(6, 3)
    ax = fig.subplots()
    epochs = [r["epoch"] for r in data["history"]]
    for i, key in enumerate(("train_loss", "val_loss")):
        ax.plot(epochs, [r[key] for r in data["history"]], marker="o", color=color(i),
                label=key)
    style(ax, "stand-in", "epoch", "loss (nats)", legend=True)
    return fig


@pytest.fixture
def train_plot(monkeypatch):
    """The train-rnn plot, real or a stand-in registered for the test; ``.calls`` records
    the dicts it was given."""
    calls = []
    try:
        module = importlib.import_module(TRAIN_PLOT)
        real, stand_in = module.plot, False
    except ModuleNotFoundError as err:
        if err.name != TRAIN_PLOT:
            raise
        module, real, stand_in = types.ModuleType(TRAIN_PLOT), _stand_in_plot, True
        monkeypatch.setitem(sys.modules, TRAIN_PLOT, module)

    def recording(data):
        calls.append(data)
        return real(data)

    monkeypatch.setattr(module, "plot", recording, raising=False)
    return types.SimpleNamespace(calls=calls, stand_in=stand_in)


# ---------------------------------------------------------------------------------------
# Reading the page back


class Page(HTMLParser):
    """Tables (rows of (text, attributes) cells) by the run section they are in, and
    every tag seen."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[str] = []
        self.section = ""
        self.tables: list[tuple[str, list[list[tuple[str, dict]]]]] = []
        self._cell: list[str] | None = None
        self._attrs: dict = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "section":
            self.section = attrs.get("id", "")
        elif tag == "table":
            self.tables.append((self.section, []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell, self._attrs = [], attrs

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append(("".join(self._cell).strip(), self._attrs))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def key_values(self, section: str) -> dict[str, str]:
        """Every two-column parameter/value table of a section, as one mapping."""
        out = {}
        for where, rows in self.tables:
            if where == section and rows and [c[0] for c in rows[0]] == ["parameter", "value"]:
                out.update({row[0][0]: row[1][0] for row in rows[1:]})
        return out


def shown(value) -> str:
    """A config value as the page writes it."""
    from seqtool.render.plots.report import value_text

    return value_text(value)


def check_self_contained(text: str) -> list[str]:
    """No script, nothing fetched, every <svg> well-formed XML; the svgs."""
    assert "<script" not in text.lower()
    assert not re.search(r"https?://", text), re.search(r".{40}https?://.{40}", text)
    assert not re.search(r"""\b(src|href)\s*=\s*["'](?!#)""", text)  # only in-page links
    svgs = re.findall(r"<svg\b.*?</svg>", text, flags=re.DOTALL)
    assert text.count("<svg") == len(svgs)
    for svg in svgs:
        ET.fromstring(svg)  # raises on anything that is not well-formed
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "two elements share an id"
    return svgs


# ---------------------------------------------------------------------------------------
# The sweep


def test_sweep_page(made, train_plot, tmp_path):
    out = tmp_path / "sweep.html"
    result = invoke("report", made.sweep, "-o", out, "-f", "table")
    assert result.exit_code == 0, result.stderr
    assert f"report written to {out}" in " ".join(result.stdout.split())
    text = out.read_text(encoding="utf-8")
    svgs = check_self_contained(text)
    summary = json.loads((made.sweep / "summary.json").read_text())
    runs = summary["runs"]
    assert len(svgs) == 1 + len(runs) == 9  # the recipe's plot and one per run
    assert len(train_plot.calls) == len(runs)
    page = Page(text)

    # the summary: every group's mean and std, exactly, in the cell of its metric
    cells = [c for _, rows in page.tables for row in rows for c in row if "data-mean" in c[1]]
    expected = [(g["metrics"][m]["mean"], g["metrics"][m]["std"]) for g in summary["summary"]
                for m in g["metrics"]]
    assert [(float(a["data-mean"]), float(a["data-std"])) for _, a in cells] == expected
    assert all(" ± " in c[0] for c in cells)  # two seeds: a spread to show

    # each run: its section, its config (all of config.json's params), its metrics
    from seqtool.render.plots.report import anchor

    for run in runs:
        section = anchor(run["id"])
        assert f'id="{section}"' in text
        params = json.loads((made.sweep / run["id"] / "config.json").read_text())["params"]
        assert page.key_values(section) == {k: shown(v) for k, v in params.items()}
        metrics = {row[0][0]: row[1][1].get("title", row[1][0])
                   for where, rows in page.tables if where == section
                   for row in rows[1:] if [c[0] for c in rows[0]] == ["metric", "value"]}
        assert {k: float(v) for k, v in metrics.items()} == run["metrics"]
    # what every run shares, once, above the runs
    shared = page.key_values("")
    assert shared == {"data": "parity", "task": "classify", "samples": "100", "hidden": "8",
                      "epochs": "2"}


def test_recipe_plot_error_bars_are_the_summary(made):
    """Read the artists back: each marker is a group's mean, its bar mean − std .. mean + std."""
    from matplotlib.container import ErrorbarContainer

    from seqtool.render.plots.recipe import plot

    summary = json.loads((made.sweep / "summary.json").read_text())
    fig = plot(summary)
    seen = set()
    for ax in fig.axes:
        metric = ax.get_ylabel()
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(containers) == 2  # a series per cell
        for container in containers:
            line, _, (bars,) = container.lines
            cell = container.get_label().removeprefix("cell=")
            for x, y, segment in zip(*line.get_data(), bars.get_segments()):
                lr = float(ticks[round(x)].removeprefix("lr="))
                group = next(g for g in summary["summary"]
                             if g["point"] == {"cell": cell, "lr": lr})
                stat = group["metrics"][metric]
                assert y == pytest.approx(stat["mean"], rel=1e-12, abs=1e-15)
                low, high = sorted(segment[:, 1])
                assert low == pytest.approx(stat["mean"] - stat["std"], rel=1e-12, abs=1e-15)
                assert high == pytest.approx(stat["mean"] + stat["std"], rel=1e-12, abs=1e-15)
                seen.add((metric, cell, lr))
    assert {m for m, _, _ in seen} == {"val_accuracy", "val_loss"}
    assert len(seen) == 2 * 4  # two panels, four grid points each


def test_run_plot_writes_the_recipe_plot(made, tmp_path):
    """`seqtool run RECIPE --plot FILE`: the runs are done already (skipped), the picture is
    drawn from the summary."""
    out = tmp_path / "sweep.svg"
    result = invoke("run", made.recipe, "--out", made.sweep, "--plot", out, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["skipped"] == 8
    assert f"plot written to {out}" in result.stderr
    ET.fromstring(out.read_text())


def test_a_missing_plot_module_is_a_note(made, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, TRAIN_PLOT, None)  # import fails: ModuleNotFoundError
    out = tmp_path / "sweep.html"
    result = invoke("report", made.sweep, "-o", out, "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["plots"] == 1 and data["runs"] == 8
    assert data["notes"] == [f"no train-rnn plot: {TRAIN_PLOT} is not in this seqtool yet"]
    text = out.read_text(encoding="utf-8")
    assert len(check_self_contained(text)) == 1  # the recipe's plot only
    assert f"{TRAIN_PLOT} is not in this seqtool yet" in text


# ---------------------------------------------------------------------------------------
# A train-rnn run directory (no report.json)


def test_direct_run_page(made, train_plot, tmp_path):
    out = tmp_path / "direct.html"
    result = invoke("report", made.direct, "-o", out, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["plots"] == 1
    text = out.read_text(encoding="utf-8")
    assert len(check_self_contained(text)) == 1
    config = yaml.safe_load((made.direct / "config.yaml").read_text())
    history = [json.loads(line) for line in (made.direct / "metrics.jsonl").read_text()
               .splitlines()]
    model = json.loads((made.direct / "model.json").read_text())
    page = Page(text)
    assert page.key_values("") == {k: shown(v) for k, v in config.items()}
    epochs = next(rows for _, rows in page.tables if rows[0][0][0] == "epoch")
    assert [[float(c[1].get("title", c[0])) for c in row] for row in epochs[1:]] == \
        [[float(v) for v in r.values()] for r in history]
    # the dict the train plot was drawn from: the report train-rnn would have given
    (data,) = train_plot.calls
    assert data["history"] == history and data["config"] == config
    assert data["spec"] == model["spec"] and data["best_val"] == model["val"]
    assert data["best_epoch"] == model["epoch"] == 2 and data["epochs_run"] == 2
    assert data["task"] == "classify" and data["cell"] == "lstm"
    assert data["stop_reason"] == "completed"  # its 2 epochs, as train-rnn said


def test_default_page_goes_into_the_directory(made, train_plot, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(made.direct, run)
    result = invoke("report", run, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert (run / "report.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("args, expected", [
    (["{tmp}"], ("{tmp} is not a run or sweep directory: no report.json, summary.json or "
                 "metrics.jsonl")),
    (["{tmp}/nowhere"], "{tmp}/nowhere is not a run or sweep directory: it does not exist"),
    (["{sweep}", "-o", "{tmp}/page.htm"], ("--out is '{tmp}/page.htm'; the report is one "
                                           "HTML page: give a file name ending in .html, "
                                           "e.g. report.html")),
    (["{sweep}", "-o", "{tmp}/no/page.html"], ("--out is {tmp}/no/page.html, in a folder "
                                               "that does not exist ({tmp}/no)")),
])
def test_refusals_are_one_line(made, tmp_path, args, expected):
    fill = {"tmp": tmp_path, "sweep": made.sweep}
    result = invoke("report", *[a.format(**fill) for a in args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"seqtool: error: {expected.format(**fill)}\n"


# ---------------------------------------------------------------------------------------
# The page in a browser


def test_chromium_draws_the_page(made, train_plot, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not on PATH (CI installs it: .ci/run); the page was not "
                    "opened in a browser")
    import matplotlib.image
    import numpy as np

    page = tmp_path / "sweep.html"
    assert invoke("report", made.sweep, "-o", page, "-f", "json").exit_code == 0
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,1600", page.resolve().as_uri()],
        check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines()
              if any(k in line for k in ("CONSOLE", "Uncaught", "Failed to load resource"))]
    assert errors == []
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape == (1600, 1200, 3)
    assert pixels.var() > 0.003  # not blank
    assert (pixels.min(axis=2) < 0.9).mean() > 0.015  # a fair share of ink: text, tables, plots
    # the plot was drawn, not only the text: the second series' orange markers
    orange = np.abs(pixels * 255 - np.array(ORANGE)).max(axis=2) < 40
    assert orange.sum() > 100
