"""Numba kernels for the training loop's element-wise updates: one pass over memory
instead of a NumPy temporary per operation. Only the training loop loads them (they import
numba); the NumPy versions in :mod:`seqtool.core.optim` remain the reference.
"""

from __future__ import annotations

import numpy as np

from seqtool.core.rnn.jit import kernel


@kernel
def _adam_update(theta, g, m, v, weight_decay, one_minus_beta1, beta2, one_minus_beta2,
                 step_size, bias2_sqrt, eps):
    """Adam as torch computes it, element by element, in the arrays' own precision (the
    constants arrive as scalars of their dtype):
        g ← g + wd·θ;  m ← m + (1−β₁)(g − m);  v ← β₂ v + (1−β₂) g g;
        θ ← θ − step_size · m / (√v / √(1−β₂ᵗ) + ε)
    """
    t, gr, mm, vv = theta, g, m, v  # flat views (1-D: one compile for every parameter)
    for i in range(t.shape[0]):
        gi = gr[i] + weight_decay * t[i]
        mi = mm[i] + one_minus_beta1 * (gi - mm[i])
        vi = beta2 * vv[i] + one_minus_beta2 * gi * gi
        mm[i] = mi
        vv[i] = vi
        t[i] -= step_size * (mi / (np.sqrt(vi) / bias2_sqrt + eps))


def adam_constants(dtype: np.dtype, weight_decay: float, beta1: float, beta2: float,
                   lr: float, eps: float, t: int) -> tuple:
    """The scalars of :func:`_adam_update` after ``t`` steps, in ``dtype``: (wd, 1 − β₁, β₂,
    1 − β₂, lr / (1 − β₁ᵗ), √(1 − β₂ᵗ), ε)."""
    f = np.dtype(dtype).type
    return (f(weight_decay), f(1.0 - beta1), f(beta2), f(1.0 - beta2), f(lr / (1.0 - beta1**t)),
            f((1.0 - beta2**t) ** 0.5), f(eps))


def adam_update_flat(theta: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray,
                     constants: tuple) -> None:
    """One Adam step of ``theta`` in place: theta, m and v flat (1-D) views of C-contiguous
    arrays, so that matrices and vectors share one compiled kernel; g of the same size,
    any layout and dtype; ``constants`` from :func:`adam_constants`."""
    _adam_update(theta, np.ascontiguousarray(g, dtype=theta.dtype).reshape(-1), m, v,
                 *constants)

