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
from seqtool.core.errors import InputError
from seqtool.core.selectors import SELECTORS, check_selector_params
from seqtool.io.numbers import read_matrix, read_vector

# ---------------------------------------------------------------------------------------
# Coercers: (key, raw value) -> typed value, raising InputError with the key


def as_float(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InputError(key, f"is {value}; expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(key, f"is '{value}'; expected a number") from None
    if not math.isfinite(number):
        raise InputError(key, f"is {number}; expected a finite number")
    return number


def as_int(key: str, value: Any) -> int:
    number = as_float(key, value)
    if number != int(number):
        raise InputError(key, f"is {value}; expected a whole number")
    return int(number)


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise InputError(key, f"is '{value}'; expected true or false")


def one_of(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    def as_choice(key: str, value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            hint = difflib.get_close_matches(text, choices, n=1)
            maybe = f" (did you mean {hint[0]}?)" if hint else ""
            raise InputError(key, f"is '{value}'{maybe}; choose one of {', '.join(choices)}")
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


@dataclass(frozen=True)
class AttendConfig:
    """Parameters of ``seqtool attend``; build it with :meth:`from_mapping`."""

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
    selector: str = param("softmax", f"One of: {', '.join(SELECTORS)}.", one_of(SELECTORS))
    temperature: float = param(
        1.0, "Temperature T > 0 of softmax, topk, gumbel and st-argmax's backward.", as_float
    )
    alpha: float = param(1.5, "entmax alpha > 1 (1.5 exact; 2 = sparsemax; near 1 ≈ softmax).", as_float)
    k: int | None = param(None, "topk: how many scores to keep, 1..n (default 2).", optional(as_int))
    seed: int = param(0, "Seed of the Gumbel noise.", as_int)
    hard: bool = param(False, "gumbel: one-hot forward, soft backward (straight-through).", as_bool)
    scale: float | str = param(1.0, "Score scale: 1, sqrt (1/sqrt(d)) or a number.", as_scale)
    grad: bool = param(False, "Also the gradients of upstream·output w.r.t. query, keys, values.", as_bool)
    upstream: np.ndarray | None = param(
        None, "Upstream gradient ∂L/∂output (default ones), e.g. 1,0,0.", optional(as_vector)
    )
    example: bool = False  # set when the built-in worked example supplied the data

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "AttendConfig":
        """Coerce and check every parameter, fill in the worked example, check the shapes."""
        values = coerce_all(cls, mapping, "attend")
        if values.get("upstream") is not None:
            values["grad"] = True  # an upstream gradient asks for the gradients
        return cls(**values)._with_data()._checked()

    def _with_data(self) -> "AttendConfig":
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

    def _checked(self) -> "AttendConfig":
        (m, d), (n, d_k), (n_v, d_v) = self.query.shape, self.keys.shape, self.values.shape
        if d_k != d:
            raise InputError("keys", f"has rows of length {d_k} but the query has {d}")
        if n_v != n:
            raise InputError("values", f"has {n_v} rows but there are {n} keys")
        if self.upstream is not None and self.upstream.shape[0] != d_v:
            raise InputError(
                "upstream", f"has length {self.upstream.shape[0]} but the values have {d_v} columns"
            )
        check_selector_params(
            self.selector, n, temperature=self.temperature, alpha=self.alpha, k=self.k
        )
        return self
