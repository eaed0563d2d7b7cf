"""Element-wise numerics for the recurrent kernels, written so that LLVM vectorises them:
σ and tanh through an exp made of plain arithmetic, in the arrays' own precision, plus the
small intrinsics they are built from (bit casts, 2^k, fused multiply-add).

The kernels in vanilla.py and gated.py inline these; an edit here invalidates their cached
builds (seqtool.core.rnn.jit keys the cache on every kernel module). Each intrinsic has a
plain Python form that NUMBA_DISABLE_JIT=1 runs instead (jit.intrinsic_or).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import overload

from seqtool.core.rnn.jit import inline_kernel, intrinsic_or, kernel


# ---------------------------------------------------------------------------------------
# Scalar building blocks that LLVM can vectorise
#
# The gate nonlinearities dominate the step once the matrix products are BLAS calls, and
# math.exp is a scalar libm call that stops LLVM from vectorising the loop around it (numba
# wheels have no SVML). _exp_nonpositive below is plain arithmetic instead, so that a loop
# over a row of gates becomes SIMD code. Everything is written in the arrays' own precision:
# in a kernel a Python float literal is a float64, and float32 ⊕ float64 is float64, which
# would compute float32 layers in double at half the vector width — hence _typed(1.0, a).


def _typed(value, like):
    """``value`` as a float of the type of ``like``, a float or an array of floats (in a
    kernel: a compile-time constant)."""
    return np.asarray(like).dtype.type(value)


@overload(_typed)
def _typed_overload(value, like):
    if isinstance(like, types.Array):
        like = like.dtype
    if like == types.float32:
        return lambda value, like: np.float32(value)
    if like == types.float64:
        return lambda value, like: np.float64(value)
    return None


# ---------------------------------------------------------------------------------------
# Copies between arrays of one shape, as loops
#
# numba's slice assignment between arrays (h[0] = h0, a[r:] += b[r:]) checks that the shapes
# broadcast and formats the shapes into its error message: that message alone is ~40
# compilations of numba's string code, about 3 s of a first run. The callers here always
# pass arrays of one shape (the checked public functions make them so), so plain loops do.


@inline_kernel
def _copy_into(dst, src):
    """dst[b, j] = src[b, j] for 2-D arrays of one shape."""
    for b in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[b, j] = src[b, j]


@inline_kernel
def _add_into(dst, src):
    """dst[b, j] += src[b, j] for 2-D arrays of one shape."""
    for b in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[b, j] += src[b, j]


def _is_single(a):
    """Whether a (an array of floats) is float32 (in a kernel: a compile-time constant)."""
    return np.asarray(a).dtype == np.float32


@overload(_is_single)
def _is_single_overload(a):
    is_single = isinstance(a, types.Array) and a.dtype == types.float32
    return lambda a: is_single


def _scale_by_shifted_python(p, t):
    """_scale_by_shifted without JIT (for a scalar t of float32 or float64)."""
    t = np.asarray(t)
    single = t.dtype == np.float32
    bits = int(t.view(np.int32 if single else np.int64))
    k = bits - (_F32_SHIFTER_BITS if single else _F64_SHIFTER_BITS)
    half = k >> 1
    float_type = t.dtype.type
    return float_type(float_type(p) * float_type(2.0 ** half)) * float_type(2.0 ** (k - half))


@intrinsic_or(_scale_by_shifted_python)
def _scale_by_shifted(typingctx, p, t):
    """p · 2^k, where k = (bits of t) − (bits of SHIFTER): the integer that adding SHIFTER
    left in t's low bits (see below). 2^k is applied as 2^⌊k/2⌋ · 2^(k−⌊k/2⌋), two normal
    numbers even where the result is subnormal, so that it rounds once, correctly. Integer
    work stays in t's own width (32 bits for float32), so that LLVM's vector code has no
    conversions to 64-bit lanes and back (numba's integer arithmetic would widen to int64).
    Only for k in −252..254 (float32) or −2044..2046 (float64)."""
    layouts = {types.float32: (32, 23, 127, _F32_SHIFTER_BITS),
               types.float64: (64, 52, 1023, _F64_SHIFTER_BITS)}
    if not (p == t and t in layouts):
        return None
    width, mantissa, bias, shifter_bits = layouts[t]

    def codegen(context, builder, signature, args):
        int_type = ir.IntType(width)
        float_type = context.get_value_type(t)
        k = builder.sub(builder.bitcast(args[1], int_type), int_type(shifter_bits))
        half = builder.ashr(k, int_type(1))
        rest = builder.sub(k, half)

        def power(n):
            bits = builder.shl(builder.add(n, int_type(bias)), int_type(mantissa))
            return builder.bitcast(bits, float_type)

        return builder.fmul(builder.fmul(args[0], power(half)), power(rest))

    return t(p, t), codegen


def _fma_python(a, b, c):
    """_fma without JIT: correctly rounded with math.fma (Python ≥ 3.13); else float32 as
    an exact float64 product plus c, rounded twice, and float64 as a·b + c (two roundings:
    within an ulp of the fused result)."""
    single = isinstance(a, np.float32)
    if hasattr(math, "fma"):
        value = math.fma(float(a), float(b), float(c))
    else:
        value = float(a) * float(b) + float(c)
    return np.float32(value) if single else np.float64(value)


@intrinsic_or(_fma_python)
def _fma(typingctx, a, b, c):
    """a·b + c rounded once (llvm.fma: vfmadd on CPUs with FMA). Not fastmath: an explicit
    operation, with IEEE semantics (NaN and inf propagate), which LLVM vectorises."""
    if not (a == b == c and a in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty] * 3))
        return builder.call(fn, args)

    return a(a, b, c), codegen


# e^x = 2^n · e^r with n = round(x / ln2) and r = x − n·ln2 ∈ [−ln2/2, ln2/2] (Cody–Waite:
# ln2 = LN2_HI + LN2_LO, where n·LN2_HI is exact, so r carries no cancellation error).
# Adding SHIFTER = 1.5·2^(mantissa width) rounds x/ln2 to an integer n, which then sits in
# the low bits of the sum: its bits minus SHIFTER's bits are n, with no float→int conversion
# (whose result LLVM leaves undefined for NaN). 2^n is applied as 2^⌊n/2⌋ · 2^(n−⌊n/2⌋), two
# normal numbers even where e^x is subnormal, so that the product rounds once, correctly.
# Below EXP_LOW, e^x rounds to 0: x is clamped there, which also turns −inf into a finite
# x, while NaN fails the comparison and propagates through r.
_F64_LOG2E = 1.4426950408889634
_F64_LN2_HI = 6.93147180369123816490e-01  # 0x3fe62e42fee00000: 32 trailing zero bits
_F64_LN2_LO = 1.90821492927058770002e-10
_F64_SHIFTER = 6755399441055744.0  # 1.5 · 2^52
_F64_SHIFTER_BITS = 0x4338000000000000
_F64_EXP_LOW = -746.0  # e^−746 < 2^−1075: rounds to 0
(_F64_C2, _F64_C3, _F64_C4, _F64_C5, _F64_C6, _F64_C7, _F64_C8, _F64_C9, _F64_C10, _F64_C11,
 _F64_C12, _F64_C13) = (1.0 / math.factorial(k) for k in range(2, 14))
_F32_LOG2E = np.float32(1.4426950408889634)
_F32_LN2_HI = np.float32(0.693359375)  # 0x3f318000: 15 trailing zero bits
_F32_LN2_LO = np.float32(-2.12194440e-4)
_F32_SHIFTER = np.float32(12582912.0)  # 1.5 · 2^23
_F32_SHIFTER_BITS = 0x4B400000
_F32_EXP_LOW = np.float32(-104.0)  # e^−104 < 2^−150: rounds to 0
_F32_ONE = np.float32(1.0)
_F32_C2, _F32_C3, _F32_C4, _F32_C5, _F32_C6, _F32_C7 = (
    np.float32(1.0 / math.factorial(k)) for k in range(2, 8))


def _exp_reduced_f64(x):
    """(s, t) with e^x = 2^k · (1 + s), k the integer in t (see _scale_by_shifted), for x ≤ 0
    or NaN, float64: s = e^r − 1 by Taylor to r^13 (|r| ≤ 0.347, so the truncation error is
    below 6e−18 relative), evaluated as r + r²·q(r)."""
    if x < _F64_EXP_LOW:
        x = _F64_EXP_LOW
    t = _fma(x, _F64_LOG2E, _F64_SHIFTER)
    n = t - _F64_SHIFTER
    r = _fma(-n, _F64_LN2_LO, _fma(-n, _F64_LN2_HI, x))
    q = _fma(_F64_C13, r, _F64_C12)
    q = _fma(q, r, _F64_C11)
    q = _fma(q, r, _F64_C10)
    q = _fma(q, r, _F64_C9)
    q = _fma(q, r, _F64_C8)
    q = _fma(q, r, _F64_C7)
    q = _fma(q, r, _F64_C6)
    q = _fma(q, r, _F64_C5)
    q = _fma(q, r, _F64_C4)
    q = _fma(q, r, _F64_C3)
    q = _fma(q, r, _F64_C2)
    return _fma(r * r, q, r), t


def _exp_reduced_f32(x):
    """_exp_reduced_f64 in float32: Taylor to r^7 (truncation error below 1e−8 relative)."""
    if x < _F32_EXP_LOW:
        x = _F32_EXP_LOW
    t = _fma(x, _F32_LOG2E, _F32_SHIFTER)
    n = t - _F32_SHIFTER
    r = _fma(-n, _F32_LN2_LO, _fma(-n, _F32_LN2_HI, x))
    q = _fma(_F32_C7, r, _F32_C6)
    q = _fma(q, r, _F32_C5)
    q = _fma(q, r, _F32_C4)
    q = _fma(q, r, _F32_C3)
    q = _fma(q, r, _F32_C2)
    return _fma(r * r, q, r), t


def _exp_reduced(x):
    """(s, t): e^x = 2^k · (1 + s) with k held in t; in x's precision, for x ≤ 0 or NaN."""
    return _exp_reduced_f32(x) if isinstance(x, np.float32) else _exp_reduced_f64(x)


@overload(_exp_reduced)
def _exp_reduced_overload(x):
    if x == types.float64:
        return _exp_reduced_f64
    if x == types.float32:
        return _exp_reduced_f32
    return None


def _exp_nonpositive(x):
    """e^x for x ≤ 0 (or NaN), in x's precision, within about 1 ulp; vectorisable. See the
    notes above."""
    return math.exp(x)


@overload(_exp_nonpositive)
def _exp_nonpositive_overload(x):
    def exp(x):
        s, t = _exp_reduced(x)
        return _scale_by_shifted(s + _typed(1.0, x), t)

    return exp if x in (types.float32, types.float64) else None


def _expm1_nonpositive(x):
    """e^x − 1 for x ≤ 0 (or NaN), in x's precision, accurate to a few ulp also where it
    is tiny (no cancellation: e^x − 1 = 2^k·s + (2^k − 1)); vectorisable."""
    return math.expm1(x)


@overload(_expm1_nonpositive)
def _expm1_nonpositive_overload(x):
    def expm1(x):
        s, t = _exp_reduced(x)
        one = _typed(1.0, x)
        scale = _scale_by_shifted(one, t)
        return _fma(scale, s, scale - one)

    return expm1 if x in (types.float32, types.float64) else None


# ---------------------------------------------------------------------------------------
# Element-wise pieces (inlined into the kernels)


@inline_kernel
def _softmax_into(dst, src, n, top, temperature):
    """dst[j] = e_j / Σ_{i<n} e_i with e_j = exp((src[j] − top) / T) for j < n, and 0 for
    j ≥ n up to dst's length (dst may be src): a row's masked softmax, given top ≥ its
    largest score (its max), in float64."""
    total = 0.0
    for j in range(n):
        e = _exp_nonpositive((src[j] - top) / temperature)
        dst[j] = e
        total += e
    for j in range(n):
        dst[j] = dst[j] / total
    for j in range(n, dst.shape[0]):
        dst[j] = 0.0


@kernel
def _sigmoid(a):
    """σ(a) = 1 / (1 + e^{−a}), with e^{−|a|} so that no exp overflows."""
    one = _typed(1.0, a)
    e = _exp_nonpositive(-abs(a))
    # one division and a select rather than a branch, so that the loop vectorises
    return (one if a >= 0 else e) / (one + e)


@kernel
def _tanh(a):
    """tanh(a) = (1 − e^{−2|a|}) / (1 + e^{−2|a|}) · sign(a) = −m / (2 + m) · sign(a) with
    m = e^{−2|a|} − 1: overflow-free, and without the cancellation of 1 − e^{−2|a|} near 0
    (which cost up to 40 ulp at |a| ~ 1e−3 in float32)."""
    m = _expm1_nonpositive(_typed(-2.0, a) * abs(a))
    t = -m / (_typed(2.0, a) + m)
    return t if a >= 0 else -t
