"""`seqtool bptt --explain`: the chain rule of ∂L/∂W_hh written out with this run's numbers."""

from __future__ import annotations

import numpy as np

from seqtool.core.rnn.bptt import BpttReport
from seqtool.core.rnn.vanilla import derivative_from_h
from seqtool.render.numbers import fmt, vec

DERIVATIVES = {
    "tanh": "f'(z) = 1 − tanh²(z) = 1 − h²",
    "sigmoid": "f'(z) = σ(z)(1 − σ(z)) = h(1 − h)",
    "relu": "f'(z) = 1 if z > 0 else 0",
    "identity": "f'(z) = 1",
}


def mat(m: np.ndarray, p: int) -> str:
    """A matrix inline, rows separated by ';'."""
    return "[" + "; ".join(", ".join(fmt(x, p) for x in row) for row in np.atleast_2d(m)) + "]"


def pair_terms(report: BpttReport) -> np.ndarray:
    """‖∂L_t/∂h_t (Π_{j=k+1..t} ∂h_j/∂h_{j−1}) ∂⁺h_k/∂W_hh‖ for 1 ≤ k ≤ t ≤ T (0 elsewhere).

    With δ_{t,t} = ∂L_t/∂h_t ⊙ f'(z_t) and δ_{t,k−1} = (W_hhᵀ δ_{t,k}) ⊙ f'(z_{k−1}), the
    term is δ_{t,k} h_{k−1}ᵀ; the terms sum to ∂L/∂W_hh.
    """
    prob = report.problem
    h = np.vstack([prob.h0, report.hidden])  # (T+1, H)
    T = h.shape[0] - 1
    fprime = derivative_from_h(h[1:], prob.activation)  # row t−1: f'(z_t)
    dh_out = direct_hidden_gradients(report)
    norms = np.zeros((T + 1, T + 1))
    for t in range(1, T + 1):
        delta = dh_out[t - 1] * fprime[t - 1]
        for k in range(t, 0, -1):
            norms[t, k] = np.linalg.norm(np.outer(delta, h[k - 1]))
            if k > 1:
                delta = (prob.W_hh.T @ delta) * fprime[k - 2]
    return norms


def direct_hidden_gradients(report: BpttReport) -> np.ndarray:
    """∂L_t/∂h_t = W_hyᵀ ∂L_t/∂ŷ_t for t = 1..T (zeros where L_t is not counted)."""
    from seqtool.core.losses import sequence_loss

    prob = report.problem
    targets = prob.y[:, None] if prob.loss == "cross_entropy" else prob.y[:, None, :]
    _, dy = sequence_loss(prob.loss, report.outputs[:, None, :], targets, prob.steps)
    return dy[:, 0] @ prob.W_hy


def explain_bptt(report: BpttReport, precision: int = 4) -> list[str]:
    """The forward pass, the backward recursion and the double sum, step by step."""
    p, prob = precision, report.problem
    h = np.vstack([prob.h0, report.hidden])
    T = h.shape[0] - 1
    z = prob.x @ prob.W_xh.T + h[:-1] @ prob.W_hh.T + prob.b_h
    fprime = derivative_from_h(h[1:], prob.activation)
    dh_out = direct_hidden_gradients(report)
    losses = dict(zip(report.loss_steps, report.losses))
    steps = ("t = 1..T" if len(losses) == T else
             f"the steps with a loss: t = {', '.join(str(t) for t in sorted(losses))}")
    lines = [
        f"Chain rule for ∂L/∂W_hh (T = {T}, f = {prob.activation}):",
        "  ∂L/∂W_hh = Σ_t Σ_{k≤t} ∂L_t/∂h_t (Π_{j=k+1..t} ∂h_j/∂h_{j-1}) ∂⁺h_k/∂W_hh,",
        f"  summed over {steps},",
        f"  with ∂h_j/∂h_{{j-1}} = diag(f'(z_j)) W_hh, {DERIVATIVES[prob.activation]},",
        "  and ∂⁺h_k/∂W_hh the immediate part: ∂h_k/∂(W_hh)_ab = f'(z_k)_a (h_{k-1})_b.",
        f"  W_hh = {mat(prob.W_hh, p)}",
        "Forward:",
    ]
    for t in range(1, T + 1):
        loss = f"; L_{t} = {fmt(losses[t], p)}" if t in losses else ""
        lines.append(f"  t={t}: z_{t} = W_xh x_{t} + W_hh h_{t-1} + b_h = {vec(z[t - 1], p)}; "
                     f"h_{t} = f(z_{t}) = {vec(h[t], p)}; ŷ_{t} = {vec(report.outputs[t - 1], p)}"
                     f"{loss}")
    lines.append("Backward (dz_t = ∂L/∂z_t):")
    dz = report.per_step  # (T, H, H) = dz_t h_{t−1}ᵀ; recompute dz_t for the text
    carry = np.zeros(h.shape[1])
    for t in range(T, 0, -1):
        total = dh_out[t - 1] + carry
        d = total * fprime[t - 1]
        # only the steps with a loss term have a direct ∂L_t/∂h_t (target_at last: t = T)
        terms = ([f"∂L_{t}/∂h_{t}"] if t in losses else []) + (
            [f"W_hhᵀ dz_{t + 1}"] if t < T else [])
        lines.append(f"  t={t}: ∂L/∂h_{t} = {' + '.join(terms)} = {vec(total, p)}; "
                     f"f'(z_{t}) = {vec(fprime[t - 1], p)}; dz_{t} = ∂L/∂h_{t} ⊙ f'(z_{t}) = "
                     f"{vec(d, p)}")
        lines.append(f"        share_{t} = dz_{t} h_{t - 1}ᵀ = {mat(dz[t - 1], p)}")
        carry = prob.W_hh.T @ d
    lines.append(f"Sum: ∂L/∂W_hh = Σ_t dz_t h_{{t-1}}ᵀ = {mat(report.gradients['W_hh'], p)}")
    norms = pair_terms(report)
    lines.append("Norms of the (t, k) terms of the double sum (rows t = loss step, columns k):")
    lines.append("        " + "".join(f"{'k=' + str(k):>11}" for k in range(1, T + 1)))
    for t in range(1, T + 1):
        cells = "".join(f"{fmt(norms[t, k], 3) if k <= t else '':>11}" for k in range(1, T + 1))
        lines.append(f"  t={t:<4}" + cells)
    lines.append("  Far from the diagonal (k ≪ t) a term carries t − k Jacobians diag(f'(z_j)) W_hh:"
                 f" here each step back multiplies by ≈ {fmt(report.rate, p)}.")
    return lines
