"""What `seqtool predict`, `sample` and `evaluate` show people (the table format)."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from seqtool.render.console import make_console
from seqtool.render.numbers import fmt, sparkline


def render_predictions(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """Each text with its label and that label's probability, or its tokens as token/tag."""
    table = Table(header_style="bold")
    rows = report.predictions
    if report.task == "seq2seq":
        for col in ("text", "output", "log p"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["text"], r["output"] + ("" if r["finished"] else " …"),
                          fmt(r["log_prob"], precision))
        console = make_console()
        console.print(table)
        if explain:
            for line in predict_explanation(report, precision):
                console.print(line, markup=False, highlight=False)
        return
    if report.task == "classify":
        attending = any("attention" in r for r in rows)
        for col in ("text", "label", "p(label)") + (("attention",) if attending else ()):
            table.add_column(col)
        for r in rows:
            cells = [r["text"], r["label"], fmt(r["probabilities"][r["label"]], precision)]
            if attending:
                cells.append(attention_line(r["tokens"], r["attention"]))
            table.add_row(*cells)
    else:
        table.add_column("token/tag")
        for r in rows:
            table.add_row(" ".join(f"{w}/{g}" for w, g in zip(r["tokens"], r["tags"])))
    make_console().print(table)


def attention_line(tokens: list[str], weights: list[float]) -> Text:
    """The tokens, each shaded by its attention weight (the heaviest in bold), with the
    weights of the heaviest three written after them."""
    line = Text()
    top = max(weights) if weights else 0.0
    for token, w in zip(tokens, weights):
        shade = int(round(255 - 160 * (w / top))) if top > 0 else 255
        style = f"on rgb({shade},{shade},255)" + (" bold" if w == top and w > 0 else "")
        line.append(token, style=style if w > 0 else "dim")
        line.append(" ")
    heaviest = sorted(zip(weights, range(len(tokens))), reverse=True)[:3]
    line.append("(" + ", ".join(f"{tokens[i]} {w:.2f}" for w, i in heaviest if w > 0) + ")")
    return line


def render_sample(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """The start (dimmed) and the drawn text after it."""
    make_console().print(f"[dim]{report.start}[/dim]{report.text}", markup=True,
                         highlight=False)


CONFUSION_MAX = 12  # labels shown as a table; more: --format json has the counts


def render_evaluation(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """One line per number, then the details: the confusion matrix as a table, the exact
    share per target length as a table, the loss per position as a sparkline."""
    console = make_console()
    details = {}
    for key, value in report.to_dict().items():
        if isinstance(value, (dict, list)):
            details[key] = value
            continue
        shown = fmt(value, precision) if isinstance(value, float) else value
        console.print(f"[bold]{key}[/bold] {shown}")
    if "confusion" in details:
        # the title on a line of its own: a table's title wraps at the table's width
        console.print("[bold]confusion[/bold] (rows: true label, columns: predicted)")
        console.print(confusion_table(details["confusion"]))
    if "exact_by_length" in details:
        part = details["exact_by_length"]
        console.print("[bold]exact outputs by target length[/bold]")
        table = Table(header_style="bold")
        for col in ("length", "sequences", "exact"):
            table.add_column(col, justify="right")
        for m, n, share in zip(part["length"], part["sequences"], part["exact"]):
            table.add_row(str(m), str(n), fmt(share, precision))
        console.print(table)
    if "loss_by_position" in details:
        part = details["loss_by_position"]
        losses = [v for v in part["loss"] if v is not None and np.isfinite(v)]
        if losses:
            console.print(f"[bold]loss by position[/bold] 1..{len(part['loss'])}: "
                          f"{sparkline(np.array(losses), log=False)}  "
                          f"{fmt(losses[0], precision)} → {fmt(losses[-1], precision)}")


def confusion_table(confusion: dict[str, Any]) -> Table | str:
    """Rows the true label, columns the predicted one; the diagonal in bold."""
    labels, counts = confusion["labels"], confusion["counts"]
    if len(labels) > CONFUSION_MAX:
        return (f"confusion matrix: {len(labels)} × {len(labels)} labels "
                "(all counts: --format json)")
    table = Table(header_style="bold")
    table.add_column("true \\ predicted", style="bold")
    for name in labels:
        table.add_column(escape(str(name)), justify="right")
    for i, (name, row) in enumerate(zip(labels, counts)):
        cells = [f"[bold]{c}[/bold]" if i == j else str(c) for j, c in enumerate(row)]
        table.add_row(escape(str(name)), *cells)
    return table


def predict_explanation(report: Any, precision: int = 4) -> list[str] | None:
    """A seq2seq model's alignment of each output over its source, as heatmaps (None for
    other models: their rows already carry what there is)."""
    from seqtool.render.alignment import alignment_lines

    if report.task != "seq2seq":
        return None
    lines: list[str] = []
    for i, r in enumerate(report.predictions):
        lines += [""] + alignment_lines(r["source_tokens"], r["tokens"], r["alignment"],
                                        f"alignment of text {i + 1} ({r['text'][:40]!r})")
    return lines
