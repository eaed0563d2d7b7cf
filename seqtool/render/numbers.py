"""Numbers for people: a fixed number of significant digits, no "-0"."""

from __future__ import annotations

from typing import Iterable


def fmt(x: float, precision: int = 4) -> str:
    """``x`` with ``precision`` significant digits: 0.047426 -> '0.04743', 6.0 -> '6'."""
    text = f"{float(x):.{precision}g}"
    return "0" if text in ("-0", "-0.0") else text


def vec(xs: Iterable[float], precision: int = 4) -> str:
    """A vector as '(a, b, c)'."""
    return "(" + ", ".join(fmt(x, precision) for x in xs) + ")"
