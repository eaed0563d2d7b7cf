"""Stacked recurrent layers of any registered cell with PyTorch's state-dict names.

Layer l reads the outputs of layer l − 1 (layer 0 reads x). Parameters are stored as
``torch.nn.RNN/GRU/LSTM(input_size, hidden, num_layers).state_dict()`` stores them:
``weight_ih_l{l}`` (G·H, D_l), ``weight_hh_l{l}`` (G·H, H), ``bias_ih_l{l}``, ``bias_hh_l{l}``
(G·H) with G the cell's gate blocks (seqtool.core.rnn.cells: 1 for rnn, 3 for gru: r, z, n,
4 for lstm: i, f, g, o), so weights move between seqtool and torch without reshaping.
Initial and final states are (L, B, H) as in torch.

A bidirectional stack (torch's ``bidirectional=True``; a state dict with the ``_reverse``
keys, :func:`is_bidirectional`) runs each layer in both directions over the same input:
h_t forward over x_0 .. x_{ℓ−1}, h̃ over x_{ℓ−1} .. x_0 (seqtool.core.rnn.directions), and
its output is y_t = [h_t ; h̃ after reading x_{ℓ−1} .. x_t] (2H), which layer l + 1 reads
(so D_l = 2H for l ≥ 1). States are then (2L, B, H) in torch's order: layer 0 forward,
layer 0 reverse, layer 1 forward, ...

The backward pass runs the layers top-down: ∂L/∂x of layer l is the ∂L/∂output of layer
l − 1 (in a bidirectional layer, the sum of the two directions' ∂L/∂x); a gradient on a
final state (h_n, c_n) enters that (layer, direction)'s last step.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqtool.core import parallel
from seqtool.core.buffers import take
from seqtool.core.rnn import directions
from seqtool.core.rnn.cells import PARAM_NAMES, get_cell
from seqtool.core.rnn.directions import REVERSE, ReverseLayers
from seqtool.core.rnn.lengths import is_longest_first, longest_first
from seqtool.core.rnn.table_rows import TableRows, as_array


def param_key(name: str, layer: int, suffix: str = "") -> str:
    """torch's state-dict key: ``weight_ih_l0``; ``weight_ih_l0_reverse`` with suffix
    ``"_reverse"`` (the reverse direction of a bidirectional layer)."""
    return f"{name}_l{layer}{suffix}"


def init_state_dict(cell: str, input_size: int, hidden: int, num_layers: int = 1,
                    seed: int = 0, dtype: Any = np.float32,
                    bidirectional: bool = False) -> dict[str, np.ndarray]:
    """Every layer initialised by the cell (:meth:`Cell.init_layer`: PyTorch's default,
    every entry ~ U(−1/√H, 1/√H)), from one random stream, layer by layer.

    ``bidirectional``: each layer also has its reverse direction's parameters (torch's
    ``_reverse`` keys), drawn right after its forward direction's, and layers l ≥ 1 read
    the 2H outputs of the layer below. A one-way stack draws exactly what it always did."""
    spec = get_cell(cell)
    rng = np.random.default_rng(seed)
    suffixes = ("", REVERSE) if bidirectional else ("",)
    state = {}
    for layer in range(num_layers):
        D = input_size if layer == 0 else len(suffixes) * hidden
        for suffix in suffixes:
            params = spec.init_layer(rng, D, hidden, dtype)
            for name in PARAM_NAMES:
                state[param_key(name, layer, suffix)] = params[name]
    return state


def is_bidirectional(state: dict[str, np.ndarray]) -> bool:
    """Whether ``state`` holds a bidirectional stack (torch's ``_reverse`` keys)."""
    return _shape_of(tuple(state))[0]


def num_layers_of(state: dict[str, np.ndarray]) -> int:
    """The layers of a stack (not its directions: a bidirectional layer counts once)."""
    return _shape_of(tuple(state))[1]


@functools.lru_cache(maxsize=64)
def _shape_of(keys: tuple[str, ...]) -> tuple[bool, int]:
    """(bidirectional, layers) of a state dict with these keys: worked out once per set of
    keys (a training run has one), since scanning them took ~2.5 µs of every call."""
    both = any(key.endswith(REVERSE) for key in keys)
    layers = sum(1 for key in keys if key.startswith("weight_ih_l") and not key.endswith(REVERSE))
    return both, layers


@functools.lru_cache(maxsize=256)
def _layer_keys(layer: int, suffix: str) -> tuple[str, ...]:
    """The state-dict keys of a (layer, direction), made once (a one-row step pays for
    every microsecond between the kernels)."""
    return tuple(param_key(name, layer, suffix) for name in PARAM_NAMES)


def _stack_rows(arrays: list[np.ndarray]) -> np.ndarray:
    """np.stack of per-layer (B, H) arrays: one layer's without np.stack's ~5 µs."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


@functools.lru_cache(maxsize=256)
def _layer_getter(layer: int, suffix: str) -> operator.itemgetter:
    """Takes a (layer, direction)'s four parameters out of a state dict in one call (a list
    comprehension over the keys cost ~0.5 µs more, twice a step)."""
    return operator.itemgetter(*_layer_keys(layer, suffix))


def _layer(state: dict[str, np.ndarray], layer: int, suffix: str = "") -> tuple[np.ndarray, ...]:
    try:
        return _layer_getter(layer, suffix)(state)
    except KeyError as missing:
        raise ValueError(f"the state dict has no {missing.args[0]} (a bidirectional stack "
                         f"needs both directions of every layer)") from None


@dataclass(slots=True)
class StackForward:
    """Every layer's forward record, the top layer's outputs and the final states.

    ``layers``, ``inputs`` and ``masks`` are per layer (the forward direction's records in
    a bidirectional stack); ``reverse`` holds a bidirectional stack's reverse direction
    (its records, the reversed inputs they read, the reversal index, the top output)."""

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
    reverse: ReverseLayers | None = None  # a bidirectional stack's reverse direction
    # A batch split across threads (seqtool.core.parallel): each part's own StackForward
    # (part i: rows i, i + n, ... of the layers' order), and the crew that ran them. The
    # fields above are then empty but for lengths, workspace and order.
    parts: list[StackForward] | None = None
    crew: Any = None

    @property
    def bidirectional(self) -> bool:
        if self.parts is not None:
            return self.parts[0].bidirectional
        return self.reverse is not None

    @property
    def steps_and_batch(self) -> tuple[int, int]:  # (T, B)
        if self.parts is not None:
            T = self.parts[0].steps_and_batch[0]
            return T, sum(p.steps_and_batch[1] for p in self.parts)
        h = self.layers[0].h
        return h.shape[0] - 1, h.shape[1]

    @property
    def output(self) -> np.ndarray:
        """(T, B, H), or (T, B, 2H) bidirectional: y_t = [h_t ; h̃_{ℓ_b−1−t}] (see
        stack_forward; at a padded step each half holds its direction's final state), in
        the caller's order."""
        if self.parts is not None:
            return self._callers(_join_rows([p.output for p in self.parts]))
        if self.reverse is not None:
            return self._callers(self.reverse.output)
        return self._callers(self.layers[-1].h[1:])

    @property
    def h_n(self) -> np.ndarray:  # (L, B, H), or (2L, B, H): l0, l0 reverse, l1, ...
        if self.parts is not None:
            return self._callers(_join_rows([p.h_n for p in self.parts]))
        return self._callers(_stack_rows([f.h[-1] for f in self._directions()]))

    @property
    def c_n(self) -> np.ndarray | None:  # as h_n, cells with a cell state only
        if not get_cell(self.cell).has_cell_state:
            return None
        if self.parts is not None:
            return self._callers(_join_rows([p.c_n for p in self.parts]))
        return self._callers(_stack_rows([f.c[-1] for f in self._directions()]))

    def _directions(self) -> list[Any]:
        """Every (layer, direction)'s record in torch's order of the final states."""
        if self.reverse is None:
            return list(self.layers)
        return [f for pair in zip(self.layers, self.reverse.layers) for f in pair]

    def _callers(self, a: np.ndarray) -> np.ndarray:
        """a (·, B, ...) with its rows back in the caller's order."""
        return a if self.order is None else _rows_to(a, np.argsort(self.order))

    def _layers(self, a: np.ndarray | None) -> np.ndarray | None:
        """a (·, B, ...) in the caller's order, with its rows in the layers' order."""
        return a if a is None or self.order is None else _rows_to(a, self.order)


def _join_rows(parts: list[np.ndarray]) -> np.ndarray:
    """The arrays (·, B_i, ...) of the n parts of a batch as one (·, B, ...): part i's rows
    are rows i, i + n, ... (seqtool.core.parallel.part_rows)."""
    n = len(parts)
    shape = list(parts[0].shape)
    shape[1] = sum(p.shape[1] for p in parts)
    out = np.empty(shape, parts[0].dtype)
    for rows, part in zip(parallel.part_rows(n), parts):
        out[:, rows] = part
    return out


def _pick(a: np.ndarray | None, rows: slice) -> np.ndarray | None:
    """A part's rows (the second axis) of a (·, B, ...) array, as a contiguous copy (made on
    the part's own thread); of TableRows, its ids'."""
    if isinstance(a, TableRows):
        return a.rows(rows)
    return None if a is None else np.ascontiguousarray(a[:, rows])


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

    A bidirectional ``state`` (:func:`is_bidirectional`) runs each layer l in both
    directions over its input x (T, B, D_l), from h0[2l] and h0[2l + 1] (so h0, c0 are
    (2L, B, H): l0, l0 reverse, l1, ... as torch orders them):

        h_t = cell(h_{t−1}, x_t)              t = 0 .. ℓ_b − 1
        h̃_s = cell(h̃_{s−1}, x_{ℓ_b−1−s})      s = 0 .. ℓ_b − 1
        y_t = [h_t ; h̃_{ℓ_b−1−t}]  (2H)       what layer l + 1 reads (through its dropout)

    with h_{−1} = h0[2l], h̃_{−1} = h0[2l + 1], ℓ_b = T without ``lengths``. The output is
    the top layer's y (T, B, 2H), h_n and c_n are (2L, B, H). At a padded step t ≥ ℓ_b,
    y_t = [h_{ℓ_b−1} ; h̃_{ℓ_b−1}]: each direction's final state (torch pads with zeros;
    callers mask these steps). See seqtool.core.rnn.directions.

    ``projected`` (T, B, G·H): the first layer's input projection X W_ih_l0ᵀ, formed by the
    caller (X is then not read and may be None; the array is consumed), or its rows by
    token, :class:`seqtool.core.rnn.table_rows.TableRows` (not gathered into an array
    unless the cell needs one). With it,
    :func:`stack_backward` with ``input_products=False`` returns ∂L/∂(X W_ih_l0ᵀ) as
    ``dA_ih_l0`` in place of ``x`` and ``weight_ih_l0``. One-way stacks only (a ValueError
    for a bidirectional one: its reverse direction reads X in another order).

    ``lengths`` (B,) for a right-padded batch: sequence b runs lengths[b] steps, after which
    every layer keeps its state (torch's packed-sequence semantics: h_n, c_n are the states
    after the last real step), and the padded steps cost no work (seqtool.core.rnn.lengths).
    A batch that does not come longest first is sorted for the layers and handed back in
    its own order.

    ``dropout`` p > 0 (with ``rng``) drops the inputs of layers 1..L−1, i.e. the outputs of
    the layers below them, as ``torch.nn.LSTM(dropout=p)`` does in training.

    ``workspace`` (a :class:`seqtool.core.buffers.Workspace`, one scope per layer and
    direction) lends the large arrays of the cells that take one; the records then stay
    valid until the owner's next forward pass (the training loop: the next step). None:
    fresh arrays.

    Inside ``seqtool.core.parallel.threads(n)`` a large enough batch is split into up to n
    parts of interleaved rows that run on n threads at once, each through every layer
    (:func:`seqtool.core.parallel.parts_for`); the dropout masks are drawn for the whole
    batch first, as one thread draws them, so every thread count sees the same masks.
    """
    get_cell(cell)  # an unknown cell: refused here, before any thread starts
    both, num_layers = _shape_of(tuple(state))
    if both:
        _check_bidirectional(X, projected, h0, c0, num_layers)
    order = None
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.ndim == 1 and not is_longest_first(lengths):
            order = longest_first(lengths)
            lengths = lengths[order]
            X, h0, c0, projected = (None if a is None else _rows_to(a, order)
                                    for a in (X, h0, c0, projected))
    if workspace is not None:  # the stack's own names: keep_one_way drops no one else's
        workspace = workspace.scope("stack")
    inputs = X if X is not None else projected
    n, threads = 1, parallel.current_threads()
    if threads > 1 and (lengths is None or lengths.ndim == 1):
        n = parallel.parts_for(inputs.shape[1], _work(state, *inputs.shape[:2], lengths))
    if workspace is not None and threads > 1:
        workspace.keep_one_way(split=n > 1)
    if n > 1:
        masks = _dropout_masks(state, inputs.shape[:2], inputs.dtype.type, dropout, rng)
        return _forward_parts(n, cell, X, state, h0, c0, nonlinearity, masks, lengths,
                              projected, workspace, order)
    return _forward_rows(cell, X, state, h0, c0, nonlinearity, dropout, rng, lengths,
                         projected, workspace, order, shape=(both, num_layers))


def _work(state: dict[str, np.ndarray], T: int, B: int, lengths=None) -> int:
    """The multiply-adds of one pass of the stack over a (T, B) batch: (its real steps,
    Σ ℓ_b, or T·B) · Σ G·H·(D_l + H) over its layers and directions."""
    per_row_step = sum(w.shape[0] * (w.shape[1] + state[key.replace("_ih_", "_hh_")].shape[1])
                       for key, w in state.items() if key.startswith("weight_ih_l"))
    steps = T * B if lengths is None else int(np.minimum(lengths, T).sum())
    return steps * per_row_step


def _dropout_masks(state: dict[str, np.ndarray], steps_and_batch: tuple[int, int], dtype,
                   p: float, rng: np.random.Generator | None) -> list[np.ndarray | None]:
    """The masks of the inputs of layers 1..L−1 (None for layer 0 and without dropout), drawn
    in the order, with the shapes and in the dtypes with which :func:`_forward_rows` draws
    them: layer l's input is layer l − 1's output, in the dtype that layer computes in
    (float32 or wider: its input's and its weights' common type). ``dtype``: the input's."""
    masks: list[np.ndarray | None] = [None]
    for layer in range(1, num_layers_of(state)):
        below = _layer(state, layer - 1)
        dtype = np.result_type(np.float32, dtype, below[0], below[1]).type
        if p > 0.0:
            D = state[param_key("weight_ih", layer)].shape[1]
            masks.append(dropout_mask((*steps_and_batch, D), p, rng, dtype))
        else:
            masks.append(None)
    return masks


def _forward_parts(n: int, cell: str, X, state, h0, c0, nonlinearity: str, masks: list,
                   lengths, projected, workspace, order) -> StackForward:
    """stack_forward of a batch (in the layers' order) split into n parts on n threads."""
    crew = parallel.crew(n)

    def part(i: int, rows: slice):
        space = None if workspace is None else workspace.for_thread(f"part{i}",
                                                                      crew.idents[i])
        return lambda: _forward_rows(cell, _pick(X, rows), state, _pick(h0, rows),
                                     _pick(c0, rows), nonlinearity, 0.0, None,
                                     None if lengths is None else lengths[rows],
                                     _pick(projected, rows), space, None,
                                     drawn=[_pick(m, rows) for m in masks])

    parts = crew.run([part(i, rows) for i, rows in enumerate(parallel.part_rows(n))])
    return StackForward(cell, [], [], [], lengths, workspace, order, parts=parts, crew=crew)


def _forward_rows(cell: str, X, state, h0, c0, nonlinearity: str, dropout: float, rng,
                  lengths, projected, workspace, order,
                  drawn: list | None = None, shape: tuple | None = None) -> StackForward:
    """stack_forward on one thread, of a batch already in the layers' order; ``drawn``: the
    dropout masks drawn beforehand (else drawn here from ``rng``); ``shape``: (bidirectional,
    layers) of ``state`` when the caller knows them."""
    spec = get_cell(cell)
    both, num_layers = shape or (is_bidirectional(state), num_layers_of(state))
    reverse = None
    if both:  # one reversal of the batch's steps serves every layer and the backward pass
        reverse = ReverseLayers(directions.reversal_index(lengths, *X.shape[:2]))
    layers, inputs, masks = [], [], []
    x = X
    for layer in range(num_layers):
        mask = None if drawn is None else drawn[layer]
        if drawn is None and layer > 0 and dropout > 0.0:
            mask = dropout_mask(x.shape, dropout, rng, x.dtype.type)
        if mask is not None:
            x = x * mask
        masks.append(mask)
        if reverse is None:
            W_ih, W_hh, b_ih, b_hh = _layer(state, layer)
            P = projected if layer == 0 else None
            if not spec.reads_table_rows:
                P = as_array(P)
            record = spec.forward(x, W_ih, W_hh, b_ih, b_hh, _row(h0, layer),
                                  _row(c0, layer), lengths, projected=P,
                                  activation=nonlinearity, **_lent(spec, workspace, layer))
            output = record.h[1:]
        else:
            record, output = _forward_both(spec, state, layer, x, h0, c0, lengths,
                                           nonlinearity, workspace, reverse)
        inputs.append(x)
        layers.append(record)
        x = output
    if reverse is not None:
        reverse.output = x
    return StackForward(cell, layers, inputs, masks, lengths, workspace, order, reverse)


def _check_bidirectional(X, projected, h0, c0, num_layers: int) -> None:
    if projected is not None:
        raise ValueError("projected= (a caller-formed first-layer input projection) works "
                         "with one-way stacks only: a bidirectional layer's reverse "
                         "direction reads X in its own order; pass X")
    if X is None:
        raise ValueError("a bidirectional stack needs X")
    for name, a in (("h0", h0), ("c0", c0)):
        if a is not None and np.shape(a)[0] != 2 * num_layers:
            raise ValueError(f"{name} of a bidirectional stack of {num_layers} layers is "
                             f"(2·{num_layers}, B, H): l0, l0_reverse, l1, ...; got shape "
                             f"{np.shape(a)}")


def _row(a: np.ndarray | None, i: int) -> np.ndarray | None:
    return None if a is None else a[i]


def _forward_both(spec: Any, state: dict[str, np.ndarray], layer: int, x: np.ndarray,
                  h0, c0, lengths, nonlinearity: str, workspace: Any,
                  reverse: ReverseLayers) -> tuple[Any, np.ndarray]:
    """Layer ``layer`` of a bidirectional stack over x (T, B, D_l): the forward direction's
    record (the reverse one's and the reversed input go to ``reverse``) and the output y
    (T, B, 2H)."""
    key, reverse_key, join_key = directions.scope_keys(layer)
    join_space = None if workspace is None else workspace.scope(join_key)
    W_ih, W_hh, b_ih, b_hh = _layer(state, layer)
    record = spec.forward(x, W_ih, W_hh, b_ih, b_hh, _row(h0, 2 * layer), _row(c0, 2 * layer),
                          lengths, activation=nonlinearity, **_lent(spec, workspace, key))
    x_rev = directions.reverse_steps(x, reverse.index,
                                     take(join_space, "directions.x", x.shape, x.dtype))
    W_ih, W_hh, b_ih, b_hh = _layer(state, layer, REVERSE)
    record_rev = spec.forward(x_rev, W_ih, W_hh, b_ih, b_hh, _row(h0, 2 * layer + 1),
                              _row(c0, 2 * layer + 1), lengths, activation=nonlinearity,
                              **_lent(spec, workspace, reverse_key))
    reverse.layers.append(record_rev)
    reverse.inputs.append(x_rev)
    T, B, H = record.h.shape[0] - 1, record.h.shape[1], record.h.shape[2]
    y = take(join_space, "directions.y", (T, B, 2 * H), record.h.dtype)
    return record, directions.join(record.h[1:], record_rev.h[1:], reverse.index, y)


def _initial(spec: Any, wanted: bool) -> dict[str, Any]:
    """The ``initial_state=`` argument of a cell that can skip ∂L/∂h_0 when it is not
    wanted (Cell.skips_initial_state); others compute it anyway, and it is dropped."""
    return {} if wanted or not spec.skips_initial_state else {"initial_state": False}


def _lent(spec: Any, workspace: Any, key: Any) -> dict[str, Any]:
    """The ``workspace=`` argument of the (layer, direction) whose scope is ``key`` (the
    layer, or ``"<layer>_reverse"``: seqtool.core.rnn.directions.scope_keys) for a cell that
    takes one."""
    if workspace is None or not spec.uses_workspace:
        return {}
    return {"workspace": workspace.scope(key)}


def stack_backward(forward: StackForward, state: dict[str, np.ndarray], dout: np.ndarray,
                   dh_n: np.ndarray | None = None, dc_n: np.ndarray | None = None,
                   nonlinearity: str = "tanh",
                   input_products: bool = True,
                   initial_states: bool = True) -> dict[str, np.ndarray]:
    """Gradients of L given ∂L/∂output (T, B, H) and optional ∂L/∂h_n, ∂L/∂c_n (L, B, H).

    Returns the state dict's keys plus ``h0`` and ``c0`` (L, B, H) and ``x`` (T, B, D);
    with ``input_products`` False (for a first layer whose input projection the caller
    formed), ``dA_ih_l0`` = ∂L/∂(X W_ih_l0ᵀ) (T, B, G·H) instead of ``x`` and
    ``weight_ih_l0``. With ``initial_states`` False (a caller whose initial states are not
    parameters: a fresh sequence's zeros) there is no ``h0`` or ``c0``, and each layer
    skips the product that would form them (one step's of T).

    Bidirectional (``forward.bidirectional``): dout is (T, B, 2H), dh_n, dc_n and the
    returned ``h0``, ``c0`` are (2L, B, H) in torch's order, and the ``_reverse`` keys get
    their gradients too. Of ∂L/∂y_t = [∂L/∂h_t ; ∂L/∂h̃_{ℓ_b−1−t}], each half goes back
    through its own direction (the reverse half in the reverse direction's step order),
    and ∂L/∂x_t = (∂L/∂x_t through the forward direction) + (∂L/∂x̃_{ℓ_b−1−t} through the
    reverse one). ``input_products`` False is refused (ValueError): see stack_forward's
    ``projected``.

    A forward pass split across threads is taken back part by part on the same threads;
    the parts' weight gradients are added in part order.
    """
    if forward.parts is not None:
        return _backward_parts(forward, state, dout, dh_n, dc_n, nonlinearity,
                               input_products, initial_states)
    spec = get_cell(forward.cell)
    reverse = forward.reverse
    if reverse is not None and not input_products:
        raise ValueError("input_products=False (a caller-formed first-layer input "
                         "projection) works with one-way stacks only")
    L = len(forward.layers)
    states = L if reverse is None else 2 * L
    grads: dict[str, np.ndarray] = {}
    h0_grads, c0_grads = [None] * states, [None] * states
    if forward.order is not None:
        dout, dh_n, dc_n = (forward._layers(a) for a in (dout, dh_n, dc_n))
    upstream = dout
    for layer in range(L - 1, -1, -1):
        if reverse is not None:
            upstream = _backward_both(spec, forward, state, layer, upstream, dh_n, dc_n,
                                      nonlinearity, grads, h0_grads, c0_grads,
                                      initial_states)
        else:
            W_ih, W_hh, b_ih, b_hh = _layer(state, layer)
            record, x = forward.layers[layer], forward.inputs[layer]
            dh = upstream  # the cells only read it
            if dh_n is not None:  # a copy to add to: upstream may be the caller's dout
                dh = np.array(upstream, dtype=record.h.dtype)
                dh[-1] += dh_n[layer]  # h_n of this layer is its last output
            products = input_products or layer > 0
            g = spec.backward(x, W_ih, W_hh, record, dh, _row(dc_n, layer),
                              lengths=forward.lengths, activation=nonlinearity,
                              input_products=products,
                              **_lent(spec, forward.workspace, layer),
                              **_initial(spec, initial_states))
            c0_grads[layer] = g.c0
            _keep(grads, g, layer)
            if not products:
                grads["dA_ih_l0"] = forward._callers(g.dA_ih)
            h0_grads[layer] = g.h0
            upstream = g.x
        if forward.masks and forward.masks[layer] is not None:
            upstream = upstream * forward.masks[layer]  # back through this layer's dropout
    if initial_states:
        grads["h0"] = forward._callers(_stack_rows(h0_grads))
        if spec.has_cell_state:
            grads["c0"] = forward._callers(_stack_rows(c0_grads))
    if input_products:
        grads["x"] = forward._callers(upstream)
    return grads


# the gradients that are per row (of the batch) rather than summed over rows
_ROW_GRADIENTS = ("h0", "c0", "x", "dA_ih_l0")


def _backward_parts(forward: StackForward, state: dict[str, np.ndarray], dout: np.ndarray,
                    dh_n, dc_n, nonlinearity: str, input_products: bool,
                    initial_states: bool = True) -> dict[str, np.ndarray]:
    """stack_backward of a forward pass split into parts: each part on the thread that ran
    its forward pass; row gradients joined, weight gradients added in part order."""
    n = len(forward.parts)
    dout, dh_n, dc_n = (forward._layers(a) for a in (dout, dh_n, dc_n))

    def part(i: int, rows: slice):
        return lambda: stack_backward(forward.parts[i], state, _pick(dout, rows),
                                      _pick(dh_n, rows), _pick(dc_n, rows), nonlinearity,
                                      input_products, initial_states)

    results = forward.crew.run([part(i, rows)
                                for i, rows in enumerate(parallel.part_rows(n))])
    grads: dict[str, np.ndarray] = {}
    for key in results[0]:
        if key in _ROW_GRADIENTS:
            grads[key] = forward._callers(_join_rows([r[key] for r in results]))
        else:  # a new array (a part's may be lent by its workspace), in one pass for two
            total = np.add(results[0][key], results[1][key])
            for r in results[2:]:
                total += r[key]
            grads[key] = total
    return grads


def _keep(grads: dict[str, np.ndarray], g: Any, layer: int, suffix: str = "") -> None:
    """Put a (layer, direction)'s parameter gradients under their state-dict keys."""
    key_ih, key_hh, key_bias_ih, key_bias_hh = _layer_keys(layer, suffix)
    if g.weight_ih is not None:  # None: weight_ih_l0 without input_products
        grads[key_ih] = g.weight_ih
    grads[key_hh] = g.weight_hh
    grads[key_bias_ih] = g.bias_ih
    grads[key_bias_hh] = g.bias_hh


def _backward_both(spec: Any, forward: StackForward, state: dict[str, np.ndarray],
                   layer: int, dy: np.ndarray, dh_n, dc_n, nonlinearity: str,
                   grads: dict[str, np.ndarray], h0_grads: list, c0_grads: list,
                   initial_states: bool = True) -> np.ndarray:
    """Layer ``layer`` of a bidirectional stack given ∂L/∂y (T, B, 2H), the layers' order:
    fills ``grads`` and the two directions' rows of h0_grads, c0_grads (unless
    ``initial_states`` is False), and returns ∂L/∂x (T, B, D_l)."""
    reverse, workspace = forward.reverse, forward.workspace
    key, reverse_key, join_key = directions.scope_keys(layer)
    join_space = None if workspace is None else workspace.scope(join_key)
    record, record_rev = forward.layers[layer], reverse.layers[layer]
    dy = np.asarray(dy, dtype=record.h.dtype)
    dh, dh_rev = directions.split(dy, reverse.index, join_space)
    if dh_n is not None:  # each direction's final state is its record's last state
        dh[-1] += dh_n[2 * layer]
        dh_rev[-1] += dh_n[2 * layer + 1]
    sides = ((key, "", record, forward.inputs[layer], dh, 2 * layer),
             (reverse_key, REVERSE, record_rev, reverse.inputs[layer], dh_rev, 2 * layer + 1))
    dx = []
    for scope_key, suffix, rec, x, d, row in sides:
        W_ih, W_hh, _, _ = _layer(state, layer, suffix)
        g = spec.backward(x, W_ih, W_hh, rec, d, _row(dc_n, row), lengths=forward.lengths,
                          activation=nonlinearity, input_products=True,
                          **_lent(spec, workspace, scope_key),
                          **_initial(spec, initial_states))
        _keep(grads, g, layer, suffix)
        h0_grads[row], c0_grads[row] = g.h0, g.c0
        dx.append(g.x)
    return directions.merge_input_gradients(dx[0], dx[1], reverse.index, join_space)
