"""wᵀ as a new C-contiguous array, in square blocks of L × L elements (L: a vector
register's lanes, 16 float32 with AVX-512) transposed in registers: the W_hhᵀ that an RNN
layer's forward pass forms once per call (its per-step products read W_hhᵀ by rows).

A block's L rows are loaded as L vectors, transposed by log₂ L rounds of two-vector
shuffles (round d exchanges bit d of the row and of the column index: element (i, j | d)
with (i | d, j) for rows i and columns j whose bit d is clear), and stored as L rows of
the result. OpenBLAS's ?omatcopy, which the kernels used before, moves one element at a
time: on a Zen 4, float32, a (1024, 256) W_hh took 61 µs with both in L2 and 95-200 µs in
a training step, where W_hh comes from L3 or memory; a plain copy of it takes 23 and 36.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types

from seqtool.core.rnn.jit import inline_kernel, intrinsic_or, kernel
from seqtool.core.rnn.registers import REGISTER_BYTES, as_int64, element_type


def _block_python(dst, src, i0, j0):
    """_block without JIT: the same block by NumPy."""
    lanes = REGISTER_BYTES // src.itemsize
    dst[j0:j0 + lanes, i0:i0 + lanes] = src[i0:i0 + lanes, j0:j0 + lanes].T


@intrinsic_or(_block_python)
def _block(typingctx, dst, src, i0, j0):
    """dst[j0 + c, i0 + r] = src[i0 + r, j0 + c] for r, c < L: one block, in registers.
    Both arrays need unit stride along their rows (checked by the caller)."""
    if not all(isinstance(a, types.Array) and a.ndim == 2 for a in (dst, src)):
        return None
    if not (dst.dtype == src.dtype and element_type(src.dtype) is not None):
        return None
    signature = types.void(dst, src, i0, j0)

    def codegen(context, builder, sig, args):
        dst_arg, src_arg, i0_v, j0_v = args
        dst_array, src_array = (context.make_array(ty)(context, builder, value)
                                for ty, value in zip(sig.args[:2], (dst_arg, src_arg)))
        element = element_type(sig.args[0].dtype)
        item_bytes = context.get_abi_sizeof(element)
        lanes = REGISTER_BYTES // item_bytes
        i64, i32 = ir.IntType(64), ir.IntType(32)
        vector = ir.VectorType(element, lanes)
        pointer = vector.as_pointer()
        size = i64(item_bytes)
        i0_v, j0_v = as_int64(builder, i0_v), as_int64(builder, j0_v)

        def row_stride(array):  # in elements
            return builder.sdiv(builder.extract_value(array.strides, 0), size)

        src_stride, dst_stride = row_stride(src_array), row_stride(dst_array)
        rows = []
        for r in range(lanes):
            start = builder.add(builder.mul(builder.add(i0_v, i64(r)), src_stride), j0_v)
            rows.append(builder.load(builder.bitcast(builder.gep(src_array.data, [start]),
                                                     pointer), align=item_bytes))
        d = 1
        while d < lanes:
            low = ir.Constant(ir.VectorType(i32, lanes),
                              [j if not j & d else lanes + j - d for j in range(lanes)])
            high = ir.Constant(ir.VectorType(i32, lanes),
                               [lanes + j if j & d else j + d for j in range(lanes)])
            exchanged = list(rows)
            for i in range(lanes):
                if not i & d:
                    exchanged[i] = builder.shuffle_vector(rows[i], rows[i + d], low)
                    exchanged[i + d] = builder.shuffle_vector(rows[i], rows[i + d], high)
            rows = exchanged
            d *= 2
        for c in range(lanes):
            start = builder.add(builder.mul(builder.add(j0_v, i64(c)), dst_stride), i0_v)
            builder.store(rows[c], builder.bitcast(builder.gep(dst_array.data, [start]),
                                                   pointer), align=item_bytes)
        return context.get_dummy_value()

    return signature, codegen


@kernel
def transpose_into(dst, src):
    """dst = srcᵀ for src (R, C) and dst (C, R), both with unit stride along their rows:
    the whole blocks of L × L in registers (:func:`_block`), the edges one element at a
    time. A transpose only moves values: the result is exact."""
    R, C = src.shape
    lanes = REGISTER_BYTES // src.itemsize
    R_blocks = R - R % lanes
    C_blocks = C - C % lanes
    for i0 in range(0, R_blocks, lanes):
        for j0 in range(0, C_blocks, lanes):
            _block(dst, src, i0, j0)
        for i in range(i0, i0 + lanes):
            for j in range(C_blocks, C):
                dst[j, i] = src[i, j]
    for i in range(R_blocks, R):
        for j in range(C):
            dst[j, i] = src[i, j]


@inline_kernel
def transposed_by_blocks(w):
    """wᵀ (C, R) as a new C-contiguous array, for w (R, C) float32 or float64 with unit
    stride along its rows (:func:`transpose_into`); any other w by NumPy's copy."""
    rows, cols = w.shape
    if rows == 0 or cols == 0 or not (cols == 1 or w.strides[1] == w.itemsize):
        return np.ascontiguousarray(w.T)
    out = np.empty((cols, rows), w.dtype)
    # w[::1]: numba's 'A' layout whatever w's, so that one compiled transpose_into per
    # dtype serves C arrays and slices alike (the blocks read the strides at run time)
    transpose_into(out, w[::1])
    return out
