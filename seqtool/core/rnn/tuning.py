"""Which method computes a recurrent layer's matrix products, and from which sizes on: one
object, :class:`ProductTuning`, with the measurement behind each threshold.

Two kinds of field:

- *compiled* ones (``plain`` and the thresholds of the per-step product) are read by the
  numba kernels as compile-time constants: no per-step cost, but changing them needs a new
  process. They come, read once at import, from the defaults below, overridden by this
  machine's measured tuning (``seqtool compile`` measures it once, with
  seqtool.core.rnn.measure, and keeps it beside numba's cache: :func:`store_path`; a tuning
  measured on another CPU is ignored), overridden by the environment:

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
import functools
import hashlib
import json
import os
import platform
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from seqtool.core.errors import InputError
from seqtool.core.rnn import numpy_blas

PLAIN_VARIABLE = "SEQTOOL_PLAIN_PRODUCTS"
TUNING_VARIABLE = "SEQTOOL_PRODUCT_TUNING"


@dataclass(frozen=True)
class ProductTuning:
    """The thresholds that pick a product method. The defaults were measured on one Zen 5
    core (AVX-512), float32 unless said otherwise, against NumPy's OpenBLAS and torch.mm
    (benchmarks/bench_products.py, benchmarks/bench_rnn.py); another machine measures its
    own (seqtool.core.rnn.measure)."""

    # --- compiled into the kernels (seqtool.core.rnn.products.step_product & co.) ---

    # Every product as np.dot(a, w, out): the reference path of every other one.
    plain: bool = False
    # From this many rows on the register tiles beat everything else, at any size:
    # (8, 16) × (16, 64) 1.5× faster than a plain loop, (32, 128) × (128, 512) 1.7× faster
    # than OpenBLAS's sgemm, (64, 1024) × (1024, 256) 1.3×.
    tiled_from_rows: int = 8
    # ... provided a column strip of w (K × 3 vectors) stays well inside L2, which depends
    # on the rows: each tile of 8 rows streams the whole strip again, while BLAS packs w
    # once and its packing pays back over many rows. Below 128 rows: up to this many bytes
    # of strip (on a Zen 4 the tiles ran ∂h = dA W_hh at K = 2048, a 384 KiB strip, 1.1-2×
    # faster than OpenBLAS on 8 to 64 rows in float32); measured where it runs on the
    # backward pass's ∂h (measure.strip_below). Bytes.
    tiled_strip_below: int = 384 * 1024
    # ... and from 128 rows on up to this many (at K = 2048, (128, 2048) × (2048, 512), the
    # tiles ran at 0.87× OpenBLAS in float32 and 0.74× in float64 on a Zen 5; a Zen 4 lost
    # at 256 rows). Also the bound of the products of a whole sequence's rows. Bytes.
    tiled_strip_below_128: int = 256 * 1024
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
    # Below tiled_from_rows, 8 to 15, 16 to 31, 32 to 63 and 64 or more rows use the tiles
    # while w is below these many bytes, BLAS beyond. Where the tiles have 4 rows (16
    # vector registers: AVX2), BLAS pulls ahead as rows and w grow (Zen 3, float32, one
    # thread: (8, 512) × (512, 2048) tiles 551 µs, BLAS 765; (32, 256) × (256, 1024) 426
    # against 322). The defaults never apply (tiled_from_rows takes those rows).
    tiled_w_below_8: int = 1 << 40
    tiled_w_below_16: int = 1 << 40
    tiled_w_below_32: int = 1 << 40
    tiled_w_below_64: int = 1 << 40
    # A single row's tiles (products.matmul_row) while w is below this many bytes, BLAS's
    # gemv beyond (Zen 3: (1, 128) × (128, 512) 5.3 µs against 3.2 in float32).
    row_w_below: int = 1 << 20

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
    # this many multiply-adds of recurrent work each (Σ ℓ_b over the part's rows ·
    # Σ G·H·(D + H) over the layers): a part costs a hand-over to its thread (~20–40 µs),
    # copies of its rows, the joins after, and BLAS runs less well on fewer rows. Training
    # steps at B = 32 on a Zen 3 core pair (benchmarks/bench_train.py --threads 1 and
    # --threads default, after seqtool compile): 8–11 M a part ran 1.04–1.08× slower split
    # (classify gru and lstm, H = 128), 14 M 0.86×, 18 M and up 0.77–0.79×.
    split_from: int = 12 << 20

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


COMPILED_FIELDS = ("plain", "tiled_from_rows", "tiled_strip_below", "tiled_strip_below_128",
                   "tiled_w_below",
                   "blocked_few_rows", "tiled_w_below_8", "tiled_w_below_16",
                   "tiled_w_below_32", "tiled_w_below_64", "row_w_below")
PER_CALL_FIELDS = ("products_in_kernel_below", "recycle_from", "gather_below", "split_from")


def from_environment(environ, base: dict | None = None) -> ProductTuning:
    """The tuning that SEQTOOL_PLAIN_PRODUCTS and SEQTOOL_PRODUCT_TUNING ask for (either may
    be missing or empty), over ``base`` (fields by name: a stored tuning) over the
    defaults."""
    changes: dict = dict(base or {})
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


# ---------------------------------------------------------------------------------------
# This machine's tuning, measured once (seqtool compile) and kept beside numba's cache

FILE_VARIABLE = "SEQTOOL_TUNING_FILE"  # another file, or "none": the defaults only
STORE_NAME = "seqtool-tuning.json"
STORE_VERSION = 1


def store_path(environ) -> Path | None:
    """Where this machine's tuning is kept: SEQTOOL_TUNING_FILE (None if it says "none"),
    else beside numba's cache of the kernels, in numba's order: NUMBA_CACHE_DIR, the
    kernels' own __pycache__ if it can be written, the user's cache (~/.cache/numba)."""
    given = (environ.get(FILE_VARIABLE) or "").strip()
    if given:
        return None if given.lower() == "none" else Path(given)
    cache = (environ.get("NUMBA_CACHE_DIR") or "").strip()
    if cache:
        return Path(cache) / STORE_NAME
    in_tree = Path(__file__).resolve().parent / "__pycache__"
    if os.access(in_tree if in_tree.exists() else in_tree.parent, os.W_OK):
        return in_tree / STORE_NAME
    home = (environ.get("XDG_CACHE_HOME") or "").strip() or str(Path.home() / ".cache")
    return Path(home) / "numba" / STORE_NAME


# Until a machine is measured: the thresholds measured on a 16-register (AVX2) machine, for
# machines without AVX-512, whose 4-row tiles lose to NumPy's OpenBLAS from 8 rows on and
# from 16 KB of weights on 2-4 rows (AMD EPYC Zen 3, seqtool compile against NumPy's
# OpenBLAS 0.3.31; the blocked loop takes float32's few rows from there).
AVX2_DEFAULTS = {"tiled_from_rows": 1 << 40, "tiled_w_below_8": 16 << 10,
                 "tiled_w_below_16": 16 << 10, "tiled_w_below_32": 16 << 10,
                 "tiled_w_below_64": 16 << 10, "tiled_w_below": 16 << 10,
                 "row_w_below": 64 << 10, "blocked_few_rows": 4096}


@functools.lru_cache(maxsize=1)
def cpu_fields() -> dict[str, str]:
    """The first processor's fields of Linux's /proc/cpuinfo (read once; empty elsewhere)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() not in fields:
                fields[key.strip()] = value.strip()
            if not line.strip() and fields:
                break  # the first processor is enough
    except OSError:
        pass
    return fields


def cpu_flags() -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is not)."""
    fields = cpu_fields()
    return set((fields.get("flags") or fields.get("Features") or "").split())


def host_defaults(flags: set[str]) -> dict:
    """The defaults for a CPU with these feature flags: AVX2_DEFAULTS for an x86 CPU without
    AVX-512, none (the class defaults) otherwise."""
    if "avx2" in flags and "avx512f" not in flags:
        return dict(AVX2_DEFAULTS)
    return {}


def machine_id() -> str:
    """What a tuning was measured on: the CPU (its model and a digest of its features) and
    the BLAS the kernels call (seqtool.core.rnn.numpy_blas.KEY); a tuning measured on
    another CPU, or against another BLAS, is not used."""
    fields = cpu_fields()
    if fields:
        model = " ".join(fields.get(k, "?") for k in ("model name", "cpu family", "model"))
    else:  # not Linux
        model = f"{platform.machine()} {platform.processor()}"
    features = " ".join(sorted(cpu_flags()))
    digest = hashlib.sha256(features.encode()).hexdigest()[:16]
    return f"{model} / {digest} / {numpy_blas.KEY}"


def _cpu_part(machine: str) -> str:
    return " / ".join(str(machine).split(" / ")[:2])


def read_store(path: Path | None, machine: str) -> tuple[dict, str]:
    """(fields, why) of the tuning stored at ``path`` for ``machine``: no fields (and why
    not) if there is none, it is unreadable, or it was measured on another CPU; never
    raises (a damaged file must not stop a run: the defaults serve until it is measured
    again)."""
    if path is None:
        return {}, f"{FILE_VARIABLE}=none"
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return {}, "not measured yet (seqtool compile measures it)"
    except (OSError, ValueError) as err:
        return {}, f"unreadable ({type(err).__name__}); seqtool compile --retune measures it again"
    if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
        return {}, "of another version; seqtool compile --retune measures it again"
    if data.get("machine") != machine:
        if _cpu_part(data.get("machine")) == _cpu_part(machine):
            return {}, ("measured with another BLAS library; seqtool compile --retune "
                        "measures this one")
        return {}, "measured on another CPU; seqtool compile --retune measures this one"
    fields = data.get("tuning")
    names = {f.name for f in dataclasses.fields(ProductTuning)} - {"plain"}
    if not isinstance(fields, dict) or not set(fields) <= names:
        return {}, "damaged; seqtool compile --retune measures it again"
    try:
        ProductTuning(**fields)
    except (InputError, TypeError):
        return {}, "damaged; seqtool compile --retune measures it again"
    return dict(fields), "measured on this machine"


def write_store(path: Path, machine: str, fields: dict, details: dict) -> None:
    """Keep ``fields`` as this machine's tuning at ``path`` (written whole, then renamed
    into place: a reader sees the old file or the new one). OSError if it cannot."""
    ProductTuning(**fields)  # a bad value is refused before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": STORE_VERSION, "machine": machine, "tuning": fields,
                       **details}, indent=1)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text + "\n")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


# Read once, at import: the kernels are compiled with these values. Order: the defaults
# (the class's, or AVX2_DEFAULTS), this machine's stored tuning, the environment's.
ENVIRONMENT = {name: os.environ.get(name) for name in (PLAIN_VARIABLE, TUNING_VARIABLE)}
STORE = store_path(os.environ)
STORED, STORED_NOTE = read_store(STORE, machine_id())
_HOST = host_defaults(cpu_flags())
DEFAULTS = ProductTuning(**_HOST)  # this CPU's, before any measurement
TUNING = from_environment(ENVIRONMENT, base={**_HOST, **STORED})

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
