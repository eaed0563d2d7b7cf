"""The selector registry: one :class:`Selector` entry per name, and :func:`select`.

A selector maps scores ``s`` (..., n) to weights ``w`` (..., n), row by row along the last
axis; its backward pass is the vector-Jacobian product ``g ↦ Jᵀg``, ``J = ∂w/∂s`` (for a
surrogate, the Jacobian of the soft map that stands in for the hard one). Everything that
needs "every selector" (the configs, ``attend``, ``compare-selectors``, recipes, the tests)
reads this registry; an unknown name is an :class:`InputError`, never a default branch.

A parameter (:class:`Param`) is defined once, with its default, its check and its help,
and shared by the selectors that read it (``temperature`` by softmax, topk, gumbel and
st-argmax). :func:`resolve_params` is the one place that fills in defaults and checks values.
"""

from __future__ import annotations

import difflib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from seqtool.core.errors import InputError

GRADIENT_KINDS = ("exact", "zero", "surrogate")

# How --explain writes a number (render passes its formatter; core never imports render).
NumberFormat = Callable[[float], str]


@dataclass(frozen=True)
class Param:
    """One selector parameter: its default (a value, or a function of the number of keys n),
    its check ``check(value, n) -> value`` (raises :class:`InputError` keyed by ``name``),
    and its help text.

    ``always_checked``: a value given for a selector that does not read it is still checked.
    True for temperature and alpha (one flag feeds several selectors in compare-selectors,
    and a temperature of 0 is wrong whichever selector it was meant for); False for k, whose
    bound is the number of keys of the selector that reads it.
    """

    name: str
    default: Any
    check: Callable[[Any, int], Any]
    help: str
    always_checked: bool = False

    def default_for(self, n: int) -> Any:
        return self.default(n) if callable(self.default) else self.default


@dataclass(frozen=True)
class Forward:
    """What a selector's forward pass returns.

    ``ties[...]`` is true where the largest score of a row that decided a hard choice was
    shared (None: the selector makes no hard choice, so no ties); ``noise`` is the random
    noise added to the scores, if any; ``saved`` is what the backward pass needs (None: the
    weights themselves).
    """

    weights: np.ndarray  # (..., n)
    ties: np.ndarray | None = None  # (...,) bool
    noise: np.ndarray | None = None  # (..., n)
    saved: Any = None


@dataclass(frozen=True)
class Selector:
    """One selector: everything seqtool knows about it, in one place.

    - ``forward(s, **params) -> Forward`` on float64 scores (..., n);
    - ``backward(forward, g, **params) -> Jᵀg`` (None: the gradient is exactly zero);
    - ``params``: the :class:`Param` s it reads, in the order reports list them;
    - ``gradient``: ``"exact"`` (the true Jacobian), ``"zero"`` (piecewise constant: the
      true Jacobian is 0 almost everywhere) or ``"surrogate"`` (hard forward, the Jacobian
      of ``soft`` backward), or a function of the params that returns one of them;
    - ``soft(s, **params) -> w``: the smooth map whose Jacobian the backward pass is, for
      a surrogate (None: the forward map itself);
    - ``formula``: the forward map in one line (the selector table of the docs);
    - ``explain(s, w, noise, params, num) -> lines``: ``--explain``'s selection step for one
      query row; the first line continues "2. Selection with NAME", ``num`` formats a number;
    - ``one_hot(params)``: whether the weights are one-hot (tables say "selected", not
      "support"); ``tie_score``: the score whose tie a note reports.
    """

    name: str
    forward: Callable[..., Forward]
    backward: Callable[..., np.ndarray] | None
    params: tuple[Param, ...] = ()
    gradient: str | Callable[[Mapping[str, Any]], str] = "exact"
    soft: Callable[..., np.ndarray] | None = None
    formula: str = ""
    explain: Callable[..., list[str]] | None = None
    one_hot: bool | Callable[[Mapping[str, Any]], bool] = False
    tie_score: str = "largest score"

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def gradient_kind(self, params: Mapping[str, Any]) -> str:
        return self.gradient(params) if callable(self.gradient) else self.gradient

    def is_one_hot(self, params: Mapping[str, Any]) -> bool:
        return bool(self.one_hot(params) if callable(self.one_hot) else self.one_hot)

    def explain_lines(self, scores: np.ndarray, weights: np.ndarray, noise: np.ndarray | None,
                      params: Mapping[str, Any], num: NumberFormat) -> list[str]:
        """The selection step of ``--explain`` for one row (a plain default if none given)."""
        if self.explain is None:
            return [f": {self.formula}" if self.formula else ":", f"   w = {vector(weights, num)}"]
        return self.explain(scores, weights, noise, params, num)


def vector(xs: Any, num: NumberFormat) -> str:
    """A vector as '(a, b, c)' in the caller's number format."""
    return "(" + ", ".join(num(x) for x in xs) + ")"


@dataclass(frozen=True)
class Selection:
    """What :func:`select` returns: the weights and how to push a gradient back through them.

    ``gradient`` is the entry's gradient kind for these params; ``ties`` as in
    :class:`Forward` (all False where the selector makes no hard choice).
    """

    name: str
    weights: np.ndarray  # (..., n)
    gradient: str
    ties: np.ndarray  # (...,) bool
    backward: Callable[[np.ndarray], np.ndarray]
    noise: np.ndarray | None = None  # (..., n) the noise added to the scores (gumbel)

    def vjp(self, grad_weights: np.ndarray) -> np.ndarray:
        """∂L/∂s given ∂L/∂w (same shapes as the weights)."""
        return self.backward(np.asarray(grad_weights, dtype=np.float64))


# ---------------------------------------------------------------------------------------
# The registry

_SELECTORS: dict[str, Selector] = {}
_PARAMETERS: dict[str, Param] = {}  # every parameter of a registered selector, first seen first


def register_selector(entry: Selector) -> Selector:
    """Add ``entry`` (its name must be new); its params join the shared parameter table."""
    if entry.name in _SELECTORS:
        raise ValueError(f"selector {entry.name!r} is already registered")
    if not callable(entry.gradient) and entry.gradient not in GRADIENT_KINDS:
        raise ValueError(f"gradient of {entry.name!r} is {entry.gradient!r}; "
                         f"expected one of {', '.join(GRADIENT_KINDS)}")
    for p in entry.params:
        known = _PARAMETERS.get(p.name)
        if known is not None and known != p:
            raise ValueError(f"parameter {p.name!r} of {entry.name!r} differs from the one "
                             "already registered; selectors share one definition per name")
    _SELECTORS[entry.name] = entry
    for p in entry.params:
        _PARAMETERS.setdefault(p.name, p)
    return entry


def unregister_selector(name: str) -> None:
    """Remove ``name`` (and the parameters no other selector reads)."""
    get_selector(name)
    del _SELECTORS[name]
    read = {p for entry in _SELECTORS.values() for p in entry.param_names}
    for unused in [p for p in _PARAMETERS if p not in read]:
        del _PARAMETERS[unused]


@contextmanager
def registered(entry: Selector) -> Iterator[Selector]:
    """``with registered(entry):`` the selector exists inside the block only (for tests)."""
    register_selector(entry)
    try:
        yield entry
    finally:
        unregister_selector(entry.name)


def selector_names() -> tuple[str, ...]:
    """Every registered selector, in registration order."""
    return tuple(_SELECTORS)


def unknown_message(value: Any, text: str, choices: tuple[str, ...]) -> str:
    """``is 'X' (did you mean Y?); choose one of ...``: the message of an unknown name."""
    hint = difflib.get_close_matches(text, choices, n=1)
    maybe = f" (did you mean {hint[0]}?)" if hint else ""
    return f"is '{value}'{maybe}; choose one of {', '.join(choices)}"


def get_selector(name: str) -> Selector:
    """The entry of ``name``; an unknown name is an InputError keyed ``selector``."""
    entry = _SELECTORS.get(name) if isinstance(name, str) else None
    if entry is None:
        raise InputError("selector", unknown_message(name, str(name), selector_names()))
    return entry


def selector_parameters() -> dict[str, Param]:
    """Every parameter some registered selector reads, by name."""
    return dict(_PARAMETERS)


def resolve_params(name: str, n: int, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters selector ``name`` reads for n keys: given values checked, defaults filled.

    ``given`` may hold parameters the selector does not read (one set of flags feeds every
    selector); they are left out of the answer, and checked only if ``always_checked``. A
    value of None means "the default". Checks run in the shared table's order, so the first
    bad value reported does not depend on the selector.
    """
    entry = get_selector(name)
    given = {key: value for key, value in (given or {}).items() if value is not None}
    for key in given:
        if key not in _PARAMETERS:
            raise InputError(key, "is not a parameter of any selector; known: "
                             f"{', '.join(_PARAMETERS)}")
    reads = entry.param_names
    checked = {}
    for p in _PARAMETERS.values():
        if p.name in reads:
            checked[p.name] = p.check(given.get(p.name, p.default_for(n)), n)
        elif p.always_checked and p.name in given:
            p.check(given[p.name], n)
    return {key: checked[key] for key in reads}


def select(name: str, scores: np.ndarray, **params: Any) -> Selection:
    """Run selector ``name`` on ``scores`` (..., n) with ``params`` and return a Selection."""
    entry = get_selector(name)
    s = np.asarray(scores, dtype=np.float64)
    used = resolve_params(name, s.shape[-1], params)
    fwd = entry.forward(s, **used)
    ties = np.zeros(s.shape[:-1], dtype=bool) if fwd.ties is None else fwd.ties
    if entry.backward is None:
        backward: Callable[[np.ndarray], np.ndarray] = np.zeros_like
    else:
        backward = lambda g: entry.backward(fwd, g, **used)  # noqa: E731
    return Selection(name, fwd.weights, entry.gradient_kind(used), ties, backward, fwd.noise)
