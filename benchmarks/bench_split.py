"""How far two threads can take a training step, and how far they do (#18 item 3).

`--threads N` splits each batch's rows across the recurrent layers' kernels
(seqtool.core.parallel); the rest of a training step stays on one thread: the embedding,
the head, the loss, the gradient norm, Adam, and the Python that calls the kernels, which
holds the GIL. So by Amdahl's law, with a share s of the one-thread step spent inside the
layers (``stack_forward`` and ``stack_backward``, whose kernels and products are what the
split divides), no split into n parts, however cheap, can take a step below

    bound(n) = (1 − s) + s / n        of the one-thread time.

For every task, cell and hidden size asked this prints, float32, B = 32, the batches and
step of ``benchmarks/bench_train.py`` (seqtool's side only, no torch):

    the one-thread step (ms); s (timed around the layer calls on one thread); bound(2);
    the measured two-thread step over the one-thread step, blocks of steps on 1 and 2
    threads alternating in one process (the median of the blocks' ratios), so that the
    machine's drift between runs does not enter the ratio; and the share of the batches
    that split at all (below the tuning's ``split_from`` multiply-adds a part a batch stays
    whole: seqtool.core.parallel.parts_for).

    python benchmarks/bench_split.py [--tasks classify,lm] [--cells rnn,gru,lstm]
                                     [--sizes 64,128,256,512] [--seconds 4]

The one-thread layer time includes a few µs of timing per call (two calls per step).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

# BLAS on one thread, as the CLI runs it (the parts of a batch are its threads); set before
# NumPy loads it
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model  # noqa: E402
from seqtool.core import parallel  # noqa: E402
from seqtool.core.models import ModelSpec, init_params, rnn_state  # noqa: E402
from seqtool.core.rnn import stack  # noqa: E402

LAYER_CALLS = ("stack_forward", "stack_backward")


@contextmanager
def timing_layers(bt, clock: list[float]):
    """Add the time spent in every seqtool module's stack_forward / stack_backward (as
    imported by name: seqtool.core.models, seqtool.core.seq2seq, ...) to clock[0]."""

    def timed(f):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                clock[0] += time.perf_counter() - start
        return call

    with ExitStack() as swaps:
        for name in LAYER_CALLS:
            swaps.enter_context(bt.swapped(stack, name, timed))
        yield


def measure(bt, task: str, cell: str, H: int, data, seconds: float, threads: int) -> dict:
    def steps(trainer, start: int, k: int, n: int) -> float:  # seconds per step
        return bt.run_steps(trainer.step, start, k, n) / k

    ds = data.dataset
    spec = ModelSpec(task, cell, ds.input_size, ds.output_size, hidden=H, embedding_dim=32)
    trainer = bt.SeqtoolTrainer(spec, init_params(spec, seed=bt.SEED, dtype=np.float32),
                                data, 1e-3)
    n = len(data.batches)
    for count in (1, threads):  # compile and warm both
        with parallel.threads(count):
            steps(trainer, 0, 5, n)
    with parallel.threads(1):
        one = steps(trainer, 0, 3, n)
        k = max(3, int(0.1 / one))  # blocks of ~0.1 s
        clock = [0.0]
        with timing_layers(bt, clock):
            step_1t = steps(trainer, 0, 3 * k, n)
        share = clock[0] / (3 * k) / step_1t
    ratios, start, r = [], 0, 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or r < 6:
        times = {}
        for count in ((1, threads) if r % 2 == 0 else (threads, 1)):
            with parallel.threads(count):
                times[count] = steps(trainer, start, k, n)
        ratios.append(times[threads] / times[1])
        start += k
        r += 1
    with parallel.threads(threads):
        split = np.mean([parallel.parts_for(b.inputs.shape[1], stack._work(
            rnn_state(trainer.params), *b.inputs.shape[:2], b.lengths)) > 1
            for b in data.batches])
    return {"step_1t": step_1t, "share": share, "split": float(split),
            "bound": (1 - share) + share / threads, "measured": float(np.median(ratios)),
            "blocks": len(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="classify,lm", help="classify, lm")
    parser.add_argument("--cells", default="rnn,gru,lstm")
    parser.add_argument("--sizes", default="64,128,256,512")
    parser.add_argument("--threads", type=int, default=2, help="the parts of a split (2)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="seconds of alternating blocks per row (at least 6 blocks)")
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # bench_train reads its own arguments only in main()
    import bench_train as bt

    print(f"{cpu_model()}; {parallel.available_cores()} cores; float32, B = 32")
    print(f"{'task':8s} {'cell':4s} {'H':>4s}  {'1t step ms':>10s}  {'in layers':>9s}  "
          f"{'bound':>6s}  {'measured':>8s}  {'split':>5s}")
    for task in args.tasks.split(","):
        data = bt.Data(task, 32)
        for cell in args.cells.split(","):
            for H in (int(h) for h in args.sizes.split(",")):
                row = measure(bt, task, cell, H, data, args.seconds, args.threads)
                print(f"{task:8s} {cell:4s} {H:4d}  {row['step_1t'] * 1e3:10.3f}  "
                      f"{row['share']:9.0%}  {row['bound']:6.2f}  {row['measured']:8.2f}  "
                      f"{row['split']:5.0%}",
                      flush=True)


if __name__ == "__main__":
    main()
