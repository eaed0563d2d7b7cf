"""The LSTM cell, as ``torch.nn.LSTM`` (gates i, f, g, o), with a cell state c:

    i = σ(W_ii x + b_ii + W_hi h + b_hi)   f = σ(...)   g = tanh(...)   o = σ(...)
    c' = f ⊙ c + i ⊙ g      h' = o ⊙ tanh(c')

The kernels and the checked functions are :mod:`seqtool.core.rnn.gated`'s.
"""

from __future__ import annotations

import numpy as np

from seqtool.core.rnn.cells import Cell, kernels, register_cell


class LSTMCell(Cell):
    name = "lstm"
    gates = ("i", "f", "g", "o")
    has_cell_state = True
    keep_gate = 1  # f keeps the old cell state
    uses_workspace = True
    reads_table_rows = True
    skips_initial_state = True
    description = "long short-term memory (PyTorch's equations)"

    def forward(self, X, weight_ih, weight_hh, bias_ih, bias_hh, h0=None, c0=None,
                lengths=None, *, projected=None, activation="tanh", workspace=None):
        return kernels("gated").lstm_forward(X, weight_ih, weight_hh, bias_ih, bias_hh, h0, c0,
                                             lengths, projected=projected, workspace=workspace)

    def backward(self, X, weight_ih, weight_hh, record, dh, dc_n=None, *, lengths=None,
                 activation="tanh", input_products=True, workspace=None,
                 initial_state=True):
        return kernels("gated").lstm_backward(X, weight_ih, weight_hh, forward=record, dh=dh,
                                              dc_n=dc_n, input_products=input_products,
                                              workspace=workspace, initial_state=initial_state)

    def blank_record(self, T, B, H, dtype):
        from seqtool.core.rnn.gated import LSTMForward
        from seqtool.core.rnn.lengths import step_schedule

        active, rows = step_schedule(None, T, B)
        return LSTMForward(np.zeros((T + 1, B, H), dtype), np.zeros((T + 1, B, H), dtype),
                           np.zeros((T, B, 4 * H), dtype), active, rows)

    def step_jacobian(self, weight_hh, record, t, activation="tanh") -> np.ndarray:
        """∂(h', c')/∂(h, c), with the gates' derivatives ∂i/∂h = diag(i(1−i)) W_hi
        (likewise f, o) and ∂g/∂h = diag(1−g²) W_hg:
            ∂c'/∂h = diag(c) ∂f/∂h + diag(g) ∂i/∂h + diag(i) ∂g/∂h     ∂c'/∂c = diag(f)
            ∂h'/∂h = diag(tanh c') ∂o/∂h + diag(o(1−tanh²c')) ∂c'/∂h  ∂h'/∂c = diag(o(1−tanh²c') f)
        """
        H = weight_hh.shape[1]
        block = [weight_hh[q * H:(q + 1) * H] for q in range(4)]
        gates = record.gates[t, 0]
        i, f, g, o = (gates[q * H:(q + 1) * H] for q in range(4))
        c_prev, c_new = record.c[t, 0], record.c[t + 1, 0]
        di = (i * (1 - i))[:, None] * block[0]
        df = (f * (1 - f))[:, None] * block[1]
        dg = (1 - g * g)[:, None] * block[2]
        do = (o * (1 - o))[:, None] * block[3]
        dc_dh = c_prev[:, None] * df + g[:, None] * di + i[:, None] * dg
        tc = np.tanh(c_new)
        through_c = o * (1 - tc * tc)
        dh_dh = tc[:, None] * do + through_c[:, None] * dc_dh
        return np.block([[dh_dh, np.diag(through_c * f)], [dc_dh, np.diag(f)]])


LSTM = register_cell(LSTMCell())
