"""Stacked layers and state dicts against torch.nn.RNN / GRU / LSTM, and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from harness import assert_close
from naive import numeric_grad
from seqtool.core.errors import InputError
from seqtool.core.rnn.cells import cell_names, get_cell
from seqtool.core.rnn.stack import init_state_dict, stack_backward, stack_forward

CELLS = cell_names()


def with_c(cell):
    return get_cell(cell).has_cell_state


def problem(cell, T=5, B=2, D=3, H=4, L=2, seed=0):
    rng = np.random.default_rng(seed)
    state = init_state_dict(cell, D, H, L, seed=seed, dtype=np.float64)
    return dict(
        state=state, X=rng.normal(size=(T, B, D)), h0=rng.normal(size=(L, B, H)) * 0.5,
        c0=rng.normal(size=(L, B, H)) * 0.5 if with_c(cell) else None,
        G=rng.normal(size=(T, B, H)), A=rng.normal(size=(L, B, H)),
        C=rng.normal(size=(L, B, H)) if with_c(cell) else None,
    )


def loss_of(cell, p, **changes):
    q = {**p, **changes}
    state = {**p["state"], **changes.get("state", {})}
    f = stack_forward(cell, q["X"], state, q["h0"], q["c0"])
    total = np.sum(f.output * p["G"]) + np.sum(f.h_n * p["A"])
    if with_c(cell):
        total += np.sum(f.c_n * p["C"])
    return float(total)


def grads_of(cell, p):
    f = stack_forward(cell, p["X"], p["state"], p["h0"], p["c0"])
    return stack_backward(f, p["state"], p["G"], dh_n=p["A"], dc_n=p["C"])


def test_state_dict_names_and_shapes():
    for cell in CELLS:
        state = init_state_dict(cell, 3, 4, 2)
        G = len(get_cell(cell).gates)
        assert state["weight_ih_l0"].shape == (G * 4, 3)
        assert state["weight_ih_l1"].shape == (G * 4, 4)
        assert state["weight_hh_l1"].shape == (G * 4, 4)
        assert state["bias_hh_l0"].shape == (G * 4,)
        assert len(state) == 8
        assert np.abs(state["weight_hh_l0"]).max() <= 0.5  # U(−1/√H, 1/√H), H = 4
    with pytest.raises(InputError, match="cell is 'transformer'; choose one of rnn, gru, lstm"):
        init_state_dict("transformer", 3, 4)
    with pytest.raises(InputError, match="cell is 'lstn' \\(did you mean lstm\\?\\)"):
        stack_forward("lstn", np.zeros((2, 1, 3)), init_state_dict("lstm", 3, 4))


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_finite_differences(cell):
    p = problem(cell, T=4, B=2, D=2, H=3, L=2)
    grads = grads_of(cell, p)
    for key, value in p["state"].items():
        numeric = numeric_grad(lambda v, key=key: loss_of(cell, p, state={key: v}), value)
        assert_close(grads[key], numeric, kind="finite-difference", what=key)
    for name in ("X", "h0") + (("c0",) if with_c(cell) else ()):
        numeric = numeric_grad(lambda v, name=name: loss_of(cell, p, **{name: v}), p[name])
        assert_close(grads["x" if name == "X" else name], numeric, kind="finite-difference",
                     what=name)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("with_final_state_gradients", [False, True])
def test_backward_leaves_the_callers_gradients_as_they_were(cell, with_final_state_gradients):
    """stack_backward hands the caller's ∂L/∂output to the top layer's cell without copying
    it (the cells only read dh): neither it nor ∂L/∂h_n, ∂L/∂c_n may change, and a second
    call on the same arrays gives the same gradients."""
    p = problem(cell, T=4, B=3, D=2, H=3, L=2)
    extra = dict(dh_n=p["A"], dc_n=p["C"]) if with_final_state_gradients else {}
    given = {name: None if a is None else a.copy() for name, a in
             (("G", p["G"]), ("A", p["A"]), ("C", p["C"]))}
    f = stack_forward(cell, p["X"], p["state"], p["h0"], p["c0"])
    first = stack_backward(f, p["state"], p["G"], **extra)
    for name, before in given.items():
        if before is not None:
            np.testing.assert_array_equal(p[name], before, err_msg=name)
    second = stack_backward(f, p["state"], p["G"], **extra)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


TORCH_CLASSES = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}  # the built-in cells' twins


@pytest.mark.parametrize("cell", TORCH_CLASSES)
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("B", [1, 3, 13])  # 13: an 8-row register tile, then 4 and 1
def test_against_torch(cell, L, B):
    torch = pytest.importorskip("torch")
    T, D, H = 6, 3, 5
    torch.manual_seed(L * 10 + B)
    module = getattr(torch.nn, TORCH_CLASSES[cell])(D, H, num_layers=L).double()
    state = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    assert sorted(state) == sorted(init_state_dict(cell, D, H, L))  # same names
    p = problem(cell, T=T, B=B, D=D, H=H, L=L, seed=B)
    p["state"] = state
    X = torch.tensor(p["X"], requires_grad=True)
    h0 = torch.tensor(p["h0"], requires_grad=True)
    if with_c(cell):
        c0 = torch.tensor(p["c0"], requires_grad=True)
        out, (h_n, c_n) = module(X, (h0, c0))
        loss = (out * torch.tensor(p["G"])).sum() + (h_n * torch.tensor(p["A"])).sum() \
            + (c_n * torch.tensor(p["C"])).sum()
    else:
        out, h_n = module(X, h0)
        loss = (out * torch.tensor(p["G"])).sum() + (h_n * torch.tensor(p["A"])).sum()
    loss.backward()
    f = stack_forward(cell, p["X"], state, p["h0"], p["c0"])
    assert_close(f.output, out.detach().numpy())
    assert_close(f.h_n, h_n.detach().numpy())
    if with_c(cell):
        assert_close(f.c_n, c_n.detach().numpy())
    grads = stack_backward(f, state, p["G"], dh_n=p["A"], dc_n=p["C"])
    for key, param in module.named_parameters():
        assert_close(grads[key], param.grad.numpy(), kind="reference", what=key)
    assert_close(grads["x"], X.grad.numpy(), kind="reference")
    assert_close(grads["h0"], h0.grad.numpy(), kind="reference")
    if with_c(cell):
        assert_close(grads["c0"], c0.grad.numpy(), kind="reference")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("where", [None, (0, 0), (2, 3)])
def test_a_zero_initial_state_skips_its_product_and_a_nonzero_one_does_not(cell, where):
    """The kernels skip h_{−1} W_hhᵀ when h_{−1} is all zero; one nonzero entry anywhere
    (the first or the last row's) must still be multiplied: against loop references."""
    from naive import ref_gru_states, ref_lstm_states, ref_rnn_forward

    rng = np.random.default_rng(5)
    T, B, D, H = 3, 3, 2, 4
    state = init_state_dict(cell, D, H, 1, seed=3, dtype=np.float64)
    state["weight_hh_l0"] = state["weight_hh_l0"] * 4.0  # h_{−1} W_hhᵀ far from negligible
    X = rng.normal(size=(T, B, D))
    h0 = np.zeros((1, B, H))
    if where is not None:
        h0[0, where[0] % B, where[1]] = 0.7
    c0 = np.zeros((1, B, H)) if with_c(cell) else None
    out = stack_forward(cell, X, state, h0, c0).output
    W_ih, W_hh, b_ih, b_hh = (state[k] for k in ("weight_ih_l0", "weight_hh_l0",
                                                 "bias_ih_l0", "bias_hh_l0"))
    for b in range(B):
        if cell == "lstm":
            h, _ = ref_lstm_states(X[:, b], W_ih, W_hh, b_ih, b_hh, h0[0, b], c0[0, b])
            expected = np.real(np.array(h[1:], dtype=complex))
        elif cell == "gru":
            expected = np.real(np.array(ref_gru_states(X[:, b], W_ih, W_hh, b_ih, b_hh,
                                                       h0[0, b])[1:], dtype=complex))
        else:
            expected = ref_rnn_forward(X[:, b], W_ih, W_hh, b_ih + b_hh, h0[0, b])[1:]
        assert_close(out[:, b], expected)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_unwanted_initial_state_gradients_change_no_other_gradient(cell, bidirectional,
                                                                   threads):
    """initial_states=False skips the product for ∂L/∂h_0: every other gradient keeps its
    bits, and there is no h0 or c0."""
    from seqtool.core import parallel
    from seqtool.core.rnn import tuning

    rng = np.random.default_rng(8)
    T, B, D, H, L = 5, 4, 3, 4, 2
    state = init_state_dict(cell, D, H, L, seed=2, dtype=np.float64,
                            bidirectional=bidirectional)
    X = rng.normal(size=(T, B, D))
    lengths = np.array([3, 5, 0, 4])  # unsorted, with an empty sequence
    dout = rng.normal(size=(T, B, H * (2 if bidirectional else 1)))
    with parallel.threads(threads), tuning.use(split_from=0):
        f = stack_forward(cell, X, state, lengths=lengths)
        every = stack_backward(f, state, dout)
        some = stack_backward(f, state, dout, initial_states=False)
    assert "h0" in every and "h0" not in some and "c0" not in some
    assert set(every) - {"h0", "c0"} == set(some)
    for key in some:
        np.testing.assert_array_equal(some[key], every[key], err_msg=key)
