"""Element-wise numerics for the recurrent kernels, written so that LLVM vectorises them:
σ and tanh through an exp made of plain arithmetic, in the arrays' own precision, plus the
small intrinsics they are built from (bit casts, 2^k, fused multiply-add).

The kernels in vanilla.py and gated.py inline these. numba's cache keys a kernel on its own
file only, so each of those files records the digest of this one (``INLINES``), and
tests/core/test_kernel_cache.py fails until the digest is brought up to date after an edit
here: the edit of the recorded digest is what makes numba rebuild their kernels.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from seqtool.core.rnn.jit import kernel


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


def _is_single(a):
    """Whether a (an array of floats) is float32 (in a kernel: a compile-time constant)."""
    return np.asarray(a).dtype == np.float32


@overload(_is_single)
def _is_single_overload(a):
    is_single = isinstance(a, types.Array) and a.dtype == types.float32
    return lambda a: is_single


@intrinsic
def _float_bits(typingctx, x):
    """The IEEE-754 bits of x as a signed integer of the same width (a bit cast)."""
    widths = {types.float32: types.int32, types.float64: types.int64}
    if x not in widths:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(widths[x]))

    return widths[x](x), codegen


@intrinsic
def _pow2(typingctx, k, like):
    """2^k as a float of like's type, from its bits (k + bias) << mantissa width.

    Only for k in the normal range: −126..127 (float32), −1022..1023 (float64)."""
    layouts = {types.float32: (32, 23, 127), types.float64: (64, 52, 1023)}
    if like not in layouts or not isinstance(k, types.Integer):
        return None
    width, mantissa, bias = layouts[like]

    def codegen(context, builder, signature, args):
        int_type = ir.IntType(width)
        n = args[0]
        if n.type.width > width:
            n = builder.trunc(n, int_type)
        elif n.type.width < width:
            n = builder.sext(n, int_type)
        bits = builder.shl(builder.add(n, int_type(bias)), int_type(mantissa))
        return builder.bitcast(bits, context.get_value_type(like))

    return like(k, like), codegen


@intrinsic
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
_F32_LOG2E = np.float32(1.4426950408889634)
_F32_LN2_HI = np.float32(0.693359375)  # 0x3f318000: 15 trailing zero bits
_F32_LN2_LO = np.float32(-2.12194440e-4)
_F32_SHIFTER = np.float32(12582912.0)  # 1.5 · 2^23
_F32_SHIFTER_BITS = 0x4B400000
_F32_EXP_LOW = np.float32(-104.0)  # e^−104 < 2^−150: rounds to 0
_F32_ONE = np.float32(1.0)
_F32_C2, _F32_C3, _F32_C4, _F32_C5, _F32_C6, _F32_C7 = (
    np.float32(1.0 / math.factorial(k)) for k in range(2, 8))


def _exp_nonpositive_f64(x):
    """e^x for x ≤ 0 or NaN, float64, within about 1 ulp: Taylor to r^13 (|r| ≤ 0.347, so
    the truncation error is below 6e−18 relative), evaluated as 1 + (r + r²·q(r))."""
    if x < _F64_EXP_LOW:
        x = _F64_EXP_LOW
    t = x * _F64_LOG2E + _F64_SHIFTER
    n = t - _F64_SHIFTER
    r = (x - n * _F64_LN2_HI) - n * _F64_LN2_LO
    q = 1.0 / 6227020800.0  # 1/13!
    q = q * r + 1.0 / 479001600.0
    q = q * r + 1.0 / 39916800.0
    q = q * r + 1.0 / 3628800.0
    q = q * r + 1.0 / 362880.0
    q = q * r + 1.0 / 40320.0
    q = q * r + 1.0 / 5040.0
    q = q * r + 1.0 / 720.0
    q = q * r + 1.0 / 120.0
    q = q * r + 1.0 / 24.0
    q = q * r + 1.0 / 6.0
    q = q * r + 0.5
    p = (r * r * q + r) + 1.0
    k = _float_bits(t) - _F64_SHIFTER_BITS
    half = k >> 1
    return p * _pow2(half, x) * _pow2(k - half, x)


def _exp_nonpositive_f32(x):
    """e^x for x ≤ 0 or NaN, float32, within about 1 ulp: Taylor to r^7 (truncation error
    below 1e−8 relative)."""
    if x < _F32_EXP_LOW:
        x = _F32_EXP_LOW
    t = x * _F32_LOG2E + _F32_SHIFTER
    n = t - _F32_SHIFTER
    r = (x - n * _F32_LN2_HI) - n * _F32_LN2_LO
    q = _F32_C7 * r + _F32_C6
    q = q * r + _F32_C5
    q = q * r + _F32_C4
    q = q * r + _F32_C3
    q = q * r + _F32_C2
    p = (r * r * q + r) + _F32_ONE
    k = _float_bits(t) - _F32_SHIFTER_BITS
    half = k >> 1
    return p * _pow2(half, x) * _pow2(k - half, x)


def _exp_nonpositive(x):
    """e^x for x ≤ 0 (or NaN), in x's precision; vectorisable. See the notes above."""
    return math.exp(x)


@overload(_exp_nonpositive)
def _exp_nonpositive_overload(x):
    if x == types.float64:
        return _exp_nonpositive_f64
    if x == types.float32:
        return _exp_nonpositive_f32
    return None


# ---------------------------------------------------------------------------------------
# Element-wise pieces (inlined into the kernels)


@kernel
def _sigmoid(a):
    """σ(a) = 1 / (1 + e^{−a}), with e^{−|a|} so that no exp overflows."""
    one = _typed(1.0, a)
    e = _exp_nonpositive(-abs(a))
    # one division and a select rather than a branch, so that the loop vectorises
    return (one if a >= 0 else e) / (one + e)


@kernel
def _tanh(a):
    """tanh(a) = (1 − e^{−2|a|}) / (1 + e^{−2|a|}) · sign(a), overflow-free."""
    one = _typed(1.0, a)
    e = _exp_nonpositive(_typed(-2.0, a) * abs(a))
    t = (one - e) / (one + e)
    return t if a >= 0 else -t
