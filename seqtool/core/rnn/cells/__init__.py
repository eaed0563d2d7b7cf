"""The recurrent cells as a registry: one module per cell on one template, :class:`Cell`.

A cell is one layer's recurrence s_t = cell(s_{t−1}, x_t) with the state s = h, or (h, c)
for a cell with a cell state, and parameters in PyTorch's layouts: ``weight_ih`` (G·H, D),
``weight_hh`` (G·H, H), ``bias_ih``, ``bias_hh`` (G·H,), the G row blocks being the gates
in :attr:`Cell.gates` order (rnn: one block; gru: r, z, n; lstm: i, f, g, o).

Everything that needs "every cell" (``seqtool.core.rnn.stack``, ``seqtool.core.models``,
the BPTT analysis, the choices of ``--cell``) iterates over :func:`cell_names` or looks a
name up with :func:`get_cell`; an unknown name is an :class:`InputError`, never another
cell's behaviour. Adding a cell is one module with a subclass of :class:`Cell` and a
:func:`register_cell` call (imported below for the built-in ones), plus its reference test.

This module and the cell modules import no numba: the kernels load on the first
``forward`` or ``backward`` (:func:`kernels`), so that naming a cell in a config costs
nothing at start-up.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterator

import numpy as np

from seqtool.core.errors import InputError

PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@dataclass
class CellGradients:
    """∂L/∂ of one layer's parameters (torch layouts), its initial state and its input.

    ``dA_ih`` and ``dA_hh`` (T, B, G·H) are the gradients of the input-side and the
    recurrent-side pre-activations, X W_ihᵀ + b_ih and h_{t−1} W_hhᵀ + b_hh, per step: so
    ∂L/∂weight_hh = Σ_t dA_hh,tᵀ h_{t−1} (the BPTT report's per-step shares) and a caller
    that formed X W_ihᵀ itself gets ∂L/∂weight_ih = Σ_t dA_ih,tᵀ x_t from them.
    (:class:`seqtool.core.rnn.gated.GatedGradients` has the same fields.)
    """

    weight_ih: np.ndarray | None  # (G·H, D); None without input_products
    weight_hh: np.ndarray  # (G·H, H)
    bias_ih: np.ndarray  # (G·H,)
    bias_hh: np.ndarray  # (G·H,)
    h0: np.ndarray  # (B, H)
    x: np.ndarray | None  # (T, B, D); None without input_products
    dA_ih: np.ndarray  # (T, B, G·H)
    dA_hh: np.ndarray  # (T, B, G·H)
    c0: np.ndarray | None = None  # (B, H), cells with a cell state only


class Cell:
    """The template of a recurrent cell. A subclass sets the class attributes and
    implements :meth:`forward`, :meth:`backward` and :meth:`step_jacobian`.

    Attributes:
        name: what ``--cell`` calls it.
        gates: the names of the G row blocks of weight_ih / weight_hh, in torch's order.
        has_cell_state: whether the state is (h, c) rather than h (records then have ``c``).
        activations: the choices of f for a cell that has one (the vanilla rnn); empty for
            a cell whose nonlinearities are fixed (the ``activation`` arguments are then
            ignored).
        keep_gate: the gate block whose bias_ih a generated BPTT problem sets to
            ``forget_bias`` (the gate that keeps the old state: the LSTM's f, the GRU's z),
            or None.
        description: one line for help texts.
        uses_workspace: ``forward`` and ``backward`` take ``workspace=`` (a
            :class:`seqtool.core.buffers.Workspace` that lends their large arrays again on
            the next call: the training loop passes one); a cell without it gets fresh
            arrays every call.
        skips_initial_state: ``backward`` takes ``initial_state=False`` (∂L/∂h_0, ∂L/∂c_0
            not wanted: the record's ``h0``, ``c0`` are then None, and the product that
            forms ∂L/∂h_0 is skipped); a cell without it computes them anyway.
        reads_table_rows: ``forward``'s ``projected`` may be a
            :class:`seqtool.core.rnn.table_rows.TableRows` (the rows of a table by token,
            not yet gathered); a cell without it gets the gathered array.
    """

    name: str = ""
    gates: tuple[str, ...] = ()
    has_cell_state: bool = False
    activations: tuple[str, ...] = ()
    keep_gate: int | None = None
    description: str = ""
    uses_workspace: bool = False
    reads_table_rows: bool = False
    skips_initial_state: bool = False

    # -- the layer ----------------------------------------------------------------------

    def forward(self, X, weight_ih, weight_hh, bias_ih, bias_hh, h0=None, c0=None,
                lengths=None, *, projected=None, activation: str = "tanh") -> Any:
        """Every state of one layer over X (T, B, D) from h0, c0 (B, H) or None (zeros).

        Returns a record with ``h`` (T+1, B, H), h[0] = h0 (and ``c`` likewise for a cell
        with a cell state) and whatever :meth:`backward` and :meth:`step_jacobian` need.
        ``lengths`` (B,), longest first: sequence b runs lengths[b] steps and then keeps its
        state (None: all T). ``projected`` (T, B, G·H): X weight_ihᵀ formed by the caller
        (X is then not read and may be None; the array may be consumed).
        """
        raise NotImplementedError

    def backward(self, X, weight_ih, weight_hh, record, dh, dc_n=None, *, lengths=None,
                 activation: str = "tanh", input_products: bool = True) -> CellGradients:
        """Every gradient of the layer given ∂L/∂h_t (dh (T, B, H), through whatever reads
        h_t) and ∂L/∂c_T (dc_n (B, H) or None), which it only reads (dh may be the caller's
        own array). ``lengths`` as given to :meth:`forward`. ``input_products`` False
        leaves ∂L/∂weight_ih and ∂L/∂X (None) to a caller that formed X weight_ihᵀ itself:
        it has dA_ih for them."""
        raise NotImplementedError

    # -- the BPTT analysis (batch row 0 of a record) ---------------------------------------

    def step_jacobian(self, weight_hh: np.ndarray, record: Any, t: int,
                      activation: str = "tanh") -> np.ndarray:
        """∂s_{t+1}/∂s_t of step t+1 (0-based t) for row 0 of ``record``: (H, H), or
        (2H, 2H) with s = (h, c) for a cell with a cell state (h first)."""
        raise NotImplementedError

    def direct_path(self, record: Any, t: int) -> np.ndarray | None:
        """The diagonal of ∂h_{t+1}/∂h_t that does not pass through weight_hh h_t (the
        GRU's z), for row 0 of ``record``; None when h_t reaches step t+1 only through
        weight_hh (so ∂L/∂h_t via step t+1 is dA_hh,{t+1} weight_hh)."""
        return None

    def bptt_problem(self, *, steps: int, input_size: int, hidden: int, output_size: int,
                     seed: int = 0, radius: float | None = None, activation: str = "tanh",
                     loss: str = "mse", target_at: str = "all", forget_bias: float = 1.0) -> Any:
        """The generated problem that `seqtool bptt --cell NAME` analyses: one layer of this
        cell in torch's layouts (:func:`seqtool.core.rnn.gated_bptt.generate_gated_problem`),
        on the sequence, targets and output layer that every cell shares for ``seed``."""
        from seqtool.core.rnn.gated_bptt import generate_gated_problem

        return generate_gated_problem(self.name, steps, input_size, hidden, output_size, seed,
                                      radius, loss, target_at, forget_bias)

    # -- parameters and kernels ----------------------------------------------------------

    def state_size(self, hidden: int) -> int:
        """The size of the state s: H, or 2H with a cell state."""
        return 2 * hidden if self.has_cell_state else hidden

    def blank_record(self, T: int, B: int, H: int, dtype: Any) -> Any:
        """A record of zeros of the types :meth:`forward` returns for T steps, B rows and H
        units, or None. Only the types matter: with it, a helper process of the warm-up
        compiles the backward kernel while this one compiles the forward pass
        (seqtool.core.rnn.warmup). Default None: no helper (a NumPy cell compiles
        nothing)."""
        return None

    def warm_extra(self, dtype: Any) -> None:
        """Run, on tiny arrays of ``dtype``, any kernel the BPTT analysis uses besides
        forward and backward (so that the warm-up loads or compiles it before a run; the
        vanilla cell's truncated backward). Default: none."""

    def init_layer(self, rng: np.random.Generator, input_size: int, hidden: int,
                   dtype: Any) -> dict[str, np.ndarray]:
        """PyTorch's default initialisation of one layer: every entry ~ U(−1/√H, 1/√H),
        drawn in the order weight_ih, weight_hh, bias_ih, bias_hh."""
        bound = 1.0 / np.sqrt(hidden)
        G = len(self.gates)
        shapes = {"weight_ih": (G * hidden, input_size), "weight_hh": (G * hidden, hidden),
                  "bias_ih": (G * hidden,), "bias_hh": (G * hidden,)}
        return {name: rng.uniform(-bound, bound, shapes[name]).astype(dtype)
                for name in PARAM_NAMES}


    def check_activation(self, activation: str) -> None:
        if self.activations and activation not in self.activations:
            raise InputError("activation", f"is '{activation}'; the {self.name} cell takes "
                             f"{', '.join(self.activations)}")

    def __repr__(self) -> str:
        return f"<cell {self.name}: gates {','.join(self.gates)}>"


_REGISTRY: dict[str, Cell] = {}


def register_cell(cell: Cell) -> Cell:
    """Add ``cell`` (an instance of a :class:`Cell` subclass) under ``cell.name``."""
    if not cell.name or not cell.gates:
        raise ValueError("a cell needs a name and at least one gate block")
    if cell.name in _REGISTRY or cell.name == "bow":
        raise ValueError(f"a cell named {cell.name!r} is already registered")
    _REGISTRY[cell.name] = cell
    return cell


def unregister_cell(name: str) -> None:
    """Remove a cell registered at run time (tests)."""
    _REGISTRY.pop(name)


@contextmanager
def registered(cell: Cell) -> Iterator[Cell]:
    """``with registered(MyCell()):`` the cell is known inside the block only."""
    register_cell(cell)
    try:
        yield cell
    finally:
        unregister_cell(cell.name)


def cell_names() -> tuple[str, ...]:
    """Every registered cell, in registration order (rnn, gru, lstm, then any others)."""
    return tuple(_REGISTRY)


def unknown_cell(name: str, key: str = "cell", choices: tuple[str, ...] | None = None,
                 ) -> InputError:
    """The error for a name that is not a cell: a did-you-mean hint and the known names."""
    known = cell_names() if choices is None else choices
    hint = difflib.get_close_matches(str(name), known, n=1)
    maybe = f" (did you mean {hint[0]}?)" if hint else ""
    return InputError(key, f"is '{name}'{maybe}; choose one of {', '.join(known)}")


@functools.cache
def kernels(module: str) -> ModuleType:
    """seqtool.core.rnn.<module> (vanilla, gated), imported on first use: the kernel modules
    load numba, which the registry's users (`seqtool attend`, the CLI's help) never need.
    A cell's forward and backward run once per batch, where an import statement of their
    own would cost ~0.6 µs a call."""
    return importlib.import_module(f"seqtool.core.rnn.{module}")


def get_cell(name: str) -> Cell:
    """The registered cell called ``name``; InputError('cell', ...) for any other name."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise unknown_cell(name) from None


# The built-in cells register themselves, in this order.
from seqtool.core.rnn.cells import rnn as _rnn  # noqa: E402,F401
from seqtool.core.rnn.cells import gru as _gru  # noqa: E402,F401
from seqtool.core.rnn.cells import lstm as _lstm  # noqa: E402,F401

__all__ = ["Cell", "CellGradients", "PARAM_NAMES", "cell_names", "get_cell", "register_cell",
           "registered", "unknown_cell", "unregister_cell"]
