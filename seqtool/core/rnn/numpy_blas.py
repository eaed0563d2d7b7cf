"""NumPy's own BLAS library, found and named for the kernels (seqtool.core.rnn.blas).

At import, the shared library that NumPy's wheel carries (``numpy.libs``, ``numpy/.dylibs``)
is opened with ctypes and its CBLAS gemm and gemv functions are looked up under the names
OpenBLAS builds give them (``scipy_cblas_sgemm64_``, an ILP64 build with its symbol
suffix, ``cblas_sgemm``, ...). Each is checked on a small example against NumPy. Their
addresses are registered with LLVM under names of seqtool's own (``seqtool_cblas_sgemm_i64``
...: the integer width is part of the name), which the kernels declare as external
functions. Nothing here imports a kernel, so that seqtool.core.rnn.jit can read :data:`KEY`
into every kernel's cache stamp.

SEQTOOL_KERNEL_BLAS=numba keeps the kernels on numba's np.dot (SciPy's BLAS) instead.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
from llvmlite import binding as llvm_binding

# CBLAS's enums
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

# (suffix of the symbol, bits of its integers), in the order tried
_NAMINGS = (("scipy_cblas_{}64_", 64), ("cblas_{}64_", 64), ("scipy_cblas_{}", 32),
            ("cblas_{}", 32))


def _candidate_libraries() -> list[Path]:
    """The shared libraries NumPy's wheel carries whose name says BLAS."""
    root = Path(np.__file__).resolve().parent
    folders = [root.parent / "numpy.libs", root / ".dylibs", root / ".libs"]
    found = []
    for folder in folders:
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if "blas" in p.name.lower()
                            and (p.suffix in (".so", ".dylib", ".dll") or ".so." in p.name))
    return found


def _functions(library: ctypes.CDLL):
    """({name: (address, bits)}, naming) of sgemm, dgemm, sgemv, dgemv in ``library`` under
    the first naming that has all four; (None, None) if none has."""
    for pattern, bits in _NAMINGS:
        try:
            return {name: (ctypes.cast(getattr(library, pattern.format(name)),
                                       ctypes.c_void_p).value, bits)
                    for name in ("sgemm", "dgemm", "sgemv", "dgemv")}, pattern
        except AttributeError:
            continue
    return None, None


def _agrees(functions: dict) -> bool:
    """Whether gemm and gemv through ctypes give NumPy's product of a small example."""
    for prefix, dtype, c_type in (("s", np.float32, ctypes.c_float),
                                  ("d", np.float64, ctypes.c_double)):
        address, bits = functions[prefix + "gemm"]
        integer = ctypes.c_int64 if bits == 64 else ctypes.c_int32
        pointer = ctypes.c_void_p
        gemm = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                                integer, integer, integer, c_type, pointer, integer,
                                pointer, integer, c_type, pointer, integer)(address)
        # (not numpy.random: importing it is most of this module's import time)
        a = np.cos(np.arange(15, dtype=dtype)).reshape(3, 5)
        w = np.sin(np.arange(20, dtype=dtype) + 0.5).reshape(5, 4)
        out = np.zeros((3, 4), dtype)
        gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, 3, 4, 5, 1.0, a.ctypes.data, 5, w.ctypes.data,
             4, 0.0, out.ctypes.data, 4)
        if not np.allclose(out, a @ w, rtol=1e-5, atol=1e-6):
            return False
        address, bits = functions[prefix + "gemv"]
        gemv = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_int32, integer, integer,
                                c_type, pointer, integer, pointer, integer, c_type, pointer,
                                integer)(address)
        row = np.zeros(4, dtype)
        gemv(ROW_MAJOR, TRANS, 5, 4, 1.0, w.ctypes.data, 4, a.ctypes.data, 1, 0.0,
             row.ctypes.data, 1)
        if not np.allclose(row, a[0] @ w, rtol=1e-5, atol=1e-6):
            return False
    return True


def _find() -> tuple[dict | None, str, Path | None]:
    """(functions, key, path): NumPy's CBLAS functions, what identifies them and the
    library's file, or (None, "np.dot", None)."""
    if os.environ.get("SEQTOOL_KERNEL_BLAS") == "numba":  # the numba/SciPy route, by request
        return None, "np.dot", None
    for path in _candidate_libraries():
        try:
            library = ctypes.CDLL(str(path))
        except OSError:
            continue
        functions, pattern = _functions(library)
        if functions is not None and _agrees(functions):
            return functions, f"{path.name}:{pattern}", path
    return None, "np.dot", None


FUNCTIONS, KEY, LIBRARY = _find()
AVAILABLE = FUNCTIONS is not None
BITS = FUNCTIONS["sgemm"][1] if AVAILABLE else 64


def library_config() -> str:
    """What an OpenBLAS library says of itself (openblas_get_config, openblas_get_corename:
    its version and the kernels it runs here); '' for another library or none."""
    if LIBRARY is None:
        return ""
    library = ctypes.CDLL(str(LIBRARY))
    said = []
    for name in ("openblas_get_config", "openblas_get_corename"):
        for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("scipy_", ""), ("", "")):
            function = getattr(library, f"{prefix}{name}{suffix}", None)
            if function is not None:
                function.restype = ctypes.c_char_p
                said.append(function().decode(errors="replace").strip())
                break
    return "; ".join(said)


def symbol(name: str) -> str:
    """The name the kernels call ``name`` (sgemm, ...) by."""
    return f"seqtool_cblas_{name}_i{BITS}"


if AVAILABLE:
    for _name, (_address, _bits) in FUNCTIONS.items():
        llvm_binding.add_symbol(symbol(_name), _address)
# Those not found are declared all the same (the kernels type the calls even where they are
# never made): an address that exists, never called.
_unused = ctypes.CFUNCTYPE(None)(lambda: None)
for _name in ("sgemm", "dgemm", "sgemv", "dgemv"):
    if not AVAILABLE or _name not in FUNCTIONS:
        llvm_binding.add_symbol(symbol(_name), ctypes.cast(_unused, ctypes.c_void_p).value)
