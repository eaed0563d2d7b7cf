"""Numba options for every kernel, in one place.

``cache=True`` makes compilation a one-time cost per machine. No ``fastmath``: it lets LLVM
assume there is no NaN or inf, which silently removes the NaN guards.
"""

from __future__ import annotations

import glob
import os

from numba import njit

KERNEL_OPTIONS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


def kernel(fn):
    """``@kernel``: a numba-compiled loop with the house options."""
    return njit(**KERNEL_OPTIONS)(fn)


def is_cached(module_file: str, name: str) -> bool:
    """True if numba's on-disk cache already holds ``name`` from ``module_file``."""
    folder = os.path.join(os.path.dirname(module_file), "__pycache__")
    stem = os.path.splitext(os.path.basename(module_file))[0]
    return bool(glob.glob(os.path.join(folder, f"{stem}.{name}-*.nbi")))
