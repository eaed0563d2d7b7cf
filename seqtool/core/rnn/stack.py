"""Stacked recurrent layers of any registered cell with PyTorch's state-dict names.

Layer l reads the outputs of layer l − 1 (layer 0 reads x). Parameters are stored as
``torch.nn.RNN/GRU/LSTM(input_size, hidden, num_layers).state_dict()`` stores them:
``weight_ih_l{l}`` (G·H, D_l), ``weight_hh_l{l}`` (G·H, H), ``bias_ih_l{l}``, ``bias_hh_l{l}``
(G·H) with G the cell's gate blocks (seqtool.core.rnn.cells: 1 for rnn, 3 for gru: r, z, n,
4 for lstm: i, f, g, o), so weights move between seqtool and torch without reshaping.
Initial and final states are (L, B, H) as in torch.

The backward pass runs the layers top-down: ∂L/∂x of layer l is the ∂L/∂output of layer
l − 1; a gradient on a final state (h_n, c_n) enters that layer's last step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqtool.core.rnn.cells import PARAM_NAMES, get_cell
from seqtool.core.rnn.lengths import is_longest_first, longest_first


def param_key(name: str, layer: int) -> str:
    return f"{name}_l{layer}"


def init_state_dict(cell: str, input_size: int, hidden: int, num_layers: int = 1,
                    seed: int = 0, dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """Every layer initialised by the cell (:meth:`Cell.init_layer`: PyTorch's default,
    every entry ~ U(−1/√H, 1/√H)), from one random stream."""
    spec = get_cell(cell)
    rng = np.random.default_rng(seed)
    state = {}
    for layer in range(num_layers):
        D = input_size if layer == 0 else hidden
        params = spec.init_layer(rng, D, hidden, dtype)
        for name in PARAM_NAMES:
            state[param_key(name, layer)] = params[name]
    return state


def num_layers_of(state: dict[str, np.ndarray]) -> int:
    return sum(1 for key in state if key.startswith("weight_ih_l"))


def _layer(state: dict[str, np.ndarray], layer: int) -> list[np.ndarray]:
    return [state[param_key(name, layer)] for name in PARAM_NAMES]


@dataclass
class StackForward:
    """Every layer's forward record, the top layer's outputs and the final states."""

    cell: str
    layers: list[Any]  # per layer: the cell's forward record (RNNForward, GRUForward, ...)
    inputs: list[np.ndarray]  # per layer: what it read, (T, B, D_l)
    masks: list[np.ndarray | None] = field(default_factory=list)  # per layer: dropout on its input
    lengths: np.ndarray | None = None  # (B,): steps each sequence ran, in the layers' order
    # lends the layers' large arrays (seqtool.core.buffers): the backward pass uses it too
    workspace: Any = None
    # The layers run on the rows sorted longest first (seqtool.core.rnn.lengths): their row i
    # is the caller's row order[i]. None: the caller's order already was.
    order: np.ndarray | None = None

    @property
    def steps_and_batch(self) -> tuple[int, int]:  # (T, B)
        h = self.layers[0].h
        return h.shape[0] - 1, h.shape[1]

    @property
    def output(self) -> np.ndarray:  # (T, B, H), the caller's order
        return self._callers(self.layers[-1].h[1:])

    @property
    def h_n(self) -> np.ndarray:  # (L, B, H)
        return self._callers(np.stack([f.h[-1] for f in self.layers]))

    @property
    def c_n(self) -> np.ndarray | None:  # (L, B, H), cells with a cell state only
        if not get_cell(self.cell).has_cell_state:
            return None
        return self._callers(np.stack([f.c[-1] for f in self.layers]))

    def _callers(self, a: np.ndarray) -> np.ndarray:
        """a (·, B, ...) with its rows back in the caller's order."""
        return a if self.order is None else _rows_to(a, np.argsort(self.order))

    def _layers(self, a: np.ndarray | None) -> np.ndarray | None:
        """a (·, B, ...) in the caller's order, with its rows in the layers' order."""
        return a if a is None or self.order is None else _rows_to(a, self.order)


def _rows_to(a: np.ndarray, order: np.ndarray) -> np.ndarray:
    """a (·, B, ...) with its rows (the second axis) taken in ``order`` (a new array)."""
    return a.take(order, axis=1)


def dropout_mask(shape: tuple[int, ...], p: float, rng: np.random.Generator,
                 dtype: Any) -> np.ndarray:
    """Inverted dropout: each entry kept with probability 1 − p and then scaled by 1/(1 − p),
    so that the expected input of the next layer is unchanged."""
    keep = rng.random(shape) >= p
    return keep.astype(dtype) / dtype(1.0 - p)


def stack_forward(cell: str, X: np.ndarray, state: dict[str, np.ndarray],
                  h0: np.ndarray | None = None, c0: np.ndarray | None = None,
                  nonlinearity: str = "tanh", dropout: float = 0.0,
                  rng: np.random.Generator | None = None,
                  lengths: np.ndarray | None = None,
                  projected: np.ndarray | None = None, workspace: Any = None) -> StackForward:
    """Run every layer over X (T, B, D); h0, c0 are (L, B, H) or None (zeros).

    ``projected`` (T, B, G·H): the first layer's input projection X W_ih_l0ᵀ, formed by the
    caller (X is then not read and may be None; the array is consumed). With it,
    :func:`stack_backward` with ``input_products=False`` returns ∂L/∂(X W_ih_l0ᵀ) as
    ``dA_ih_l0`` in place of ``x`` and ``weight_ih_l0``.

    ``lengths`` (B,) for a right-padded batch: sequence b runs lengths[b] steps, after which
    every layer keeps its state (torch's packed-sequence semantics: h_n, c_n are the states
    after the last real step), and the padded steps cost no work (seqtool.core.rnn.lengths).
    A batch that does not come longest first is sorted for the layers and handed back in
    its own order.

    ``dropout`` p > 0 (with ``rng``) drops the inputs of layers 1..L−1, i.e. the outputs of
    the layers below them, as ``torch.nn.LSTM(dropout=p)`` does in training.

    ``workspace`` (a :class:`seqtool.core.buffers.Workspace`, one scope per layer) lends the
    large arrays of the cells that take one; the records then stay valid until the owner's
    next forward pass (the training loop: the next step). None: fresh arrays.
    """
    spec = get_cell(cell)
    order = None
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.ndim == 1 and not is_longest_first(lengths):
            order = longest_first(lengths)
            lengths = lengths[order]
            X, h0, c0, projected = (None if a is None else _rows_to(a, order)
                                    for a in (X, h0, c0, projected))
    layers, inputs, masks = [], [], []
    x = X
    for layer in range(num_layers_of(state)):
        W_ih, W_hh, b_ih, b_hh = _layer(state, layer)
        P = projected if layer == 0 else None
        mask = None
        if layer > 0 and dropout > 0.0:
            mask = dropout_mask(x.shape, dropout, rng, x.dtype.type)
            x = x * mask
        masks.append(mask)
        record = spec.forward(x, W_ih, W_hh, b_ih, b_hh, None if h0 is None else h0[layer],
                              None if c0 is None else c0[layer], lengths, projected=P,
                              activation=nonlinearity, **_lent(spec, workspace, layer))
        inputs.append(x)
        layers.append(record)
        x = record.h[1:]
    return StackForward(cell, layers, inputs, masks, lengths, workspace, order)


def _lent(spec: Any, workspace: Any, layer: int) -> dict[str, Any]:
    """The ``workspace=`` argument of layer ``layer`` for a cell that takes one."""
    if workspace is None or not spec.uses_workspace:
        return {}
    return {"workspace": workspace.scope(layer)}


def stack_backward(forward: StackForward, state: dict[str, np.ndarray], dout: np.ndarray,
                   dh_n: np.ndarray | None = None, dc_n: np.ndarray | None = None,
                   nonlinearity: str = "tanh",
                   input_products: bool = True) -> dict[str, np.ndarray]:
    """Gradients of L given ∂L/∂output (T, B, H) and optional ∂L/∂h_n, ∂L/∂c_n (L, B, H).

    Returns the state dict's keys plus ``h0`` and ``c0`` (L, B, H) and ``x`` (T, B, D);
    with ``input_products`` False (for a first layer whose input projection the caller
    formed), ``dA_ih_l0`` = ∂L/∂(X W_ih_l0ᵀ) (T, B, G·H) instead of ``x`` and
    ``weight_ih_l0``.
    """
    spec = get_cell(forward.cell)
    L = len(forward.layers)
    grads: dict[str, np.ndarray] = {}
    h0_grads, c0_grads = [None] * L, [None] * L
    upstream, dh_n, dc_n = (forward._layers(a) for a in (dout, dh_n, dc_n))
    for layer in range(L - 1, -1, -1):
        W_ih, W_hh, b_ih, b_hh = _layer(state, layer)
        record, x = forward.layers[layer], forward.inputs[layer]
        dh = np.array(upstream, dtype=record.h.dtype)  # a copy: we add to it
        if dh_n is not None:
            dh[-1] += dh_n[layer]  # h_n of this layer is its last output
        products = input_products or layer > 0
        g = spec.backward(x, W_ih, W_hh, record, dh, None if dc_n is None else dc_n[layer],
                          lengths=forward.lengths, activation=nonlinearity,
                          input_products=products, **_lent(spec, forward.workspace, layer))
        c0_grads[layer] = g.c0
        for name in PARAM_NAMES:
            value = getattr(g, name)
            if value is not None:  # weight_ih_l0 without input_products
                grads[param_key(name, layer)] = value
        if not products:
            grads["dA_ih_l0"] = forward._callers(g.dA_ih)
        h0_grads[layer] = g.h0
        upstream = g.x
        if forward.masks and forward.masks[layer] is not None:
            upstream = upstream * forward.masks[layer]  # back through this layer's dropout
    grads["h0"] = forward._callers(np.stack(h0_grads))
    if spec.has_cell_state:
        grads["c0"] = forward._callers(np.stack(c0_grads))
    if input_products:
        grads["x"] = forward._callers(upstream)
    return grads
