"""The vanilla RNN: forward pass and backpropagation through time, as numba kernels.

    z_t = W_xh x_t + W_hh h_{t-1} + b_h,   h_t = f(z_t),   t = 1..T

Shapes are batched and time-major: x (T, B, D), h (T+1, B, H) with h[0] = h_0. Matrices act
on column vectors as in the math; a batch of row vectors is multiplied by the transpose
(``h @ W_hhᵀ``).

Only the recurrences run step by step in the kernels:
- forward:  P = X W_xhᵀ + b_h for all steps at once (one matrix product), then
  h_t = f(P_t + h_{t-1} W_hhᵀ) step by step;
- backward: with g_t = ∂L/∂h_t arriving from the outputs, dz_t = (g_t + dz_{t+1} W_hh) ⊙ f'(z_t)
  step by step; then dW_hh = Σ_t dz_tᵀ h_{t-1}, dW_xh = Σ_t dz_tᵀ x_t, db_h = Σ_t dz_t and
  ∂L/∂x_t = dz_t W_xh are single matrix products over all steps.

f' is computed from h_t (not z_t): tanh' = 1 − h², sigmoid' = h(1 − h), relu' = [h > 0].

The per-step products come from products.py and the nonlinearities from elementwise.py (an
edit there rebuilds these kernels: seqtool.core.rnn.jit keys their cache on every kernel
module).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqtool.core.errors import InputError
from seqtool.core.rnn.cells.rnn import ACTIVATIONS  # the cell's choices of f
from seqtool.core.rnn.blas import transposed_as
from seqtool.core.rnn.elementwise import _add_into, _copy_into, _sigmoid, _tanh, _typed
from seqtool.core.rnn.jit import kernel
from seqtool.core.rnn.lengths import gather_rows, scatter_rows, step_schedule
from seqtool.core.rnn.products import (is_zero, recurrent_outer_products, step_product,
                                       sum_of_outer_products)
from seqtool.core.rnn.table_rows import TableRows

TANH, SIGMOID, RELU, IDENTITY = range(4)  # the kernels' codes: positions in ACTIVATIONS


def activation_code(name: str) -> int:
    if name not in ACTIVATIONS:
        raise InputError("activation", f"is '{name}'; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS.index(name)


# ---------------------------------------------------------------------------------------
# Element-wise pieces (inlined into the kernels)


@kernel
def _activate(z, code):
    """f(z) in z's precision, overflow-free: tanh via e^{−2|z|}, sigmoid via e^{−|z|}
    (elementwise.py: vectorisable, NaN propagates)."""
    if code == TANH:
        return _tanh(z)
    if code == SIGMOID:
        return _sigmoid(z)
    if code == RELU:
        return z if z > 0 else _typed(0.0, z) * z  # 0·z: NaN stays NaN
    return z


@kernel
def _activate_row(out, p, r, code):
    """out = f(p + r) for one row. The switch on f sits outside the loops, so that each loop
    is straight arithmetic that LLVM vectorises (tanh: 5× faster than with scalar math.exp
    at H = 128)."""
    H = out.shape[0]
    if code == TANH:
        for i in range(H):
            out[i] = _tanh(p[i] + r[i])
    elif code == SIGMOID:
        for i in range(H):
            out[i] = _sigmoid(p[i] + r[i])
    else:
        for i in range(H):
            out[i] = _activate(p[i] + r[i], code)


@kernel
def _derivative(h, code):
    """f'(z) written with h = f(z), in h's precision."""
    one = _typed(1.0, h)
    if code == TANH:
        return one - h * h
    if code == SIGMOID:
        return h * (one - h)
    if code == RELU:
        return one if h > 0 else _typed(0.0, h)
    return one


@kernel
def _backward_row(dz, g, carry, h, code):
    """dz = (g + carry) ⊙ f'(z) for one row, f' from h = f(z) (the switch outside the loops,
    as in _activate_row)."""
    H = dz.shape[0]
    one = _typed(1.0, dz)
    if code == TANH:
        for i in range(H):
            dz[i] = (g[i] + carry[i]) * (one - h[i] * h[i])
    elif code == SIGMOID:
        for i in range(H):
            dz[i] = (g[i] + carry[i]) * (h[i] * (one - h[i]))
    else:
        for i in range(H):
            dz[i] = (g[i] + carry[i]) * _derivative(h[i], code)


# ---------------------------------------------------------------------------------------
# Kernels


@kernel
def _rnn_forward(P, W_hh_T, h0, code, active):
    """h_t = f(P_t + h_{t−1} W_hhᵀ). P (T, B, H) holds X W_xhᵀ + b_h; returns h (T+1, B, H).
    Rows 0 .. active[t] − 1 run at step t; the others (sequences that have ended: the rows
    are sorted longest first) keep their states (see seqtool.core.rnn.lengths)."""
    T, B, H = P.shape
    h = np.empty((T + 1, B, H), dtype=P.dtype)
    _copy_into(h[0], h0)
    rec = np.empty((B, H), dtype=P.dtype)
    zero_start = is_zero(h0)
    for t in range(T):
        rows = active[t]
        if t > 0 or not zero_start:
            step_product(rec[:rows], h[t, :rows], W_hh_T)
        else:  # h_{−1} = 0, and so is h_{−1} W_hhᵀ: no product
            rec[:rows] = _typed(0.0, rec)
        for b in range(rows):
            _activate_row(h[t + 1, b], P[t, b], rec[b], code)
        if rows < B:  # (a slice op costs ~50 ns even when empty: per step, at B = 1)
            _copy_into(h[t + 1, rows:], h[t, rows:])
    return h


@kernel
def _rnn_backward(g, h, W_hh, code, active, initial):
    """dz_t = (g_t + dz_{t+1} W_hh) ⊙ f'(z_t), for t = T..1; on the rows from active[t] on,
    which kept their states, dz_t = 0 and ∂L/∂h_t passes on whole.

    g (T, B, H) is ∂L/∂h_t from the outputs only; h (T+1, B, H) from the forward pass.
    Returns dz (T, B, H) and ∂L/∂h_0 (B, H), undefined with ``initial`` False (not wanted:
    the last product, dz_1 W_hh, is skipped).
    """
    T, B, H = g.shape
    dz = np.empty_like(g)
    carry = np.zeros((B, H), dtype=g.dtype)  # dz_{t+1} W_hh: what flows back into h_t
    for t in range(T - 1, -1, -1):
        rows = active[t]
        for b in range(rows):
            _backward_row(dz[t, b], g[t, b], carry[b], h[t + 1, b], code)
        if rows < B:
            _add_into(carry[rows:], g[t, rows:])
            dz[t, rows:] = 0.0
        if t > 0 or initial:
            step_product(carry[:rows], dz[t, :rows], W_hh)
    return dz, carry


@kernel
def _rnn_backward_truncated(g, h, W_hh, code, k):
    """Like _rnn_backward, but the gradient of each loss term L_t flows back through at most
    k steps: it reaches z_t, z_{t−1}, ..., z_{t−k+1} and stops. (k ≥ T is full BPTT.)"""
    T, B, H = g.shape
    dz = np.zeros_like(g)
    dh0 = np.zeros((B, H), dtype=g.dtype)
    upstream = np.empty((B, H), dtype=g.dtype)
    local = np.empty((B, H), dtype=g.dtype)
    for t in range(T):
        _copy_into(upstream, g[t])
        for j in range(t, max(t - k, -1), -1):
            for b in range(B):
                for i in range(H):
                    local[b, i] = upstream[b, i] * _derivative(h[j + 1, b, i], code)
                    dz[j, b, i] += local[b, i]
            step_product(upstream, local, W_hh)
            if j == 0:
                _add_into(dh0, upstream)
    return dz, dh0


# ---------------------------------------------------------------------------------------
# Checked public functions


@dataclass
class RNNGradients:
    """∂L/∂ of every parameter and input, in math layout (W_xh (H, D), W_hh (H, H))."""

    W_xh: np.ndarray
    W_hh: np.ndarray
    b_h: np.ndarray
    h0: np.ndarray  # (B, H)
    x: np.ndarray  # (T, B, D)
    dz: np.ndarray  # (T, B, H) ∂L/∂z_t, the per-step signal every weight gradient is built from


def _contiguous(a, dtype):
    """``a`` as a C-contiguous array of ``dtype``, copied only if it is not one already."""
    return np.ascontiguousarray(a, dtype=dtype)


def _common_dtype(*arrays):
    first = arrays[0].dtype
    if all(a.dtype == first for a in arrays) and first in (np.float32, np.float64):
        return first  # the common case, without np.result_type's cost
    return np.result_type(np.float32, *arrays)


def rnn_forward(X, W_xh, W_hh, b_h, h0=None, activation="tanh", lengths=None,
                projected=None):
    """All hidden states h (T+1, B, H) of the vanilla RNN for inputs X (T, B, D).
    ``lengths`` (B,), longest first: sequence b runs lengths[b] steps and then keeps its
    state (None: all T; seqtool.core.rnn.stack sorts any other order). ``projected``
    (T, B, H): X W_xhᵀ formed by the caller (X is then not read and may be None); b_h is
    added to it in place. As TableRows (seqtool.core.rnn.table_rows), b_h is added to the
    table's rows before they are gathered."""
    H = W_hh.shape[0]
    if projected is None:
        dtype = _common_dtype(X, W_xh, W_hh)
        T, B, D = X.shape
        P = X.reshape(T * B, D).astype(dtype, copy=False) @ W_xh.T.astype(dtype, copy=False)
        P += b_h  # (T·B, H): the input projection of every step, hoisted out of the loop
    elif isinstance(projected, TableRows):  # b_h added to the table's rows, not P's
        dtype = _common_dtype(projected.table, W_hh)
        T, B = projected.shape[:2]
        P = projected.gathered(dtype, b_h)
    else:
        dtype = _common_dtype(projected, W_hh)
        T, B = projected.shape[:2]
        P = _contiguous(projected, dtype)
        P += b_h
    if h0 is None:
        h0 = np.zeros((B, H), dtype)
    elif h0.shape != (B, H):
        h0 = np.broadcast_to(h0, (B, H))
    return _rnn_forward(
        P.reshape(T, B, H), transposed_as(W_hh, dtype), _contiguous(h0, dtype),
        activation_code(activation), step_schedule(lengths, T, B)[0],
    )


def rnn_backward(X, W_xh, W_hh, h, dh, activation="tanh", truncate=None, lengths=None,
                 input_products=True, initial_state=True):
    """Backpropagation through time: every gradient, given ∂L/∂h_t from the outputs.

    X (T, B, D), h (T+1, B, H) from :func:`rnn_forward`, dh (T, B, H) = ∂L/∂h_t for
    t = 1..T through the outputs only. ``truncate`` = k lets each loss term reach back
    at most k steps (None: full BPTT). ``lengths`` as given to :func:`rnn_forward`
    (full BPTT only). ``input_products`` False leaves ∂L/∂W_xh and ∂L/∂X (None) to a
    caller that formed X W_xhᵀ itself: it has dz for them. ``initial_state`` False:
    ∂L/∂h_0 is not wanted (``h0`` None), and its product is not computed (full BPTT).
    """
    dtype = h.dtype
    T, B, H = dh.shape
    code = activation_code(activation)
    g, W = _contiguous(dh, dtype), _contiguous(W_hh, dtype)
    active, rows = step_schedule(lengths, T, B)
    if truncate is None or truncate >= T:
        dz, dh0 = _rnn_backward(g, h, W, code, active, initial_state)
        if not initial_state:
            dh0 = None
    elif active.min(initial=B) < B:
        raise InputError("truncate", "truncated BPTT runs on whole sequences (no lengths)")
    else:
        dz, dh0 = _rnn_backward_truncated(g, h, W, code, int(truncate))
    dz_rows = gather_rows(dz, rows)  # the real steps' rows only: dz is 0 on the others
    W_xh_grad = dX = None
    if input_products:
        D = X.shape[2]
        W_xh_grad = sum_of_outer_products(dz_rows, gather_rows(X.astype(dtype, copy=False), rows))
        dX = scatter_rows(dz_rows @ W_xh.astype(dtype, copy=False), rows,
                          np.empty((T, B, D), dtype))
    return RNNGradients(
        W_xh=W_xh_grad,
        W_hh=recurrent_outer_products(dz_rows, h, rows),  # Σ_t dz_tᵀ h_{t−1}
        b_h=dz_rows.sum(axis=0),
        h0=dh0,
        x=dX,
        dz=dz,
    )


def derivative_from_h(h: np.ndarray, activation: str) -> np.ndarray:
    """f'(z) from h = f(z), vectorised (the analysis twin of the kernel's ``_derivative``)."""
    if activation == "tanh":
        return 1.0 - h * h
    if activation == "sigmoid":
        return h * (1.0 - h)
    if activation == "relu":
        return (h > 0).astype(h.dtype)
    return np.ones_like(h)
