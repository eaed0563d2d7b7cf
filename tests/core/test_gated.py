"""The GRU and LSTM kernels against loop-only references (forward) and complex-step
derivatives (backward), in both dtypes, for one and several sequences."""

from __future__ import annotations

import numpy as np
import pytest

from harness import assert_close
from naive import ref_gated_gradients, ref_gru_states, ref_lstm_states
from seqtool.core.rnn import gated
from seqtool.core.rnn.cells import get_cell
# (T, B, D, H); (3, 4, 20, 40) multiplies (B, H) × (H, G·H) in tiles of 4 rows; (4, 13, 17, 21) runs the register tiles with rows left over (8 + 4 + 1) and a
# partial last vector in every product
SHAPES = [(1, 1, 1, 1), (6, 1, 3, 4), (5, 3, 2, 3), (3, 4, 20, 40), (4, 13, 17, 21)]


def make(cell, T, B, D, H, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    G = len(get_cell(cell).gates) * H
    p = dict(
        x=rng.normal(size=(T, B, D)), weight_ih=rng.normal(size=(G, D)) * 0.7,
        weight_hh=rng.normal(size=(G, H)) * 0.7 / np.sqrt(H),
        bias_ih=rng.normal(size=G) * 0.3, bias_hh=rng.normal(size=G) * 0.3,
        h0=rng.normal(size=(B, H)) * 0.5, dh=rng.normal(size=(T, B, H)),
    )
    if cell == "lstm":
        p["c0"] = rng.normal(size=(B, H)) * 0.5
        p["dc_n"] = rng.normal(size=(B, H))
    return {k: v.astype(dtype) for k, v in p.items()}


def forward(cell, p):
    if cell == "lstm":
        return gated.lstm_forward(p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"],
                                  p["bias_hh"], p["h0"], p["c0"])
    return gated.gru_forward(p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"],
                             p["bias_hh"], p["h0"])


def backward(cell, p, record):
    if cell == "lstm":
        return gated.lstm_backward(p["x"], p["weight_ih"], p["weight_hh"], record, p["dh"],
                                   p["dc_n"])
    return gated.gru_backward(p["x"], p["weight_ih"], p["weight_hh"], record, p["dh"])


def one_sequence(p, b):
    """The float64 arguments of sequence b for the references."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    args = {name: p[name].astype(np.float64) for name in names}
    args["x"] = p["x"][:, b].astype(np.float64)
    args["h0"] = p["h0"][b].astype(np.float64)
    if "c0" in p:
        args["c0"] = p["c0"][b].astype(np.float64)
    return args


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_loop_reference(cell, dtype, shape):
    p = make(cell, *shape, dtype=dtype)
    record = forward(cell, p)
    assert record.h.dtype == dtype
    for b in range(shape[1]):
        a = one_sequence(p, b)
        if cell == "lstm":
            ref_h, ref_c = ref_lstm_states(a["x"].tolist(), a["weight_ih"].tolist(),
                                           a["weight_hh"].tolist(), a["bias_ih"].tolist(),
                                           a["bias_hh"].tolist(), a["h0"].tolist(),
                                           a["c0"].tolist())
            assert_close(record.c[:, b], np.real(ref_c), dtype=dtype, kind="reference")
        else:
            ref_h = ref_gru_states(a["x"].tolist(), a["weight_ih"].tolist(),
                                   a["weight_hh"].tolist(), a["bias_ih"].tolist(),
                                   a["bias_hh"].tolist(), a["h0"].tolist())
        assert_close(record.h[:, b], np.real(ref_h), dtype=dtype, kind="reference")


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES[:3])
def test_backward_matches_complex_step(cell, dtype, shape):
    p = make(cell, *shape, dtype=dtype, seed=1)
    grads = backward(cell, p, forward(cell, p))
    weights = {"weight_ih": 0, "weight_hh": 0, "bias_ih": 0, "bias_hh": 0}
    for b in range(shape[1]):
        ref = ref_gated_gradients(cell, one_sequence(p, b), p["dh"][:, b],
                                  p["dc_n"][b] if cell == "lstm" else None)
        for name in weights:
            weights[name] = weights[name] + ref[name]
        assert_close(grads.x[:, b], ref["x"], dtype=dtype, kind="reference", scale=10)
        assert_close(grads.h0[b], ref["h0"], dtype=dtype, kind="reference", scale=10)
        if cell == "lstm":
            assert_close(grads.c0[b], ref["c0"], dtype=dtype, kind="reference", scale=10)
    for name, value in weights.items():
        assert getattr(grads, name).dtype == dtype
        assert_close(getattr(grads, name), value, dtype=dtype, kind="reference", scale=10, what=name)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_batch_rows_are_independent(cell):
    """Sequence b of a batch gives the same states and ∂L/∂x as sequence b alone."""
    p = make(cell, 5, 3, 2, 4, seed=2)
    record = forward(cell, p)
    grads = backward(cell, p, record)
    for b in range(3):
        alone = {k: (v[:, b:b + 1] if k in ("x", "dh") else
                     v[b:b + 1] if k in ("h0", "c0", "dc_n") else v) for k, v in p.items()}
        r = forward(cell, alone)
        g = backward(cell, alone, r)
        np.testing.assert_allclose(r.h[:, 0], record.h[:, b], rtol=0, atol=1e-14)
        np.testing.assert_allclose(g.x[:, 0], grads.x[:, b], rtol=0, atol=1e-14)


def test_lstm_saturated_gates_stay_finite():
    """Pre-activations of ±1e4 saturate every gate without overflow or NaN."""
    p = make("lstm", 4, 2, 3, 3, seed=3)
    p["weight_ih"] = p["weight_ih"] * 1e4
    record = forward("lstm", p)
    grads = backward("lstm", p, record)
    assert np.isfinite(record.h).all() and np.isfinite(record.c).all()
    assert np.isfinite(grads.weight_hh).all() and np.isfinite(grads.x).all()
    assert np.abs(record.h[1:]).max() <= 1.0  # |o ⊙ tanh c| ≤ 1 (h[0] is h_0)


def test_lstm_bias_gradients_are_equal():
    """b_ih and b_hh enter the same pre-activation, so their gradients agree exactly."""
    p = make("lstm", 4, 2, 3, 3, seed=4)
    grads = backward("lstm", p, forward("lstm", p))
    np.testing.assert_array_equal(grads.bias_ih, grads.bias_hh)
