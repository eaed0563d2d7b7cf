"""The vanilla (Elman) cell, as ``torch.nn.RNN``:

    h_t = f(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh),   f ∈ {tanh, relu, sigmoid, identity}

One gate block (G = 1). The kernels are :mod:`seqtool.core.rnn.vanilla`'s, which take one
bias b_h = b_ih + b_hh; ∂L/∂b_ih = ∂L/∂b_hh = Σ_t dz_t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqtool.core.rnn.cells import Cell, CellGradients, kernels, register_cell

ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
NONLINEARITIES = ("tanh", "relu")  # what a trained rnn layer may use (torch.nn.RNN's choice)


@dataclass
class RNNForward:
    """The vanilla layer's record: its states."""

    h: np.ndarray  # (T+1, B, H), h[0] = h_0


class RNNCell(Cell):
    name = "rnn"
    gates = ("h",)
    activations = ACTIVATIONS
    description = "vanilla RNN, h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)"
    reads_table_rows = True
    skips_initial_state = True

    def forward(self, X, weight_ih, weight_hh, bias_ih, bias_hh, h0=None, c0=None,
                lengths=None, *, projected=None, activation="tanh") -> RNNForward:
        return RNNForward(kernels("vanilla").rnn_forward(X, weight_ih, weight_hh,
                                                         bias_ih + bias_hh, h0, activation,
                                                         lengths, projected=projected))

    def backward(self, X, weight_ih, weight_hh, record, dh, dc_n=None, *, lengths=None,
                 activation="tanh", input_products=True, initial_state=True) -> CellGradients:
        g = kernels("vanilla").rnn_backward(X, weight_ih, weight_hh, record.h, dh, activation,
                                            lengths=lengths, input_products=input_products,
                                            initial_state=initial_state)
        # one bias in the kernels: both of torch's get its gradient
        return CellGradients(weight_ih=g.W_xh, weight_hh=g.W_hh, bias_ih=g.b_h,
                             bias_hh=g.b_h.copy(), h0=g.h0, x=g.x, dA_ih=g.dz, dA_hh=g.dz)

    def step_jacobian(self, weight_hh, record, t, activation="tanh") -> np.ndarray:
        """∂h_{t+1}/∂h_t = diag(f'(z_{t+1})) W_hh, with f'(z) read off h = f(z)."""
        from seqtool.core.rnn.vanilla import derivative_from_h

        return derivative_from_h(record.h[t + 1, 0], activation)[:, None] * weight_hh

    def blank_record(self, T, B, H, dtype) -> RNNForward:
        return RNNForward(np.zeros((T + 1, B, H), dtype))

    def warm_extra(self, dtype) -> None:
        """The truncated backward kernel of `bptt --truncate` (its own kernel), on a blank
        record: nothing else compiles for it."""
        from seqtool.core.rnn.vanilla import rnn_backward

        X = np.ones((3, 1, 2), dtype)
        W_xh, W_hh = np.full((2, 2), 0.1, dtype), np.full((2, 2), 0.1, dtype)
        rnn_backward(X, W_xh, W_hh, self.blank_record(3, 1, 2, dtype).h,
                     np.ones((3, 1, 2), dtype), truncate=1)

    def bptt_problem(self, *, steps, input_size, hidden, output_size, seed=0, radius=None,
                     activation="tanh", loss="mse", target_at="all", forget_bias=1.0):
        """The vanilla analysis's own problem, in math names (W_xh, W_hh, ..., with f)."""
        from seqtool.core.rnn.bptt import generate_problem

        return generate_problem(steps, input_size, hidden, output_size, seed, radius,
                                activation, loss, target_at)


RNN = register_cell(RNNCell())
