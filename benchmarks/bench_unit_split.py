"""Two cores on one LSTM layer by splitting its hidden units, not its batch rows (#18 item 3).

The measurement behind the next design step for ``--threads``. Today
(seqtool.core.parallel) a batch's rows are split into parts, each running the whole layer
on one thread. At H = 512 that scales poorly: every part multiplies its rows by the whole
W_hh (4 MB in float32) at every step, so each core streams all of W_hh from L3 per step
(a classify LSTM step, B = 32, H = 512: 22.5 ms on one thread, 20-22 on two).

This script measures the other split, MKL's way for a per-step product: part p of n owns
hidden units j ∈ [p·H/n, (p+1)·H/n), i.e. the four gate columns i_j, f_j, g_j, o_j, and so
only its H/n columns of W_hhᵀ (half of it for n = 2):

    forward, step t:   wait until every part has written h_{t} (a spin barrier);
                       A_t[:, own] = P_t[:, own] + b[own] + h_{t} W_hhᵀ[:, own];
                       own units' i, f, g, o, c_{t+1}, h_{t+1}; publish "step t done".
    backward, step t:  own units' dA_t (from δh[:, own] and δc[:, own]); barrier;
                       δh_{t−1}[:, own] = dA_t W_hh[:, own] (all of dA_t, own columns).

One barrier per step (two atomic int64 flags, acquire/release, `pause` while waiting).
Every element of every product is summed in the same order as with one part (the register
tiles sum each element in one chain over k), so the parts change no bits: the script
checks h and dA against one part, bit for bit.

Measured here: the recurrent loops only (forward from a given input projection P, and the
backward loop up to dA and δh; no products after the loop, which split by rows as today),
every sequence T steps long (``--ragged``: lengths from T/4 to T, longest first), float32, the thread for part 1 started per call as
``threading.Thread`` (included in the times). Each part's block of W_hhᵀ is made before
the timing (a real kernel would have each part gather its own, in parallel, as the one
kernel transposes W_hh per call today). For context it also times today's row split
on the same shapes: a whole layer through the public ``stack_forward`` / ``stack_backward``
(products after the loop included) on 1 and 2 threads.

    python benchmarks/bench_unit_split.py [--steps 40] [--batch 32] [--sizes 128,256,512]
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from machine import cpu_model
from seqtool.core import parallel
from seqtool.core.rnn import products
from seqtool.core.rnn.elementwise import _sigmoid, _tanh
from seqtool.core.rnn.stack import init_state_dict, stack_backward, stack_forward

FLAG_STRIDE = 16  # int64s between two parts' flags: one 128-byte line pair each


@intrinsic
def load_acquire(typingctx, flags, i):
    """flags[i], an atomic load with acquire order (the writes published before it are seen)."""
    sig = types.int64(flags, i)

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, sig.args[0], array, [args[1]])
        return builder.load_atomic(pointer, "acquire", 8)

    return sig, codegen


@intrinsic
def store_release(typingctx, flags, i, value):
    """flags[i] = value, an atomic store with release order (publishes the writes before it)."""
    sig = types.void(flags, i, value)

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, sig.args[0], array, [args[1]])
        builder.store_atomic(args[2], pointer, "release", 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def spin_pause(typingctx):
    """x86's PAUSE: a polite spin (the other hyper-thread, and power)."""
    sig = types.void()

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module,
                                            ir.FunctionType(ir.VoidType(), []),
                                            "llvm.x86.sse2.pause")
        builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, error_model="numpy")
def _barrier(flags, parts, part, value):
    """Publish ``value`` as this part's progress, then wait until every part has reached it."""
    store_release(flags, part * FLAG_STRIDE, value)
    for q in range(parts):
        while load_acquire(flags, q * FLAG_STRIDE) < value:
            spin_pause()


@njit(nogil=True, error_model="numpy")
def forward_part(part, parts, P, bias, W_part, active, h, c, gates, flags):
    """Part ``part`` of ``parts`` of the LSTM's forward loop: its units' gates, c and h
    at every step; W_part (H, 4U) holds W_hhᵀ's columns of its units, gate by gate. Rows
    from active[t] on (ended sequences, longest first) keep their states."""
    T, B, G = P.shape
    H = G // 4
    U = H // parts
    j0 = part * U
    rec = np.empty((B, 4 * U), P.dtype)
    for t in range(T):
        rows = active[t]
        if t > 0:  # h_{−1} = 0: no product at t = 0
            _barrier(flags, parts, part, t)  # every part has written h_t
            products.matmul_tiles(rec[:rows], h[t, :rows], W_part)
        else:
            rec[:] = 0.0
        for b in range(rows, B):
            h[t + 1, b, j0:j0 + U] = h[t, b, j0:j0 + U]
            c[t + 1, b, j0:j0 + U] = c[t, b, j0:j0 + U]
            for gate in range(4):
                gates[t, b, gate * H + j0:gate * H + j0 + U] = 0.0
        for b in range(rows):
            p, r, a = P[t, b], rec[b], gates[t, b]
            for gate in range(4):
                first = gate * H + j0
                pre, bias_g = p[first:first + U], bias[first:first + U]
                rec_g, out = r[gate * U:gate * U + U], a[first:first + U]
                if gate == 2:
                    for j in range(U):
                        out[j] = _tanh(rec_g[j] + (pre[j] + bias_g[j]))
                else:
                    for j in range(U):
                        out[j] = _sigmoid(rec_g[j] + (pre[j] + bias_g[j]))
            i_, f_ = a[j0:j0 + U], a[H + j0:H + j0 + U]
            g_, o_ = a[2 * H + j0:2 * H + j0 + U], a[3 * H + j0:3 * H + j0 + U]
            c_prev, c_new, h_new = c[t, b, j0:j0 + U], c[t + 1, b, j0:j0 + U], h[t + 1, b, j0:j0 + U]
            for j in range(U):
                c_j = f_[j] * c_prev[j] + i_[j] * g_[j]
                c_new[j] = c_j
                h_new[j] = o_[j] * _tanh(c_j)


@njit(nogil=True, error_model="numpy")
def backward_part(part, parts, W_hh, active, c, gates, dh, dA, carry, dc, flags):
    """Part ``part`` of the LSTM's backward loop: its units' dA_t, then its columns of
    δh_{t−1} = dA_t W_hh once every part's dA_t is written (carry and dc end as ∂L/∂h_0,
    ∂L/∂c_0 of its units; ∂L/∂c_T = 0)."""
    T, B, H = dh.shape
    U = H // parts
    j0 = part * U
    W_cols = W_hh[:, j0:j0 + U]  # (4H, U), rows of unit stride: the tiles read it in place
    carry[:, j0:j0 + U] = 0.0
    dc[:, j0:j0 + U] = 0.0
    for t in range(T - 1, -1, -1):
        rows = active[t]
        for b in range(rows, B):  # ended: δh passes through, dA = 0
            carry[b, j0:j0 + U] += dh[t, b, j0:j0 + U]
            for gate in range(4):
                dA[t, b, gate * H + j0:gate * H + j0 + U] = 0.0
        for b in range(rows):
            a, d = gates[t, b], dA[t, b]
            i_, f_ = a[j0:j0 + U], a[H + j0:H + j0 + U]
            g_, o_ = a[2 * H + j0:2 * H + j0 + U], a[3 * H + j0:3 * H + j0 + U]
            d_i, d_f = d[j0:j0 + U], d[H + j0:H + j0 + U]
            d_g, d_o = d[2 * H + j0:2 * H + j0 + U], d[3 * H + j0:3 * H + j0 + U]
            c_prev, c_t = c[t, b, j0:j0 + U], c[t + 1, b, j0:j0 + U]
            dh_b, carry_b, dc_b = dh[t, b, j0:j0 + U], carry[b, j0:j0 + U], dc[b, j0:j0 + U]
            for j in range(U):
                i, f, g, o = i_[j], f_[j], g_[j], o_[j]
                tc = _tanh(c_t[j])
                dh_t = dh_b[j] + carry_b[j]
                dc_t = dc_b[j] + dh_t * o * (1.0 - tc * tc)
                d_i[j] = dc_t * g * i * (1.0 - i)
                d_f[j] = dc_t * c_prev[j] * f * (1.0 - f)
                d_g[j] = dc_t * i * (1.0 - g * g)
                d_o[j] = dh_t * tc * o * (1.0 - o)
                dc_b[j] = dc_t * f
        _barrier(flags, parts, part, T - t)  # every part's dA_t is written
        products.matmul_tiles(carry[:rows, j0:j0 + U], dA[t, :rows], W_cols)


def unit_columns(W_hh: np.ndarray, parts: int) -> list[np.ndarray]:
    """Each part's (H, 4U) block of W_hhᵀ: its units' i, f, g, o columns."""
    H = W_hh.shape[1]
    U = H // parts
    return [np.ascontiguousarray(W_hh[np.concatenate(
        [np.arange(g * H + p * U, g * H + (p + 1) * U) for g in range(4)])].T)
        for p in range(parts)]


def run_parts(kernel, parts: int, args_of) -> None:
    """kernel(part, parts, *args_of(part), flags) on ``parts`` threads (part 0 here)."""
    flags = np.zeros(parts * FLAG_STRIDE, np.int64)
    threads = [threading.Thread(target=kernel, args=(p, parts, *args_of(p), flags))
               for p in range(1, parts)]
    for thread in threads:
        thread.start()
    kernel(0, parts, *args_of(0), flags)
    for thread in threads:
        thread.join()


def best_of(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sizes", default="128,256,512")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--ragged", action="store_true",
                        help="lengths drawn from T/4..T, longest first (as the classify and "
                        "lm benchmarks' batches), instead of T for every sequence")
    args = parser.parse_args()
    T, B = args.steps, args.batch
    lengths = np.full(B, T)
    if args.ragged:
        lengths = np.sort(np.random.default_rng(2).integers(max(1, T // 4), T + 1, B))[::-1]
        lengths[0] = T
    active = np.array([(lengths > t).sum() for t in range(T)], dtype=np.int64)
    print(cpu_model())
    print(f"LSTM, float32, T={T}, B={B}, lengths {lengths.min()}..{lengths.max()} "
          f"({lengths.sum() / (T * B):.0%} of the steps real); best of {args.repeats}; "
          f"2 parts / 1 part (time ratio; 0.5 is perfect)")
    for H in (int(v) for v in args.sizes.split(",")):
        rng = np.random.default_rng(0)
        P = rng.standard_normal((T, B, 4 * H)).astype(np.float32)
        bias = (0.1 * rng.standard_normal(4 * H)).astype(np.float32)
        W_hh = (rng.standard_normal((4 * H, H)) / np.sqrt(H)).astype(np.float32)
        dh = rng.standard_normal((T, B, H)).astype(np.float32)
        times, states = {}, {}
        for parts in (1, 2):
            h = np.zeros((T + 1, B, H), np.float32)
            c = np.zeros_like(h)
            gates = np.empty((T, B, 4 * H), np.float32)
            dA = np.empty_like(gates)
            carry, dc = np.empty((B, H), np.float32), np.empty((B, H), np.float32)

            columns = unit_columns(W_hh, parts)  # not timed: see the docstring

            def forward(parts=parts, h=h, c=c, gates=gates, columns=columns):
                run_parts(forward_part, parts,
                          lambda p: (P, bias, columns[p], active, h, c, gates))

            def backward(parts=parts, c=c, gates=gates, dA=dA, carry=carry, dc=dc):
                run_parts(backward_part, parts,
                          lambda p: (W_hh, active, c, gates, dh, dA, carry, dc))

            times[parts] = (best_of(forward, args.repeats), best_of(backward, args.repeats))
            states[parts] = (h.copy(), dA.copy(), carry.copy())
        same = all(np.array_equal(a, b) for a, b in zip(states[1], states[2]))
        (f1, b1), (f2, b2) = times[1], times[2]
        row = row_split(T, B, H, lengths, args.repeats)
        print(f"H={H:4d}  units: forward loop {f1 * 1e3:7.2f} → {f2 * 1e3:7.2f} ms "
              f"({f2 / f1:.2f}), backward loop {b1 * 1e3:7.2f} → {b2 * 1e3:7.2f} ms "
              f"({b2 / b1:.2f}), same bits: {same}; rows today (whole layer): "
              f"{row[0] * 1e3:7.2f} → {row[1] * 1e3:7.2f} ms ({row[1] / row[0]:.2f})")


def row_split(T: int, B: int, H: int, lengths: np.ndarray,
              repeats: int) -> tuple[float, float]:
    """Today's row split: stack_forward + stack_backward of a one-layer LSTM (E = 32 input)
    on 1 and 2 threads (seqtool.core.parallel)."""
    rng = np.random.default_rng(1)
    state = init_state_dict("lstm", 32, H, 1, seed=0, dtype=np.float32)
    X = rng.standard_normal((T, B, 32)).astype(np.float32)
    G = rng.standard_normal((T, B, H)).astype(np.float32)
    out = []
    for n in (1, 2):
        with parallel.threads(n):
            out.append(best_of(lambda: stack_backward(
                stack_forward("lstm", X, state, lengths=lengths), state, G), repeats))
    return out[0], out[1]


if __name__ == "__main__":
    main()
