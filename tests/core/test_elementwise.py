"""seqtool.core.rnn.elementwise: the vectorisable exp, σ and tanh that the kernels inline,
against NumPy's (libm's) in float64 / extended references: within a few ulp over the
whole range, subnormal results included, and IEEE behaviour on ±0, ±inf and NaN."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from harness import assert_close
from seqtool.core.rnn import elementwise
from seqtool.core.rnn.elementwise import (_exp_nonpositive, _fma, _fma_python,
                                          _scale_by_shifted, _scale_by_shifted_python,
                                          _sigmoid, _tanh)


@njit
def apply_exp(x, out):
    for i in range(x.size):
        out[i] = _exp_nonpositive(x[i])


@njit
def apply_sigmoid(x, out):
    for i in range(x.size):
        out[i] = _sigmoid(x[i])


@njit
def apply_tanh(x, out):
    for i in range(x.size):
        out[i] = _tanh(x[i])


def run(kernel, x):
    out = np.empty_like(x)
    kernel(x, out)
    return out


def ulp_error(got, expected_hi, dtype):
    """|got − expected| in units of the last place of expected rounded to dtype (the spacing
    at the smallest normal for subnormal results)."""
    expected = expected_hi.astype(dtype)
    spacing = np.spacing(np.maximum(np.abs(expected), np.finfo(dtype).tiny).astype(dtype))
    return np.abs(got.astype(np.longdouble) - expected_hi) / spacing.astype(np.longdouble)


def sample(dtype, low, high, n=20001):
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(low, high, n), rng.uniform(low, high, n)])
    return x.astype(dtype)


# exp: down to where float32 results are subnormal (below −87.3) and round to 0 (−103.9)
EXP_RANGE = {np.float32: -104.0, np.float64: -746.0}
MAX_ULP = {np.float32: 2.0, np.float64: 2.0}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_is_within_two_ulp_down_to_underflow(dtype):
    x = sample(dtype, EXP_RANGE[dtype], 0.0)
    expected = np.exp(x.astype(np.longdouble))
    assert ulp_error(run(apply_exp, x), expected, dtype).max() <= MAX_ULP[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_are_within_a_few_ulp(dtype):
    x = sample(dtype, -60.0, 60.0)
    xl = x.astype(np.longdouble)
    sigmoid = 1 / (1 + np.exp(-xl))
    tanh = np.tanh(xl)
    # σ and tanh round a quotient of exp's result: one more rounding on top of exp's
    assert ulp_error(run(apply_sigmoid, x), sigmoid, dtype).max() <= 3.0
    assert ulp_error(run(apply_tanh, x), tanh, dtype).max() <= 3.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_follow_ieee(dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1e30, 1e30], dtype)
    with np.errstate(over="ignore"):
        sigmoid = run(apply_sigmoid, x)
        tanh = run(apply_tanh, x)
    np.testing.assert_array_equal(sigmoid, np.array([0.5, 0.5, 1, 0, np.nan, 0, 1], dtype))
    np.testing.assert_array_equal(tanh, np.array([0, 0, 1, -1, np.nan, -1, 1], dtype))
    exp = run(apply_exp, np.array([0.0, -0.0, -np.inf, np.nan, -1e30], dtype))
    np.testing.assert_array_equal(exp, np.array([1, 1, 0, np.nan, 0], dtype))


# ---------------------------------------------------------------------------------------
# The Python forms of the intrinsics (what NUMBA_DISABLE_JIT=1 runs) against the intrinsics


@njit
def apply_fma(a, b, c, out):
    for i in range(a.size):
        out[i] = _fma(a[i], b[i], c[i])


@njit
def apply_scale(p, t, out):
    for i in range(p.size):
        out[i] = _scale_by_shifted(p[i], t[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_fma_matches_the_intrinsic(dtype):
    rng = np.random.default_rng(11)
    a, b, c = (rng.normal(size=500).astype(dtype) for _ in range(3))
    compiled = np.empty(500, dtype)
    apply_fma(a, b, c, compiled)
    python = np.array([_fma_python(*v) for v in zip(a, b, c)])
    assert python.dtype == dtype
    # float32: an exact product in float64, rounded twice; float64: two roundings without
    # math.fma (Python < 3.13)
    assert_close(python, compiled, what="fma")


@pytest.mark.parametrize("dtype,shifter,low,high", [  # k down to subnormal results, up to
    (np.float32, elementwise._F32_SHIFTER, -252, 126),   # the largest finite p · 2^k, p < 2
    (np.float64, elementwise._F64_SHIFTER, -2044, 1022)])
def test_python_scale_by_shifted_matches_the_intrinsic(dtype, shifter, low, high):
    k = np.arange(low, high + 1, 7)
    t = (dtype(shifter) + k.astype(dtype)).astype(dtype)  # k in t's low bits
    p = np.random.default_rng(12).uniform(1.0, 2.0, size=k.size).astype(dtype)
    compiled = np.empty(k.size, dtype)
    apply_scale(p, t, compiled)
    python = np.array([_scale_by_shifted_python(a, b) for a, b in zip(p, t)])
    np.testing.assert_array_equal(python, compiled)
    expected = p.astype(np.float64) * np.exp2(k.astype(np.float64))
    normal = np.abs(expected) >= np.finfo(dtype).tiny
    assert_close(python[normal], expected[normal], what="p · 2^k")
