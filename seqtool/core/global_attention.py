"""Global attention of a decoder over its encoder's states (Luong, Pham & Manning 2015).

For each sequence b, decoder step t (state h_t, H) and encoder step s (state ē_s, H; only
the n_b real source steps take part):

    dot:       score(h_t, ē_s) = h_tᵀ ē_s
    general:   score(h_t, ē_s) = h_tᵀ W_a ē_s
    additive:  score(h_t, ē_s) = vᵀ tanh(W_q h_t + W_k ē_s + b)   (Luong's "concat",
                                                                  Bahdanau's form)
    a_t = selector(score(h_t, ē_1..ē_n))          (any registered selector, or REINFORCE)
    c_t = Σ_s a_ts ē_s
    h̃_t = tanh(W_c [c_t; h_t])                     → the output layer

Every (b, t) pair is one row of the selection, so a whole teacher-forced batch is a few
batched products: scores (B, M, S) = H_dec (B, M, H) × keys (B, H, S), and so on. The
parameters are named as torch modules of the same shapes would name them:
``attention.weight`` (general, an ``nn.Linear(H, H, bias=False)``), ``attention.query.weight``,
``attention.key.weight``, ``attention.key.bias`` and ``attention.v.weight`` (1, H)
(additive), and ``combine.weight`` (H, 2H).

REINFORCE (``selector="reinforce"``) is hard attention trained with the score-function
estimator (Williams 1992; Xu et al. 2015): in training a_t is one-hot at a key drawn from
p_t = softmax(scores), and the scores receive (ℓ_t − b)(onehot(k_t) − p_t) / N, the
gradient of the surrogate Σ_t (ℓ_t − b) log p_t(k_t) / N, where ℓ_t is step t's
cross-entropy and b a running mean of ℓ (the baseline, a buffer stored with the weights).
At evaluation it attends to argmax p_t. The decoder reads no context (no input feeding), so
a step's choice changes that step's loss alone: ℓ_t is its whole reward.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

SCORES = ("dot", "general", "additive")
# The softmax over dot and general scores runs in two kernels (seqtool.core.attention_kernels);
# SEQTOOL_PLAIN_ATTENTION=1 runs it as NumPy array operations, the reference for them.
FUSED_SOFTMAX = os.environ.get("SEQTOOL_PLAIN_ATTENTION", "").strip() != "1"
_ALL_ROWS = np.empty(0, dtype=np.int64)
REINFORCE = "reinforce"
BASELINE = "attention.baseline"  # REINFORCE's running mean of the step losses (a buffer)
BASELINE_DECAY = 0.9  # b ← 0.9 b + 0.1 mean(ℓ) after every training step


def attention_shapes(score: str, hidden: int, selector: str) -> dict[str, tuple[int, ...]]:
    """The attention's parameters (and buffers) and their shapes."""
    H = hidden
    shapes: dict[str, tuple[int, ...]] = {}
    if score == "general":
        shapes["attention.weight"] = (H, H)
    elif score == "additive":
        shapes.update({"attention.query.weight": (H, H), "attention.key.weight": (H, H),
                       "attention.key.bias": (H,), "attention.v.weight": (1, H)})
    shapes["combine.weight"] = (H, 2 * H)
    if selector == REINFORCE:
        shapes[BASELINE] = ()
    return shapes


def init_attention(score: str, hidden: int, selector: str, seed: int,
                   dtype: Any) -> dict[str, np.ndarray]:
    """U(−1/√fan_in, 1/√fan_in) for each weight (torch's Linear default), from a generator
    of their own; the baseline starts at 0."""
    rng = np.random.default_rng([seed, 8])
    out = {}
    for name, shape in attention_shapes(score, hidden, selector).items():
        if name == BASELINE:
            out[name] = np.zeros((), dtype=dtype)
            continue
        bound = 1.0 / np.sqrt(shape[-1])
        out[name] = rng.uniform(-bound, bound, shape).astype(dtype)
    return out


@dataclass
class Attended:
    """Everything the backward pass needs, and what reports show."""

    weights: np.ndarray  # (B, M, S) float64, zero on padded source steps
    selection: Any  # Selection over the B·M rows (None for REINFORCE in training)
    keys: np.ndarray  # (B, S, H) encoder states, zero on padded steps
    queries: np.ndarray  # (B, M, H) decoder states
    context: np.ndarray  # (B, M, H)
    combined: np.ndarray  # (R, H) h̃ of the R rows b·M + t in ``rows`` (all B·M: None)
    both: np.ndarray  # (R, 2H) [c_t; h_t] of those rows
    rows: np.ndarray | None  # the real decoder steps, as flat indices into (B, M)
    projected_keys: np.ndarray | None = None  # general: W_a ē (B, S, H); additive: W_k ē + b
    hidden_pairs: np.ndarray | None = None  # additive: tanh(W_q h_t + W_k ē_s + b) (B, M, S, H)
    probabilities: np.ndarray | None = None  # REINFORCE: p (B, M, S)
    chosen: np.ndarray | None = None  # REINFORCE: the drawn key per row (B, M)
    fused: "FusedSoftmax | None" = None  # the kernels' own inputs, when they ran


@dataclass
class FusedSoftmax:
    """What the backward kernel reads besides an Attended's arrays."""

    queries: np.ndarray  # (M, B, H) C-contiguous: the decoder's states, time-major
    score_keys: np.ndarray  # (B, S, H): the keys (dot) or W_a ē (general)
    lengths: np.ndarray  # (B,) int64
    rows: np.ndarray  # the combined rows, int64 (empty: all)
    temperature: float


def _selector(spec: Any, training: bool) -> tuple[str, dict[str, Any]]:
    name, params = spec.selector, dict(spec.selector_params or {})
    if not training and name in ("gumbel", REINFORCE):
        return "argmax", {}
    return name, params


def scores_of(spec: Any, params: dict[str, np.ndarray], queries: np.ndarray,
              keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(scores (B, M, S), projected keys, the additive score's tanh layer)."""
    if spec.score == "dot":
        return queries @ keys.transpose(0, 2, 1), None, None
    if spec.score == "general":
        projected = keys @ params["attention.weight"].T  # W_a ē_s, as rows
        return queries @ projected.transpose(0, 2, 1), projected, None
    projected = keys @ params["attention.key.weight"].T + params["attention.key.bias"]
    q = queries @ params["attention.query.weight"].T  # (B, M, H)
    pairs = np.tanh(q[:, :, None, :] + projected[:, None, :, :])  # (B, M, S, H)
    return pairs @ params["attention.v.weight"][0], projected, pairs


def attend(spec: Any, params: dict[str, np.ndarray], queries: np.ndarray, keys: np.ndarray,
           lengths: np.ndarray, rng: np.random.Generator | None = None,
           rows: np.ndarray | None = None) -> Attended:
    """Attention of the decoder states ``queries`` (B, M, H) over the encoder states ``keys``
    (B, S, H, zero past each source's ``lengths``) and the combined outputs h̃ of the
    decoder steps ``rows`` (flat indices b·M + t; None: all of them): the combine layer, the
    largest product, skips the padded steps as the recurrent layers do. ``rng`` is the
    training step's generator (None: evaluation). The softmax over a dot or general score
    runs in two kernels (:func:`_attend_softmax`, seqtool.core.attention_kernels), which
    read only each source's real steps; SEQTOOL_PLAIN_ATTENTION=1 runs it as below."""
    from seqtool.core.selectors.masked import is_softmax, select_rows

    B, M, _ = queries.shape
    S = keys.shape[1]
    name, chosen = _selector(spec, rng is not None)
    if (FUSED_SOFTMAX and spec.score != "additive" and name != REINFORCE and is_softmax(name)
            and queries.dtype == keys.dtype and keys.dtype in (np.float32, np.float64)):
        return _attend_softmax(spec, params, queries, keys, lengths, rows, name, chosen)
    scores, projected, pairs = scores_of(spec, params, queries, keys)
    flat_scores = scores.reshape(B * M, S)  # one row per (b, t)
    row_lengths = np.repeat(lengths, M)
    probabilities = picked = selection = None
    if name == REINFORCE:
        selection = select_rows("softmax", flat_scores, row_lengths)
        p = selection.weights
        picked = draw(p, row_lengths, rng)
        weights = np.zeros_like(p)
        weights[np.arange(B * M), picked] = 1.0
        probabilities, picked = p.reshape(B, M, S), picked.reshape(B, M)
        selection = None
    else:
        if name == "gumbel":
            chosen["seed"] = int(rng.integers(2**31))
        selection = select_rows(name, flat_scores, row_lengths, **chosen)
        weights = selection.weights
    weights = weights.reshape(B, M, S)
    context = weights.astype(keys.dtype) @ keys  # (B, M, H)
    both = np.concatenate([context, queries], axis=-1).reshape(B * M, -1)
    if rows is not None:
        both = both[rows]
    return Attended(weights, selection, keys, queries, context, _combine(params, both), both,
                    rows, projected, pairs, probabilities, picked)


def _attend_softmax(spec: Any, params: dict[str, np.ndarray], queries: np.ndarray,
                    keys: np.ndarray, lengths: np.ndarray, rows: np.ndarray | None,
                    name: str, chosen: dict[str, Any]) -> Attended:
    """:func:`attend` with the softmax over a dot or general score, in one kernel
    (seqtool.core.attention_kernels.softmax_attend_into) up to the combine layer."""
    from seqtool.core.attention_kernels import softmax_attend_into
    from seqtool.core.selectors.masked import softmax_selection
    from seqtool.core.selectors.registry import resolve_params

    B, M, H = queries.shape
    S = keys.shape[1]
    temperature = float(resolve_params(name, S, chosen)["temperature"])
    keys = np.ascontiguousarray(keys)
    projected = None
    if spec.score == "general":
        projected = keys @ params["attention.weight"].T  # W_a ē_s, as rows
    fused = FusedSoftmax(np.ascontiguousarray(queries.transpose(1, 0, 2)),
                         keys if projected is None else projected,
                         np.ascontiguousarray(lengths, dtype=np.int64),
                         _ALL_ROWS if rows is None else np.ascontiguousarray(rows, dtype=np.int64),
                         temperature)
    weights = np.empty((B, M, S))
    context = np.empty((B, M, H), dtype=keys.dtype)
    both = np.empty((B * M if rows is None else len(rows), 2 * H), dtype=keys.dtype)
    softmax_attend_into(fused.queries, keys, fused.score_keys, fused.lengths, temperature,
                        fused.rows, weights, context, both)
    selection = softmax_selection(weights.reshape(B * M, S), np.repeat(fused.lengths, M),
                                  temperature)
    return Attended(weights, selection, keys, queries, context, _combine(params, both), both,
                    rows, projected, fused=fused)


def _combine(params: dict[str, np.ndarray], both: np.ndarray) -> np.ndarray:
    """h̃ = tanh(W_c [c_t; h_t]) for the rows ``both`` (R, 2H): one (R, 2H) × (2H, H)
    product (a (B, M, 2H) @ matmul would run B small ones), tanh in place."""
    from seqtool.core.rnn.products import product  # the kernels: imported when first used

    combined = product(both, params["combine.weight"].T)
    np.tanh(combined, out=combined)  # in place: the product is ours
    return combined


def draw(p: np.ndarray, lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of p (B·M, S) drawn by inverse CDF from one uniform each: the
    first k with Σ_{j≤k} p_j > u, kept within the row's real steps."""
    u = rng.random((p.shape[0], 1))
    cdf = np.cumsum(p, axis=1)
    picked = (cdf <= u * cdf[:, -1:]).sum(axis=1)
    return np.minimum(picked, lengths - 1)


def attend_backward(spec: Any, params: dict[str, np.ndarray], att: Attended,
                    d_combined: np.ndarray, step_losses: np.ndarray | None = None,
                    step_mask: np.ndarray | None = None, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(∂L/∂queries (B, M, H), ∂L/∂keys (B, S, H), ∂L/∂ the attention's weights) given
    ∂L/∂h̃ of the rows the forward pass combined (R, H):

        u = W_c [c; h],  ∂u = ∂h̃ ⊙ (1 − h̃²),  ∂W_c = Σ ∂u [c; h]ᵀ,  [∂c; ∂h] = W_cᵀ ∂u
        ∂a_ts = ∂c_t · ē_s,  ∂ē_s += Σ_t a_ts ∂c_t,  ∂score = vjp_selector(∂a)
    then through the score (dot: ∂h_t += Σ_s ∂score_ts ē_s, ∂ē_s += Σ_t ∂score_ts h_t; general
    with W_a ē in place of ē; additive through tanh). For REINFORCE, ∂score is the
    score-function term (ℓ_t − b)(onehot − p)·``scale`` from ``step_losses`` (B, M) (the
    per-step cross-entropies) on the real steps ``step_mask`` (B, M) instead of a vjp."""
    from seqtool.core.rnn.products import product

    H = att.queries.shape[-1]
    W_c = params["combine.weight"]
    B, M, S = att.weights.shape
    d_u = att.combined * att.combined  # ∂h̃ ⊙ (1 − h̃²), in one temporary
    np.subtract(1.0, d_u, out=d_u)
    d_u *= d_combined
    grads = {"combine.weight": product(d_u.T, att.both)}
    d_rows = product(d_u, W_c)  # [∂c; ∂h] of the combined rows (R, 2H)
    if att.fused is not None:
        d_queries, d_keys = _softmax_backward(spec, params, att, d_rows, grads)
        return d_queries, d_keys, grads
    # ∂L/∂queries and ∂L/∂keys are returned as (B, ·, H) views of time-major arrays, the
    # layout the recurrent layers take them in (no copy there)
    d_queries_tm = np.zeros((M, B, H), dtype=d_u.dtype)
    d_queries = d_queries_tm.transpose(1, 0, 2)
    if att.rows is None:
        d_context = d_rows[:, :H].reshape(B, M, H)
        d_queries[...] = d_rows[:, H:].reshape(B, M, H)
    else:  # the padded steps were never combined: no gradient comes back from them
        d_context = np.zeros((B * M, H), dtype=d_u.dtype)
        d_context[att.rows] = d_rows[:, :H]
        d_context = d_context.reshape(B, M, H)
        b, t = np.divmod(att.rows, M)
        d_queries_tm.reshape(M * B, H)[t * B + b] = d_rows[:, H:]
    weights = att.weights.astype(att.keys.dtype)
    d_keys = np.empty((S, B, H), dtype=d_u.dtype).transpose(1, 0, 2)  # (B, S, H)
    np.matmul(weights.transpose(0, 2, 1), d_context, out=d_keys)
    if att.probabilities is not None:  # REINFORCE: the score-function estimator
        if step_losses is None or step_mask is None:
            raise ValueError("reinforce needs the per-step losses and their mask")
        advantage = np.where(step_mask, step_losses - float(params[BASELINE]), 0.0) * scale
        d_scores = reinforce_scores(att.probabilities.reshape(B * M, S), att.chosen.reshape(-1),
                                    advantage.reshape(-1)).reshape(B, M, S)
    else:
        d_weights = d_context @ att.keys.transpose(0, 2, 1)  # (B, M, S)
        d_scores = att.selection.vjp(d_weights.reshape(B * M, S)).reshape(B, M, S)
    d_scores = d_scores.astype(att.keys.dtype)
    if spec.score == "dot":
        d_queries += d_scores @ att.keys
        d_keys += d_scores.transpose(0, 2, 1) @ att.queries
    elif spec.score == "general":
        W_a = params["attention.weight"]
        d_queries += d_scores @ att.projected_keys
        d_projected = d_scores.transpose(0, 2, 1) @ att.queries  # (B, S, H)
        grads["attention.weight"] = d_projected.reshape(-1, H).T @ att.keys.reshape(-1, H)
        d_keys += d_projected @ W_a
    else:
        v = params["attention.v.weight"][0]
        pairs = att.hidden_pairs
        grads["attention.v.weight"] = np.einsum("bms,bmsh->h", d_scores, pairs)[None, :]
        d_pre = d_scores[..., None] * v * (1.0 - pairs * pairs)  # (B, M, S, H)
        d_q, d_k = d_pre.sum(axis=2), d_pre.sum(axis=1)  # (B, M, H), (B, S, H)
        W_q, W_k = params["attention.query.weight"], params["attention.key.weight"]
        grads["attention.query.weight"] = d_q.reshape(-1, H).T @ att.queries.reshape(-1, H)
        grads["attention.key.weight"] = d_k.reshape(-1, H).T @ att.keys.reshape(-1, H)
        grads["attention.key.bias"] = d_k.sum(axis=(0, 1))
        d_queries += d_q @ W_q
        d_keys += d_k @ W_k
    return d_queries, d_keys, grads


def _softmax_backward(spec: Any, params: dict[str, np.ndarray], att: Attended,
                      d_rows: np.ndarray, grads: dict[str, np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """attend_backward after the combine layer for :func:`_attend_softmax`'s forward pass,
    in one kernel (seqtool.core.attention_kernels.softmax_attend_backward_into); a general
    score's ∂L/∂W_a goes into ``grads``."""
    from seqtool.core.attention_kernels import softmax_attend_backward_into

    fused = att.fused
    M, B, H = fused.queries.shape
    S = att.keys.shape[1]
    d_queries = np.empty((M, B, H), dtype=d_rows.dtype)
    d_keys = np.empty((S, B, H), dtype=d_rows.dtype)
    d_projected = d_keys if att.projected_keys is None else np.empty_like(d_keys)
    softmax_attend_backward_into(att.weights, fused.queries, att.keys, fused.score_keys,
                                 fused.lengths, fused.temperature, fused.rows, d_rows,
                                 d_queries, d_keys, d_projected, d_projected is d_keys)
    d_queries, d_keys = d_queries.transpose(1, 0, 2), d_keys.transpose(1, 0, 2)
    if att.projected_keys is not None:  # general: k_s = W_a ē_s
        d_projected = np.ascontiguousarray(d_projected.transpose(1, 0, 2))  # (B, S, H)
        grads["attention.weight"] = d_projected.reshape(-1, H).T @ att.keys.reshape(-1, H)
        d_keys += d_projected @ params["attention.weight"]
    return d_queries, d_keys


def reinforce_scores(p: np.ndarray, chosen: np.ndarray, advantage: np.ndarray) -> np.ndarray:
    """∂/∂s of Σ_r A_r log p_r(k_r) for rows p (R, S) = softmax(s_r), the drawn keys k
    (R,) and the advantages A (R,) (the reward less the baseline, scaled; 0 for a row that
    made no choice): A_r (onehot(k_r) − p_r)."""
    onehot = np.zeros_like(p)
    onehot[np.arange(len(chosen)), chosen] = 1.0
    return advantage[:, None] * (onehot - p)


def next_baseline(baseline: float, step_losses: np.ndarray, count: int) -> float:
    """b ← 0.9 b + 0.1 · mean ℓ (the first step sets b to the mean)."""
    mean = float(step_losses.sum()) / max(count, 1)
    return mean if baseline == 0.0 else BASELINE_DECAY * baseline + (1 - BASELINE_DECAY) * mean


def entropy(weights: np.ndarray) -> np.ndarray:
    """H(a_t) = −Σ_s a_ts log a_ts in nats, per row (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(weights > 0, weights * np.log(weights), 0.0)
    return -terms.sum(axis=-1)


__all__ = ["Attended", "BASELINE", "REINFORCE", "SCORES", "attend", "attend_backward",
           "attention_shapes", "draw", "entropy", "init_attention", "next_baseline",
           "reinforce_scores", "scores_of"]
