"""Which outputs read which inputs: the measured dependency map ‖∂y_t/∂x_s‖ of a model.

For one sequence, ‖∂y_t/∂x_s‖_F is the Frobenius norm of the Jacobian of the output at
step t (all its units) with respect to the input vector at step s (the embedding row, or
the numeric input). A one-way model has exact zeros above the diagonal (s > t): y_t cannot
read the future. A many-to-one model has one row, y against every x_s.

All the Jacobians come from one batched backward pass: the sequence is repeated once per
(output step, output unit), each copy seeded with a one-hot ∂/∂y.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqtool.core.models import ModelSpec, backward_with_inputs, forward

MAX_STEPS = 12


def pick_sequence(dataset: Any, max_steps: int = MAX_STEPS) -> int:
    """The first sequence of the longest length up to ``max_steps``."""
    lengths = np.array([len(x) for x in dataset.inputs])
    fitting = np.where(lengths <= max_steps, lengths, 0)
    return int(fitting.argmax()) if fitting.max() > 0 else int(lengths.argmin())


def dependency_map(spec: ModelSpec, params: dict[str, np.ndarray], dataset: Any,
                   index: int | None = None, max_steps: int = MAX_STEPS) -> dict[str, Any]:
    """‖∂y_t/∂x_s‖ for one sequence of ``dataset`` (at most ``max_steps`` steps)."""
    i = pick_sequence(dataset, max_steps) if index is None else index
    x = np.asarray(dataset.inputs[i])[:max_steps]
    T = len(x)
    per_step = spec.per_step
    O = spec.output_size
    rows = T if per_step else 1
    copies = rows * O
    if spec.tokens_in:
        inputs = np.repeat(x[:, None], copies, axis=1)  # (T, copies)
    else:
        inputs = np.repeat(x[:, None, :], copies, axis=1).astype(params["head.weight"].dtype)
    lengths = np.full(copies, T)
    fwd = forward(spec, params, inputs, lengths)
    seeds = np.zeros_like(fwd.outputs)
    for r in range(rows):
        for o in range(O):
            if per_step:
                seeds[r, r * O + o, o] = 1.0
            else:
                seeds[r * O + o, o] = 1.0
    _, dX = backward_with_inputs(spec, params, fwd, lengths, seeds)  # (T, copies, E)
    # Σ over output units and input dimensions of the squared entries, per (t, s)
    squares = (dX.astype(np.float64) ** 2).sum(axis=-1).T.reshape(rows, O, T).sum(axis=1)
    norms = np.sqrt(squares)
    above = float(np.triu(norms, 1).max()) if per_step and T > 1 else 0.0
    tokens = (dataset.vocab.decode(x) if getattr(dataset, "vocab", None) is not None
              else [f"x{s + 1}" for s in range(T)])
    return {"sequence": i, "steps": T, "inputs": tokens, "per_step": per_step,
            "norms": norms.tolist(), "max_above_diagonal": above}
