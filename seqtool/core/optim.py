"""Optimisers that update a dict of NumPy parameters in place, as torch.optim does.

Each optimiser follows the update of its torch.optim namesake line for line (same order of
operations), so a run can be checked against PyTorch to rounding. ``g`` is the gradient,
``θ`` the parameter, ``wd`` the L2 weight decay (added to the gradient, as torch does):

    SGD       g ← g + wd·θ;   θ ← θ − lr·g
    Momentum  g ← g + wd·θ;   b ← g (first step), then b ← μ·b + g;   θ ← θ − lr·b
    Adam      g ← g + wd·θ;   m ← β₁m + (1−β₁)g;   v ← β₂v + (1−β₂)g²;
              θ ← θ − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)
    Adagrad   g ← g + wd·θ;   s ← s + g²;   θ ← θ − lr·g / (√s + ε)

``step(grads)`` updates only the parameters named in ``grads``; the others, and their state,
are left alone (as torch skips a parameter whose ``.grad`` is None). So every parameter keeps
its own step count ``t``, as in torch. State lives in the parameter's dtype (float32 stays
float32); hyper-parameters are constructor arguments, never state.

``state_dict()`` returns every piece of state as arrays (copies): ``"step"`` (calls of
``step``, 0-d int64), ``"step.<name>"`` (that parameter's own t, 0-d int64) and the per-
parameter moments, e.g. ``"m.<name>"``, ``"v.<name>"``. ``load_state_dict`` restores them
bit for bit, after checking that every key is there, no key is extra, and shapes and dtypes
match (else ``InputError("resume", ...)``).
"""

from __future__ import annotations

import math

import numpy as np

from seqtool.core.errors import InputError

OPTIMIZERS = ("sgd", "momentum", "adam", "adagrad")


def _check_range(key: str, value: float, low: float, high: float = math.inf,
                 high_open: bool = False) -> float:
    """``value`` as a float in [low, high] (or [low, high)), else InputError(key)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(key, f"is {value!r}; expected a number") from None
    too_high = value >= high if high_open else value > high
    if not math.isfinite(value) or value < low or too_high:
        bound = f"in [{low:g}, {high:g}{')' if high_open else ']'}" if math.isfinite(high) \
            else f">= {low:g}"
        raise InputError(key, f"is {value!r}; expected a number {bound}")
    return value


# --------------------------------------------------------------------------- gradient norms

def global_norm(grads: dict[str, np.ndarray]) -> float:
    """‖g‖ = √(Σ_k ‖g_k‖²) over every array in ``grads``: each ‖g_k‖² a dot product in the
    array's own precision (as torch computes it; no float64 copy of every gradient on every
    step), the sum of them in float64."""
    total = 0.0
    for g in grads.values():
        flat = g.reshape(-1)
        total += float(np.dot(flat, flat))
    return math.sqrt(total)


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float,
                   total: float | None = None) -> float:
    """Scale every gradient in place so that the global norm is at most ``max_norm``.

    As torch.nn.utils.clip_grad_norm_: total = √(Σ_k ‖g_k‖²); c = max_norm / (total + 1e-6);
    if c < 1, every g_k ← c·g_k. (c < 1 exactly when total > max_norm − 1e-6, so a total a
    hair under max_norm is scaled by a factor a hair under 1, as in torch.) Returns the total
    norm before clipping. A NaN total leaves the gradients as they are (torch would make them
    all NaN); check the returned norm. ``total``: the global norm, if the caller has it.
    """
    max_norm = _check_range("max_norm", max_norm, 0.0)
    if total is None:
        total = global_norm(grads)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= coef
    return total


# --------------------------------------------------------------------------- optimisers

class Optimizer:
    """Base: parameters, step counts, named per-parameter state, state_dict round trip.

    A subclass names its per-parameter state in ``slots`` (e.g. ``("m", "v")``), sets their
    initial value in ``initial``, and writes ``_update(name, θ, g, t)``, which changes θ and
    ``self.state[slot][name]`` in place. ``g`` already has the weight decay added, is in θ's
    dtype, and is a fresh array the update may overwrite.
    """

    slots: tuple[str, ...] = ()
    initial: float = 0.0

    def __init__(self, params: dict[str, np.ndarray], lr: float, weight_decay: float = 0.0):
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
                found = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
                raise InputError("params", f"'{name}' is {found}; expected a float32 or float64 "
                                           "NumPy array")
        self.params = params
        self.lr = _check_range("lr", lr, 0.0)
        self.weight_decay = _check_range("weight_decay", weight_decay, 0.0)
        self.t = 0  # calls of step()
        self.steps = {name: 0 for name in params}  # per parameter: steps that updated it
        self.state = {slot: {name: np.full_like(p, self.initial) for name, p in params.items()}
                      for slot in self.slots}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """One update of every parameter named in ``grads`` (the rest are not touched)."""
        for name, g in grads.items():  # check all first: a bad gradient updates nothing
            if name not in self.params:
                raise InputError("grads", f"has '{name}', which is not a parameter "
                                          f"(parameters: {', '.join(self.params)})")
            if np.shape(g) != self.params[name].shape:
                raise InputError("grads", f"'{name}' has shape {np.shape(g)} but the parameter "
                                          f"has {self.params[name].shape}")
        self.t += 1
        for name, g in grads.items():
            theta = self.params[name]
            g = np.array(g, dtype=theta.dtype)  # a copy: the caller's gradient is not changed
            if self.weight_decay != 0.0:
                g += self.weight_decay * theta
            self.steps[name] += 1
            self._update(name, theta, g, self.steps[name])

    def _update(self, name: str, theta: np.ndarray, g: np.ndarray, t: int) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every piece of state, as copies: step counts (0-d int64) and moments by slot."""
        state = {"step": np.array(self.t, dtype=np.int64)}
        state.update({f"step.{name}": np.array(t, dtype=np.int64)
                      for name, t in self.steps.items()})
        for slot, arrays in self.state.items():
            state.update({f"{slot}.{name}": a.copy() for name, a in arrays.items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a ``state_dict()`` bit for bit; check everything before changing anything."""
        kind = type(self).__name__
        expected = {"step": ((), None)}
        expected.update({f"step.{name}": ((), None) for name in self.params})
        for slot in self.slots:
            expected.update({f"{slot}.{name}": (p.shape, p.dtype) for name, p in self.params.items()})
        for key, (shape, dtype) in expected.items():
            if key not in state:
                raise InputError("resume", f"has no optimiser state '{key}' ({kind} needs it; "
                                           "saved by another optimiser or for other parameters?)")
            value = np.asarray(state[key])
            if dtype is None:  # a step count
                if value.shape != () or value.dtype.kind not in "iu" or int(value) < 0:
                    raise InputError("resume", f"optimiser state '{key}' is {value.dtype} "
                                               f"{value.shape}; expected a count (0-d int64 >= 0)")
            elif value.shape != shape or value.dtype != dtype:
                raise InputError("resume", f"optimiser state '{key}' is {value.dtype} {value.shape} "
                                           f"but the parameter is {dtype} {shape}")
        extra = [key for key in state if key not in expected]
        if extra:
            raise InputError("resume", f"has optimiser state '{extra[0]}', which {kind} does not "
                                       "use (saved by another optimiser or for other parameters?)")
        self.t = int(state["step"])
        self.steps = {name: int(state[f"step.{name}"]) for name in self.params}
        for slot, arrays in self.state.items():
            for name, a in arrays.items():
                np.copyto(a, state[f"{slot}.{name}"])


class SGD(Optimizer):
    """Plain gradient descent (torch.optim.SGD, momentum 0):

        g ← g + wd·θ,   θ ← θ − lr·g
    """

    def __init__(self, params: dict[str, np.ndarray], lr: float, weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay)

    def _update(self, name, theta, g, t):
        theta -= self.lr * g


class Momentum(Optimizer):
    """Heavy-ball momentum (torch.optim.SGD, dampening 0, nesterov False):

        g ← g + wd·θ,   b ← g (at a parameter's first step), then b ← μ·b + g,
        θ ← θ − lr·b
    """

    slots = ("buf",)

    def __init__(self, params: dict[str, np.ndarray], lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay)
        self.momentum = _check_range("momentum", momentum, 0.0, 1.0, high_open=True)

    def _update(self, name, theta, g, t):
        buf = self.state["buf"][name]
        if t == 1:
            buf[...] = g
        else:
            buf *= self.momentum
            buf += g
        theta -= self.lr * buf


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction, as torch.optim.Adam computes it:

        g ← g + wd·θ (L2, not AdamW),
        m ← β₁ m + (1 − β₁) g   (as torch: m ← m + (1 − β₁)(g − m)),
        v ← β₂ v + (1 − β₂) g²,
        θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    which is θ − lr · m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ).
    A zero gradient leaves m, v and so θ exactly unchanged (from a zero start, without
    weight decay): m = 0 gives a step of exactly 0.
    """

    slots = ("m", "v")

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay)
        if len(betas) != 2:
            raise InputError("betas", f"is {betas!r}; expected two numbers (β₁, β₂)")
        self.beta1 = _check_range("betas", betas[0], 0.0, 1.0, high_open=True)
        self.beta2 = _check_range("betas", betas[1], 0.0, 1.0, high_open=True)
        self.eps = _check_range("eps", eps, 0.0)
        self.m, self.v = self.state["m"], self.state["v"]  # load_state_dict copies into these

    fused = False  # the training loop switches on seqtool.core.fused's one-pass kernel

    def step(self, grads: dict[str, np.ndarray]) -> None:
        if not self.fused:
            return super().step(grads)
        from seqtool.core.fused import adam_constants, adam_update_flat

        views = self._flat_views(grads)
        if views is None:  # the checked path says what is wrong (the kernel updates flat views)
            return super().step(grads)
        self.t += 1
        constants: dict[tuple, tuple] = {}  # per (dtype, t): the same for every parameter, usually
        for (name, theta, m, v), g in zip(views, grads.values()):
            t = self.steps[name] = self.steps[name] + 1
            key = (theta.dtype, t)
            if key not in constants:
                constants[key] = adam_constants(theta.dtype, self.weight_decay, self.beta1,
                                                self.beta2, self.lr, self.eps, t)
            adam_update_flat(theta, g, m, v, constants[key])

    _views: tuple = ((), None, ())  # (names, [(name, θ, m, v) flat], [(θ, m, v) whole])

    def _flat_views(self, grads: dict[str, np.ndarray]) -> list | None:
        """(name, θ, m, v) as flat views for each gradient, in its order, made once and kept
        while the arrays are the same; None if a gradient's shape or a name is wrong, or an
        array is not C-contiguous. Per step this costs a few identity checks, where making
        the views, the checks and Adam's scalars again for each parameter took ~4.6 of its
        ~6.3 µs (a 1-layer RNN at H = 32 spent 12 % of its step in Adam)."""
        names, views, whole = self._views
        if names != tuple(grads) or not all(
                self.params.get(n) is a and self.m[n] is m and self.v[n] is v
                for n, (a, m, v) in zip(names, whole)):
            names, views, whole = tuple(grads), [], []
            for name in names:
                if name not in self.params:
                    return None
                arrays = (self.params[name], self.m[name], self.v[name])
                if not all(a.flags.c_contiguous for a in arrays):
                    return None
                views.append((name, *(a.reshape(-1) for a in arrays)))
                whole.append(arrays)
            self._views = (names, views, whole)
        for (a, _, _), g in zip(whole, grads.values()):
            if np.shape(g) != a.shape:
                return None
        return views

    def _update(self, name, theta, g, t):
        m, v = self.m[name], self.v[name]
        m += (1.0 - self.beta1) * (g - m)  # torch: exp_avg.lerp_(grad, 1 - β₁)
        v *= self.beta2
        v += (1.0 - self.beta2) * g * g
        step_size = self.lr / (1.0 - self.beta1**t)
        denom = np.sqrt(v) / (1.0 - self.beta2**t) ** 0.5
        denom += self.eps
        theta -= step_size * (m / denom)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), as torch.optim.Adagrad with lr_decay 0:

        g ← g + wd·θ,   s ← s + g²   (s starts at initial_accumulator_value),
        θ ← θ − lr · g / (√s + ε)
    """

    slots = ("sum",)

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-2, eps: float = 1e-10,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0):
        self.initial = _check_range("initial_accumulator_value", initial_accumulator_value, 0.0)
        super().__init__(params, lr, weight_decay)
        self.eps = _check_range("eps", eps, 0.0)

    def _update(self, name, theta, g, t):
        s = self.state["sum"][name]
        s += g * g
        std = np.sqrt(s)
        std += self.eps
        theta -= self.lr * (g / std)


def make_optimizer(name: str, params: dict[str, np.ndarray], lr: float,
                   weight_decay: float = 0.0) -> Optimizer:
    """The optimiser called ``name`` (one of OPTIMIZERS) with its default hyper-parameters."""
    kinds = {"sgd": SGD, "momentum": Momentum, "adam": Adam, "adagrad": Adagrad}
    if name not in kinds:
        raise InputError("optimizer", f"is '{name}'; choose one of {', '.join(OPTIMIZERS)}")
    return kinds[name](params, lr=lr, weight_decay=weight_decay)
