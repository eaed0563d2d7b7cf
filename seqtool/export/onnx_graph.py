"""A trained model as an ONNX graph: `seqtool export RUN --to onnx`.

Built node by node with ``onnx.helper`` (no torch), on the contract of :mod:`seqtool.export`
(batch first, right-padded, its input and output names). Inside, the graph is time-major,
as ONNX's recurrent operators are (``layout`` 0); a float32 model's layers are those
operators (a float64 model's: see the end):

    X          = E[idsᵀ] (T, B, E), or xᵀ (T, B, D)               Gather, Transpose
    Y^l, h^l_n = RNN | GRU | LSTM(Y^{l−1}, W^l, R^l, B^l, lengths)   one node per layer
    Y^l        (T, dirs, B, H) → (T, B, dirs·H)                   what layer l + 1 reads

``sequence_lens`` = lengths: each sequence runs its real steps only, a reverse direction
starts at its sequence's last real step (as seqtool's ``rnn.directions`` and torch's packed
sequences do), and Y_h is the state after the last real step (forward) or after reading
back to step 0 (reverse). torch's parameters become ONNX's:

    W = weight_ih (G·H, D),  R = weight_hh (G·H, H),  B = [bias_ih; bias_hh] (2·G·H)
    LSTM:  torch's row blocks i, f, g, o → ONNX's i, o, f, c
    GRU:   torch's r, z, n → ONNX's z, r, h with linear_before_reset = 1, so that
           n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)) as torch computes it
    RNN:   one block, activation Tanh or Relu (the spec's nonlinearity)

a bidirectional layer stacking [forward, reverse] on a first axis of 2 (initializers
``rnn.l0.W``, ``rnn.l0.R``, ``rnn.l0.B``; the parameters used as they are keep seqtool's
names: ``embedding.weight``, ``head.weight``, ...). Then, as :mod:`seqtool.core.models` and
:mod:`seqtool.core.seq2seq` compute it:

    classify   y = W pool(h_1..h_n) + b;  last = h^L_n ([→h_n; ←h_1] bidirectional, the top
               layer's Y_h); mean, max over the real steps; attention: s_t = score(h_t),
               w = selector(s_1..s_n), pool = Σ w_t h_t;  bow: pool = mean_t E[x_t]
    tag, lm    y_t = W h^L_t + b, 0 at padded steps;  regress likewise, or y = W h^L_n + b
    seq2seq    the encoder's final states (per layer, [→h; ←h] when bidirectional) start the
               decoder; a_t = selector(score(h_t, ē_1..ē_n)), c_t = Σ a_ts ē_s,
               h̃_t = tanh(W_c [c_t; h_t]), y_t = W_o h̃_t + b_o (0 at padded target steps)

The selectors run in float64 on each row's real steps (padded scores take no part), as
:mod:`seqtool.core.selectors` does: softmax(s/T); argmax as a one-hot of the first maximum
(also st-argmax's forward, and gumbel and reinforce, which evaluate as argmax); sparsemax
and 1.5-entmax by sorting (TopK, CumSum, the support size); α-entmax by a fixed bisection on
τ (:data:`BISECTIONS` halvings, a Loop); top-k with k cut to each row's length and
softmax(s/T) over the kept scores (ties to the lowest index). The weights come back in the
model's dtype, as the ``attention`` output too.

onnxruntime (1.32) implements RNN, GRU and LSTM in float32 only, so a float64 model's
recurrent layers are written out instead: each direction of each layer is a Scan over the
steps of the cell's equations (seqtool's, which are torch's) on xp_t = W_ih x_t + b_ih
(one MatMul before it), h_t = cell(xp_t, W_hh h_{t−1} + b_hh), a state kept past its
sequence's end; a reverse direction reads each sequence's real steps backwards through a
gather (rev_b(t) = ℓ_b − 1 − t). Its parameters keep torch's names (``rnn.weight_ih_l0``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from seqtool.core.errors import InputError
from seqtool.core.rnn.cells import PARAM_NAMES  # torch's names of a layer's parameters
from seqtool.export import input_names, metadata, output_names

OPSET = 21
IR_VERSION = 10  # the IR version of opset 21 (onnx 1.16); onnxruntime ≥ 1.18 reads it
RECURRENT = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
# torch's gate blocks in ONNX's order: LSTM i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h
GATE_ORDER = {"rnn": (0,), "gru": (1, 0, 2), "lstm": (0, 3, 1, 2)}
ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu"}
REVERSE = "_reverse"  # torch's suffix of a reverse direction's parameters
FLOATS = {np.dtype(np.float32): TensorProto.FLOAT,
          np.dtype(np.float64): TensorProto.DOUBLE}
# α-entmax: halvings of τ's bracket [−1, −n^{1−α}] (width < 1) down to < 2⁻⁶⁴, past
# float64's resolution of τ (seqtool's bisection runs until lo and hi are adjacent floats)
BISECTIONS = 64
DOUBLE = TensorProto.DOUBLE
INT64 = TensorProto.INT64


# ---------------------------------------------------------------------------------------
# The graph under construction


class _Graph:
    """Nodes, initializers and constants of a graph (or a Loop body), every value under a
    fresh name; ``dtype`` is the model's float type."""

    def __init__(self, dtype: np.dtype, counter: list[int] | None = None):
        self.dtype = dtype
        self.float = FLOATS[dtype]
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = counter if counter is not None else [0]
        self._consts: dict[tuple, str] = {}
        self._params: set[str] = set()

    def fresh(self, hint: str) -> str:
        self._count[0] += 1
        return f"{hint}_{self._count[0]}"

    def add(self, op: str, inputs: list[str], hint: str | None = None, outputs: int = 1,
            out: list[str] | None = None, **attrs: Any) -> Any:
        """One node; its output name (or names, ``outputs`` > 1)."""
        names = out or [self.fresh(hint or op) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=self.fresh(op), **attrs))
        return names[0] if len(names) == 1 else names

    def const(self, value: Any, dtype: Any = np.int64) -> str:
        """A Constant node (one per distinct value)."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            name = self.fresh("const")
            self.add("Constant", [], out=[name], value=numpy_helper.from_array(array, name))
            self._consts[key] = name
        return self._consts[key]

    def real(self, value: float) -> str:
        """A float64 scalar (the selectors' type)."""
        return self.const(value, np.float64)

    def param(self, name: str, array: np.ndarray) -> str:
        """An initializer ``name`` (added once)."""
        if name not in self._params:
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
            self._params.add(name)
        return name

    def sub(self) -> "_Graph":
        """A subgraph builder (a Loop body) drawing names from the same counter."""
        return _Graph(self.dtype, self._count)

    def cast(self, x: str, to: int) -> str:
        return self.add("Cast", [x], to=to)

    def transpose(self, x: str, *perm: int) -> str:
        return self.add("Transpose", [x], perm=list(perm))

    def unsqueeze(self, x: str, *axes: int) -> str:
        return self.add("Unsqueeze", [x, self.const(list(axes))])

    def squeeze(self, x: str, *axes: int) -> str:
        return self.add("Squeeze", [x, self.const(list(axes))])

    def reduce(self, op: str, x: str, axis: int = -1, keepdims: int = 1) -> str:
        return self.add(op, [x, self.const([axis])], keepdims=keepdims)

    def where(self, condition: str, x: str, otherwise: str) -> str:
        return self.add("Where", [condition, x, otherwise])

    def dim(self, x: str, axis: int) -> str:
        """Size of ``x`` along ``axis``, an int64 scalar."""
        return self.squeeze(self.add("Shape", [x], start=axis, end=axis + 1 or None), 0)

    def linear(self, x: str, weight: str, bias: str | None = None) -> str:
        """x Wᵀ (+ b) for x (..., in), W stored as torch stores it (out, in)."""
        y = self.add("MatMul", [x, self.transpose(weight, 1, 0)])
        return y if bias is None else self.add("Add", [y, bias])


# ---------------------------------------------------------------------------------------
# Lengths and masks


def _real_steps(g: _Graph, data: str, lengths: str) -> str:
    """(B, T) bool: t < lengths[b], for ``data`` (B, T, ...)."""
    steps = g.add("Range", [g.const(0), g.dim(data, 1), g.const(1)])
    return g.add("Less", [g.unsqueeze(steps, 0), g.unsqueeze(lengths, 1)])


def _zero_padding(g: _Graph, per_step: str, real: str) -> str:
    """per_step (B, T, K) with the padded steps set to 0."""
    return g.where(g.unsqueeze(real, 2), per_step, g.const(0, g.dtype))


# ---------------------------------------------------------------------------------------
# Recurrent layers


def _onnx_order(a: np.ndarray, cell: str) -> np.ndarray:
    """torch's gate blocks (rows of ``a``) in ONNX's order."""
    order = GATE_ORDER[cell]
    blocks = np.split(a, len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0)


def _layer_weights(cell: str, state: dict[str, np.ndarray], layer: int,
                   suffixes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W (dirs, G·H, D), R (dirs, G·H, H), B (dirs, 2·G·H) of one layer."""
    W, R, B = [], [], []
    for suffix in suffixes:
        w_ih, w_hh, b_ih, b_hh = (state[f"{name}_l{layer}{suffix}"] for name in PARAM_NAMES)
        W.append(_onnx_order(w_ih, cell))
        R.append(_onnx_order(w_hh, cell))
        B.append(np.concatenate([_onnx_order(b_ih, cell), _onnx_order(b_hh, cell)]))
    return tuple(np.stack(a) for a in (W, R, B))


def _stack(g: _Graph, spec: Any, params: dict[str, np.ndarray], prefix: str, X: str,
           lengths: str, hidden: int, bidirectional: bool = False,
           initial: tuple[list[str], list[str | None]] | None = None
           ) -> tuple[str, list[str], list[str | None]]:
    """The stacked layers ``prefix`` (``rnn.``, ``encoder.rnn.``, ...) over X (T, B, D):
    (Y (T, B, dirs·H), Y_h per layer (dirs, B, H), Y_c per layer or None); ``initial``:
    (h_0, c_0) per layer, each (1, B, H). ONNX's operators in float32, a Scan of the cell's
    equations in float64 (onnxruntime has no double RNN, GRU or LSTM kernel)."""
    layers = _operator_stack if g.float == TensorProto.FLOAT else _scan_stack
    return layers(g, spec, params, prefix, X, lengths, hidden, bidirectional, initial)


def _operator_stack(g: _Graph, spec: Any, params: dict[str, np.ndarray], prefix: str, X: str,
                    lengths: str, hidden: int, bidirectional: bool,
                    initial: tuple[list[str], list[str | None]] | None
                    ) -> tuple[str, list[str], list[str | None]]:
    """:func:`_stack` as ONNX's RNN / GRU / LSTM operators, one node per layer."""
    op = RECURRENT[spec.cell]
    suffixes = ("", REVERSE) if bidirectional else ("",)
    attrs: dict[str, Any] = {"hidden_size": hidden,
                             "direction": "bidirectional" if bidirectional else "forward"}
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    if op == "RNN":
        attrs["activations"] = [ACTIVATIONS[spec.nonlinearity]] * len(suffixes)
    state = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    seq_lens = g.cast(lengths, TensorProto.INT32)
    finals_h: list[str] = []
    finals_c: list[str | None] = []
    for layer in range(spec.layers):
        name = f"{prefix}l{layer}"
        W, R, B = _layer_weights(spec.cell, state, layer, suffixes)
        inputs = [X, g.param(f"{name}.W", W), g.param(f"{name}.R", R),
                  g.param(f"{name}.B", B), seq_lens]
        if initial is not None:
            inputs.append(initial[0][layer])
            if op == "LSTM":
                inputs.append(initial[1][layer])
        outs = g.add(op, inputs, hint=f"{name}.Y", outputs=3 if op == "LSTM" else 2, **attrs)
        Y = outs[0]  # (T, dirs, B, H)
        if bidirectional:
            X = g.add("Reshape", [g.transpose(Y, 0, 2, 1, 3), g.const([0, 0, -1])])
        else:
            X = g.squeeze(Y, 1)
        finals_h.append(outs[1])
        finals_c.append(outs[2] if op == "LSTM" else None)
    return X, finals_h, finals_c


def _cell_step(g: _Graph, cell: str, nonlinearity: str, xp: str, hp: str, h: str,
               c: str | None) -> tuple[str, str | None]:
    """One step of torch's cell from the projections xp = W_ih x + b_ih and
    hp = W_hh h + b_hh (gate blocks in torch's order): (h', c').

        rnn:   h' = f(xp + hp)
        gru:   r = σ(xp_r + hp_r), z = σ(xp_z + hp_z), n = tanh(xp_n + r ⊙ hp_n),
               h' = (1 − z) ⊙ n + z ⊙ h
        lstm:  i, f, g, o = σ, σ, tanh, σ of (xp + hp),  c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c')
    """
    if cell == "rnn":
        return g.add(ACTIVATIONS[nonlinearity], [g.add("Add", [xp, hp])]), None
    if cell == "gru":
        x_r, x_z, x_n = g.add("Split", [xp], outputs=3, axis=-1, num_outputs=3)
        h_r, h_z, h_n = g.add("Split", [hp], outputs=3, axis=-1, num_outputs=3)
        r = g.add("Sigmoid", [g.add("Add", [x_r, h_r])])
        z = g.add("Sigmoid", [g.add("Add", [x_z, h_z])])
        n = g.add("Tanh", [g.add("Add", [x_n, g.add("Mul", [r, h_n])])])
        keep = g.add("Sub", [g.real(1.0), z])
        return g.add("Add", [g.add("Mul", [keep, n]), g.add("Mul", [z, h])]), None
    a_i, a_f, a_g, a_o = g.add("Split", [g.add("Add", [xp, hp])], outputs=4, axis=-1,
                               num_outputs=4)
    i, f, o = (g.add("Sigmoid", [a]) for a in (a_i, a_f, a_o))
    c_new = g.add("Add", [g.add("Mul", [f, c]), g.add("Mul", [i, g.add("Tanh", [a_g])])])
    return g.add("Mul", [o, g.add("Tanh", [c_new])]), c_new


def _scan_direction(g: _Graph, cell: str, nonlinearity: str, xp: str, real: str,
                    W_hh: str, b_hh: str, h0: str, c0: str | None) -> tuple[str, str, str | None]:
    """One direction of a layer as a Scan over the steps of xp (T, B, G·H), float64:
    (the states (T, B, H), h_n, c_n). A state stays at its sequence's last real step
    (``real`` (T, B, 1)), so h_n is the state after it, as the operators' Y_h."""
    body = g.sub()
    h, xp_t, real_t = (body.fresh(name) for name in ("h", "xp_t", "real_t"))
    c = body.fresh("c") if c0 is not None else None
    W_hh_T = g.transpose(W_hh, 1, 0)  # in the graph around the Scan, made once
    hp = body.add("Add", [body.add("MatMul", [h, W_hh_T]), b_hh])
    h_new, c_new = _cell_step(body, cell, nonlinearity, xp_t, hp, h, c)
    states = [body.where(real_t, h_new, h)]
    if c is not None:
        states.append(body.where(real_t, c_new, c))
    outputs = states + [body.add("Identity", [states[0]])]
    carried = [h] if c is None else [h, c]
    loop = helper.make_graph(
        body.nodes, g.fresh("steps"),
        [helper.make_tensor_value_info(name, DOUBLE, None) for name in carried + [xp_t]]
        + [helper.make_tensor_value_info(real_t, TensorProto.BOOL, None)],
        [helper.make_tensor_value_info(name, DOUBLE, None) for name in outputs])
    initial = [h0] if c is None else [h0, c0]
    outs = g.add("Scan", initial + [xp, real], outputs=len(outputs), body=loop,
                 num_scan_inputs=2)
    return outs[-1], outs[0], (outs[1] if c is not None else None)


def _reversal(g: _Graph, real: str, lengths: str) -> str:
    """(T, B) int64: rev_b(t) = ℓ_b − 1 − t on the real steps, t on the padding (its own
    inverse; seqtool.core.rnn.directions)."""
    t = g.unsqueeze(g.add("Range", [g.const(0), g.dim(real, 0), g.const(1)]), 1)  # (T, 1)
    back = g.add("Sub", [g.add("Sub", [g.unsqueeze(lengths, 0), g.const(1)]), t])
    return g.where(g.squeeze(real, 2), back, g.add("Expand", [t, g.add("Shape", [back])]))


def _reversed(g: _Graph, a: str, rev: str) -> str:
    """a (T, B, K) with each sequence's real steps reversed."""
    index = g.add("Expand", [g.unsqueeze(rev, 2), g.add("Shape", [a])])
    return g.add("GatherElements", [a, index], axis=0)


def _scan_stack(g: _Graph, spec: Any, params: dict[str, np.ndarray], prefix: str, X: str,
                lengths: str, hidden: int, bidirectional: bool,
                initial: tuple[list[str], list[str | None]] | None
                ) -> tuple[str, list[str], list[str | None]]:
    """:func:`_stack` as Scans of the cell's equations (float64), torch's parameters as they
    are; a reverse direction reads each sequence's real steps backwards (a gather)."""
    steps = g.add("Range", [g.const(0), g.dim(X, 0), g.const(1)])
    real = g.unsqueeze(g.add("Less", [g.unsqueeze(steps, 1), g.unsqueeze(lengths, 0)]), 2)
    rev = _reversal(g, real, lengths) if bidirectional else None
    zeros = g.add("ConstantOfShape", [g.add("Concat", [g.add("Shape", [X], start=1, end=2),
                                                        g.const([hidden])], axis=0)],
                  value=numpy_helper.from_array(np.zeros(1, np.float64)))
    lstm = spec.cell == "lstm"
    finals_h: list[str] = []
    finals_c: list[str | None] = []
    for layer in range(spec.layers):
        h0, c0 = zeros, zeros if lstm else None
        if initial is not None:
            h0 = g.squeeze(initial[0][layer], 0)
            c0 = g.squeeze(initial[1][layer], 0) if lstm else None
        outs, hs, cs = [], [], []
        for suffix in ("", REVERSE) if bidirectional else ("",):
            W_ih, W_hh, b_ih, b_hh = (
                g.param(key, params[key]) for key in
                (f"{prefix}{name}_l{layer}{suffix}" for name in PARAM_NAMES))
            x = _reversed(g, X, rev) if suffix else X
            Y, h_n, c_n = _scan_direction(g, spec.cell, spec.nonlinearity,
                                          g.linear(x, W_ih, b_ih), real, W_hh, b_hh, h0, c0)
            outs.append(_reversed(g, Y, rev) if suffix else Y)
            hs.append(g.unsqueeze(h_n, 0))
            cs.append(g.unsqueeze(c_n, 0) if lstm else None)
        X = _joined_along(g, outs, -1)  # (T, B, dirs·H)
        finals_h.append(_joined_along(g, hs, 0))  # (dirs, B, H)
        finals_c.append(_joined_along(g, cs, 0) if lstm else None)
    return X, finals_h, finals_c


def _joined_along(g: _Graph, parts: list[str], axis: int) -> str:
    return parts[0] if len(parts) == 1 else g.add("Concat", parts, axis=axis)


def _joined(g: _Graph, final: str, bidirectional: bool) -> str:
    """A layer's final states (dirs, B, H/dirs) as (B, H): [→h; ←h] when bidirectional."""
    if not bidirectional:
        return g.squeeze(final, 0)
    return g.add("Reshape", [g.transpose(final, 1, 0, 2), g.const([0, -1])])


def _check_cell(spec: Any) -> None:
    if spec.cell not in RECURRENT:
        raise InputError("to", f"is onnx, which has no operator for the cell '{spec.cell}' "
                         f"(it exports {', '.join(RECURRENT)} and bow)")
    if spec.cell == "rnn" and spec.nonlinearity not in ACTIVATIONS:
        raise InputError("to", f"is onnx, whose RNN operator has no '{spec.nonlinearity}' "
                         f"nonlinearity here (it exports {', '.join(ACTIVATIONS)})")


# ---------------------------------------------------------------------------------------
# Selectors: float64 scores s (..., N), the real steps ``real`` (broadcast to s) and each
# row's length n (..., 1) int64 -> weights (..., N), 0 off the real steps


def _masked(g: _Graph, s: str, real: str, fill: float) -> str:
    return g.where(real, s, g.real(fill))


def _rows(g: _Graph, z: str, n: str) -> str:
    """n broadcast to (..., 1), one per row of z (..., N): GatherElements does not
    broadcast its indices."""
    return g.add("Expand", [n, g.add("Shape", [g.reduce("ReduceMax", z)])])


def _exp_normalised(g: _Graph, z: str, keep: str, temperature: float) -> str:
    """w_i = exp((z_i − max z)/T) / Σ_kept exp(...) on the kept scores, 0 elsewhere."""
    shifted = g.add("Sub", [z, g.reduce("ReduceMax", z)])
    if temperature != 1.0:
        shifted = g.add("Div", [shifted, g.real(temperature)])
    e = g.where(keep, g.add("Exp", [shifted]), g.real(0.0))
    return g.add("Div", [e, g.reduce("ReduceSum", e)])


def _softmax(g: _Graph, s: str, real: str, n: str, temperature: float) -> str:
    """softmax(s/T) over the real steps."""
    return _exp_normalised(g, _masked(g, s, real, -np.inf), real, temperature)


def _argmax(g: _Graph, s: str, real: str, n: str, **_: Any) -> str:
    """One-hot of the first maximum among the real steps (st-argmax's temperature shapes
    its backward pass only)."""
    z = _masked(g, s, real, -np.inf)
    first = g.add("ArgMax", [z], axis=-1, keepdims=1, select_last_index=0)  # (..., 1)
    steps = g.add("Range", [g.const(0), g.dim(z, -1), g.const(1)])
    return g.cast(g.add("Equal", [steps, first]), DOUBLE)


def _shifted(g: _Graph, x: str, real: str) -> str:
    """x − max of the real x, raised to ≥ −2 (outside any support, as in
    seqtool.core.selectors.maps), the padded steps at −3 (below every real one)."""
    x = g.add("Sub", [x, g.reduce("ReduceMax", _masked(g, x, real, -np.inf))])
    return _masked(g, g.add("Max", [x, g.real(-2.0)]), real, -3.0)


def _descending(g: _Graph, x: str) -> tuple[str, str]:
    """(x sorted descending along the last axis, the ranks 1..N as float64)."""
    N = g.add("Shape", [x], start=-1)
    values = g.add("TopK", [x, N], outputs=2, axis=-1, largest=1, sorted=1)[0]
    ranks = g.add("Range", [g.const(1), g.add("Add", [g.dim(x, -1), g.const(1)]), g.const(1)])
    return values, g.cast(ranks, DOUBLE)


def _at_support(g: _Graph, values: str, condition: str) -> tuple[str, str]:
    """(k = how many ranks meet ``condition`` (a prefix), values[k − 1]), both (..., 1)."""
    k = g.reduce("ReduceSum", g.cast(condition, DOUBLE))
    at = g.add("Sub", [g.cast(k, INT64), g.const(1)])
    return k, g.add("GatherElements", [values, at], axis=-1)


def _sparsemax(g: _Graph, s: str, real: str, n: str) -> str:
    """w = max(s − τ, 0) with τ = (Σ_{j≤k} s_(j) − 1)/k and the support size
    k = max{k : 1 + k s_(k) > Σ_{j≤k} s_(j)} (s sorted descending)."""
    x = _shifted(g, s, real)
    x_sorted, rank = _descending(g, x)
    cumsum = g.add("CumSum", [x_sorted, g.const(-1)])
    holds = g.add("Greater", [g.add("Add", [g.real(1.0), g.add("Mul", [rank, x_sorted])]),
                              cumsum])
    k, top = _at_support(g, cumsum, holds)
    tau = g.add("Div", [g.add("Sub", [top, g.real(1.0)]), k])
    return _masked(g, g.add("Relu", [g.add("Sub", [x, tau])]), real, 0.0)


def _entmax15(g: _Graph, s: str, real: str, n: str) -> str:
    """1.5-entmax by sorting: x = s/2, τ_ρ = mean_ρ − sqrt((1 − ρ·var_ρ)/ρ), the support the
    largest ρ with τ_ρ ≤ x_(ρ), w = [x − τ]₊²."""
    x = _shifted(g, g.add("Div", [s, g.real(2.0)]), real)
    x_sorted, rank = _descending(g, x)
    mean = g.add("Div", [g.add("CumSum", [x_sorted, g.const(-1)]), rank])
    squares = g.add("CumSum", [g.add("Mul", [x_sorted, x_sorted]), g.const(-1)])
    variance = g.add("Sub", [g.add("Div", [squares, rank]), g.add("Mul", [mean, mean])])
    delta = g.add("Div", [g.add("Sub", [g.real(1.0), g.add("Mul", [rank, variance])]), rank])
    tau = g.add("Sub", [mean, g.add("Sqrt", [g.add("Relu", [delta])])])
    _, tau_star = _at_support(g, tau, g.add("LessOrEqual", [tau, x_sorted]))
    w = g.add("Relu", [g.add("Sub", [x, tau_star])])
    return _masked(g, g.add("Mul", [w, w]), real, 0.0)


def _mass(g: _Graph, x: str, tau: str, power: str) -> str:
    """Σ_i [x_i − τ]₊^p per row (..., 1)."""
    return g.reduce("ReduceSum", g.add("Pow", [g.add("Relu", [g.add("Sub", [x, tau])]), power]))


def _bisection(g: _Graph, x: str, lo: str, hi: str, power: str) -> tuple[str, str]:
    """:data:`BISECTIONS` halvings of [lo, hi] (..., 1), keeping the mass ≥ 1 at lo (it
    falls as τ grows): one Loop, whose body reads x and p from the graph around it."""
    body = g.sub()
    step, cond, lo_in, hi_in = (body.fresh(name) for name in ("step", "cond", "lo", "hi"))
    mid = body.add("Mul", [body.add("Add", [lo_in, hi_in]), g.real(0.5)])
    too_much = body.add("GreaterOrEqual", [_mass(body, x, mid, power), g.real(1.0)])
    outs = [body.add("Identity", [cond]), body.where(too_much, mid, lo_in),
            body.where(too_much, hi_in, mid)]
    carried = [(lo_in, DOUBLE, None), (hi_in, DOUBLE, None)]
    loop = helper.make_graph(
        body.nodes, g.fresh("bisection"),
        [helper.make_tensor_value_info(*io) for io in
         [(step, INT64, []), (cond, TensorProto.BOOL, []), *carried]],
        [helper.make_tensor_value_info(*io) for io in
         [(outs[0], TensorProto.BOOL, []), (outs[1], DOUBLE, None), (outs[2], DOUBLE, None)]])
    return g.add("Loop", [g.const(BISECTIONS), "", lo, hi], outputs=2, body=loop)


def _entmax_bisect(g: _Graph, s: str, real: str, n: str, alpha: float) -> str:
    """α-entmax: w_i = [x_i − τ]₊^{1/(α−1)}, x = (α−1)(s − max s), τ ∈ [−1, −n^{1−α}]
    bisected, the end whose mass is nearer 1 kept, the weights normalised. The padded
    x = −2 < τ weigh nothing."""
    x = g.add("Mul", [s, g.real(alpha - 1.0)])
    x = g.add("Sub", [x, g.reduce("ReduceMax", _masked(g, x, real, -np.inf))])
    x = _masked(g, x, real, -2.0)
    power = g.real(1.0 / (alpha - 1.0))
    length = g.cast(_rows(g, x, n), DOUBLE)
    hi = g.add("Neg", [g.add("Pow", [length, g.real(1.0 - alpha)])])
    lo = g.add("Expand", [g.real(-1.0), g.add("Shape", [hi])])
    lo, hi = _bisection(g, x, lo, hi, power)
    miss_lo, miss_hi = (g.add("Abs", [g.add("Sub", [_mass(g, x, t, power), g.real(1.0)])])
                        for t in (lo, hi))
    tau = g.where(g.add("LessOrEqual", [miss_lo, miss_hi]), lo, hi)
    w = g.add("Pow", [g.add("Relu", [g.add("Sub", [x, tau])]), power])
    return _masked(g, g.add("Div", [w, g.reduce("ReduceSum", w)]), real, 0.0)


def _entmax(g: _Graph, s: str, real: str, n: str, alpha: float) -> str:
    """The exact sorting algorithm for α = 1.5, the bisection otherwise (as seqtool)."""
    if alpha == 1.5:
        return _entmax15(g, s, real, n)
    return _entmax_bisect(g, s, real, n, alpha)


def _topk(g: _Graph, s: str, real: str, n: str, k: int, temperature: float) -> str:
    """softmax(s/T) over the min(k, n) largest real scores (ties to the lowest index): every
    score above the k-th largest v, then the first ones equal to v."""
    z = _masked(g, s, real, -np.inf)
    K = g.add("Min", [g.const([k]), g.add("Shape", [z], start=-1)])
    values = g.add("TopK", [z, K], outputs=2, axis=-1, largest=1, sorted=1)[0]
    k_row = _rows(g, z, g.add("Min", [n, g.const(k)]))  # (..., 1)
    kth = g.add("GatherElements", [values, g.add("Sub", [k_row, g.const(1)])], axis=-1)
    above = g.add("Greater", [z, kth])
    equal = g.add("Equal", [z, kth])
    places = g.add("Sub", [k_row, g.reduce("ReduceSum", g.cast(above, INT64))])
    first = g.add("LessOrEqual", [g.add("CumSum", [g.cast(equal, INT64), g.const(-1)]), places])
    keep = g.add("Or", [above, g.add("And", [equal, first])])
    return _exp_normalised(g, z, keep, temperature)


SELECTORS = {"softmax": _softmax, "argmax": _argmax, "st-argmax": _argmax,
             "sparsemax": _sparsemax, "entmax": _entmax, "topk": _topk}


def _select(g: _Graph, spec: Any, evaluation_selector: Any, scores: str, real: str,
            n: str) -> str:
    """The spec's selector as it evaluates (``evaluation_selector``: attention_pool's or
    global_attention's ``_selector``, gumbel and reinforce → argmax) over scores in the
    model's dtype: weights in the model's dtype, computed in float64."""
    from seqtool.core.selectors import resolve_params

    name, given = evaluation_selector(spec, False)
    if name not in SELECTORS:
        raise InputError("to", f"is onnx, which has no graph for the selector '{name}' "
                         f"(it exports {', '.join(SELECTORS)}, gumbel and reinforce)")
    chosen = resolve_params(name, 2**31, given)  # top-k's k is cut to each row's length
    w = SELECTORS[name](g, g.cast(scores, DOUBLE), real, n, **chosen)
    return g.cast(w, g.float)


# ---------------------------------------------------------------------------------------
# The one-RNN models: classify, tag, lm, regress


def _pool_attention(g: _Graph, spec: Any, params: dict[str, np.ndarray], out: str,
                    real: str, lengths: str) -> tuple[str, str]:
    """(Σ_t w_t h_t (B, H), w (B, T)) over out (B, T, H), as seqtool.core.attention_pool."""
    from seqtool.core.attention_pool import PREFIX, _selector

    q = g.param(PREFIX + "query", params[PREFIX + "query"])
    keys = out
    if spec.score in ("general", "additive"):
        W = g.param(PREFIX + "weight", params[PREFIX + "weight"])
        b = g.param(PREFIX + "bias", params[PREFIX + "bias"]) if spec.score == "additive" else None
        keys = g.linear(out, W, b)
        if spec.score == "additive":
            keys = g.add("Tanh", [keys])
    scores = g.add("MatMul", [keys, q], hint="scores")  # (B, T)
    w = _select(g, spec, _selector, scores, real, g.unsqueeze(lengths, 1))
    pooled = g.squeeze(g.add("MatMul", [g.unsqueeze(w, 1), out]), 1)
    return pooled, w


def _pool(g: _Graph, spec: Any, params: dict[str, np.ndarray], out: str, finals: list[str],
          real: str, lengths: str) -> dict[str, str]:
    """The features a sequence-level head reads (B, F), and the attention if any; ``out``
    (B, T, H) is zero at padded steps, ``finals`` the layers' Y_h."""
    if spec.pool == "attention" and spec.task == "classify":
        pooled, w = _pool_attention(g, spec, params, out, real, lengths)
        return {"features": pooled, "attention": w}
    if spec.task == "regress" or spec.pool == "last":  # h_n: the top layer's Y_h
        return {"features": _joined(g, finals[-1], spec.bidirectional)}
    if spec.pool == "mean":
        total = g.reduce("ReduceSum", out, 1, keepdims=0)
        count = g.cast(g.add("Max", [lengths, g.const(1)]), g.float)
        return {"features": g.add("Div", [total, g.unsqueeze(count, 1)])}
    if spec.pool == "max":
        masked = g.where(g.unsqueeze(real, 2), out, g.const(-np.inf, g.dtype))
        return {"features": g.reduce("ReduceMax", masked, 1, keepdims=0)}
    raise InputError("to", f"is onnx, which has no graph for the pool '{spec.pool}'")


def _one_rnn(g: _Graph, spec: Any, params: dict[str, np.ndarray]) -> dict[str, str]:
    """classify, tag, lm and regress (seqtool.core.models.forward)."""
    data = "ids" if spec.tokens_in else "x"
    real = _real_steps(g, data, "lengths")  # (B, T)
    head_w = g.param("head.weight", params["head.weight"])
    head_b = g.param("head.bias", params["head.bias"])
    first = "outputs" if spec.task == "regress" else "logits"
    if spec.tokens_in:
        E = g.param("embedding.weight", params["embedding.weight"])
        X = g.add("Gather", [E, g.transpose(data, 1, 0)], hint="X")  # (T, B, E)
    else:
        X = g.transpose(data, 1, 0, 2)
    if spec.cell == "bow":  # the mean of the real steps' embeddings
        total = g.reduce("ReduceSum", g.where(g.unsqueeze(g.transpose(real, 1, 0), 2), X,
                                              g.const(0, g.dtype)), 0, keepdims=0)
        count = g.cast(g.add("Max", [g.const(1), "lengths"]), g.float)
        features = g.add("Div", [total, g.unsqueeze(count, 1)])
        return {first: g.add("Gemm", [features, head_w, head_b], transB=1)}
    _check_cell(spec)
    H = spec.hidden // 2 if spec.bidirectional else spec.hidden
    Y, finals, _ = _stack(g, spec, params, "rnn.", X, "lengths", H, spec.bidirectional)
    out = g.transpose(Y, 1, 0, 2)  # (B, T, H)
    if spec.per_step:
        return {first: _zero_padding(g, g.linear(out, head_w, head_b), real)}
    pooled = _pool(g, spec, params, _zero_padding(g, out, real), finals, real, "lengths")
    result = {first: g.add("Gemm", [pooled["features"], head_w, head_b], transB=1)}
    if "attention" in pooled:
        result["attention"] = pooled["attention"]
    return result


# ---------------------------------------------------------------------------------------
# The encoder–decoder


def _attention_scores(g: _Graph, spec: Any, params: dict[str, np.ndarray], queries: str,
                      keys: str) -> str:
    """(B, M, S) scores of queries (B, M, H) over keys (B, S, H), as
    seqtool.core.global_attention.scores_of."""
    if spec.score == "dot":
        return g.add("MatMul", [queries, g.transpose(keys, 0, 2, 1)], hint="scores")
    if spec.score == "general":
        projected = g.linear(keys, g.param("attention.weight", params["attention.weight"]))
        return g.add("MatMul", [queries, g.transpose(projected, 0, 2, 1)], hint="scores")
    names = ("attention.query.weight", "attention.key.weight", "attention.key.bias",
             "attention.v.weight")
    W_q, W_k, b_k, v = (g.param(name, params[name]) for name in names)
    projected = g.linear(keys, W_k, b_k)  # (B, S, H)
    q = g.linear(queries, W_q)  # (B, M, H)
    pairs = g.add("Tanh", [g.add("Add", [g.unsqueeze(q, 2), g.unsqueeze(projected, 1)])])
    return g.squeeze(g.linear(pairs, v), 3)  # (B, M, S, H) · v


def _seq2seq(g: _Graph, spec: Any, params: dict[str, np.ndarray]) -> dict[str, str]:
    """Teacher-forced logits and attention (seqtool.core.seq2seq.forward)."""
    from seqtool.core.global_attention import _selector

    _check_cell(spec)
    src_real = _real_steps(g, "src", "src_lengths")  # (B, S)
    tgt_real = _real_steps(g, "tgt", "tgt_lengths")  # (B, M)
    H = spec.hidden
    half = H // 2 if spec.bidirectional else H  # each encoder direction's width

    def embedded(prefix: str, ids: str) -> str:
        E = g.param(prefix + "embedding.weight", params[prefix + "embedding.weight"])
        return g.add("Gather", [E, g.transpose(ids, 1, 0)])  # (T, B, E)

    enc, finals_h, finals_c = _stack(g, spec, params, "encoder.rnn.", embedded("encoder.", "src"),
                                     "src_lengths", half, spec.bidirectional)
    # the decoder starts from each encoder layer's final states, [→h; ←h] when bidirectional
    h0 = [g.unsqueeze(_joined(g, h, spec.bidirectional), 0) for h in finals_h]
    c0 = [None if c is None else g.unsqueeze(_joined(g, c, spec.bidirectional), 0)
          for c in finals_c]
    dec, _, _ = _stack(g, spec, params, "decoder.rnn.", embedded("decoder.", "tgt"),
                       "tgt_lengths", H, initial=(h0, c0))
    keys = _zero_padding(g, g.transpose(enc, 1, 0, 2), src_real)  # (B, S, H)
    queries = _zero_padding(g, g.transpose(dec, 1, 0, 2), tgt_real)  # (B, M, H)
    scores = _attention_scores(g, spec, params, queries, keys)
    lengths = g.unsqueeze("src_lengths", 1, 2)  # (B, 1, 1)
    a = _select(g, spec, _selector, scores, g.unsqueeze(src_real, 1), lengths)  # (B, M, S)
    context = g.add("MatMul", [a, keys])
    both = g.add("Concat", [context, queries], axis=-1)  # [c_t; h_t]
    combined = g.add("Tanh", [g.linear(both, g.param("combine.weight", params["combine.weight"]))])
    logits = g.linear(combined, g.param("head.weight", params["head.weight"]),
                      g.param("head.bias", params["head.bias"]))
    return {"logits": _zero_padding(g, logits, tgt_real),
            "attention": _zero_padding(g, a, tgt_real)}


# ---------------------------------------------------------------------------------------
# The model


def _float_dtype(params: dict[str, np.ndarray]) -> np.dtype:
    dtype = np.dtype(params["head.weight"].dtype)
    if dtype not in FLOATS:
        raise InputError("to", f"is onnx, which exports float32 and float64 models; this one "
                         f"is {dtype.name}")
    return dtype


def _io(spec: Any, dtype: np.dtype) -> tuple[list[onnx.ValueInfoProto],
                                              list[onnx.ValueInfoProto]]:
    """The graph's inputs and outputs, named and ordered by the contract (input_names,
    output_names), with dynamic batch and time axes."""
    floats, O = FLOATS[dtype], spec.output_size
    steps = "tgt_steps" if spec.task == "seq2seq" else "steps"
    types = {
        "ids": (INT64, ["batch", "steps"]),
        "x": (floats, ["batch", "steps", spec.input_size]),
        "lengths": (INT64, ["batch"]),
        "src": (INT64, ["batch", "src_steps"]),
        "src_lengths": (INT64, ["batch"]),
        "tgt": (INT64, ["batch", "tgt_steps"]),
        "tgt_lengths": (INT64, ["batch"]),
        "logits": (floats, ["batch", steps, O] if spec.per_step or spec.task == "seq2seq"
                   else ["batch", O]),
        "attention": (floats, ["batch", "tgt_steps", "src_steps"] if spec.task == "seq2seq"
                      else ["batch", "steps"]),
    }
    types["outputs"] = types["logits"]
    return ([helper.make_tensor_value_info(name, *types[name]) for name in input_names(spec)],
            [helper.make_tensor_value_info(name, *types[name]) for name in output_names(spec)])


def _describe(spec: Any, dtype: np.dtype) -> str:
    what = f"seqtool {spec.task} model: {spec.cell}"
    if spec.cell != "bow":
        what += f", {spec.layers} layer(s), hidden {spec.hidden}"
        what += ", bidirectional" if spec.bidirectional else ""
    if spec.uses_attention:
        what += f", attention {spec.score}/{spec.selector} {spec.selector_params or ''}".rstrip()
    elif spec.task == "classify":
        what += f", pool {spec.pool}"
    text = (f"{what}; {dtype.name}. Inputs {', '.join(input_names(spec))} (batch first, "
            f"right-padded, lengths >= 1); outputs {', '.join(output_names(spec))} (per-step "
            "values are 0 at padded steps). The metadata entry 'seqtool' holds the spec, "
            "vocabulary, labels and tokenizer.")
    if dtype == np.float64 and spec.cell != "bow":
        text += (" The recurrent layers are Scans of the cells' equations in float64 "
                 "(onnxruntime has no double RNN, GRU or LSTM kernel).")
    return text


def build(spec: Any, params: dict[str, np.ndarray], meta: dict[str, Any]) -> onnx.ModelProto:
    """The ONNX model of ``spec`` with the weights ``params`` (torch's names), by the
    contract of :mod:`seqtool.export`; ``meta`` is the run's model.json."""
    from seqtool import __version__

    dtype = _float_dtype(params)
    g = _Graph(dtype)
    outputs = _seq2seq(g, spec, params) if spec.task == "seq2seq" else _one_rnn(g, spec, params)
    inputs, results = _io(spec, dtype)
    for value in results:  # the contract's names
        g.add("Identity", [outputs[value.name]], out=[value.name])
    graph = helper.make_graph(g.nodes, f"seqtool_{spec.task}", inputs, results,
                              g.initializers, doc_string=_describe(spec, dtype))
    model = helper.make_model(graph, producer_name="seqtool", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, doc_string=_describe(spec, dtype))
    helper.set_model_props(model, {"seqtool": json.dumps(metadata(spec, meta))})
    return model


def to_bytes(spec: Any, params: dict[str, np.ndarray], meta: dict[str, Any]) -> bytes:
    """The serialised model (an ``.onnx`` file's bytes)."""
    return build(spec, params, meta).SerializeToString()


__all__ = ["BISECTIONS", "OPSET", "build", "to_bytes"]
