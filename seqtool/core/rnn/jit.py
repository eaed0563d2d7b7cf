"""Numba options for every kernel, in one place.

``cache=True`` makes compilation a one-time cost per machine. No ``fastmath``: it lets LLVM
assume there is no NaN or inf, which silently removes the NaN guards.
"""

from __future__ import annotations

import os

from numba import njit

KERNEL_OPTIONS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


def kernel(fn):
    """``@kernel``: a numba-compiled loop with the house options."""
    return njit(**KERNEL_OPTIONS)(fn)


def inline_kernel(fn):
    """``@inline_kernel``: a small dispatcher that numba inlines into each kernel calling it
    (at the level of numba's IR), so that choosing a method per call costs no call of its
    own: a numba call passes every array as seven values and counts references, ~30 ns per
    step of a one-row recurrence."""
    return njit(inline="always", **KERNEL_OPTIONS)(fn)


def is_cached(dispatcher) -> bool:
    """True if numba's on-disk cache (wherever NUMBA_CACHE_DIR puts it) has an index for
    this kernel, i.e. a run on this machine has compiled it before."""
    try:
        return os.path.exists(dispatcher._cache._cache_file._index_path)
    except AttributeError:  # numba's internals moved: say nothing rather than guess
        return True
