"""The picture of `seqtool train-rnn`, drawn from its report's ``to_dict()``.

    loss       train and validation loss per epoch, the best epoch marked, and the
               order-blind baseline where it is a loss (the unigram entropy of a language
               model, predicting the mean for regression)
    metric     the task's metric per epoch (accuracy, perplexity on a log axis, or mse);
               seq2seq also the exact-sequence share of greedy outputs; the baseline
    --explain  the measured dependency map ‖∂y_t/∂x_s‖ as a heatmap (``dependency``), or for
               seq2seq a validation pair's alignment, source tokens across, output tokens
               down (``alignment``); an attention-pooling classifier's weights over a
               validation sequence's tokens beside the map (``pooling``)
An attention-pooling or seq2seq run says in the title how far the attention's scoring
parameters moved (``attention.scoring_change``).

:func:`heatmap` (a matrix with labelled rows and columns, a colour bar, the values written in
the cells when they fit) is shared with :mod:`seqtool.render.plots.evaluate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seqtool.render.plots import HEATMAP, MARKERS, color, figure, style

METRIC = {"classify": "accuracy", "tag": "accuracy", "lm": "perplexity", "regress": "mse",
          "seq2seq": "accuracy"}
LOSS_UNIT = {"classify": "cross-entropy (nats per sequence)",
             "tag": "cross-entropy (nats per token)", "lm": "cross-entropy (nats per token)",
             "regress": "mean squared error (target units²)",
             "seq2seq": "cross-entropy (nats per target token)"}
METRIC_UNIT = {"accuracy": "accuracy (share correct)",
               "perplexity": "perplexity (exp of nats per token)",
               "mse": "mean squared error (target units²)"}
ANNOTATE_MAX = 15  # cells per side up to which a heatmap writes each value in its cell
TICKS_MAX = 40  # labelled rows or columns at most; more are thinned


def plain(text: Any) -> str:
    """User text (a token, a label, a file name) drawn as it is: its dollar signs escaped,
    since two of them would start matplotlib's math mode (and a bad formula fails)."""
    return str(text).replace("$", r"\$")


def _values(history: list[dict[str, Any]], key: str) -> np.ndarray:
    """A history column as floats, NaN where a value is missing or null (not measurable)."""
    return np.array([np.nan if row.get(key) is None else row[key] for row in history],
                    dtype=float)


def plot(data: dict[str, Any]):
    """The figure of a `seqtool train-rnn` report dict (see the module docstring)."""
    from matplotlib.ticker import MaxNLocator

    task = data.get("task", "classify")
    history = data.get("history") or []
    has_map = data.get("alignment") is not None or data.get("dependency") is not None
    rows = (data.get("dependency") or {}).get("norms") or []
    single_row = data.get("alignment") is None and len(rows) == 1
    pooling = data.get("pooling")
    if has_map:
        layout = [["loss", "metric"], ["map", "map"]] + ([["pool", "pool"]] if pooling else [])
        ratios = [1.0, 0.45 if single_row else 1.25] + ([0.35] if pooling else [])
        fig = figure(11.0, (8.0 if not single_row else 6.5) + (2.0 if pooling else 0.0))
        axes = fig.subplot_mosaic(layout, height_ratios=ratios)
    else:
        fig = figure(11.0, 4.6)
        axes = fig.subplot_mosaic([["loss", "metric"]])
    epochs = _values(history, "epoch")
    _loss_panel(axes["loss"], data, task, history, epochs)
    _metric_panel(axes["metric"], data, task, history, epochs)
    for name in ("loss", "metric"):
        axes[name].xaxis.set_major_locator(MaxNLocator(integer=True))
    if data.get("alignment") is not None:
        alignment_panel(fig, axes["map"], data["alignment"])
    elif data.get("dependency") is not None:
        dependency_panel(fig, axes["map"], data["dependency"])
    if pooling and has_map:
        pooling_panel(fig, axes["pool"], pooling)
    suptitle(fig, _title(data, task, history))
    return fig


def _title(data: dict[str, Any], task: str, history: list[dict[str, Any]]) -> str:
    spec = data.get("spec") or {}
    cell = data.get("cell", spec.get("cell", "?"))
    model = ("bag of words" if cell == "bow" else
             f"{str(cell).upper()} ×{spec.get('layers', 1)}, H = {spec.get('hidden', '?')}")
    stopped = data.get("stop_reason") or "?"
    line = (f"seqtool train-rnn: {task} on {plain(data.get('data', '?'))}, {model}; "
            f"{len(history)} epoch{'s' if len(history) != 1 else ''} ({stopped})")
    note = attention_note(data.get("attention"))
    return line + ("\n" + note if note else "")


def attention_note(attention: dict[str, Any] | None) -> str:
    """How far the attention's scoring parameters moved, in one line ('' without
    attention)."""
    if not attention:
        return ""
    what = f"attention: {attention.get('score')} score, {attention.get('selector')}"
    change = attention.get("scoring_change") or {}
    if not change:
        return f"{what} (no scoring parameters of its own)"
    moved = ", ".join(f"‖Δ{name.removeprefix('attention.')}‖ = {value:.3g}"
                      for name, value in change.items())
    if all(value == 0 for value in change.values()):
        return f"{what}; {moved}: never moved ({attention.get('gradient', '?')} gradient)"
    return f"{what}; {moved} ({attention.get('gradient', '?')} gradient)"


def _best(ax: Any, data: dict[str, Any]) -> None:
    best = data.get("best_epoch")
    if best is not None:
        ax.axvline(best, color="0.55", linestyle=":", linewidth=1.2,
                   label=f"best epoch ({best}, lowest val loss)")


def _curve(ax: Any, epochs: np.ndarray, values: np.ndarray, i: int, label: str) -> None:
    n = len(epochs)
    ax.plot(epochs, values, color=color(i), marker=MARKERS[i % len(MARKERS)],
            markersize=5, markevery=max(1, n // 25), linewidth=1.6, label=label)


def _loss_panel(ax: Any, data: dict[str, Any], task: str, history: list[dict[str, Any]],
                epochs: np.ndarray) -> None:
    _curve(ax, epochs, _values(history, "train_loss"), 0, "train loss")
    _curve(ax, epochs, _values(history, "val_loss"), 1, "validation loss")
    baseline = data.get("baseline") or {}
    if "unigram_entropy" in baseline:
        ax.axhline(baseline["unigram_entropy"], color=color(3), linestyle="--", linewidth=1.0,
                   label="unigram entropy (order-blind)")
    if "predict_the_mean_mse" in baseline:
        ax.axhline(baseline["predict_the_mean_mse"], color=color(3), linestyle="--",
                   linewidth=1.0, label="predicting the mean (order-blind)")
    _best(ax, data)
    style(ax, "loss per epoch", "epoch", LOSS_UNIT.get(task, "loss"))
    legend_below(ax)


def _metric_panel(ax: Any, data: dict[str, Any], task: str, history: list[dict[str, Any]],
                  epochs: np.ndarray) -> None:
    metric = METRIC.get(task, "accuracy")
    _curve(ax, epochs, _values(history, f"train_{metric}"), 0, f"train {metric}")
    _curve(ax, epochs, _values(history, f"val_{metric}"), 1, f"validation {metric}")
    if task == "seq2seq":
        _curve(ax, epochs, _values(history, "val_exact"), 5,
               "validation exact sequences (greedy)")
    baseline = data.get("baseline") or {}
    if metric == "accuracy" and "majority_accuracy" in baseline:
        ax.axhline(baseline["majority_accuracy"], color=color(3), linestyle="--",
                   linewidth=1.0, label="majority label (order-blind)")
    if metric == "perplexity" and "unigram_entropy" in baseline:
        ax.axhline(float(np.exp(baseline["unigram_entropy"])), color=color(3), linestyle="--",
                   linewidth=1.0, label="unigram perplexity (order-blind)")
    if metric == "mse" and "predict_the_mean_mse" in baseline:
        ax.axhline(baseline["predict_the_mean_mse"], color=color(3), linestyle="--",
                   linewidth=1.0, label="predicting the mean (order-blind)")
    _best(ax, data)
    if metric == "accuracy":
        ax.set_ylim(-0.02, 1.02)
    if metric == "perplexity":
        values = np.concatenate([_values(history, f"train_{metric}"),
                                 _values(history, f"val_{metric}")])
        shown = values[np.isfinite(values) & (values > 0)]
        if len(shown) and shown.max() > 10 * shown.min():  # a wide range: log axis
            from seqtool.render.plots.bptt import log_ticks

            ax.set_yscale("log")
            log_ticks(ax)
    title = {"accuracy": "accuracy per epoch", "perplexity": "perplexity per epoch",
             "mse": "mean squared error per epoch (the loss itself)"}[metric]
    if task == "seq2seq":
        title = "token and exact-sequence accuracy per epoch"
    unit = METRIC_UNIT[metric] + ("; log scale" if ax.get_yscale() == "log" else "")
    style(ax, title, "epoch", unit)
    legend_below(ax)


def suptitle(fig: Any, text: str) -> None:
    """The figure's title, each line wrapped to the figure's width (a title wider than the
    figure is cut off at both sides, not wrapped, by matplotlib)."""
    import textwrap

    width = max(30, int(fig.get_figwidth() * 11))  # characters of the title's size, about
    lines = [textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)
             for line in text.split("\n")]
    fig.suptitle("\n".join(lines))


def legend_below(ax: Any) -> None:
    """The legend under the axes, two entries a row: inside, it would cover the curves
    (accuracies that reach 1, losses that fall to 0)."""
    ax.legend(fontsize="small", frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncols=2)


# ---------------------------------------------------------------------------------------
# Heatmaps


def heatmap(fig: Any, ax: Any, matrix: Any, columns: Sequence[str], rows: Sequence[str], *,
            bar: str, vmin: float | None = None, vmax: float | None = None,
            fmt: str = "{:.2g}") -> Any:
    """``matrix`` (rows × columns) in viridis with its labels as ticks, a colour bar named
    ``bar``, and each value written in its cell while there are at most ANNOTATE_MAX a
    side (white on the dark end of the scale, black on the light end). Returns the image
    (``get_array()`` is the matrix)."""
    values = np.array([[np.nan if v is None else v for v in row] for row in matrix],
                      dtype=float)
    image = ax.imshow(values, cmap=HEATMAP, aspect="auto", interpolation="nearest",
                      vmin=vmin, vmax=vmax)
    R, C = values.shape
    _ticks(ax.set_xticks, ax.set_xticklabels, columns, C)
    _ticks(ax.set_yticks, ax.set_yticklabels, rows, R)
    if sum(len(str(columns[i])) + 2 for i in range(0, C, max(1, -(-C // TICKS_MAX)))
           if i < len(columns)) > 70:  # labels that would run into each other
        ax.tick_params(axis="x", labelrotation=45)
    ax.tick_params(length=0)
    ax.grid(False)
    fig.colorbar(image, ax=ax, label=bar, fraction=0.05, pad=0.02)
    if R <= ANNOTATE_MAX and C <= ANNOTATE_MAX:
        for r in range(R):
            for c in range(C):
                v = values[r, c]
                if not np.isfinite(v):
                    continue
                shade = image.norm(v)
                ax.text(c, r, fmt.format(v), ha="center", va="center",
                        fontsize="medium" if max(R, C) <= 6 else "small",
                        color="white" if shade < 0.55 else "black")
    return image


def _ticks(set_ticks: Any, set_labels: Any, labels: Sequence[str], n: int) -> None:
    step = max(1, -(-n // TICKS_MAX))
    at = list(range(0, n, step))
    set_ticks(at)
    set_labels([plain(labels[i]) if i < len(labels) else "" for i in at])


def alignment_panel(fig: Any, ax: Any, alignment: dict[str, Any]) -> Any:
    """A seq2seq alignment: row t the attention of output step t over the source tokens;
    the last row is the step that wrote </s> when there is one more row than output
    tokens."""
    weights = alignment["weights"]
    out = list(alignment.get("output") or [])
    rows = out + ["</s>"] if len(weights) == len(out) + 1 else out  # escaped by heatmap
    rows = rows + [f"step {i + 1}" for i in range(len(rows), len(weights))]
    image = heatmap(fig, ax, weights, list(alignment["source"]), rows[:len(weights)],
                    bar="attention weight", vmin=0.0, vmax=1.0, fmt="{:.2f}")
    target = plain(" ".join(alignment.get("target") or []))
    style(ax, f"alignment of validation pair {alignment.get('example', 0) + 1} "
              f"(target: {target})", "source token", "output token (greedy)")
    ax.grid(False)
    return image


def pooling_panel(fig: Any, ax: Any, pooling: dict[str, Any]) -> Any:
    """An attention-pooling classifier's weights over the tokens of a validation sequence:
    one row, the tokens across (the pooled state is Σ_t w_t h_t)."""
    image = heatmap(fig, ax, [pooling["weights"]], list(pooling["tokens"]), ["w_t"],
                    bar="attention weight", vmin=0.0, vmax=1.0, fmt="{:.2f}")
    style(ax, f"attention pooling on validation sequence {pooling.get('example', 0)} "
              f"(label {plain(pooling.get('label', '?'))}, predicted "
              f"{plain(pooling.get('predicted', '?'))})", "token", "")
    ax.grid(False)
    return image


def dependency_panel(fig: Any, ax: Any, dependency: dict[str, Any]) -> Any:
    """‖∂y_t/∂x_s‖: one row per output step (one row for a many-to-one model), one column
    per input step, labelled with the input tokens."""
    norms = dependency["norms"]
    tokens = list(dependency.get("inputs") or [])
    columns = [f"{s + 1}: {tok}" for s, tok in enumerate(tokens)]
    rows = ([f"y_{t + 1}" for t in range(len(norms))] if dependency.get("per_step")
            else ["y"])
    image = heatmap(fig, ax, norms, columns, rows, bar=r"$\|\partial y_t/\partial x_s\|_F$",
                    vmin=0.0)
    which = "one output per step" if dependency.get("per_step") else "one output per sequence"
    style(ax, rf"which inputs each output reads: $\|\partial y_t/\partial x_s\|$ on "
              f"validation sequence {dependency.get('sequence', 0)} ({which})",
          "input step s: token", "output at step t" if dependency.get("per_step") else "output")
    ax.grid(False)
    return image


__all__ = ["alignment_panel", "attention_note", "dependency_panel", "heatmap", "legend_below",
           "plain", "plot", "pooling_panel", "suptitle"]
