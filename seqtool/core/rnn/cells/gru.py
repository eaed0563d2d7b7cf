"""The GRU cell, as ``torch.nn.GRU`` (gates r, z, n):

    r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))      h' = (1 − z) ⊙ n + z ⊙ h

The kernels and the checked functions are :mod:`seqtool.core.rnn.gated`'s.
"""

from __future__ import annotations

import numpy as np

from seqtool.core.rnn.cells import Cell, kernels, register_cell


class GRUCell(Cell):
    name = "gru"
    gates = ("r", "z", "n")
    keep_gate = 1  # z keeps the old state
    uses_workspace = True
    reads_table_rows = True
    skips_initial_state = True
    description = "gated recurrent unit (PyTorch's equations)"

    def forward(self, X, weight_ih, weight_hh, bias_ih, bias_hh, h0=None, c0=None,
                lengths=None, *, projected=None, activation="tanh", workspace=None):
        return kernels("gated").gru_forward(X, weight_ih, weight_hh, bias_ih, bias_hh, h0,
                                            lengths, projected=projected, workspace=workspace)

    def backward(self, X, weight_ih, weight_hh, record, dh, dc_n=None, *, lengths=None,
                 activation="tanh", input_products=True, workspace=None,
                 initial_state=True):
        return kernels("gated").gru_backward(X, weight_ih, weight_hh, forward=record, dh=dh,
                                             input_products=input_products,
                                             workspace=workspace, initial_state=initial_state)

    def blank_record(self, T, B, H, dtype):
        from seqtool.core.rnn.gated import GRUForward
        from seqtool.core.rnn.lengths import step_schedule

        active, rows = step_schedule(None, T, B)
        return GRUForward(np.zeros((T + 1, B, H), dtype), np.zeros((T, B, 3 * H), dtype),
                          np.zeros((T, B, H), dtype), active, rows)

    def step_jacobian(self, weight_hh, record, t, activation="tanh") -> np.ndarray:
        """With hn = W_hn h + b_hn and the gates' derivatives ∂r/∂h = diag(r(1−r)) W_hr
        (likewise z):
            ∂h'/∂h = diag(z) + diag(h − n) ∂z/∂h + diag((1−z)(1−n²)) (diag(hn) ∂r/∂h + diag(r) W_hn)
        """
        H = weight_hh.shape[1]
        block = [weight_hh[q * H:(q + 1) * H] for q in range(3)]
        gates = record.gates[t, 0]
        r, z, n = (gates[q * H:(q + 1) * H] for q in range(3))
        hn, h_prev = record.hn[t, 0], record.h[t, 0]
        dr = (r * (1 - r))[:, None] * block[0]
        dz = (z * (1 - z))[:, None] * block[1]
        dn = ((1 - z) * (1 - n * n))[:, None] * (hn[:, None] * dr + r[:, None] * block[2])
        return np.diag(z) + (h_prev - n)[:, None] * dz + dn

    def direct_path(self, record, t) -> np.ndarray:
        """h_{t+1} = ... + z ⊙ h_t: z of step t+1."""
        H = record.h.shape[2]
        return record.gates[t, 0, H:2 * H]


GRU = register_cell(GRUCell())
