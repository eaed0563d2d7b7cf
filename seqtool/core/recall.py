"""Associative recall: can attention learn its queries and keys through a selector?

A sequence holds n pairs (key token k_i, value token v_i), keys distinct, and a query token
equal to one of the keys, k_j; the answer is v_j. Token embeddings e(·) are fixed, random
unit vectors in R^d; only W_q and W_k (d×d) are learned, with Adam:

    q = W_q e(query),  K_i = W_k e(k_i),  s_i = q·K_i / √d,  w = selector(s),
    o = Σ_i w_i e(v_i),  logits = β E o,  L = −log softmax(logits)[v_j]

(E stacks every token's embedding; β = LOGIT_SCALE turns cosine similarity into logits.)
Everything reaching W_q and W_k passes through the selector's backward pass, so argmax, whose
Jacobian is zero, leaves them exactly where they started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from seqtool.core.optim import Adam
from seqtool.core.selectors import get_selector, select

LOGIT_SCALE = 8.0
EVAL_SEQUENCES = 2000
CURVE_POINTS = 20  # held-out evaluations along a learning run (its accuracy curve)


@dataclass(frozen=True)
class RecallSetup:
    """Sizes and training settings of one learning run."""

    pairs: int = 8
    dim: int = 64
    vocab: int = 64
    steps: int = 600
    batch: int = 32
    lr: float = 0.02
    seed: int = 0


@dataclass
class Batch:
    query: np.ndarray  # (B,) token ids
    keys: np.ndarray  # (B, n)
    values: np.ndarray  # (B, n)
    answer: np.ndarray  # (B,) = values[b, j_b]


def sample_batch(rng: np.random.Generator, setup: RecallSetup, size: int) -> Batch:
    """``size`` sequences: n distinct key tokens, n value tokens, one of the keys as query."""
    keys = np.argsort(rng.random((size, setup.vocab)), axis=1)[:, : setup.pairs]
    values = rng.integers(0, setup.vocab, size=(size, setup.pairs))
    which = rng.integers(0, setup.pairs, size=size)
    rows = np.arange(size)
    return Batch(keys[rows, which], keys, values, values[rows, which])


def embeddings(rng: np.random.Generator, setup: RecallSetup) -> np.ndarray:
    """Fixed random unit vectors, one row per token: (V, d)."""
    E = rng.normal(size=(setup.vocab, setup.dim))
    return E / np.linalg.norm(E, axis=1, keepdims=True)


@dataclass
class Step:
    loss: float
    correct: np.ndarray  # (B,) bool
    grads: dict[str, np.ndarray] = field(default_factory=dict)


def forward_backward(params: dict[str, np.ndarray], E: np.ndarray, batch: Batch, selector: str,
                     selector_params: dict, need_grads: bool = True) -> Step:
    """Mean cross-entropy over the batch and its gradients with respect to W_q and W_k."""
    e_q, e_k, e_v = E[batch.query], E[batch.keys], E[batch.values]  # (B,d) (B,n,d) (B,n,d)
    d = E.shape[1]
    scale = 1.0 / np.sqrt(d)
    q = e_q @ params["W_q"].T  # (B, d)
    K = e_k @ params["W_k"].T  # (B, n, d)
    s = scale * np.einsum("bd,bnd->bn", q, K)  # (B, n)
    selection = select(selector, s, **selector_params)
    o = np.einsum("bn,bnd->bd", selection.weights, e_v)  # (B, d)
    logits = LOGIT_SCALE * o @ E.T  # (B, V)
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(batch.answer))
    loss = float(-logp[rows, batch.answer].mean())
    correct = np.argmax(logits, axis=1) == batch.answer
    if not need_grads:
        return Step(loss, correct)
    dlogits = np.exp(logp)
    dlogits[rows, batch.answer] -= 1.0
    dlogits /= len(batch.answer)
    do = LOGIT_SCALE * dlogits @ E  # (B, d)
    dw = np.einsum("bd,bnd->bn", do, e_v)  # (B, n)
    ds = selection.vjp(dw)  # (B, n): exactly 0 for argmax
    dq = scale * np.einsum("bn,bnd->bd", ds, K)  # (B, d)
    dK = scale * ds[:, :, None] * q[:, None, :]  # (B, n, d)
    grads = {"W_q": dq.T @ e_q, "W_k": np.einsum("bnd,bne->de", dK, e_k)}
    return Step(loss, correct, grads)


@dataclass
class LearningResult:
    """One selector's learning run."""

    selector: str
    loss_start: float
    loss_end: float
    accuracy: float  # on fresh held-out sequences
    accuracy_at_init: float  # the same sequences, before any training
    chance: float
    grad_norm_Wq: float  # Σ over steps of ‖∂L/∂W_q‖
    grad_norm_Wk: float
    weights_changed: bool
    losses: list[float]  # the training curve, one value per step
    # held-out accuracy as training goes: [step, accuracy] at step 0 (untrained), about
    # every steps/CURVE_POINTS steps, and at the end
    accuracy_curve: list[list] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "selector": self.selector, "loss_start": self.loss_start, "loss_end": self.loss_end,
            "accuracy": self.accuracy, "accuracy_at_init": self.accuracy_at_init,
            "chance": self.chance,
            "grad_norm_Wq": self.grad_norm_Wq, "grad_norm_Wk": self.grad_norm_Wk,
            "weights_changed": self.weights_changed, "losses": self.losses,
            "accuracy_curve": self.accuracy_curve,
        }


def chance_accuracy(setup: RecallSetup, E: np.ndarray, seed: int) -> float:
    """Accuracy of attending to a uniformly random key: the floor a blind selector reaches."""
    rng = np.random.default_rng(seed)
    batch = sample_batch(rng, setup, EVAL_SEQUENCES)
    pick = rng.integers(0, setup.pairs, size=EVAL_SEQUENCES)
    guess = batch.values[np.arange(EVAL_SEQUENCES), pick]
    return float(np.mean(guess == batch.answer))


def learn(selector: str, setup: RecallSetup, selector_params: dict | None = None,
          on_step: Callable[[int, float], None] | None = None) -> LearningResult:
    """Train W_q, W_k through ``selector`` from the seed's initialisation; evaluate held out.

    Every selector sees the same embeddings, initial weights and batches (same seed); a
    selector that reads a ``seed`` (gumbel's noise) gets a new one at every step (seed + step)
    and seed + steps for the evaluation.
    """
    selector_params = dict(selector_params or {})
    reseeded = "seed" in get_selector(selector).param_names
    rng = np.random.default_rng(setup.seed)
    E = embeddings(rng, setup)
    init = rng.normal(0.0, 1.0 / np.sqrt(setup.dim), size=(2, setup.dim, setup.dim))
    params = {"W_q": init[0].copy(), "W_k": init[1].copy()}
    held_out = sample_batch(np.random.default_rng([setup.seed, 2]), setup, EVAL_SEQUENCES)
    eval_params = dict(selector_params, seed=setup.seed + setup.steps) if reseeded \
        else selector_params
    before = forward_backward(params, E, held_out, selector, eval_params, need_grads=False)
    optimiser = Adam(params, lr=setup.lr)
    data_rng = np.random.default_rng([setup.seed, 1])
    losses, norm_q, norm_k = [], 0.0, 0.0
    curve = [[0, float(before.correct.mean())]]
    every = max(1, setup.steps // CURVE_POINTS)
    for step in range(setup.steps):
        batch = sample_batch(data_rng, setup, setup.batch)
        if reseeded:
            selector_params["seed"] = setup.seed + step
        result = forward_backward(params, E, batch, selector, selector_params)
        norm_q += float(np.linalg.norm(result.grads["W_q"]))
        norm_k += float(np.linalg.norm(result.grads["W_k"]))
        optimiser.step(result.grads)
        losses.append(result.loss)
        if on_step is not None:
            on_step(step, result.loss)
        if (step + 1) % every == 0 and step + 1 < setup.steps:  # the same held-out set
            seen = forward_backward(params, E, held_out, selector, eval_params, need_grads=False)
            curve.append([step + 1, float(seen.correct.mean())])
    final = forward_backward(params, E, held_out, selector, eval_params, need_grads=False)
    curve.append([setup.steps, float(final.correct.mean())])
    changed = not (np.array_equal(params["W_q"], init[0]) and np.array_equal(params["W_k"], init[1]))
    return LearningResult(
        selector=selector, loss_start=losses[0] if losses else final.loss,
        loss_end=losses[-1] if losses else final.loss, accuracy=float(final.correct.mean()),
        accuracy_at_init=float(before.correct.mean()),
        chance=chance_accuracy(setup, E, setup.seed + 3), grad_norm_Wq=norm_q, grad_norm_Wk=norm_k,
        weights_changed=changed, losses=losses, accuracy_curve=curve,
    )
