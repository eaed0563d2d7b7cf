"""The vanilla RNN kernels against loop-only references, finite differences and torch."""

from __future__ import annotations

import numpy as np
import pytest

from harness import assert_close
from naive import ref_rnn_bptt, ref_rnn_forward
from seqtool.core.errors import InputError
from seqtool.core.rnn.vanilla import ACTIVATIONS, rnn_backward, rnn_forward



def make(T, B, D, H, dtype=np.float64, seed=0, scale=0.6):
    rng = np.random.default_rng(seed)
    return dict(
        X=rng.normal(size=(T, B, D)).astype(dtype),
        W_xh=(rng.normal(size=(H, D)) * scale).astype(dtype),
        W_hh=(rng.normal(size=(H, H)) * scale / np.sqrt(H)).astype(dtype),
        b_h=(rng.normal(size=H) * 0.1).astype(dtype),
        h0=(rng.normal(size=(B, H)) * 0.5).astype(dtype),
        G=rng.normal(size=(T, B, H)).astype(dtype),
    )


SHAPES = [(1, 1, 1, 1), (7, 1, 3, 5), (6, 4, 2, 3), (5, 3, 40, 80)]  # last one: BLAS path


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference(activation, dtype, shape):
    p = make(*shape, dtype=dtype)
    comp_h = rnn_forward(p["X"], p["W_xh"], p["W_hh"], p["b_h"], p["h0"], activation)
    assert comp_h.dtype == dtype
    for b in range(shape[1]):
        ref_h = ref_rnn_forward(p["X"][:, b].astype(float), p["W_xh"].astype(float),
                                p["W_hh"].astype(float), p["b_h"].astype(float),
                                p["h0"][b].astype(float), activation)
        assert_close(comp_h[:, b], ref_h, dtype=dtype)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("truncate", [None, 1, 2, 100])
def test_backward_matches_double_sum_reference(activation, dtype, shape, truncate):
    p = make(*shape, dtype=dtype, seed=1)
    h = rnn_forward(p["X"], p["W_xh"], p["W_hh"], p["b_h"], p["h0"], activation)
    comp = rnn_backward(p["X"], p["W_xh"], p["W_hh"], h, p["G"], activation, truncate)
    ref = {"W_xh": 0, "W_hh": 0, "b_h": 0}
    for b in range(shape[1]):
        one = ref_rnn_bptt(p["X"][:, b].astype(float), p["W_xh"].astype(float),
                           p["W_hh"].astype(float), p["b_h"].astype(float),
                           p["h0"][b].astype(float), activation, p["G"][:, b].astype(float),
                           truncate)
        for name in ref:
            ref[name] = ref[name] + one[name]
        if np.abs(one["h0"]).max() > 0:
            assert_close(comp.h0[b], one["h0"], dtype=dtype, scale=10)
    for name, value in ref.items():
        assert getattr(comp, name).dtype == dtype
        assert_close(getattr(comp, name), value, dtype=dtype, scale=10, what=name)


def test_truncate_at_or_beyond_T_equals_full():
    p = make(6, 2, 3, 4, seed=2)
    h = rnn_forward(p["X"], p["W_xh"], p["W_hh"], p["b_h"], p["h0"], "tanh")
    full = rnn_backward(p["X"], p["W_xh"], p["W_hh"], h, p["G"], "tanh")
    for k in (6, 7, 50):
        cut = rnn_backward(p["X"], p["W_xh"], p["W_hh"], h, p["G"], "tanh", truncate=k)
        for name in ("W_xh", "W_hh", "b_h", "h0", "x"):
            np.testing.assert_allclose(getattr(cut, name), getattr(full, name), rtol=0, atol=1e-14)
    short = rnn_backward(p["X"], p["W_xh"], p["W_hh"], h, p["G"], "tanh", truncate=2)
    assert np.abs(short.W_xh - full.W_xh).max() > 1e-3  # truncation really drops paths


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_matches_finite_differences(activation):
    p = make(5, 2, 3, 4, seed=3)

    def loss(**changes):
        q = {**p, **changes}
        h = rnn_forward(q["X"], q["W_xh"], q["W_hh"], q["b_h"], q["h0"], activation)
        return float(np.sum(h[1:] * p["G"]))

    h = rnn_forward(p["X"], p["W_xh"], p["W_hh"], p["b_h"], p["h0"], activation)
    comp = rnn_backward(p["X"], p["W_xh"], p["W_hh"], h, p["G"], activation)
    for name, analytic in (("W_xh", comp.W_xh), ("W_hh", comp.W_hh), ("b_h", comp.b_h),
                           ("h0", comp.h0), ("X", comp.x)):
        value = p[name]
        numeric = np.zeros_like(value)
        eps = 1e-6
        for index in np.ndindex(value.shape):
            up, down = value.copy(), value.copy()
            up[index] += eps
            down[index] -= eps
            numeric[index] = (loss(**{name: up}) - loss(**{name: down})) / (2 * eps)
        assert_close(analytic, numeric, kind="finite-difference", what=name)


def test_unknown_activation_is_an_input_error():
    p = make(2, 1, 1, 1)
    with pytest.raises(InputError) as info:
        rnn_forward(p["X"], p["W_xh"], p["W_hh"], p["b_h"], p["h0"], "softsign")
    assert info.value.key == "activation"


def test_huge_preactivations_stay_finite():
    p = make(4, 2, 3, 3)
    for activation in ("tanh", "sigmoid"):
        h = rnn_forward(p["X"] * 1e6, p["W_xh"], p["W_hh"], p["b_h"], p["h0"], activation)
        assert np.all(np.isfinite(h))
        assert np.all(np.abs(h[1:]) <= 1.0)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("B", [1, 3])
def test_against_torch_nn_rnn(nonlinearity, B):
    torch = pytest.importorskip("torch")
    T, D, H = 6, 3, 5
    torch.manual_seed(0)
    rnn = torch.nn.RNN(D, H, nonlinearity=nonlinearity).double()
    rng = np.random.default_rng(4)
    X = rng.normal(size=(T, B, D))
    h0 = rng.normal(size=(1, B, H)) * 0.5
    G = rng.normal(size=(T, B, H))
    Xt = torch.tensor(X, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    out, _ = rnn(Xt, h0t)
    out.backward(torch.tensor(G))
    W_xh = rnn.weight_ih_l0.detach().numpy()
    W_hh = rnn.weight_hh_l0.detach().numpy()
    b_h = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().numpy()
    h = rnn_forward(X, W_xh, W_hh, b_h, h0[0], nonlinearity)
    assert_close(h[1:], out.detach().numpy())
    comp = rnn_backward(X, W_xh, W_hh, h, G, nonlinearity)
    assert_close(comp.W_xh, rnn.weight_ih_l0.grad.numpy(), kind="reference")
    assert_close(comp.W_hh, rnn.weight_hh_l0.grad.numpy(), kind="reference")
    assert_close(comp.b_h, rnn.bias_ih_l0.grad.numpy(), kind="reference")
    assert_close(comp.b_h, rnn.bias_hh_l0.grad.numpy(), kind="reference")
    assert_close(comp.h0, h0t.grad.numpy()[0], kind="reference")
    assert_close(comp.x, Xt.grad.numpy(), kind="reference")
