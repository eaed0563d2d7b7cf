"""Attention pooling: a classifier's summary of its sequence as attention over the RNN's outputs.

For one sequence of n real steps with outputs h_1..h_n (the last layer's, H each):

    dot:       s_t = q · h_t
    general:   s_t = q · (W h_t)
    additive:  s_t = q · tanh(W h_t + b)          (Bahdanau et al. 2015; W is H × H)
    w = selector(s_1..s_n)                         (any registered selector; padded steps
                                                    never take part, see selectors.masked)
    pooled = Σ_t w_t h_t                           → the head

The parameters are ``attention.query`` q (H,), ``attention.weight`` W (H, H) and
``attention.bias`` b (H,), as a torch module of the same shape would name them. The
selectors run in float64 (as everywhere in seqtool); the weights are cast to the model's
dtype. A Gumbel selector draws new noise every training step (from the step's generator)
and is its argmax at evaluation, as Gumbel-softmax training is used; argmax gives the
scoring parameters exactly zero gradient, which is the point of comparing it.

``reinforce`` pools one step drawn from p = softmax(s) in training and the argmax of p at
evaluation; the scores get (ℓ_b − b)(onehot(t_b) − p_b)/N, ℓ_b the sequence's
cross-entropy and b the running mean of ℓ (``attention.baseline``, see global_attention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from seqtool.core.global_attention import BASELINE, REINFORCE, draw, reinforce_scores

SCORES = ("dot", "general", "additive")
PREFIX = "attention."


def attention_param_shapes(score: str, hidden: int) -> dict[str, tuple[int, ...]]:
    """The pooling's parameters and their shapes for ``score``."""
    shapes = {PREFIX + "query": (hidden,)}
    if score in ("general", "additive"):
        shapes[PREFIX + "weight"] = (hidden, hidden)
    if score == "additive":
        shapes[PREFIX + "bias"] = (hidden,)
    return shapes


def init_attention(score: str, hidden: int, seed: int, dtype: Any,
                   selector: str = "softmax") -> dict[str, np.ndarray]:
    """U(−1/√H, 1/√H) for each parameter (torch's Linear default), from a generator of
    their own, so that adding attention changes no other parameter's first values; and
    REINFORCE's baseline buffer (0) when the selector is reinforce."""
    rng = np.random.default_rng([seed, 4])
    bound = 1.0 / np.sqrt(hidden)
    params = {name: rng.uniform(-bound, bound, shape).astype(dtype)
              for name, shape in attention_param_shapes(score, hidden).items()}
    if selector == REINFORCE:
        params[BASELINE] = np.zeros((), dtype=dtype)
    return params


@dataclass
class Pooled:
    """What the backward pass needs: the selection, and the scores' intermediate."""

    weights: np.ndarray  # (B, T) float64, zero on padded steps
    selection: Any  # seqtool.core.selectors.registry.Selection (None: REINFORCE training)
    keys: np.ndarray | None  # (T, B, H): W h_t (general) or tanh(W h_t + b) (additive)
    outputs: np.ndarray  # (T, B, H): the h_t pooled (kept: the backward pass reads them)
    probabilities: np.ndarray | None = None  # REINFORCE: p = softmax(scores) (B, T)
    chosen: np.ndarray | None = None  # REINFORCE: the drawn step per sequence (B,)
    # REINFORCE: (ℓ_b − baseline)/N per sequence, set by the training step before backward
    advantage: np.ndarray | None = None


def _selector(spec: Any, training: bool) -> tuple[str, dict[str, Any]]:
    name, params = spec.selector, dict(spec.selector_params or {})
    if name in ("gumbel", REINFORCE) and not training:
        return "argmax", {}
    return name, params


def attention_pool(spec: Any, params: dict[str, np.ndarray], out: np.ndarray,
                   lengths: np.ndarray, rng: np.random.Generator | None = None
                   ) -> tuple[np.ndarray, Pooled]:
    """(pooled (B, H), Pooled) for the outputs ``out`` (T, B, H); ``rng`` is the training
    step's generator (None: evaluation)."""
    from seqtool.core.selectors.masked import select_rows

    q = params[PREFIX + "query"]
    keys = None
    if spec.score == "dot":
        scores = out @ q  # (T, B)
    else:
        keys = out @ params[PREFIX + "weight"].T
        if spec.score == "additive":
            keys = np.tanh(keys + params[PREFIX + "bias"])
        scores = keys @ q
    name, chosen = _selector(spec, rng is not None)
    if name == REINFORCE:  # one step drawn from softmax(scores), as a one-hot weight
        p = select_rows("softmax", scores.T, lengths).weights
        picked = draw(p, lengths, rng)
        weights = np.zeros_like(p)
        weights[np.arange(len(picked)), picked] = 1.0
        pooled = np.einsum("bt,tbh->bh", weights.astype(out.dtype), out)
        return pooled, Pooled(weights, None, keys, out, p, picked)
    if name == "gumbel":
        chosen["seed"] = int(rng.integers(2**31))
    selection = select_rows(name, scores.T, lengths, **chosen)
    w = selection.weights.astype(out.dtype)
    pooled = np.einsum("bt,tbh->bh", w, out)
    return pooled, Pooled(selection.weights, selection, keys, out)


def attention_pool_backward(spec: Any, params: dict[str, np.ndarray], out: np.ndarray,
                            pooled: Pooled, d_pooled: np.ndarray
                            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(∂L/∂out (T, B, H), ∂L/∂ the pooling's parameters) given ∂L/∂pooled (B, H):

        ∂L/∂h_t += w_t ∂L/∂pooled,  ∂L/∂w_t = ∂L/∂pooled · h_t,  ∂L/∂s = vjp(∂L/∂w),
    then through the score (dot: ∂q = Σ ∂s_t h_t, ∂h_t += ∂s_t q; general: k_t = W h_t;
    additive: k_t = tanh(W h_t + b), a_t = ∂s_t q ⊙ (1 − k_t²))."""
    dtype = out.dtype
    w = pooled.weights.astype(dtype)  # (B, T)
    d_out = np.einsum("bt,bh->tbh", w, d_pooled)
    if pooled.probabilities is not None:  # REINFORCE: the score-function estimator
        d_s = reinforce_scores(pooled.probabilities, pooled.chosen, pooled.advantage)
        d_s = d_s.T.astype(dtype)
    else:
        d_w = np.einsum("tbh,bh->bt", out, d_pooled)
        d_s = pooled.selection.vjp(d_w).T.astype(dtype)  # (T, B)
    q = params[PREFIX + "query"]
    grads = {}
    if spec.score == "dot":
        grads[PREFIX + "query"] = np.einsum("tb,tbh->h", d_s, out)
        d_out += d_s[..., None] * q
        return d_out, grads
    keys = pooled.keys
    grads[PREFIX + "query"] = np.einsum("tb,tbh->h", d_s, keys)
    d_keys = d_s[..., None] * q  # (T, B, H)
    if spec.score == "additive":
        d_keys = d_keys * (1.0 - keys * keys)
        grads[PREFIX + "bias"] = d_keys.sum(axis=(0, 1))
    W = params[PREFIX + "weight"]
    flat_out = out.reshape(-1, out.shape[-1])
    grads[PREFIX + "weight"] = d_keys.reshape(-1, d_keys.shape[-1]).T @ flat_out
    d_out += d_keys @ W
    return d_out, grads


__all__ = ["PREFIX", "Pooled", "SCORES", "attention_param_shapes", "attention_pool",
           "attention_pool_backward", "init_attention"]
