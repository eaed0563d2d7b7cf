"""Selection over the rows of a padded batch: attention over sequences of different lengths.

A batch of sequences is right-padded to its longest one, T steps; row b has ``lengths[b]``
real steps. Attention over a row must never give weight to, or take gradient from, a padded
step. Setting the padded scores to −∞ is not enough for every selector: a Gumbel draw or
sparsemax's threshold still looks at them, and a NaN in the padding would reach the real
steps. So :func:`select_rows` runs the selector on each row's real steps only (rows of one
length together, as one (rows, n) call):

    w_b = select(s_b[:n_b]) ⊕ 0_{T − n_b},     ∂L/∂s_b = vjp_b(∂L/∂w_b[:n_b]) ⊕ 0_{T − n_b}

with top-k's k taken as min(k, n_b) on a row shorter than k.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqtool.core.errors import InputError
from seqtool.core.selectors.builtin import BUILTIN
from seqtool.core.selectors.registry import Selection, get_selector, resolve_params, select

_SOFTMAX = next(entry for entry in BUILTIN if entry.name == "softmax")


def select_rows(name: str, scores: np.ndarray, lengths: np.ndarray, **params: Any) -> Selection:
    """Selector ``name`` over each row of ``scores`` (B, T) restricted to its first
    ``lengths[b]`` steps (1 ≤ lengths[b] ≤ T); padded steps get weight 0 and gradient 0.
    The Selection's ``ties`` and ``noise`` are per row as :func:`select` gives them."""
    s = np.asarray(scores, dtype=np.float64)
    lengths = np.asarray(lengths)
    if s.ndim != 2 or lengths.shape != s.shape[:1]:
        raise InputError("scores", f"are {s.shape} with lengths {lengths.shape}; expected "
                         "(B, T) and (B,)")
    B, T = s.shape
    if B and (lengths.min() < 1 or lengths.max() > T):
        raise InputError("lengths", f"must be from 1 to {T}, got {lengths.min()}..{lengths.max()}")
    entry = get_selector(name)
    if entry.forward is _SOFTMAX.forward:
        return _masked_softmax(s, lengths, resolve_params(name, T, params)["temperature"])
    weights = np.zeros((B, T))
    ties = np.zeros(B, dtype=bool)
    noise = None
    groups = []  # (rows, n, Selection)
    for n in np.unique(lengths):
        rows = np.flatnonzero(lengths == n)
        given = dict(params)
        if "k" in entry.param_names and given.get("k") is not None:
            given["k"] = min(int(given["k"]), int(n))
        chosen = select(name, s[rows, :n], **given)
        weights[rows, :n] = chosen.weights
        ties[rows] = chosen.ties
        if chosen.noise is not None:
            noise = np.zeros((B, T)) if noise is None else noise
            noise[rows, :n] = chosen.noise
        groups.append((rows, int(n), chosen))

    def backward(g: np.ndarray) -> np.ndarray:
        grad = np.zeros((B, T))
        for rows, n, chosen in groups:
            grad[rows, :n] = chosen.vjp(g[rows, :n])
        return grad

    kind = groups[0][2].gradient if groups else entry.gradient_kind({})
    return Selection(name, weights, kind, ties, backward, noise)


def _masked_softmax(s: np.ndarray, lengths: np.ndarray, temperature: float) -> Selection:
    """softmax(s_b[:n_b] / T) ⊕ 0 for every row at once, and its vjp w ⊙ (g − Σ w g) / T,
    0 on the padding: one pass per row in a kernel (seqtool.core.selectors.masked_kernels),
    which reads only the real steps (a NaN or ∞ in the padding never reaches them)."""
    from seqtool.core.selectors.masked_kernels import masked_softmax_into

    n = np.ascontiguousarray(lengths, dtype=np.int64)
    s = np.ascontiguousarray(s, dtype=np.float64)
    w = np.empty_like(s)
    masked_softmax_into(s, n, float(temperature), w)
    return softmax_selection(w, n, temperature)


def is_softmax(name: str) -> bool:
    """Whether the registered selector ``name`` is the softmax (under any name)."""
    return get_selector(name).forward is _SOFTMAX.forward


def softmax_selection(w: np.ndarray, lengths: np.ndarray, temperature: float) -> Selection:
    """The Selection of masked softmax weights w (B, T) float64 (zero past each row's
    ``lengths``), however they were computed: its vjp is w ⊙ (g − Σ w g) / T on the real
    steps, 0 on the padding."""
    from seqtool.core.selectors.masked_kernels import masked_softmax_vjp_into

    n = np.ascontiguousarray(lengths, dtype=np.int64)
    t = float(temperature)

    def backward(g: np.ndarray) -> np.ndarray:
        out = np.empty_like(w)
        masked_softmax_vjp_into(w, np.ascontiguousarray(g, dtype=np.float64), n, t, out)
        return out

    return Selection("softmax", w, "exact", np.zeros(len(w), dtype=bool), backward, None)


__all__ = ["is_softmax", "select_rows", "softmax_selection"]
