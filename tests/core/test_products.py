"""seqtool.core.rnn.products: the register tiles and the per-step product, against NumPy's
matmul in float64 on every path (tile shapes, row and column remainders, strided A,
and on non-finite input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from compiling import quick_compile
from harness import assert_close, tolerance
from seqtool.core.rnn import products

DTYPES = [np.float32, np.float64]


def operands(B, K, N, dtype, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(B, K)).astype(dtype), rng.normal(size=(K, N)).astype(dtype))


def lanes(dtype) -> int:
    return products.REGISTER_BYTES // np.dtype(dtype).itemsize


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 27])
def test_tiles_cover_every_row_remainder(B, dtype):
    # rows go in tiles of TILE_ROWS, the rest in tiles of 4 and 2 or one main tile, some
    # overlapping rows done before (products._row_plan); columns: a full strip plus a part
    N = 3 * lanes(dtype) + lanes(dtype) // 2 + 1
    a, w = operands(B, 37, N, dtype, seed=B)
    out = np.full((B, N), np.nan, dtype)
    products.matmul_tiles(out, a, w)
    assert_close(out, a.astype(np.float64) @ w)
    # an overlapping tile writes the bits the first one wrote: every row is the product
    # of that row alone (one FMA chain per element in k order, whichever tile ran it)
    for i in range(B):
        alone = np.full((1, N), np.nan, dtype)
        products.matmul_tiles(alone, a[i:i + 1], w)
        np.testing.assert_array_equal(out[i], alone[0])


@pytest.mark.parametrize("B", range(1, 3 * products.TILE_ROWS))
def test_the_rows_are_covered_in_fewest_passes(B):
    """_row_plan covers rows 0 .. B−1 exactly, a tile overlapping only rows the main tiles
    wrote (or, below TILE_ROWS rows, the tile before it), and never with more than two
    tiles after the main ones."""
    row_plan = getattr(products._row_plan, "py_func", products._row_plan)
    mains, last_main, four, four_b, two, two_b, one = row_plan(B)
    starts = [m * products.TILE_ROWS for m in range(mains - 1)] + ([last_main] if mains else [])
    placed = [(start, products.TILE_ROWS) for start in starts]
    placed += [(start, rows) for start, rows in ((four, 4), (four_b, 4), (two, 2), (two_b, 2),
                                                (one, 1)) if start >= 0]
    covered = set()
    for start, rows in placed:
        assert 0 <= start and start + rows <= B
        covered |= set(range(start, start + rows))
    assert covered == set(range(B))
    assert len(placed) - (B // products.TILE_ROWS) <= 2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N_in_lanes", [(0, 1), (1, 0), (1, 1), (2, 0), (2, 3), (3, 0), (5, 7),
                                        (6, 0), (0, 3)])
def test_tiles_cover_every_column_remainder(N_in_lanes, dtype):
    # N = whole vectors + a few lanes: strips of 3, 2 and 1 vectors, masked last vectors
    whole, extra = N_in_lanes
    N = whole * lanes(dtype) + extra
    a, w = operands(12, 20, N, dtype, seed=N)
    out = np.full((12, N + 5), 7.0, dtype)[:, :N]  # the 5 columns after N must stay 7
    products.matmul_tiles(out, a, w)
    assert_close(out, a.astype(np.float64) @ w)
    assert (out.base[:, N:] == 7.0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiles_read_a_transposed_view_as_is(dtype):
    # A of any strides: dAᵀ of a C-contiguous dA, as in Σ_t dA_tᵀ x_t
    dA = np.random.default_rng(7).normal(size=(40, 19)).astype(dtype)
    a_t = np.ascontiguousarray(dA.T)  # (19, 40)
    w = np.random.default_rng(8).normal(size=(40, 21)).astype(dtype)
    out_view, out_copy = np.empty((19, 21), dtype), np.empty((19, 21), dtype)
    products.matmul_tiles(out_view, dA.T, w)
    products.matmul_tiles(out_copy, a_t, w)
    np.testing.assert_array_equal(out_view, out_copy)
    assert_close(out_view, dA.T.astype(np.float64) @ w)


def test_tiles_with_k_zero_write_zeros():
    out = np.full((9, 20), np.nan, np.float32)
    products.matmul_tiles(out, np.empty((9, 0), np.float32), np.empty((0, 20), np.float32))
    assert (out == 0).all()


def test_tiles_propagate_nan_and_inf():
    a, w = operands(9, 8, 20, np.float32, seed=9)
    a[3, 2] = np.nan
    w[5, 7] = np.inf
    out = np.empty((9, 20), np.float32)
    products.matmul_tiles(out, a, w)
    with np.errstate(invalid="ignore"):
        expected = a.astype(np.float64) @ w
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(expected))


def test_tiles_refuse_rows_that_are_not_contiguous():
    a, w = operands(8, 6, 10, np.float64, seed=10)
    with pytest.raises(ValueError, match="contiguous rows"):
        products.matmul_tiles(np.empty((8, 10)), a, np.asfortranarray(w))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,K,N", [(1, 16, 64), (3, 16, 64), (2, 512, 512), (3, 512, 512),
                                   (5, 512, 512), (6, 128, 2048), (7, 64, 4096), (1, 256, 256),
                                   (2, 64, 256), (4, 16, 64), (8, 16, 16), (32, 128, 512),
                                   (30, 512, 128), (40, 128, 512)])
def test_per_step_product_matches_numpy_on_every_path(B, K, N, dtype):
    # the shapes cover the tiles of 2 and 3 rows, the 4-, 2- and 1-row passes of the register-blocked
    # loop (few rows with a large w), BLAS and the tiles (many rows, or few with a small w)
    a, w = operands(B, K, N, dtype, seed=B * K + N)
    out = np.full((B, N), np.nan, dtype)
    products.step_product(out, a, w)
    assert_close(out, a.astype(np.float64) @ w.astype(np.float64))


PORTABLE_CHECK = """
import sys
import numpy as np
from seqtool.core.rnn import products
assert (products.REGISTER_BYTES, products.TILE_ROWS) == (16, 4), products.REGISTER_BYTES
rng = np.random.default_rng(0)
worst = 0.0
for dtype in (np.dtype(sys.argv[1]),):
    for B, K, N in [(1, 16, 64), (1, 7, 9), (5, 13, 11), (9, 20, 30), (3, 512, 512)]:
        a = rng.normal(size=(B, K)).astype(dtype)
        w = rng.normal(size=(K, N)).astype(dtype)
        out = np.full((B, N), np.nan, dtype)
        products.step_product(out, a, w)
        expected = a.astype(np.float64) @ w
        worst = max(worst, float(np.abs(out - expected).max() / np.abs(expected).max()))
print(worst)
"""


def test_tiles_on_a_portable_target_with_16_byte_vectors(tmp_path):
    # NUMBA_CPU_NAME=generic (SSE2 only): 4-lane float32 vectors and 4-row tiles, the shapes
    # a machine without AVX gets; a fresh cache, so that nothing built for this CPU is used
    env = quick_compile(dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(tmp_path)))
    env.pop("NUMBA_CPU_FEATURES", None)
    # one process per dtype, side by side (each compiles its own kernels)
    running = [subprocess.Popen([sys.executable, "-c", PORTABLE_CHECK, dtype], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for dtype in ("float32", "float64")]
    for process in running:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        assert float(stdout) <= tolerance(np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("zero_start", [False, True])
def test_recurrent_outer_products_skip_only_a_zero_initial_state(dtype, padded, zero_start):
    """∂L/∂W_hh = Σ_t dA_tᵀ h_{t−1} over the real rows, against a NumPy loop in float64.
    With h_{−1} all zero, step 0's rows are left out of the product: an infinite dA_0 then
    leaves the sum finite (it would make NaN of inf · 0), and a nonzero h_{−1} is used."""
    from seqtool.core.rnn.lengths import gather_rows, step_schedule
    from seqtool.core.rnn import tuning

    rng = np.random.default_rng(11)
    T, B, G, H = 5, 6, 8, 3
    lengths = np.array([5, 5, 4, 2, 1, 1]) if padded else None
    with tuning.use(gather_below=1.1):  # a gather whenever any step is padded
        active, rows = step_schedule(lengths, T, B)
    assert (rows is not None) == padded
    h = rng.normal(size=(T + 1, B, H)).astype(dtype)
    if zero_start:
        h[0] = 0.0
    dA = rng.normal(size=(T, B, G)).astype(dtype)
    for t in range(T):
        dA[t, active[t]:] = 0.0  # padded steps
    expected = sum(dA[t, :active[t]].astype(np.float64).T @ h[t, :active[t]].astype(np.float64)
                   for t in range(T))
    got = products.recurrent_outer_products(gather_rows(dA, rows), h, rows)
    assert got.dtype == dtype
    assert_close(got, expected, kind="reference")
    dA[0, 0, 0] = np.inf
    got = products.recurrent_outer_products(gather_rows(dA, rows), h, rows)
    assert np.isfinite(got).all() == zero_start
