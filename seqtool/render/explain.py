"""`seqtool attend --explain`: the worked answer, written out with this run's numbers.

Plain text lines (no Rich), so the same walk-through goes into tables and into JSON.
"""

from __future__ import annotations

import numpy as np

from seqtool.core.attention import AttendReport
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


def _winner(s: np.ndarray, p: int) -> str:
    best = int(np.argmax(s))
    tied = np.flatnonzero(s == s[best])
    if len(tied) > 1:
        names = ", ".join(f"s_{i}" for i in tied)
        return (f"{names} tie at {fmt(s[best], p)}; the lowest index wins, so the choice is "
                f"index {best}")
    rest = np.delete(s, best)
    runner = f" (the next largest is {fmt(rest.max(), p)})" if len(rest) else ""
    return f"the largest is s_{best} = {fmt(s[best], p)}{runner}, so the choice is index {best}"


def _softmax_lines(s: np.ndarray, T: float, w: np.ndarray, p: int, label: str = "s") -> list[str]:
    shift = s.max()
    e = np.exp((s - shift) / T)
    return [
        f"   exp(({label}_i − {fmt(shift, p)})/T) = {vec(e, p)}   (shifted by the max: same "
        "weights, no overflow)",
        f"   normaliser Z = Σ = {fmt(e.sum(), p)}",
        f"   w_i = exp(...)/Z = {vec(w, p)}",
    ]


def _selection(report: AttendReport, j: int, p: int) -> list[str]:
    s, w, name = report.scores[j], report.weights[j], report.selector
    T = report.params.get("temperature", 1.0)
    head = f"2. Selection with {name}"
    if name == "softmax":
        return [f"{head}, T = {fmt(T, p)}: w_i = exp(s_i/T) / Σ_j exp(s_j/T)",
                *_softmax_lines(s, T, w, p)]
    if name in ("argmax", "st-argmax"):
        lines = [f"{head}: {_winner(s, p)}; w = {vec(w, p)}"]
        if name == "st-argmax":
            soft = np.exp((s - s.max()) / T)
            lines.append(f"   backward pass uses softmax(s/T), T = {fmt(T, p)}: "
                         f"{vec(soft / soft.sum(), p)}")
        return lines
    if name == "sparsemax":
        support = np.flatnonzero(w > 0)
        tau = float(np.mean(s[support]) - 1.0 / len(support))
        return [f"{head}: w_i = max(s_i − τ, 0), the projection of s onto the simplex",
                f"   sorted scores {vec(np.sort(s)[::-1], p)}; support {support.tolist()} "
                f"(size {len(support)})",
                f"   τ = (Σ_support s_i − 1)/{len(support)} = {fmt(tau, p)}; w = {vec(w, p)}"]
    if name == "entmax":
        a = report.params["alpha"]
        best = int(np.argmax(w))
        tau = (a - 1.0) * s[best] - w[best] ** (a - 1.0)
        return [f"{head}, α = {fmt(a, p)}: w_i = [(α−1)s_i − τ]₊^(1/(α−1))",
                f"   τ = {fmt(tau, p)} makes Σ w = 1; support {np.flatnonzero(w > 0).tolist()}; "
                f"w = {vec(w, p)}"]
    if name == "topk":
        kept = np.flatnonzero(w > 0).tolist()
        return [f"{head}, k = {report.params['k']}, T = {fmt(T, p)}: keep the k largest scores "
                f"(indices {kept}), softmax over them, 0 elsewhere",
                f"   w = {vec(w, p)}"]
    # gumbel
    g = report.noise[j]
    lines = [f"{head}, T = {fmt(T, p)}, seed {report.params['seed']}: "
             "w = softmax((s + G)/T), G_i = −log(−log U_i)",
             f"   noise G = {vec(g, p)}; s + G = {vec(s + g, p)}"]
    if report.params.get("hard"):
        return lines + [f"   hard: {_winner(s + g, p)}; w = {vec(w, p)} "
                        "(the backward pass uses the soft weights)"]
    return lines + _softmax_lines(s + g, T, w, p, label="(s+G)")


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
