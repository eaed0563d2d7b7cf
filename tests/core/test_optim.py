"""Optimisers: torch.optim to rounding, the written equations by hand, state round trips."""

from __future__ import annotations

import numpy as np
import pytest
from harness import assert_close

from seqtool.core.errors import InputError
from seqtool.core.optim import (OPTIMIZERS, SGD, Adagrad, Adam, Momentum, clip_grad_norm,
                                global_norm, make_optimizer)

SHAPES = {"W": (3, 4), "b": (4,), "s": ()}
# Against torch.optim: harness's "exact" bound (1e-12 of the largest entry) times STRICT.
# These checks were rtol = 1e-12 per entry; the entries here span two decades, so 1e-14 of
# the largest keeps every entry within 1e-12 of itself (the errors seen are ~2e-16).
STRICT = 0.01

# name -> (our class, our kwargs, torch class name, torch kwargs)
CASES = {
    "sgd": (SGD, {"lr": 0.1}, "SGD", {"lr": 0.1}),
    "momentum": (Momentum, {"lr": 0.05, "momentum": 0.8}, "SGD",
                 {"lr": 0.05, "momentum": 0.8, "dampening": 0, "nesterov": False}),
    "adam": (Adam, {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6}, "Adam",
             {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6}),
    "adagrad": (Adagrad, {"lr": 0.1, "eps": 1e-9, "initial_accumulator_value": 0.3}, "Adagrad",
                {"lr": 0.1, "eps": 1e-9, "initial_accumulator_value": 0.3}),
}
DECAYS = (0.0, 0.05)


def problem(seed=0, steps=5, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = {k: np.asarray(rng.normal(size=s), dtype=dtype) for k, s in SHAPES.items()}
    grads = [{k: np.asarray(rng.normal(size=s), dtype=dtype) for k, s in SHAPES.items()}
             for _ in range(steps)]
    return params, grads


def make(name, params, weight_decay=0.0):
    cls, kwargs, _, _ = CASES[name]
    return cls(params, weight_decay=weight_decay, **kwargs)


@pytest.mark.parametrize("weight_decay", DECAYS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_matches_torch(name, weight_decay):
    torch = pytest.importorskip("torch")
    params, grads = problem()
    tensors = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in params.items()}
    _, _, t_cls, t_kwargs = CASES[name]
    t_opt = getattr(torch.optim, t_cls)(list(tensors.values()), weight_decay=weight_decay,
                                        foreach=False, **t_kwargs)
    opt = make(name, params, weight_decay)
    for g in grads:
        opt.step(g)
        for k, t in tensors.items():
            t.grad = torch.tensor(g[k])
        t_opt.step()
    for k, p in params.items():
        assert_close(p, tensors[k].detach().numpy(), kind="exact", scale=STRICT, what=k)
        assert not np.array_equal(p, problem()[0][k])  # it did move


def first_step_by_hand(name, theta, g, wd):
    """θ after one step, from the equations in the docstrings (written out, not shared code)."""
    _, kw, _, _ = CASES[name]
    g = g + wd * theta
    if name in ("sgd", "momentum"):  # momentum: b = g at the first step
        return theta - kw["lr"] * g
    if name == "adam":
        b1, b2 = kw["betas"]
        m = (1 - b1) * g
        v = (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1), v / (1 - b2)
        return theta - kw["lr"] * m_hat / (np.sqrt(v_hat) + kw["eps"])
    s = kw["initial_accumulator_value"] + g**2
    return theta - kw["lr"] * g / (np.sqrt(s) + kw["eps"])


@pytest.mark.parametrize("weight_decay", DECAYS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_first_step_follows_the_equation(name, weight_decay):
    params, grads = problem(1)
    before = {k: p.copy() for k, p in params.items()}
    make(name, params, weight_decay).step(grads[0])
    for k in params:
        expected = first_step_by_hand(name, before[k], grads[0][k], weight_decay)
        # the same equation in the same order: 1e-14 of the largest entry (was rtol 1e-13)
        assert_close(params[k], expected, kind="exact", scale=0.01, what=k)


def test_momentum_second_step_by_hand():
    theta, g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 0.25]), np.array([-1.0, 2.0])
    params = {"w": theta.copy()}
    opt = Momentum(params, lr=0.1, momentum=0.9)
    opt.step({"w": g1})
    opt.step({"w": g2})
    b = 0.9 * g1 + g2
    # two steps on numbers of order 1: agree to an ulp or so (was rtol 1e-15)
    assert_close(params["w"], theta - 0.1 * g1 - 0.1 * b, kind="exact", scale=1e-3)


@pytest.mark.parametrize("weight_decay", DECAYS)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_is_bit_exact(name, weight_decay):
    params, grads = problem(2)
    opt = make(name, params, weight_decay)
    for g in grads[:3]:
        opt.step(g)
    state = opt.state_dict()
    assert state["step"].shape == () and state["step"].dtype == np.int64 and state["step"] == 3
    resumed_params = {k: p.copy() for k, p in params.items()}
    resumed = make(name, resumed_params, weight_decay)
    resumed.load_state_dict(state)
    for g in grads[3:]:
        opt.step(g)
        resumed.step(g)
    for k in params:
        np.testing.assert_array_equal(resumed_params[k], params[k])
    after, again = opt.state_dict(), resumed.state_dict()
    assert after.keys() == again.keys()
    for key in after:
        np.testing.assert_array_equal(after[key], again[key])


def test_state_dict_is_a_copy():
    params, grads = problem(3)
    opt = Adam(params)
    opt.step(grads[0])
    state = opt.state_dict()
    saved = {k: v.copy() for k, v in state.items()}
    opt.step(grads[1])
    for k in state:
        np.testing.assert_array_equal(state[k], saved[k])
    assert set(state) == {"step", *(f"{s}.{k}" for s in ("step", "m", "v") for k in SHAPES)}


def test_load_state_dict_checks_keys_shapes_and_dtypes():
    params, grads = problem(4)
    adam = Adam(params)
    adam.step(grads[0])
    state = adam.state_dict()
    fresh = Adam({k: p.copy() for k, p in params.items()})
    untouched = fresh.state_dict()

    with pytest.raises(InputError, match=r"has no optimiser state 'm\.W'") as err:
        fresh.load_state_dict({k: v for k, v in state.items() if k != "m.W"})
    assert err.value.key == "resume" and "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"'v\.b' is float64 \(3,\) but the parameter is float64 \(4,\)"):
        fresh.load_state_dict({**state, "v.b": np.zeros(3)})
    with pytest.raises(InputError, match=r"'m\.W' is float32"):
        fresh.load_state_dict({**state, "m.W": state["m.W"].astype(np.float32)})
    with pytest.raises(InputError, match=r"'step' is float64"):
        fresh.load_state_dict({**state, "step": np.array(1.0)})
    with pytest.raises(InputError, match=r"has optimiser state 'buf\.W', which Adam does not use"):
        fresh.load_state_dict({**state, "buf.W": np.zeros((3, 4))})
    with pytest.raises(InputError, match=r"resume has no optimiser state 'buf\.W'"):
        Momentum(params, lr=0.1).load_state_dict(state)  # Adam's state into Momentum
    for key, value in fresh.state_dict().items():  # a failed load changes nothing
        np.testing.assert_array_equal(value, untouched[key])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_grads_may_omit_a_parameter(name):
    params, grads = problem(5)
    b_before = params["b"].copy()
    opt = make(name, params, 0.05)
    state_before = opt.state_dict()
    opt.step({k: g for k, g in grads[0].items() if k != "b"})
    np.testing.assert_array_equal(params["b"], b_before)
    state = opt.state_dict()
    for key in state:
        if key.endswith(".b"):
            np.testing.assert_array_equal(state[key], state_before[key])
    assert state["step.W"] == 1 and state["step.b"] == 0 and state["step"] == 1


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_omitted_parameter_matches_torch_skipping_it(name):
    """A parameter left out of a step keeps its own t (torch skips a None .grad the same way)."""
    torch = pytest.importorskip("torch")
    params, grads = problem(6)
    tensors = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in params.items()}
    _, _, t_cls, t_kwargs = CASES[name]
    t_opt = getattr(torch.optim, t_cls)(list(tensors.values()), foreach=False, **t_kwargs)
    opt = make(name, params)
    for i, g in enumerate(grads):
        g = {k: v for k, v in g.items() if not (k == "b" and i in (0, 2))}
        opt.step(g)
        for k, t in tensors.items():
            t.grad = torch.tensor(g[k]) if k in g else None
        t_opt.step()
    for k, p in params.items():
        assert_close(p, tensors[k].detach().numpy(), kind="exact", scale=STRICT, what=k)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_params_stay_float32(name):
    params, grads = problem(7, dtype=np.float32)
    ids = {k: id(p) for k, p in params.items()}
    opt = make(name, params, 0.05)
    for g in grads:
        opt.step({k: v.astype(np.float64) for k, v in g.items()})  # even with float64 grads
    for k, p in params.items():
        assert p.dtype == np.float32 and id(p) == ids[k]
        assert np.all(np.isfinite(p))
    for key, value in opt.state_dict().items():
        assert value.dtype == (np.int64 if key.startswith("step") else np.float32), key


def test_float32_close_to_float64():
    p32, grads = problem(8, dtype=np.float32)
    p64 = {k: p.astype(np.float64) for k, p in p32.items()}
    a, b = Adam(p32, lr=0.01), Adam(p64, lr=0.01)
    for g in grads:
        a.step(g)
        b.step({k: v.astype(np.float64) for k, v in g.items()})
    for k in p32:
        # float32 against the same steps in float64 (was rtol 1e-5): half the float32 bound
        assert_close(p32[k], p64[k], dtype=np.float32, kind="exact", scale=0.5, what=k)


def test_adam_zero_gradient_leaves_params_exactly_unchanged():
    params, _ = problem(9)
    before = {k: p.copy() for k, p in params.items()}
    opt = Adam(params, lr=0.1)
    for _ in range(3):
        opt.step({k: np.zeros_like(p) for k, p in params.items()})
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
        assert np.all(opt.m[k] == 0) and np.all(opt.v[k] == 0)


def test_step_does_not_change_the_callers_gradients():
    params, grads = problem(10)
    saved = {k: g.copy() for k, g in grads[0].items()}
    make("adam", params, 0.1).step(grads[0])
    for k in saved:
        np.testing.assert_array_equal(grads[0][k], saved[k])


def test_bad_gradients_update_nothing():
    params, grads = problem(11)
    before = {k: p.copy() for k, p in params.items()}
    opt = SGD(params, lr=0.1)
    with pytest.raises(InputError, match="'nope', which is not a parameter"):
        opt.step({**grads[0], "nope": np.zeros(2)})
    with pytest.raises(InputError, match=r"'b' has shape \(5,\) but the parameter has \(4,\)"):
        opt.step({**grads[0], "b": np.zeros(5)})
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    assert opt.t == 0


def test_make_optimizer():
    params, _ = problem(12)
    kinds = {"sgd": SGD, "momentum": Momentum, "adam": Adam, "adagrad": Adagrad}
    for name in OPTIMIZERS:
        opt = make_optimizer(name, params, lr=0.5, weight_decay=0.1)
        assert type(opt) is kinds[name] and opt.lr == 0.5 and opt.weight_decay == 0.1
    with pytest.raises(InputError) as err:
        make_optimizer("x", params, lr=0.1)
    assert err.value.key == "optimizer"
    assert err.value.message == "is 'x'; choose one of sgd, momentum, adam, adagrad"


def test_bad_hyper_parameters():
    params, _ = problem(13)
    with pytest.raises(InputError, match="^lr is -1.0; expected a number >= 0$"):
        SGD(params, lr=-1.0)
    with pytest.raises(InputError, match=r"^momentum is 1.0; expected a number in \[0, 1\)$"):
        Momentum(params, lr=0.1, momentum=1.0)
    with pytest.raises(InputError, match="^betas"):
        Adam(params, betas=(0.9, 1.5))
    with pytest.raises(InputError, match="^weight_decay is nan"):
        Adagrad(params, weight_decay=float("nan"))
    with pytest.raises(InputError, match="^params 'i' is int64"):
        SGD({"i": np.zeros(3, dtype=np.int64)}, lr=0.1)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    _, grads = problem(14, steps=1)
    total_expected = np.sqrt(sum(np.sum(g**2) for g in grads[0].values()))
    for max_norm in (0.5, total_expected * 0.999, 1e6):
        ours = {k: g.copy() for k, g in grads[0].items()}
        tensors = [torch.tensor(g.copy(), requires_grad=True) for g in grads[0].values()]
        for t, g in zip(tensors, grads[0].values()):
            t.grad = torch.tensor(g.copy())
        t_total = torch.nn.utils.clip_grad_norm_(tensors, max_norm, foreach=False)
        total = clip_grad_norm(ours, max_norm)
        assert isinstance(total, float)
        assert_close(total, t_total.item(), kind="exact", scale=STRICT, what="norm")
        assert_close(total, total_expected, kind="exact", scale=STRICT, what="norm by hand")
        for g, t in zip(ours.values(), tensors):
            assert_close(g, t.grad.numpy(), kind="exact", scale=STRICT)


def test_clip_grad_norm_by_hand():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert global_norm(grads) == 5.0
    assert clip_grad_norm(grads, 10.0) == 5.0  # under the limit: untouched
    np.testing.assert_array_equal(grads["a"], [3.0, 0.0])
    assert clip_grad_norm(grads, 1.0) == 5.0  # returns the norm before clipping
    c = 1.0 / (5.0 + 1e-6)
    np.testing.assert_array_equal(grads["a"], [3.0 * c, 0.0])
    np.testing.assert_array_equal(grads["b"], [[4.0 * c]])
    assert global_norm(grads) < 1.0
    assert global_norm({}) == 0.0 and clip_grad_norm({}, 1.0) == 0.0
    g32 = {"a": np.ones(4, dtype=np.float32)}
    clip_grad_norm(g32, 1.0)
    assert g32["a"].dtype == np.float32


# the fused kernel does the NumPy update's arithmetic in one pass (was 1e-14 and 2e-6)
@pytest.mark.parametrize("dtype, scale", [(np.float64, 0.01), (np.float32, 0.1)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fused_adam_matches_the_numpy_adam(dtype, scale, weight_decay):
    """The training loop's one-pass kernel against the reference NumPy update."""
    rng = np.random.default_rng(7)
    shapes = {"w": (4, 3), "b": (3,)}
    start = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
    plain, fused = ({k: v.copy() for k, v in start.items()} for _ in range(2))
    a = Adam(plain, lr=0.01, weight_decay=weight_decay)
    b = Adam(fused, lr=0.01, weight_decay=weight_decay)
    b.fused = True
    for _ in range(5):
        grads = {k: rng.normal(size=s).astype(dtype) for k, s in shapes.items()}
        a.step(grads)
        b.step(grads)
    for k in shapes:
        assert fused[k].dtype == dtype
        assert_close(fused[k], plain[k], dtype=dtype, kind="exact", scale=scale, what=k)
    for k, v in a.state_dict().items():
        assert_close(b.state_dict()[k], v, dtype=dtype, kind="exact", scale=scale, what=k)


def test_fused_adam_follows_replaced_arrays_and_refuses_what_the_checked_path_refuses():
    """The fused step keeps flat views of θ, m and v between steps: a parameter array
    replaced in the dict (or a gradient set in another order) is updated itself, and a
    wrong name or shape is the checked path's InputError, with nothing updated."""
    rng = np.random.default_rng(3)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    reference = {k: v.copy() for k, v in params.items()}
    fused, plain = Adam(params, lr=0.1), Adam(reference, lr=0.1)
    fused.fused = True
    grads = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(4)]
    fused.step(grads[0])
    plain.step(grads[0])
    params["w"] = params["w"].copy()  # a new array under the same name
    fused.step(grads[1])
    plain.step(grads[1])
    for k in params:
        np.testing.assert_array_equal(params[k], reference[k], err_msg=k)
    fused.step({"b": grads[2]["b"], "w": grads[2]["w"]})  # the gradients in another order
    plain.step(grads[2])
    for k in params:
        np.testing.assert_array_equal(params[k], reference[k], err_msg=k)
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises(InputError, match="not a parameter"):
        fused.step({"w": grads[3]["w"], "x": grads[3]["b"]})
    with pytest.raises(InputError, match="shape"):
        fused.step({"w": grads[3]["w"].T, "b": grads[3]["b"]})
    for k in params:
        np.testing.assert_array_equal(params[k], before[k], err_msg=k)
    assert fused.t == 3


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_steps_on_a_cells_gradients_match_torch(name, small_problem, torch_module):
    """Three steps on the weights of a 2-layer GRU, with the gradients torch's autograd
    gives for L = Σ_t G_t · h_t: our optimiser moves the state dict as torch.optim moves
    the module's parameters."""
    import torch

    p = small_problem("gru", input_size=3, hidden=4, steps=4, batch=2, layers=2, seed=3)
    module = torch_module("gru", p.state)
    params = {k: v.copy() for k, v in p.state.items()}
    _, _, t_cls, t_kwargs = CASES[name]
    t_opt = getattr(torch.optim, t_cls)(module.parameters(), weight_decay=0.01,
                                        foreach=False, **t_kwargs)
    opt = make(name, params, 0.01)
    named = dict(module.named_parameters())
    for _ in range(3):
        t_opt.zero_grad()
        out, _ = module(torch.from_numpy(p.x), torch.from_numpy(p.h0))
        (out * torch.from_numpy(p.G)).sum().backward()
        opt.step({k: named[k].grad.numpy().copy() for k in params})
        t_opt.step()
    for k, v in params.items():
        assert_close(v, named[k].detach().numpy(), kind="exact", scale=STRICT, what=k)
        assert not np.array_equal(v, p.state[k])
