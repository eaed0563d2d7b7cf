"""The maps behind the selectors: scores s (..., n) -> weights, row by row, and their VJPs.

Plain functions of arrays and numbers; :mod:`seqtool.core.selectors.builtin` makes each
into a registry entry. Everything is float64 NumPy: analysis, not training, so clarity and
exactness come first.
"""

from __future__ import annotations

import numpy as np

from seqtool.core.errors import RunError

# ---------------------------------------------------------------------------------------
# Soft maps


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """w_i = exp(s_i/T) / Σ_j exp(s_j/T), computed as exp((s_i − max s)/T) so it never overflows."""
    s = np.asarray(scores, dtype=np.float64)
    z = np.exp((s - s.max(axis=-1, keepdims=True)) / temperature)
    return z / z.sum(axis=-1, keepdims=True)


def softmax_vjp(weights: np.ndarray, grad: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """∂L/∂s_i = w_i (g_i − Σ_j w_j g_j) / T, the VJP of softmax(s/T).

    Also right for any softmax restricted to a subset (top-k): w_j = 0 off the subset.
    """
    inner = (weights * grad).sum(axis=-1, keepdims=True)
    return weights * (grad - inner) / temperature


def _descending(s: np.ndarray) -> np.ndarray:
    return -np.sort(-s, axis=-1)


def sparsemax(scores: np.ndarray) -> np.ndarray:
    """Euclidean projection of s onto the probability simplex, by sorting.

    With s sorted descending (s_(1) ≥ s_(2) ≥ ...), the support size is
    k = max{k : 1 + k s_(k) > Σ_{j≤k} s_(j)}, the threshold τ = (Σ_{j≤k} s_(j) − 1)/k,
    and w_i = max(s_i − τ, 0).
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s - s.max(axis=-1, keepdims=True)  # shift-invariant; keeps the cumsum small
    # τ ≥ max s − 1, so a score below max − 2 is outside the support whatever it is:
    # raising it to −2 changes no weight, and keeps the sums finite (scores near −1e308
    # overflowed the cumulative sum)
    s = np.maximum(s, -2.0)
    s_sorted = _descending(s)
    cumsum = np.cumsum(s_sorted, axis=-1)
    rank = np.arange(1, s.shape[-1] + 1, dtype=np.float64)
    support = (1.0 + rank * s_sorted > cumsum).sum(axis=-1, keepdims=True)  # a prefix
    tau = (np.take_along_axis(cumsum, support - 1, axis=-1) - 1.0) / support
    return np.maximum(s - tau, 0.0)


def sparsemax_vjp(weights: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """∂L/∂s = 1_S ⊙ (g − mean_S g), S the support {i : w_i > 0}."""
    on = weights > 0
    mean = (grad * on).sum(axis=-1, keepdims=True) / on.sum(axis=-1, keepdims=True)
    return on * (grad - mean)


def entmax15(scores: np.ndarray) -> np.ndarray:
    """1.5-entmax, exact and sort-based (Peters, Niculae & Martins 2019, Algorithm 2).

    w_i = [s_i/2 − τ]₊², with τ found in closed form from the sorted, halved scores x:
    for each candidate support size ρ, τ_ρ = mean_ρ − sqrt((1 − ρ·var_ρ)/ρ); the support is
    the largest ρ with τ_ρ ≤ x_(ρ).
    """
    x = np.asarray(scores, dtype=np.float64) / 2.0
    x = x - x.max(axis=-1, keepdims=True)
    # τ ≥ max x − 1 (no weight exceeds 1), so x below −2 is outside the support whatever
    # it is: raised to −2 it changes no weight, and its square no longer overflows
    x = np.maximum(x, -2.0)
    x_sorted = _descending(x)
    rank = np.arange(1, x.shape[-1] + 1, dtype=np.float64)
    mean = np.cumsum(x_sorted, axis=-1) / rank
    mean_sq = np.cumsum(x_sorted**2, axis=-1) / rank
    delta = (1.0 - rank * (mean_sq - mean**2)) / rank
    tau = mean - np.sqrt(np.maximum(delta, 0.0))
    support = (tau <= x_sorted).sum(axis=-1, keepdims=True)
    tau_star = np.take_along_axis(tau, support - 1, axis=-1)
    return np.maximum(x - tau_star, 0.0) ** 2


ENTMAX_TOLERANCE = 1e-12


def entmax_bisect(scores: np.ndarray, alpha: float) -> np.ndarray:
    """α-entmax for any α > 1 by bisection on the threshold τ.

    w_i = [x_i − τ]₊^{1/(α−1)} with x = (α−1)s, and τ chosen so that Σ w = 1. With max x = 0,
    τ lies in [−1, −n^{1−α}]; the interval is halved until lo and hi are adjacent floats, and
    the better end is kept. Its mass is within 1e-12 of 1, or, where float64 cannot get that
    close (α near 1, or α > 2 with a score at the edge of the support, where one ulp of τ
    moves the mass by more than 1e-12), within the change that one ulp of τ makes. The
    weights are then normalised.
    """
    s = np.asarray(scores, dtype=np.float64)
    # the max first, then the scale: s_i − max s is exact where the two are close, and
    # (α−1)·s first rounds at the scale of s (at s ~ 1e12 the differences lost ~1e-4)
    x = (alpha - 1.0) * (s - s.max(axis=-1, keepdims=True))
    n = x.shape[-1]
    power = 1.0 / (alpha - 1.0)
    lo = np.full(x.shape[:-1] + (1,), -1.0)
    hi = np.full_like(lo, -(float(n) ** (1.0 - alpha)))

    def mass(tau):
        return (np.maximum(x - tau, 0.0) ** power).sum(axis=-1, keepdims=True)

    for _ in range(2000):  # ~1100 halvings separate any two float64 numbers
        mid = 0.5 * (lo + hi)
        if np.all((mid == lo) | (mid == hi)):
            break
        too_much = mass(mid) >= 1.0  # mass falls as τ grows
        lo = np.where(too_much, mid, lo)
        hi = np.where(too_much, hi, mid)
    mass_lo, mass_hi = mass(lo), mass(hi)
    tau = np.where(np.abs(mass_lo - 1.0) <= np.abs(mass_hi - 1.0), lo, hi)
    w = np.maximum(x - tau, 0.0) ** power
    total = w.sum(axis=-1, keepdims=True)
    reachable = np.maximum(ENTMAX_TOLERANCE, np.abs(mass_lo - mass_hi))
    if not np.all(np.abs(total - 1.0) <= reachable):
        worst = float(np.max(np.abs(total - 1.0)))
        raise RunError(f"entmax bisection stopped {worst:.2e} from Σw = 1 (alpha={alpha})")
    return w / total


def entmax(scores: np.ndarray, alpha: float = 1.5) -> np.ndarray:
    """α-entmax: the exact sorting algorithm for α = 1.5, bisection otherwise."""
    if alpha == 1.5:
        return entmax15(scores)
    return entmax_bisect(scores, alpha)


def entmax_vjp(weights: np.ndarray, grad: np.ndarray, alpha: float) -> np.ndarray:
    """∂L/∂s = u ⊙ g − u (Σ u⊙g)/(Σ u), with u_i = w_i^{2−α} on the support, 0 off it.

    (J = diag(u) − u uᵀ/Σu; for α = 2 this is sparsemax's, for α → 1 it tends to softmax's.)
    """
    u = np.where(weights > 0, np.abs(weights) ** (2.0 - alpha), 0.0)
    ug = u * grad
    return ug - u * ug.sum(axis=-1, keepdims=True) / u.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------
# Hard choices


def one_hot_argmax(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-hot of the largest score per row (the lowest index wins a tie), and the tie flags.

    A row has a tie when its first and last maximum differ (two argmax passes are cheaper
    than comparing every score with the maximum).
    """
    s = np.asarray(scores, dtype=np.float64)
    rows = s.reshape(-1, s.shape[-1])  # (m, n) view
    n = rows.shape[-1]
    first = rows.argmax(axis=-1)  # NumPy returns the first maximum
    last = n - 1 - rows[:, ::-1].argmax(axis=-1)
    weights = np.zeros_like(rows)
    weights[np.arange(len(rows)), first] = 1.0
    return weights.reshape(s.shape), (first != last).reshape(s.shape[:-1])


def topk_mask(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the k largest scores per row (ties to the lowest index) and boundary-tie flags.

    O(n) by partition: every score above the k-th largest value v is kept, then the
    lowest-indexed scores equal to v fill the remaining places. A row has a boundary tie
    when some score equal to v is left out.
    """
    s = np.asarray(scores, dtype=np.float64)
    n = s.shape[-1]
    kth = np.partition(s, n - k, axis=-1)[..., n - k : n - k + 1]  # the k-th largest value
    above = s > kth
    equal = s == kth
    places = k - above.sum(axis=-1, keepdims=True)
    mask = above | (equal & (np.cumsum(equal, axis=-1) <= places))
    ties = equal.sum(axis=-1) > places[..., 0]
    return mask, ties


def masked_softmax(scores: np.ndarray, mask: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(s/T) over the scores where ``mask`` is true, 0 elsewhere (shifted by the row's
    max, which the kept scores of top-k include)."""
    s = np.asarray(scores, dtype=np.float64)
    z = np.where(mask, np.exp((s - s.max(axis=-1, keepdims=True)) / temperature), 0.0)
    return z / z.sum(axis=-1, keepdims=True)


def topk_softmax(scores: np.ndarray, k: int, temperature: float = 1.0) -> np.ndarray:
    """softmax(s/T) over the k largest scores of each row, 0 elsewhere."""
    s = np.asarray(scores, dtype=np.float64)
    mask, _ = topk_mask(s, k)
    return masked_softmax(s, mask, temperature)


def gumbel_noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """G = −log(−log U), U ~ Uniform(0, 1) from ``numpy.random.default_rng(seed)``."""
    u = np.random.default_rng(seed).random(shape)
    u = np.maximum(u, np.finfo(np.float64).tiny)  # U = 0 would give G = −∞
    return -np.log(-np.log(u))
