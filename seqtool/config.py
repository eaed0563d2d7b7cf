"""One Config per subcommand: every parameter, its default, its bounds and its help text.

The command line and (later) recipes both build a Config with :meth:`from_mapping`, so a flag
and a recipe key are validated by the same code and never disagree. Values may arrive as
text (``"0.5"``, ``"3,-1;1,2"``, ``"@keys.csv"``, ``"-"``) or as already-typed values (YAML,
JSON); each field's coercer accepts both.

These are frozen dataclasses rather than pydantic models: importing pydantic and building
a model costs 65-100 ms, more than the whole start-up budget of ``seqtool attend``
(see CHANGELOG.md, 0.1.0).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Callable

import numpy as np

from seqtool.core import attention
from seqtool.core import selectors as selector_registry
from seqtool.core.errors import InputError
from seqtool.core.losses import LOSSES, TARGETS_AT
from seqtool.io.numbers import read_matrix, read_vector

# ---------------------------------------------------------------------------------------
# Coercers: (key, raw value) -> typed value, raising InputError with the key


def as_float(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InputError(key, f"is {value}; expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(key, f"is '{_shown(value)}'; expected a number") from None
    except OverflowError:  # an int of hundreds of digits
        raise InputError(key, f"is {_shown(value)}; expected a finite number") from None
    if not math.isfinite(number):
        shown = _shown(value) if isinstance(value, str) and len(value) > 12 else number
        raise InputError(key, f"is {shown}; expected a finite number")
    return number


def _shown(value: Any, limit: int = 40) -> str:
    """``value`` as text for a message, cut to ``limit`` characters."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


# Whole numbers beyond this are refused: every count, size and seed fits far below it, and
# NumPy and numba take them as 64-bit integers.
INT_LIMIT = 2**63 - 1


def as_int(key: str, value: Any) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())  # exactly, however large (a float would round it)
        except ValueError:  # "3.0", "1e3", or past Python's 4300 digits: as a float below
            pass
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        number = as_float(key, value)
        if number != int(number):
            raise InputError(key, f"is {_shown(value)}; expected a whole number")
        number = int(number)
    if abs(number) > INT_LIMIT:
        raise InputError(key, f"is {_shown(value)}; expected a whole number below 2^63")
    return number


def as_positive_int(key: str, value: Any) -> int:
    number = as_int(key, value)
    if number < 1:
        raise InputError(key, f"must be a whole number ≥ 1, got {number}")
    return number


def at_most(limit: int, why: str):
    """A coercer of whole numbers from 1 to ``limit`` (a documented bound: ``why``)."""
    def coerce(key: str, value: Any) -> int:
        number = as_positive_int(key, value)
        if number > limit:
            raise InputError(key, f"is {number:,}; at most {limit:,} ({why})")
        return number
    return coerce


MAX_THREADS = 256


def threads_param(what: str):
    """The ``threads`` parameter of the commands that split work across cores
    (seqtool.core.parallel): ``what`` says what is split."""
    return param(None, f"Threads {what} (default: SEQTOOL_THREADS, else every core this "
                 "process may use); results are bit-identical for a given count, and 1 runs "
                 "on one thread.",
                 optional(at_most(MAX_THREADS, "threads of one process")))


def as_seed(key: str, value: Any) -> int:
    """A seed of NumPy's generators: a whole number ≥ 0."""
    number = as_int(key, value)
    if number < 0:
        raise InputError(key, f"must be a whole number ≥ 0 (a seed), got {number}")
    return number


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise InputError(key, f"is '{value}'; expected true or false")


def one_of(choices: tuple[str, ...] | Callable[[], tuple[str, ...]]) -> Callable[[str, Any], str]:
    """A coercer to one of ``choices``: a tuple, or a function giving it when a Config is
    built (for a vocabulary that lives in a module too heavy to import at start-up)."""

    def as_choice(key: str, value: Any) -> str:
        known = choices() if callable(choices) else choices
        text = str(value).strip().lower()
        if text not in known:
            hint = difflib.get_close_matches(text, known, n=1)
            maybe = f" (did you mean {hint[0]}?)" if hint else ""
            raise InputError(key, f"is '{value}'{maybe}; choose one of {', '.join(known)}")
        return text

    return as_choice


def as_scale(key: str, value: Any) -> float | str:
    if isinstance(value, str) and value.strip().lower() == "sqrt":
        return "sqrt"
    try:
        return as_float(key, value)
    except InputError:
        raise InputError(key, f"is '{value}'; expected 1, sqrt (for 1/sqrt(d)) or a number") from None


def as_matrix(key: str, value: Any) -> np.ndarray:
    return read_matrix(value, key)


def as_vector(key: str, value: Any) -> np.ndarray:
    return read_vector(value, key)


def optional(coerce: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda key, value: None if value is None else coerce(key, value)


def param(default: Any, help: str, coerce: Callable[[str, Any], Any]) -> Any:
    """A Config field: its default, help text (shown by --help) and coercer."""
    return field(default=default, metadata={"help": help, "coerce": coerce})


def help_of(config_cls: type, name: str) -> str:
    return next(f.metadata["help"] for f in fields(config_cls) if f.name == name)


def parameter_names(config_cls: type) -> list[str]:
    return [f.name for f in fields(config_cls) if "coerce" in f.metadata]


def check_known(config_cls: type, mapping: dict[str, Any], command: str) -> None:
    """Refuse keys that are not parameters, suggesting the closest valid name."""
    names = parameter_names(config_cls)
    for key in mapping:
        if key not in names:
            hint = difflib.get_close_matches(str(key), names, n=1)
            maybe = f"did you mean '{hint[0]}'? " if hint else ""
            raise InputError(
                None,
                f"'{key}' is not a parameter of {command}; {maybe}"
                f"known: {', '.join(names)}",
            )


def coerce_all(config_cls: type, mapping: dict[str, Any], command: str) -> dict[str, Any]:
    """Typed values for every parameter: the mapping's where given, else the default."""
    check_known(config_cls, mapping, command)
    values = {}
    for f in fields(config_cls):
        if "coerce" not in f.metadata:
            continue
        if f.name in mapping:
            values[f.name] = f.metadata["coerce"](f.name, mapping[f.name])
        elif f.default is not MISSING:
            values[f.name] = f.default
    return values


# ---------------------------------------------------------------------------------------
# seqtool attend


_SELECTOR_PARAMS = selector_registry.selector_parameters()


@dataclass(frozen=True)
class AttentionInputs:
    """Queries, keys, values and selector settings: what attend and compare-selectors share."""

    query: np.ndarray | None = param(
        None,
        "Query vector 3,-1, or several as rows 3,-1;1,2 (@file or - for stdin). "
        "Default with no keys: the worked example's (3,-1).",
        optional(as_matrix),
    )
    keys: np.ndarray | None = param(
        None,
        "Key matrix, rows separated by ';' (1,5;1,0) or @file (.json .csv .npy) or -. "
        "Default: the built-in worked example.",
        optional(as_matrix),
    )
    values: np.ndarray | None = param(
        None, "Value matrix, one row per key. Default: the keys.", optional(as_matrix)
    )
    # the selector parameters: help and bounds from the registry's Param; the check runs in
    # _checked, once the number of keys is known
    temperature: float = param(_SELECTOR_PARAMS["temperature"].default,
                               _SELECTOR_PARAMS["temperature"].help, as_float)
    alpha: float = param(_SELECTOR_PARAMS["alpha"].default, _SELECTOR_PARAMS["alpha"].help,
                         as_float)
    k: int | None = param(None, _SELECTOR_PARAMS["k"].help, optional(as_int))  # None: min(2, n)
    seed: int = param(0, "Seed of the Gumbel noise (and of the cost and learning runs).", as_seed)
    hard: bool = param(_SELECTOR_PARAMS["hard"].default, _SELECTOR_PARAMS["hard"].help, as_bool)
    scale: float | str = param(1.0, "Score scale: 1, sqrt (1/sqrt(d)) or a number.", as_scale)
    upstream: np.ndarray | None = param(
        None, "Upstream gradient ∂L/∂output (default ones), e.g. 1,0,0.", optional(as_vector)
    )
    example: bool = False  # set when the built-in worked example supplied the data

    COMMAND = "attend"

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]):
        """Coerce and check every parameter, fill in the worked example, check the shapes."""
        values = coerce_all(cls, mapping, cls.COMMAND)
        config = cls(**cls._implied(values))._with_data()._checked()
        config._refuse_unread(mapping)
        return config

    # parameters that mean something to the command whatever its selectors read
    ALWAYS_READ = ()

    def _refuse_unread(self, mapping: dict[str, Any]) -> None:
        """A selector parameter given that none of the chosen selectors reads is a mistake
        (``attend -s argmax --hard``): say so rather than ignore it."""
        names = self.selector_names()
        read = {p for name in names for p in selector_registry.get_selector(name).param_names}
        for key in mapping:
            if key in _SELECTOR_PARAMS and key not in read and key not in self.ALWAYS_READ:
                readers = [n for n in selector_registry.selector_names()
                           if key in selector_registry.get_selector(n).param_names]
                raise InputError(key, f"does not apply to {', '.join(names)} (it is read by "
                                 f"{', '.join(readers) or 'no selector'})")

    @staticmethod
    def _implied(values: dict[str, Any]) -> dict[str, Any]:
        return values

    def selector_names(self) -> list[str]:
        raise NotImplementedError

    def _with_data(self):
        if self.keys is None:
            if self.values is not None:
                raise InputError("values", "is given without keys; give --keys too")
            query = attention.EXAMPLE_QUERY if self.query is None else self.query
            return replace(
                self, query=query, keys=attention.EXAMPLE_KEYS, values=attention.EXAMPLE_VALUES,
                example=True,
            )
        if self.query is None:
            raise InputError("query", "is missing; give a query such as 3,-1")
        return self if self.values is not None else replace(self, values=self.keys)

    def _checked(self):
        (_, d), (n, d_k), (n_v, d_v) = self.query.shape, self.keys.shape, self.values.shape
        if d_k != d:
            raise InputError("keys", f"has rows of length {d_k} but the query has {d}")
        if n_v != n:
            raise InputError("values", f"has {n_v} rows but there are {n} keys")
        if self.upstream is not None and self.upstream.shape[0] != d_v:
            raise InputError(
                "upstream", f"has length {self.upstream.shape[0]} but the values have {d_v} columns"
            )
        for name in self.selector_names():
            selector_registry.resolve_params(name, n, self.selector_params())
        return self

    def selector_params(self) -> dict[str, Any]:
        """The selector parameters by name (None: the selector's default), for every selector.

        A parameter that a selector registered at run time adds, and no field holds here,
        takes its default.
        """
        return {"temperature": self.temperature, "alpha": self.alpha, "k": self.k,
                "seed": self.seed, "hard": self.hard}


def as_selector(key: str, value: Any) -> str:
    """A registered selector's name (the registry as it is now, not at import)."""
    return one_of(selector_registry.selector_names())(key, value)


@dataclass(frozen=True)
class AttendConfig(AttentionInputs):
    """Parameters of ``seqtool attend``; build it with :meth:`from_mapping`."""

    selector: str = param("softmax", f"One of: {', '.join(selector_registry.selector_names())}.",
                          as_selector)
    grad: bool = param(False, "Also the gradients of upstream·output w.r.t. query, keys, values.", as_bool)

    @staticmethod
    def _implied(values: dict[str, Any]) -> dict[str, Any]:
        if values.get("upstream") is not None:
            values["grad"] = True  # an upstream gradient asks for the gradients
        return values

    def selector_names(self) -> list[str]:
        return [self.selector]

    def report_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`seqtool.core.attention.attend_report`."""
        return {"Q": self.query, "K": self.keys, "V": self.values, "selector": self.selector,
                "params": self.selector_params(), "scale": self.scale, "grad": self.grad,
                "upstream": self.upstream, "example": self.example}


def name_list(choices: tuple[str, ...]) -> Callable[[str, Any], tuple[str, ...]]:
    """A coercer of a comma list (or YAML list) of distinct names from ``choices``."""

    def as_name_list(key: str, value: Any) -> tuple[str, ...]:
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        names = [str(item).strip().lower() for item in items if str(item).strip()]
        if not names:
            raise InputError(key, f"is empty; choose from {', '.join(choices)}")
        choose = one_of(choices)
        for name in names:
            choose(key, name)
        if len(set(names)) != len(names):
            twice = next(name for name in names if names.count(name) > 1)
            raise InputError(key, f"names {twice} twice")
        return tuple(names)

    return as_name_list


REINFORCE = "reinforce"  # hard attention trained by the score-function estimator (models only)


def as_model_selector(key: str, value: Any) -> str:
    """A selector of a trained model's attention: a registered one, or reinforce."""
    return one_of(selector_registry.selector_names() + (REINFORCE,))(key, value)


def as_selector_list(key: str, value: Any) -> tuple[str, ...]:
    """A comma list of distinct registered selectors (the registry as it is now)."""
    return name_list(selector_registry.selector_names())(key, value)


def as_size_list(key: str, value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    sizes = tuple(as_positive_int(key, item) for item in items if str(item).strip())
    if not sizes:
        raise InputError(key, "is empty; expected sizes such as 16,256,4096")
    return sizes


COST_SIZES = (16, 256, 4096, 65536)
MAX_COST_SIZE = 1 << 22  # 4M keys: beyond that one timing needs more memory than is fair
MAX_RECALL_VOCAB = 10_000  # --learn's tokens: its held-out logits are 2,000 × vocab


@dataclass(frozen=True)
class CompareConfig(AttentionInputs):
    """Parameters of ``seqtool compare-selectors``."""

    # default: every selector registered when the config is built
    selectors: tuple[str, ...] = field(
        default_factory=selector_registry.selector_names,
        metadata={"help": "Comma-separated selectors to compare.",
                  "coerce": as_selector_list})
    repeats: int = param(15, "Timing repeats per measurement (the median is reported; at "
                         "most 1,000).", at_most(1000, "the median of more is the same number"))
    cost: bool = param(False, "Also time scores and selection for n keys in --sizes.", as_bool)
    sizes: tuple[int, ...] = param(COST_SIZES, "Numbers of keys for --cost.",
                                   lambda key, v: as_size_list(key, v))
    dim: int = param(64, "Dimension d of the --cost keys and of the --learn embeddings.",
                     lambda key, v: as_positive_int(key, v))
    learn: bool = param(False, "Also train W_q, W_k on associative recall with each selector.",
                        as_bool)
    steps: int = param(600, "--learn: Adam steps (batches of 32 sequences; at most 100,000).",
                       at_most(100_000, "the learning run is a demonstration, not a training"))
    pairs: int = param(8, "--learn: (key, value) pairs per sequence.",
                       lambda key, v: as_positive_int(key, v))
    vocab: int = param(64, f"--learn: number of tokens (≥ pairs; at most {MAX_RECALL_VOCAB:,}).",
                       at_most(MAX_RECALL_VOCAB, "each held-out evaluation scores 2,000 "
                               "sequences against every token"))
    lr: float = param(0.02, "--learn: Adam learning rate.", lambda key, v: as_positive_float(key, v))

    COMMAND = "compare-selectors"
    ALWAYS_READ = ("seed",)  # --cost and --learn draw with it

    def selector_names(self) -> list[str]:
        return list(self.selectors)

    def report_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`seqtool.core.compare.compare_report`."""
        from seqtool.core.recall import RecallSetup

        learning = RecallSetup(pairs=self.pairs, dim=self.dim, vocab=self.vocab, steps=self.steps,
                               lr=self.lr, seed=self.seed) if self.learn else None
        return {"Q": self.query, "K": self.keys, "V": self.values, "selectors": self.selectors,
                "params": self.selector_params(), "scale": self.scale, "upstream": self.upstream,
                "repeats": self.repeats, "cost_sizes": self.sizes if self.cost else None,
                "cost_dim": self.dim, "cost_seed": self.seed, "learning": learning,
                "example": self.example}

    def _checked(self):
        super()._checked()
        too_big = [n for n in self.sizes if n > MAX_COST_SIZE]
        if too_big:
            raise InputError("sizes", f"has {too_big[0]}; at most {MAX_COST_SIZE} keys")
        if self.vocab < self.pairs:
            raise InputError("vocab", f"is {self.vocab} but there are {self.pairs} pairs; "
                             "the keys of a sequence must be distinct tokens")
        if self.learn:  # the learning run attends over `pairs` keys, not n
            given = self.selector_params()
            for name in self.selectors:
                try:
                    selector_registry.resolve_params(name, self.pairs, given)
                except InputError as err:
                    raise InputError(err.key, f"is {given.get(err.key)} but --learn has only "
                                     f"{self.pairs} pairs") from None
        return self


# ---------------------------------------------------------------------------------------
# seqtool bptt


def as_positive_float(key: str, value: Any) -> float:
    number = as_float(key, value)
    if number <= 0:
        raise InputError(key, f"must be a number > 0, got {number}")
    return number


def _vector_param(key: str, value: Any) -> np.ndarray:
    return read_vector(value, key)


def _cell_names() -> tuple[str, ...]:
    """The registered recurrent cells, read when a value is checked (not frozen at import:
    a cell registered at run time is a choice too)."""
    from seqtool.core.rnn.cells import cell_names

    return cell_names()


def _activations() -> tuple[str, ...]:
    from seqtool.core.rnn.cells.rnn import ACTIVATIONS  # the vanilla cell's f

    return ACTIVATIONS


def _nonlinearities() -> tuple[str, ...]:
    from seqtool.core.rnn.cells.rnn import NONLINEARITIES

    return NONLINEARITIES


def as_step_pairs(key: str, value: Any) -> tuple[tuple[int, int], ...]:
    """Pairs of steps t,k: "3,1" or "3,1;2,0" or a YAML list [[3, 1], [2, 0]]."""
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (list, tuple)):
        value = [value]
    rows = value if isinstance(value, (list, tuple)) else [
        row for row in str(value).split(";") if row.strip()]
    pairs = []
    for row in rows:
        items = row if isinstance(row, (list, tuple)) else str(row).split(",")
        if len(items) != 2:
            raise InputError(key, f"has '{row}'; expected two steps t,k such as 3,1")
        t, k = (as_int(key, item) for item in items)
        if not 0 <= k < t:
            raise InputError(key, f"has {t},{k}; expected 0 ≤ k < t (∂h_t/∂h_k reaches back)")
        pairs.append((t, k))
    if not pairs:
        raise InputError(key, "is empty; expected steps t,k such as 3,1")
    return tuple(pairs)


@dataclass(frozen=True)
class BpttConfig:
    """Parameters of ``seqtool bptt``: a problem (given or generated) and what to report."""

    W_xh: np.ndarray | None = param(None, "Input weights, H×D.", optional(as_matrix))
    W_hh: np.ndarray | None = param(None, "Recurrent weights, H×H.", optional(as_matrix))
    W_hy: np.ndarray | None = param(None, "Output weights, O×H.", optional(as_matrix))
    b_h: np.ndarray | None = param(None, "Hidden bias, H (default zeros).", optional(_vector_param))
    b_y: np.ndarray | None = param(None, "Output bias, O (default zeros).", optional(_vector_param))
    h0: np.ndarray | None = param(None, "Initial state, H (default zeros).", optional(_vector_param))
    x: np.ndarray | None = param(None, "Inputs, T×D.", optional(as_matrix))
    y: np.ndarray | None = param(
        None, "Targets: T×O reals (mse), T labels (cross_entropy), one target if last.",
        optional(as_matrix),
    )
    activation: str = param("tanh", "f in h_t = f(z_t): tanh, sigmoid, relu, identity.",
                            one_of(_activations))
    loss: str = param("mse", "mse (½‖ŷ−y‖²) or cross_entropy, summed over steps.",
                      one_of(LOSSES))
    target_at: str = param("all", "all (many-to-many) or last (many-to-one: only L_T).",
                           one_of(TARGETS_AT))
    truncate: int | None = param(None, "Truncated BPTT: each L_t reaches back at most k steps.",
                                 optional(as_positive_int))
    check: bool = param(False, "Finite-difference check of every gradient (exit 1 if > 1e-6): "
                        "4 forward passes per parameter, at most 5,000,000 steps in all.",
                        as_bool)
    steps: int = param(10, "Generated problem: sequence length T (at most 10,000).",
                       at_most(10_000, "the analysis follows one sequence step by step"))
    input_size: int = param(3, "Generated problem: input size D.", as_positive_int)
    hidden: int = param(4, "Generated problem: hidden size H (T × G·H × H, the numbers of "
                        "each step's share of ∂L/∂W_hh, at most 4,000,000).", as_positive_int)
    output_size: int = param(2, "Generated problem: output size O.", as_positive_int)
    seed: int = param(0, "Seed of the generated problem.", as_seed)
    radius: float | None = param(None, "Rescale W_hh to this spectral radius g (g<1 vanishing, "
                                 "g>1 exploding); for gru/lstm each gate's block of weight_hh.",
                                 optional(as_positive_float))
    cell: tuple[str, ...] = param(
        ("rnn",), "rnn, gru or lstm (gated cells: generated problems); a comma list such as "
        "rnn,gru,lstm shows the cells side by side on the same sequence.",
        lambda key, value: name_list(_cell_names())(key, value))
    forget_bias: float = param(
        1.0, "Generated gru/lstm problems: bias of the gate that keeps the old state (LSTM f, "
        "GRU z); larger keeps gradients alive longer.", as_float)
    jacobian: tuple[tuple[int, int], ...] | None = param(
        None, "Print the matrices ∂h_t/∂h_k for these steps: t,k (several as t,k;t,k), "
        "0 ≤ k < t ≤ T (one cell).", optional(as_step_pairs))
    threads: int | None = threads_param("of the finite-difference check (--check), whose "
                                        "parameter entries they share")

    GIVEN = ("W_xh", "W_hh", "W_hy", "b_h", "b_y", "h0", "x", "y")
    REQUIRED = ("W_xh", "W_hh", "W_hy", "x", "y")  # any of them given: a problem file

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "BpttConfig":
        config = cls(**coerce_all(cls, mapping, "bptt"))
        config._checked()
        config._refuse_unread(mapping)
        config._check_jacobian()
        return config

    def _check_jacobian(self) -> None:
        if self.jacobian is None:
            return
        if len(self.cell) != 1:
            raise InputError("jacobian", "writes the matrices ∂h_t/∂h_k of one cell; ask for "
                             f"one --cell (got --cell {','.join(self.cell)})")
        T = self.steps if self.generated else self.x.shape[0]
        late = [t for t, _ in self.jacobian if t > T]
        if late:
            raise InputError("jacobian", f"asks for step {late[0]}, but the problem has "
                             f"T = {T} steps")

    def _refuse_unread(self, mapping: dict[str, Any]) -> None:
        """--activation for cells whose nonlinearities are fixed, --forget-bias for cells
        with no gate that keeps the state: a mistake to say, not to ignore."""
        from seqtool.core.rnn.cells import get_cell

        cells = [get_cell(name) for name in self.cell]
        unread = {"activation": not any(c.activations for c in cells),
                  "forget_bias": not any(c.keep_gate is not None for c in cells)}
        for key, refused in unread.items():
            if key in mapping and refused:
                raise InputError(key, f"does not apply to --cell {','.join(self.cell)}")

    def given(self) -> dict[str, np.ndarray | None]:
        """The problem's arrays by name (None where not given; all None: generated)."""
        return {name: getattr(self, name) for name in self.GIVEN}

    @property
    def generated(self) -> bool:
        """No problem given: each cell's problem is generated from the sizes and the seed."""
        return all(getattr(self, name) is None for name in self.REQUIRED)

    def _checked(self) -> None:
        """The given arrays against each other and the settings (the same checks that
        seqtool.core.rnn.bptt.bptt_problems makes)."""
        from seqtool.core.rnn.bptt import check_given_problem

        check_given_problem(self.cell, self.given(), self.loss, self.target_at)


# ---------------------------------------------------------------------------------------
# seqtool train-rnn


def as_fraction(key: str, value: Any) -> float:
    number = as_float(key, value)
    if not 0.0 < number < 1.0:
        raise InputError(key, f"must be between 0 and 1 (exclusive), got {number:g}")
    return number


def as_dropout(key: str, value: Any) -> float:
    number = as_float(key, value)
    if not 0.0 <= number < 1.0:
        raise InputError(key, f"must be in [0, 1), got {number:g}")
    return number


def as_nonnegative_float(key: str, value: Any) -> float:
    number = as_float(key, value)
    if number < 0:
        raise InputError(key, f"must be ≥ 0, got {number:g}")
    return number


def as_text(key: str, value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise InputError(key, "is empty")
    return text


def _tasks() -> tuple[str, ...]:
    from seqtool.core.data import TASKS  # the tasks the data readers and the models implement

    return TASKS


def _optimizers() -> tuple[str, ...]:
    from seqtool.core.optim import OPTIMIZERS  # torch's update rules, implemented there

    return OPTIMIZERS


def _pools() -> tuple[str, ...]:
    from seqtool.core.models import POOLS  # imports the kernels: only when a Config is built

    return POOLS


def train_cells() -> tuple[str, ...]:
    """What --cell of train-rnn takes: every registered cell and the bag-of-words baseline."""
    from seqtool.core.models import model_cells

    return model_cells()


# What --resume may change: how much longer to train, nothing about what is trained.
RESUMABLE_CHANGES = ("epochs", "steps", "patience", "threads")


@dataclass(frozen=True)
class TrainConfig:
    """Parameters of ``seqtool train-rnn``: data, model, optimiser, schedule, files."""

    data: str = param("sentiment", "A built-in set (sentiment, parity, adding, echo, sine, "
                      "dyck; seq2seq: reverse, sort, copy, addition, dates) or a file: "
                      "TSV/CSV/JSONL text,label (classify), tokens,tags (tag) or source,target "
                      "(seq2seq), plain text (lm), numeric CSV (regress).", as_text)
    task: str | None = param(None, "classify, tag, lm, regress or seq2seq (built-in sets "
                             "know theirs).", optional(one_of(_tasks)))
    val: str | None = param(None, "A validation file (else --val-fraction of the data).",
                            optional(as_text))
    val_fraction: float = param(0.1, "Share of the data held out for validation.", as_fraction)
    tokenizer: str | None = param(None, "char or word (default: char for lm files, word "
                                  "otherwise).", optional(one_of(("char", "word"))))
    max_len: int | None = param(None, "Longest sequence kept (lm: the chunk length).",
                                optional(as_positive_int))
    samples: int | None = param(None, "Built-in sets: how many sequences.",
                                optional(as_positive_int))
    seq_len: int | None = param(None, "Built-in sets: sequence length.", optional(as_positive_int))
    delay: int | None = param(None, "echo: the tag at t is the token at t − delay.",
                              optional(as_positive_int))
    cell: str = param("lstm", "rnn, gru, lstm, or bow (the bag-of-words baseline).",
                      one_of(train_cells))
    hidden: int = param(64, "Hidden size H.", as_positive_int)
    layers: int = param(1, "Stacked recurrent layers.", as_positive_int)
    embedding_dim: int = param(32, "Token embedding size.", as_positive_int)
    dropout: float = param(0.0, "Dropout between stacked layers (training only).", as_dropout)
    bidirectional: bool = param(False, "classify, seq2seq: a bidirectional encoder, H/2 "
                                "units each way (its outputs stay H wide).", as_bool)
    pool: str = param("last", "classify: last, mean or max over the real steps, or "
                      "attention over them (--score, --selector).", one_of(_pools))
    score: str = param("dot", "Attention (--pool attention, seq2seq): the score of a step, dot "
                       "(q·h_t), general (q·W h_t) or additive (v·tanh(W q + U h_t + b)).",
                       one_of(("dot", "general", "additive")))
    selector: str = param("softmax", "Attention: the weights from the scores, one of: "
                          f"{', '.join(selector_registry.selector_names())}, or reinforce "
                          "(seq2seq: hard attention trained by REINFORCE).", as_model_selector)
    temperature: float | None = param(None, "Attention: the selector's temperature.",
                                      optional(as_float))
    alpha: float | None = param(None, "Attention: entmax's α.", optional(as_float))
    k: int | None = param(None, "Attention: top-k's k (cut to a shorter sequence's "
                          "length).", optional(as_int))
    nonlinearity: str = param("tanh", "The rnn cell's f: tanh or relu.", one_of(_nonlinearities))
    dtype: str = param("float32", "float32 or float64.", one_of(("float32", "float64")))
    optimizer: str = param("adam", "sgd, momentum, adam or adagrad.",
                           one_of(_optimizers))
    lr: float = param(0.003, "Learning rate.", as_positive_float)
    weight_decay: float = param(0.0, "L2 penalty added to the gradients.", as_nonnegative_float)
    clip_norm: float | None = param(None, "Clip the global gradient norm to this.",
                                    optional(as_positive_float))
    batch_size: int = param(32, "Sequences per step.", as_positive_int)
    epochs: int = param(10, "Passes over the training data.", as_positive_int)
    steps: int | None = param(None, "Optimiser steps in all (instead of --epochs).",
                              optional(as_positive_int))
    patience: int | None = param(None, "Stop after this many epochs without a better "
                                 "validation loss.", optional(as_positive_int))
    seed: int = param(0, "Seed of the data, initialisation, order and dropout.", as_seed)
    out: str | None = param(None, "Run directory (default runs/<task>-<cell>-<time>).",
                            optional(as_text))
    threads: int | None = threads_param("a batch's rows are split across (the run keeps its "
                                        "count: --resume uses it unless given again)")
    # which parameters were given (not defaulted): --resume changes only those
    given_names: frozenset = field(default=frozenset(), compare=False)

    @property
    def selector_params(self) -> dict[str, Any]:
        """The selector parameters given (the selector's defaults fill the rest)."""
        return {name: getattr(self, name) for name in ("temperature", "alpha", "k")
                if getattr(self, name) is not None}

    def check_attention(self, attends: bool) -> None:
        """--score, --selector and its parameters belong to a model that attends (--pool
        attention, or seq2seq, known once the data is: ``attends``)."""
        if attends:
            return
        changed = [key for key, default in (("score", "dot"), ("selector", "softmax"))
                   if getattr(self, key) != default] + list(self.selector_params)
        if changed:
            raise InputError(changed[0], "applies to a model that attends: --pool attention "
                             f"(the pool is {self.pool}) or --task seq2seq")

    def _check_selector_params(self) -> None:
        """A selector parameter the selector does not read is a mistake, not a silent no-op."""
        if self.selector == REINFORCE:
            reads: tuple[str, ...] = ()
        else:
            reads = selector_registry.get_selector(self.selector).param_names
        extra = [key for key in self.selector_params if key not in reads]
        if extra:
            raise InputError(extra[0], f"is not a parameter of the {self.selector} selector "
                             f"(it reads {', '.join(reads) or 'none'})")
        if self.selector != REINFORCE:
            selector_registry.resolve_params(self.selector, 2**31, self.selector_params)

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "TrainConfig":
        config = cls(**coerce_all(cls, mapping, "train-rnn"), given_names=frozenset(mapping))
        # a stored config (--resume) names every parameter: only a changed f is a mistake
        config._check_selector_params()
        if config.nonlinearity != "tanh" and config.cell != "rnn":
            raise InputError("nonlinearity", f"does not apply to --cell {config.cell} (only "
                             "the vanilla rnn cell has a choice of f)")
        return config

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in parameter_names(type(self))}


# ---------------------------------------------------------------------------------------
# seqtool predict / sample / evaluate (a trained run directory)


def _with_run(config: Any) -> Any:
    if not config.run:
        raise InputError("run", "is missing: give the directory of a trained run (train-rnn --out)")
    return config


def as_text_list(key: str, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(str(item) for item in items)


MAX_TEXT_CHARS = 1_000_000  # a forward pass holds every step of a text: bounded up front
MAX_BEAM = 100  # hypotheses kept per step of a seq2seq beam search


def as_texts(key: str, value: Any) -> tuple[str, ...]:
    """Texts to label, none longer than MAX_TEXT_CHARS."""
    texts = as_text_list(key, value)
    for i, text in enumerate(texts):
        if len(text) > MAX_TEXT_CHARS:
            raise InputError(key, f"has a text of {len(text):,} characters (text {i + 1}); "
                             f"predict takes up to {MAX_TEXT_CHARS:,} per text")
    return texts


@dataclass(frozen=True)
class PredictConfig:
    """Parameters of ``seqtool predict``."""

    run: str = param("", "The run directory of a classify, tag or seq2seq model (train-rnn "
                     "--out).", as_text)
    text: tuple[str, ...] = param((), "Texts to label (else one per line on stdin), each "
                                  f"of at most {MAX_TEXT_CHARS:,} characters.", as_texts)
    beam: int = param(1, "seq2seq: decode with a beam of this width (1: greedy); at most "
                      f"{MAX_BEAM}.", at_most(MAX_BEAM, "hypotheses kept per step"))
    threads: int | None = threads_param("a batch of texts is split across")

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "PredictConfig":
        return _with_run(cls(**coerce_all(cls, mapping, "predict")))


def export_formats() -> tuple[str, ...]:
    from seqtool.export import EXPORTERS

    return tuple(EXPORTERS)


@dataclass(frozen=True)
class ExportConfig:
    """Parameters of ``seqtool export``."""

    run: str = param("", "The run directory of a trained model (train-rnn --out).", as_text)
    to: str | None = param(None, "The format: torch (a TorchScript archive, .pt) or onnx (an "
                           "ONNX model with ONNX's RNN/GRU/LSTM operators, .onnx). Default: "
                           "from the extension of --out.", optional(one_of(export_formats)))
    out: str = param("", "The file to write (atomically).", as_text)
    no_check: bool = param(False, "Skip the check: by default the file is first run in its "
                           "own runtime (torch, onnxruntime) on a sample batch, compared with "
                           "seqtool, and written only if it agrees.", as_bool)

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "ExportConfig":
        from pathlib import PurePath

        from seqtool.export import EXPORTERS

        config = _with_run(cls(**coerce_all(cls, mapping, "export")))
        if not config.out:
            raise InputError("out", "is missing: give the file to write, e.g. -o model.onnx")
        if config.to is None:
            suffix = PurePath(config.out).suffix.lower()
            found = [name for name, exporter in EXPORTERS.items() if exporter.suffix == suffix]
            if not found:
                raise InputError("to", f"is not given and {config.out!r} does not say it: give "
                                 f"--to {' or '.join(EXPORTERS)}, or an --out ending in "
                                 f"{' or '.join(e.suffix for e in EXPORTERS.values())}")
            config = replace(config, to=found[0])
        return config


def as_any_text(key: str, value: Any) -> str:
    """Text as given (it may be empty, and its spaces count)."""
    return "" if value is None else str(value)


def as_temperature(key: str, value: Any) -> float:
    number = as_float(key, value)
    if number < 0:
        raise InputError(key, f"must be ≥ 0 (0 is greedy), got {number:g}")
    return number


@dataclass(frozen=True)
class SampleConfig:
    """Parameters of ``seqtool sample``."""

    run: str = param("", "The run directory of a language model (train-rnn --out).", as_text)
    length: int = param(100, "Tokens to draw at most (fewer when the model draws its end "
                        "marker); at most 100,000.",
                        at_most(100_000, "a sample is for reading; each token is a step of "
                                "the network"))
    temperature: float = param(1.0, "Softmax temperature (0: always the likeliest token).",
                               as_temperature)
    prime: str = param("", "Text to start from (default: the begin marker if the model has "
                       "one).", as_any_text)
    seed: int = param(0, "Seed of the draws.", as_seed)

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "SampleConfig":
        return _with_run(cls(**coerce_all(cls, mapping, "sample")))


@dataclass(frozen=True)
class EvaluateConfig:
    """Parameters of ``seqtool evaluate``."""

    run: str = param("", "The run directory of a trained model (train-rnn --out).", as_text)
    data: str = param("", "A data file in the training format, or the built-in set's name.",
                      as_text)
    seed: int = param(0, "Seed of a built-in set.", as_seed)
    samples: int | None = param(None, "Built-in sets: how many sequences.",
                                optional(as_positive_int))
    threads: int | None = threads_param("a batch's rows are split across")

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "EvaluateConfig":
        return _with_run(cls(**coerce_all(cls, mapping, "evaluate")))


# ---------------------------------------------------------------------------------------
# seqtool run (a recipe)


@dataclass(frozen=True)
class RunConfig:
    """Parameters of ``seqtool run``."""

    recipe: str = param("", "The recipe file (YAML).", as_text)
    out: str | None = param(None, "Where the runs go (default runs/<name>/).", optional(as_text))
    jobs: int | None = param(None, "Run on a local Dask cluster of N processes.",
                             optional(as_positive_int))
    scheduler: str | None = param(None, "Run on an existing Dask cluster, e.g. "
                                  "tcp://127.0.0.1:8786.", optional(as_text))
    sets: tuple[str, ...] = param((), "Override a recipe key, e.g. --set params.hidden=128 "
                                  "(repeatable).", as_text_list)
    dry_run: bool = param(False, "Print the expanded runs and exit.", as_bool)

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "RunConfig":
        config = cls(**coerce_all(cls, mapping, "run"))
        if config.jobs is not None and config.scheduler is not None:
            raise InputError("jobs", "and --scheduler both choose where to run; give one")
        return config


# ---------------------------------------------------------------------------------------
# seqtool compile


def _dtypes() -> tuple[str, ...]:
    from seqtool.core.rnn.warmup import DTYPES  # (no numba: warmup imports it when it runs)

    return DTYPES


@dataclass(frozen=True)
class CompileConfig:
    """Parameters of ``seqtool compile``."""

    cells: tuple[str, ...] = param((), "Cells to compile, e.g. lstm,gru (default: every "
                                   "registered cell).",
                                   lambda key, value: name_list(_cell_names())(key, value))
    dtypes: tuple[str, ...] = param(("float32", "float64"), "Dtypes to compile them in.",
                                    lambda key, value: name_list(_dtypes())(key, value))
    jobs: int | None = param(None, "Processes at once (default: one per core).",
                             optional(as_positive_int))
    retune: bool = param(False, "Measure this machine's product methods again (else only "
                         "when no measurement of this CPU is stored).", as_bool)

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "CompileConfig":
        return cls(**coerce_all(cls, mapping, "compile"))


# ---------------------------------------------------------------------------------------
# seqtool report


def as_html_path(key: str, value: Any) -> str:
    """A file name ending in .html (the page is one self-contained HTML file)."""
    from pathlib import PurePath

    text = as_text(key, value)
    if PurePath(text).suffix.lower() != ".html":
        raise InputError(key, f"is '{text}'; the report is one HTML page: give a file name "
                         "ending in .html, e.g. report.html")
    return text


@dataclass(frozen=True)
class ReportConfig:
    """Parameters of ``seqtool report``."""

    run: str = param("", "A sweep directory (seqtool run: summary.json), one of its runs "
                     "(report.json) or a train-rnn run directory (metrics.jsonl).", as_text)
    out: str | None = param(None, "The page to write, ending in .html (default: "
                            "RUN_OR_SWEEP_DIR/report.html).", optional(as_html_path))

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "ReportConfig":
        config = cls(**coerce_all(cls, mapping, "report"))
        if not config.run:
            raise InputError("run", "is missing: give a run or sweep directory")
        return config
