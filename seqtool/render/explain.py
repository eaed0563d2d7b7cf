"""`seqtool attend --explain`: the worked answer, written out with this run's numbers.

Plain text lines (no Rich), so the same walk-through goes into tables and into JSON. The
selection step comes from the selector's registry entry (its ``explain``).
"""

from __future__ import annotations

from seqtool.core.attention import AttendReport
from seqtool.core.selectors import get_selector
from seqtool.render.numbers import fmt, vec


def _term(a: float, b: float, p: int) -> str:
    right = f"({fmt(b, p)})" if b < 0 else fmt(b, p)
    left = f"({fmt(a, p)})" if a < 0 else fmt(a, p)
    return f"{left}·{right}"


def _dot_products(report: AttendReport, j: int, p: int) -> list[str]:
    q = report.queries[j]
    lines = [f"1. Scores s_i = scale · q·k_i, with scale = {fmt(report.scale, p)}:"]
    for i, key in enumerate(report.keys):
        terms = " + ".join(_term(a, b, p) for a, b in zip(q, key))
        scaled = f"{fmt(report.scale, p)}·({terms})" if report.scale != 1 else terms
        lines.append(f"   s_{i} = {scaled} = {fmt(report.scores[j, i], p)}")
    return lines


def _selection(report: AttendReport, j: int, p: int) -> list[str]:
    """Step 2, written by the selector's registry entry in this precision."""
    noise = None if report.noise is None else report.noise[j]
    lines = get_selector(report.selector).explain_lines(
        report.scores[j], report.weights[j], noise, report.params, lambda x: fmt(x, p))
    return [f"2. Selection with {report.selector}{lines[0]}", *lines[1:]]


def _weighted_sum(report: AttendReport, j: int, p: int) -> list[str]:
    w = report.weights[j]
    used = [i for i in range(len(w)) if w[i] != 0]
    terms = " + ".join(f"{fmt(w[i], p)}·{vec(report.values[i], p)}" for i in used)
    return [f"3. Output o = Σ_i w_i v_i = {terms} = {vec(report.outputs[j], p)}"]


def _gradients(report: AttendReport, j: int, p: int) -> list[str]:
    g = report.gradients
    return [
        f"4. Gradients of L = u·o with u = {vec(report.upstream[j], p)} "
        f"({report.gradient} gradient through {report.selector}):",
        f"   ∂L/∂w_i = u·v_i; ∂L/∂s = {vec(g.scores[j], p)}; "
        f"∂L/∂q = scale · Σ_i ∂L/∂s_i k_i = {vec(g.query[j], p)}",
    ]


def explain_attend(report: AttendReport, precision: int = 4) -> list[str]:
    """The walk-through of every query: dot products, selection, weighted sum (, gradients)."""
    lines: list[str] = []
    for j, q in enumerate(report.queries):
        lines.append(f"Query {j}: q = {vec(q, precision)}")
        lines += _dot_products(report, j, precision)
        lines += _selection(report, j, precision)
        lines += _weighted_sum(report, j, precision)
        if report.gradients is not None:
            lines += _gradients(report, j, precision)
    return lines
