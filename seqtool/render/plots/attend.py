"""The picture of `seqtool attend`, drawn from the report's ``to_dict()``.

Left, the weights as a queries × keys heatmap (viridis on the fixed range 0 to 1, a colour
bar labelled "weight"), every cell annotated with its score s, its weight w (and, for a
selector that adds Gumbel noise, the noise g), the selected keys outlined and in bold.
Right, sharing the query axis, the outputs o_j = Σ_i w_ji v_i as a heatmap of their own,
each cell annotated. The figure's title names the selector, its parameters, the scale and
the kind of gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from seqtool.render.plots import HEATMAP, PALETTE, figure

# Past these sizes a cell is too small to hold its numbers legibly; the heatmap stays.
MAX_ANNOTATED_KEYS = 16
MAX_ANNOTATED_QUERIES = 16
MAX_ANNOTATED_OUTPUTS = 12
# Vectors are written under the tick labels only while they stay short.
MAX_TICK_DIM = 3
MAX_OUTLINES = 2000  # one patch each: past this many, drawing them is slow and a blur
MAX_TICKED = 40  # keys (or queries) that each get a tick label
SELECTED_EDGE = PALETTE[6]  # vermillion: stands out on every viridis colour
INSET = 0.05  # of a cell, between the outline of a selected key and the cell's edge


def number(x: float, digits: int = 3) -> str:
    """A cell's number: ``digits`` significant digits, no trailing zeros, −0 as 0."""
    if x is None or not np.isfinite(x):
        return "nan" if x is None or np.isnan(x) else ("inf" if x > 0 else "-inf")
    if x == 0:
        return "0"
    return f"{x:.{digits}g}".replace("-", "−")  # the typographic minus, as on the axes


def _matrix(rows: Any) -> np.ndarray:
    # report.json writes NaN and ±inf as null: they come back as NaN
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def _vector(values: Any) -> str:
    return "(" + ", ".join(number(v) for v in values) + ")"


def _text_colour(cmap: Any, norm: Normalize, value: float) -> str:
    """Black on the light end of the colour map, white on the dark end."""
    if not np.isfinite(value):
        return "black"
    r, g, b, _ = cmap(norm(value))
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={number(v) if isinstance(v, float) else v}"
                     for k, v in params.items())


def is_hard(data: dict[str, Any]) -> bool:
    """Whether every query put all its weight on one key (argmax, st-argmax, hard gumbel)."""
    weights = _matrix(data["weights"])
    return all(len(s) == 1 and weights[j, s[0]] == 1.0 for j, s in enumerate(data["support"]))


def plot(data: dict[str, Any]):
    """The weight heatmap (scores and weights in the cells, the selected keys outlined) and
    the outputs beside it; see the module docstring."""
    scores = _matrix(data["scores"])
    weights = _matrix(data["weights"])
    outputs = _matrix(data["outputs"])
    queries = _matrix(data["queries"])
    keys = _matrix(data["keys"])
    noise = _matrix(data["noise"]) if data.get("noise") is not None else None
    m, n = weights.shape
    d_v = outputs.shape[1]
    annotate = n <= MAX_ANNOTATED_KEYS and m <= MAX_ANNOTATED_QUERIES
    lines_per_cell = 3 if noise is not None else 2
    # cells wide enough for "w 0.000319" and tall enough for two or three lines of text
    cell_w, cell_h = (0.95, 0.3 + 0.2 * lines_per_cell) if annotate else (0.3, 0.3)
    out_w = 0.75 if d_v <= MAX_ANNOTATED_OUTPUTS and annotate else 0.3
    width = min(18.0, 3.4 + n * cell_w + d_v * out_w + 1.2)
    height = min(14.0, 2.6 + m * cell_h)
    fig = figure(width, height)
    grid = fig.add_gridspec(1, 2, width_ratios=[max(n * cell_w, 2.2), max(d_v * out_w, 1.4)])
    ax = fig.add_subplot(grid[0, 0])
    ax_out = fig.add_subplot(grid[0, 1], sharey=ax)

    norm = Normalize(0.0, 1.0)  # weights always lie in [0, 1]: one scale for every run
    image = ax.imshow(weights, cmap=HEATMAP, norm=norm, aspect="auto", interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, fraction=0.08, pad=0.02)
    bar.set_label("weight")
    cmap = image.get_cmap()
    selected = {(j, i) for j, row in enumerate(data["support"]) for i in row}
    hard = is_hard(data)
    outlined = len(selected) <= MAX_OUTLINES
    for j, i in sorted(selected) if outlined else ():
        # inset, so that the outline is not clipped at the border and neighbours stay apart
        ax.add_patch(Rectangle((i - 0.5 + INSET, j - 0.5 + INSET), 1.0 - 2 * INSET,
                               1.0 - 2 * INSET, fill=False,
                               edgecolor=SELECTED_EDGE, linewidth=2.5, label="_selected"))
    if annotate:
        for j in range(m):
            for i in range(n):
                text = f"s {number(scores[j, i])}\nw {number(weights[j, i])}"
                if noise is not None:
                    text += f"\ng {number(noise[j, i])}"
                ax.text(i, j, text, ha="center", va="center", fontsize="small",
                        color=_text_colour(cmap, norm, weights[j, i]),
                        fontweight="bold" if (j, i) in selected else "normal")
    short_keys = annotate and keys.shape[1] <= MAX_TICK_DIM
    if n <= MAX_TICKED:
        ax.set_xticks(range(n), [f"{i}\n{_vector(keys[i])}" if short_keys else str(i)
                                 for i in range(n)])
    else:  # a label per key would overlap: whole numbers where matplotlib has room
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    short_queries = m <= MAX_ANNOTATED_QUERIES and queries.shape[1] <= MAX_TICK_DIM
    ties = data.get("ties") or [False] * m
    if m > MAX_TICKED:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_yticks(range(m), [
            (f"{j}: {_vector(queries[j])}" if short_queries else str(j))
            + ("\ntie: lowest i kept" if ties[j] else "") for j in range(m)])
    ax.set_xlabel("key i" + ("  (vector $k_i$)" if short_keys else ""))
    ax.set_ylabel("query j" + ("  (vector $q_j$)" if short_queries else ""))
    outline = "outlined: the selected key" if hard else "outlined: the support (w > 0)"
    if not outlined:
        outline = f"{len(selected)} cells with w > 0, too many to outline"
    cells = "cells: score s = scale · $q_j·k_i$, weight w" if annotate else "cells too small to annotate"
    if noise is not None and annotate:
        cells += ", Gumbel noise g"
    ax.set_title(f"weights w = {data['selector']}(s)\n{cells}; {outline}", fontsize="medium")

    out_annotate = annotate and d_v <= MAX_ANNOTATED_OUTPUTS
    finite = outputs[np.isfinite(outputs)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    out_norm = Normalize(low, high if high > low else low + 1.0)
    out_image = ax_out.imshow(outputs, cmap=HEATMAP, norm=out_norm, aspect="auto",
                              interpolation="nearest")
    out_bar = fig.colorbar(out_image, ax=ax_out, fraction=0.15, pad=0.04)
    out_bar.set_label("output value")
    if out_annotate:
        out_cmap = out_image.get_cmap()
        for j in range(m):
            for c in range(d_v):
                ax_out.text(c, j, number(outputs[j, c]), ha="center", va="center",
                            fontsize="small",
                            color=_text_colour(out_cmap, out_norm, outputs[j, c]))
    ax_out.set_xticks(range(d_v))
    ax_out.tick_params(axis="y", labelleft=False)
    ax_out.set_xlabel("component c of $o_j$")
    ax_out.set_title("outputs\n$o_j = \\Sigma_i\\, w_{ji}\\, v_i$", fontsize="medium")

    params = _params(data.get("params") or {})
    scale = number(data["scale"]) + (" = 1/√d" if data.get("scale_rule") == "sqrt" else "")
    source = "the worked example" if data.get("example") else \
        f"{m} quer{'y' if m == 1 else 'ies'} × {n} key{'' if n == 1 else 's'}"
    named = f"{data['selector']}({params})" if params else data["selector"]
    fig.suptitle(f"attend: {named} over {source}, scale {scale}; "
                 f"gradient: {data.get('gradient', '?')}")
    return fig
