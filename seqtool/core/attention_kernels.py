"""Numba kernels for the global attention of a seq2seq training step with the softmax selector
and a dot or general score (seqtool.core.global_attention): the scores, the masked softmax,
the context and the rows [c_t; h_t] of the combine layer in one pass over each sequence,
and the way back in another.

The NumPy form of the same work is about fifteen calls over (B, M, S) and (B, M, H) arrays
(batched products of B small matrices, the softmax, a concatenation, a gather, zeros and
scatters); in a seq2seq LSTM step at H = 256 they took ~1.3 ms of ~18. Each multiply-add
here is the same as there; only the order of the additions differs (rounding).
Imported when first used: global_attention itself imports no numba.
"""

from __future__ import annotations

import numpy as np

from seqtool.core.rnn.elementwise import _softmax_into, _typed
from seqtool.core.rnn.jit import inline_kernel, kernel, summing_kernel


@summing_kernel
def _dot(x, y):
    """Σ_h x_h y_h in x's dtype, summed in any order (as a BLAS sums it)."""
    total = _typed(0.0, x)
    for h in range(x.shape[0]):
        total += x[h] * y[h]
    return total


@inline_kernel
def _copy_row(dst, src):
    """dst[h] = src[h] for 1-D arrays of one length. (Each row gets a loop of its own: a loop
    that writes two rows, or reads and writes two, ran ~3× slower, not vectorised.)"""
    for h in range(dst.shape[0]):
        dst[h] = src[h]


@inline_kernel
def _add_scaled(dst, w, x):
    """dst += w x for 1-D arrays of one length."""
    for h in range(dst.shape[0]):
        dst[h] += w * x[h]


@inline_kernel
def _add_scaled_pair(dst, w0, x0, w1, x1):
    """dst += w0 x0 + w1 x1: two terms per read and write of dst (a sum over j of w_j x_j
    is bound by those, ~1.5× faster than one term at a time)."""
    for h in range(dst.shape[0]):
        dst[h] += w0 * x0[h] + w1 * x1[h]


@inline_kernel
def _positions(rows, B, M):
    """The row of the combined rows that (b, t) is, flat b·M + t: i for rows[i], −1 for a
    step that is not combined; every step is when ``rows`` is empty."""
    positions = np.empty(B * M, dtype=np.int64)
    if rows.shape[0] == 0:
        for i in range(B * M):
            positions[i] = i
    else:
        positions[:] = -1
        for i in range(rows.shape[0]):
            positions[rows[i]] = i
    return positions


@kernel
def softmax_attend_into(queries, keys, score_keys, lengths, temperature, rows, weights,
                        context, both):
    """For each sequence b (n_b = lengths[b] real source steps) and decoder step t:

        s_tj = h_tᵀ k_j (j < n_b),   a_tj = exp((s_tj − max_i s_ti) / T) / Σ_i (same)
        c_t = Σ_j a_tj ē_j,           both[r] = [c_t; h_t] for the combined row r of (b, t)

    queries h (M, B, H) (time-major, as the decoder writes them), keys ē (B, S, H),
    score_keys k (B, S, H) (dot: the keys themselves; general: W_a ē), ``rows`` the combined
    steps as flat indices b·M + t (empty: all, in that order). Every array is C-contiguous
    (one compiled form per dtype). Writes weights (B, M, S) float64 (0 on the padding),
    context (B, M, H) and both (R, 2H). Scores and c_t in the keys' dtype (the weights
    rounded to it first), as the NumPy form computes them; the softmax in float64."""
    M, B, H = queries.shape
    positions = _positions(rows, B, M)
    for b in range(B):
        n = lengths[b]
        for t in range(M):
            q = queries[t, b]
            a = weights[b, t]
            top = -np.inf
            for j in range(n):
                s = _dot(q, score_keys[b, j])
                a[j] = s
                if s > top or j == 0:
                    top = s
            _softmax_into(a, a, n, top, temperature)
            c = context[b, t]
            c[:] = _typed(0.0, c)
            for j in range(0, n - 1, 2):
                _add_scaled_pair(c, _typed(a[j], c), keys[b, j], _typed(a[j + 1], c),
                                 keys[b, j + 1])
            if n % 2:
                _add_scaled(c, _typed(a[n - 1], c), keys[b, n - 1])
            r = positions[b * M + t]
            if r >= 0:
                _copy_row(both[r, :H], c)
                _copy_row(both[r, H:], q)


@kernel
def softmax_attend_backward_into(weights, queries, keys, score_keys, lengths, temperature,
                                 rows, d_rows, d_queries, d_keys, d_score_keys, dot):
    """The VJP of :func:`softmax_attend_into`, given ∂L/∂[c_t; h_t] of the combined rows
    (d_rows (R, 2H)); a step that was not combined has none:

        ∂a_tj = ∂c_tᵀ ē_j,   ∂s_tj = a_tj (∂a_tj − Σ_i a_ti ∂a_ti) / T
        ∂h_t = ∂h_t(rows) + Σ_j ∂s_tj k_j,   ∂ē_j = Σ_t a_tj ∂c_t,   ∂k_j = Σ_t ∂s_tj h_t

    Writes d_queries (M, B, H) and d_keys (S, B, H) (time-major, as the recurrent layers take
    them; 0 on the padding) and, for a general score, d_score_keys (S, B, H); for a dot
    score (score_keys is keys) pass d_keys as d_score_keys too, and ``dot`` True: ∂k then
    adds into ∂ē in the same pass."""
    M, B, H = queries.shape
    S = keys.shape[1]
    positions = _positions(rows, B, M)
    d_keys[:] = _typed(0.0, d_keys)
    if not dot:  # a dot score's d_score_keys is d_keys
        d_score_keys[:] = _typed(0.0, d_score_keys)
    d_a = np.empty(S)
    d_s = np.empty(S, dtype=d_queries.dtype)
    for b in range(B):
        n = lengths[b]
        for t in range(M):
            dq = d_queries[t, b]
            r = positions[b * M + t]
            if r < 0:
                dq[:] = _typed(0.0, dq)
                continue
            dc = d_rows[r, :H]
            _copy_row(dq, d_rows[r, H:])
            a = weights[b, t]
            q = queries[t, b]
            inner = 0.0
            for j in range(n):
                d_a[j] = _dot(dc, keys[b, j])
                inner += a[j] * d_a[j]
            for j in range(n):
                w = _typed(a[j], dq)
                ds = _typed(a[j] * (d_a[j] - inner) / temperature, dq)
                d_s[j] = ds
                if dot:
                    _add_scaled_pair(d_keys[j, b], w, dc, ds, q)
                else:
                    _add_scaled(d_keys[j, b], w, dc)
                    _add_scaled(d_score_keys[j, b], ds, q)
            for j in range(0, n - 1, 2):
                _add_scaled_pair(dq, d_s[j], score_keys[b, j], d_s[j + 1], score_keys[b, j + 1])
            if n % 2:
                _add_scaled(dq, d_s[n - 1], score_keys[b, n - 1])
