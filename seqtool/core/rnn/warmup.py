"""Load (or compile) a cell's kernels before a run starts its clocks.

numba compiles a kernel the first time it is called with new argument types, or loads it
from its on-disk cache (seqtool.core.rnn.jit) when a run on this machine compiled it
before. Either happens on first use, so without a warm-up the first training epoch's
tokens/s would include the compilation, and nobody could say in advance whether a run will
compile: the cache's index tells whether *some* entry exists, not whether it matches this
dtype, these sources and this tuning.

:func:`warm_up` runs what a run will run, on tiny arrays of the run's dtype: the cell's
forward and backward through the cell registry and, given a :class:`ModelSpec`, the model
path (``seqtool.core.models.forward``/``backward``, the loss, an optimiser step) of a
tiny model with the same cell, task, layers, pooling and nonlinearity. It goes through
every product path a run may take, the small layers' and the large ones' (the per-call
thresholds of ``seqtool.core.rnn.tuning``, lowered for the second pass), the folded input
projection of training and the plain one of evaluation, with and without padding. So every
kernel is loaded (fast) or compiled (slow) here, and it watches numba's own "numba:compile"
events to know which: a kernel loaded from the cache or already in memory fires none.

On a machine with two cores or more, the warm-up also starts a helper process at its
first compilation: it compiles the cell's backward pass into numba's on-disk cache (on a
blank record of zeros, :meth:`Cell.blank_record`, so it never needs the forward pass) while
this process compiles the forward pass, and this one then loads it from the cache. Both
compile the shared product kernels; the forward and backward kernels, the two largest,
compile side by side (a first LSTM run: ~8 s → ~6 s of compiling on two cores). Where the
helper cannot help (one core, no writable cache, ``SEQTOOL_COMPILE_HELPER=0``, a cell
without a blank record) or fails, this process compiles everything itself, as before.

The core prints nothing: ``on_slow(cell, dtype)`` is called once, as soon as the warm-up
has compiled something and taken ``after`` seconds (from a timer thread while a long
compile is still running), and ``on_done(result)`` at the end, only if ``on_slow`` was.
A warm cache calls neither.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from seqtool.core.errors import InputError

DTYPES = ("float32", "float64")
HELPER_VARIABLE = "SEQTOOL_COMPILE_HELPER"  # "0": no helper process
HELPER_TIMEOUT = 600.0  # seconds to wait for the helper before compiling here anyway
# The tiny problem: T steps, B rows (the last ones shorter), D inputs, H hidden, V tokens.
T, B, D, H, V, O = 4, 3, 2, 2, 5, 3


@dataclass(frozen=True)
class WarmUp:
    """What one warm-up did: its seconds, and how many compilations numba made (0: every
    kernel came from the on-disk cache, or was in memory already)."""

    cell: str
    dtype: str
    seconds: float
    compiled: int

    @property
    def loaded(self) -> bool:
        return self.compiled == 0

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.cell, "dtype": self.dtype, "seconds": self.seconds,
                "compiled": self.compiled, "loaded": self.loaded}


def check_dtype(dtype: Any, key: str = "dtype") -> str:
    """The name of a float dtype seqtool computes in; InputError for any other."""
    name = str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype.strip().lower()
    if name not in DTYPES:
        raise InputError(key, f"is '{dtype}'; choose one of {', '.join(DTYPES)}")
    return name


class _Helper:
    """The helper process (see the module docstring): ``start()`` launches it (once, if it
    can help), ``wait()`` waits for it to finish, ``stop()`` ends it if it still runs."""

    def __init__(self, cell: str, dtype: str, truncated: bool, enabled: bool):
        self.args = [cell, dtype, "1" if truncated else "0"]
        self.enabled = enabled and _helper_can_run()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if not self.enabled or self.process is not None:
            return
        self.enabled = False  # one try
        root = str(Path(__file__).resolve().parents[3])  # the folder holding seqtool/
        env = dict(os.environ, **{HELPER_VARIABLE: "0"})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "import sys; from seqtool.core.rnn.warmup import "
                 "helper_main; sys.exit(helper_main(sys.argv[1:]))", *self.args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=env)
        except OSError:  # no process for us: compile here
            self.process = None

    def wait(self) -> None:
        """Wait for the helper (its compile is then in the cache); give up after
        HELPER_TIMEOUT. Once waited for, a later compilation starts no helper."""
        self.enabled = False
        if self.process is None:
            return
        try:
            self.process.wait(timeout=HELPER_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _helper_can_run() -> bool:
    """A second core, JIT on, numba's cache on, and nobody said no."""
    from numba import config

    if os.environ.get(HELPER_VARIABLE, "").strip() == "0" or config.DISABLE_JIT:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores >= 2


def helper_main(argv: list[str]) -> int:
    """The helper process: ``cell dtype truncated`` → the cell's backward pass (and, with
    truncated "1", its extra kernels) compiled into the cache. Exit 0, or 1 if it could
    not (the warm-up then compiles here)."""
    from seqtool.core.rnn.cells import get_cell

    try:
        cell, dtype, truncated = argv
        _backward_pass(get_cell(cell), np.dtype(check_dtype(dtype)), truncated == "1")
    except Exception:  # nothing to report: the parent compiles what is missing
        return 1
    return 0


class _Watch:
    """Counts numba's compilations and calls ``on_slow`` once they have taken ``after``
    seconds: checked when a compilation starts (so ``after=0`` is immediate and
    deterministic) and by a timer (so a single long compilation is announced while it
    runs, not after it). The first compilation also starts the helper, if any."""

    def __init__(self, cell: str, dtype: str, on_slow: Callable[[str, str], Any] | None,
                 after: float, clock: Callable[[], float], helper: _Helper | None = None):
        self.cell, self.dtype, self.on_slow, self.after, self.clock = (
            cell, dtype, on_slow, after, clock)
        self.helper = helper
        self.lock = threading.Lock()
        self.compiled = 0
        self.slow = False
        self.done = False
        self.start = clock()
        self.timer: threading.Timer | None = None

    def compile_started(self) -> None:
        if self.helper is not None:
            self.helper.start()
        with self.lock:
            self.compiled += 1
            if self.clock() - self.start >= self.after:
                self._announce()
            elif self.on_slow is not None and self.timer is None:
                # the first compilation, early: look again when `after` has passed
                self.timer = threading.Timer(max(self.after - (self.clock() - self.start), 0.0),
                                             self.timer_fired)
                self.timer.daemon = True
                self.timer.start()

    def timer_fired(self) -> None:
        with self.lock:
            if self.compiled:
                self._announce()

    def _announce(self) -> None:  # under the lock
        if self.slow or self.done or self.on_slow is None:
            return
        self.slow = True
        self.on_slow(self.cell, self.dtype)

    def finish(self) -> bool:
        """Stop watching; True if ``on_slow`` was called."""
        with self.lock:
            self.done = True
            if self.timer is not None:
                self.timer.cancel()
            return self.slow


def _listening(watch: _Watch):
    """numba's "numba:compile" event (fired for a compilation, not for a cache load) as
    calls of ``watch.compile_started``; a no-op context without numba's event API."""
    from contextlib import nullcontext

    try:
        from numba.core import event
    except ImportError:  # pragma: no cover (numba < 0.53)
        return nullcontext()

    class Listener(event.Listener):
        def on_start(self, ev):
            watch.compile_started()

        def on_end(self, ev):
            pass

    return event.install_listener("numba:compile", Listener())


def warm_up(cell: str, dtype: Any, *, spec: Any = None, training: bool = True,
            optimizer: str | None = None, truncated: bool = False, helper: bool = True,
            on_slow: Callable[[str, str], Any] | None = None,
            on_done: Callable[[WarmUp], Any] | None = None, after: float = 0.5,
            clock: Callable[[], float] = time.perf_counter) -> WarmUp:
    """Run ``cell``'s kernels once in ``dtype`` (float32 or float64), so that they are
    loaded or compiled now rather than inside a run.

    spec: a :class:`seqtool.core.models.ModelSpec`; its model path runs too (a tiny model
        with the same cell, task, layers, pooling, dropout and nonlinearity).
    training: with ``spec``, the training step's passes (folded input projection,
        backward, workspace) besides evaluation's forward pass.
    optimizer: with ``spec`` and ``training``, one step of this optimiser (its fused
        update kernel).
    truncated: also the kernels the BPTT analysis runs besides forward and backward
        (Cell.warm_extra: the vanilla cell's truncated backward of ``bptt --truncate``),
        compiled only for a run that uses them.
    helper: whether a helper process may compile the backward pass side by side (see the
        module docstring; ``seqtool compile``'s jobs, already one per core, say no).
    on_slow(cell, dtype), on_done(result): see the module docstring.
    after, clock: the seconds after which a warm-up that compiles is slow, and the clock
        that measures them (injectable for tests).
    """
    from seqtool.core.rnn.cells import cell_names, get_cell

    name = check_dtype(dtype)
    # a model without a recurrent cell (bow) has only the model path's kernels
    layer = get_cell(cell) if spec is None or cell in cell_names() else None
    assistant = None
    if layer is not None and layer.blank_record(1, 1, 1, np.dtype(name)) is not None:
        assistant = _Helper(cell, name, truncated, helper)
    watch = _Watch(cell, name, on_slow, after, clock, assistant)
    with _listening(watch):
        try:
            if layer is not None:
                _cell_pass(layer, np.dtype(name), truncated, assistant)
            if spec is not None:
                _model_passes(spec, np.dtype(name), training, optimizer)
        finally:
            slow = watch.finish()
            if assistant is not None:
                assistant.stop()
    result = WarmUp(cell, name, clock() - watch.start, watch.compiled)
    if slow and on_done is not None:
        on_done(result)
    return result


def _cell_pass(layer: Any, dtype: np.dtype, truncated: bool,
               assistant: _Helper | None = None) -> None:
    """One layer forward and backward, with ∂L/∂X and ∂L/∂W_ih (what the BPTT analysis
    runs), through the cell registry; with ``truncated``, the cell's extra kernels. The
    backward pass waits for the helper, if one compiles it."""
    params, X = _tiny_layer(layer, dtype)
    record = layer.forward(X, params["weight_ih"], params["weight_hh"], params["bias_ih"],
                           params["bias_hh"])
    if assistant is not None:
        assistant.wait()
    _backward_pass(layer, dtype, truncated, record)


def _tiny_layer(layer: Any, dtype: np.dtype) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The weights of a tiny layer (D inputs, H units) and its input X (T, 1, D), the same
    draws every time."""
    rng = np.random.default_rng(0)
    params = layer.init_layer(rng, D, H, dtype)
    return params, rng.standard_normal((T, 1, D)).astype(dtype)


def _backward_pass(layer: Any, dtype: np.dtype, truncated: bool, record: Any = None) -> None:
    """The layer's backward pass on the tiny problem of _cell_pass, from ``record`` (the
    forward pass's) or, without one, from the cell's blank record (the helper process)."""
    params, X = _tiny_layer(layer, dtype)
    if record is None:
        record = layer.blank_record(T, 1, H, dtype)
    dh = np.ones((T, 1, H), dtype)
    dc = np.zeros((1, H), dtype) if layer.has_cell_state else None
    layer.backward(X, params["weight_ih"], params["weight_hh"], record, dh, dc)
    if truncated:
        layer.warm_extra(dtype)


def _tiny_spec(spec: Any) -> Any:
    from dataclasses import replace

    if spec.task == "seq2seq":  # one vocabulary in and out
        return replace(spec, input_size=V, output_size=V, hidden=H, embedding_dim=D)
    if spec.tokens_in:
        return replace(spec, input_size=V, output_size=O, hidden=H, embedding_dim=D)
    return replace(spec, input_size=D, output_size=O, hidden=H)


def _batch(spec: Any, lengths: np.ndarray, dtype: np.dtype):
    """Inputs and targets of a tiny batch as seqtool.core.data.make_batch lays them out."""
    rng = np.random.default_rng(1)
    mask = np.arange(T)[:, None] < lengths[None, :]
    if spec.tokens_in:
        inputs = np.where(mask, rng.integers(1, V, (T, B)), 0).astype(np.int64)
    else:
        inputs = (rng.standard_normal((T, B, D)) * mask[..., None]).astype(dtype)
    if spec.task == "regress":
        shape = (T, B, O) if spec.per_step else (B, O)
        targets = rng.standard_normal(shape)
        if spec.per_step:
            targets = targets * mask[..., None]
    elif spec.per_step:
        targets = np.where(mask, rng.integers(0, O, (T, B)), -1).astype(np.int64)
    else:
        targets = rng.integers(0, O, B).astype(np.int64)
    return inputs, targets


def _model_passes(spec: Any, dtype: np.dtype, training: bool, optimizer: str | None) -> None:
    """The model path of a tiny copy of ``spec``: for the small layers' products and, with
    the per-call thresholds at 0, the large layers' ones; on a padded batch (the gathered
    rows) and a full one; the training step (folded, with a workspace, backward, an
    optimiser step) and evaluation's forward pass."""
    from seqtool.core.buffers import Workspace
    from seqtool.core.models import backward, family_of, forward, init_params, loss_of
    from seqtool.core.rnn import tuning

    tiny = _tiny_spec(spec)
    params = init_params(tiny, seed=0, dtype=dtype)
    step = None
    if training and optimizer is not None:
        from seqtool.core.optim import make_optimizer
        from seqtool.core.training import prepare_optimizer

        # a copy: the steps must not move the parameters the other passes read
        step = prepare_optimizer(make_optimizer(optimizer, {k: v.copy() for k, v in
                                                            params.items()}, 1e-3, 0.0))
    rng = np.random.default_rng(2) if spec.dropout > 0 else None
    regimes = ({}, {"recycle_from": 0, "products_in_kernel_below": 0})
    family = family_of(tiny)
    if family is not None:  # a model of its own (seq2seq): its own passes
        return family.warm_passes(tiny, params, training, step, regimes, T)
    for changes in regimes:
        with tuning.use(**changes):
            for lengths in (np.array([T, T - 1, T - 2]), np.full(B, T)):
                inputs, targets = _batch(tiny, lengths, dtype)
                if not tiny.tokens_in:
                    inputs = inputs.astype(dtype)
                fwd = forward(tiny, params, inputs, lengths)  # evaluation
                loss_of(tiny, fwd.outputs, targets, lengths)
                if not training:
                    continue
                for fold in (True, False):
                    fwd = forward(tiny, params, inputs, lengths, dropout_rng=rng,
                                  fold_embedding=fold, workspace=Workspace())
                    loss = loss_of(tiny, fwd.outputs, targets, lengths)
                    grads = backward(tiny, params, fwd, inputs, lengths, loss.d_outputs)
                    if step is not None:
                        step.step(grads)


__all__ = ["DTYPES", "HELPER_VARIABLE", "WarmUp", "check_dtype", "helper_main", "warm_up"]
