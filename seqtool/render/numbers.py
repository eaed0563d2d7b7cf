"""Numbers for people: a fixed number of significant digits, no "-0"; sparklines."""

from __future__ import annotations

from typing import Iterable

import numpy as np

SPARKS = "▁▂▃▄▅▆▇█"


def fmt(x: float, precision: int = 4) -> str:
    """``x`` with ``precision`` significant digits: 0.047426 -> '0.04743', 6.0 -> '6'."""
    text = f"{float(x):.{precision}g}"
    return "0" if text in ("-0", "-0.0") else text


def vec(xs: Iterable[float], precision: int = 4) -> str:
    """A vector as '(a, b, c)'."""
    return "(" + ", ".join(fmt(x, precision) for x in xs) + ")"


def sparkline(values: np.ndarray, log: bool = True) -> str:
    """One character per value, its height on a (log) scale between the min and max."""
    v = np.asarray(values, dtype=float)
    positive = v > 0
    if log:
        if not positive.any():
            return " " * len(v)
        v = np.where(positive, np.log10(np.where(positive, v, 1.0)), np.nan)
    lo, hi = np.nanmin(v), np.nanmax(v)
    span = hi - lo if hi > lo else 1.0
    return "".join(
        " " if np.isnan(x) else SPARKS[int(round((x - lo) / span * (len(SPARKS) - 1)))] for x in v
    )
