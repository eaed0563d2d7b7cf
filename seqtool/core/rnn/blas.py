"""The kernels' BLAS: NumPy's own library, called from compiled code.

A numba kernel's ``np.dot`` calls the BLAS that SciPy ships (numba finds its functions
through ``scipy.linalg.cython_blas``), which need not be the one NumPy ships. With NumPy 2.4
and SciPy 1.17 wheels they differ: NumPy's OpenBLAS 0.3.31 and SciPy's 0.3.30, and on
one Zen 3 core the same float32 product ran at 72–80 GFLOP/s in NumPy's and at 51 in
SciPy's (an LSTM's per-step product (32, 256) × (256, 1024); float64 was alike in both).
So the kernels call NumPy's ``cblas_?gemm`` and ``cblas_?gemv`` directly: numpy_blas.py
finds them and registers them with LLVM under names of seqtool's own, which the kernels
declare as external functions (numba's ``types.ExternalFunction``). The compiled code names
the symbol, never an address, so numba's on-disk cache stays valid from one process to the
next. Where NumPy's library is not found (a NumPy built against another BLAS) the kernels
call ``np.dot``; which of the two a kernel was compiled for is part of its cache stamp
(numpy_blas.KEY, read by seqtool.core.rnn.jit).
"""

from __future__ import annotations

import numpy as np
from numba import config, types
from numba.extending import overload

from seqtool.core.rnn.elementwise import _is_single, _typed
from seqtool.core.rnn.jit import inline_kernel, kernel
from seqtool.core.rnn.numpy_blas import (
    AVAILABLE, BITS, KEY, NO_TRANS, ROW_MAJOR, TRANS, symbol,
)
from seqtool.core.rnn.transpose import transposed_by_blocks

_INT = types.int64 if BITS == 64 else types.int32
_PTR = types.intp  # an address, passed as an integer of its width (the C ABI is the same)


def _gemm_type(real):
    return types.void(types.int32, types.int32, types.int32, _INT, _INT, _INT, real, _PTR,
                      _INT, _PTR, _INT, real, _PTR, _INT)


def _gemv_type(real):
    return types.void(types.int32, types.int32, _INT, _INT, real, _PTR, _INT, _PTR, _INT,
                      real, _PTR, _INT)


_sgemm = types.ExternalFunction(symbol("sgemm"), _gemm_type(types.float32))
_dgemm = types.ExternalFunction(symbol("dgemm"), _gemm_type(types.float64))
_sgemv = types.ExternalFunction(symbol("sgemv"), _gemv_type(types.float32))
_dgemv = types.ExternalFunction(symbol("dgemv"), _gemv_type(types.float64))


@inline_kernel
def _layout(array):
    """(transpose, leading dimension) of a 2-D array for CBLAS in row-major order: rows of
    unit stride (NO_TRANS) or columns of unit stride (TRANS); (0, 0) for neither."""
    rows, cols = array.shape
    item = array.itemsize
    row_stride, col_stride = array.strides
    if cols == 1 or col_stride == item:
        lead = row_stride // item if rows > 1 else cols
        if lead >= cols and row_stride % item == 0:
            return NO_TRANS, lead
    if rows == 1 or row_stride == item:
        lead = col_stride // item if cols > 1 else rows
        if lead >= rows and col_stride % item == 0:
            return TRANS, lead
    return 0, 0


@inline_kernel
def _dot(out, a, w):
    """numba's np.dot, where NumPy's library was not found: on contiguous copies of a and w
    where they are not (np.dot of other layouts copies them all the same)."""
    np.dot(np.ascontiguousarray(a), np.ascontiguousarray(w), out)


@inline_kernel
def _loop_product(out, a, w):
    """out = a @ w as a plain loop, for operands BLAS cannot take (no kernel passes any:
    cheaper to compile than copying them)."""
    M, K = a.shape
    N = w.shape[1]
    for i in range(M):
        for j in range(N):
            total = _typed(0.0, out)
            for k in range(K):
                total += a[i, k] * w[k, j]
            out[i, j] = total


def _cblas_product(out, a, w):
    """out = a @ w by NumPy's CBLAS gemm, or gemv for a single row (where OpenBLAS's gemm
    was 4× slower). a and w may each have rows or columns of unit stride (a transposed view
    costs nothing); an operand with neither takes a plain loop."""
    M, K = a.shape
    N = w.shape[1]
    if M == 0 or N == 0:
        return
    if K == 0:
        out[:] = _typed(0.0, out)
        return
    trans_a, lda = _layout(a)
    trans_w, ldw = _layout(w)
    if trans_a == 0 or trans_w == 0:
        _loop_product(out, a, w)
        return
    ldc = out.strides[0] // out.itemsize if M > 1 else N  # C-contiguous: the callers' contract
    single = _is_single(out)
    if M == 1:
        # out (N,) = wᵀ a. w (K, N) row-major is CBLAS's K × N matrix, transposed here; w
        # with contiguous columns is its N × K matrix, as it is
        a_step = a.strides[1] // a.itemsize if K > 1 else 1
        op, rows, cols = (TRANS, K, N) if trans_w == NO_TRANS else (NO_TRANS, N, K)
        if single:
            _sgemv(ROW_MAJOR, op, rows, cols, np.float32(1.0), w.ctypes.data, ldw,
                   a.ctypes.data, a_step, np.float32(0.0), out.ctypes.data, 1)
        else:
            _dgemv(ROW_MAJOR, op, rows, cols, 1.0, w.ctypes.data, ldw, a.ctypes.data,
                   a_step, 0.0, out.ctypes.data, 1)
    elif single:
        _sgemm(ROW_MAJOR, trans_a, trans_w, M, N, K, np.float32(1.0), a.ctypes.data, lda,
               w.ctypes.data, ldw, np.float32(0.0), out.ctypes.data, ldc)
    else:
        _dgemm(ROW_MAJOR, trans_a, trans_w, M, N, K, 1.0, a.ctypes.data, lda,
               w.ctypes.data, ldw, 0.0, out.ctypes.data, ldc)


def _product(out, a, w):
    """NumPy's CBLAS where it was found, numba's np.dot otherwise (chosen when a kernel is
    typed, so that only one of the two is compiled). Without JIT: NumPy's product, the
    same library."""
    np.dot(a, w, out)


@overload(_product, jit_options={"error_model": "numpy"})
def _product_overload(out, a, w):
    if AVAILABLE:
        return _cblas_product
    return lambda out, a, w: _dot(out, a, w)


@kernel
def _blas_any(out, a, w):
    """blas_product for a and w of numba's 'A' layout: one compiled kernel per dtype."""
    _product(out, a, w)


@inline_kernel
def blas_product(out, a, w):
    """out = a @ w for a (M, K), w (K, N) of any strides and out (M, N) C-contiguous, float32
    or float64, by NumPy's BLAS (_cblas_product), or np.dot where it was not found. One
    kernel of its own for every layout of a and w (``a[::1]`` types an array as 'A'),
    called rather than inlined: inlined at every product's call site, its branches had
    doubled the kernels' first compile."""
    _blas_any(out, a[::1], w[::1])


def _transposed(w):
    """wᵀ as a new C-contiguous array (without JIT: NumPy's copy)."""
    return np.ascontiguousarray(w.T)


@overload(_transposed, jit_options={"error_model": "numpy"})
def _transposed_overload(w):
    return lambda w: transposed_by_blocks(w)


@inline_kernel
def transposed(w):
    """wᵀ (N, K) as a new C-contiguous array, for w (K, N) float32 or float64: the W_hhᵀ
    that the per-step products read, in register blocks (seqtool.core.rnn.transpose:
    a (1024, 256) float32 W_hh in 90 µs from L3, where OpenBLAS's ?omatcopy took 127 and
    np.ascontiguousarray 270; float64 2.5-4× faster than ?omatcopy). The same values
    either way: a transpose only moves them."""
    return _transposed(w)


@kernel
def transposed_copy(w):
    """:func:`transposed` for Python callers (one kernel call)."""
    return _transposed(w)


def transposed_as(w: np.ndarray, dtype) -> np.ndarray:
    """wᵀ of a 2-D ``w`` as a new C-contiguous array of ``dtype``: :func:`transposed` for w
    of that dtype, NumPy's copy otherwise. Taken at every size, so that the warm-up's tiny
    layers compile what large ones call (~1 µs either way at 48 × 16)."""
    if type(w) is np.ndarray and w.dtype == dtype and w.ndim == 2:
        return transposed_copy(w)
    return np.ascontiguousarray(w.T, dtype)


if config.DISABLE_JIT:  # the kernels are Python functions: an external function cannot be called
    blas_product = _product  # noqa: F811
    transposed = transposed_copy = _transposed  # noqa: F811


def describe() -> str:
    """Which BLAS the kernels call, for benchmarks and `seqtool compile`."""
    if AVAILABLE:
        return f"NumPy's ({KEY.split(':')[0]}, {BITS}-bit integers)"
    return "numba's np.dot (SciPy's BLAS)"
