"""A cell registered at run time works everywhere a built-in cell does: the registry, the
config choices, `seqtool bptt --cell NAME` (gradients against finite differences, Jacobian
norms against a numeric Jacobian) and `seqtool train-rnn --cell NAME` (the model's
gradients against finite differences, and a short run that lowers the loss).

The cell is a minimal gated unit in plain NumPy, written here and nowhere else (gates f, n):

    f = σ(W_if x + b_if + W_hf h + b_hf)
    n = tanh(W_in x + b_in + f ⊙ (W_hn h + b_hn))
    h' = (1 − f) ⊙ h + f ⊙ n
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import assert_close
from naive import numeric_grad
from seqtool.core.errors import InputError
from seqtool.core.rnn.cells import (
    Cell, CellGradients, cell_names, get_cell, register_cell, registered, unregister_cell,
)

NAME = "mgu"


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class MGUForward:
    def __init__(self, h, gates, hn, lengths):
        self.h, self.gates, self.hn, self.lengths = h, gates, hn, lengths


class MinimalGatedCell(Cell):
    name = NAME
    gates = ("f", "n")
    keep_gate = 0  # 1 − f keeps the old state
    description = "minimal gated unit (a test's cell)"

    def forward(self, X, weight_ih, weight_hh, bias_ih, bias_hh, h0=None, c0=None,
                lengths=None, *, projected=None, activation="tanh"):
        A = projected if projected is not None else X @ weight_ih.T  # (T, B, 2H)
        T, B = A.shape[:2]
        H = weight_hh.shape[1]
        dtype = np.result_type(A, weight_hh)
        A = A + bias_ih
        lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
        h = np.zeros((T + 1, B, H), dtype)
        if h0 is not None:
            h[0] = h0
        gates = np.zeros((T, B, 2 * H), dtype)
        hn = np.zeros((T, B, H), dtype)
        for t in range(T):
            live = (t < lengths)[:, None]
            hh = h[t] @ weight_hh.T + bias_hh  # (B, 2H)
            f = _sigmoid(A[t, :, :H] + hh[:, :H])
            n = np.tanh(A[t, :, H:] + f * hh[:, H:])
            h[t + 1] = np.where(live, (1 - f) * h[t] + f * n, h[t])
            gates[t] = np.where(live, np.concatenate([f, n], axis=1), 0.0)
            hn[t] = hh[:, H:]
        return MGUForward(h, gates, hn, lengths)

    def backward(self, X, weight_ih, weight_hh, record, dh, dc_n=None, *, lengths=None,
                 activation="tanh", input_products=True):
        T, B, H = dh.shape
        dA_ih = np.zeros((T, B, 2 * H), dh.dtype)
        dA_hh = np.zeros((T, B, 2 * H), dh.dtype)
        carry = np.zeros((B, H), dh.dtype)
        for t in range(T - 1, -1, -1):
            live = (t < record.lengths)[:, None]
            g = dh[t] + carry  # ∂L/∂h_{t+1}
            f, n = record.gates[t, :, :H], record.gates[t, :, H:]
            h_prev, hn = record.h[t], record.hn[t]
            da_n = g * f * (1 - n * n)
            da_f = (g * (n - h_prev) + da_n * hn) * f * (1 - f)
            dA_ih[t] = np.where(live, np.concatenate([da_f, da_n], axis=1), 0.0)
            dA_hh[t] = np.where(live, np.concatenate([da_f, da_n * f], axis=1), 0.0)
            carry = np.where(live, g * (1 - f), g) + dA_hh[t] @ weight_hh
        h_prev = record.h[:-1].reshape(T * B, H)
        flat_ih, flat_hh = dA_ih.reshape(T * B, -1), dA_hh.reshape(T * B, -1)
        return CellGradients(
            weight_ih=flat_ih.T @ X.reshape(T * B, -1) if input_products else None,
            weight_hh=flat_hh.T @ h_prev, bias_ih=flat_ih.sum(axis=0),
            bias_hh=flat_hh.sum(axis=0), h0=carry,
            x=dA_ih @ weight_ih if input_products else None, dA_ih=dA_ih, dA_hh=dA_hh)

    def step_jacobian(self, weight_hh, record, t, activation="tanh"):
        """∂h'/∂h = diag(1 − f) + diag(n − h) ∂f/∂h + diag(f(1 − n²)) (diag(hn) ∂f/∂h + diag(f) W_hn),
        with ∂f/∂h = diag(f(1 − f)) W_hf."""
        H = weight_hh.shape[1]
        f, n = record.gates[t, 0, :H], record.gates[t, 0, H:]
        h_prev, hn = record.h[t, 0], record.hn[t, 0]
        df = (f * (1 - f))[:, None] * weight_hh[:H]
        dn = (f * (1 - n * n))[:, None] * (hn[:, None] * df + f[:, None] * weight_hh[H:])
        return np.diag(1 - f) + (n - h_prev)[:, None] * df + dn

    def direct_path(self, record, t):
        H = record.h.shape[2]
        return 1 - record.gates[t, 0, :H]


@pytest.fixture
def mgu():
    with registered(MinimalGatedCell()) as cell:
        yield cell


# ---------------------------------------------------------------------------------------
# The registry


def test_registry_order_lookup_and_unknown_names(mgu):
    assert cell_names() == ("rnn", "gru", "lstm", NAME)
    assert get_cell(NAME) is mgu
    with pytest.raises(InputError) as err:
        get_cell("mgv")
    assert err.value.key == "cell"
    assert str(err.value) == ("cell is 'mgv' (did you mean mgu?); choose one of "
                              "rnn, gru, lstm, mgu")
    with pytest.raises(ValueError):
        register_cell(MinimalGatedCell())  # a name is registered once


def test_unregistered_cell_is_gone_everywhere():
    from seqtool.config import BpttConfig, TrainConfig
    from seqtool.core.models import ModelSpec

    with registered(MinimalGatedCell()):
        assert BpttConfig.from_mapping({"cell": NAME}).cell == (NAME,)
        assert TrainConfig.from_mapping({"cell": NAME}).cell == NAME
    assert NAME not in cell_names()
    with pytest.raises(InputError, match="choose one of rnn, gru, lstm$"):
        BpttConfig.from_mapping({"cell": NAME})
    with pytest.raises(InputError, match="choose one of rnn, gru, lstm, bow$"):
        TrainConfig.from_mapping({"cell": NAME})
    with pytest.raises(InputError, match="cell is 'mgu'"):
        ModelSpec(task="classify", cell=NAME, input_size=5, output_size=2)
    with pytest.raises(KeyError):
        unregister_cell(NAME)


# ---------------------------------------------------------------------------------------
# The cell's own passes (the template's contract), and the stack


def test_cell_gradients_match_finite_differences_in_a_padded_stack(mgu):
    from seqtool.core.rnn.stack import init_state_dict, stack_backward, stack_forward

    rng = np.random.default_rng(3)
    T, B, D, H, L = 5, 3, 2, 3, 2
    state = init_state_dict(NAME, D, H, L, seed=1, dtype=np.float64)
    assert state["weight_hh_l1"].shape == (2 * H, H)
    X, h0 = rng.normal(size=(T, B, D)), rng.normal(size=(L, B, H)) * 0.5
    lengths = np.array([3, 5, 4])  # not longest first: the stack sorts and restores
    G, A = rng.normal(size=(T, B, H)), rng.normal(size=(L, B, H))

    def loss(state=state, X=X, h0=h0):
        f = stack_forward(NAME, X, state, h0, lengths=lengths)
        return float(np.sum(f.output * G) + np.sum(f.h_n * A))

    f = stack_forward(NAME, X, state, h0, lengths=lengths)
    grads = stack_backward(f, state, G, dh_n=A)
    for key, value in state.items():
        numeric = numeric_grad(lambda v, key=key: loss(state={**state, key: v}), value)
        assert_close(grads[key], numeric, kind="finite-difference", what=key)
    assert_close(grads["x"], numeric_grad(lambda v: loss(X=v), X), kind="finite-difference")
    assert_close(grads["h0"], numeric_grad(lambda v: loss(h0=v), h0), kind="finite-difference")


def test_a_cell_that_reads_no_tables_gets_the_gathered_projection(mgu, monkeypatch):
    from seqtool.core.rnn.stack import init_state_dict, stack_forward
    from seqtool.core.rnn.table_rows import TableRows

    assert not mgu.reads_table_rows
    rng = np.random.default_rng(4)
    state = init_state_dict(NAME, 2, 3, 1, seed=1, dtype=np.float64)
    table = rng.normal(size=(5, 2)) @ state["weight_ih_l0"].T
    ids = rng.integers(0, 5, (4, 3))
    seen = []
    forward = type(mgu).forward

    def spy(self, *args, projected=None, **kwargs):
        seen.append(projected)
        return forward(self, *args, projected=projected, **kwargs)

    monkeypatch.setattr(type(mgu), "forward", spy)
    f = stack_forward(NAME, None, state, projected=TableRows(table, ids))
    assert isinstance(seen[0], np.ndarray)
    np.testing.assert_array_equal(seen[0], table[ids])
    expected = stack_forward(NAME, None, state, projected=table[ids]).output
    np.testing.assert_array_equal(f.output, expected)


# ---------------------------------------------------------------------------------------
# seqtool bptt --cell mgu


def test_bptt_cli_checks_gradients_and_jacobians(mgu, cli):
    result = cli("bptt", "--cell", NAME, "--steps", "6", "--hidden", "3", "--seed", "4",
                 "--check", "--truncate", "2", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["cell"] == NAME and data["gates"] == ["f", "n"]
    assert data["check"]["passed"] and data["check"]["max_relative_error"] < 1e-7
    assert "cell_state" not in data

    # the Jacobian norms against ∂h_T/∂h_k by central differences of the cell's forward pass
    p = data["problem"]
    arrays = {k: np.array(v) for k, v in p.items()}
    x, H = arrays["x"], arrays["weight_hh"].shape[1]
    T = x.shape[0]
    record = mgu.forward(x[:, None, :], arrays["weight_ih"], arrays["weight_hh"],
                         arrays["bias_ih"], arrays["bias_hh"], arrays["h0"][None, :])

    def h_T(k, h_k):
        rest = mgu.forward(x[k:, None, :], arrays["weight_ih"], arrays["weight_hh"],
                           arrays["bias_ih"], arrays["bias_hh"], h_k[None, :])
        return rest.h[-1, 0]

    norms = []
    for k in range(T + 1):
        J = np.empty((H, H))
        for j in range(H):
            e = np.zeros(H)
            e[j] = 1e-6
            J[:, j] = (h_T(k, record.h[k, 0] + e) - h_T(k, record.h[k, 0] - e)) / 2e-6
        norms.append(np.linalg.norm(J, 2))
    assert_close(data["jacobian_norms"]["norms"], norms, kind="finite-difference")

    # the per-step shares sum to ∂L/∂weight_hh
    shares = np.array([s["dweight_hh"] for s in data["per_step"]])
    assert_close(shares.sum(axis=0), data["gradients"]["weight_hh"])


def test_bptt_cli_side_by_side_and_csv(mgu, cli):
    result = cli("bptt", "--cell", f"gru,{NAME}", "--steps", "4", "-f", "csv")
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[0].split(",")
    assert header == ["t", "gru_dL_dh_norm", "gru_jacobian_norm", f"{NAME}_dL_dh_norm",
                      f"{NAME}_jacobian_norm"]
    assert len(result.stdout.splitlines()) == 6


def test_bptt_cli_refuses_a_cell_once_unregistered(cli):
    result = cli("bptt", "--cell", NAME)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "seqtool: error: --cell is 'mgu' (did you mean gru?); choose one of rnn, gru, lstm"]


# ---------------------------------------------------------------------------------------
# seqtool train-rnn --cell mgu


def test_model_gradients_match_finite_differences(mgu):
    from seqtool.core.models import ModelSpec, backward, forward, init_params, loss_of

    spec = ModelSpec(task="tag", cell=NAME, input_size=6, output_size=3, hidden=4,
                     embedding_dim=3, layers=2)
    params = init_params(spec, seed=2, dtype=np.float64)
    rng = np.random.default_rng(0)
    inputs = rng.integers(1, 6, size=(5, 3))
    lengths = np.array([5, 3, 4])
    targets = np.where(np.arange(5)[:, None] < lengths, rng.integers(0, 3, size=(5, 3)), -1)

    def loss(p):
        return loss_of(spec, forward(spec, p, inputs, lengths).outputs, targets, lengths).value

    for fold in (False, True):  # the folded embedding runs the cell on X W_ihᵀ given
        fwd = forward(spec, params, inputs, lengths, fold_embedding=fold)
        d_out = loss_of(spec, fwd.outputs, targets, lengths).d_outputs
        grads = backward(spec, params, fwd, inputs, lengths, d_out)
        assert sorted(grads) == sorted(params)
        for key, value in params.items():
            numeric = numeric_grad(lambda v, key=key: loss({**params, key: v}), value)
            # scale 10: a mean loss of small gradients leaves ~2e-7 of rounding in the
            # differences (the built-in gru and lstm show the same on this model)
            assert_close(grads[key], numeric, kind="finite-difference", scale=10,
                         what=f"{key} {fold}")


def test_train_rnn_cli_lowers_the_loss(mgu, cli, tmp_path):
    """Echo with delay 1 (tag each token with the one before it) needs the recurrence: a
    model that learns it lowers the validation loss well below its start in three epochs."""
    result = cli("train-rnn", "--data", "echo", "--delay", "1", "--samples", "200",
                 "--cell", NAME, "--hidden", "8", "--embedding-dim", "4", "--lr", "0.03",
                 "--epochs", "3", "--batch-size", "16", "--out", str(tmp_path / "run"),
                 "-f", "jsonl")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    epochs = [r for r in records if r["event"] == "epoch"]
    assert len(epochs) == 3
    assert epochs[-1]["val_loss"] < 0.8 * epochs[0]["val_loss"]
    assert epochs[-1]["train_loss"] < 0.8 * epochs[0]["train_loss"]
    summary = records[-1]
    assert summary["event"] == "summary" and summary["cell"] == NAME


def test_train_rnn_refuses_an_unknown_cell_in_one_line(cli):
    result = cli("train-rnn", "--cell", "lstn")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "seqtool: error: --cell is 'lstn' (did you mean lstm?); choose one of rnn, gru, "
        "lstm, bow"]
