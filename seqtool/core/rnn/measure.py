"""This machine's product methods, measured: which one computes a per-step product fastest
for which shape, turned into the thresholds of seqtool.core.rnn.tuning.ProductTuning.

The methods (seqtool.core.rnn.products): the register tiles, the register-blocked loop of
a few rows (float32), a single row's tiles, and BLAS (seqtool.core.rnn.blas.blas_product,
what the kernels call). Each is timed inside a numba loop of calls, as the kernels call it,
on the shapes of LSTM steps, in float32 (training's dtype) and float64; a method's time is the
best of several blocks of calls. From those:

- ``tiled_from_rows``: the fewest rows B₀ (of 8 .. 64) such that the tiles beat BLAS by
  10 % at every measured B ≥ B₀ and every size (NEVER if they never do: 16-register machines,
  whose 4-row tiles fall behind BLAS as rows grow);
- ``tiled_w_below_8`` .. ``_64``: else, for 8, 16, 32 and 64 rows, the size (bytes) of the
  smallest weights from which the tiles do not beat BLAS by 10 % (MANY_ROWS_MARGIN) at
  that size or any larger one;
- ``tiled_w_below``: for 2 and 4 rows, the size (bytes) of the smallest weights from which
  the tiles lose to BLAS at every larger size too: below it they take the product;
- ``row_w_below``: the same for a single row (its own tiles against BLAS);
- ``blocked_few_rows``: for 2 and 4 rows from ``tiled_w_below`` on, the smallest weights
  (elements) from which the blocked loop beats BLAS at every larger measured size;
- ``tiled_strip_below``: from the backward pass's ∂h = dA W_hh (K = 4H, STRIP_WEIGHTS) on
  8 to 64 rows, the longest strip of W up to which the tiles take the product
  (:func:`strip_below`); ``tiled_strip_below_128`` the same on 128 rows (STRIP_MANY_ROWS),
  where BLAS's packing of W pays back sooner.

The tiles are chosen only where they win in both dtypes (the dtypes share the thresholds);
the blocked loop is float32's alone.

``seqtool compile`` runs :func:`measure` in a process of its own, on an otherwise idle
machine, and stores the result beside numba's cache (seqtool.core.rnn.tuning.store).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from seqtool.core.rnn import products
from seqtool.core.rnn.blas import blas_product
from seqtool.core.rnn.jit import kernel

NEVER = 1 << 40

# (K, N) of per-step products: h W_hhᵀ of LSTM layers of H = 32 .. 512
WEIGHTS = [(32, 128), (64, 256), (128, 512), (256, 1024), (512, 2048)]
# ... and ∂h = dA W_hh of the backward pass (K = 4H), whose long strips of W (K × 3
# vectors) decide tiled_strip_below: H = 128, 256, 384 and 512
STRIP_WEIGHTS = [(512, 128), (1024, 256), (1536, 384), (2048, 512)]
MANY_ROWS = (8, 16, 32, 64)
STRIP_MANY_ROWS = (products.STRIP_MANY_ROWS,)  # the rows of tiled_strip_below_128
FEW_ROWS = (2, 4)
METHODS = ("tiles", "blocked", "row", "blas")
MANY_ROWS_MARGIN = 0.9


# One kernel per method, alike on purpose: a kernel that chose the method by a flag would
# compile every method for each dtype it times (the float32-only blocked loop in float64
# too), ~1 s more of seqtool compile's first run.
@kernel
def _repeat_tiles(out, a, w, n):
    for _ in range(n):
        products.matmul_tiles(out, a, w)


@kernel
def _repeat_blocked(out, a, w, n):
    for _ in range(n):
        products._matmul_rows4(out, a, w)


@kernel
def _repeat_row(out, a, w, n):
    for _ in range(n):
        products.matmul_row(out, a, w)


@kernel
def _repeat_blas(out, a, w, n):
    for _ in range(n):
        blas_product(out, a, w)


_REPEAT = {"tiles": _repeat_tiles, "blocked": _repeat_blocked, "row": _repeat_row,
           "blas": _repeat_blas}


def seconds_per_call(method: str, B: int, K: int, N: int, dtype: Any,
                     budget: float = 0.004) -> float:
    """The best of 5 blocks of calls of ``method`` on (B, K) × (K, N), each ~budget / 5 s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((B, K)).astype(dtype)
    w = rng.standard_normal((K, N)).astype(dtype)
    out = np.empty((B, N), dtype)
    repeat = _REPEAT[method]
    repeat(out, a, w, 1)
    start = time.perf_counter()
    repeat(out, a, w, 2)
    one = max((time.perf_counter() - start) / 2, 1e-8)
    calls = max(1, int(budget / 5 / one))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        repeat(out, a, w, calls)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def _timings(dtype: Any, progress: Callable[[], None] | None) -> dict[tuple, dict[str, float]]:
    """{(B, K, N): {method: seconds}} for every shape measured, in ``dtype``."""
    single = np.dtype(dtype) == np.float32
    out: dict[tuple, dict[str, float]] = {}
    shapes = [(B, K, N) for B in (1, *FEW_ROWS, *MANY_ROWS) for K, N in WEIGHTS]
    shapes += [(B, K, N) for B in (*MANY_ROWS, *STRIP_MANY_ROWS) for K, N in STRIP_WEIGHTS]
    for B, K, N in shapes:
        methods = ["row", "blas"] if B == 1 else ["tiles", "blas"]
        if B in FEW_ROWS and single:
            methods.append("blocked")  # the loop serves float32 only (products._blocked_or_blas)
        out[(B, K, N)] = {m: seconds_per_call(m, B, K, N, dtype) for m in methods}
        if progress is not None:
            progress()
    return out


def _bytes(K: int, N: int, dtype_name: str) -> int:
    return K * N * np.dtype(dtype_name).itemsize


def _start_of_run(items, holds) -> Any:
    """The first of ``items`` (in increasing order) from which ``holds(item)`` is true for
    it and every later item; NEVER if it is false for the last."""
    first = NEVER
    for item in reversed(items):
        if not holds(item):
            break
        first = item
    return first


def decide(timings: dict[str, dict[tuple, dict[str, float]]]) -> dict[str, int]:
    """The thresholds the timings of both dtypes ({dtype name: _timings}) ask for."""
    def faster(method: str, rival: str, shapes) -> bool:  # in every dtype, at every shape
        return all(t[shape][method] < MANY_ROWS_MARGIN * t[shape][rival]
                   for t in timings.values() for shape in shapes)

    def from_rows(method: str, rival: str) -> int:
        """The fewest of MANY_ROWS rows from which ``method`` beats ``rival`` at every
        larger measured count and every size (NEVER if it never does)."""
        return _start_of_run(sorted(MANY_ROWS),
                             lambda B: faster(method, rival, [(B, K, N) for K, N in WEIGHTS]))

    def below(method: str, rows: tuple[int, ...], margin: float = 1.0) -> int:
        """Bytes of weights below which ``method`` takes ``rows`` rows rather than BLAS: in
        each dtype the size of the smallest weights from which it no longer beats BLAS (by
        ``margin``: its time below margin × BLAS's) at that size or any larger one (NEVER
        if it beats BLAS at the largest); the smaller of the two dtypes' sizes.

        BLAS takes over only where it keeps winning: a machine whose BLAS ties with the
        tiles on small weights but falls far behind them on large ones (Zen 4 with AVX-512:
        (8, 256) × (256, 1024) in 37 µs by the tiles, 147 by OpenBLAS) keeps the tiles
        throughout, rather than sending every weight from the first tie on to BLAS."""
        limits = []
        for name, t in timings.items():
            first = _start_of_run(WEIGHTS, lambda KN: not all(
                t[(B, *KN)][method] < margin * t[(B, *KN)]["blas"] for B in rows))
            limits.append(NEVER if first == NEVER else _bytes(*first, name))
        return min(limits)

    tiled_from_rows = from_rows("tiles", "blas")
    # On 8+ rows the tiles must win by 10 %: timed alone they have the caches to
    # themselves, inside a recurrent kernel they share them with the step's other arrays
    # (LSTM (100, 32, 64): tiles at 0.94× BLAS's time alone made the layer 1.2× slower);
    # the margin also keeps near-ties from flipping from one measurement to the next.
    bands = {f"tiled_w_below_{B}": below("tiles", (B,), MANY_ROWS_MARGIN) for B in MANY_ROWS}
    tiled_w_below = below("tiles", FEW_ROWS)
    row_w_below = below("row", (1,))
    tiled_strip_below = strip_below(timings)
    tiled_strip_below_128 = strip_below(timings, STRIP_MANY_ROWS)
    f32 = timings["float32"]  # the blocked loop serves float32 only
    first = _start_of_run(WEIGHTS, lambda KN: _bytes(*KN, "float32") >= tiled_w_below and all(
        f32[(B, *KN)]["blocked"] < f32[(B, *KN)]["blas"] for B in FEW_ROWS))
    blocked_few_rows = NEVER if first == NEVER else first[0] * first[1]
    return {"tiled_from_rows": int(tiled_from_rows), **bands,
            "tiled_w_below": int(tiled_w_below), "row_w_below": int(row_w_below),
            "blocked_few_rows": int(blocked_few_rows),
            "tiled_strip_below": int(tiled_strip_below),
            "tiled_strip_below_128": int(tiled_strip_below_128)}


def strip_bytes(K: int) -> int:
    """The bytes of a strip of W the tiles stream for each tile of rows: K × 3 vectors."""
    return K * products.STRIP_BYTES_PER_K


def strip_below(timings: dict[str, dict[tuple, dict[str, float]]],
                rows: tuple[int, ...] = MANY_ROWS) -> int:
    """tiled_strip_below (``rows`` MANY_ROWS) or tiled_strip_below_128 (STRIP_MANY_ROWS):
    the bytes of strip (:func:`strip_bytes`) up to which the tiles take products of those
    rows. A K of STRIP_WEIGHTS counts as the tiles' when, in each dtype, their time summed
    over the row counts is below BLAS's: one bound serves every row count, and what a layer
    pays is the sum (Zen 4, float32: 1.25-2.5× faster than OpenBLAS at K = 2048 on 8-64
    rows, but float64 on 64 rows only 1.05×). The bound is the strip of the largest K
    below the first from which they lose at every larger K too, and never beyond the
    largest K measured: a strip that outgrows L2 was not timed. Tiles that lose from the
    smallest K on keep the strips below it."""
    def tiles_win(KN) -> bool:
        return all(sum(t[(B, *KN)]["tiles"] for B in rows)
                   < sum(t[(B, *KN)]["blas"] for B in rows) for t in timings.values())

    first = _start_of_run(STRIP_WEIGHTS, lambda KN: not tiles_win(KN))
    if first == NEVER:
        return strip_bytes(STRIP_WEIGHTS[-1][0])
    return strip_bytes(first[0]) - 1


def measure(progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Time every method at every shape in both dtypes and decide the thresholds:
    {"tuning": {field: value}, "timings": [...], "seconds": s}."""
    started = time.perf_counter()
    per_dtype = (len(WEIGHTS) * (1 + len(FEW_ROWS) + len(MANY_ROWS))
                 + len(STRIP_WEIGHTS) * (len(MANY_ROWS) + len(STRIP_MANY_ROWS)))
    total, done = 2 * per_dtype, [0]

    def step() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    timings = {name: _timings(np.dtype(name), step) for name in ("float32", "float64")}
    table = [{"dtype": name, "shape": list(shape),
              **{m: round(s * 1e6, 3) for m, s in methods.items()}}
             for name, rows in timings.items() for shape, methods in rows.items()]
    return {"tuning": decide(timings), "timings_us": table,
            "seconds": round(time.perf_counter() - started, 2)}
