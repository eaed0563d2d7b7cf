"""Matrix products as register tiles: C = A W for the per-step products of the recurrent
kernels, written in LLVM IR so that the accumulators stay in vector registers.

A tile is MR rows × NV vectors of C (a vector: L = register bytes / item size floats, 16
float32 with AVX-512). Its loop runs over k = 0 .. K−1:

    acc[m][v] ← fma(A[i0+m, k], W[k, j0+v·L .. j0+(v+1)·L], acc[m][v])

so each element of C is one chain of fused multiply-adds in k order (rounded once per
step, as with any FMA-based BLAS), and C is written once at the end. Per k the loop loads
NV vectors of W and MR scalars of A for MR·NV multiply-adds, with no loads or stores of C
in between: that is what numba loops over rows of C cannot express (their r[n] += a·w[n]
goes through memory each time, which held _matmul_rows4 at ~75 % of peak).

Measured on one Zen 5 core, float32, against NumPy's OpenBLAS sgemm, µs:
(32, 128) × (128, 512) 15.5 against 27; (32, 512) × (512, 128) 16 against 25;
(8, 128) × (128, 512) 4.4 against 5.6; (64, 1024) × (1024, 256) 140 against 164.

The tile shape comes from the host's vector registers (llvmlite's host CPU features, or
NUMBA_CPU_NAME / NUMBA_CPU_FEATURES when set): with 32 registers (AVX-512, NEON) a tile is
8 × 3 vectors (24 accumulators, 3 for W, 1 for the broadcast of A); with 16 (AVX2) 4 × 3.
numba's cache is keyed on the CPU, so a cache built here is not used on another machine.

A may have any strides (it is only read one element at a time, broadcast): Aᵀ of a
C-contiguous array costs nothing extra. W and C need unit stride along their rows
(checked).
Columns beyond the last full vector are handled with masked loads and stores.

Which method runs for which shape (tiles, the register-blocked loop, BLAS) is
decided by the thresholds of seqtool.core.rnn.tuning.ProductTuning, compiled in as
constants; SEQTOOL_PLAIN_PRODUCTS=1 makes every product a plain np.dot, the reference for
all the others. Without JIT (NUMBA_DISABLE_JIT=1) each tile is NumPy's product of its block.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import overload

from seqtool.core.rnn import tuning
from seqtool.core.rnn.blas import blas_product, transposed, transposed_copy
from seqtool.core.rnn.elementwise import _fma, _is_single, _typed
from seqtool.core.rnn.jit import inline_kernel, intrinsic_or, kernel
from seqtool.core.rnn.lengths import gather_rows
from seqtool.core.rnn.registers import (  # noqa: F401  (REGISTERS: benchmarks)
    OPAQUE_POINTERS, REGISTER_BYTES, REGISTERS, as_int64 as _as_int64,
    element_type as _element_type,
)


TILE_ROWS = 8 if REGISTERS >= 32 else 4  # MR of the main tile (its NV is 3)
# bytes of the strip of W (K × 3 vectors) that each tile of rows streams, per row of W (k)
STRIP_BYTES_PER_K = 3 * REGISTER_BYTES

# The thresholds that pick a method (their measured reasons: tuning.ProductTuning), as
# module constants, which numba compiles into the kernels (no per-step cost). They change
# with SEQTOOL_PRODUCT_TUNING / SEQTOOL_PLAIN_PRODUCTS in the environment of a new process.
TUNING = tuning.TUNING
PLAIN = TUNING.plain  # every product np.dot(a, w, out)
TILED_FROM_ROWS = TUNING.tiled_from_rows
TILED_STRIP_BELOW = TUNING.tiled_strip_below  # bytes, below STRIP_MANY_ROWS rows
TILED_STRIP_BELOW_128 = TUNING.tiled_strip_below_128  # bytes, from STRIP_MANY_ROWS rows on
STRIP_MANY_ROWS = 128
TILED_W_BELOW = TUNING.tiled_w_below  # bytes
BLOCKED_FEW_ROWS = TUNING.blocked_few_rows  # elements of w
ROW_W_BELOW = TUNING.row_w_below  # bytes
# below TILED_FROM_ROWS: the bytes of w below which 8-15, 16-31, 32-63, 64+ rows use tiles
W_BELOW_8, W_BELOW_16 = TUNING.tiled_w_below_8, TUNING.tiled_w_below_16
W_BELOW_32, W_BELOW_64 = TUNING.tiled_w_below_32, TUNING.tiled_w_below_64
# the products of a whole sequence (T·B rows: the input projection, ∂L/∂X) as 64+ rows
BIG_W_BELOW = TILED_W_BELOW if TILED_FROM_ROWS <= 64 else min(TILED_W_BELOW, W_BELOW_64)


def _splat(builder, value, vector_type):
    """A vector with every lane ``value``."""
    lanes = vector_type.count
    first = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value,
                                   ir.IntType(32)(0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    return builder.shuffle_vector(first, first, zeros)


def _make_tile(rows: int, vectors: int, split: int = 1):
    """The intrinsic ``tile(C, A, W, i0, j0, ncols, K)``:
    C[i0:i0+rows, j0:j0+ncols] = A[i0:i0+rows, :K] @ W[:K, j0:j0+ncols],
    for (vectors − 1)·L < ncols ≤ vectors·L: only the last vector may be partial (see the
    module docstring). ``split`` > 1 runs that many independent chains of FMAs over k.
    Without JIT: the same product by NumPy."""

    def tile_python(C, A, W, i0, j0, ncols, K):
        C[i0:i0 + rows, j0:j0 + ncols] = A[i0:i0 + rows, :K] @ W[:K, j0:j0 + ncols]

    @intrinsic_or(tile_python)
    def tile(typingctx, C, A, W, i0, j0, ncols, K):
        arrays = (C, A, W)
        if not all(isinstance(a, types.Array) and a.ndim == 2 for a in arrays):
            return None
        if not (C.dtype == A.dtype == W.dtype and _element_type(C.dtype) is not None):
            return None
        signature = types.void(C, A, W, i0, j0, ncols, K)

        def codegen(context, builder, sig, args):
            c_arg, a_arg, w_arg, i0_v, j0_v, ncols_v, k_count = args
            c_array, a_array, w_array = (
                context.make_array(ty)(context, builder, value)
                for ty, value in zip(sig.args[:3], (c_arg, a_arg, w_arg)))
            element = _element_type(sig.args[0].dtype)
            item_bytes = context.get_abi_sizeof(element)
            lanes = REGISTER_BYTES // item_bytes
            i64 = ir.IntType(64)
            i32 = ir.IntType(32)
            vector = ir.VectorType(element, lanes)
            mask_type = ir.VectorType(ir.IntType(1), lanes)
            pointer = vector.as_pointer()
            suffix = f"v{lanes}{'f32' if item_bytes == 4 else 'f64'}"
            # the pointer's part of the name: opaque "p0" from LLVM 17 on, typed before
            pointer_suffix = "p0" if OPAQUE_POINTERS else f"p0{suffix}"
            module = builder.module
            masked_load = cgutils.get_or_insert_function(
                module, ir.FunctionType(vector, [pointer, i32, mask_type, vector]),
                f"llvm.masked.load.{suffix}.{pointer_suffix}")
            masked_store = cgutils.get_or_insert_function(
                module, ir.FunctionType(ir.VoidType(), [vector, pointer, i32, mask_type]),
                f"llvm.masked.store.{suffix}.{pointer_suffix}")
            fma = cgutils.get_or_insert_function(
                module, ir.FunctionType(vector, [vector] * 3), f"llvm.fma.{suffix}")
            align = i32(item_bytes)
            zero = ir.Constant(vector, [element(0.0)] * lanes)

            i0_v, j0_v, ncols_v, k_count = (
                _as_int64(builder, v) for v in (i0_v, j0_v, ncols_v, k_count))
            size = i64(item_bytes)

            def strides(array):  # in elements
                return [builder.sdiv(s, size) for s in cgutils.unpack_tuple(builder, array.strides, 2)]

            c_row_stride = strides(c_array)[0]
            a_row_stride, a_col_stride = strides(a_array)
            w_row_stride = strides(w_array)[0]

            # lane l of the last vector is live when (vectors − 1)·L + l < ncols: only that
            # vector may be partial
            lane_index = ir.Constant(ir.VectorType(i64, lanes), [i64(n) for n in range(lanes)])
            last_mask = builder.icmp_signed("<", lane_index, _splat(
                builder, builder.sub(ncols_v, i64((vectors - 1) * lanes)),
                ir.VectorType(i64, lanes)))

            a_rows = [builder.gep(a_array.data, [builder.mul(builder.add(i0_v, i64(m)),
                                                             a_row_stride)])
                      for m in range(rows)]
            w_columns = builder.gep(w_array.data, [j0_v])

            # The main loop takes `split` values of k per pass, each into its own set of
            # accumulators (for a single row, one chain of FMAs per vector would wait on
            # the FMA latency); the sets are summed after it, and the last K mod split
            # values of k go into that sum one at a time (a loop emitted only if split > 1).
            k_main = k_count if split == 1 else builder.sub(
                k_count, builder.srem(k_count, i64(split)))
            entry = builder.block
            main = builder.append_basic_block("tile.main")
            after_main = builder.append_basic_block("tile.after_main")
            rest = builder.append_basic_block("tile.rest") if split > 1 else None
            done = builder.append_basic_block("tile.done")
            builder.cbranch(builder.icmp_signed(">", k_main, i64(0)), main, after_main)

            def update(k, sums):
                """sums[m][v] + A[i0+m, k] · W[k, j0 + v·L ...] for every m, v."""
                w_row = builder.gep(w_columns, [builder.mul(k, w_row_stride)])
                addresses = [builder.bitcast(builder.gep(w_row, [i64(v * lanes)]), pointer)
                             for v in range(vectors)]
                w_vectors = [builder.load(address, align=item_bytes)
                             for address in addresses[:-1]]
                w_vectors.append(builder.call(masked_load, [addresses[-1], align,
                                                            last_mask, zero]))
                updated = []
                for m in range(rows):
                    a_mk = builder.load(builder.gep(a_rows[m], [builder.mul(k, a_col_stride)]))
                    broadcast = _splat(builder, a_mk, vector)
                    updated.append([builder.call(fma, [broadcast, w_vectors[v], sums[m][v]])
                                    for v in range(vectors)])
                return updated

            def phis(incoming):
                """A phi per accumulator, given [(values[m][v], block), ...]."""
                out = [[builder.phi(vector) for _ in range(vectors)] for _ in range(rows)]
                for values, block in incoming:
                    for m in range(rows):
                        for v in range(vectors):
                            out[m][v].add_incoming(values[m][v], block)
                return out

            zeros = [[zero] * vectors for _ in range(rows)]
            builder.position_at_end(main)
            k = builder.phi(i64)
            k.add_incoming(i64(0), entry)
            sets = [phis([(zeros, entry)]) for _ in range(split)]
            updated_sets = [update(builder.add(k, i64(j)), sets[j]) for j in range(split)]
            k_next = builder.add(k, i64(split))
            main_end = builder.block
            k.add_incoming(k_next, main_end)
            for j in range(split):
                for m in range(rows):
                    for v in range(vectors):
                        sets[j][m][v].add_incoming(updated_sets[j][m][v], main_end)
            builder.cbranch(builder.icmp_signed("<", k_next, k_main), main, after_main)

            builder.position_at_end(after_main)
            finals = [phis([(zeros, entry), (updated_sets[j], main_end)]) for j in range(split)]
            while len(finals) > 1:  # a tree: (s0 + s1) + (s2 + s3), ...
                paired = []
                for j in range(0, len(finals) - 1, 2):
                    paired.append([[builder.fadd(finals[j][m][v], finals[j + 1][m][v])
                                    for v in range(vectors)] for m in range(rows)])
                if len(finals) % 2:
                    paired.append(finals[-1])
                finals = paired
            summed = finals[0]
            if split == 1:
                builder.branch(done)
                builder.position_at_end(done)
                results = phis([(summed, after_main)])
            else:
                builder.cbranch(builder.icmp_signed("<", k_main, k_count), rest, done)
                builder.position_at_end(rest)
                k_rest = builder.phi(i64)
                k_rest.add_incoming(k_main, after_main)
                partial = phis([(summed, after_main)])
                updated_rest = update(k_rest, partial)
                k_rest_next = builder.add(k_rest, i64(1))
                rest_end = builder.block
                k_rest.add_incoming(k_rest_next, rest_end)
                for m in range(rows):
                    for v in range(vectors):
                        partial[m][v].add_incoming(updated_rest[m][v], rest_end)
                builder.cbranch(builder.icmp_signed("<", k_rest_next, k_count), rest, done)
                builder.position_at_end(done)
                results = phis([(summed, after_main), (updated_rest, rest_end)])
            c_pointers = []
            for m in range(rows):
                c_row = builder.gep(c_array.data, [builder.add(
                    builder.mul(builder.add(i0_v, i64(m)), c_row_stride), j0_v)])
                c_pointers.append([builder.bitcast(builder.gep(c_row, [i64(v * lanes)]), pointer)
                                   for v in range(vectors)])
            # Plain stores wherever a vector is whole: a load that reads what a masked store
            # just wrote cannot take it from the store buffer and waits for the store to
            # reach the cache, which at one row per step (the recurrence reads rec right
            # away) cost more than the whole product.
            full = builder.icmp_signed("==", ncols_v, i64(vectors * lanes))

            def write(masked_last):
                for m in range(rows):
                    for v in range(vectors):
                        if masked_last and v == vectors - 1:
                            builder.call(masked_store, [results[m][v], c_pointers[m][v], align,
                                                        last_mask])
                        else:
                            builder.store(results[m][v], c_pointers[m][v], align=item_bytes)

            with builder.if_else(full) as (whole, part):
                with whole:
                    write(False)
                with part:
                    write(True)
            return context.get_dummy_value()

        return signature, codegen

    return tile


# Tiles of the main shape and of the row and column remainders.
_tile_main_3 = _make_tile(TILE_ROWS, 3)
_tile_main_2 = _make_tile(TILE_ROWS, 2)
_tile_main_1 = _make_tile(TILE_ROWS, 1)
_tile_4_3, _tile_4_2, _tile_4_1 = (_make_tile(4, v) for v in (3, 2, 1))
_tile_2_3, _tile_2_2, _tile_2_1 = (_make_tile(2, v) for v in (3, 2, 1))
_tile_1_3, _tile_1_2, _tile_1_1 = (_make_tile(1, v) for v in (3, 2, 1))


# A single row: strips of up to 4 vectors, with k split over independent accumulator sets so
# that each vector has 8 FMAs in flight (2 pipes × 4 cycles of latency).
_row_4, _row_3, _row_2, _row_1 = (_make_tile(1, v, max(2, 8 // v)) for v in (4, 3, 2, 1))


@kernel
def matmul_row(out, a, w):
    """out = a @ w for a single row a (1, K), w (K, N) and out (1, N) with contiguous rows: the
    latency-bound product of a recurrence on one sequence."""
    K = a.shape[1]
    N = w.shape[1]
    lanes = REGISTER_BYTES // out.itemsize
    j0 = 0
    while j0 < N:
        rest = N - j0
        if rest > 3 * lanes:
            ncols = min(4 * lanes, rest)
            _row_4(out, a, w, 0, j0, ncols, K)
        elif rest > 2 * lanes:
            ncols = rest
            _row_3(out, a, w, 0, j0, ncols, K)
        elif rest > lanes:
            ncols = rest
            _row_2(out, a, w, 0, j0, ncols, K)
        else:
            ncols = rest
            _row_1(out, a, w, 0, j0, ncols, K)
        j0 += ncols


# The drivers below never pass a constant to another kernel: numba compiles a kernel again
# for each constant it is called with (Literal types), and with every tile inlined each copy
# cost seconds of compile time.


@inline_kernel
def _row_plan(B):
    """Where the tiles of a strip go for B rows: (the number of main tiles, the first row
    of the last one, the first rows of up to two 4-row tiles, of up to two 2-row tiles
    and of a 1-row tile), −1 for none. The main tiles start at rows 0, TILE_ROWS, ...,
    the last one at the row given.

    Every tile sums each element of C in the same order (one FMA chain in k), so a tile
    may overlap rows another tile wrote and writes the same bits there. Each tile reads
    the whole strip of W again, so a remainder that would take two or three small tiles
    (5, 6 or 7 rows: 4 + 1, 4 + 2, 4 + 2 + 1) is one more main tile over the last
    TILE_ROWS rows, 3 rows after main tiles one 4-row tile over the last four (half the
    passes over W of a main tile: (27, 256) × (256, 1024) 164 → 151 µs, (19, 1024) ×
    (1024, 256) 112 → 109), and a last single row is a 2-row tile over the last two: a
    1-row tile is latency-bound (one FMA chain per vector). Zen 4, float32, (B, 256) ×
    (256, 1024), µs: 13 rows 118 → 75, 9 rows 86 → 72 (8 + 2 overlapping), 7 rows 107 →
    54 (4 + 4). Computed once per product (_matmul_tiles_any) and handed to every strip."""
    mains = B // TILE_ROWS
    last_main = (mains - 1) * TILE_ROWS
    four = four_b = two = two_b = one = -1
    i = mains * TILE_ROWS
    rest = B - i
    if rest == 0:
        return mains, last_main, four, four_b, two, two_b, one
    if i > 0 and rest == 3:  # a 4-row tile over the last four rows: half a main pass
        return mains, last_main, B - 4, four_b, two, two_b, one
    if i > 0 and rest != 1 and rest != 2 and rest != 4:
        return mains + 1, B - TILE_ROWS, four, four_b, two, two_b, one
    if rest >= 4:  # only when TILE_ROWS is 8 (else rest < 4)
        four = i
        i += 4
        rest -= 4
        if rest == 3:  # B = 7: 4 + 4 rather than 4 + 2 + 1
            return mains, last_main, four, B - 4, two, two_b, one
    if rest >= 2:
        two = i
        i += 2
        rest -= 2
    if rest == 1:
        if i > 0:
            two_b = B - 2
        else:
            one = i
    return mains, last_main, four, four_b, two, two_b, one


@kernel
def _strip_3(out, a, w, j0, ncols, mains, last_main, four, four_b, two, two_b, one):
    """Columns j0 .. j0+ncols−1 of out = a @ w (2L < ncols ≤ 3L), every row: tiles of
    TILE_ROWS rows, 4, 2 and 1 where _row_plan placed them."""
    K = a.shape[1]
    for m in range(mains):
        _tile_main_3(out, a, w, m * TILE_ROWS if m < mains - 1 else last_main, j0, ncols, K)
    for first in (four, four_b):
        if first >= 0:
            _tile_4_3(out, a, w, first, j0, ncols, K)
    for first in (two, two_b):
        if first >= 0:
            _tile_2_3(out, a, w, first, j0, ncols, K)
    if one >= 0:
        _tile_1_3(out, a, w, one, j0, ncols, K)


@kernel
def _strip_2(out, a, w, j0, ncols, mains, last_main, four, four_b, two, two_b, one):
    """_strip_3 for L < ncols ≤ 2L."""
    K = a.shape[1]
    for m in range(mains):
        _tile_main_2(out, a, w, m * TILE_ROWS if m < mains - 1 else last_main, j0, ncols, K)
    for first in (four, four_b):
        if first >= 0:
            _tile_4_2(out, a, w, first, j0, ncols, K)
    for first in (two, two_b):
        if first >= 0:
            _tile_2_2(out, a, w, first, j0, ncols, K)
    if one >= 0:
        _tile_1_2(out, a, w, one, j0, ncols, K)


@kernel
def _strip_1(out, a, w, j0, ncols, mains, last_main, four, four_b, two, two_b, one):
    """_strip_3 for 0 < ncols ≤ L."""
    K = a.shape[1]
    for m in range(mains):
        _tile_main_1(out, a, w, m * TILE_ROWS if m < mains - 1 else last_main, j0, ncols, K)
    for first in (four, four_b):
        if first >= 0:
            _tile_4_1(out, a, w, first, j0, ncols, K)
    for first in (two, two_b):
        if first >= 0:
            _tile_2_1(out, a, w, first, j0, ncols, K)
    if one >= 0:
        _tile_1_1(out, a, w, one, j0, ncols, K)


@inline_kernel
def matmul_tiles(out, a, w):
    """out = a @ w for a (B, K) of any strides, w (K, N) and out (B, N) with contiguous rows,
    in register tiles (_matmul_tiles_any).

    The tiles read A's strides at run time, so one compiled kernel serves every layout of
    A: ``a[::1]`` types A as numba's 'A' layout, where a C array and a transposed (F) one
    would each compile the kernel and its three strips again (~1.5 s of a first run)."""
    _matmul_tiles_any(out, a[::1], w)


@kernel
def _matmul_tiles_any(out, a, w):
    """matmul_tiles for A of numba's 'A' layout. Column strips of up to three vectors are the
    outer loop, so that a strip of w (K × 3L at most) is reused from cache by every tile of
    rows."""
    N = w.shape[1]
    if N > 1 and ((w.shape[0] > 0 and w.strides[1] != w.itemsize)
                  or (out.shape[0] > 0 and out.strides[1] != out.itemsize)):
        raise ValueError("matmul_tiles: out and w must have contiguous rows")
    # strips of at most three vectors, as even as they can be: 4 vectors as 2 + 2 rather
    # than 3 + 1 (a one-vector tile loads a broadcast of A per multiply-add; (32, 256) ×
    # (256, 64) ran at 0.89× OpenBLAS as 3 + 1)
    lanes = REGISTER_BYTES // out.itemsize
    vectors_left = (N + lanes - 1) // lanes
    strips_left = (vectors_left + 2) // 3
    # not the literal 0: numba would type the first call with Literal[int](0) and compile
    # each strip kernel a second time for it
    j0 = N - N
    mains, last_main, four, four_b, two, two_b, one = _row_plan(a.shape[0])
    while strips_left > 0:
        vectors = (vectors_left + strips_left - 1) // strips_left
        ncols = min(vectors * lanes, N - j0)
        if vectors == 3:
            _strip_3(out, a, w, j0, ncols, mains, last_main, four, four_b, two, two_b, one)
        elif vectors == 2:
            _strip_2(out, a, w, j0, ncols, mains, last_main, four, four_b, two, two_b, one)
        else:
            _strip_1(out, a, w, j0, ncols, mains, last_main, four, four_b, two, two_b, one)
        j0 += ncols
        vectors_left -= vectors
        strips_left -= 1


@inline_kernel
def _strip_fits(K, rows):
    """Whether the tiles may stream a strip of w (K × 3 vectors) for a product of ``rows``
    rows: the longer the product, the more BLAS's packing of w pays, so many rows have a
    bound of their own (TILED_STRIP_BELOW_128)."""
    if rows >= STRIP_MANY_ROWS:
        return K * STRIP_BYTES_PER_K <= TILED_STRIP_BELOW_128
    return K * STRIP_BYTES_PER_K <= TILED_STRIP_BELOW


@inline_kernel
def _tiles_fit(rows, K, N, itemsize):
    """Whether the tiles take a product of ``rows`` (usually many) rows by a (K, N) w: while
    w fits in L2 (TILED_W_BELOW, and W_BELOW_64 where the tiles lose to BLAS on many rows)
    with room for a strip of it (_strip_fits); never with PLAIN products."""
    return not PLAIN and K * N * itemsize < BIG_W_BELOW and _strip_fits(K, rows)


@inline_kernel
def tiled_product(out, a, w):
    """out = a @ w for a (B, K) of any strides (a transposed view: dAᵀ), w (K, N) and out
    (B, N) with contiguous rows, in register tiles (matmul_tiles); np.dot with PLAIN
    products."""
    if PLAIN:
        if out.shape[0] > 0:
            np.dot(a, w, out)
    else:
        matmul_tiles(out, a, w)


@kernel
def product_into(out, a, w):
    """out = a @ w for w (K, N) C-contiguous (∂L/∂X = dA W_ih): register tiles while w fits in
    cache (_tiles_fit), BLAS otherwise."""
    if _tiles_fit(a.shape[0], w.shape[0], w.shape[1], w.itemsize):
        matmul_tiles(out, a, w)
    else:
        blas_product(out, a, w)


def product(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """a @ w for 2-D arrays (M, K) × (K, N): product_into's register tiles while w fits in
    cache, BLAS beyond, when a and w are both float32 or both float64; NumPy's matmul
    otherwise. a may have any strides (a transposed view costs nothing); w is copied with
    contiguous rows if it has none (a transposed view by blas.transposed_copy). On a Zen
    4, float32, 5-15 % faster than NumPy's matmul at the shapes of a layer's products after
    the loop and of seq2seq's combine layer ((304, 512) × (512, 256): 0.80 → 0.71 ms)."""
    if not (a.dtype == w.dtype and a.dtype in (np.float32, np.float64)):
        return a @ w
    if not (w.shape[1] <= 1 or w.strides[1] == w.itemsize):
        w = transposed_copy(w.T) if w.T.flags.c_contiguous else np.ascontiguousarray(w)
    out = np.empty((a.shape[0], w.shape[1]), a.dtype)
    product_into(out, a, w)
    return out


def sum_of_outer_products(dA: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Σ_r dA_rᵀ z_r = dAᵀ Z (G·H, K) for the rows dA (R, G·H), Z (R, K) (a weight
    gradient after the loop), by :func:`product`: on a Zen 4, float32, a seq2seq LSTM's
    ∂L/∂W_hh ((1024, 304) × (304, 256)) in 1.42 ms against NumPy's 1.63, and (2048, 448)
    × (448, 512) in 8.8 against 9.8."""
    return product(dA.T, Z.astype(dA.dtype, copy=False))


def recurrent_outer_products(dA_rows: np.ndarray, h: np.ndarray,
                             rows: np.ndarray | None) -> np.ndarray:
    """∂L/∂W_hh = Σ_t dA_tᵀ h_{t−1} (G·H, H) from dA_rows, the real steps' rows of dA
    (gather_rows(dA, rows)), and the states h (T+1, B, H) with h[0] = h_{−1}: by
    :func:`sum_of_outer_products`, without step 0's rows when h_{−1} is all zero (a fresh
    sequence's state, the usual case), whose terms dA_0ᵀ 0 add nothing: one step of T
    less to multiply (at T = 12, 8 % of a seq2seq encoder's ∂L/∂W_hh)."""
    B = h.shape[1]
    states = h[:-1]
    if h.shape[0] > 1 and B and not h[0].any():
        first = B if rows is None else int(np.searchsorted(rows, B))  # step 0's rows
        dA_rows = dA_rows[first:]
        states = h[1:-1]
        rows = None if rows is None else rows[first:] - B
    return sum_of_outer_products(dA_rows, gather_rows(states, rows))


@inline_kernel
def project_into(out, a, w):
    """out = a @ wᵀ for a (M, K) and w (N, K) in torch's layout (an input projection
    X W_ihᵀ): register tiles over a contiguous copy of wᵀ while it fits in cache
    (_tiles_fit), BLAS otherwise (where the tiles, without BLAS's cache blocking, fall
    behind: (12800, 512) × (512, 2048) 188 GFLOP/s against 257 in float32). Inlined into
    the LSTM's forward kernel (no kernel of its own to compile there)."""
    if _tiles_fit(a.shape[0], w.shape[1], w.shape[0], w.itemsize):
        matmul_tiles(out, a, transposed(w))
    else:
        blas_product(out, a, w.T)


# ---------------------------------------------------------------------------------------
# The per-step product: which method for which shape



def _rows4(out, a, w):
    """out = a @ w for (B, K) × (K, N), four rows of a and four rows of w per pass.

    Each value of w loaded feeds four output rows, and each output vector loaded and stored
    takes four multiply-adds: the inner loop does 16 multiply-adds per 8 loads and 4 stores,
    enough to keep the FP pipes busy. 4 × 4 broadcast factors plus the loaded vectors just
    fit in the 32 vector registers. The multiply-adds are explicit FMAs (_fma; fastmath stays
    off, so LLVM would not fuse them itself), as r + a0·v0 + a1·v1 in one chain and a2·v2 +
    a3·v3 in another: fewer µops than separate multiplies and adds (8 % → 20 % faster per-step
    products at (32, 128) × (128, 512) and (32, 512) × (512, 128) inside the LSTM on Zen 5),
    and a shorter dependency chain through r than four chained FMAs, which were slower
    at K = 512.
    """
    B, K = a.shape
    N = w.shape[1]
    zero = _typed(0.0, out)
    K4 = K - K % 4
    B4 = B - B % 4
    for b in range(0, B4, 4):
        r0, r1, r2, r3 = out[b], out[b + 1], out[b + 2], out[b + 3]
        x0, x1, x2, x3 = a[b], a[b + 1], a[b + 2], a[b + 3]
        for n in range(N):
            r0[n] = zero
            r1[n] = zero
            r2[n] = zero
            r3[n] = zero
        for k in range(0, K4, 4):
            w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
            a00, a01, a02, a03 = x0[k], x0[k + 1], x0[k + 2], x0[k + 3]
            a10, a11, a12, a13 = x1[k], x1[k + 1], x1[k + 2], x1[k + 3]
            a20, a21, a22, a23 = x2[k], x2[k + 1], x2[k + 2], x2[k + 3]
            a30, a31, a32, a33 = x3[k], x3[k + 1], x3[k + 2], x3[k + 3]
            for n in range(N):
                v0, v1, v2, v3 = w0[n], w1[n], w2[n], w3[n]
                r0[n] = _fma(a01, v1, _fma(a00, v0, r0[n])) + _fma(a03, v3, a02 * v2)
                r1[n] = _fma(a11, v1, _fma(a10, v0, r1[n])) + _fma(a13, v3, a12 * v2)
                r2[n] = _fma(a21, v1, _fma(a20, v0, r2[n])) + _fma(a23, v3, a22 * v2)
                r3[n] = _fma(a31, v1, _fma(a30, v0, r3[n])) + _fma(a33, v3, a32 * v2)
        for k in range(K4, K):
            w_k = w[k]
            a0, a1, a2, a3 = x0[k], x1[k], x2[k], x3[k]
            for n in range(N):
                v = w_k[n]
                r0[n] = _fma(a0, v, r0[n])
                r1[n] = _fma(a1, v, r1[n])
                r2[n] = _fma(a2, v, r2[n])
                r3[n] = _fma(a3, v, r3[n])
    rest = B4
    if B - B4 >= 2:  # two rows per pass over w: at most one row streams w alone
        r0, r1 = out[B4], out[B4 + 1]
        x0, x1 = a[B4], a[B4 + 1]
        for n in range(N):
            r0[n] = zero
            r1[n] = zero
        for k in range(K):
            w_k = w[k]
            a0, a1 = x0[k], x1[k]
            for n in range(N):
                v = w_k[n]
                r0[n] = _fma(a0, v, r0[n])
                r1[n] = _fma(a1, v, r1[n])
        rest = B4 + 2
    for b in range(rest, B):
        row = out[b]
        x = a[b]
        for n in range(N):
            row[n] = zero
        for k in range(K):
            a_k = x[k]
            w_k = w[k]
            for n in range(N):
                row[n] = _fma(a_k, w_k[n], row[n])


_matmul_rows4 = kernel(_rows4)  # called by itself (tests, benchmarks)

@inline_kernel
def is_zero(a):
    """Whether every entry of the 2-D array a is 0: a zero initial state h_{−1} (a fresh
    sequence's), whose product h_{−1} W_hhᵀ is 0 and need not be computed. It skips one
    step's product of T: at B = 32, H = 512 a check costs ~2 µs, the product ~600."""
    for b in range(a.shape[0]):
        for j in range(a.shape[1]):
            if a[b, j] != 0:
                return False
    return True


@inline_kernel
def step_product(out, a, w):
    """out = a @ w for (B, K) × (K, N), by the fastest method for the shape: one row's tiles
    (matmul_row) while w is below ROW_W_BELOW; register tiles from TILED_FROM_ROWS rows on
    while a strip of w fits in cache (_strip_fits); below that, on 8 rows or more,
    tiles while w is below its band's bytes (W_BELOW_8 .. W_BELOW_64), BLAS beyond; on 2
    to 7 rows tiles while w fits in cache (TILED_W_BELOW), and always in float64; for
    large w on few rows in float32 the blocked loop (_matmul_rows4) or BLAS. out and w are
    C-contiguous. With PLAIN products (SEQTOOL_PLAIN_PRODUCTS=1): always np.dot. The
    thresholds are this machine's (seqtool.core.rnn.tuning, measured by
    seqtool.core.rnn.measure).

    (A plain loop for 2 or 3 rows of a small product was ~10 % faster than the tiles, ~70
    ns a step, but cost ~0.7 s of every first run's compile: it would take 10⁷ such steps
    to pay, so the tiles take them.)"""
    B, K = a.shape
    N = w.shape[1]
    fits = K * N * w.itemsize < TILED_W_BELOW
    if PLAIN:  # a compile-time constant: numba prunes the branch not taken
        if B > 0:
            np.dot(a, w, out)
    elif B == 1 and K * N * w.itemsize < ROW_W_BELOW:
        matmul_row(out, a, w)
    elif B >= TILED_FROM_ROWS:
        if _strip_fits(K, B):
            matmul_tiles(out, a, w)
        else:
            blas_product(out, a, w)
    elif B >= 8:
        if K * N * w.itemsize < _rows_w_below(B) and _strip_fits(K, B):
            matmul_tiles(out, a, w)
        else:
            blas_product(out, a, w)
    elif B >= 2 and (fits or not _is_single(out)):
        # float64 on 2-7 rows: the tiles at every size. BLAS's gemm packs w for a couple of
        # rows, and the tiles stream it: 2.0-2.7x faster on 2 and 4 rows at every measured
        # size on a Zen 3 (the measured bound, shared by both dtypes, is float32's, whose
        # few rows go to the blocked loop beyond it); AVX-512's defaults tile them anyway.
        matmul_tiles(out, a, w)
    elif B >= 2 and K * N >= BLOCKED_FEW_ROWS:
        _blocked_or_blas(out, a, w)
    elif B > 0:
        blas_product(out, a, w)


@inline_kernel
def _rows_w_below(B):
    """The bytes of w below which B ≥ 8 rows (fewer than TILED_FROM_ROWS) use the tiles."""
    if B >= 64:
        return W_BELOW_64
    if B >= 32:
        return W_BELOW_32
    if B >= 16:
        return W_BELOW_16
    return W_BELOW_8


def _blocked_or_blas(out, a, w):
    """out = a @ w by the blocked loop (_matmul_rows4) in float32, by BLAS in float64 (where
    the loop does not pay). The choice is made when a kernel is typed (the overload below),
    so a float64 kernel never compiles the loop (~1 s of a first run)."""
    if _is_single(out):
        _matmul_rows4(out, a, w)
    else:
        blas_product(out, a, w)


@overload(_blocked_or_blas, jit_options={"error_model": "numpy"})
def _blocked_or_blas_overload(out, a, w):
    # the loop's own body as the float32 implementation: no kernel in between to compile
    if isinstance(out, types.Array) and out.dtype == types.float32:
        return _rows4
    return lambda out, a, w: blas_product(out, a, w)
