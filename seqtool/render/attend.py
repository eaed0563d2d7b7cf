"""Rich tables for `seqtool attend`: one table per query, the output, support, gradients."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from seqtool.core.attention import AttendReport
from seqtool.core.selectors import get_selector
from seqtool.render.console import make_console, print_closing
from seqtool.render.explain import explain_attend
from seqtool.render.numbers import fmt, vec

BAR_WIDTH = 20


def weight_bar(weight: float, width: int = BAR_WIDTH) -> Text:
    """A horizontal bar of ``weight`` ∈ [0, 1] in eighth-blocks, so weights show at a glance."""
    eighths = int(round(max(0.0, min(1.0, weight)) * width * 8))
    full, part = divmod(eighths, 8)
    bar = "█" * full + ("" if part == 0 else " ▏▎▍▌▋▊▉"[part])
    return Text(bar, style="green" if weight > 0 else "")


def query_table(report: AttendReport, j: int, p: int) -> Table:
    selected = report.weights[j] > 0
    title = f"query {j}: q = {vec(report.queries[j], p)}"
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("i", justify="right")
    table.add_column("key k_i")
    table.add_column("score s_i", justify="right")
    table.add_column("weight w_i", justify="right")
    table.add_column("", min_width=BAR_WIDTH)
    table.add_column("value v_i")
    for i in range(report.keys.shape[0]):
        table.add_row(
            str(i),
            vec(report.keys[i], p),
            fmt(report.scores[j, i], p),
            fmt(report.weights[j, i], p),
            weight_bar(float(report.weights[j, i])),
            vec(report.values[i], p),
            style="bold" if selected[i] else "dim",
        )
    return table


def gradient_table(title: str, rows: np.ndarray, label: str, p: int) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column(label, justify="right")
    for c in range(rows.shape[1]):
        table.add_column(f"[{c}]", justify="right")
    for r, row in enumerate(rows):
        table.add_row(str(r), *(fmt(x, p) for x in row))
    return table


def render_attend(
    report: AttendReport, *, precision: int = 4, explain: bool = False,
    console: Console | None = None,
) -> None:
    """Draw the report on ``console`` (stdout by default; Rich honours NO_COLOR)."""
    console = console or make_console()
    p = precision
    params = ", ".join(f"{k}={v}" for k, v in report.params.items())
    source = "the built-in worked example" if report.example else "your keys and values"
    console.print(
        f"[bold]{report.selector}[/bold]({params}) attention over {source}; "
        f"scale = {fmt(report.scale, p)}" + (" = 1/sqrt(d)" if report.scale_rule == "sqrt" else "")
    )
    hard = get_selector(report.selector).is_one_hot(report.params)
    for j in range(report.queries.shape[0]):
        console.print(query_table(report, j, p))
        console.print(f"output o = Σ w_i v_i = [bold]{vec(report.outputs[j], p)}[/bold]")
        which = "selected" if hard else "support"
        console.print(f"{which}: {', '.join(map(str, report.support[j]))}")
        if report.ties[j]:
            console.print("[yellow]tie: the lowest index was chosen[/yellow]")
    if report.gradients is not None:
        g = report.gradients
        console.print(f"gradients of L = u·o, upstream u = {vec(report.upstream[0], p)} "
                      f"({report.selector}'s gradient: {report.gradient})")
        console.print(gradient_table("∂L/∂q", g.query, "query", p))
        console.print(gradient_table("∂L/∂K", g.keys, "key", p))
        console.print(gradient_table("∂L/∂V", g.values, "key", p))
    print_closing(console, report.notes, explain_attend(report, p) if explain else [])
