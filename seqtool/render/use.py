"""What `seqtool predict`, `sample` and `evaluate` show people (the table format)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from seqtool.render.console import make_console
from seqtool.render.numbers import fmt


def render_predictions(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """Each text with its label and that label's probability, or its tokens as token/tag."""
    table = Table(header_style="bold")
    rows = report.predictions
    if report.task == "classify":
        for col in ("text", "label", "p(label)"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["text"], r["label"], fmt(r["probabilities"][r["label"]], precision))
    else:
        table.add_column("token/tag")
        for r in rows:
            table.add_row(" ".join(f"{w}/{g}" for w, g in zip(r["tokens"], r["tags"])))
    make_console().print(table)


def render_sample(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """The start (dimmed) and the drawn text after it."""
    make_console().print(f"[dim]{report.start}[/dim]{report.text}", markup=True,
                         highlight=False)


def render_evaluation(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """One line per number."""
    console = make_console()
    for key, value in report.to_dict().items():
        shown = fmt(value, precision) if isinstance(value, float) else value
        console.print(f"[bold]{key}[/bold] {shown}")
