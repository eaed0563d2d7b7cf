"""Which rows of a right-padded batch a recurrent layer still has to compute at each step.

A batch (T, B, ...) holds B sequences of lengths ℓ_b ≤ T, each padded to T. Past its end a
sequence's state stays as it was (h_{t+1} = h_t, c_{t+1} = c_t for t ≥ ℓ_b), the semantics
of a packed sequence in torch: the last state is the state after the last real step, and the
padded steps cost nothing. In the backward pass the frozen steps pass ∂L/∂h_{t+1} (and
∂L/∂c_{t+1}) on to step t unchanged and contribute no gradient to any weight.

The layers' kernels take the rows sorted longest first, so that the sequences still running
at step t are the rows 0 .. active[t] − 1: the per-step product runs on a contiguous block
of rows, and the loops over rows have no branch in them (a branch per row there kept LLVM
from vectorising the gate loops: 2× slower). The training loop's batches come sorted
(seqtool.core.training.batches); seqtool.core.rnn.stack sorts any other batch and puts the
results back in the caller's order.
"""

from __future__ import annotations

import numpy as np

from seqtool.core.errors import InputError
from seqtool.core.rnn.tuning import current as current_tuning

_WHOLE: dict[tuple[int, int], np.ndarray] = {}  # (T, B) → active without padding
# The last few schedules made, as a tuple of (key, schedule) pairs, newest first: replaced
# whole, so that threads (the kernels release the GIL) never read one batch's key with
# another's schedule. A few, not one: an encoder–decoder asks for its source's and its
# target's in turn (forward, then backward in the reverse order), every step.
_recent: tuple = ()
RECENT_SCHEDULES = 4


def step_schedule(lengths, T: int, B: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(active (T,), rows) for ``lengths`` (B,) sorted longest first: active[t] = #{b : ℓ_b > t},
    and rows the flat indices t·B + b of the real steps in the batch's (T·B, ...) rows, or
    None when nearly all steps are real (the tuning's gather_below). The weight gradients
    Σ_t dA_tᵀ x_t and ∂L/∂x_t = dA_t W only need these rows: dA is 0 on the others.
    ``lengths`` None means every sequence runs all T steps (that array is made once per
    shape and shared: kernels only read it)."""
    global _recent
    if lengths is None:
        whole = _WHOLE.get((T, B))
        if whole is None:
            whole = _WHOLE[(T, B)] = np.full(T, B, dtype=np.int64)
        return whole, None
    lengths = np.asarray(lengths)
    gather_below = current_tuning().gather_below
    key = (T, B, lengths.shape, lengths.dtype.str, lengths.tobytes(), gather_below)
    recent = _recent
    for known, schedule in recent:  # a batch's backward pass, and every layer, asks again
        if known == key:
            return schedule
    if lengths.shape != (B,) or lengths.dtype.kind not in "iu":
        raise InputError("lengths", f"must be {B} whole numbers, one per sequence of the batch "
                         f"(got shape {lengths.shape}, dtype {lengths.dtype})")
    from seqtool.core.rnn.schedule import LONGEST_FIRST, schedule_into  # loads numba

    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    active = np.empty(T, np.int64)
    rows = np.empty(T * B, np.int64)  # the real steps of step t: rows 0 .. active[t] − 1
    status, n = schedule_into(lengths, T, float(gather_below), active, rows)
    if status == LONGEST_FIRST:
        raise InputError("lengths", "must come longest first (seqtool.core.rnn.stack sorts "
                         "a batch in any other order)")
    if status:  # the shortest or the longest out of range
        raise InputError("lengths", f"must lie in 0..{T} (the batch's steps); got "
                         f"{lengths[-1]}..{lengths[0]}")
    rows = None if n < 0 else rows[:n]
    _recent = ((key, (active, rows)),) + recent[:RECENT_SCHEDULES - 1]
    return active, rows


def is_longest_first(lengths: np.ndarray) -> bool:
    return not np.any(lengths[1:] > lengths[:-1])


def longest_first(lengths: np.ndarray) -> np.ndarray:
    """The order of a batch's rows by decreasing length (ties keep their order): the order
    in which the kernels skip the most padding."""
    return np.argsort(-np.asarray(lengths), kind="stable")


def gather_rows(a: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """a (T, B, K) as (T·B, K) rows, only ``rows`` of them if given."""
    flat = a.reshape(-1, a.shape[-1])
    return flat if rows is None else flat.take(rows, axis=0)


def scatter_rows(values: np.ndarray, rows: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """out (T, B, K) = values (T·B or len(rows), K) at ``rows``, zeros elsewhere."""
    flat = out.reshape(-1, out.shape[-1])
    if rows is None:
        flat[...] = values
    else:
        flat.fill(0)
        flat[rows] = values
    return out
