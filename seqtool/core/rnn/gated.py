"""GRU and LSTM: forward passes and backpropagation through time, as numba kernels.

The equations and layouts are PyTorch's (``torch.nn.GRU`` / ``torch.nn.LSTM``), with
σ the logistic sigmoid and ⊙ the element-wise product:

LSTM (gates stacked i, f, g, o in ``weight_ih`` (4H, D), ``weight_hh`` (4H, H)):
    i = σ(W_ii x + b_ii + W_hi h + b_hi)     f = σ(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = σ(W_io x + b_io + W_ho h + b_ho)
    c' = f ⊙ c + i ⊙ g                        h' = o ⊙ tanh(c')

GRU (gates stacked r, z, n in ``weight_ih`` (3H, D), ``weight_hh`` (3H, H)):
    r = σ(W_ir x + b_ir + W_hr h + b_hr)     z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h' = (1 − z) ⊙ n + z ⊙ h

Shapes are batched and time-major: x (T, B, D), h and c (T+1, B, H) with h[0] = h_0.

As for the vanilla RNN, only the recurrences run step by step: the input projection
P = X W_ihᵀ + b_ih of all steps is one matrix product before the loop; the backward loop
produces the gradients of the gate pre-activations (dA, (T, B, G·H)), and
dW_ih = Σ_t dA_tᵀ x_t, dW_hh = Σ_t dA_tᵀ h_{t−1}, the biases and ∂L/∂x are single matrix
products after it.

The element-wise helpers below repeat the vanilla module's on purpose: numba's cache keys a
kernel on its own file only, so a helper imported from another file could change without
the cached kernels that inline it being rebuilt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seqtool.core.rnn.jit import kernel

LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")

# Below this many multiply-adds per step a plain loop beats a BLAS call (call overhead).
LOOP_BELOW = 64 * 64


# ---------------------------------------------------------------------------------------
# Element-wise pieces (inlined into the kernels)


@kernel
def _sigmoid(a):
    """σ(a) = 1 / (1 + e^{−a}), with e^{−|a|} so that no exp overflows."""
    e = math.exp(-abs(a))
    return 1.0 / (1.0 + e) if a >= 0 else e / (1.0 + e)


@kernel
def _tanh(a):
    """tanh(a) = (1 − e^{−2|a|}) / (1 + e^{−2|a|}) · sign(a), overflow-free."""
    e = math.exp(-2.0 * abs(a))
    t = (1.0 - e) / (1.0 + e)
    return t if a >= 0 else -t


@kernel
def _matmul_into(out, a, w):
    """out = a @ w for (B, K) × (K, N): a loop for small products, BLAS otherwise."""
    B, K = a.shape
    N = w.shape[1]
    if B * K * N > LOOP_BELOW:
        np.dot(a, w, out)
        return
    for b in range(B):
        for n in range(N):
            out[b, n] = 0.0
        for k in range(K):
            a_bk = a[b, k]
            for n in range(N):
                out[b, n] += a_bk * w[k, n]


# ---------------------------------------------------------------------------------------
# LSTM kernels


@kernel
def _lstm_forward(P, W_hh_T, b_hh, h0, c0):
    """The LSTM recurrence. P (T, B, 4H) holds X W_ihᵀ + b_ih; W_hh_T is W_hhᵀ (H, 4H).

    Returns h, c (T+1, B, H) and the gate activations i, f, g, o (T, B, 4H).
    """
    T, B, G = P.shape
    H = G // 4
    h = np.empty((T + 1, B, H), dtype=P.dtype)
    c = np.empty((T + 1, B, H), dtype=P.dtype)
    gates = np.empty((T, B, G), dtype=P.dtype)
    h[0] = h0
    c[0] = c0
    rec = np.empty((B, G), dtype=P.dtype)
    for t in range(T):
        _matmul_into(rec, h[t], W_hh_T)
        for b in range(B):
            for j in range(H):
                i = _sigmoid(P[t, b, j] + rec[b, j] + b_hh[j])
                f = _sigmoid(P[t, b, H + j] + rec[b, H + j] + b_hh[H + j])
                g = _tanh(P[t, b, 2 * H + j] + rec[b, 2 * H + j] + b_hh[2 * H + j])
                o = _sigmoid(P[t, b, 3 * H + j] + rec[b, 3 * H + j] + b_hh[3 * H + j])
                c_new = f * c[t, b, j] + i * g
                c[t + 1, b, j] = c_new
                h[t + 1, b, j] = o * _tanh(c_new)
                gates[t, b, j] = i
                gates[t, b, H + j] = f
                gates[t, b, 2 * H + j] = g
                gates[t, b, 3 * H + j] = o
    return h, c, gates


@kernel
def _lstm_backward(dh, c, gates, W_hh, dc_n):
    """BPTT of the LSTM, t = T..1, given ∂L/∂h_t from above (dh, (T, B, H)) and ∂L/∂c_T.

    With δh = dh_t + dA_{t+1} W_hh and δc = ∂L/∂c_t from step t+1 plus δh ⊙ o ⊙ (1 − tanh²c_t):
        dA_i = δc ⊙ g ⊙ i(1−i)      dA_f = δc ⊙ c_{t−1} ⊙ f(1−f)
        dA_g = δc ⊙ i ⊙ (1−g²)      dA_o = δh ⊙ tanh(c_t) ⊙ o(1−o)
        ∂L/∂c_{t−1} = δc ⊙ f
    Returns dA (T, B, 4H), ∂L/∂h_0 and ∂L/∂c_0 (B, H).
    """
    T, B, H = dh.shape
    G = 4 * H
    dA = np.empty((T, B, G), dtype=dh.dtype)
    carry = np.zeros((B, H), dtype=dh.dtype)  # dA_{t+1} W_hh: what flows back into h_t
    dc = dc_n.copy()
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                i = gates[t, b, j]
                f = gates[t, b, H + j]
                g = gates[t, b, 2 * H + j]
                o = gates[t, b, 3 * H + j]
                tc = _tanh(c[t + 1, b, j])
                dh_t = dh[t, b, j] + carry[b, j]
                dc_t = dc[b, j] + dh_t * o * (1.0 - tc * tc)
                dA[t, b, j] = dc_t * g * i * (1.0 - i)
                dA[t, b, H + j] = dc_t * c[t, b, j] * f * (1.0 - f)
                dA[t, b, 2 * H + j] = dc_t * i * (1.0 - g * g)
                dA[t, b, 3 * H + j] = dh_t * tc * o * (1.0 - o)
                dc[b, j] = dc_t * f
        _matmul_into(carry, dA[t], W_hh)
    return dA, carry, dc


# ---------------------------------------------------------------------------------------
# GRU kernels


@kernel
def _gru_forward(P, W_hh_T, b_hh, h0):
    """The GRU recurrence. P (T, B, 3H) holds X W_ihᵀ + b_ih; W_hh_T is W_hhᵀ (H, 3H).

    Returns h (T+1, B, H), the gates r, z, n (T, B, 3H) and W_hn h_{t−1} + b_hn (T, B, H),
    the part the reset gate multiplies.
    """
    T, B, G = P.shape
    H = G // 3
    h = np.empty((T + 1, B, H), dtype=P.dtype)
    gates = np.empty((T, B, G), dtype=P.dtype)
    hn = np.empty((T, B, H), dtype=P.dtype)
    h[0] = h0
    rec = np.empty((B, G), dtype=P.dtype)
    for t in range(T):
        _matmul_into(rec, h[t], W_hh_T)
        for b in range(B):
            for j in range(H):
                r = _sigmoid(P[t, b, j] + rec[b, j] + b_hh[j])
                z = _sigmoid(P[t, b, H + j] + rec[b, H + j] + b_hh[H + j])
                hn_j = rec[b, 2 * H + j] + b_hh[2 * H + j]
                n = _tanh(P[t, b, 2 * H + j] + r * hn_j)
                h[t + 1, b, j] = (1.0 - z) * n + z * h[t, b, j]
                gates[t, b, j] = r
                gates[t, b, H + j] = z
                gates[t, b, 2 * H + j] = n
                hn[t, b, j] = hn_j
    return h, gates, hn


@kernel
def _gru_backward(dh, h, gates, hn, W_hh):
    """BPTT of the GRU, t = T..1, given ∂L/∂h_t from above (dh, (T, B, H)).

    With δh = dh_t + ∂L/∂h_t through step t+1:
        dA_n = δh ⊙ (1−z) ⊙ (1−n²)          (input side and, times r, recurrent side)
        dA_r = dA_n ⊙ (W_hn h_{t−1} + b_hn) ⊙ r(1−r)
        dA_z = δh ⊙ (h_{t−1} − n) ⊙ z(1−z)
        ∂L/∂h_{t−1} = δh ⊙ z + dAh_t W_hh,  dAh_t = (dA_r, dA_z, r ⊙ dA_n)
    Returns dAi, dAh (T, B, 3H): gradients of the input-side and recurrent-side
    pre-activations, and ∂L/∂h_0 (B, H).
    """
    T, B, H = dh.shape
    G = 3 * H
    dAi = np.empty((T, B, G), dtype=dh.dtype)
    dAh = np.empty((T, B, G), dtype=dh.dtype)
    carry = np.zeros((B, H), dtype=dh.dtype)
    direct = np.empty((B, H), dtype=dh.dtype)  # δh ⊙ z: the path that skips the gates
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                r = gates[t, b, j]
                z = gates[t, b, H + j]
                n = gates[t, b, 2 * H + j]
                dh_t = dh[t, b, j] + carry[b, j]
                da_n = dh_t * (1.0 - z) * (1.0 - n * n)
                da_r = da_n * hn[t, b, j] * r * (1.0 - r)
                da_z = dh_t * (h[t, b, j] - n) * z * (1.0 - z)
                dAi[t, b, j] = da_r
                dAi[t, b, H + j] = da_z
                dAi[t, b, 2 * H + j] = da_n
                dAh[t, b, j] = da_r
                dAh[t, b, H + j] = da_z
                dAh[t, b, 2 * H + j] = da_n * r
                direct[b, j] = dh_t * z
        _matmul_into(carry, dAh[t], W_hh)
        carry += direct
    return dAi, dAh, carry


# ---------------------------------------------------------------------------------------
# Checked public functions


@dataclass
class LSTMForward:
    """What the LSTM backward pass needs from the forward pass."""

    h: np.ndarray  # (T+1, B, H), h[0] = h_0
    c: np.ndarray  # (T+1, B, H), c[0] = c_0
    gates: np.ndarray  # (T, B, 4H): i, f, g, o after their nonlinearities


@dataclass
class GRUForward:
    """What the GRU backward pass needs from the forward pass."""

    h: np.ndarray  # (T+1, B, H), h[0] = h_0
    gates: np.ndarray  # (T, B, 3H): r, z, n after their nonlinearities
    hn: np.ndarray  # (T, B, H): W_hn h_{t−1} + b_hn


@dataclass
class GatedGradients:
    """∂L/∂ of a gated layer's parameters (torch layouts), its initial state and its input."""

    weight_ih: np.ndarray  # (G·H, D)
    weight_hh: np.ndarray  # (G·H, H)
    bias_ih: np.ndarray  # (G·H,)
    bias_hh: np.ndarray  # (G·H,)
    h0: np.ndarray  # (B, H)
    x: np.ndarray  # (T, B, D)
    dA_ih: np.ndarray  # (T, B, G·H): ∂L/∂(input-side pre-activations), per step
    dA_hh: np.ndarray  # (T, B, G·H): ∂L/∂(recurrent-side pre-activations), per step
    c0: np.ndarray | None = None  # (B, H), lstm only


def _dtype_of(*arrays) -> np.dtype:
    first = arrays[0].dtype
    if all(a.dtype == first for a in arrays) and first in (np.float32, np.float64):
        return first
    return np.result_type(np.float32, *arrays)


def _state(value, B: int, H: int, dtype) -> np.ndarray:
    """An initial state (B, H): zeros for None, broadcast from (H,) if need be."""
    if value is None:
        return np.zeros((B, H), dtype)
    return np.ascontiguousarray(np.broadcast_to(value, (B, H)), dtype=dtype)


def _input_projection(X, W_ih, b_ih, dtype) -> np.ndarray:
    """P = X W_ihᵀ + b_ih for every step at once, (T, B, G·H)."""
    T, B, D = X.shape
    P = X.reshape(T * B, D).astype(dtype, copy=False) @ W_ih.T.astype(dtype, copy=False)
    P += b_ih
    return P.reshape(T, B, -1)


def _weight_gradients(X, h, dA_ih, dA_hh, W_ih) -> dict[str, np.ndarray]:
    """The products after the loop: Σ_t dA_tᵀ x_t, Σ_t dA_tᵀ h_{t−1}, Σ_t dA_t, dA_t W_ih."""
    T, B, D = X.shape
    H = h.shape[2]
    dtype = h.dtype
    dA_i = dA_ih.reshape(T * B, -1)
    dA_h = dA_hh.reshape(T * B, -1)
    return dict(
        weight_ih=dA_i.T @ X.reshape(T * B, D).astype(dtype, copy=False),
        weight_hh=dA_h.T @ h[:-1].reshape(T * B, H),
        bias_ih=dA_i.sum(axis=0),
        bias_hh=dA_h.sum(axis=0),
        x=(dA_i @ W_ih.astype(dtype, copy=False)).reshape(T, B, D),
    )


def lstm_forward(X, W_ih, W_hh, b_ih, b_hh, h0=None, c0=None) -> LSTMForward:
    """Every state of an LSTM layer over X (T, B, D); h0, c0 (B, H) or None (zeros)."""
    dtype = _dtype_of(X, W_ih, W_hh)
    B, H = X.shape[1], W_hh.shape[1]
    P = _input_projection(X, W_ih, b_ih, dtype)
    h, c, gates = _lstm_forward(
        P, np.ascontiguousarray(W_hh.T, dtype), np.ascontiguousarray(b_hh, dtype),
        _state(h0, B, H, dtype), _state(c0, B, H, dtype),
    )
    return LSTMForward(h, c, gates)


def lstm_backward(X, W_ih, W_hh, forward: LSTMForward, dh, dc_n=None) -> GatedGradients:
    """Every gradient of an LSTM layer given ∂L/∂h_t (dh, (T, B, H), through whatever reads
    h_t) and ∂L/∂c_T (dc_n, (B, H) or None)."""
    dtype = forward.h.dtype
    B, H = dh.shape[1], dh.shape[2]
    dA, dh0, dc0 = _lstm_backward(
        np.ascontiguousarray(dh, dtype), forward.c, forward.gates,
        np.ascontiguousarray(W_hh, dtype), _state(dc_n, B, H, dtype),
    )
    # LSTM adds both biases to the same pre-activation: dA is their gradient twice over.
    grads = _weight_gradients(X, forward.h, dA, dA, W_ih)
    return GatedGradients(**grads, h0=dh0, dA_ih=dA, dA_hh=dA, c0=dc0)


def gru_forward(X, W_ih, W_hh, b_ih, b_hh, h0=None) -> GRUForward:
    """Every state of a GRU layer over X (T, B, D); h0 (B, H) or None (zeros)."""
    dtype = _dtype_of(X, W_ih, W_hh)
    B, H = X.shape[1], W_hh.shape[1]
    P = _input_projection(X, W_ih, b_ih, dtype)
    h, gates, hn = _gru_forward(
        P, np.ascontiguousarray(W_hh.T, dtype), np.ascontiguousarray(b_hh, dtype),
        _state(h0, B, H, dtype),
    )
    return GRUForward(h, gates, hn)


def gru_backward(X, W_ih, W_hh, forward: GRUForward, dh) -> GatedGradients:
    """Every gradient of a GRU layer given ∂L/∂h_t (dh, (T, B, H))."""
    dtype = forward.h.dtype
    dAi, dAh, dh0 = _gru_backward(
        np.ascontiguousarray(dh, dtype), forward.h, forward.gates, forward.hn,
        np.ascontiguousarray(W_hh, dtype),
    )
    grads = _weight_gradients(X, forward.h, dAi, dAh, W_ih)
    return GatedGradients(**grads, h0=dh0, dA_ih=dAi, dA_hh=dAh)
