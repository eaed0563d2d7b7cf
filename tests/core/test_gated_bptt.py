"""The BPTT analysis in torch's layouts, for every registered cell (rnn, GRU, LSTM):
gradients, shares, ‖∂L/∂h_t‖, step Jacobians and their products, truncation, against finite
differences, sub-problems and torch."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from harness import assert_close
from naive import numeric_grad
from seqtool.core.rnn import gated_bptt
from seqtool.core.rnn.bptt import generate_problem
from seqtool.core.rnn.cells import cell_names, get_cell
from seqtool.core.rnn.gated_bptt import (
    analyse_gated, forward_backward, forward_loss, generate_gated_problem, step_jacobian,
)

CELLS = cell_names()
TORCH = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}  # the built-in cells' torch twins
SETTINGS = [("mse", "all"), ("mse", "last"), ("cross_entropy", "all"),
            ("cross_entropy", "last")]


def with_c(cell):
    return get_cell(cell).has_cell_state


def small(cell, loss="mse", target_at="all", T=5, seed=0, **kw):
    p = generate_gated_problem(cell, T, 2, 3, 3, seed=seed, loss=loss, target_at=target_at,
                               **kw)
    rng = np.random.default_rng(seed + 7)  # non-zero biases and states, to test them too
    p.bias_hh = rng.normal(size=p.bias_hh.shape) * 0.3
    p.h0 = rng.normal(size=p.h0.shape) * 0.5
    if with_c(cell):
        p.c0 = rng.normal(size=p.c0.shape) * 0.5
    return p


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("loss,target_at", SETTINGS)
def test_every_gradient_matches_finite_differences(cell, loss, target_at):
    p = small(cell, loss, target_at)
    grads = forward_backward(p).gradients
    assert set(grads) == set(p.parameter_names)
    for name, value in p.params.items():
        numeric = numeric_grad(lambda v, name=name: forward_loss(p, {**p.params, name: v}),
                               value)
        assert_close(grads[name], numeric, kind="finite-difference", what=name)


@pytest.mark.parametrize("cell", CELLS)
def test_report_check_passes_and_shares_sum_to_the_gradient(cell):
    report = analyse_gated(small(cell, T=4), check=True)
    assert report.check["passed"] and report.check["max_relative_error"] < 1e-8
    np.testing.assert_allclose(report.per_step.sum(axis=0), report.gradients["weight_hh"],
                               rtol=0, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_hidden_gradient_norms_match_sub_problems(cell):
    """‖∂L/∂h_t‖ = ‖W_hyᵀ ∂L_t/∂ŷ_t + ∂(Σ_{s>t} L_s)/∂h_t‖, the second part the h_0
    gradient of the problem that starts at h_t (and c_t) with the rest of the sequence."""
    p = small(cell, T=5)
    run = forward_backward(p)
    report = analyse_gated(p)
    T = p.x.shape[0]
    assert report.dL_dh[0] == pytest.approx(np.linalg.norm(run.gradients["h0"]), rel=1e-12)
    for t in range(1, T):
        rest = replace(p, x=p.x[t:], y=p.y[t:], h0=run.record.h[t, 0],
                       c0=run.record.c[t, 0] if with_c(cell) else None)
        through_rest = forward_backward(rest).gradients["h0"]
        expected = np.linalg.norm(run.dh_out[t - 1] + through_rest)
        assert report.dL_dh[t] == pytest.approx(expected, rel=1e-12)
    assert report.dL_dh[T] == pytest.approx(np.linalg.norm(run.dh_out[T - 1]), rel=1e-12)


def one_step_state(p, record, t, state):
    """s_{t+1} as a function of s_t (h, or h and c stacked), everything else fixed."""
    H = p.hidden_size
    h, c = state[:H], state[H:] if with_c(p.cell) else None
    x = p.x[t:t + 1, None, :]
    r = gated_bptt._layer_forward(p, p.params, x, h[None], None if c is None else c[None])
    return np.concatenate([r.h[1, 0], r.c[1, 0]]) if with_c(p.cell) else r.h[1, 0]


@pytest.mark.parametrize("cell", CELLS)
def test_step_jacobians_match_finite_differences(cell):
    p = small(cell, T=4, seed=3)
    record = forward_backward(p).record
    for t in range(4):
        state = (np.concatenate([record.h[t, 0], record.c[t, 0]]) if with_c(cell)
                 else record.h[t, 0])
        numeric = np.stack([numeric_grad(lambda s, i=i: one_step_state(p, record, t, s)[i],
                                         state) for i in range(len(state))])
        np.testing.assert_allclose(step_jacobian(p, record, t), numeric, rtol=0, atol=1e-8)


@pytest.mark.parametrize("cell", CELLS)
def test_jacobian_norms_are_those_of_the_whole_map(cell):
    """‖∂h_T/∂h_k‖₂ from the product of step Jacobians equals the 2-norm of the numeric
    Jacobian of h_T as a function of h_k (c_k held fixed)."""
    p = small(cell, T=4, seed=4)
    report = analyse_gated(p)
    record = forward_backward(p).record
    T, H = 4, p.hidden_size
    for k in range(T):
        def h_T(h_k, k=k):
            c_k = record.c[k, 0][None] if with_c(cell) else None
            r = gated_bptt._layer_forward(p, p.params, p.x[k:, None, :], h_k[None], c_k)
            return r.h[-1, 0]

        numeric = np.stack([numeric_grad(lambda v, i=i: h_T(v)[i], record.h[k, 0])
                            for i in range(H)])
        assert report.jacobian_norms[k] == pytest.approx(np.linalg.norm(numeric, 2), rel=1e-7)
    assert report.jacobian_norms[T] == 1.0


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_truncated_gradients_match_windowed_finite_differences(cell, k):
    """Truncated BPTT = the gradient of Σ_t L_t(the last k steps before t, run from the
    states the full pass had there, held fixed)."""
    p = small(cell, T=5, seed=5)
    record = forward_backward(p).record
    cut = forward_backward(p, truncate=k).gradients

    def windowed_loss(params):
        total = 0.0
        for t in range(5):
            start = max(0, t - k + 1)
            h_start = params["h0"] if start == 0 else record.h[start, 0]
            c_start = None
            if with_c(cell):
                c_start = params["c0"] if start == 0 else record.c[start, 0]
            window = replace(p, x=p.x[start:t + 1], y=p.y[t:t + 1], target_at="last")
            total += forward_loss(window, {**params, "h0": h_start,
                                           **({"c0": c_start} if with_c(cell) else {})})
        return total

    for name, value in p.params.items():
        numeric = numeric_grad(lambda v, name=name: windowed_loss({**p.params, name: v}), value)
        assert_close(cut[name], numeric, kind="finite-difference", what=name)


@pytest.mark.parametrize("cell", CELLS)
def test_truncate_at_or_beyond_T_equals_full(cell):
    p = small(cell, T=4)
    full = forward_backward(p).gradients
    for k in (4, 9):
        cut = forward_backward(p, truncate=k).gradients
        for name in full:
            np.testing.assert_array_equal(cut[name], full[name])
    assert np.abs(forward_backward(p, truncate=1).gradients["weight_hh"]
                  - full["weight_hh"]).max() > 1e-4


def test_generated_cells_share_the_sequence_and_radius_scales_each_gate():
    rnn = generate_problem(6, 3, 4, 2, seed=2, radius=0.7)
    for cell in cell_names():
        G, keep = len(get_cell(cell).gates), get_cell(cell).keep_gate
        p = generate_gated_problem(cell, 6, 3, 4, 2, seed=2, radius=0.7)
        np.testing.assert_array_equal(p.x, rnn.x)
        np.testing.assert_array_equal(p.y, rnn.y)
        np.testing.assert_array_equal(p.W_hy, rnn.W_hy)
        assert p.weight_hh.shape == (G * 4, 4) and p.weight_ih.shape == (G * 4, 3)
        radii = analyse_gated(p).spectral_radii
        assert list(radii.values()) == pytest.approx([0.7] * G, rel=1e-12)
        if keep is not None:  # the keep gate's bias
            assert p.bias_ih[4 * keep:4 * keep + 4].tolist() == [1.0] * 4
        assert np.count_nonzero(p.bias_ih) == (0 if keep is None else 4)


def test_a_larger_forget_bias_keeps_gradients_alive_longer():
    norms = [analyse_gated(generate_gated_problem("lstm", 20, 3, 4, 2, forget_bias=b))
             .cell_norms[0] for b in (0.0, 1.0, 3.0)]
    assert norms[0] < norms[1] < norms[2]


@pytest.mark.parametrize("cell", TORCH)
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_against_torch_autograd(cell, loss):
    torch = pytest.importorskip("torch")
    p = small(cell, loss=loss, T=6, seed=6)
    grads = forward_backward(p).gradients
    module = getattr(torch.nn, TORCH[cell])(2, 3).double()
    with torch.no_grad():
        for name in gated_bptt.WEIGHT_NAMES:
            getattr(module, name + "_l0").copy_(torch.tensor(getattr(p, name)))
    W_hy = torch.tensor(p.W_hy, requires_grad=True)
    b_y = torch.tensor(p.b_y, requires_grad=True)
    h0 = torch.tensor(p.h0[None, None], requires_grad=True)
    x = torch.tensor(p.x[:, None, :])
    if with_c(cell):
        c0 = torch.tensor(p.c0[None, None], requires_grad=True)
        out, _ = module(x, (h0, c0))
    else:
        out, _ = module(x, h0)
    logits = out[:, 0] @ W_hy.T + b_y
    if loss == "mse":
        L = 0.5 * ((logits - torch.tensor(p.y)) ** 2).sum()
    else:
        L = torch.nn.functional.cross_entropy(logits, torch.tensor(p.y).long(), reduction="sum")
    L.backward()
    assert forward_loss(p) == pytest.approx(L.item(), rel=1e-12)
    for name in gated_bptt.WEIGHT_NAMES:
        torch_grad = getattr(module, name + "_l0").grad.numpy()
        assert_close(grads[name], torch_grad, kind="reference", what=name)
    assert_close(grads["W_hy"], W_hy.grad.numpy(), kind="reference")
    assert_close(grads["b_y"], b_y.grad.numpy(), kind="reference")
    assert_close(grads["h0"], h0.grad.numpy()[0, 0], kind="reference")
    if with_c(cell):
        assert_close(grads["c0"], c0.grad.numpy()[0, 0], kind="reference")
