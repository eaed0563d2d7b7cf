"""Numba options for every kernel, in one place, and the key of their on-disk cache.

``cache=True`` makes compilation a one-time cost per machine. No ``fastmath``: it lets LLVM
assume there is no NaN or inf, which silently removes the NaN guards.

numba's cache keys a kernel on the source of its own file only, but the kernels inline
helpers from other files (elementwise.py, products.py) and read the compiled thresholds of
seqtool.core.rnn.tuning. So seqtool's kernels use a cache locator of their own
(:class:`_KernelCache`): its source stamp is the digest of every kernel module of
seqtool/core/rnn (every file there that imports this one, found by reading the files, so a
new one counts without anyone listing it), of the kernel's own file, and of the tuning
variables of the environment. Editing any of those files, or running with another
tuning, invalidates every dependent cache entry; a non-default tuning also caches into a
directory of its own, so that switching back and forth does not rebuild each time.

With NUMBA_DISABLE_JIT=1 the kernels are the plain Python functions; :func:`intrinsic_or`
gives each LLVM intrinsic the plain Python form they call then.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from numba import config, njit
from numba.core import caching
from numba.extending import intrinsic

from seqtool.core.rnn import numpy_blas, tuning

KERNEL_OPTIONS = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}

RNN_DIR = Path(__file__).resolve().parent
# A file of RNN_DIR that contains this is a kernel module (it imports this file).
_KERNEL_MARK = b"seqtool.core.rnn.jit"


def kernel_modules(directory: Path = RNN_DIR) -> list[Path]:
    """The kernel modules under ``directory``: every .py file that imports this module,
    plus this module and tuning.py (every kernel reads them), sorted."""
    found = []
    for path in sorted(directory.rglob("*.py")):
        if path.parent == directory and path.name in ("jit.py", "tuning.py"):
            found.append(path)
        elif _KERNEL_MARK in path.read_bytes():
            found.append(path)
    return found


def sources_digest(paths) -> str:
    """sha256 over the names and contents of ``paths``."""
    digest = hashlib.sha256()
    for path in paths:
        path = Path(path)
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# numba's default optimisation level (NUMBA_OPT: 0-3 or "max"); its cache does not key on it
DEFAULT_OPT = 3


def opt_level() -> int | str:
    """numba's optimisation level as set (NUMBA_OPT): 0 to 3, or "max"."""
    return getattr(config.OPT, "_raw_value", int(config.OPT))


def tuning_key() -> str:
    """'' for this CPU's default tuning at numba's default optimisation level, else a short
    digest of the compiled thresholds and the level."""
    if tuning.TUNING.compiled() == tuning.DEFAULTS.compiled() and opt_level() == DEFAULT_OPT:
        return ""
    what = repr(tuning.TUNING.compiled())
    if opt_level() != DEFAULT_OPT:
        what += f" opt={opt_level()}"
    return hashlib.sha256(what.encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=None)
def kernel_stamp() -> tuple:
    """What every seqtool kernel's cache entry is valid for: the digest of the kernel
    modules, the compiled tuning, the BLAS the kernels call and LLVM's optimisation level
    (NUMBA_OPT: numba's own cache would hand a kernel built at ``NUMBA_OPT=0`` to a run at
    the default level) (computed once per process)."""
    return (sources_digest(kernel_modules()), tuning.TUNING.compiled(), numpy_blas.KEY,
            str(opt_level()))


class _StampedLocator:
    """A mixin for numba's file-backed cache locators: the source stamp covers the kernel
    modules and the tuning besides the function's own file, and a non-default tuning gets
    a cache directory of its own."""

    def get_source_stamp(self):
        own = super().get_source_stamp()  # sha256 of the kernel's own file
        return (own, kernel_stamp())

    def get_cache_path(self):
        path = super().get_cache_path()
        key = tuning_key()
        return os.path.join(path, f"tuning-{key}") if key else path


class _UserProvidedLocator(_StampedLocator, caching.UserProvidedCacheLocator):
    pass


class _InTreeLocator(_StampedLocator, caching.InTreeCacheLocator):
    pass


class _UserWideLocator(_StampedLocator, caching.UserWideCacheLocator):
    pass


class _KernelCacheImpl(caching.CompileResultCacheImpl):
    # numba's own order (NUMBA_CACHE_DIR, __pycache__, the user's cache directory), stamped
    _locator_classes = [_UserProvidedLocator, _InTreeLocator, _UserWideLocator]


class _KernelCache(caching.FunctionCache):
    _impl_class = _KernelCacheImpl


def _compile(fn, **options):
    """njit with the house options and seqtool's cache (the plain function when
    NUMBA_DISABLE_JIT is set)."""
    options = {**KERNEL_OPTIONS, **options, "cache": False}
    dispatcher = njit(**options)(fn)
    if config.DISABLE_JIT:
        return dispatcher  # fn itself
    dispatcher._cache = _KernelCache(dispatcher.py_func)  # what enable_caching() does
    return dispatcher


def kernel(fn):
    """``@kernel``: a numba-compiled loop with the house options."""
    return _compile(fn)


# What a summing kernel may do that a kernel may not: reorder a sum (as a BLAS does) and fuse
# a multiply with an add. Unlike full fastmath, NaN and ∞ keep their meaning.
REORDERED_SUMS = frozenset({"reassoc", "contract"})


def summing_kernel(fn):
    """``@summing_kernel``: a small kernel with REORDERED_SUMS, for a reduction such as a dot
    product: as one running sum it is a chain of dependent additions that LLVM may not
    reorder, one scalar at a time; reordered it fills vector registers (a dot product of
    256 float32 took 140 ns as a chain, 15 reordered, on a Zen 4). LLVM inlines it into its
    callers and keeps its flags."""
    return _compile(fn, fastmath=set(REORDERED_SUMS))


def inline_kernel(fn):
    """``@inline_kernel``: a small dispatcher that numba inlines into each kernel calling it
    (at the level of numba's IR), so that choosing a method per call costs no call of its
    own: a numba call passes every array as seven values and counts references, ~30 ns per
    step of a one-row recurrence."""
    return _compile(fn, inline="always")


def intrinsic_or(python_version):
    """``@intrinsic_or(f)``: numba's ``@intrinsic`` (LLVM IR for kernels), or the plain
    Python ``f`` that computes the same thing when NUMBA_DISABLE_JIT=1, where the kernels
    are Python functions and an intrinsic cannot be called."""

    def decorate(definition):
        if config.DISABLE_JIT:
            return functools.wraps(definition)(python_version)
        return intrinsic(definition)

    return decorate


def is_cached(dispatcher) -> bool:
    """True if numba's on-disk cache (wherever NUMBA_CACHE_DIR puts it) holds a valid entry
    for this kernel (its stamp matches: no source file or tuning changed since), i.e. a run
    on this machine has compiled it before. Always True without JIT."""
    if config.DISABLE_JIT or not hasattr(dispatcher, "_cache"):
        return True
    try:
        return bool(dispatcher._cache._cache_file._load_index())
    except AttributeError:  # numba's internals moved: say nothing rather than guess
        return True
    except Exception:  # an unreadable index: it will be rebuilt
        return False

