"""The seven built-in selectors, one registry entry each, in the order seqtool lists them.

=============  =====================================================  ================
name           forward                                                gradient
=============  =====================================================  ================
softmax        w = exp(s/T) / Σ exp(s/T)                              exact
argmax         w = one_hot(argmax s), ties to the lowest index        zero
sparsemax      w = argmin_{p ∈ Δ} ‖p − s‖²  (Martins & Astudillo)     exact
entmax         w_i = [(α−1)s_i − τ]₊^{1/(α−1)}, Σ w = 1 (Peters+ 19)   exact
topk           softmax(s/T) over the k largest scores, 0 elsewhere    exact
gumbel         softmax((s + G)/T), G ~ Gumbel(0, 1) from the seed     exact (hard: surrogate)
st-argmax      one_hot(argmax s) forward, softmax(s/T) backward       surrogate
=============  =====================================================  ================

Each entry's ``explain`` writes ``--explain``'s selection step for one query, with the
number format the renderer passes in.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from seqtool.core.errors import InputError
from seqtool.core.selectors.maps import (
    entmax, entmax_vjp, gumbel_noise, masked_softmax, one_hot_argmax, softmax, softmax_vjp,
    sparsemax, sparsemax_vjp, topk_mask,
)
from seqtool.core.selectors.registry import (
    Forward, NumberFormat, Param, Selector, register_selector, vector,
)

# ---------------------------------------------------------------------------------------
# Parameters (shared by every selector that reads them)


def _check_temperature(value: Any, n: int) -> float:
    if not (np.isfinite(value) and value > 0):
        raise InputError("temperature", f"must be a finite number > 0, got {value}")
    return float(value)


def _check_alpha(value: Any, n: int) -> float:
    if not (np.isfinite(value) and value > 1):
        raise InputError("alpha", f"must be a finite number > 1, got {value}")
    return float(value)


def _check_k(value: Any, n: int) -> int:
    if isinstance(value, bool) or int(value) != value or not 1 <= value <= n:
        raise InputError("k", f"must be a whole number in 1..{n} (the number of keys), got {value}")
    return int(value)


def _check_seed(value: Any, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise InputError("seed", f"must be a whole number ≥ 0, got {value}")
    return int(value)


def _check_hard(value: Any, n: int) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError("hard", f"must be true or false, got {value}")
    return bool(value)


DEFAULT_TOPK = 2

TEMPERATURE = Param("temperature", 1.0, _check_temperature,
                    "Temperature T > 0 of softmax, topk, gumbel and st-argmax's backward.",
                    always_checked=True)
ALPHA = Param("alpha", 1.5, _check_alpha,
              "entmax alpha > 1 (1.5 exact; 2 = sparsemax; near 1 ≈ softmax).",
              always_checked=True)
K = Param("k", lambda n: min(DEFAULT_TOPK, n), _check_k,
          f"topk: how many scores to keep, 1..n (default {DEFAULT_TOPK}).")
SEED = Param("seed", 0, _check_seed, "Seed of the Gumbel noise.")
HARD = Param("hard", False, _check_hard,
             "gumbel: one-hot forward, soft backward (straight-through).")

# ---------------------------------------------------------------------------------------
# --explain helpers


def _winner(s: np.ndarray, num: NumberFormat) -> str:
    best = int(np.argmax(s))
    tied = np.flatnonzero(s == s[best])
    if len(tied) > 1:
        names = ", ".join(f"s_{i}" for i in tied)
        return (f"{names} tie at {num(s[best])}; the lowest index wins, so the choice is "
                f"index {best}")
    rest = np.delete(s, best)
    runner = f" (the next largest is {num(rest.max())})" if len(rest) else ""
    return f"the largest is s_{best} = {num(s[best])}{runner}, so the choice is index {best}"


def _softmax_lines(s: np.ndarray, T: float, w: np.ndarray, num: NumberFormat,
                   label: str = "s") -> list[str]:
    shift = s.max()
    e = np.exp((s - shift) / T)
    return [
        f"   exp(({label}_i − {num(shift)})/T) = {vector(e, num)}   (shifted by the max: same "
        "weights, no overflow)",
        f"   normaliser Z = Σ = {num(e.sum())}",
        f"   w_i = exp(...)/Z = {vector(w, num)}",
    ]


# ---------------------------------------------------------------------------------------
# softmax


def _softmax_forward(s: np.ndarray, temperature: float) -> Forward:
    return Forward(softmax(s, temperature))


def _softmax_backward(fwd: Forward, g: np.ndarray, temperature: float) -> np.ndarray:
    return softmax_vjp(fwd.weights, g, temperature)


def _softmax_explain(s, w, noise, params, num) -> list[str]:
    T = params["temperature"]
    return [f", T = {num(T)}: w_i = exp(s_i/T) / Σ_j exp(s_j/T)", *_softmax_lines(s, T, w, num)]


# ---------------------------------------------------------------------------------------
# argmax and its straight-through twin


def _argmax_forward(s: np.ndarray) -> Forward:
    w, ties = one_hot_argmax(s)
    return Forward(w, ties)


def _argmax_explain(s, w, noise, params, num) -> list[str]:
    return [f": {_winner(s, num)}; w = {vector(w, num)}"]


def _st_argmax_forward(s: np.ndarray, temperature: float) -> Forward:
    w, ties = one_hot_argmax(s)
    return Forward(w, ties, saved=softmax(s, temperature))


def _soft_backward(fwd: Forward, g: np.ndarray, temperature: float, **_: Any) -> np.ndarray:
    """Jᵀg of softmax(·/T) at the soft weights the forward pass saved."""
    return softmax_vjp(fwd.saved, g, temperature)


def _st_argmax_explain(s, w, noise, params, num) -> list[str]:
    T = params["temperature"]
    soft = np.exp((s - s.max()) / T)
    return [*_argmax_explain(s, w, noise, params, num),
            f"   backward pass uses softmax(s/T), T = {num(T)}: {vector(soft / soft.sum(), num)}"]


# ---------------------------------------------------------------------------------------
# sparsemax and entmax


def _sparsemax_forward(s: np.ndarray) -> Forward:
    return Forward(sparsemax(s))


def _sparsemax_backward(fwd: Forward, g: np.ndarray) -> np.ndarray:
    return sparsemax_vjp(fwd.weights, g)


def _sparsemax_explain(s, w, noise, params, num) -> list[str]:
    support = np.flatnonzero(w > 0)
    tau = float(np.mean(s[support]) - 1.0 / len(support))
    return [": w_i = max(s_i − τ, 0), the projection of s onto the simplex",
            f"   sorted scores {vector(np.sort(s)[::-1], num)}; support {support.tolist()} "
            f"(size {len(support)})",
            f"   τ = (Σ_support s_i − 1)/{len(support)} = {num(tau)}; w = {vector(w, num)}"]


def _entmax_forward(s: np.ndarray, alpha: float) -> Forward:
    return Forward(entmax(s, alpha))


def _entmax_backward(fwd: Forward, g: np.ndarray, alpha: float) -> np.ndarray:
    return entmax_vjp(fwd.weights, g, alpha)


def _entmax_explain(s, w, noise, params, num) -> list[str]:
    a = params["alpha"]
    best = int(np.argmax(w))
    tau = (a - 1.0) * s[best] - w[best] ** (a - 1.0)
    return [f", α = {num(a)}: w_i = [(α−1)s_i − τ]₊^(1/(α−1))",
            f"   τ = {num(tau)} makes Σ w = 1; support {np.flatnonzero(w > 0).tolist()}; "
            f"w = {vector(w, num)}"]


# ---------------------------------------------------------------------------------------
# top-k


def _topk_forward(s: np.ndarray, k: int, temperature: float) -> Forward:
    mask, ties = topk_mask(s, k)
    return Forward(masked_softmax(s, mask, temperature), ties)


def _topk_backward(fwd: Forward, g: np.ndarray, k: int, temperature: float) -> np.ndarray:
    return softmax_vjp(fwd.weights, g, temperature)  # w_j = 0 off the kept scores


def _topk_explain(s, w, noise, params, num) -> list[str]:
    kept = np.flatnonzero(w > 0).tolist()
    return [f", k = {params['k']}, T = {num(params['temperature'])}: keep the k largest scores "
            f"(indices {kept}), softmax over them, 0 elsewhere",
            f"   w = {vector(w, num)}"]


# ---------------------------------------------------------------------------------------
# Gumbel-softmax


def _gumbel_forward(s: np.ndarray, temperature: float, seed: int, hard: bool) -> Forward:
    noise = gumbel_noise(s.shape, seed)
    soft = softmax(s + noise, temperature)  # reparameterised: the noise is fixed by the seed
    if hard:
        w, ties = one_hot_argmax(s + noise)
        return Forward(w, ties, noise, saved=soft)
    return Forward(soft, None, noise, saved=soft)


def _gumbel_soft(s: np.ndarray, temperature: float, seed: int, hard: bool) -> np.ndarray:
    return softmax(s + gumbel_noise(s.shape, seed), temperature)


def _gumbel_explain(s, w, noise, params, num) -> list[str]:
    T = params["temperature"]
    lines = [f", T = {num(T)}, seed {params['seed']}: "
             "w = softmax((s + G)/T), G_i = −log(−log U_i)",
             f"   noise G = {vector(noise, num)}; s + G = {vector(s + noise, num)}"]
    if params["hard"]:
        return lines + [f"   hard: {_winner(s + noise, num)}; w = {vector(w, num)} "
                        "(the backward pass uses the soft weights)"]
    return lines + _softmax_lines(s + noise, T, w, num, label="(s+G)")


# ---------------------------------------------------------------------------------------
# The entries, in the order seqtool lists them

BUILTIN = (
    Selector("softmax", _softmax_forward, _softmax_backward, (TEMPERATURE,), "exact",
             formula="w = exp(s/T) / Σ exp(s/T)", explain=_softmax_explain),
    Selector("argmax", _argmax_forward, None, (), "zero",
             formula="w = one_hot(argmax s), ties to the lowest index",
             explain=_argmax_explain, one_hot=True),
    Selector("sparsemax", _sparsemax_forward, _sparsemax_backward, (), "exact",
             formula="w = argmin_{p ∈ Δ} ‖p − s‖²", explain=_sparsemax_explain),
    Selector("entmax", _entmax_forward, _entmax_backward, (ALPHA,), "exact",
             formula="w_i = [(α−1)s_i − τ]₊^{1/(α−1)}, Σ w = 1", explain=_entmax_explain),
    Selector("topk", _topk_forward, _topk_backward, (K, TEMPERATURE), "exact",
             formula="softmax(s/T) over the k largest scores, 0 elsewhere",
             explain=_topk_explain, tie_score="k-th largest score"),
    Selector("gumbel", _gumbel_forward, _soft_backward, (TEMPERATURE, SEED, HARD),
             lambda p: "surrogate" if p["hard"] else "exact", soft=_gumbel_soft,
             formula="softmax((s + G)/T), G ~ Gumbel(0, 1) from the seed",
             explain=_gumbel_explain, one_hot=lambda p: p["hard"]),
    Selector("st-argmax", _st_argmax_forward, _soft_backward, (TEMPERATURE,), "surrogate",
             soft=lambda s, temperature: softmax(s, temperature),
             formula="one_hot(argmax s) forward, softmax(s/T) backward",
             explain=_st_argmax_explain, one_hot=True),
)

for _entry in BUILTIN:
    register_selector(_entry)
