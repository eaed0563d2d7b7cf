"""Numba kernels for the softmax of :func:`seqtool.core.selectors.masked.select_rows`, the
selector of every attending model's training step: one pass over each row of the padded
(B, T) scores, where the NumPy version made a dozen passes and temporaries over all of them
(a seq2seq LSTM's step at H = 256 spent ~0.3 ms of its ~19 in them). Imported when first
used: the selectors themselves import no numba.
"""

from __future__ import annotations

from seqtool.core.rnn.elementwise import _softmax_into
from seqtool.core.rnn.jit import kernel


@kernel
def masked_softmax_into(s, lengths, temperature, w):
    """w_b = softmax(s_b[:n_b] / T) ⊕ 0 for each row b of s (B, T), n_b = lengths[b] ≥ 1:
    e_j = exp((s_j − max_{i<n_b} s_i) / T), w_j = e_j / Σ_{i<n_b} e_i; float64. A NaN score
    makes its row NaN (its e_j, and so Σ e, are NaN): the training loop's guard then stops."""
    for b in range(s.shape[0]):
        n = lengths[b]
        row, out = s[b], w[b]
        m = row[0]
        for j in range(1, n):
            x = row[j]
            if x > m:
                m = x
        _softmax_into(out, row, n, m, temperature)


@kernel
def masked_softmax_vjp_into(w, g, lengths, temperature, out):
    """The VJP of :func:`masked_softmax_into`: ∂L/∂s_bj = w_bj (g_bj − Σ_{i<n_b} w_bi g_bi) / T
    on the real steps j < n_b, 0 on the padding (whatever g holds there)."""
    B, T = w.shape
    for b in range(B):
        n = lengths[b]
        inner = 0.0
        for j in range(n):
            inner += w[b, j] * g[b, j]
        for j in range(n):
            out[b, j] = w[b, j] * (g[b, j] - inner) / temperature
        for j in range(n, T):
            out[b, j] = 0.0
