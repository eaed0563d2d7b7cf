"""The environment of a subprocess that compiles seqtool's kernels afresh only to test how
compiling behaves: what a first run says, what the warm-up's helper compiles, the tiles of
a portable target, the plain-products and BLAS routes.

:func:`quick_compile` builds them at LLVM's optimisation level 1 (``NUMBA_OPT=1``): about a
quarter less compile time than numba's default level 3, the same numbers (no kernel uses
fast-math, so no level may reorder or fuse a floating-point operation), and a cache
directory of their own (seqtool.core.rnn.jit keys its cache on the level). The kernels
that users run, and that every other test runs in its own process, are built at level 3.
"""

from __future__ import annotations

QUICK_COMPILE = {"NUMBA_OPT": "1"}


def quick_compile(env: dict) -> dict:
    """``env`` with the kernels built at optimisation level 1."""
    return {**env, **QUICK_COMPILE}
