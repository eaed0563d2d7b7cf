"""The picture of `seqtool compare-selectors`, drawn from the report's ``to_dict()``.

Top, one panel per query (the first :data:`MAX_QUERIES`): each selector's weights on the
same keys as grouped bars (a line per selector past :data:`MAX_BARS_KEYS` keys), all on
the same 0–1 scale. Below, side by side, what the report holds of the rest:

- with ``--cost``: the median time of one selection (µs) against the number of keys n on
  log–log axes, a line per selector (colour and marker) with its 25th–75th percentile as a
  vertical bar, and the time of the scores q·K (the same for every selector) dashed;
- with ``--learn``: the training loss (nats) per Adam step, a line per selector (faint: each
  batch's loss; solid: its moving mean), and the held-out accuracy each selector reached,
  as training goes (the report's ``accuracy_curve``: the same held-out sequences about
  every steps/20 steps), against chance (dotted); a report without the curve shows the
  two points before and after training.

One legend for the figure: a selector has the same colour and marker in every panel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter, PercentFormatter

from seqtool.render.plots import MARKERS, color, figure, style

MAX_QUERIES = 4  # weight panels; a fifth query would make the figure a scroll
MAX_BARS_KEYS = 24  # past this many keys the bars are hairlines: a line per selector
MAX_TICK_DIM = 3  # key vectors written under their index while they stay short
REFERENCE = "#888888"  # what is not a selector (the scores' time, chance): neutral grey
LEGEND_COLUMN = 4.6  # inches: the widest label, "gumbel (temperature=1, seed=0, ...)"
SMOOTH_POINTS = 25  # the loss's moving mean spans steps / SMOOTH_POINTS steps


def _num(x: float, digits: int = 3) -> str:
    if x is None:
        return "nan"
    return "0" if x == 0 else f"{x:.{digits}g}".replace("-", "−")


def _vector(values: Any) -> str:
    return "(" + ", ".join(_num(v) for v in values) + ")"


def _floats(values: Any) -> np.ndarray:
    # report.json writes NaN and ±inf as null: they come back as NaN
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _label(row: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={_num(v) if isinstance(v, float) else v}"
                       for k, v in (row.get("params") or {}).items())
    name = f"{row['selector']} ({params})" if params else row["selector"]
    return f"{name}; gradient: {row['gradient']}"


def moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of each ``window`` consecutive values (len(values) − window + 1 of them)."""
    if window <= 1 or len(values) < window:
        return values.copy()
    sums = np.cumsum(np.concatenate([[0.0], values]))
    return (sums[window:] - sums[:-window]) / window


def _weights_panel(ax: Any, data: dict[str, Any], j: int, style_of: dict[str, dict],
                   title: str, xlabel: str) -> None:
    rows = data["rows"]
    n = len(rows[0]["weights"][j])
    keys = data.get("keys") or []
    count = len(rows)
    if n <= MAX_BARS_KEYS:
        width = 0.8 / count
        for s, row in enumerate(rows):
            x = np.arange(n) + (s - (count - 1) / 2) * width
            ax.bar(x, _floats(row["weights"][j]), width, color=style_of[row["selector"]]["color"],
                   edgecolor="black", linewidth=0.4, label=row["selector"])
        short = keys and len(keys[0]) <= MAX_TICK_DIM
        ax.set_xticks(range(n), [f"{i}\n{_vector(keys[i])}" if short else str(i)
                                 for i in range(n)])
        ax.set_xlim(-0.6, n - 0.4)
    else:
        for row in rows:
            look = style_of[row["selector"]]
            ax.plot(range(n), _floats(row["weights"][j]), color=look["color"],
                    marker=look["marker"], markersize=3, linewidth=1.0,
                    drawstyle="steps-mid", label=row["selector"])
    ax.set_ylim(0.0, 1.05)  # weights lie in [0, 1]: one scale for every panel
    style(ax, title, xlabel, "weight")
    if n <= MAX_BARS_KEYS:
        ax.grid(False, axis="x")  # bars need no vertical rules


def _cost_panel(ax: Any, data: dict[str, Any], style_of: dict[str, dict]) -> None:
    cost = data["cost"]
    names = list(dict.fromkeys(c["selector"] for c in cost))
    sizes = sorted({c["n"] for c in cost})
    for name in names:
        points = sorted((c for c in cost if c["selector"] == name), key=lambda c: c["n"])
        n = np.array([c["n"] for c in points], dtype=float)
        look = style_of.get(name, {"color": REFERENCE, "marker": "o"})
        ax.plot(n, _floats([c["select_us"] for c in points]), color=look["color"],
                marker=look["marker"], linewidth=1.4, markersize=5, label=name)
        spread = np.array([c["select_spread_us"] for c in points], dtype=float)
        ax.vlines(n, spread[:, 0], spread[:, 1], color=look["color"], linewidth=1.0)
    scores = {c["n"]: c["scores_us"] for c in cost}
    ax.plot(sizes, [scores[n] for n in sizes], color=REFERENCE, linestyle="--", linewidth=1.2,
            label="scores q·K")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())  # the sizes measured, nothing between
    dim = data.get("cost_dim")
    style(ax, f"cost of one selection{f' (d = {dim})' if dim else ''}\n"
              "median, bar: 25th–75th percentile", "n (number of keys)", "time per call (µs)")


def _loss_panel(ax: Any, data: dict[str, Any], style_of: dict[str, dict]) -> None:
    learning = data["learning"]
    steps = max((len(r["losses"]) for r in learning), default=0)
    window = max(1, steps // SMOOTH_POINTS)
    for r in learning:
        look = style_of.get(r["selector"], {"color": REFERENCE, "marker": "o"})
        losses = _floats(r["losses"])
        if len(losses) == 0:  # no step taken: the loss it would start from
            ax.plot([0], [r["loss_start"]], color=look["color"], marker=look["marker"],
                    linestyle="none", label=r["selector"])
            continue
        x = np.arange(1, len(losses) + 1)
        if window > 1:
            ax.plot(x, losses, color=look["color"], linewidth=0.6, alpha=0.25,
                    label=f"_{r['selector']} per batch")
        mean = moving_mean(losses, window)
        ax.plot(x[len(x) - len(mean):], mean, color=look["color"], linewidth=1.6,
                marker=look["marker"], markevery=max(1, len(mean) // 6), markersize=5,
                label=r["selector"])
    setup = data.get("learning_setup") or {}
    what = (f"{setup['pairs']} pairs, {setup['vocab']} tokens, d = {setup['dim']}, "
            f"batch {setup['batch']}, lr {setup['lr']}") if setup else ""
    smoothing = f"faint: each batch; solid: mean of {window} steps" if window > 1 else \
        "each batch"
    style(ax, f"associative recall: training loss\n{what}\n{smoothing}", "Adam step",
          "cross-entropy (nats)")


def _accuracy_panel(ax: Any, data: dict[str, Any], style_of: dict[str, dict]) -> None:
    learning = data["learning"]
    if all(r.get("accuracy_curve") for r in learning):
        return _accuracy_curves(ax, learning, style_of)
    for s, r in enumerate(learning):
        look = style_of.get(r["selector"], {"color": REFERENCE, "marker": "o"})
        # a segment from untrained to trained: the two held-out numbers the report holds
        ax.plot([s, s], [r["accuracy_at_init"], r["accuracy"]], color=look["color"],
                linewidth=1.6, label=r["selector"])
        ax.plot([s], [r["accuracy_at_init"]], linestyle="none", marker=look["marker"],
                markersize=7, markerfacecolor="white", markeredgecolor=look["color"],
                label=f"_{r['selector']} untrained")
        ax.plot([s], [r["accuracy"]], linestyle="none", marker=look["marker"], markersize=7,
                color=look["color"], label=f"_{r['selector']} trained")
    chances = sorted({r["chance"] for r in learning})
    for chance in chances:
        ax.axhline(chance, color=REFERENCE, linestyle=":", linewidth=1.4, label="_chance")
    ax.set_xticks(range(len(learning)), [r["selector"] for r in learning], rotation=30,
                  ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(learning) - 0.4)
    ax.set_ylim(0.0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    steps = (data.get("learning_setup") or {}).get("steps")
    after = f"after {steps} steps" if steps is not None else "trained"
    style(ax, f"held-out accuracy\n○ untrained → ● {after}\ndotted: chance", "selector",
          "accuracy on held-out sequences")
    ax.grid(False, axis="x")


def _accuracy_curves(ax: Any, learning: list[dict], style_of: dict[str, dict]) -> None:
    """Held-out accuracy against the Adam step, a line per selector (argmax's stays flat:
    no gradient reaches W_q, W_k), chance dotted."""
    for r in learning:
        look = style_of.get(r["selector"], {"color": REFERENCE, "marker": "o"})
        steps, accuracy = zip(*r["accuracy_curve"])
        ax.plot(steps, accuracy, color=look["color"], marker=look["marker"], markersize=4,
                linewidth=1.6, label=r["selector"])
    for chance in sorted({r["chance"] for r in learning}):
        ax.axhline(chance, color=REFERENCE, linestyle=":", linewidth=1.4, label="_chance")
    ax.set_ylim(0.0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    style(ax, "held-out accuracy as it learns\n(the same held-out sequences at every "
          "point)\ndotted: chance", "Adam step", "accuracy on held-out sequences")


def plot(data: dict[str, Any]):
    """The weights of every selector side by side, and the cost and learning panels when the
    report has them; see the module docstring."""
    rows = data["rows"]
    style_of = {row["selector"]: {"color": color(s), "marker": MARKERS[s % len(MARKERS)]}
                for s, row in enumerate(rows)}
    m = len(rows[0]["weights"]) if rows else 0
    shown = min(m, MAX_QUERIES)
    extras = [panel for panel, present in (
        (_cost_panel, bool(data.get("cost"))),
        (_loss_panel, bool(data.get("learning"))),
        (_accuracy_panel, bool(data.get("learning"))),
    ) if present]
    columns = max(1, len(extras))
    width = max(10.0, 4.6 * columns)
    legend_columns = max(1, int(width // LEGEND_COLUMN))
    legend_rows = -(-(len(rows) + 2) // legend_columns)
    height = 2.5 * shown + (3.8 if extras else 0.0) + 0.8 + 0.22 * legend_rows
    fig = figure(width, height)
    grid = fig.add_gridspec(shown + (1 if extras else 0), columns,
                            height_ratios=[1.0] * shown + ([1.45] if extras else []))
    first = None
    queries = data.get("queries") or []
    for j in range(shown):
        ax = fig.add_subplot(grid[j, :], sharey=first)
        first = first or ax
        q = f": q = {_vector(queries[j])}" if j < len(queries) and \
            len(queries[j]) <= MAX_TICK_DIM else ""
        more = f" (first {shown} of {m} queries)" if j == 0 and m > shown else ""
        _weights_panel(ax, data, j, style_of, f"weights on the same keys, query {j}{q}{more}",
                       "key i" if j == shown - 1 else "")
    for c, panel in enumerate(extras):
        panel(fig.add_subplot(grid[shown, c]), data, style_of)

    handles = [Line2D([], [], color=look["color"], marker=look["marker"], linewidth=1.6,
                      label=_label(row))
               for row, look in ((row, style_of[row["selector"]]) for row in rows)]
    if data.get("cost"):
        handles.append(Line2D([], [], color=REFERENCE, linestyle="--", label="scores q·K"))
    if data.get("learning"):
        handles.append(Line2D([], [], color=REFERENCE, linestyle=":", label="chance"))
    # below the panels: on the right it would meet the title whenever the panels are narrow
    fig.legend(handles=handles, loc="outside lower center", ncols=legend_columns,
               frameon=False, fontsize="small")
    source = "the worked example" if data.get("example") else "your keys and values"
    fig.suptitle(f"compare-selectors: {len(rows)} selectors on {source}, "
                 f"scale {_num(data.get('scale', 1.0))}")
    return fig
