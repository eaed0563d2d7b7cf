"""A workspace: large per-call arrays that the caller lends to the recurrent layers again and
again, with lifetimes the caller decides.

glibc gives freed blocks of a few hundred kB and more back to the OS, and touching a fresh
block costs a page fault per 4 kB page: for the recurrent layers' states, gate records and
gradients (18 MB at T = 100, B = 32, H = 128: ~4000 faults) that was a third of the time of
a forward and backward pass. A training loop calls the layers with the same shapes batch
after batch, so it keeps one :class:`Workspace` and passes it (``workspace=``) to every
call: a layer takes its large arrays from it by name, and the same name and shape give the
same memory next time.

The rule that keeps this free of aliasing bugs: an array taken from a workspace is valid
until its owner takes the same name again (or releases it). A function given no workspace
returns fresh arrays, so a result that a caller keeps is never overwritten behind its
back; passing a workspace is the caller's promise that it is done with the last call's
results under those names when it makes the next call. Layers of a stack use a
:meth:`Workspace.scope` each, so that their names never meet.

A workspace belongs to the thread that made it (taking from another thread raises):
threads (a Dask worker's, say) each make their own. The parts of a batch that run on other
threads (seqtool.core.parallel) get theirs from :meth:`Workspace.for_thread`.
"""

from __future__ import annotations

import threading

import numpy as np


class Workspace:
    """Named arrays lent out again and again; see the module docstring.

    ``take(name, shape, dtype)`` returns an uninitialised array, the same one as the last
    ``take`` of ``name`` when shape and dtype agree; ``scope(key)`` a workspace whose names
    are prefixed with ``key`` and that shares this one's storage and owner;
    ``release(name=None)`` forgets one name (or all), so that the memory is freed once
    nobody else holds it.
    """

    __slots__ = ("_arrays", "_prefix", "_scopes", "_thread")

    def __init__(self, *, _arrays: dict | None = None, _prefix: str = "",
                 _thread: int | None = None):
        self._arrays: dict[str, np.ndarray] = {} if _arrays is None else _arrays
        self._prefix = _prefix
        self._scopes: dict = {}
        self._thread = threading.get_ident() if _thread is None else _thread

    def _check_thread(self) -> None:
        if threading.get_ident() != self._thread:
            raise RuntimeError("a Workspace belongs to the thread that made it: make one "
                               "per thread")

    def take(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised array of ``shape`` and ``dtype`` under ``name``: the one taken
        last under that name if it has that shape and dtype, else a new one (which replaces
        it). Valid until the next take of ``name`` or its release."""
        self._check_thread()
        key = self._prefix + name
        a = self._arrays.get(key)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = np.empty(shape, dtype)
            self._arrays[key] = a
        return a

    def scope(self, key) -> Workspace:
        """A workspace over the same storage whose names start with ``key`` (one per layer
        of a stack, so that layer 0's "lstm.h" is not layer 1's)."""
        scope = self._scopes.get(key)
        if scope is None:
            self._check_thread()
            scope = self._scopes[key] = Workspace(_arrays=self._arrays,
                                                  _prefix=f"{self._prefix}{key}/",
                                                  _thread=self._thread)
        return scope

    def for_thread(self, key, ident: int) -> Workspace:
        """The workspace of part ``key`` of a batch, run on the thread ``ident``
        (seqtool.core.parallel): this one's scope ``key`` on its own thread; on another, a
        workspace of its own storage owned by that thread, kept here so that the same part
        on the same thread gets it again batch after batch."""
        if ident == self._thread:
            return self.scope(key)
        self._check_thread()
        slot = ("thread", key, ident)
        space = self._scopes.get(slot)
        if space is None:
            space = self._scopes[slot] = Workspace(_thread=ident)
        return space

    def keep_one_way(self, split: bool) -> None:
        """Keep the arrays of one way of running a stack over a batch and drop the other's:
        the parts' (``split``: the scopes ``part<i>`` and the workspaces of other threads)
        or the whole batch's (every other name of this scope). A run whose batches switch
        between the two (the last, smaller batch of an epoch) then holds one set at a time,
        which is what the memory estimate counts."""
        self._check_thread()
        part_prefix = self._prefix + "part"
        for key in [k for k in self._arrays if k.startswith(self._prefix)
                    and k.startswith(part_prefix) != split]:
            del self._arrays[key]
        if not split:
            for slot in [s for s in self._scopes if isinstance(s, tuple) and s[0] == "thread"]:
                del self._scopes[slot]

    def release(self, name: str | None = None) -> None:
        """Forget ``name`` (every name of this scope when None): its memory goes back once
        no caller holds the array."""
        self._check_thread()
        if name is not None:
            self._arrays.pop(self._prefix + name, None)
            return
        for key in [k for k in self._arrays if k.startswith(self._prefix)]:
            del self._arrays[key]
        for slot in [s for s in self._scopes if isinstance(s, tuple) and s[0] == "thread"]:
            del self._scopes[slot]  # other threads' parts: dropped, freed once they end

    @property
    def nbytes(self) -> int:
        """Bytes held under this scope's names."""
        return sum(a.nbytes for k, a in self._arrays.items() if k.startswith(self._prefix))

    def __repr__(self) -> str:
        names = sorted(k for k in self._arrays if k.startswith(self._prefix))
        return f"Workspace({self._prefix!r}, {len(names)} arrays, {self.nbytes} bytes)"


def take(workspace: Workspace | None, name: str, shape: tuple, dtype) -> np.ndarray:
    """``workspace.take(name, shape, dtype)``, or a fresh array without a workspace."""
    if workspace is None:
        return np.empty(shape, dtype)
    return workspace.take(name, shape, dtype)
