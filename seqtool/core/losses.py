"""Losses over output sequences, summed over the steps that have a target (not averaged).

    mse:           L_t = ½‖ŷ_t − y_t‖²,               ∂L_t/∂ŷ_t = ŷ_t − y_t
    cross_entropy: L_t = −log softmax(ŷ_t)[y_t],     ∂L_t/∂ŷ_t = softmax(ŷ_t) − onehot(y_t)

Outputs ŷ are (T, B, O). ``steps`` lists the time indices (0-based) that carry a loss:
all of them for many-to-many, only the last for many-to-one.
"""

from __future__ import annotations

import numpy as np

LOSSES = ("mse", "cross_entropy")
TARGETS_AT = ("all", "last")  # a loss term at every step (many-to-many) or the last only


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax along the last axis, stable: z − max − log Σ exp(z − max)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sequence_loss(
    name: str, outputs: np.ndarray, targets: np.ndarray, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-step losses (len(steps), B) and ∂L/∂ŷ (T, B, O) for L = Σ_{t ∈ steps} Σ_b L_t.

    ``targets`` is (len(steps), B, O) reals for mse, (len(steps), B) integers for
    cross_entropy.
    """
    grad = np.zeros_like(outputs)
    y_hat = outputs[steps]  # (S, B, O)
    if name == "mse":
        diff = y_hat - targets
        grad[steps] = diff
        return 0.5 * (diff**2).sum(axis=-1), grad
    logp = log_softmax(y_hat)
    labels = targets.astype(np.intp)[..., None]  # (S, B, 1)
    losses = -np.take_along_axis(logp, labels, axis=-1)[..., 0]
    probs = np.exp(logp)
    np.put_along_axis(probs, labels, np.take_along_axis(probs, labels, axis=-1) - 1.0, axis=-1)
    grad[steps] = probs
    return losses, grad


def cross_entropy_each(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """ℓ = −log softmax(z)[y] for every prediction: logits (..., C), targets (...) ids, in
    float64; 0 where the target is padding (< 0)."""
    z = logits.astype(np.float64)
    top = z.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(z - top).sum(axis=-1)) + top[..., 0]
    y = np.maximum(targets, 0)
    picked = np.take_along_axis(z, y[..., None], axis=-1)[..., 0]
    return np.where(targets >= 0, lse - picked, 0.0)
