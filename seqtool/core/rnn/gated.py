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

The element-wise pieces (σ, tanh, the vectorisable exp) come from elementwise.py and the
per-step products h_{t−1} W_hhᵀ and dA_t W_hh from products.py (an edit there rebuilds these
kernels: seqtool.core.rnn.jit keys their cache on every kernel module). Which product
method runs, and from which sizes on arrays come from a workspace and the products after
the loop leave the kernel, is seqtool.core.rnn.tuning's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqtool.core.buffers import Workspace, take
from seqtool.core.rnn.blas import transposed, transposed_as
from seqtool.core.rnn.elementwise import _add_into, _copy_into, _sigmoid, _tanh, _typed
from seqtool.core.rnn.jit import inline_kernel, kernel
from seqtool.core.rnn.lengths import gather_rows, scatter_rows, step_schedule
from seqtool.core.rnn.products import (
    is_zero, product_into, project_into, recurrent_outer_products, step_product,
    sum_of_outer_products, tiled_product,
)
from seqtool.core.rnn.table_rows import TableRows
from seqtool.core.rnn.tuning import current as current_tuning

# The gate blocks' order (torch's: LSTM i, f, g, o; GRU r, z, n) is the cells' `gates`
# (seqtool.core.rnn.cells.lstm, .gru).


# ---------------------------------------------------------------------------------------
# LSTM kernels
#
# A step works on whole rows: the recurrent product goes into a (B, 4H) scratch, then one
# loop per run of same-kind gates adds the input projection and applies the nonlinearity,
# then one loop over H forms c and h. Each is a simple loop over contiguous memory that
# LLVM vectorises — provided it can see that every index is non-negative. numba wraps
# negative indices (a[k] with k < 0 reads a[len + k]), and when LLVM cannot prove k ≥ 0 the
# select it inserts makes the loop scalar: range(3H, 4H) or a[H + j] with H = G // 4 (which
# LLVM cannot prove non-negative) were 5–9× slower than the same loop over a view a[3H:]
# indexed from 0. Hence the per-gate views (gate_i = a[:H], ...) below.
#
# Each kernel is the whole pass, including the one-off products before and after the loop,
# so that a layer costs one kernel call forward and one backward: at small sizes the
# Python-level glue between calls was a large share of the time.


@inline_kernel
def _freeze(t, rows, h, gates):
    """The rows from ``rows`` on, whose sequences have ended, keep their states at step t:
    h[t+1] = h[t] there, and their gates are 0."""
    _copy_into(h[t + 1, rows:], h[t, rows:])
    gates[t, rows:] = _typed(0.0, gates)


@inline_kernel
def _lstm_activations(a, p, r, bias, H):
    """a = σ, σ, tanh, σ of the blocks i, f, g, o of r + (p + bias): the gate activations
    of one row from its recurrent product r and its input projection p (a row of another
    array). P + bias is rounded first, as if it had been formed before the loop."""
    for k in range(2 * H):  # i, f
        a[k] = _sigmoid(r[k] + (p[k] + bias[k]))
    gate_g, rec_g, bias_g = a[2 * H:3 * H], r[2 * H:3 * H], bias[2 * H:3 * H]
    p_g = p[2 * H:3 * H]
    for j in range(H):
        gate_g[j] = _tanh(rec_g[j] + (p_g[j] + bias_g[j]))
    gate_o, rec_o, bias_o, p_o = a[3 * H:], r[3 * H:], bias[3 * H:], p[3 * H:]
    for j in range(H):
        gate_o[j] = _sigmoid(rec_o[j] + (p_o[j] + bias_o[j]))


@inline_kernel
def _lstm_activations_in_place(a, r, bias, H):
    """_lstm_activations with p = a, the record's own row (overwritten)."""
    for k in range(2 * H):  # i, f
        a[k] = _sigmoid(r[k] + (a[k] + bias[k]))
    gate_g, rec_g, bias_g = a[2 * H:3 * H], r[2 * H:3 * H], bias[2 * H:3 * H]
    for j in range(H):
        gate_g[j] = _tanh(rec_g[j] + (gate_g[j] + bias_g[j]))
    gate_o, rec_o, bias_o = a[3 * H:], r[3 * H:], bias[3 * H:]
    for j in range(H):
        gate_o[j] = _sigmoid(rec_o[j] + (gate_o[j] + bias_o[j]))


@kernel
def _lstm_forward_into(X, W_ih, b_ih, b_hh, W_hh, h0, c0, active, h, c, gates, project,
                       table, ids):
    """The LSTM over X (T, B, D), with torch's W_ih (4H, D), W_hh (4H, H), b_ih, b_hh (4H,);
    active (T,): the rows that run at each step (seqtool.core.rnn.lengths.step_schedule).

    The gate record first holds P = X W_ihᵀ (one product for all steps, or, with
    ``project`` False, the caller's: X and W_ih are then not read); step t then
    replaces its slice by the activations of P_t + (b_ih + b_hh) + h_{t−1} W_hhᵀ.
    With ``ids`` (T, B) not empty, P is not in the record: P[t, b] = table[ids[t, b]]
    (seqtool.core.rnn.table_rows), read row by row as the step needs it.
    Writes h, c (T+1, B, H) and the gate activations i, f, g, o (T, B, 4H), arrays that the
    caller allocates (see _lstm_backward). The bias sum and W_hhᵀ are formed here rather
    than by the caller: at (50, 1, 16) the NumPy calls for them took 0.8 of the 25 µs of a
    forward and backward pass.
    """
    T, B, D = X.shape
    G = W_ih.shape[0]
    _copy_into(h[0], h0)
    _copy_into(c[0], c0)
    if project:
        project_into(gates.reshape(T * B, G), X.reshape(T * B, D), W_ih)
    # b_ih and b_hh add to the same pre-activations: both are added once, to P.
    bias = b_ih + b_hh
    W_hh_T = transposed(W_hh)
    # The recurrence, in place: gates[t] holds P_t on entry and the activations on exit;
    # h[t+1], c[t+1] are written from h[t], c[t]. Rows 0 .. active[t] − 1 run at step t;
    # the others (sequences that have ended: the rows are sorted longest first) keep their
    # states, and their gates are 0 (seqtool.core.rnn.lengths).
    H = G // 4
    rec = np.empty((B, G), dtype=gates.dtype)
    zero_start = is_zero(h0)
    from_table = ids.shape[0] > 0
    for t in range(T):
        rows = active[t]
        if t > 0 or not zero_start:
            step_product(rec[:rows], h[t, :rows], W_hh_T)
        else:  # h_{−1} = 0, and so is h_{−1} W_hhᵀ: no product
            rec[:rows] = _typed(0.0, rec)
        for b in range(rows):
            a = gates[t, b]
            # Two loop nests, not one reading p = (table row or a): with p and a the same
            # row, LLVM's run-time alias check sends every row down the scalar loop (the
            # forward pass took 1.3× as long at (100, 32, 64)).
            if from_table:
                _lstm_activations(a, table[ids[t, b]], rec[b], bias, H)
            else:
                _lstm_activations_in_place(a, rec[b], bias, H)
            gate_i, gate_f, gate_g, gate_o = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
            c_prev = c[t, b]
            c_new = c[t + 1, b]
            h_new = h[t + 1, b]
            for j in range(H):
                c_j = gate_f[j] * c_prev[j] + gate_i[j] * gate_g[j]
                c_new[j] = c_j
                h_new[j] = gate_o[j] * _tanh(c_j)
        if rows < B:  # (a slice op costs ~50 ns even when empty: per step, at B = 1)
            _freeze(t, rows, h, gates)
            _copy_into(c[t + 1, rows:], c[t, rows:])


@inline_kernel
def _pass_through(t, rows, dh, carry, dA):
    """Backward through the rows from ``rows`` on, which kept their states at step t: all of
    ∂L/∂h_{t+1} (carry) plus dh_t reaches h_t, and their dA is 0."""
    _add_into(carry[rows:], dh[t, rows:])
    dA[t, rows:] = _typed(0.0, dA)


@kernel
def _lstm_backward(X, W_ih, W_hh, h, c, gates, dh, dc_n, active, dA, dh0, dc0, d_bias,
                   d_W_ih, d_W_hh, dX, products, initial):
    """BPTT of the LSTM, t = T..1, given ∂L/∂h_t from above (dh, (T, B, H)) and ∂L/∂c_T.

    With δh = dh_t + dA_{t+1} W_hh and δc = ∂L/∂c_t from step t+1 plus δh ⊙ o ⊙ (1 − tanh²c_t):
        dA_i = δc ⊙ g ⊙ i(1−i)      dA_f = δc ⊙ c_{t−1} ⊙ f(1−f)
        dA_g = δc ⊙ i ⊙ (1−g²)      dA_o = δh ⊙ tanh(c_t) ⊙ o(1−o)
        ∂L/∂c_{t−1} = δc ⊙ f
    then, after the loop, ∂L/∂W_ih = Σ_t dA_tᵀ x_t, ∂L/∂W_hh = Σ_t dA_tᵀ h_{t−1},
    ∂L/∂b = Σ_t Σ_b dA_t (accumulated in the loop) and ∂L/∂x_t = dA_t W_ih.
    Writes dA (T, B, 4H), ∂L/∂h_0 and ∂L/∂c_0 (dh0, dc0 (B, H)), ∂L/∂b (d_bias), and the
    three products (d_W_ih, d_W_hh, dX). The caller allocates them all: a numba kernel that
    returns seven new arrays spends ~1.9 µs making Python objects of them, a tenth of a
    whole pass at (50, 1, 16). With ``products`` False only the loop runs (X, W_ih, d_W_ih,
    d_W_hh and dX are not touched): larger layers leave the products to NumPy. One kernel
    for both, so that a run compiles one whichever sizes it meets. With ``initial`` False
    ∂L/∂h_0 is not wanted: the last product, dA_0 W_hh, is skipped and dh0 left undefined.
    """
    T, B, H = dh.shape
    D = X.shape[2]
    G = 4 * H
    one = _typed(1.0, dh)
    carry = dh0  # carries dA_{t+1} W_hh back into h_t, and ends as ∂L/∂h_0
    dc = dc0
    carry[:] = _typed(0.0, dh0)
    _copy_into(dc, dc_n)
    d_bias[:] = _typed(0.0, d_bias)
    for t in range(T - 1, -1, -1):
        rows = active[t]
        for b in range(rows):
            a = gates[t, b]
            d = dA[t, b]
            gate_i, gate_f, gate_g, gate_o = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
            d_i, d_f, d_g, d_o = d[:H], d[H:2 * H], d[2 * H:3 * H], d[3 * H:]
            c_prev = c[t, b]
            c_t = c[t + 1, b]
            dh_b = dh[t, b]
            carry_b = carry[b]
            dc_b = dc[b]
            for j in range(H):
                i = gate_i[j]
                f = gate_f[j]
                g = gate_g[j]
                o = gate_o[j]
                tc = _tanh(c_t[j])  # recomputed: cheaper than storing, now that it vectorises
                dh_t = dh_b[j] + carry_b[j]
                dc_t = dc_b[j] + dh_t * o * (one - tc * tc)
                d_i[j] = dc_t * g * i * (one - i)
                d_f[j] = dc_t * c_prev[j] * f * (one - f)
                d_g[j] = dc_t * i * (one - g * g)
                d_o[j] = dh_t * tc * o * (one - o)
                dc_b[j] = dc_t * f
            for k in range(G):
                d_bias[k] += d[k]
        if rows < B:
            _pass_through(t, rows, dh, carry, dA)
        if t > 0 or initial:
            step_product(carry[:rows], dA[t, :rows], W_hh)
    if not products:
        return
    dA_rows = dA.reshape(T * B, G)
    tiled_product(d_W_ih, dA_rows.T, X.reshape(T * B, D))
    tiled_product(d_W_hh, dA_rows.T, h[:T].reshape(T * B, H))
    tiled_product(dX.reshape(T * B, D), dA_rows, W_ih)


# ---------------------------------------------------------------------------------------
# GRU kernels


@kernel
def _gru_forward_into(P, W_hh_T, b_hn, h0, active, h, gates, hn, ids):
    """The GRU recurrence. P (T, B, 3H) holds X W_ihᵀ + b_ih + (b_hr, b_hz, 0), or, with
    ``ids`` (T, B) not empty, P is a table (V, 3H) of those rows by token: P[ids[t, b]]
    (seqtool.core.rnn.table_rows); W_hh_T is W_hhᵀ (H, 3H); b_hn the last third of b_hh;
    active (T,): the rows that run at each step (seqtool.core.rnn.lengths.step_schedule).

    Writes h (T+1, B, H), the gates r, z, n (T, B, 3H) and W_hn h_{t−1} + b_hn (T, B, H),
    the part the reset gate multiplies, into arrays the caller allocates (one kernel per
    pass: a kernel that allocated them and called this one would compile all of it
    again). Rows from active[t] on keep their states at step t; their gates and hn are 0
    there."""
    T, B, H = hn.shape
    G = 3 * H
    _copy_into(h[0], h0)
    rec = np.empty((B, G), dtype=P.dtype)
    one = _typed(1.0, P)
    zero_start = is_zero(h0)
    from_table = ids.shape[0] > 0
    for t in range(T):
        rows = active[t]
        if t > 0 or not zero_start:
            step_product(rec[:rows], h[t, :rows], W_hh_T)
        else:  # h_{−1} = 0, and so is h_{−1} W_hhᵀ: no product
            rec[:rows] = _typed(0.0, rec)
        for b in range(rows):
            a = gates[t, b]
            p = P[0, ids[t, b]] if from_table else P[t, b]
            rec_b = rec[b]
            for k in range(2 * H):  # r, z
                a[k] = _sigmoid(p[k] + rec_b[k])
            # each gate through a view of its own, indexed from 0 (see the LSTM kernels)
            gate_r, gate_z, gate_n = a[:H], a[H:2 * H], a[2 * H:]
            p_n, rec_n = p[2 * H:], rec_b[2 * H:]
            h_prev = h[t, b]
            h_new = h[t + 1, b]
            hn_b = hn[t, b]
            # The pre-activation first, then tanh in place: with tanh applied in the loop
            # that reads gate_r, a view of the same row as gate_n, LLVM kept it scalar
            # (the GRU forward kernel was 2× slower).
            for j in range(H):
                hn_b[j] = rec_n[j] + b_hn[j]
                gate_n[j] = p_n[j] + gate_r[j] * hn_b[j]
            for j in range(H):
                gate_n[j] = _tanh(gate_n[j])
            for j in range(H):
                z = gate_z[j]
                h_new[j] = (one - z) * gate_n[j] + z * h_prev[j]
        if rows < B:
            _freeze(t, rows, h, gates)
            hn[t, rows:] = _typed(0.0, hn)


@kernel
def _gru_backward_into(dh, h, gates, hn, W_hh, active, dAi, dAh, initial):
    """BPTT of the GRU, t = T..1, given ∂L/∂h_t from above (dh, (T, B, H)).

    With δh = dh_t + ∂L/∂h_t through step t+1:
        dA_n = δh ⊙ (1−z) ⊙ (1−n²)          (input side and, times r, recurrent side)
        dA_r = dA_n ⊙ (W_hn h_{t−1} + b_hn) ⊙ r(1−r)
        dA_z = δh ⊙ (h_{t−1} − n) ⊙ z(1−z)
        ∂L/∂h_{t−1} = δh ⊙ z + dAh_t W_hh,  dAh_t = (dA_r, dA_z, r ⊙ dA_n)
    and on the rows from active[t] on, which kept their states, dA = 0 and ∂L/∂h_{t−1} = δh.
    Writes dAi, dAh (T, B, 3H), the caller's arrays: gradients of the input-side and
    recurrent-side pre-activations; returns ∂L/∂h_0 (B, H), undefined with ``initial``
    False (not wanted: the last product, dAh_0 W_hh, is skipped).
    """
    T, B, H = dh.shape
    carry = np.zeros((B, H), dtype=dh.dtype)
    direct = np.empty((B, H), dtype=dh.dtype)  # δh ⊙ z: the path that skips the gates
    one = _typed(1.0, dh)
    for t in range(T - 1, -1, -1):
        rows = active[t]
        for b in range(rows):
            a = gates[t, b]
            di = dAi[t, b]
            dr = dAh[t, b]
            h_prev = h[t, b]
            hn_b = hn[t, b]
            dh_b = dh[t, b]
            carry_b = carry[b]
            direct_b = direct[b]
            for j in range(H):
                r = a[j]
                z = a[H + j]
                n = a[2 * H + j]
                dh_t = dh_b[j] + carry_b[j]
                da_n = dh_t * (one - z) * (one - n * n)
                da_r = da_n * hn_b[j] * r * (one - r)
                da_z = dh_t * (h_prev[j] - n) * z * (one - z)
                di[j] = da_r
                di[H + j] = da_z
                di[2 * H + j] = da_n
                dr[j] = da_r
                dr[H + j] = da_z
                dr[2 * H + j] = da_n * r
                direct_b[j] = dh_t * z
        if t == 0 and not initial:
            if rows < B:
                dAh[t, rows:] = _typed(0.0, dAh)
                dAi[t, rows:] = _typed(0.0, dAi)
        elif rows < B:
            _pass_through(t, rows, dh, carry, dAh)
            dAi[t, rows:] = _typed(0.0, dAi)
            step_product(carry[:rows], dAh[t, :rows], W_hh)
            _add_into(carry[:rows], direct[:rows])
        else:
            step_product(carry, dAh[t], W_hh)
            _add_into(carry, direct)
    return carry


# ---------------------------------------------------------------------------------------
# Checked public functions


@dataclass(slots=True)  # slots: ~0.15 µs less per record, which a one-row step feels
class LSTMForward:
    """What the LSTM backward pass needs from the forward pass."""

    h: np.ndarray  # (T+1, B, H), h[0] = h_0
    c: np.ndarray  # (T+1, B, H), c[0] = c_0
    gates: np.ndarray  # (T, B, 4H): i, f, g, o after their nonlinearities
    active: np.ndarray  # (T,): the rows that ran at each step (seqtool.core.rnn.lengths)
    rows: np.ndarray | None  # the real steps' rows of (T·B, ...), None: all of them


@dataclass(slots=True)
class GRUForward:
    """What the GRU backward pass needs from the forward pass."""

    h: np.ndarray  # (T+1, B, H), h[0] = h_0
    gates: np.ndarray  # (T, B, 3H): r, z, n after their nonlinearities
    hn: np.ndarray  # (T, B, H): W_hn h_{t−1} + b_hn
    active: np.ndarray  # (T,): the rows that ran at each step (seqtool.core.rnn.lengths)
    rows: np.ndarray | None  # the real steps' rows of (T·B, ...), None: all of them


@dataclass(slots=True)
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
    """The common float dtype of arrays: their own when they agree on float32 or float64."""
    first = arrays[0].dtype
    if first.char in "fd":  # (a loop, not all(...): this runs per call, ~0.3 µs less)
        for a in arrays[1:]:
            if a.dtype != first:
                break
        else:
            return first
    return np.result_type(np.float32, *arrays)


def _state(value, B: int, H: int, dtype) -> np.ndarray:
    """An initial state (B, H): zeros for None, broadcast from (H,) if need be."""
    if value is None:
        return np.zeros((B, H), dtype)
    if getattr(value, "shape", None) == (B, H):  # the usual case: skip broadcast_to (~1.5 µs)
        return _c_array(value, dtype)
    return np.ascontiguousarray(np.broadcast_to(value, (B, H)), dtype=dtype)


def _c_array(a, dtype) -> np.ndarray:
    """a as a C-contiguous array of dtype: a itself when it already is one."""
    if type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype)


def _input_projection(X, W_ih, bias, dtype, out=None) -> np.ndarray:
    """P = X W_ihᵀ + bias for every step at once, (T, B, G·H), into ``out`` if given."""
    T, B, D = X.shape
    P = np.empty((T * B, W_ih.shape[0]), dtype) if out is None else out.reshape(T * B, -1)
    project_into(P, _c_array(X, dtype).reshape(T * B, D), _c_array(W_ih, dtype))
    P += bias
    return P.reshape(T, B, -1)


def _weight_products(X, h, dA_i, dA_h, W_ih, rows, dX=None, input_products=True):
    """The products after the loop from dA_i, dA_h, the real steps' rows of the gradients
    of the input-side and recurrent-side pre-activations (gather_rows(dA, rows); dA is 0 on
    the other steps): Σ_t dA_tᵀ x_t, Σ_t dA_tᵀ h_{t−1} and ∂L/∂x_t = dA_t W_ih (into dX
    (T, B, D) if given). Without ``input_products`` the two that read X or W_ih are None."""
    dtype = h.dtype
    weight_ih = None
    if input_products:
        T, B, D = X.shape
        W_ih = _c_array(W_ih, dtype)
        if dX is None:
            dX = np.empty((T, B, D), dtype)
        if rows is None:
            product_into(dX.reshape(T * B, D), dA_i, W_ih)
        else:
            scatter_rows(dA_i @ W_ih, rows, dX)
        weight_ih = sum_of_outer_products(dA_i, gather_rows(X.astype(dtype, copy=False), rows))
    return weight_ih, recurrent_outer_products(dA_h, h, rows), dX


def _weight_gradients(X, h, dA_ih, dA_hh, W_ih, rows, dX=None,
                      input_products=True) -> dict[str, np.ndarray | None]:
    """_weight_products over dA_ih, dA_hh (T, B, G·H), and the bias gradients Σ_t dA_t."""
    dA_h = gather_rows(dA_hh, rows)
    if input_products:
        dA_i = gather_rows(dA_ih, rows)
        bias_ih = dA_i.sum(axis=0)
    else:  # only the bias reads dA_ih: summed over every row, the padded ones' zeros
        # adding exactly nothing (a sum over axis 0 adds the rows in order), without the
        # copy of the real rows
        dA_i = None
        bias_ih = dA_ih.reshape(-1, dA_ih.shape[-1]).sum(axis=0)
    weight_ih, weight_hh, dX = _weight_products(X, h, dA_i, dA_h, W_ih, rows, dX,
                                                input_products)
    return {"weight_ih": weight_ih, "weight_hh": weight_hh, "bias_ih": bias_ih,
            "bias_hh": dA_h.sum(axis=0), "x": dX}


def lstm_forward(X, W_ih, W_hh, b_ih, b_hh, h0=None, c0=None, lengths=None,
                 projected=None, workspace: Workspace | None = None) -> LSTMForward:
    """Every state of an LSTM layer over X (T, B, D); h0, c0 (B, H) or None (zeros).
    ``lengths`` (B,), longest first: sequence b runs lengths[b] steps and then keeps its
    state (None: all T; seqtool.core.rnn.stack sorts any other order). ``projected``
    (T, B, 4H): X W_ihᵀ formed by the caller (X is then not read and may be None); it is
    used as the gate record, i.e. overwritten. As TableRows (seqtool.core.rnn.table_rows)
    the kernel reads its rows from the table. ``workspace``: a large layer's h, c and gate
    record are taken from it (valid until its owner takes them again: seqtool.core.buffers);
    without one they are fresh arrays."""
    if projected is not None:
        return _lstm_forward_projected(projected, b_ih, b_hh, W_hh, h0, c0, lengths,
                                       workspace)
    dtype = _dtype_of(X, W_ih, W_hh)
    T, B, D = X.shape
    H = W_hh.shape[1]
    active, rows = step_schedule(lengths, T, B)
    space = _space(workspace, T * B * 4 * H * max(D, H))
    h, c = _lstm_states(T, B, H, dtype, space)
    gates = take(space, "lstm.gates", (T, B, 4 * H), dtype)
    _lstm_forward_into(_c_array(X, dtype), _c_array(W_ih, dtype), _c_array(b_ih, dtype),
                       _c_array(b_hh, dtype), _c_array(W_hh, dtype), _state(h0, B, H, dtype),
                       _state(c0, B, H, dtype), active, h, c, gates, True,
                       *_NO_TABLE[np.dtype(dtype)])
    return LSTMForward(h, c, gates, active, rows)


def _space(workspace: Workspace | None, size: int) -> Workspace | None:
    """The workspace to take a layer's arrays from: ``workspace`` for a layer of ``size``
    multiply-adds from the tuning's recycle_from on (below it np.empty costs less than a
    look-up), else None (fresh arrays)."""
    if workspace is not None and size >= current_tuning().recycle_from:
        return workspace
    return None


# The kernel's table and ids when P is not read from a table (empty: one compiled kernel
# serves both)
_NO_TABLE = {np.dtype(d): (np.empty((0, 0), d), np.empty((0, 0), np.int64))
             for d in (np.float32, np.float64)}


def _lstm_states(T: int, B: int, H: int, dtype, space: Workspace | None):
    """Uninitialised h and c (T+1, B, H), from ``space`` if given."""
    return (take(space, "lstm.h", (T + 1, B, H), dtype),
            take(space, "lstm.c", (T + 1, B, H), dtype))


def _lstm_forward_projected(P, b_ih, b_hh, W_hh, h0, c0, lengths,
                            workspace: Workspace | None) -> LSTMForward:
    """lstm_forward from P = X W_ihᵀ (T, B, 4H), which becomes the gate record, or from
    TableRows, whose rows the kernel reads (the record is then a new array)."""
    dtype = _dtype_of(P.table if isinstance(P, TableRows) else P, W_hh)
    T, B, G = P.shape
    H = G // 4
    active, rows = step_schedule(lengths, T, B)
    space = _space(workspace, T * B * G * H)
    if isinstance(P, TableRows):
        table, ids = _c_array(P.table, dtype), P.ids_as_int64()
        gates = take(space, "lstm.gates", (T, B, G), dtype)
    else:
        gates = _c_array(P, dtype)
        table, ids = _NO_TABLE[np.dtype(dtype)]
    h, c = _lstm_states(T, B, H, dtype, space)
    W_hh = _c_array(W_hh, dtype)
    # the kernel of lstm_forward, told where P is: X and W_ih stand in (not read)
    _lstm_forward_into(gates, W_hh, _c_array(b_ih, dtype), _c_array(b_hh, dtype), W_hh,
                       _state(h0, B, H, dtype), _state(c0, B, H, dtype), active, h, c,
                       gates, False, table, ids)
    return LSTMForward(h, c, gates, active, rows)


def lstm_backward(X, W_ih, W_hh, forward: LSTMForward, dh, dc_n=None,
                  input_products: bool = True,
                  workspace: Workspace | None = None,
                  initial_state: bool = True) -> GatedGradients:
    """Every gradient of an LSTM layer given ∂L/∂h_t (dh, (T, B, H), through whatever reads
    h_t) and ∂L/∂c_T (dc_n, (B, H) or None). ``input_products`` False leaves ∂L/∂W_ih and
    ∂L/∂X (None) to a caller that formed X W_ihᵀ itself: it has dA_ih for them.
    ``workspace``: a large layer's dA and ∂L/∂X are taken from it (see lstm_forward).
    ``initial_state`` False: ∂L/∂h_0 and ∂L/∂c_0 are not wanted (``h0``, ``c0`` None), and
    the product for ∂L/∂h_0 is not computed."""
    dtype = forward.h.dtype
    T, B, H = dh.shape
    in_kernel = False
    size = T * B * 4 * H * H
    if input_products:
        D = X.shape[2]
        X = _c_array(X, dtype)
        W_ih = _c_array(W_ih, dtype)
        size = T * B * 4 * H * max(D, H)
        in_kernel = size < current_tuning().products_in_kernel_below
    W_hh = _c_array(W_hh, dtype)
    dh = _c_array(dh, dtype)
    dc_n = _state(dc_n, B, H, dtype)
    dh0 = np.empty((B, H), dtype)
    dc0 = np.empty((B, H), dtype)
    d_bias = np.empty(4 * H, dtype)
    space = _space(workspace, size)
    dA = take(space, "lstm.dA", (T, B, 4 * H), dtype)
    if in_kernel:
        d_W_ih = np.empty((4 * H, D), dtype)
        d_W_hh = np.empty((4 * H, H), dtype)
        dX = take(space, "lstm.dX", (T, B, D), dtype)
        _lstm_backward(X, W_ih, W_hh, forward.h, forward.c, forward.gates, dh, dc_n,
                       forward.active, dA, dh0, dc0, d_bias, d_W_ih, d_W_hh, dX, True,
                       initial_state)
    else:
        # the same kernel, the loop only: empty arrays of the same types stand in for the
        # products' operands
        none2, none3 = np.empty((0, 0), dtype), np.empty((0, 0, 0), dtype)
        _lstm_backward(none3, none2, W_hh, forward.h, forward.c, forward.gates, dh, dc_n,
                       forward.active, dA, dh0, dc0, d_bias, none2, none2, none3, False,
                       initial_state)
        dA_rows = gather_rows(dA, forward.rows)  # dA is 0 on the padded steps
        dX = take(space, "lstm.dX", (T, B, D), dtype) if input_products else None
        d_W_ih, d_W_hh, dX = _weight_products(X, forward.h, dA_rows, dA_rows, W_ih,
                                              forward.rows, dX, input_products)
    if not initial_state:
        dh0 = dc0 = None
    # LSTM adds both biases to the same pre-activation: dA is their gradient twice over.
    return GatedGradients(d_W_ih, d_W_hh, d_bias, d_bias.copy(), dh0, dX, dA, dA, dc0)


def gru_forward(X, W_ih, W_hh, b_ih, b_hh, h0=None, lengths=None,
                projected=None, workspace: Workspace | None = None) -> GRUForward:
    """Every state of a GRU layer over X (T, B, D); h0 (B, H) or None (zeros).
    ``lengths`` (B,), longest first: sequence b runs lengths[b] steps and then keeps its
    state (None: all T; seqtool.core.rnn.stack sorts any other order). ``projected``
    (T, B, 3H): X W_ihᵀ formed by the caller (X is then not read and may be None); the
    biases are added to it in place. As TableRows (seqtool.core.rnn.table_rows) the
    kernel reads its rows from the table, the biases added to the table's rows. ``workspace``: a large layer's states, gate records
    and input projection are taken from it (valid until its owner takes them again:
    seqtool.core.buffers); without one they are fresh arrays."""
    if isinstance(projected, TableRows):
        dtype = _dtype_of(projected.table, W_hh)
    else:
        dtype = _dtype_of(X, W_ih, W_hh) if projected is None else _dtype_of(projected, W_hh)
    H = W_hh.shape[1]
    # b_hr and b_hz go into P with b_ih; b_hn stays apart (r multiplies W_hn h + b_hn).
    bias = np.array(b_ih, dtype=dtype)
    bias[:2 * H] += np.asarray(b_hh, dtype)[:2 * H]
    W_hh_T = transposed_as(W_hh, dtype)
    b_hn = np.ascontiguousarray(b_hh[2 * H:], dtype)
    recycle_from = current_tuning().recycle_from
    ids = _NO_TABLE[np.dtype(dtype)][1]
    if isinstance(projected, TableRows):  # the bias added to the table's rows, not P's
        P = projected.biased_table(dtype, bias)[None]  # (1, V, 3H): the kernel reads rows
        T, B = projected.shape[:2]
        ids = projected.ids_as_int64()
        large = T * B * 3 * H * H >= recycle_from
    elif projected is not None:
        P = _c_array(projected, dtype)
        P += bias
        T, B = P.shape[:2]
        large = T * B * 3 * H * H >= recycle_from
    else:
        T, B, D = X.shape
        large = T * B * 3 * H * max(D, H) >= recycle_from
        out = take(workspace, "gru.P", (T, B, 3 * H), dtype) if large else None
        P = _input_projection(X, W_ih, bias, dtype, out)
    active, rows = step_schedule(lengths, T, B)
    space = workspace if large else None
    h = take(space, "gru.h", (T + 1, B, H), dtype)
    gates = take(space, "gru.gates", (T, B, 3 * H), dtype)
    hn = take(space, "gru.hn", (T, B, H), dtype)
    _gru_forward_into(P, W_hh_T, b_hn, _state(h0, B, H, dtype), active, h, gates, hn, ids)
    return GRUForward(h, gates, hn, active, rows)


def gru_backward(X, W_ih, W_hh, forward: GRUForward, dh,
                 input_products: bool = True,
                 workspace: Workspace | None = None,
                 initial_state: bool = True) -> GatedGradients:
    """Every gradient of a GRU layer given ∂L/∂h_t (dh, (T, B, H)). ``input_products``
    False leaves ∂L/∂W_ih and ∂L/∂X (None) to a caller that formed X W_ihᵀ itself: it has
    dA_ih for them. ``workspace``: a large layer's dA and ∂L/∂X are taken from it (see
    gru_forward). ``initial_state`` False: ∂L/∂h_0 is not wanted (``h0`` None), and its
    product is not computed."""
    dtype = forward.h.dtype
    T, B, H = dh.shape
    args = (np.ascontiguousarray(dh, dtype), forward.h, forward.gates, forward.hn,
            np.ascontiguousarray(W_hh, dtype), forward.active)
    D = X.shape[2] if input_products else 0
    large = T * B * 3 * H * max(D, H) >= current_tuning().recycle_from
    space = workspace if large else None
    dAi = take(space, "gru.dAi", (T, B, 3 * H), dtype)
    dAh = take(space, "gru.dAh", (T, B, 3 * H), dtype)
    dh0 = _gru_backward_into(*args, dAi, dAh, initial_state)
    if not initial_state:
        dh0 = None
    dX = take(space, "gru.dX", (T, B, D), dtype) if input_products and large else None
    grads = _weight_gradients(X, forward.h, dAi, dAh, W_ih, forward.rows, dX, input_products)
    return GatedGradients(**grads, h0=dh0, dA_ih=dAi, dA_hh=dAh)
