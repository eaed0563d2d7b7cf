"""An attention alignment matrix as a heatmap of text: output tokens down, source tokens
across, one shaded cell per weight (the --explain of seq2seq models)."""

from __future__ import annotations

from typing import Sequence

# (lower bound, cell): exactly 0 is blank, so sparse selectors' zeros stand apart from
# softmax's tiny weights; readable in any terminal and in JSON
LEVELS = ((0.75, "██"), (0.5, "▓▓"), (0.25, "▒▒"), (0.05, "░░"), (0.0, "· "))
LEGEND = "shades: · < 0.05, ░ < 0.25, ▒ < 0.5, ▓ < 0.75, █ ≥ 0.75; blank: exactly 0"


def shade(weight: float) -> str:
    """The two-character cell of one attention weight (see LEVELS)."""
    if weight <= 0:
        return "  "
    return next(cell for low, cell in LEVELS if weight >= low)


def alignment_lines(source: Sequence[str], output: Sequence[str],
                    weights: Sequence[Sequence[float]], title: str = "") -> list[str]:
    """Rows: each output token (then </s> when the matrix has one row more) with its
    attention over the source tokens; columns labelled by the source tokens, written
    vertically when any is longer than one character."""
    labels = list(output) + ["</s>"] * (len(weights) - len(output))
    width = max((len(t) for t in labels), default=1)
    lines = [title] if title else []
    longest = max((len(t) for t in source), default=1)
    for i in range(longest):  # the source tokens, top to bottom, one column pair each
        lines.append(" " * (width + 2) + "".join(f"{t[i] if i < len(t) else ' '} "
                                                 for t in source).rstrip())
    lines.append(" " * (width + 1) + "┌" + "──" * len(source))
    for label, row in zip(labels, weights):
        lines.append(f"{label.rjust(width)} │" + "".join(shade(w) for w in row))
    lines.append(" " * (width + 2) + LEGEND)
    return lines
