"""Slow, loop-only references, written to be obviously right rather than fast.

Tests compare the library (``comp_``) against these (``ref_``) within the one shared
tolerance :data:`TOL` (``harness.TOLERANCE``). Nothing here imports seqtool: every reference is computed from the
definition, with plain Python loops over plain floats, so that it cannot share a bug with
the code under test.

Selectors (one row of scores ``z`` of length n in, weights of length n out):

    ref_softmax      w_i = exp(z_i/T) / Σ_j exp(z_j/T)
    ref_argmax       one-hot of the largest z_i, the lowest index on a tie
    ref_sparsemax    w = argmin_{p ∈ Δ} ‖p − z‖², by bisection on τ in Σ max(z_i − τ, 0) = 1
    ref_entmax       w_i = [(α−1) z_i − τ]₊^{1/(α−1)}, τ by bisection so that Σ w = 1
    ref_topk         softmax(z/T) over the k largest z_i (lowest index on a tie), 0 elsewhere

Attention (Q (m, d), K (n, d), V (n, d_v)) and the vanilla RNN, with explicit loops;
:func:`numeric_grad`, a central finite difference; the LSTM's and GRU's states over plain
scalars; and :func:`ref_model_logits`, a whole trained model (embedding, stacked cells, head)
from its checkpoint's arrays.
"""

from __future__ import annotations

import cmath
import math

import numpy as np

from harness import TOLERANCE  # tests/harness.py: the one tolerance table

# The one tolerance of every ref_ vs comp_ comparison (float64), from harness.TOLERANCE.
TOL = TOLERANCE["reference"][np.dtype(np.float64)]
# Analytic gradients vs numeric_grad (ε = 1e-6): truncation ~ε² and rounding ~1e-16/ε are
# both near 1e-10, so 1e-7 (relative to the largest entry, at least 1) has a wide margin.
FD_TOL = TOLERANCE["finite-difference"][np.dtype(np.float64)]


# ---------------------------------------------------------------------------------------
# Selectors, one row at a time


def _floats(row) -> list[float]:
    return [float(v) for v in np.asarray(row, dtype=np.float64).ravel()]


def ref_softmax(row, T: float = 1.0) -> np.ndarray:
    """w_i = exp((z_i − max z)/T) / Σ_j exp((z_j − max z)/T)."""
    z = _floats(row)
    top = max(z)
    e = [math.exp((v - top) / T) for v in z]
    total = 0.0
    for v in e:
        total += v
    return np.array([v / total for v in e])


def ref_argmax(row) -> np.ndarray:
    """One-hot of the largest score; a strict ``>`` keeps the lowest index on a tie."""
    z = _floats(row)
    best = 0
    for i in range(1, len(z)):
        if z[i] > z[best]:
            best = i
    w = [0.0] * len(z)
    w[best] = 1.0
    return np.array(w)


def _bisect(mass, lo: float, hi: float) -> float:
    """The τ in [lo, hi] where the decreasing function ``mass`` crosses 1.

    Halves [lo, hi] (mass(lo) ≥ 1 ≥ mass(hi)) until it cannot shrink in float64, i.e. to
    one unit in the last place of τ; returns the lower end (mass ≥ 1 there).
    """
    while True:
        mid = 0.5 * (lo + hi)
        if mid == lo or mid == hi:
            return lo
        if mass(mid) >= 1.0:
            lo = mid
        else:
            hi = mid


def ref_sparsemax_threshold(row) -> tuple[float, list[float]]:
    """τ and the shifted scores x = z − max z with Σ_i max(x_i − τ, 0) = 1 (bisection).

    Shifting by the largest score changes nothing (the projection is shift-equivariant) and
    puts τ in [−1, 0]: at τ = −1 the largest x alone gives mass 1, at τ = 0 the mass is 0.
    """
    z = _floats(row)
    top = max(z)
    x = [v - top for v in z]

    def mass(tau):
        total = 0.0
        for v in x:
            if v > tau:
                total += v - tau
        return total

    return _bisect(mass, -1.0, 0.0), x


def ref_sparsemax(row) -> np.ndarray:
    """Euclidean projection onto the simplex, w_i = max(z_i − τ, 0), with no sorting."""
    tau, x = ref_sparsemax_threshold(row)
    return np.array([max(v - tau, 0.0) for v in x])


def ref_entmax_threshold(row, alpha: float) -> tuple[float, list[float]]:
    """τ and x = (α−1)(z − max z) with Σ_i [x_i − τ]₊^{1/(α−1)} = 1 (bisection).

    With max x = 0: at τ = −1 the largest x alone gives mass 1; at τ = −n^{1−α} every
    term is at most (n^{1−α})^{1/(α−1)} = 1/n, so the mass is at most 1.
    """
    z = _floats(row)
    top = max(z)
    x = [(alpha - 1.0) * (v - top) for v in z]
    power = 1.0 / (alpha - 1.0)

    def mass(tau):
        total = 0.0
        for v in x:
            if v > tau:
                total += (v - tau) ** power
        return total

    return _bisect(mass, -1.0, -(float(len(x)) ** (1.0 - alpha))), x


def ref_entmax(row, alpha: float, normalise: bool = True) -> np.ndarray:
    """α-entmax w_i = [x_i − τ]₊^{1/(α−1)}; ``normalise=False`` returns the raw bisection."""
    tau, x = ref_entmax_threshold(row, alpha)
    power = 1.0 / (alpha - 1.0)
    w = [(v - tau) ** power if v > tau else 0.0 for v in x]
    if normalise:
        total = 0.0
        for v in w:
            total += v
        w = [v / total for v in w]
    return np.array(w)


def ref_topk(row, k: int, T: float = 1.0) -> np.ndarray:
    """softmax(z/T) over the k largest scores (picked one by one, lowest index on a tie)."""
    z = _floats(row)
    kept: list[int] = []
    for _ in range(k):
        best = None
        for i in range(len(z)):
            if i not in kept and (best is None or z[i] > z[best]):
                best = i
        kept.append(best)
    top = max(z)
    e = [math.exp((z[i] - top) / T) if i in kept else 0.0 for i in range(len(z))]
    total = 0.0
    for v in e:
        total += v
    return np.array([v / total for v in e])


# ---------------------------------------------------------------------------------------
# Attention


def ref_attention(Q, K, V, weights_fn, scale: float):
    """Scores S_ji = scale · Σ_c Q_jc K_ic, W_j = weights_fn(S_j), O_jc = Σ_i W_ji V_ic.

    Returns (S (m, n), W (m, n), O (m, d_v)), every sum an explicit loop.
    """
    Q, K, V = (np.asarray(a, dtype=np.float64) for a in (Q, K, V))
    m, d = Q.shape
    n, d_v = V.shape
    S = np.zeros((m, n))
    for j in range(m):
        for i in range(n):
            dot = 0.0
            for c in range(d):
                dot += float(Q[j, c]) * float(K[i, c])
            S[j, i] = scale * dot
    W = np.zeros((m, n))
    for j in range(m):
        W[j] = weights_fn(S[j])
    O = np.zeros((m, d_v))
    for j in range(m):
        for c in range(d_v):
            total = 0.0
            for i in range(n):
                total += W[j, i] * float(V[i, c])
            O[j, c] = total
    return S, W, O


# ---------------------------------------------------------------------------------------
# Finite differences


def numeric_grad(f, x, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂x by central differences (f(x + ε e_i) − f(x − ε e_i)) / 2ε, in float64."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += eps
        down[index] -= eps
        grad[index] = (float(f(up)) - float(f(down))) / (2.0 * eps)
    return grad


# ---------------------------------------------------------------------------------------
# The vanilla RNN: h_t = f(W_xh x_t + W_hh h_{t−1} + b_h), one sequence (no batch)


def _f(z: float, activation: str) -> float:
    if activation == "tanh":
        return math.tanh(z)
    if activation == "sigmoid":
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    if activation == "relu":
        return z if z > 0 else 0.0
    if activation == "identity":
        return z
    raise ValueError(activation)


def _f_prime(z: float, activation: str) -> float:
    if activation == "tanh":
        return 1.0 - math.tanh(z) ** 2
    if activation == "sigmoid":
        s = _f(z, "sigmoid")
        return s * (1.0 - s)
    if activation == "relu":
        return 1.0 if z > 0 else 0.0
    return 1.0


def _float64(*arrays):
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def ref_rnn_forward(x, W_xh, W_hh, b_h, h0, activation: str = "tanh") -> np.ndarray:
    """h (T+1, H) with h[0] = h0, for inputs x (T, D); every product an explicit loop."""
    h, _ = _ref_rnn_states(x, W_xh, W_hh, b_h, h0, activation)
    return h


def _ref_rnn_states(x, W_xh, W_hh, b_h, h0, activation):
    """h (T+1, H) and z (T, H): z_t,i = Σ_c W_xh[i,c] x_t,c + Σ_j W_hh[i,j] h_{t−1},j + b_i."""
    x, W_xh, W_hh, b_h, h0 = _float64(x, W_xh, W_hh, b_h, h0)
    T, D = x.shape
    H = W_hh.shape[0]
    h = np.zeros((T + 1, H))
    z = np.zeros((T, H))
    h[0] = h0
    for t in range(T):
        for i in range(H):
            total = float(b_h[i])
            for c in range(D):
                total += W_xh[i, c] * x[t, c]
            for j in range(H):
                total += W_hh[i, j] * h[t, j]
            z[t, i] = total
            h[t + 1, i] = _f(total, activation)
    return h, z


def ref_rnn_bptt(x, W_xh, W_hh, b_h, h0, activation, G, truncate=None) -> dict:
    """Gradients of L = Σ_t G_t · h_t (G (T, H) = ∂L/∂h_t through the outputs, t = 1..T).

    The double sum of BPTT, written out: for each loss term t and each step s = t, t−1, ...
    (at most ``truncate`` steps, all of them when None), the signal δ = ∂L_t/∂h_s turns into
    dz = δ ⊙ f'(z_s), which adds dz x_sᵀ to ∂W_xh, dz h_{s−1}ᵀ to ∂W_hh, dz to ∂b_h and
    W_xhᵀ dz to ∂x_s; then δ ← W_hhᵀ dz moves to h_{s−1} (and lands in ∂h_0 at s = 1).
    Returns a dict with W_xh, W_hh, b_h, h0 and x.
    """
    x, W_xh, W_hh, b_h, h0 = _float64(x, W_xh, W_hh, b_h, h0)
    G = np.asarray(G, dtype=np.float64)
    h, z = _ref_rnn_states(x, W_xh, W_hh, b_h, h0, activation)
    T, D = x.shape
    H = W_hh.shape[0]
    reach = T if truncate is None else int(truncate)
    grads = {"W_xh": np.zeros((H, D)), "W_hh": np.zeros((H, H)), "b_h": np.zeros(H),
             "h0": np.zeros(H), "x": np.zeros((T, D))}
    # f'(z) of every step, entry by entry (the scalar formulas above)
    slope = np.array([[_f_prime(float(v), activation) for v in row] for row in z])
    # Each (t, s) term on its own, as the double sum has it; within a term the sums over
    # i and j are NumPy's (outer products and matrix-vector products of one step)
    for t in range(1, T + 1):  # loss term L_t, through h_t
        delta = G[t - 1].copy()
        for s in range(t, max(t - reach, 0), -1):  # back through steps s = t, ..., t−reach+1
            dz = delta * slope[s - 1]
            grads["b_h"] += dz
            grads["W_xh"] += np.outer(dz, x[s - 1])
            grads["x"][s - 1] += W_xh.T @ dz
            grads["W_hh"] += np.outer(dz, h[s - 1])
            delta = W_hh.T @ dz
            if s == 1:
                grads["h0"] += delta
    return grads


# ---------------------------------------------------------------------------------------
# LSTM and GRU (PyTorch's equations), one sequence, and their gradients by complex step
#
# The gated references are written over plain Python scalars with cmath, so that they run
# on complex numbers too: the complex-step derivative ∂L/∂θ = Im L(θ + iε) / ε (ε = 1e-30)
# has no subtraction and so no cancellation, exact to rounding. It shares nothing with the
# hand-derived backward passes it checks.

COMPLEX_STEP = 1e-30


def _sig(a):
    return 1.0 / (1.0 + cmath.exp(-a))


def _affine(W, v, b, row: int):
    """Σ_c W[row, c] v[c] + b[row], as a plain loop."""
    total = b[row]
    for col in range(len(v)):
        total += W[row][col] * v[col]
    return total


def ref_lstm_states(x, W_ih, W_hh, b_ih, b_hh, h0, c0):
    """h, c (T+1, H) as lists of lists; every entry may be complex."""
    T, H = len(x), len(h0)
    h, c = [list(h0)], [list(c0)]
    for t in range(T):
        h_new, c_new = [], []
        for j in range(H):
            pre = [_affine(W_ih, x[t], b_ih, q * H + j) + _affine(W_hh, h[t], b_hh, q * H + j)
                   for q in range(4)]
            i, f, g, o = _sig(pre[0]), _sig(pre[1]), cmath.tanh(pre[2]), _sig(pre[3])
            c_new.append(f * c[t][j] + i * g)
            h_new.append(o * cmath.tanh(c_new[j]))
        h.append(h_new)
        c.append(c_new)
    return h, c


def ref_gru_states(x, W_ih, W_hh, b_ih, b_hh, h0):
    """h (T+1, H) as lists of lists; every entry may be complex."""
    T, H = len(x), len(h0)
    h = [list(h0)]
    for t in range(T):
        h_new = []
        for j in range(H):
            r = _sig(_affine(W_ih, x[t], b_ih, j) + _affine(W_hh, h[t], b_hh, j))
            z = _sig(_affine(W_ih, x[t], b_ih, H + j) + _affine(W_hh, h[t], b_hh, H + j))
            n = cmath.tanh(_affine(W_ih, x[t], b_ih, 2 * H + j)
                           + r * _affine(W_hh, h[t], b_hh, 2 * H + j))
            h_new.append((1 - z) * n + z * h[t][j])
        h.append(h_new)
    return h


def _as_lists(a):
    return np.asarray(a, dtype=np.complex128).tolist()


def ref_gated_loss(cell: str, args: dict, G, A=None):
    """L = Σ_t G_t · h_t (t = 1..T) + A · c_T (lstm, A optional), for one sequence.

    ``args`` holds x (T, D), weight_ih, weight_hh, bias_ih, bias_hh, h0 and (lstm) c0.
    """
    a = {k: _as_lists(v) for k, v in args.items()}
    if cell == "lstm":
        h, c = ref_lstm_states(a["x"], a["weight_ih"], a["weight_hh"], a["bias_ih"],
                               a["bias_hh"], a["h0"], a["c0"])
    else:
        h, c = ref_gru_states(a["x"], a["weight_ih"], a["weight_hh"], a["bias_ih"],
                              a["bias_hh"], a["h0"]), None
    total = 0
    for t in range(len(G)):
        for j in range(len(G[t])):
            total += G[t][j] * h[t + 1][j]
    if A is not None:
        for j in range(len(A)):
            total += A[j] * c[-1][j]
    return total


def ref_gated_gradients(cell: str, args: dict, G, A=None) -> dict:
    """∂L/∂ of every entry of ``args`` by complex step (see :func:`ref_gated_loss`)."""
    base = {k: np.asarray(v, dtype=np.float64) for k, v in args.items()}
    G = np.asarray(G, dtype=np.float64).tolist()
    A = None if A is None else np.asarray(A, dtype=np.float64).tolist()
    grads = {}
    for name, value in base.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            moved = value.astype(np.complex128)
            moved[index] += 1j * COMPLEX_STEP
            grad[index] = ref_gated_loss(cell, {**base, name: moved}, G, A).imag / COMPLEX_STEP
        grads[name] = grad
    return grads


# ---------------------------------------------------------------------------------------
# A whole model, from a checkpoint's arrays (torch's names and layouts)


def ref_layer_states(cell: str, x, W_ih, W_hh, b_ih, b_hh, nonlinearity: str = "tanh"):
    """h_1..h_T (T, H) of one layer over x (T, D) from zero initial state, as float64.

    rnn: h_t = f(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh); gru and lstm as torch.nn.GRU/LSTM
    (gates r,z,n and i,f,g,o), through :func:`ref_gru_states` / :func:`ref_lstm_states`.
    """
    x, W_ih, W_hh, b_ih, b_hh = _float64(x, W_ih, W_hh, b_ih, b_hh)
    H = W_hh.shape[1]
    if cell == "rnn":
        return ref_rnn_forward(x, W_ih, W_hh, b_ih + b_hh, np.zeros(H), nonlinearity)[1:]
    args = (x.tolist(), W_ih.tolist(), W_hh.tolist(), b_ih.tolist(), b_hh.tolist(), [0.0] * H)
    if cell == "gru":
        h = ref_gru_states(*args)
    elif cell == "lstm":
        h, _ = ref_lstm_states(*args, [0.0] * H)
    else:
        raise ValueError(f"no reference for the cell {cell!r}")
    return np.array(h[1:], dtype=np.complex128).real


def ref_model_logits(cell: str, params: dict, ids, nonlinearity: str = "tanh") -> np.ndarray:
    """y_t = W h^L_t + b at every step t (T, O) for one sequence of token ids (T,):
    x_t = E[id_t], then each layer's states feed the next; float64 throughout."""
    x = np.asarray(params["embedding.weight"], dtype=np.float64)[np.asarray(ids)]
    layer = 0
    while f"rnn.weight_ih_l{layer}" in params:
        x = ref_layer_states(cell, x, *(params[f"rnn.{name}_l{layer}"] for name in
                                        ("weight_ih", "weight_hh", "bias_ih", "bias_hh")),
                             nonlinearity=nonlinearity)
        layer += 1
    W, b = _float64(params["head.weight"], params["head.bias"])
    T, O = x.shape[0], W.shape[0]
    y = np.zeros((T, O))
    for t in range(T):
        for o in range(O):
            total = float(b[o])
            for j in range(W.shape[1]):
                total += W[o, j] * x[t, j]
            y[t, o] = total
    return y


def ref_log_softmax(row) -> np.ndarray:
    """log w_i = z_i − max z − log Σ_j exp(z_j − max z), as plain floats."""
    z = _floats(row)
    top = max(z)
    total = 0.0
    for v in z:
        total += math.exp(v - top)
    return np.array([v - top - math.log(total) for v in z])
