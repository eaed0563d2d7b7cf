"""Attention of queries over keys and values, forward and backward.

For queries Q (m, d), keys K (n, d) and values V (n, d_v)::

    S = scale · Q Kᵀ            (m, n)   scores, S_ji = scale · q_j · k_i
    W = selector(S)             (m, n)   row by row
    O = W V                     (m, d_v) O_j = Σ_i W_ji v_i

The backward pass differentiates L = Σ_j u_j · o_j (u the upstream gradient, ones by
default)::

    ∂L/∂O = U,   ∂L/∂V = Wᵀ U,   ∂L/∂W = U Vᵀ,   ∂L/∂S = selector_vjp(∂L/∂W),
    ∂L/∂Q = scale · (∂L/∂S) K,   ∂L/∂K = scale · (∂L/∂S)ᵀ Q
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from seqtool.core.errors import InputError
from seqtool.core.report import Report
from seqtool.core.selectors import Selection, get_selector, resolve_params, select

# The worked example: with q = (3, −1) the scores are −2, 3, 0, 6, so argmax picks key 3.
EXAMPLE_QUERY = np.array([[3.0, -1.0]])
EXAMPLE_KEYS = np.array([[1.0, 5.0], [1.0, 0.0], [1.0, 3.0], [2.0, 0.0]])
EXAMPLE_VALUES = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [6.0, 1.0, 2.0]])


def resolve_scale(scale: float | str, d: int) -> float:
    """The score multiplier: a number as given, or 1/sqrt(d) for ``"sqrt"``."""
    if isinstance(scale, str):
        if scale.strip().lower() == "sqrt":
            return 1.0 / math.sqrt(d)
        raise InputError("scale", f"is '{scale}'; expected 1, sqrt or a number")
    return float(scale)


def attention_scores(Q: np.ndarray, K: np.ndarray, scale: float) -> np.ndarray:
    """S = scale · Q Kᵀ, (m, d) × (n, d) → (m, n); overflow is an input error."""
    with np.errstate(over="ignore", invalid="ignore"):
        S = scale * (Q @ K.T)
    if not np.all(np.isfinite(S)):
        raise InputError("query", "and keys give scores that overflow float64; scale them down")
    return S


@dataclass(frozen=True)
class Attention:
    """One forward pass: scores (m, n), the selection (weights inside), outputs (m, d_v)."""

    scores: np.ndarray
    selection: Selection
    outputs: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        return self.selection.weights


def attend(
    Q: np.ndarray,
    K: np.ndarray,
    V: np.ndarray,
    selector: str = "softmax",
    scale: float = 1.0,
    **selector_params: Any,
) -> Attention:
    """Forward pass: O = selector(scale · Q Kᵀ) V. Q (m, d), K (n, d), V (n, d_v)."""
    S = attention_scores(Q, K, scale)
    selection = select(selector, S, **selector_params)
    return Attention(S, selection, selection.weights @ V)


@dataclass(frozen=True)
class AttentionGradients:
    """∂L/∂Q (m, d), ∂L/∂K (n, d), ∂L/∂V (n, d_v) of L = Σ_j u_j · o_j."""

    query: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    scores: np.ndarray  # ∂L/∂S (m, n)


def attend_backward(
    Q: np.ndarray, K: np.ndarray, V: np.ndarray, forward: Attention, upstream: np.ndarray,
    scale: float,
) -> AttentionGradients:
    """Backward pass of :func:`attend` for upstream gradient U = ∂L/∂O, (m, d_v) or (d_v,)."""
    U = np.broadcast_to(upstream, forward.outputs.shape)  # (m, d_v)
    dV = forward.weights.T @ U  # (n, d_v)
    dW = U @ V.T  # (m, n)
    dS = forward.selection.vjp(dW)  # (m, n)
    dQ = scale * dS @ K  # (m, d)
    dK = scale * dS.T @ Q  # (n, d)
    return AttentionGradients(dQ, dK, dV, dS)


# ---------------------------------------------------------------------------------------
# The `seqtool attend` run: arrays and plain values in, report out


def _rows(array: np.ndarray) -> list:
    return array.tolist()


@dataclass
class AttendReport(Report):
    """Everything `seqtool attend` computed; ``to_dict`` is its JSON form."""

    selector: str
    params: dict[str, Any]
    scale: float
    scale_rule: str  # "sqrt" (1/sqrt(d)) or "number"
    example: bool
    queries: np.ndarray  # (m, d)
    keys: np.ndarray  # (n, d)
    values: np.ndarray  # (n, d_v)
    scores: np.ndarray  # (m, n)
    weights: np.ndarray  # (m, n)
    outputs: np.ndarray  # (m, d_v)
    support: list[list[int]]
    ties: list[bool]
    gradient: str  # exact | zero | surrogate
    noise: np.ndarray | None = None
    upstream: np.ndarray | None = None
    gradients: AttentionGradients | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "selector": self.selector,
            "params": self.params,
            "scale": self.scale,
            "scale_rule": self.scale_rule,
            "example": self.example,
            "queries": _rows(self.queries),
            "keys": _rows(self.keys),
            "values": _rows(self.values),
            "scores": _rows(self.scores),
            "weights": _rows(self.weights),
            "outputs": _rows(self.outputs),
            "support": self.support,
            "ties": self.ties,
            "gradient": self.gradient,
        }
        if self.noise is not None:
            out["noise"] = _rows(self.noise)
        if self.gradients is not None:
            out["upstream"] = _rows(self.upstream)
            out["gradients"] = {
                "query": _rows(self.gradients.query),
                "keys": _rows(self.gradients.keys),
                "values": _rows(self.gradients.values),
                "scores": _rows(self.gradients.scores),
            }
        out["notes"] = self.notes
        return out

    def columns(self) -> list[str]:
        """The CSV header: the keys of every row of :meth:`rows`, in order."""
        return ["query", "key", "score", "weight"]

    def rows(self) -> list[dict[str, Any]]:
        """The CSV form: one row per (query j, key i) with the score and the weight."""
        m, n = self.scores.shape
        return [{"query": j, "key": i, "score": float(self.scores[j, i]),
                 "weight": float(self.weights[j, i])}
                for j in range(m) for i in range(n)]


GRADIENT_NOTES = {
    "zero": (
        "{name} is piecewise constant: ∂weights/∂scores = 0, so the query and the keys get "
        "exactly zero gradient (only the values get one, weightsᵀ·upstream)."
    ),
    "surrogate": (
        "{name} is hard in the forward pass; the gradient shown is a surrogate: the Jacobian "
        "of softmax(scores/T) stands in for the zero one."
    ),
}


def attend_report(
    Q: np.ndarray,
    K: np.ndarray,
    V: np.ndarray,
    *,
    selector: str = "softmax",
    params: Mapping[str, Any] | None = None,
    scale: float | str = 1.0,
    grad: bool = False,
    upstream: np.ndarray | None = None,
    example: bool = False,
) -> AttendReport:
    """Attention of queries Q (m, d) over keys K (n, d) and values V (n, d_v), every detail kept.

    ``params`` holds selector parameters by name (None or missing: the default; parameters
    the selector does not read are checked as :func:`resolve_params` says, then left out of
    the report). ``scale`` is a number or ``"sqrt"`` (1/sqrt(d)). With ``grad`` (or an
    ``upstream`` gradient ∂L/∂O, (d_v,) or (m, d_v), ones by default) the report also holds
    the gradients of L = Σ upstream ⊙ O. ``example`` marks the built-in worked example.
    """
    Q, K, V = (np.asarray(a, dtype=np.float64) for a in (Q, K, V))
    entry = get_selector(selector)
    scale_value = resolve_scale(scale, Q.shape[1])
    used = resolve_params(selector, K.shape[0], params)
    forward = attend(Q, K, V, selector, scale_value, **used)
    weights = forward.weights
    selection = forward.selection
    report = AttendReport(
        selector=selector,
        params=used,
        scale=scale_value,
        scale_rule="sqrt" if isinstance(scale, str) else "number",
        example=example,
        queries=Q,
        keys=K,
        values=V,
        scores=forward.scores,
        weights=weights,
        outputs=forward.outputs,
        support=[np.flatnonzero(row > 0).tolist() for row in weights],
        ties=[bool(t) for t in selection.ties],
        gradient=selection.gradient,
        noise=selection.noise,
    )
    if selection.gradient in GRADIENT_NOTES:
        report.notes.append(GRADIENT_NOTES[selection.gradient].format(name=selector))
    if any(report.ties):
        which = ", ".join(str(j) for j, t in enumerate(report.ties) if t)
        report.notes.append(
            f"tie: the {entry.tie_score} is shared in query {which}; the lowest index was chosen."
        )
    if grad or upstream is not None:
        u = np.ones(V.shape[1]) if upstream is None else upstream
        report.upstream = np.broadcast_to(u, forward.outputs.shape).copy()
        report.gradients = attend_backward(Q, K, V, forward, report.upstream, scale_value)
    return report
