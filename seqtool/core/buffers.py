"""Large per-call arrays, handed out again once nobody holds them.

glibc gives freed blocks of a few hundred kB and more back to the OS, and touching a fresh
block costs a page fault per 4 kB page: for the recurrent layers' states, gate records and
gradients (18 MB at T = 100, B = 32, H = 128: ~4000 faults) that was a third of the time of
a forward and backward pass. :func:`reusable` keeps the last array handed out under a name
and hands it out again when only it still refers to the array (views refer to their base,
so a view held anywhere counts). Each thread has its own arrays: two runs in the threads of
one process (a Dask worker with several threads) never share one.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

_local = threading.local()


def _spare_and_refs(spare: dict, name: str):
    """spare[name] (or None) and its reference count as seen from here."""
    a = spare.get(name)
    return a, sys.getrefcount(a)


# The count of an array that only its dict refers to, measured through the same function
# rather than assumed: what getrefcount reports for locals and arguments varies between
# Python versions. Anyone else holding the array or a view of it adds to it.
_UNSHARED_REFS = _spare_and_refs({"probe": np.empty(1)}, "probe")[1]


def reusable(name: str, shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array of shape and dtype: the one this thread last had under
    ``name`` if nobody holds it or a view of it any more, else a new one, kept for next
    time."""
    spare = getattr(_local, "spare", None)
    if spare is None:
        spare = _local.spare = {}
    a, refs = _spare_and_refs(spare, name)
    if a is not None and refs == _UNSHARED_REFS and a.shape == shape and a.dtype == dtype:
        return a
    a = np.empty(shape, dtype)
    spare[name] = a
    return a
