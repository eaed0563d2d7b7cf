"""The picture of `seqtool evaluate`, drawn from its report's ``to_dict()``.

    classify, tag      the confusion matrix: true labels down, predicted labels across,
                       counts written in the cells (``confusion``)
    seq2seq            the share of greedy outputs equal to their target, per target length,
                       with the number of sequences of each length (``exact_by_length``)
    lm, regress (every step)
                       the mean loss at each position of the sequence, and how many targets
                       each position has (``loss_by_position``)
    otherwise          the scores as a text panel (regress with one target per sequence)
The title carries the scalar scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqtool.render.plots import color, figure, style
from seqtool.render.plots.train import METRIC, heatmap, legend_below, plain, suptitle

SKIP = ("run", "data", "task")


def scores(data: dict[str, Any]) -> dict[str, Any]:
    """The report's scalar numbers (no run, data or task; no nested details)."""
    return {k: v for k, v in data.items()
            if k not in SKIP and not isinstance(v, (dict, list))}


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def plot(data: dict[str, Any]):
    """The figure of a `seqtool evaluate` report dict (see the module docstring)."""
    if data.get("confusion"):
        fig = _confusion(data)
    elif data.get("exact_by_length"):
        fig = _exact_by_length(data)
    elif data.get("loss_by_position"):
        fig = _loss_by_position(data)
    else:
        fig = _text_panel(data)
    task = data.get("task", "?")
    metric = METRIC.get(task)
    shown = [f"loss {_number(data['loss'])}"] if "loss" in data else []
    if metric and metric in data and metric != "mse":
        shown.append(f"{metric} {_number(data[metric])}")
    if "exact" in data:
        shown.append(f"exact {_number(data['exact'])}")
    if data.get("attention_entropy") is not None:  # attention pooling, seq2seq
        shown.append(f"attention entropy {_number(data['attention_entropy'])} nats")
    if data.get("attention_support") is not None:
        shown.append(f"{_number(data['attention_support'])} steps attended on average")
    suptitle(fig, f"seqtool evaluate: {plain(data.get('run', '?'))} ({task}) on "
                  f"{plain(data.get('data', '?'))}, {_number(data.get('sequences', 0))} "
                  "sequences\n"
                  + ", ".join(shown))
    return fig


def _confusion(data: dict[str, Any]):
    confusion = data["confusion"]
    labels = [str(name) for name in confusion["labels"]]
    counts = np.asarray(confusion["counts"], dtype=float)
    L = len(labels)
    side = min(11.0, max(5.5, 3.0 + 0.45 * L))
    fig = figure(side + 1.2, side)
    ax = fig.add_subplot()
    heatmap(fig, ax, counts, labels, labels, bar="count", vmin=0.0, fmt="{:.0f}")
    what = "tokens" if data.get("task") == "tag" else "sequences"
    total = int(counts.sum())
    right = int(np.trace(counts))
    style(ax, f"confusion matrix: {right:,} of {total:,} {what} on the diagonal",
          "predicted label (the argmax)", "true label")
    ax.grid(False)
    return fig


def _exact_by_length(data: dict[str, Any]):
    part = data["exact_by_length"]
    lengths = np.asarray(part["length"], dtype=float)
    exact = np.array([np.nan if v is None else v for v in part["exact"]], dtype=float)
    sequences = part["sequences"]
    fig = figure(8.0, 4.8)
    ax = fig.add_subplot()
    bars = ax.bar(lengths, exact, width=0.7, color=color(5), label="exact share at that length")
    for bar, n in zip(bars, sequences):
        ax.annotate(f"n={n}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                    fontsize="x-small", color="0.25")
    if data.get("exact") is not None:
        ax.axhline(data["exact"], color=color(6), linestyle="--", linewidth=1.0,
                   label=f"all lengths ({data['exact']:.3g})")
    ax.set_ylim(0, 1.12)
    if len(lengths) <= 30:
        ax.set_xticks(lengths)
    style(ax, "greedy outputs equal to their target, by target length "
              "(n: sequences of that length)", "target length (tokens, without </s>)",
          "exact-sequence accuracy (share)")
    legend_below(ax)
    return fig


def _loss_by_position(data: dict[str, Any]):
    part = data["loss_by_position"]
    position = np.asarray(part["position"], dtype=float)
    loss = np.array([np.nan if v is None else v for v in part["loss"]], dtype=float)
    lm = data.get("task") == "lm"
    fig = figure(9.0, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1.0])
    n = len(position)
    top.plot(position, loss, color=color(0), marker="o", markersize=4,
             markevery=max(1, n // 40), linewidth=1.5, label="mean at this position")
    if data.get("loss") is not None:
        top.axhline(data["loss"], color=color(1), linestyle="--", linewidth=1.0,
                    label=f"all positions ({data['loss']:.4g})")
    unit = ("cross-entropy of the next token (nats)" if lm
            else "squared error (target units², mean over outputs)")
    what = "next-token loss" if lm else "squared error"
    style(top, f"{what} by position in the sequence", "", unit)
    top.legend(fontsize="small", frameon=True, framealpha=0.85, edgecolor="0.8")
    bottom.bar(position, part["count"], width=0.8, color=color(2))
    style(bottom, "targets at each position (sequences at least that long)",
          "position t in the sequence (1 = first step)", "targets")
    return fig


def _text_panel(data: dict[str, Any]):
    numbers = scores(data)
    fig = figure(6.0, 0.8 + 0.28 * max(len(numbers), 1))
    ax = fig.add_subplot()
    ax.axis("off")
    width = max((len(k) for k in numbers), default=0)
    lines = [plain(f"{k.replace('_', ' '):<{width}}   {_number(v)}") for k, v in numbers.items()]
    ax.text(0.02, 0.98, "\n".join(lines) or "(no scores)", family="monospace",
            va="top", ha="left", transform=ax.transAxes, fontsize="medium")
    ax.set_title("scores (one number each: nothing per label or per position to draw)",
                 fontsize="medium")
    return fig


__all__ = ["plot", "scores"]
