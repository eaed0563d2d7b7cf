"""RNN, GRU and LSTM forward + full BPTT: seqtool's numba kernels against torch.nn + autograd.

Workload, the same for both, on one thread: forward over X (T, B, D), then the backward pass
of L = Σ_t ⟨h_t, G_t⟩ for a fixed random G (T, B, H), computing the gradients of W_xh, W_hh,
b_h, h_0 and X.

    seqtool: h = rnn_forward(X, W_xh, W_hh, b_h, h0, "tanh")
             rnn_backward(X, W_xh, W_hh, h, G, "tanh")
    torch:   out, _ = rnn(X, h0); out.backward(G)          (X and h0 require grad;
             grads set to None between repeats)

Both use the same weights: those of torch.nn.RNN(D, H, nonlinearity="tanh"), with
W_xh = weight_ih_l0, W_hh = weight_hh_l0 and b_h = bias_ih_l0 + bias_hh_l0.

--cells gru,lstm (default: rnn,gru,lstm) runs the same workload for the gated cells:
    seqtool: r = gated.lstm_forward(X, W_ih, W_hh, b_ih, b_hh, h0, c0)
             gated.lstm_backward(X, W_ih, W_hh, r, G)            (likewise gru_*)
    torch:   out, _ = lstm(X, (h0, c0)); out.backward(G)
with torch.nn.LSTM / GRU's own weights. Their FLOP count is G times the vanilla one
(G = 3 gates for GRU, 4 for LSTM). Goals for the gated cells: ≥ 10× at (50,1,16), ≥ 1.0×
at every other size (the matmul ceiling goal is the vanilla cell's).

FLOP count (multiply-adds count 2, element-wise work ignored), with N = T·B:
    forward:  2·N·D·H (input projection) + 2·N·H·H (recurrence)        = 2·N·H·(D + H)
    backward: 2·N·H·H (recurrence dz_t W_hh) + 2·N·H·H (dW_hh)
              + 2·N·D·H (dW_xh) + 2·N·D·H (dX)                           = 4·N·H·(D + H)
    total:    6·T·B·H·(D + H)   (= 12·T·B·H² when D = H)

The ceiling is NumPy's matmul on one core at the (100, 128, 512) shape, as one product
(T·B, H) @ (H, H) = (12800, 512) @ (512, 512), per dtype. The peak, NumPy's matmul of two
2048 × 2048 matrices on one core, bounds every ratio: both sides do the same products, so
seqtool running them all at the peak would take FLOPs / peak, and torch/seqtool can be at
most peak / (torch's GFLOP/s) (with --threads N: N · peak). The goals print that bound
beside each ratio ("at most"): where torch itself runs near the peak, a goal above the
bound cannot be met on that machine by any kernel that is not faster than its BLAS's best.

On machines that set OPENBLAS_CORETYPE (this workplace sets Haswell on AVX-512 CPUs, so
that old OpenBLAS builds do not crash), NumPy and SciPy run AVX2 kernels while torch's MKL
runs AVX-512 ones; run ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python
benchmarks/bench_rnn.py`` to compare like with like (the header says which kernels run).

Goals (torch time / seqtool time, per dtype): rnn ≥ 25×, gru ≥ 20×, lstm ≥ 12× at
(50,1,16); rnn ≥ 2× at (100,32,32); the LSTM ≥ 1.2× at every other size of #18's table and
(100,128,512); ≥ 1.0× everywhere else; and seqtool ≥ 60 % of NumPy's matmul GFLOP/s at
(100,128,512).

By default seqtool runs through the public stack functions training calls
(seqtool.core.rnn.stack.stack_forward / stack_backward, torch's state dict, a Workspace
kept across calls); --through kernels times the cells' own functions as below. With
--threads N both sides run N threads (seqtool splits each batch's rows). The header
prints the CPU model and the product tuning in force (run `seqtool compile` first for
this machine's own, seqtool.core.rnn.measure).

    python benchmarks/bench_rnn.py [--sizes "50,1,16;100,32,32"] [--dtypes float64]
                                   [--repeats N] [--budget 1.0] [--block-ms 20]
                                   [--fresh-cache] [--module path/to/alternative.py]

Timing: every sample is a block of back-to-back calls of one implementation lasting about
--block-ms (at least one call), divided by its number of calls; blocks of seqtool and torch
alternate, so that drift hits both alike, and each cell reports the median over its blocks.
--block-ms 0 times single calls, alternating seqtool and torch call by call: then each call
starts with caches the other one has just evicted, which costs a ~30 µs call far more than a
~1 ms one (a cold-start latency, not steady-state throughput). --repeats fixes the number of
blocks; by default it is chosen so that each cell (one implementation, one size, one dtype)
takes about --budget seconds, at least 3. time.perf_counter throughout.

First calls: the very first forward + backward per dtype is timed before any warm-up, on a
tiny problem, with numba's cache hits and misses for it. It includes numba's one-time start-up
(LLVM, the BLAS bindings) in the first dtype. --fresh-cache points NUMBA_CACHE_DIR at a new
temporary folder, so that the first calls show the compile time of a machine without a cache.

--module benchmarks a drop-in alternative to seqtool.core.rnn.vanilla (same rnn_forward and
rnn_backward), e.g. an experimental copy of the kernels.
"""

from __future__ import annotations

import os
import sys
import tempfile

for _var in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
if "--fresh-cache" in sys.argv:  # before numba is imported
    import atexit
    import shutil

    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_rnn_numba_")
    atexit.register(shutil.rmtree, os.environ["NUMBA_CACHE_DIR"], ignore_errors=True)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import inspect  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from machine import blas_report, cpu_model, peak_gflops  # noqa: E402  (benchmarks/machine.py)

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:  # already set
    pass

DEFAULT_SIZES = "50,1,16;100,32,32;100,32,64;100,32,128;200,64,256;100,128,512;1000,1,64"
CEILING_SIZE = (100, 128, 512)
RATIO_GOALS = {  # per cell; every other size: 1.0
    "rnn": {(50, 1, 16): 25.0, (100, 32, 32): 2.0},
    "gru": {(50, 1, 16): 20.0},
    "lstm": {(50, 1, 16): 12.0, (100, 32, 64): 1.2, (100, 32, 128): 1.2,
             (200, 64, 256): 1.2, (100, 128, 512): 1.2},
}
CELL_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
DEFAULT_RATIO_GOAL = 1.0
CEILING_GOAL = 0.60
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}  # max relative error flagged above this


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_sizes(text: str) -> list[tuple[int, int, int]]:
    sizes = []
    for part in text.split(";"):
        if part.strip():
            t, b, d = (int(v) for v in part.split(","))
            sizes.append((t, b, d))
    return sizes


def flops(T: int, B: int, D: int, H: int, cell: str = "rnn") -> float:
    return 6.0 * CELL_GATES[cell] * T * B * H * (D + H)


# ---------------------------------------------------------------------------------------
# Import and first call (compile or cache load)


def import_seqtool(module_path: str | None):
    start = time.perf_counter()
    from seqtool.core.rnn import jit, vanilla

    if module_path:
        import importlib.util

        name = os.path.splitext(os.path.basename(module_path))[0]
        sys.path.insert(0, os.path.dirname(os.path.abspath(module_path)))
        spec = importlib.util.spec_from_file_location(name, module_path)
        vanilla = importlib.util.module_from_spec(spec)
        sys.modules[name] = vanilla
        spec.loader.exec_module(vanilla)
    return jit, vanilla, time.perf_counter() - start


def dispatchers(module) -> dict:
    """The numba kernels defined in ``module``, by name."""
    from numba.core.registry import CPUDispatcher

    return {name: obj for name, obj in vars(module).items()
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__}


def cache_index_exists(jit, module, name: str, dispatcher) -> bool:
    """seqtool.core.rnn.jit.is_cached, whichever of its signatures this checkout has."""
    try:
        return bool(jit.is_cached(dispatcher))
    except TypeError:
        return bool(jit.is_cached(module.__file__, name))


def first_call(jit, vanilla, dtype: np.dtype) -> dict:
    """Time the very first forward + backward call for ``dtype`` on a tiny problem."""
    kernels = dispatchers(vanilla)
    index_before = {name: cache_index_exists(jit, vanilla, name, k) for name, k in kernels.items()}
    hits_before = {name: sum(k.stats.cache_hits.values()) for name, k in kernels.items()}
    misses_before = {name: sum(k.stats.cache_misses.values()) for name, k in kernels.items()}
    rng = np.random.default_rng(0)
    T, B, D, H = 3, 2, 4, 4
    X = rng.standard_normal((T, B, D)).astype(dtype)
    W_xh = (0.3 * rng.standard_normal((H, D))).astype(dtype)
    W_hh = (0.3 * rng.standard_normal((H, H))).astype(dtype)
    b_h = np.zeros(H, dtype)
    h0 = np.zeros((B, H), dtype)
    G = rng.standard_normal((T, B, H)).astype(dtype)
    start = time.perf_counter()
    h = vanilla.rnn_forward(X, W_xh, W_hh, b_h, h0, "tanh")
    t_fwd = time.perf_counter() - start
    start = time.perf_counter()
    vanilla.rnn_backward(X, W_xh, W_hh, h, G, "tanh")
    t_bwd = time.perf_counter() - start
    result = {"forward_s": t_fwd, "backward_s": t_bwd, "kernels": {}}
    for name, k in kernels.items():
        hits = sum(k.stats.cache_hits.values()) - hits_before[name]
        misses = sum(k.stats.cache_misses.values()) - misses_before[name]
        if hits or misses:  # only the kernels this call dispatched to from Python
            result["kernels"][name] = {"index_existed": index_before[name], "hits": hits,
                                       "misses": misses}
    return result


# ---------------------------------------------------------------------------------------
# One size and dtype


class Case:
    def __init__(self, vanilla, T: int, B: int, D: int, dtype_name: str, seed: int = 0):
        self.vanilla = vanilla
        self.T, self.B, self.D, self.H = T, B, D, D
        tdtype = getattr(torch, dtype_name)
        torch.manual_seed(seed)
        self.rnn = torch.nn.RNN(D, self.H, nonlinearity="tanh", batch_first=False, dtype=tdtype)
        self.X_t = torch.randn(T, B, D, dtype=tdtype, requires_grad=True)
        self.h0_t = (0.1 * torch.randn(1, B, self.H, dtype=tdtype)).requires_grad_(True)
        self.G_t = torch.randn(T, B, self.H, dtype=tdtype)
        with torch.no_grad():
            self.W_xh = self.rnn.weight_ih_l0.numpy().copy()
            self.W_hh = self.rnn.weight_hh_l0.numpy().copy()
            self.b_h = (self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0).numpy().copy()
        self.X = self.X_t.detach().numpy().copy()
        self.h0 = self.h0_t.detach().numpy()[0].copy()
        self.G = self.G_t.numpy().copy()

    def run_seqtool(self):
        v = self.vanilla
        h = v.rnn_forward(self.X, self.W_xh, self.W_hh, self.b_h, self.h0, "tanh")
        return h, v.rnn_backward(self.X, self.W_xh, self.W_hh, h, self.G, "tanh")

    def run_torch(self):
        self.rnn.zero_grad(set_to_none=True)
        self.X_t.grad = None
        self.h0_t.grad = None
        out, _ = self.rnn(self.X_t, self.h0_t)
        out.backward(self.G_t)
        return out

    def check(self) -> tuple[float, str]:
        """Max relative error (max |a − b| / max |b|) over h and every gradient."""
        h, grads = self.run_seqtool()
        out = self.run_torch()
        pairs = {
            "h": (h[1:], out.detach().numpy()),
            "W_xh": (grads.W_xh, self.rnn.weight_ih_l0.grad.numpy()),
            "W_hh": (grads.W_hh, self.rnn.weight_hh_l0.grad.numpy()),
            "b_h": (grads.b_h, self.rnn.bias_ih_l0.grad.numpy()),
            "b_h'": (grads.b_h, self.rnn.bias_hh_l0.grad.numpy()),
            "h0": (grads.h0, self.h0_t.grad.numpy()[0]),
            "x": (grads.x, self.X_t.grad.numpy()),
        }
        return worst_error(pairs)


class TorchSide:
    """torch's forward + backward of a case's module (self.rnn) on X_t from (h0_t[, c0_t])."""

    def run_torch(self):
        self.rnn.zero_grad(set_to_none=True)
        self.X_t.grad = self.h0_t.grad = self.c0_t.grad = None
        state = (self.h0_t, self.c0_t) if self.cell == "lstm" else self.h0_t
        out, _ = self.rnn(self.X_t, state)
        out.backward(self.G_t)
        return out


class StackCase(TorchSide):
    """The same workload through the public stack functions, as training calls them:
    seqtool.core.rnn.stack.stack_forward / stack_backward with torch's state dict, a
    Workspace kept across calls, for any cell."""

    def __init__(self, cell: str, T: int, B: int, D: int, dtype_name: str, seed: int = 0):
        from seqtool.core.buffers import Workspace
        from seqtool.core.rnn import stack

        self.stack, self.cell = stack, cell
        tdtype = getattr(torch, dtype_name)
        torch.manual_seed(seed)
        module = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
        self.rnn = module(D, D, batch_first=False, dtype=tdtype)
        self.X_t = torch.randn(T, B, D, dtype=tdtype, requires_grad=True)
        self.h0_t = (0.1 * torch.randn(1, B, D, dtype=tdtype)).requires_grad_(True)
        self.c0_t = (0.1 * torch.randn(1, B, D, dtype=tdtype)).requires_grad_(True)
        self.G_t = torch.randn(T, B, D, dtype=tdtype)
        self.state = {k: v.detach().numpy().copy() for k, v in self.rnn.state_dict().items()}
        self.X = self.X_t.detach().numpy().copy()
        self.h0 = self.h0_t.detach().numpy().copy()
        self.c0 = self.c0_t.detach().numpy().copy() if cell == "lstm" else None
        self.G = self.G_t.numpy().copy()
        self.workspace = Workspace()

    def run_seqtool(self):
        f = self.stack.stack_forward(self.cell, self.X, self.state, self.h0, self.c0,
                                     workspace=self.workspace)
        return f, self.stack.stack_backward(f, self.state, self.G)

    def check(self) -> tuple[float, str]:
        """Max relative error (max |a − b| / max |b|) over h and every gradient."""
        f, grads = self.run_seqtool()
        out = self.run_torch()
        pairs = {"h": (f.output, out.detach().numpy()), "x": (grads["x"], self.X_t.grad.numpy()),
                 "h0": (grads["h0"], self.h0_t.grad.numpy())}
        for name, p in self.rnn.named_parameters():
            pairs[name] = (grads[name], p.grad.numpy())
        if self.cell == "lstm":
            pairs["c0"] = (grads["c0"], self.c0_t.grad.numpy())
        return worst_error(pairs)


class GatedCase(TorchSide):
    """The same workload for torch.nn.GRU / LSTM and seqtool.core.rnn.gated."""

    def __init__(self, cell: str, T: int, B: int, D: int, dtype_name: str, seed: int = 0):
        from seqtool.core.rnn import gated

        self.gated, self.cell = gated, cell
        tdtype = getattr(torch, dtype_name)
        torch.manual_seed(seed)
        module = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
        self.rnn = module(D, D, batch_first=False, dtype=tdtype)
        self.X_t = torch.randn(T, B, D, dtype=tdtype, requires_grad=True)
        self.h0_t = (0.1 * torch.randn(1, B, D, dtype=tdtype)).requires_grad_(True)
        self.c0_t = (0.1 * torch.randn(1, B, D, dtype=tdtype)).requires_grad_(True)
        self.G_t = torch.randn(T, B, D, dtype=tdtype)
        with torch.no_grad():
            self.weights = [getattr(self.rnn, name).numpy().copy() for name in
                            ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
        self.X = self.X_t.detach().numpy().copy()
        self.h0 = self.h0_t.detach().numpy()[0].copy()
        self.c0 = self.c0_t.detach().numpy()[0].copy()
        self.G = self.G_t.numpy().copy()
        # A training loop's repeated calls: one workspace lends the large arrays again
        # (seqtool.core.buffers; checkouts before it recycled them by reference counts).
        self.space = {}
        if "workspace" in inspect.signature(gated.lstm_forward).parameters:
            from seqtool.core.buffers import Workspace

            self.space = {"workspace": Workspace()}

    def run_seqtool(self):
        W_ih, W_hh, b_ih, b_hh = self.weights
        space = self.space
        if self.cell == "lstm":
            r = self.gated.lstm_forward(self.X, W_ih, W_hh, b_ih, b_hh, self.h0, self.c0,
                                        **space)
            return r, self.gated.lstm_backward(self.X, W_ih, W_hh, r, self.G, **space)
        r = self.gated.gru_forward(self.X, W_ih, W_hh, b_ih, b_hh, self.h0, **space)
        return r, self.gated.gru_backward(self.X, W_ih, W_hh, r, self.G, **space)

    def check(self) -> tuple[float, str]:
        """Max relative error (max |a − b| / max |b|) over h and every gradient."""
        record, grads = self.run_seqtool()
        out = self.run_torch()
        pairs = {
            "h": (record.h[1:], out.detach().numpy()),
            "x": (grads.x, self.X_t.grad.numpy()),
            "h0": (grads.h0, self.h0_t.grad.numpy()[0]),
        }
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            pairs[name] = (getattr(grads, name), getattr(self.rnn, name + "_l0").grad.numpy())
        if self.cell == "lstm":
            pairs["c0"] = (grads.c0, self.c0_t.grad.numpy()[0])
        return worst_error(pairs)


def worst_error(pairs: dict) -> tuple[float, str]:
    """The largest max |a − b| / max |b| over named pairs, and its name (NaN counts)."""
    worst, worst_name = 0.0, ""
    for name, (a, b) in pairs.items():
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        err = float(np.max(np.abs(a64 - b64)) / max(np.max(np.abs(b64)), 1e-300))
        if not err <= worst:  # also catches NaN
            worst, worst_name = err, name
    return worst, worst_name


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_block(fn, calls: int) -> float:
    """Seconds per call over ``calls`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def bench_case(case: Case, repeats: int | None, budget: float,
               block: float) -> tuple[float, float, int, int, int]:
    """Median seconds per call of seqtool and torch, the number of blocks and block sizes."""
    for _ in range(2):  # warm-up (the check already ran each once)
        case.run_seqtool()
        case.run_torch()
    est_seq = min(timed(case.run_seqtool) for _ in range(3))
    est_torch = min(timed(case.run_torch) for _ in range(3))
    calls_seq = max(1, round(block / est_seq)) if block > 0 else 1
    calls_torch = max(1, round(block / est_torch)) if block > 0 else 1
    if repeats is None:
        per_block = max(calls_seq * est_seq, calls_torch * est_torch)
        repeats = max(3, math.ceil(budget / per_block))
    ts_seq, ts_torch = [], []
    for _ in range(repeats):  # alternate so that drift hits both alike
        ts_seq.append(timed_block(case.run_seqtool, calls_seq))
        ts_torch.append(timed_block(case.run_torch, calls_torch))
    return (statistics.median(ts_seq), statistics.median(ts_torch), repeats, calls_seq,
            calls_torch)


# ---------------------------------------------------------------------------------------
# The reference rate: NumPy's matmul of the input projection's shape


def matmul_gflops(T: int, B: int, H: int, dtype: np.dtype, budget: float) -> float:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((T * B, H)).astype(dtype)
    w = rng.standard_normal((H, H)).astype(dtype)
    out = np.empty((T * B, H), dtype)
    for _ in range(3):
        np.matmul(a, w, out=out)
    one = timed(lambda: np.matmul(a, w, out=out))
    repeats = max(5, math.ceil(budget / max(one, 1e-9)))
    ts = [timed(lambda: np.matmul(a, w, out=out)) for _ in range(repeats)]
    return 2.0 * T * B * H * H / statistics.median(ts) / 1e9


# ---------------------------------------------------------------------------------------


def main() -> None:
    first = __doc__.splitlines()[0]
    parser = argparse.ArgumentParser(description=first)
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help='"T,B,D;T,B,D;..." with H = D (default: all seven)')
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--cells", default="rnn,gru,lstm",
                        help="which cells to time: rnn, gru, lstm (default: all three)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per cell (default: adaptive, ~--budget s, ≥ 3)")
    parser.add_argument("--budget", type=float, default=1.0,
                        help="seconds per cell when --repeats is not given")
    parser.add_argument("--block-ms", type=float, default=20.0,
                        help="length of a block of back-to-back calls (0: single calls)")
    parser.add_argument("--fresh-cache", action="store_true",
                        help="compile into a new, empty numba cache folder")
    parser.add_argument("--through", default="stack", choices=("stack", "kernels"),
                        help="stack: the public seqtool.core.rnn.stack functions training "
                             "calls (default); kernels: the cells' own functions")
    parser.add_argument("--threads", type=int, default=1,
                        help="seqtool splits each batch across N threads "
                        "(seqtool.core.parallel, through the stack only) and torch runs N "
                        "threads (default 1: one each)")
    parser.add_argument("--module", default=None,
                        help="benchmark this file instead of seqtool.core.rnn.vanilla")
    args = parser.parse_args()
    sizes = parse_sizes(args.sizes)
    if args.threads != 1:
        from seqtool.core import parallel

        torch.set_num_threads(args.threads)
        threads_context = contextlib.ExitStack()  # held to the end of main
        threads_context.enter_context(parallel.threads(args.threads))
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]

    print(f"numpy {np.__version__}, torch {torch.__version__} "
          f"(threads {torch.get_num_threads()}), python {sys.version.split()[0]}; "
          f"seqtool threads {args.threads}")
    print(cpu_model())
    from seqtool.core.rnn import tuning

    print(f"product tuning: {tuning.STORED_NOTE} ({tuning.STORE}); "
          f"{tuning.TUNING}")
    for line in blas_report():
        print(line)

    jit, vanilla, t_import = import_seqtool(args.module)
    import numba

    print(f"numba {numba.__version__}; import {vanilla.__name__} (incl. numba): "
          f"{t_import * 1e3:.0f} ms; NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}")
    if args.module:
        print(f"kernels from {os.path.abspath(args.module)}")
    if args.fresh_cache:
        print(f"fresh numba cache: {os.environ['NUMBA_CACHE_DIR']}")
    mode = (f"blocks of back-to-back calls of ~{args.block_ms:g} ms, alternating"
            if args.block_ms > 0 else "single calls, alternating seqtool and torch")
    print(f"timing: {mode}; median over blocks; seqtool through "
          f"{'its cell functions' if args.through == 'kernels' or args.module else 'seqtool.core.rnn.stack'}")
    print()
    print("First call per dtype (T=3, B=2, D=H=4; compile or cache load), before warm-up:")
    for name in dtypes:
        r = first_call(jit, vanilla, np.dtype(name))
        status = []
        for kname, k in r["kernels"].items():
            if k["hits"] and not k["misses"]:
                how = "cache hit"
            elif k["misses"]:
                how = "compiled (cache miss)"
            else:
                how = "already in memory"
            index = "yes" if k["index_existed"] else "no"
            status.append(f"{kname}: {how} (cache index existed before: {index})")
        print(f"  {name}: forward {r['forward_s'] * 1e3:.0f} ms, "
              f"backward {r['backward_s'] * 1e3:.0f} ms, "
              f"total {(r['forward_s'] + r['backward_s']) * 1e3:.0f} ms")
        for line in status:
            print(f"    {line}")
    print()

    ceiling = {}
    T0, B0, H0 = CEILING_SIZE
    for name in dtypes:
        ceiling[name] = matmul_gflops(T0, B0, H0, np.dtype(name), args.budget)
        print(f"NumPy matmul ({T0 * B0}, {H0}) @ ({H0}, {H0}) {name}, one core: "
              f"{ceiling[name]:.1f} GFLOP/s")
    peak = {name: peak_gflops(np.dtype(name)) for name in dtypes}
    for name in dtypes:
        print(f"NumPy matmul (2048, 2048) @ (2048, 2048) {name}, one core (the peak): "
              f"{peak[name]:.1f} GFLOP/s")
    print()

    rows = []
    for cell in cells:
        for T, B, D in sizes:
            for name in dtypes:
                if args.through == "stack" and not args.module:
                    case = StackCase(cell, T, B, D, name)
                else:
                    case = (Case(vanilla, T, B, D, name) if cell == "rnn"
                            else GatedCase(cell, T, B, D, name))
                err, err_name = case.check()
                flag = "" if err <= TOLERANCE[name] else f"  <-- above {TOLERANCE[name]:g}"
                log(f"{cell} ({T},{B},{D}) {name}: max rel err {err:.2e} ({err_name}){flag}")
                t_seq, t_torch, n, k_seq, k_torch = bench_case(case, args.repeats, args.budget,
                                                               args.block_ms / 1e3)
                gf = flops(T, B, D, D, cell) / t_seq / 1e9
                gf_torch = flops(T, B, D, D, cell) / t_torch / 1e9
                frac = (gf / ceiling[name]
                        if (T, B, D) == CEILING_SIZE and cell == "rnn" else None)
                log(f"    seqtool {t_seq * 1e3:.3f} ms, torch {t_torch * 1e3:.3f} ms; "
                    f"{n} blocks of {k_seq} and {k_torch} calls")
                rows.append(dict(cell=cell, size=(T, B, D), dtype=name, err=err, t_seq=t_seq,
                                 t_torch=t_torch, n=n, gf=gf, gf_torch=gf_torch, frac=frac,
                                 bound=args.threads * peak[name] / gf_torch,
                                 calls=f"{k_seq}/{k_torch}"))

    header = (f"{'cell':<5} {'T,B,D=H':<14} {'dtype':<8} {'seqtool ms':>11} {'torch ms':>10} "
              f"{'torch/seq':>9} {'seq GF/s':>9} {'torch GF/s':>10} {'of matmul':>9} "
              f"{'max rel err':>11} {'blocks':>6} {'calls/block':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        size = ",".join(str(v) for v in r["size"])
        frac = f"{r['frac'] * 100:.0f}%" if r["frac"] is not None else "-"
        print(f"{r['cell']:<5} {size:<14} {r['dtype']:<8} {r['t_seq'] * 1e3:>11.3f} "
              f"{r['t_torch'] * 1e3:>10.3f} {r['t_torch'] / r['t_seq']:>9.2f} "
              f"{r['gf']:>9.2f} {r['gf_torch']:>10.2f} {frac:>9} {r['err']:>11.1e} "
              f"{r['n']:>6} {r['calls']:>11}")
    print()

    print("Goals:")
    all_met = True
    for r in rows:
        goal = RATIO_GOALS[r["cell"]].get(r["size"], DEFAULT_RATIO_GOAL)
        ratio = r["t_torch"] / r["t_seq"]
        met = ratio >= goal
        all_met &= met
        size = ",".join(str(v) for v in r["size"])
        print(f"  {r['cell']:<4} torch/seqtool >= {goal:>4.1f}x at ({size}) {r['dtype']}: "
              f"{ratio:6.2f}x  {'met' if met else 'NOT MET':<7}  (at most {r['bound']:.2f}x "
              f"at the peak)")
        if r["frac"] is not None:
            met = r["frac"] >= CEILING_GOAL
            all_met &= met
            print(f"  seqtool >= {CEILING_GOAL:.0%} of NumPy matmul at ({size}) {r['dtype']}: "
                  f"{r['frac']:6.1%}  {'met' if met else 'NOT MET'}")
    print(f"All goals met: {'yes' if all_met else 'no'}")


if __name__ == "__main__":
    main()
