"""The per-step matrix products of the recurrent kernels: seqtool's register tiles
(seqtool.core.rnn.products) against NumPy's BLAS and torch.mm, on one thread.

Each shape is out = a @ w with a (B, K), w (K, N): the products a recurrence runs once per
step, h_{t−1} W_hhᵀ ((B, H) × (H, G·H)) and dA_t W_hh ((B, G·H) × (G·H, H)) for the LSTM
(G = 4), plus single rows (B = 1, one sequence). The seqtool column calls step_product,
the method the kernels use for that shape, from inside a numba loop (as the kernels do: a
call from Python would add ~0.3 µs of dispatch); NumPy and torch are timed from Python
(np.dot / torch.mm into a given output), the least either costs per call.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_products.py
        [--dtypes float32,float64] [--budget 0.2]

No goals here: the goals are those of bench_rnn.py and bench_train.py, which these
products serve. This script shows where the tiles win and by how much.
"""

from __future__ import annotations

import os
import sys

for _var in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from numba import njit  # noqa: E402

from machine import blas_report  # noqa: E402  (benchmarks/machine.py)
from seqtool.core.rnn import products  # noqa: E402

torch.set_num_threads(1)

# (B, K, N): LSTM steps at H = 16, 32, 64, 128, 256, 512 on one row and on 32 or 64 rows
SHAPES = [(1, 16, 64), (1, 64, 16), (1, 64, 256), (1, 256, 64),
          (8, 128, 512), (32, 32, 128), (32, 128, 32), (32, 64, 256), (32, 256, 64),
          (32, 128, 512), (32, 512, 128), (64, 256, 1024), (64, 1024, 256),
          (128, 512, 2048), (128, 2048, 512)]


@njit(cache=True)
def _repeat_step_product(out, a, w, n):
    for _ in range(n):
        products.step_product(out, a, w)


def _seconds_per_call(run, budget: float) -> float:
    """The best of several timed batches of calls, each about budget / 5 seconds."""
    run(1)
    start = time.perf_counter()
    run(1)
    one = max(time.perf_counter() - start, 1e-7)
    n = max(1, int(budget / 5 / one))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        run(n)
        best = min(best, (time.perf_counter() - start) / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--budget", type=float, default=0.2,
                        help="seconds per shape and implementation")
    args = parser.parse_args()
    print("\n".join(blas_report()))
    print(f"tiles: {products.REGISTER_BYTES}-byte vectors, {products.REGISTERS} registers, "
          f"{products.TILE_ROWS}-row tiles")
    print(f"{'dtype':8} {'B,K,N':>15} {'seqtool µs':>11} {'numpy µs':>9} {'torch µs':>9} "
          f"{'seq GF/s':>9} {'numpy/seq':>9} {'torch/seq':>9}")
    rng = np.random.default_rng(0)
    for name in args.dtypes.split(","):
        dtype = np.dtype(name)
        for B, K, N in SHAPES:
            a = rng.normal(size=(B, K)).astype(dtype)
            w = rng.normal(size=(K, N)).astype(dtype)
            out = np.empty((B, N), dtype)
            products.step_product(out, a, w)
            error = np.abs(out - a.astype(np.float64) @ w).max() / np.abs(a @ w).max()
            if error > (1e-5 if dtype == np.float32 else 1e-12):
                sys.exit(f"step_product disagrees with NumPy at {(B, K, N)}: {error:.2e}")
            seq = _seconds_per_call(lambda n: _repeat_step_product(out, a, w, n),
                                    args.budget)

            def numpy_calls(n):
                for _ in range(n):
                    np.dot(a, w, out)

            at, wt, ot = torch.from_numpy(a), torch.from_numpy(w), torch.from_numpy(out)

            def torch_calls(n):
                for _ in range(n):
                    torch.mm(at, wt, out=ot)

            blas = _seconds_per_call(numpy_calls, args.budget)
            tmm = _seconds_per_call(torch_calls, args.budget)
            flops = 2 * B * K * N
            print(f"{name:8} {f'{B},{K},{N}':>15} {seq * 1e6:11.2f} {blas * 1e6:9.2f} "
                  f"{tmm * 1e6:9.2f} {flops / seq / 1e9:9.1f} {blas / seq:8.2f}x "
                  f"{tmm / seq:8.2f}x")


if __name__ == "__main__":
    main()
