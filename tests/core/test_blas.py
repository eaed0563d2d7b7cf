"""The kernels' BLAS: NumPy's own library, found, checked and called from compiled code with
every layout the kernels pass (C rows, transposed views, one row), the same numbers as
NumPy's product; anything else falls back to np.dot."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest
from compiling import quick_compile
from harness import assert_close
from numba import njit

from seqtool.core.rnn import blas, numpy_blas


@njit(cache=True)
def _product(out, a, w):
    blas.blas_product(out, a, w)


def _layouts(rng, B, K, N, dtype):
    """(name, a, w): a and w as the kernels pass them, and some they never do."""
    a = rng.standard_normal((B, K)).astype(dtype)
    w = rng.standard_normal((K, N)).astype(dtype)
    yield "C", a, w
    yield "a transposed view (dAᵀ)", np.ascontiguousarray(a.T).T, w
    yield "w transposed view (W_ihᵀ)", a, np.ascontiguousarray(w.T).T
    wide = rng.standard_normal((B, 2 * K + 3)).astype(dtype)
    yield "a rows of a wider array", wide[:, 1:K + 1], w
    yield "a strided both ways (np.dot)", wide[:, :2 * K:2], w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B,K,N", [(1, 7, 5), (1, 64, 256), (3, 5, 7), (32, 64, 256),
                                   (5, 1, 3), (4, 3, 1)])
def test_every_layout_gives_numpys_product(B, K, N, dtype):
    rng = np.random.default_rng(B * 100 + K + N)
    for name, a, w in _layouts(rng, B, K, N, dtype):
        out = np.full((B, N), np.nan, dtype)
        _product(out, a, w)
        assert_close(out, a.astype(np.float64) @ w.astype(np.float64), dtype=dtype, what=name)


@pytest.mark.skipif(not numpy_blas.AVAILABLE, reason="NumPy's BLAS library was not found")
def test_the_kernels_call_the_library_numpy_calls():
    # bit for bit: the same gemm of the same library on the same operands
    rng = np.random.default_rng(1)
    a = rng.standard_normal((32, 300)).astype(np.float32)
    w = rng.standard_normal((300, 129)).astype(np.float32)
    out = np.empty((32, 129), np.float32)
    _product(out, a, w)
    assert np.array_equal(out, a @ w)
    one = np.empty((1, 129), np.float32)
    _product(one, a[:1], w)  # gemv, as NumPy's vector × matrix
    assert np.array_equal(one[0], a[0] @ w)


def test_empty_products():
    a = np.ones((0, 3), np.float32)
    w = np.ones((3, 4), np.float32)
    out = np.empty((0, 4), np.float32)
    _product(out, a, w)
    out = np.full((2, 4), np.nan, np.float32)
    _product(out, np.ones((2, 0), np.float32), np.ones((0, 4), np.float32))
    assert np.array_equal(out, np.zeros((2, 4), np.float32))


def test_the_library_is_found_where_numpy_carries_one():
    carried = [p for p in numpy_blas._candidate_libraries() if "openblas" in p.name.lower()]
    if carried:  # a wheel's OpenBLAS: its CBLAS functions are found and agree with NumPy
        assert numpy_blas.AVAILABLE and numpy_blas.KEY.startswith(carried[0].name)
    assert numpy_blas.symbol("sgemm").endswith(f"_i{numpy_blas.BITS}")
    # a library without CBLAS functions is not taken
    assert numpy_blas._functions(ctypes.CDLL(None)) == (None, None)


def test_the_numba_route_by_request():
    code = ("from seqtool.core.rnn import numpy_blas, blas; "
            "print(numpy_blas.KEY, numpy_blas.AVAILABLE, blas.describe())")
    env = quick_compile({**os.environ, "SEQTOOL_KERNEL_BLAS": "numba"})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[:2] == ["np.dot", "False"] and "np.dot" in " ".join(out[2:])


@njit(cache=True)
def _transposed_in_a_kernel(w):
    return blas.transposed(w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K,N", [(1, 1), (1, 9), (9, 1), (5, 7), (16, 16), (17, 40), (256, 1024),
                                 (130, 67)])
def test_transposed_copies_are_exact(K, N, dtype):
    """W_hhᵀ for the per-step products: the same values, C-contiguous, whatever w's rows'
    stride (a slice of a wider array, every other row) and by the Python entry point."""
    rng = np.random.default_rng(K * 1000 + N)
    wide = rng.standard_normal((2 * K, N + 3)).astype(dtype)
    for w in (np.ascontiguousarray(wide[:K, :N]), wide[:K, 1:N + 1], wide[::2, :N]):
        for got in (_transposed_in_a_kernel(w), blas.transposed_copy(w),
                    blas.transposed_as(w, dtype)):
            assert got.flags.c_contiguous and got.dtype == dtype
            np.testing.assert_array_equal(got, w.T)
    columns_apart = wide[:K, ::2]  # no unit stride anywhere: numba's copy
    np.testing.assert_array_equal(blas.transposed_copy(columns_apart), columns_apart.T)
    other = blas.transposed_as(wide[:K, :N].astype(np.float64), np.float32)
    assert other.dtype == np.float32 and other.flags.c_contiguous
    np.testing.assert_array_equal(other, wide[:K, :N].T.astype(np.float32))


