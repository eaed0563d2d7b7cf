"""One way to compare a computed array with its reference: :func:`assert_close`.

Every test that checks seqtool's numbers against a reference (a loop in ``tests/naive.py``,
finite differences, PyTorch) compares them with the relative error

    rel(comp, ref) = max |comp − ref| / max(max |ref|, tiny)

against one tolerance per dtype and kind of reference, from :data:`TOLERANCE`. A test that
needs a looser bound says why at the call (``scale=10, why="..."``) rather than keeping a
table of its own.
"""

from __future__ import annotations

import numpy as np

# kind of comparison -> {dtype: tolerance on the relative error}
TOLERANCE = {
    # the same computation in a different order (kernels vs loops, tiles vs BLAS, torch)
    "exact": {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5},
    # a loop reference written for clarity (tests/naive.py): float64 only
    "reference": {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 2e-5},
    # a central finite difference (step 1e-5 or so) against an analytic gradient
    "finite-difference": {np.dtype(np.float64): 1e-7, np.dtype(np.float32): 1e-2},
}


def relative(comp, ref) -> float:
    """max |comp − ref| / max |ref| (the denominator floored at 1e-30); both as float64."""
    comp = np.asarray(comp, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if comp.shape != ref.shape:
        raise AssertionError(f"shapes differ: computed {comp.shape}, reference {ref.shape}")
    if comp.size == 0:
        return 0.0
    return float(np.abs(comp - ref).max() / max(float(np.abs(ref).max()), 1e-30))


def tolerance(dtype=np.float64, kind: str = "exact") -> float:
    return TOLERANCE[kind][np.dtype(dtype)]


def assert_close(comp, ref, *, dtype=None, kind: str = "exact", scale: float = 1.0,
                 what: str = "") -> None:
    """Fail unless rel(comp, ref) ≤ scale · TOLERANCE[kind][dtype].

    ``dtype`` defaults to the computed array's (float64 for anything that is not float32).
    NaN in either array fails, unless both have NaN in the same places and agree elsewhere.
    """
    comp_a = np.asarray(comp)
    ref_a = np.asarray(ref, dtype=np.float64)
    if dtype is None:
        dtype = np.float32 if comp_a.dtype == np.float32 else np.float64
    comp64 = comp_a.astype(np.float64)
    nan_c, nan_r = np.isnan(comp64), np.isnan(ref_a)
    label = f"{what}: " if what else ""
    if comp64.shape == ref_a.shape and (nan_c.any() or nan_r.any()):
        if not np.array_equal(nan_c, nan_r):
            raise AssertionError(f"{label}NaN in different places")
        comp64, ref_a = np.where(nan_c, 0.0, comp64), np.where(nan_r, 0.0, ref_a)
    bound = scale * tolerance(dtype, kind)
    err = relative(comp64, ref_a)
    if not err <= bound:
        raise AssertionError(f"{label}relative error {err:.3g} > {bound:.3g} "
                             f"({kind}, {np.dtype(dtype).name})")
