"""What `seqtool predict`, `sample` and `evaluate` show people (the table format)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from seqtool.render.console import make_console
from seqtool.render.numbers import fmt


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


def render_evaluation(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """One line per number."""
    console = make_console()
    for key, value in report.to_dict().items():
        shown = fmt(value, precision) if isinstance(value, float) else value
        console.print(f"[bold]{key}[/bold] {shown}")


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
