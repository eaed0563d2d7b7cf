"""The BPTT analysis: losses, every gradient, shares, Jacobian norms, truncation, the check."""

from __future__ import annotations

import numpy as np
import pytest

from harness import assert_close
from naive import ref_rnn_bptt, ref_rnn_forward
from seqtool.core.errors import InputError
from seqtool.core.rnn.bptt import (
    PARAMETERS, analyse, finite_difference_check, forward_backward, generate_problem,
)
from seqtool.core.rnn.vanilla import ACTIVATIONS

CASES = [(loss, at) for loss in ("mse", "cross_entropy") for at in ("all", "last")]


def problem(activation="tanh", loss="mse", target_at="all", T=5, seed=0, radius=None):
    return generate_problem(T, 3, 4, 3, seed=seed, radius=radius, activation=activation,
                            loss=loss, target_at=target_at)


def ref_loss_and_output_grads(p):
    """Loss and ∂L/∂ŷ_t from a loop over the loss steps."""
    h = ref_rnn_forward(p.x, p.W_xh, p.W_hh, p.b_h, p.h0, p.activation)
    y_hat = h[1:] @ p.W_hy.T + p.b_y
    total, dy = 0.0, np.zeros_like(y_hat)
    for i, t in enumerate(p.steps):
        if p.loss == "mse":
            diff = y_hat[t] - p.y[i]
            total += 0.5 * diff @ diff
            dy[t] = diff
        else:
            e = np.exp(y_hat[t] - y_hat[t].max())
            prob = e / e.sum()
            label = int(p.y[i])
            total += -np.log(prob[label])
            dy[t] = prob - np.eye(len(prob))[label]
    return total, h, dy


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss, target_at", CASES)
def test_every_gradient_matches_reference(activation, loss, target_at):
    p = problem(activation, loss, target_at, seed=1)
    run = forward_backward(p)
    total, h, dy = ref_loss_and_output_grads(p)
    assert abs(run.losses.sum() - total) <= 1e-12 * max(1, abs(total))
    ref = ref_rnn_bptt(p.x, p.W_xh, p.W_hh, p.b_h, p.h0, p.activation, dy @ p.W_hy)
    ref["W_hy"] = dy.T @ h[1:]
    ref["b_y"] = dy.sum(axis=0)
    for name in PARAMETERS:
        assert_close(run.gradients[name], ref[name], what=name)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_per_step_shares_sum_to_the_gradient(activation):
    report = analyse(problem(activation, T=8, seed=2))
    assert_close(report.per_step.sum(axis=0), report.gradients["W_hh"], scale=0.01)  # 1e-14
    assert report.per_step.shape == (8, 4, 4)
    np.testing.assert_array_equal(report.per_step[0], 0.0)  # h_0 = 0: no share at t = 1


def test_hidden_gradient_norms():
    p = problem("sigmoid", T=6, seed=3)
    report = analyse(p)
    assert report.dL_dh[0] == pytest.approx(np.linalg.norm(report.gradients["h0"]), rel=1e-12)
    # ∂L/∂h_t by finite differences: perturb h_t and restart the recurrence from it
    for t in (1, 3, 6):
        def loss_from(h_t, t=t):
            h = ref_rnn_forward(p.x[t:], p.W_xh, p.W_hh, p.b_h, h_t, p.activation)
            y_hat = np.vstack([report.outputs[:t - 1], (np.vstack([h_t, h[1:]]) @ p.W_hy.T + p.b_y)])
            return 0.5 * ((y_hat - p.y) ** 2).sum()
        h_t = report.hidden[t - 1]
        numeric = np.array([
            (loss_from(h_t + e) - loss_from(h_t - e)) / 2e-6 for e in np.eye(4) * 1e-6
        ])
        assert report.dL_dh[t] == pytest.approx(np.linalg.norm(numeric), rel=1e-7)


def test_jacobian_norms_match_numerical_jacobians():
    p = problem("tanh", T=5, seed=4, radius=1.3)
    report = analyse(p)
    T = 5
    for k in range(T + 1):
        h_k = np.vstack([p.h0, report.hidden])[k]
        J = np.zeros((4, 4))
        for j, e in enumerate(np.eye(4) * 1e-6):
            up = ref_rnn_forward(p.x[k:], p.W_xh, p.W_hh, p.b_h, h_k + e, p.activation)[-1]
            down = ref_rnn_forward(p.x[k:], p.W_xh, p.W_hh, p.b_h, h_k - e, p.activation)[-1]
            J[:, j] = (up - down) / 2e-6
        assert report.jacobian_norms[k] == pytest.approx(np.linalg.norm(J, 2), rel=1e-7)
    assert report.jacobian_norms[T] == 1.0


def test_verdicts():
    vanishing = analyse(problem("tanh", T=30, radius=0.5))
    assert vanishing.verdict == "vanishing" and vanishing.rate < 0.9
    exploding = analyse(problem("identity", T=30, radius=1.5))
    assert exploding.verdict == "exploding"
    assert exploding.rate == pytest.approx(exploding.jacobian_norms[0] ** (1 / 30))
    p = problem("identity", T=30)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))
    p.W_hh = q  # orthogonal: every Jacobian has norm 1
    stable = analyse(p)
    assert stable.verdict == "stable"
    np.testing.assert_allclose(stable.jacobian_norms, 1.0, atol=1e-12)
    assert stable.spectral_radius == pytest.approx(1.0)


def test_radius_sets_the_spectral_radius():
    for g in (0.5, 1.0, 1.7):
        p = problem(radius=g)
        assert np.max(np.abs(np.linalg.eigvals(p.W_hh))) == pytest.approx(g, rel=1e-12)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_truncated_gradients_match_reference(k):
    p = problem("tanh", T=6, seed=5)
    report = analyse(p, truncate=k)
    _, h, dy = ref_loss_and_output_grads(p)
    ref = ref_rnn_bptt(p.x, p.W_xh, p.W_hh, p.b_h, p.h0, p.activation, dy @ p.W_hy, k)
    for name in ("W_xh", "W_hh", "b_h"):
        assert_close(report.truncated[name], ref[name])
    np.testing.assert_allclose(report.truncated["h0"], ref["h0"], atol=1e-15)
    data = report.to_dict()["truncated"]
    assert data["difference_norm"]["W_xh"] == pytest.approx(
        np.linalg.norm(report.truncated["W_xh"] - report.gradients["W_xh"]))


def test_truncate_at_least_T_equals_full():
    report = analyse(problem(T=5), truncate=5)
    for name in PARAMETERS:
        np.testing.assert_allclose(report.truncated[name], report.gradients[name], atol=1e-15)


def test_truncate_below_one_is_refused():
    with pytest.raises(InputError) as info:
        analyse(problem(), truncate=0)
    assert info.value.key == "truncate"


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss, target_at", CASES)
def test_finite_difference_check_passes(activation, loss, target_at):
    report = analyse(problem(activation, loss, target_at, seed=6), check=True)
    assert report.check["passed"]
    assert report.check["max_relative_error"] <= 1e-6
    assert set(report.check["relative_errors"]) == set(PARAMETERS)


def test_finite_difference_check_catches_a_wrong_gradient():
    p = problem(seed=7)
    run = forward_backward(p)
    wrong = dict(run.gradients)
    wrong["W_hh"] = wrong["W_hh"] * 1.001
    errors = finite_difference_check(p, wrong)
    assert errors["W_hh"] == pytest.approx(1e-3, rel=0.05)
    assert errors["W_xh"] < 1e-8


def _torch_loss(torch, p, params):
    f = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
         "identity": lambda z: z}[p.activation]
    h = params["h0"]
    outputs = []
    for t in range(p.x.shape[0]):
        h = f(params["W_xh"] @ torch.tensor(p.x[t]) + params["W_hh"] @ h + params["b_h"])
        outputs.append(params["W_hy"] @ h + params["b_y"])
    y_hat = torch.stack(outputs)[torch.tensor(p.steps)]
    if p.loss == "mse":
        return 0.5 * ((y_hat - torch.tensor(p.y)) ** 2).sum()
    labels = torch.tensor(p.y.astype(np.int64))
    return torch.nn.functional.cross_entropy(y_hat, labels, reduction="sum")


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss, target_at", CASES)
def test_against_torch_autograd(activation, loss, target_at):
    torch = pytest.importorskip("torch")
    p = problem(activation, loss, target_at, seed=8, T=7)
    p.b_h = np.random.default_rng(1).normal(size=4) * 0.1
    p.h0 = np.random.default_rng(2).normal(size=4) * 0.3
    params = {name: torch.tensor(value, requires_grad=True) for name, value in p.params.items()}
    loss_t = _torch_loss(torch, p, params)
    loss_t.backward()
    report = analyse(p)
    assert abs(report.loss - loss_t.item()) <= 1e-10 * abs(loss_t.item())
    for name in PARAMETERS:
        assert_close(report.gradients[name], params[name].grad.numpy(), kind="reference", what=name)


def test_report_json_shapes():
    data = analyse(problem(T=4), truncate=2, check=True).to_dict()
    assert data["shapes"] == {"T": 4, "D": 3, "H": 4, "O": 3}
    assert len(data["hidden"]) == 4 and len(data["hidden"][0]) == 4
    assert len(data["outputs"]) == 4 and len(data["outputs"][0]) == 3
    assert np.array(data["gradients"]["W_hh"]).shape == (4, 4)
    assert np.array(data["gradients"]["W_xh"]).shape == (4, 3)
    assert len(data["per_step"]) == 4 and data["per_step"][0]["t"] == 1
    assert len(data["dL_dh"]) == 5
    assert len(data["jacobian_norms"]["norms"]) == 5
    assert data["loss_steps"] == [1, 2, 3, 4]
    assert data["check"]["passed"] is True

