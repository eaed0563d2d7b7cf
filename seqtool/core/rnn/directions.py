"""The reverse direction of a bidirectional stack: which step it reads when, and how its
states join the forward direction's.

A bidirectional layer runs the cell twice over the same input x (T, B, D): the forward
direction over x_0 .. x_{ℓ_b−1} as a one-way layer does, and the reverse direction over
each sequence's real steps in reverse order,

    x̃_s = x_{rev_b(s)},   rev_b(s) = ℓ_b − 1 − s for s < ℓ_b,   rev_b(s) = s (padding) for s ≥ ℓ_b,

so that a reversed sequence is again right-padded with the same length ℓ_b, and the
kernels' length handling (seqtool.core.rnn.lengths: a state is kept past the sequence's end
and the padded steps cost nothing) applies to it unchanged. With h_t the forward state
after reading x_t and h̃_s the reverse state after reading x̃_s (a record's h[t + 1] and
h̃[s + 1]), h̃_{ℓ_b−1−t} is the reverse state after it has read x_{ℓ_b−1} .. x_t, and the
layer's output is

    y_t = [h_t ; h̃_{ℓ_b−1−t}]   (2H)  for t < ℓ_b,      y_t = [h_{ℓ_b−1} ; h̃_{ℓ_b−1}]  for t ≥ ℓ_b:

at a padded step each half holds its direction's final state (the forward half as a
one-way layer has it; the reverse half because s = t there reads the kept state; for
ℓ_b = 0 both are the initial states). Callers mask the padded steps; a gradient that
reaches them flows to those final states.

rev_b is its own inverse, so one index serves both ways: it takes the
input into the reverse direction's order, brings its states back, and takes their
gradients there and back again. It is made once per forward pass as the (T, B) array of
the flat rows rev_b(t)·B + b of a (T·B, K) view, and each use is one gather, with no loop
over sequences; the backward pass reuses the forward pass's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqtool.core.buffers import take
from seqtool.core.rnn.lengths import step_schedule

REVERSE = "_reverse"  # torch's suffix of the reverse direction's parameters


def scope_keys(layer: int) -> tuple[Any, str, str]:
    """The workspace scope keys of a bidirectional layer (seqtool.core.buffers): its
    forward direction's, its reverse direction's and this module's joining arrays'. The
    forward direction keeps the one-way stack's key ``layer``; the others add ``_reverse``
    and ``_join``, so that no two users of a layer's arrays ever meet on a name."""
    return layer, f"{layer}{REVERSE}", f"{layer}_join"


def reversal_index(lengths: np.ndarray | None, T: int, B: int) -> np.ndarray:
    """(T, B) intp: entry (t, b) is the flat row rev_b(t)·B + b of a (T·B, K) view of a
    (T, B, K) array, with rev_b(t) = ℓ_b − 1 − t on the real steps and t on the padding.
    ``lengths`` (B,) in the layers' (longest-first) order, or None (every sequence has T
    steps). An involution: gathering twice with it gives back the original."""
    t = np.arange(T, dtype=np.intp)[:, None]
    if lengths is None:
        steps = np.broadcast_to(T - 1 - t, (T, B))
    else:
        # the same checks (and errors) as the layers' own: B whole numbers in 0..T
        step_schedule(lengths, T, B)
        ell = np.asarray(lengths, dtype=np.intp)[None, :]
        steps = np.where(t < ell, ell - 1 - t, t)
    return steps * B + np.arange(B, dtype=np.intp)[None, :]


def reverse_steps(a: np.ndarray, index: np.ndarray, out: np.ndarray | None = None,
                  ) -> np.ndarray:
    """a (T, B, K) with each sequence's real steps reversed (see :func:`reversal_index`):
    one gather, into ``out`` (T, B, K, C-contiguous, a's dtype) if given. Its own inverse."""
    T, B, K = a.shape
    if out is None:
        out = np.empty((T, B, K), a.dtype)
    _gather(a.reshape(T * B, K), index, out.reshape(T * B, K))
    return out


def _gather(rows: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
    """out[i] = rows[index[i]]. mode="clip" because np.take's default ("raise") with
    ``out`` gathers into a temporary first and copies it over (4× slower); the index is in
    range by construction (reversal_index checked the lengths)."""
    np.take(rows, index.reshape(-1), axis=0, out=out, mode="clip")


def join(forward_h: np.ndarray, reverse_h: np.ndarray, index: np.ndarray,
         out: np.ndarray) -> np.ndarray:
    """The layer output y_t = [h_t ; h̃_{rev(t)}] into ``out`` (T, B, 2H), from the two
    directions' states after each step, forward_h and reverse_h (T, B, H) (the records'
    h[1:])."""
    T, B, H = forward_h.shape
    out[..., :H] = forward_h
    # rev is an involution, so the gather y[t, H:] = h̃[rev(t)] is the scatter
    # y[rev(s), H:] = h̃[s], written straight into the strided half of y
    out.reshape(T * B, 2 * H)[index.reshape(-1), H:] = reverse_h.reshape(T * B, H)
    return out


def split(dy: np.ndarray, index: np.ndarray, space: Any) -> tuple[np.ndarray, np.ndarray]:
    """∂L/∂y (T, B, 2H) as the two directions' ∂L/∂h (T, B, H) each, the reverse one in
    its own step order; fresh (or ``space``'s) C-contiguous arrays, which the caller may
    add to (a final state's gradient)."""
    T, B, H2 = dy.shape
    H = H2 // 2
    dh = take(space, "directions.dh", (T, B, H), dy.dtype)
    dh[...] = dy[..., :H]
    dh_reverse = take(space, "directions.dh_reverse", (T, B, H), dy.dtype)
    _gather(dy.reshape(T * B, H2)[:, H:], index, dh_reverse.reshape(T * B, H))
    return dh, dh_reverse


def merge_input_gradients(dx: np.ndarray, dx_reverse: np.ndarray, index: np.ndarray,
                          space: Any) -> np.ndarray:
    """∂L/∂x = the forward direction's ∂L/∂x plus the reverse one's brought back to the
    steps it read (T, B, D): both directions read the same x."""
    out = reverse_steps(dx_reverse, index, take(space, "directions.dx", dx_reverse.shape,
                                                dx_reverse.dtype))
    out += dx
    return out


@dataclass
class ReverseLayers:
    """The reverse direction of a bidirectional stack's forward pass."""

    index: np.ndarray  # (T, B): reversal_index of the batch, reused by the backward pass
    layers: list[Any] = field(default_factory=list)  # per layer: its record over x̃
    inputs: list[np.ndarray] = field(default_factory=list)  # per layer: x̃ (T, B, D_l)
    output: np.ndarray | None = None  # the top layer's y (T, B, 2H), the layers' order
