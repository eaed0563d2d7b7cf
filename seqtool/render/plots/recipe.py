"""`seqtool run RECIPE --plot FILE`: each grid point's summary metrics, mean ± std over seeds.

Drawn from the run command's report ``to_dict()`` (``summary.json``): its ``summary`` holds
one group per (step, grid point) with, for every metric, the mean, the standard deviation
(n − 1) and n over the seeds. The picture:

- one row of panels per *family*: the steps that run the same command over the same grid
  keys (``sentiment-classify``'s gru and bow steps share one; ``dyck-lm``'s train, sample
  and evaluate steps are three);
- one panel per main metric of the family: for training, the first ``val_*`` metric and
  ``val_loss``; otherwise its first three (``baseline_*`` and ``epochs`` left out). A metric
  named ``<name>.<metric>`` (bptt's ``gru.rate_per_step``, compare-selectors'
  ``softmax.accuracy``) is one panel for ``<metric>`` with ``<name>`` as a grid value;
- each point a marker at the mean with an error bar of ± one std; the grid points along x,
  labelled by their point dict. With two or more grid keys the first one (or the metric's
  ``<name>``, or the step) picks the series, told apart by colour and marker (PALETTE,
  MARKERS), and its points sit side by side at each x; one legend beside the panels names
  the series;
- a step of one run (no grid, no seeds) is left out: one dot compares nothing, and its
  numbers are in the summary table;
- ``baseline_<...>_<m>`` (training's majority-class accuracy) as grey bars at each point of
  the ``val_<m>`` panel; a log y axis when a panel's values are positive and span more than
  three decades (‖∂h_T/∂h_0‖ across spectral radii).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from seqtool.core.errors import InputError
from seqtool.render.plots import MARKERS, color, figure, style

PANEL_WIDTH = 4.2
PANEL_HEIGHT = 3.4
COLUMNS = 3  # panels per row at most
ROOM = 40  # characters of tick labels a panel's x axis holds side by side
PART_KEYS = {"bptt": "cell", "compare-selectors": "selector"}  # what <name>. of a metric is
SKIPPED = ("epochs", "sequences", "tokens", "texts", "count")  # counts, not results


@dataclass
class Value:
    """One plotted point: what it is (its label dict, keys in order) and mean ± std."""

    label: dict[str, Any]
    mean: float
    std: float
    n: int
    baseline: float | None = None
    baseline_name: str = ""


@dataclass
class Panel:
    family: str
    metric: str
    values: list[Value] = field(default_factory=list)


def _text(value: Any) -> str:
    """A grid value as a label (and a key: a list-valued grid point is hashable so)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def _families(groups: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Groups with the same command and grid keys, in the order they first appear."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    for g in groups:
        out.setdefault((str(g["command"]), tuple(map(str, g["point"]))), []).append(g)
    return list(out.values())


def _split(name: str, command: str) -> tuple[str | None, str]:
    """(part, metric) of a metric name: ("gru", "rate_per_step") for bptt's per-cell ones;
    (None, name) otherwise (dh_T/dh_0 has no dot; output[0] is no part)."""
    part, dot, rest = name.partition(".")
    if dot and command in PART_KEYS and part and rest:
        return part, rest
    return None, name


def main_metrics(names: list[str]) -> list[str]:
    """The panels of a family: training's first val_* metric and val_loss, else the first
    three results (no baseline_*, no epochs)."""
    val = [n for n in names if n.startswith("val_")]
    if val:
        first = next((n for n in val if n != "val_loss"), None)
        return [n for n in (first, "val_loss") if n is not None and n in names]
    results = [n for n in names if not n.startswith("baseline_") and n not in SKIPPED]
    return results[:COLUMNS]


def _baseline_of(metric: str, metrics: dict[str, Any]) -> tuple[float | None, str]:
    """The mean of ``baseline_*_<m>`` for the panel ``val_<m>`` (majority_accuracy for
    val_accuracy) and its name, if the runs measured one."""
    if metric.startswith("val_"):
        suffix = "_" + metric[4:]
        for name, stat in metrics.items():
            if name.startswith("baseline_") and name.endswith(suffix) and stat \
                    and stat.get("mean") is not None:
                return float(stat["mean"]), name[len("baseline_"):].replace("_", " ")
    return None, ""


def panels(data: dict[str, Any]) -> list[Panel]:
    """Every panel of the picture, with its values, from a recipe report's to_dict()."""
    groups = [g for g in data.get("summary") or [] if g.get("metrics")]
    several_steps = len({g["step"] for g in data.get("summary") or []}) > 1
    out = []
    for family in _families(groups):
        command = family[0]["command"]
        steps = list(dict.fromkeys(g["step"] for g in family))
        names = list(dict.fromkeys(_split(m, command)[1] for g in family for m in g["metrics"]))
        label = (" + ".join(steps) if several_steps else steps[0])
        for metric in main_metrics(names):
            panel = Panel(f"{label} ({command})", metric)
            for g in family:
                for name, stat in g["metrics"].items():
                    part, base = _split(name, command)
                    if base != metric or stat is None or stat.get("mean") is None:
                        continue
                    keys: dict[str, str] = {}
                    if part is not None:
                        keys[PART_KEYS[command]] = part
                    if len(steps) > 1:
                        keys["step"] = str(g["step"])
                    keys.update({str(k): _text(v) for k, v in g["point"].items()})
                    panel.values.append(Value(keys, float(stat["mean"]),
                                              float(stat.get("std") or 0.0),
                                              int(stat.get("n") or 0),
                                              *_baseline_of(name, g["metrics"])))
            if panel.values:
                out.append(panel)
    return out


def _compares(panel: Panel) -> bool:
    """Whether a panel shows more than one number: several points, or a spread over seeds
    (a step of one run is in the summary table; a picture of one dot adds nothing)."""
    return len(panel.values) > 1 or any(v.n > 1 for v in panel.values)


def _layout(values: list[Value]) -> tuple[list[str], list[tuple], list[tuple]]:
    """(the keys of x, the series (tuples of (key, value)), the x positions (tuples))."""
    keys = list(dict.fromkeys(k for v in values for k in v.label))
    series_keys = keys[:1] if len(keys) >= 2 else []
    x_keys = keys[len(series_keys):]
    series = list(dict.fromkeys(tuple((k, v.label.get(k)) for k in series_keys) for v in values))
    xs = list(dict.fromkeys(tuple((k, v.label.get(k)) for k in x_keys) for v in values))
    return x_keys, series, xs


def _tick(x: tuple) -> str:
    return "\n".join(f"{k}={v}" for k, v in x) or "all runs"


def _draw(ax: Any, panel: Panel, title: str) -> None:
    x_keys, series, xs = _layout(panel.values)
    width = 0.6 / max(len(series), 1)
    for i, s in enumerate(series):
        chosen = [v for v in panel.values if tuple((k, v.label.get(k)) for k, _ in s) == s]
        offset = (i - (len(series) - 1) / 2) * width
        pos = [xs.index(tuple((k, v.label.get(k)) for k in x_keys)) + offset for v in chosen]
        name = ", ".join(f"{k}={v}" for k, v in s) or None
        ax.errorbar(pos, [v.mean for v in chosen], yerr=[v.std for v in chosen],
                    fmt=MARKERS[i % len(MARKERS)], color=color(i), ecolor=color(i),
                    capsize=4, markersize=6, linestyle="none", label=name)
        base = [(p, v.baseline) for p, v in zip(pos, chosen) if v.baseline is not None]
        base_name = next((v.baseline_name for v in chosen if v.baseline_name), "")
        if base:
            ax.plot([p for p, _ in base], [b for _, b in base], linestyle="none", marker="_",
                    markersize=18, markeredgewidth=2, color="#999999",
                    label=f"baseline: {base_name}" if i == 0 else None)
    ax.set_xticks(range(len(xs)), [_tick(x) for x in xs])
    widest = [max(len(line) for line in _tick(x).split("\n")) for x in xs]
    if sum(widest) + 2 * len(xs) > ROOM or len(xs) > 8:  # side by side they would touch
        for t in ax.get_xticklabels():
            t.set_rotation(30)
            t.set_horizontalalignment("right")
    ax.set_xlim(-0.5, len(xs) - 0.5)
    means = [v.mean for v in panel.values]
    if min(means) > 0 and max(means) / min(means) > 1e3:
        ax.set_yscale("log")  # error bars that reach below 0 are cut at the axis
    style(ax, title, ", ".join(x_keys), panel.metric)  # one legend for all: see plot


def plot(data: dict[str, Any]) -> Any:
    """The summary of a recipe's runs (see the module docstring)."""
    if "summary" not in data:
        raise InputError("plot", "has nothing to draw: --dry-run runs nothing")
    every = panels(data)
    drawn = [p for p in every if _compares(p)]
    name = data.get("recipe", "recipe")
    if not drawn:  # a figure without axes: seqtool report leaves it out
        fig = figure(6.0, 1.2)
        why = "no run finished" if not every else \
            "every step is a single run (its numbers are in the summary)"
        fig.suptitle(f"{name}: nothing to compare, {why}")
        return fig
    families = list(dict.fromkeys(p.family for p in drawn))
    rows = []  # panels per row: a family's panels start a new row
    for fam in families:
        mine = [p for p in drawn if p.family == fam]
        rows += [mine[i:i + COLUMNS] for i in range(0, len(mine), COLUMNS)]
    columns = max(len(r) for r in rows)
    fig = figure(PANEL_WIDTH * columns, PANEL_HEIGHT * len(rows))
    seeds = sorted({v.n for p in drawn for v in p.values})
    if seeds == [1]:
        fig.suptitle(f"{name}: one run per point (no seeds to average)")
    else:
        over = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
        fig.suptitle(f"{name}: mean ± std over {over} seeds per point")
    grid = fig.subplots(len(rows), columns, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(columns):
            ax = grid[r][c]
            if c >= len(row):
                ax.set_visible(False)
                continue
            panel = row[c]
            title = f"{panel.family}: {panel.metric}" if len(families) > 1 else panel.metric
            _draw(ax, panel, title)
    # the series and the baseline, named once beside the panels (not over their points)
    named: dict[str, Any] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            named.setdefault(label, handle)
    if named:
        fig.legend(list(named.values()), list(named), loc="outside right upper",
                   frameon=False, fontsize="small")
    return fig


__all__ = ["main_metrics", "panels", "plot"]
