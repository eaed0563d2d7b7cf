"""Which method computes a recurrent layer's matrix products, and from which sizes on: one
object, :class:`ProductTuning`, with the measurement behind each threshold.

Two kinds of field:

- *compiled* ones (``plain`` and the thresholds of the per-step product) are read by the
  numba kernels as compile-time constants: no per-step cost, but changing them needs a new
  process. They come from the environment, read once at import:

      SEQTOOL_PLAIN_PRODUCTS=1     every product is a plain ``a @ w`` (np.dot: no register
                                   tiles, no blocked loops), to test that every other path
                                   gives the same numbers;
      SEQTOOL_PRODUCT_TUNING="tiled_from_rows=1,blocked_few_rows=0"   any field, by name.

  numba's cache of the kernels is keyed on these (seqtool.core.rnn.jit), so a kernel
  compiled under one tuning is never loaded under another.
- *per-call* ones (the layer sizes from which arrays are recycled and the products after
  the loop leave the kernel, and the share of padding from which rows are gathered) are
  read by the Python functions on each call: :func:`use` changes them for a block of code
  (in this thread), so that a test can run the large-size paths at small sizes.

This module imports no numba: seqtool.core.rnn.lengths reads it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import os
from contextlib import contextmanager
from dataclasses import dataclass

from seqtool.core.errors import InputError

PLAIN_VARIABLE = "SEQTOOL_PLAIN_PRODUCTS"
TUNING_VARIABLE = "SEQTOOL_PRODUCT_TUNING"


@dataclass(frozen=True)
class ProductTuning:
    """The thresholds that pick a product method. Sizes are measured on one Zen 5 core
    (AVX-512), float32 unless said otherwise, against NumPy's OpenBLAS and torch.mm
    (benchmarks/bench_products.py, benchmarks/bench_rnn.py)."""

    # --- compiled into the kernels (seqtool.core.rnn.products.step_product & co.) ---

    # Every product as np.dot(a, w, out): the reference path of every other one.
    plain: bool = False
    # From this many rows on the register tiles beat everything else, at any size:
    # (8, 16) × (16, 64) 1.5× faster than a plain loop, (32, 128) × (128, 512) 1.7× faster
    # than OpenBLAS's sgemm, (64, 1024) × (1024, 256) 1.3×.
    tiled_from_rows: int = 8
    # ... provided a column strip of w (K × 3 vectors) stays well inside L2: at K = 2048
    # ((128, 2048) × (2048, 512)) the tiles ran at 0.87× OpenBLAS in float32, 0.74× in
    # float64. Bytes.
    tiled_strip_below: int = 256 * 1024
    # Below tiled_from_rows, tiles of 4, 2 and 1 rows still win while w (K × N) fits the
    # core's L2 cache: with a larger w, each tile of rows streams the whole of w again, in
    # strips. The same bound sends the input projection and ∂L/∂X to BLAS, where the tiles,
    # without BLAS's cache blocking, fall behind ((12800, 512) × (512, 2048) 188 GFLOP/s
    # against 257). Bytes.
    tiled_w_below: int = 1 << 20
    # With w this large (K·N elements: 1 MB in float32) and 2 to 7 rows, the
    # register-blocked loop (_matmul_rows4) beats both the tiles and OpenBLAS's sgemm, which
    # is up to 5× slower on so few rows ((2, 512) × (512, 2048): 257 µs against 46;
    # (3, 256) × (256, 1024): 34 against 23). The longest-first batches of training have
    # only a few rows left at their last steps.
    blocked_few_rows: int = 256 * 1024

    # --- read per call by the Python functions (seqtool.core.rnn.gated, .lengths) ---

    # The LSTM's products after the backward loop (∂L/∂W_ih, ∂L/∂W_hh, ∂L/∂X) are computed
    # in the kernel below this many multiply-adds each (T·B·4H·max(D, H)), saving the
    # Python calls, which dominate then; above it NumPy's matmul is used: NumPy's OpenBLAS
    # build ran them 4–20 % faster than the one numba's np.dot calls (SciPy's), e.g.
    # 0.43 ms against 0.53 ms at T = 100, B = H = 32.
    products_in_kernel_below: int = 1 << 20
    # From this many multiply-adds (T·B·G·H·max(D, H)) on, a gated layer takes its per-call
    # arrays (states, gate records, ∂L/∂A, ∂L/∂X) from the caller's Workspace, when it is
    # given one (seqtool.core.buffers): fresh arrays cost a page fault per 4 KiB on every
    # call (~4,000 faults, 20 ms → 14.6 ms at LSTM (100, 32, 128)), while below it NumPy's
    # small-block allocator makes np.empty cheaper than a look-up.
    recycle_from: int = 1 << 20
    # Below this share of real steps (Σ ℓ_b / T·B) the products after the backward loop
    # gather the real rows first: the copy costs far less than the multiply-adds on the
    # padded rows' zeros.
    gather_below: float = 0.9
    # With several threads (seqtool.core.parallel), a batch splits into parts of at least
    # this many multiply-adds of recurrent work each (T·B_part·Σ G·H·(D + H) over the
    # layers): a part costs a hand-over to its thread (~20–40 µs), copies of its rows and
    # the joins after. Training steps at B = 32 on a Zen 3 core pair
    # (benchmarks/bench_train.py --threads 1 and 2): 2.5 M a part ran 1.4× slower split
    # (lm rnn H = 64), 4–7 M about even, 13 M and up 0.66–0.76× the one-thread time.
    split_from: int = 1 << 23

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            kind = bool if field.name == "plain" else (float if field.type == "float" else int)
            if kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
            if not ok:
                raise InputError(field.name, f"must be a {'non-negative ' if kind is not bool else ''}"
                                 f"{kind.__name__} (got {value!r})")

    def compiled(self) -> tuple:
        """The values the kernels are compiled with, in field order."""
        return tuple(getattr(self, name) for name in COMPILED_FIELDS)


COMPILED_FIELDS = ("plain", "tiled_from_rows", "tiled_strip_below", "tiled_w_below",
                   "blocked_few_rows")
PER_CALL_FIELDS = ("products_in_kernel_below", "recycle_from", "gather_below", "split_from")


def from_environment(environ) -> ProductTuning:
    """The tuning that SEQTOOL_PLAIN_PRODUCTS and SEQTOOL_PRODUCT_TUNING ask for (either may
    be missing or empty: the defaults)."""
    changes: dict = {}
    spec = (environ.get(TUNING_VARIABLE) or "").strip()
    names = {f.name: f for f in dataclasses.fields(ProductTuning)}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise InputError(TUNING_VARIABLE, f"has '{item}'; expected name=value with a name "
                             f"among {', '.join(names)}")
        text = text.strip()
        try:
            if name == "plain":
                if text not in ("0", "1"):
                    raise ValueError(text)
                changes[name] = text == "1"
            elif names[name].type == "float":
                changes[name] = float(text)
            else:
                changes[name] = int(text, 0)
        except ValueError:
            raise InputError(TUNING_VARIABLE, f"has '{item}': '{text}' is not a valid value "
                             f"for {name}") from None
    plain = (environ.get(PLAIN_VARIABLE) or "").strip()
    if plain not in ("", "0", "1"):
        raise InputError(PLAIN_VARIABLE, f"is '{plain}'; expected 1 (plain products) or 0")
    if plain == "1":
        changes["plain"] = True
    return ProductTuning(**changes)


# Read once, at import: the kernels are compiled with these values.
ENVIRONMENT = {name: os.environ.get(name) for name in (PLAIN_VARIABLE, TUNING_VARIABLE)}
TUNING = from_environment(ENVIRONMENT)

_current: contextvars.ContextVar[ProductTuning] = contextvars.ContextVar(
    "seqtool_product_tuning", default=TUNING)


def current() -> ProductTuning:
    """The tuning in force in this thread (TUNING unless inside :func:`use`)."""
    return _current.get()


@contextmanager
def use(tuning: ProductTuning | None = None, **changes):
    """Run a block with other per-call thresholds, e.g. ``with use(recycle_from=0):``
    (in this thread only). The compiled fields cannot change within a process: asking for
    other values raises InputError (set SEQTOOL_PRODUCT_TUNING for a new process)."""
    base = current() if tuning is None else tuning
    new = dataclasses.replace(base, **changes)
    if new.compiled() != TUNING.compiled():
        differ = [n for n, a, b in zip(COMPILED_FIELDS, new.compiled(), TUNING.compiled())
                  if a != b]
        raise InputError(differ[0], "is compiled into the kernels; set "
                         f"{TUNING_VARIABLE} (or {PLAIN_VARIABLE}) for a new process instead")
    token = _current.set(new)
    try:
        yield new
    finally:
        _current.reset(token)
