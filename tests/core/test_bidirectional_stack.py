"""Bidirectional stacks against torch.nn.RNN / GRU / LSTM(bidirectional=True) on packed
batches, finite differences, and the one-way stack left as it was."""

from __future__ import annotations

import numpy as np
import pytest

from core.test_stack import TORCH_CLASSES, with_c
from harness import assert_close
from naive import numeric_grad
from seqtool.core.buffers import Workspace
from seqtool.core.rnn import tuning
from seqtool.core.rnn.cells import PARAM_NAMES, get_cell
from seqtool.core.rnn.stack import (init_state_dict, is_bidirectional, num_layers_of,
                                    stack_backward, stack_forward)

LENGTHS = np.array([3, 6, 1, 5, 6])  # ragged and not longest first: the stack sorts them
T, D, H = 6, 3, 4


def problem(cell, L, lengths=LENGTHS, seed=0, D=D, H=H, T=T):
    """Inputs, initial states and the loss's weights: G on the outputs at the real steps
    (zero on the padding, which torch pads with zeros), A on h_n, C on c_n."""
    rng = np.random.default_rng(seed)
    B = len(lengths)
    real = (np.arange(T)[:, None] < lengths[None, :])[..., None]  # (T, B, 1)
    return dict(
        X=rng.normal(size=(T, B, D)), h0=rng.normal(size=(2 * L, B, H)) * 0.5,
        c0=rng.normal(size=(2 * L, B, H)) * 0.5 if with_c(cell) else None,
        G=rng.normal(size=(T, B, 2 * H)) * real, A=rng.normal(size=(2 * L, B, H)),
        C=rng.normal(size=(2 * L, B, H)) if with_c(cell) else None, real=real[..., 0],
    )


def torch_run(module, cell, p, lengths):
    """torch's outputs (padded with zeros), h_n, c_n and gradients for ``p``'s loss."""
    torch = pytest.importorskip("torch")
    X = torch.tensor(p["X"], requires_grad=True)
    h0 = torch.tensor(p["h0"], requires_grad=True)
    c0 = torch.tensor(p["c0"], requires_grad=True) if with_c(cell) else None
    inputs = X
    if lengths is not None:
        inputs = torch.nn.utils.rnn.pack_padded_sequence(X, torch.from_numpy(lengths),
                                                         enforce_sorted=False)
    out, final = module(inputs, (h0, c0) if with_c(cell) else h0)
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=p["X"].shape[0])
    h_n, c_n = final if with_c(cell) else (final, None)
    loss = (out * torch.tensor(p["G"])).sum() + (h_n * torch.tensor(p["A"])).sum()
    if with_c(cell):
        loss = loss + (c_n * torch.tensor(p["C"])).sum()
    loss.backward()
    grads = {key: param.grad.numpy() for key, param in module.named_parameters()}
    grads.update(x=X.grad.numpy(), h0=h0.grad.numpy())
    if with_c(cell):
        grads["c0"] = c0.grad.numpy()
    return dict(output=out.detach().numpy(), h_n=h_n.detach().numpy(),
                c_n=None if c_n is None else c_n.detach().numpy(), grads=grads)


# rnn twice: torch.nn.RNN's two nonlinearities
VARIANTS = [("rnn", "tanh"), ("rnn", "relu"), ("gru", "tanh"), ("lstm", "tanh")]


@pytest.mark.parametrize("cell,nonlinearity", VARIANTS)
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("ragged", [True, False])
def test_against_torch(cell, nonlinearity, L, ragged):
    torch = pytest.importorskip("torch")
    torch.manual_seed(L)
    kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    module = getattr(torch.nn, TORCH_CLASSES[cell])(D, H, num_layers=L, bidirectional=True,
                                                    **kwargs).double()
    state = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    assert is_bidirectional(state) and num_layers_of(state) == L
    lengths = LENGTHS if ragged else None
    p = problem(cell, L, LENGTHS if ragged else np.full(len(LENGTHS), T), seed=L)
    ref = torch_run(module, cell, p, lengths)

    f = stack_forward(cell, p["X"], state, p["h0"], p["c0"], nonlinearity=nonlinearity,
                      lengths=lengths)
    real = p["real"]
    assert f.output.shape == (T, len(LENGTHS), 2 * H) and f.h_n.shape == (2 * L, len(LENGTHS), H)
    assert_close(f.output[real], ref["output"][real], what="output")
    assert_close(f.h_n, ref["h_n"], what="h_n")
    if with_c(cell):
        assert_close(f.c_n, ref["c_n"], what="c_n")
    # the padded steps hold each direction's final state (the top layer's h_n rows)
    top = np.concatenate([f.h_n[-2], f.h_n[-1]], axis=-1)  # (B, 2H)
    for b, n in enumerate(LENGTHS if ragged else []):
        assert np.array_equal(f.output[n:, b], np.broadcast_to(top[b], (T - n, 2 * H)))

    grads = stack_backward(f, state, p["G"], dh_n=p["A"], dc_n=p["C"],
                           nonlinearity=nonlinearity)
    names = [key for key, _ in module.named_parameters()]
    assert sum(key.endswith("_reverse") for key in names) == 4 * L
    expected = set(names) | {"x", "h0"} | ({"c0"} if with_c(cell) else set())
    assert set(grads) == expected
    for key in sorted(expected):
        assert_close(grads[key], ref["grads"][key], kind="reference", what=key)


def test_state_dict_names_load_into_torch():
    torch = pytest.importorskip("torch")
    for cell in TORCH_CLASSES:
        state = init_state_dict(cell, D, H, 2, seed=3, dtype=np.float64, bidirectional=True)
        module = getattr(torch.nn, TORCH_CLASSES[cell])(D, H, num_layers=2,
                                                        bidirectional=True).double()
        assert list(state) == list(module.state_dict())  # the same names, in torch's order
        module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
        G = len(get_cell(cell).gates)
        assert state["weight_ih_l0_reverse"].shape == (G * H, D)
        assert state["weight_ih_l1"].shape == state["weight_ih_l1_reverse"].shape == (G * H, 2 * H)
        assert state["weight_hh_l1_reverse"].shape == (G * H, H)
        assert np.abs(state["weight_hh_l1_reverse"]).max() <= 1 / np.sqrt(H)
        assert is_bidirectional(state) and num_layers_of(state) == 2
        assert not is_bidirectional(init_state_dict(cell, D, H, 2))


def test_one_way_stack_is_unchanged():
    """init_state_dict draws what it always drew, and a one-way stack is its layers run
    one after the other: bit for bit."""
    lengths = LENGTHS
    order = np.argsort(-lengths, kind="stable")
    for cell in TORCH_CLASSES:
        spec = get_cell(cell)
        for dtype in (np.float32, np.float64):
            state = init_state_dict(cell, D, H, 2, seed=5, dtype=dtype)
            assert init_state_dict(cell, D, H, 2, seed=5, dtype=dtype,
                                   bidirectional=False).keys() == state.keys()
            rng = np.random.default_rng(5)
            for layer in range(2):
                drawn = spec.init_layer(rng, D if layer == 0 else H, H, dtype)
                for name in PARAM_NAMES:
                    value = state[f"{name}_l{layer}"]
                    assert value.dtype == dtype and np.array_equal(value, drawn[name])
            # the bidirectional dict starts with the same draws
            both = init_state_dict(cell, D, H, 2, seed=5, dtype=dtype, bidirectional=True)
            for name in PARAM_NAMES:
                assert np.array_equal(both[f"{name}_l0"], state[f"{name}_l0"])

            p = problem(cell, 1, seed=7)
            X = p["X"].astype(dtype)
            h0 = p["h0"].astype(dtype)  # (2, B, H): the two layers of a one-way stack
            f = stack_forward(cell, X, state, h0, lengths=lengths)
            x = X[:, order]
            for layer in range(2):
                params = [state[f"{name}_l{layer}"] for name in PARAM_NAMES]
                record = spec.forward(x, *params, h0[layer][order], None, lengths[order])
                x = record.h[1:]
            back = np.argsort(order)
            assert f.output.shape == (T, len(lengths), H)
            assert np.array_equal(f.output, x[:, back])


def loss_of(cell, p, state, lengths, dropout, **changes):
    q = {**p, **changes}
    f = stack_forward(cell, q["X"], state, q["h0"], q["c0"], lengths=lengths, dropout=dropout,
                      rng=np.random.default_rng(11))  # the same dropout masks every call
    total = np.sum(f.output * p["G"]) + np.sum(f.h_n * p["A"])
    if with_c(cell):
        total += np.sum(f.c_n * p["C"])
    return float(total)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gradients_match_finite_differences(cell):
    """With dropout between the layers (on the 2H outputs) and a loss that also reads the
    padded output steps (each direction's final state there)."""
    lengths, dropout = np.array([2, 4, 3]), 0.3
    p = problem(cell, 2, lengths, seed=2, D=2, H=2, T=4)
    p["G"] = np.random.default_rng(3).normal(size=p["G"].shape)  # the padded steps too
    state = init_state_dict(cell, 2, 2, 2, seed=4, dtype=np.float64, bidirectional=True)
    f = stack_forward(cell, p["X"], state, p["h0"], p["c0"], lengths=lengths, dropout=dropout,
                      rng=np.random.default_rng(11))
    assert f.masks[1].shape == (4, 3, 4) and (f.masks[1] == 0).any()
    grads = stack_backward(f, state, p["G"], dh_n=p["A"], dc_n=p["C"])
    for key, value in state.items():
        numeric = numeric_grad(
            lambda v, key=key: loss_of(cell, p, {**state, key: v}, lengths, dropout), value)
        assert_close(grads[key], numeric, kind="finite-difference", what=key)
    for name in ("X", "h0") + (("c0",) if with_c(cell) else ()):
        numeric = numeric_grad(
            lambda v, name=name: loss_of(cell, p, state, lengths, dropout, **{name: v}), p[name])
        assert_close(grads["x" if name == "X" else name], numeric, kind="finite-difference",
                     what=name)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_a_workspace_gives_the_same_numbers(cell):
    """Each (layer, direction) has a scope of its own: lent arrays (recycled from a call
    on another batch) give the numbers of fresh ones, bit for bit."""
    state = init_state_dict(cell, D, H, 2, seed=1, dtype=np.float64, bidirectional=True)
    p, q = problem(cell, 2, seed=1), problem(cell, 2, seed=2)

    def run(p, workspace):
        f = stack_forward(cell, p["X"], state, p["h0"], p["c0"], lengths=LENGTHS,
                          workspace=workspace)
        g = stack_backward(f, state, p["G"], dh_n=p["A"], dc_n=p["C"])
        return {"output": f.output.copy(), "h_n": f.h_n,
                **{key: np.array(value) for key, value in g.items()}}

    space = Workspace()
    with tuning.use(recycle_from=0):
        fresh = run(p, None)
        run(q, space)
        again = run(p, space)
    for key, value in fresh.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)
    for key in ("0", "0_reverse", "0_join", "1", "1_reverse", "1_join"):
        assert space.scope("stack").scope(key).nbytes > 0, key  # the stack's own scope


def test_refusals():
    state = init_state_dict("lstm", D, H, 2, dtype=np.float64, bidirectional=True)
    X = np.zeros((T, 2, D))
    with pytest.raises(ValueError, match="one-way stacks only"):
        stack_forward("lstm", None, state, projected=np.zeros((T, 2, 4 * H)))
    with pytest.raises(ValueError, match=r"h0 of a bidirectional stack of 2 layers"):
        stack_forward("lstm", X, state, h0=np.zeros((2, 2, H)))
    f = stack_forward("lstm", X, state)
    with pytest.raises(ValueError, match="one-way stacks only"):
        stack_backward(f, state, np.zeros((T, 2, 2 * H)), input_products=False)
    half = {k: v for k, v in state.items() if not k.endswith("l1_reverse")}
    with pytest.raises(ValueError, match="no weight_ih_l1_reverse"):
        stack_forward("lstm", X, half)
