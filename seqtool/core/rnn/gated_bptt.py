"""Backpropagation through time laid open for any registered cell in torch's layouts (the
GRU, the LSTM, and cells registered at run time), and the cells side by side on one sequence.

Each cell (:mod:`seqtool.core.rnn.cells`) brings its forward and backward passes and its
step Jacobian; the output layer and the losses are the vanilla analysis's:
ŷ_t = W_hy h_t + b_y, L = Σ_t L_t. (``--cell rnn`` keeps its own report in math names,
:mod:`seqtool.core.rnn.bptt`.)

What the report keeps, as for the vanilla cell:
- every gradient (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` in torch layouts,
  W_hy, b_y, h_0 and, for the LSTM, c_0);
- the share of ∂L/∂weight_hh that enters at step t, dA_tᵀ h_{t−1} with dA_t the gradient of
  the recurrent-side gate pre-activations (they sum to ∂L/∂weight_hh);
- ‖∂L/∂h_t‖ for t = 0..T;
- ‖∂h_T/∂h_k‖₂ for k = 0..T through the gates: the product of the step Jacobians of the
  state (h, or (h, c) for a cell with a cell state such as the LSTM, whose h→h block is
  reported, and whose c→c block ‖∂c_T/∂c_k‖₂, the cell path that lets LSTM gradients
  survive, is reported too);
- truncated BPTT and a finite-difference check.
Analysis runs in float64 with batch size 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np

from seqtool.core.losses import sequence_loss
from seqtool.core.report import Report
from seqtool.core.rnn.bptt import (
    RNNProblem, analyse, check_summary, check_truncate, finite_difference_check,
    generate_problem, jacobian_entries, optional_parts, scale_to_radius, step_rows,
    trace_parts, verdict,
)
from seqtool.core.rnn.cells import PARAM_NAMES as WEIGHT_NAMES
from seqtool.core.rnn.cells import Cell, CellGradients, get_cell

FORGET_BIAS = 1.0


@dataclass
class GatedProblem:
    """One sequence and the weights of a one-layer cell in torch's layouts (a GRU, an LSTM,
    any registered cell) with a linear output layer."""

    cell: str
    weight_ih: np.ndarray  # (G·H, D)
    weight_hh: np.ndarray  # (G·H, H)
    bias_ih: np.ndarray  # (G·H,)
    bias_hh: np.ndarray  # (G·H,)
    W_hy: np.ndarray  # (O, H)
    b_y: np.ndarray  # (O,)
    h0: np.ndarray  # (H,)
    c0: np.ndarray | None  # (H,), cells with a cell state only
    x: np.ndarray  # (T, D)
    y: np.ndarray  # (S, O) reals for mse, (S,) labels for cross_entropy; S = T or 1
    loss: str = "mse"
    target_at: str = "all"

    @property
    def spec(self) -> Cell:
        return get_cell(self.cell)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return WEIGHT_NAMES + ("W_hy", "b_y", "h0") + (("c0",) if self.spec.has_cell_state
                                                       else ())

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.parameter_names}

    @property
    def steps(self) -> np.ndarray:
        T = self.x.shape[0]
        return np.arange(T) if self.target_at == "all" else np.array([T - 1])

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[1]


def generate_gated_problem(cell: str, steps: int, input_size: int, hidden: int,
                           output_size: int, seed: int = 0, radius: float | None = None,
                           loss: str = "mse", target_at: str = "all",
                           forget_bias: float = FORGET_BIAS) -> GatedProblem:
    """A random problem of the registered ``cell`` on the same sequence, targets and output
    layer as :func:`generate_problem` with the same seed, so that cells can be compared on it.

    Gate weights: input blocks N(0, 1/D), recurrent blocks N(0, 1/H), each recurrent gate
    block rescaled to spectral radius ``radius`` if given; initial states zero; biases zero
    except ``forget_bias`` on the gate that keeps the old state (the cell's ``keep_gate``:
    the LSTM's f, the GRU's z, both block 1 of bias_ih), as Jozefowicz et al. (2015)
    initialise the LSTM's forget gate.
    """
    spec = get_cell(cell)
    base = generate_problem(steps, input_size, hidden, output_size, seed, None, "tanh", loss,
                            target_at)
    G = len(spec.gates)
    rng = np.random.default_rng([seed, G])  # a stream of its own: the sequence stays shared
    D, H = input_size, hidden
    blocks = [rng.normal(0.0, 1.0 / np.sqrt(H), (H, H)) for _ in range(G)]
    if radius is not None:
        blocks = [scale_to_radius(block, radius) for block in blocks]
    bias_ih = np.zeros(G * H)
    if spec.keep_gate is not None:
        bias_ih[spec.keep_gate * H:(spec.keep_gate + 1) * H] = forget_bias
    return GatedProblem(
        cell=cell, weight_ih=rng.normal(0.0, 1.0 / np.sqrt(D), (G * H, D)),
        weight_hh=np.vstack(blocks), bias_ih=bias_ih, bias_hh=np.zeros(G * H),
        W_hy=base.W_hy, b_y=base.b_y, h0=np.zeros(H),
        c0=np.zeros(H) if spec.has_cell_state else None, x=base.x, y=base.y, loss=loss,
        target_at=target_at,
    )


# ---------------------------------------------------------------------------------------
# Forward and backward of one sequence (B = 1)


def _targets(problem: GatedProblem) -> np.ndarray:
    return problem.y[:, None] if problem.loss == "cross_entropy" else problem.y[:, None, :]


def _layer_forward(problem: GatedProblem, p: dict[str, np.ndarray], x: np.ndarray,
                   h0: np.ndarray, c0: np.ndarray | None) -> Any:
    """The cell's forward record over x (T, 1, D) from the states h0, c0 (1, H)."""
    return problem.spec.forward(x, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                                h0, c0)


def _layer_backward(problem: GatedProblem, p: dict[str, np.ndarray], x: np.ndarray,
                    record: Any, dh: np.ndarray) -> CellGradients:
    return problem.spec.backward(x, p["weight_ih"], p["weight_hh"], record, dh)


def _initial_c(problem: GatedProblem, p: dict[str, np.ndarray]) -> np.ndarray | None:
    return p["c0"][None, :] if problem.spec.has_cell_state else None


def forward_loss(problem: GatedProblem, params: dict[str, np.ndarray] | None = None) -> float:
    """L for the problem's data with ``params`` (default: the problem's)."""
    p = params or problem.params
    c0 = _initial_c(problem, p)
    record = _layer_forward(problem, p, problem.x[:, None, :], p["h0"][None, :], c0)
    outputs = record.h[1:] @ p["W_hy"].T + p["b_y"]
    losses, _ = sequence_loss(problem.loss, outputs, _targets(problem), problem.steps)
    return float(losses.sum())


@dataclass
class GatedPass:
    """Forward and backward of one problem; arrays are time-major with the batch dropped."""

    record: Any  # the cell's forward record (GRUForward, LSTMForward, ...), batch of one
    outputs: np.ndarray  # (T, O)
    losses: np.ndarray  # (S,)
    dh_out: np.ndarray  # (T, H) ∂L/∂h_t through the outputs only
    layer: CellGradients  # the cell's gradients (same fields), batch of one
    gradients: dict[str, np.ndarray]


def _truncated_layer(problem: GatedProblem, record: Any, dh_out: np.ndarray,
                     k: int) -> dict[str, np.ndarray]:
    """Truncated BPTT: each L_t's gradient flows through steps t, t−1, ..., t−k+1 only.

    For every step t with a loss, the kernels run on the window of those k steps, started
    from the states that the full forward pass had there (so the window reproduces them)
    and seeded with ∂L_t/∂h_t alone; the state at the window's start is held constant.
    """
    p = problem.params
    X = problem.x[:, None, :]
    T = X.shape[0]
    sums = {name: np.zeros_like(p[name]) for name in WEIGHT_NAMES}
    sums["h0"] = np.zeros_like(p["h0"])
    with_c = problem.spec.has_cell_state
    if with_c:
        sums["c0"] = np.zeros_like(p["c0"])
    for t in range(T):
        if not dh_out[t].any():
            continue
        start = max(0, t - k + 1)
        c_start = record.c[start] if with_c else None
        window = _layer_forward(problem, p, X[start:t + 1], record.h[start], c_start)
        dh = np.zeros((t + 1 - start, 1, problem.hidden_size))
        dh[-1, 0] = dh_out[t]
        g = _layer_backward(problem, p, X[start:t + 1], window, dh)
        for name in WEIGHT_NAMES:
            sums[name] += getattr(g, name)
        if start == 0:  # the window reaches back to the initial state
            sums["h0"] += g.h0[0]
            if with_c:
                sums["c0"] += g.c0[0]
    return sums


def forward_backward(problem: GatedProblem, truncate: int | None = None) -> GatedPass:
    """Every gradient of L by BPTT (each L_t reaching back at most ``truncate`` steps)."""
    p = problem.params
    X = problem.x[:, None, :]
    record = _layer_forward(problem, p, X, p["h0"][None, :], _initial_c(problem, p))
    outputs = record.h[1:] @ problem.W_hy.T + problem.b_y  # (T, 1, O)
    losses, dy = sequence_loss(problem.loss, outputs, _targets(problem), problem.steps)
    dh_out = dy @ problem.W_hy  # (T, 1, H)
    layer = _layer_backward(problem, p, X, record, dh_out)
    gradients = {name: getattr(layer, name) for name in WEIGHT_NAMES}
    gradients.update(W_hy=dy[:, 0].T @ record.h[1:, 0], b_y=dy[:, 0].sum(axis=0),
                     h0=layer.h0[0])
    if problem.spec.has_cell_state:
        gradients["c0"] = layer.c0[0]
    if truncate is not None and truncate < X.shape[0]:
        gradients.update(_truncated_layer(problem, record, dh_out[:, 0], truncate))
    return GatedPass(record, outputs[:, 0], losses[:, 0], dh_out[:, 0], layer, gradients)


# ---------------------------------------------------------------------------------------
# The pieces of the report


def hidden_gradient_norms(problem: GatedProblem, run: GatedPass) -> np.ndarray:
    """‖∂L/∂h_t‖ for t = 0..T: through the output at t plus through step t+1.

    Step t+1 reads h_t through the recurrent pre-activations (dAh_{t+1} W_hh) and, where
    the cell has one (:meth:`Cell.direct_path`, the GRU's h_{t+1} = ... + z ⊙ h_t),
    elementwise past them.
    """
    T, H = run.dh_out.shape
    dAh = run.layer.dA_hh[:, 0]  # (T, G·H); row t is step t+1
    through_gates = dAh @ problem.weight_hh  # row t: ∂L/∂h_t via step t+1's gates
    total = np.zeros((T + 1, H))
    total[T] = run.dh_out[T - 1]
    for t in range(T - 1, -1, -1):
        total[t] = through_gates[t] + (run.dh_out[t - 1] if t > 0 else 0.0)
        direct = problem.spec.direct_path(run.record, t)
        if direct is not None:
            total[t] += total[t + 1] * direct
    return np.linalg.norm(total, axis=1)


def step_jacobian(problem: GatedProblem, record: Any, t: int) -> np.ndarray:
    """∂s_{t+1}/∂s_t of step t+1 (0-based t): the problem's cell's (:meth:`Cell.step_jacobian`)."""
    return problem.spec.step_jacobian(problem.weight_hh, record, t)


def jacobian_norms(problem: GatedProblem, record: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """‖∂h_T/∂h_k‖₂ for k = 0..T, and for a cell with a cell state ‖∂c_T/∂c_k‖₂ (else None)."""
    T, H = record.h.shape[0] - 1, problem.hidden_size
    with_c = problem.spec.has_cell_state
    S = problem.spec.state_size(H)
    h_norms, c_norms = np.empty(T + 1), np.empty(T + 1)
    M = np.eye(S)
    h_norms[T] = c_norms[T] = 1.0
    for k in range(T - 1, -1, -1):
        M = M @ step_jacobian(problem, record, k)
        h_norms[k] = np.linalg.norm(M[:H, :H], 2)
        c_norms[k] = np.linalg.norm(M[H:, H:], 2) if with_c else 0.0
    return h_norms, (c_norms if with_c else None)


def jacobian_between(problem: GatedProblem, record: Any, t: int, k: int) -> np.ndarray:
    """∂h_t/∂h_k (H, H): the h-block of ∂s_t/∂s_k = Π_{j=k+1..t} ∂s_j/∂s_{j−1}, the product
    of the cell's step Jacobians (:meth:`Cell.step_jacobian`) over the state s (h, or (h, c)
    for a cell with a cell state, whose c_k is then held fixed), 0 ≤ k < t ≤ T."""
    H = problem.hidden_size
    M = np.eye(problem.spec.state_size(H))
    for j in range(k, t):  # step_jacobian(..., j) is ∂s_{j+1}/∂s_j
        M = step_jacobian(problem, record, j) @ M
    return M[:H, :H]


def gate_radii(problem: GatedProblem) -> dict[str, float]:
    """The spectral radius of each gate's H×H block of weight_hh."""
    H = problem.hidden_size
    W = problem.weight_hh
    return {name: float(np.max(np.abs(np.linalg.eigvals(W[q * H:(q + 1) * H]))))
            for q, name in enumerate(problem.spec.gates)}


# ---------------------------------------------------------------------------------------
# The reports


@dataclass
class GatedBpttReport(Report):
    """Everything `seqtool bptt --cell gru|lstm|...` computed; ``to_dict`` is its JSON form,
    ``rows`` its CSV."""

    problem: GatedProblem
    generated: bool
    loss: float
    losses: np.ndarray
    loss_steps: list[int]
    hidden: np.ndarray  # (T, H)
    cells: np.ndarray | None  # (T, H) c_1..c_T, cells with a cell state only
    outputs: np.ndarray  # (T, O)
    gradients: dict[str, np.ndarray]
    per_step: np.ndarray  # (T, G·H, H): dAh_tᵀ h_{t−1}
    dL_dh: np.ndarray  # (T+1,)
    jacobian_norms: np.ndarray  # (T+1,) ‖∂h_T/∂h_k‖₂
    cell_norms: np.ndarray | None  # (T+1,) ‖∂c_T/∂c_k‖₂, cells with a cell state only
    spectral_radii: dict[str, float]
    verdict: str
    rate: float
    truncate: int | None = None
    truncated: dict[str, np.ndarray] | None = None
    check: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    # --jacobian t,k: {"t", "k", "matrix" ∂h_t/∂h_k, "norm" its spectral norm} per pair
    jacobians: list[dict[str, Any]] | None = None

    @property
    def cell(self) -> str:
        return self.problem.cell

    @property
    def spectral_radius(self) -> float:
        """The largest of the gate blocks' spectral radii."""
        return max(self.spectral_radii.values())

    def to_dict(self) -> dict[str, Any]:
        p = self.problem
        T, D = p.x.shape
        out: dict[str, Any] = {
            "cell": p.cell, "gates": list(p.spec.gates), "loss_name": p.loss,
            "target_at": p.target_at, "generated": self.generated,
            "shapes": {"T": T, "D": D, "H": p.hidden_size, "O": p.W_hy.shape[0]},
            "problem": {name: value.tolist() for name, value in
                        {**p.params, "x": p.x, "y": p.y}.items()},
            **trace_parts(self, "dweight_hh"),
        }
        out["jacobian_norms"]["spectral_radii"] = self.spectral_radii
        if self.cells is not None:
            out["cell_state"] = self.cells.tolist()
            out["jacobian_norms"]["cell_norms"] = self.cell_norms.tolist()
        out.update(optional_parts(self))
        return out

    def rows(self) -> list[dict[str, Any]]:
        """The CSV: one row per t = 0..T (see :func:`seqtool.core.rnn.bptt.step_rows`)."""
        return step_rows(self)


def analyse_gated(problem: GatedProblem, *, truncate: int | None = None, check: bool = False,
                  generated: bool = False, jacobians: Sequence[tuple[int, int]] | None = None,
                  on_check: Callable[[int, int], None] | None = None) -> GatedBpttReport:
    """Run the whole analysis of a gated ``problem`` (and the matrices ∂h_t/∂h_k of
    ``jacobians``, pairs (t, k) with 0 ≤ k < t ≤ T)."""
    check_truncate(truncate)
    run = forward_backward(problem)
    h_norms, c_norms = jacobian_norms(problem, run.record)
    kind, rate = verdict(h_norms)
    h = run.record.h[:, 0]
    report = GatedBpttReport(
        problem=problem, generated=generated, loss=float(run.losses.sum()), losses=run.losses,
        loss_steps=[int(t) + 1 for t in problem.steps], hidden=h[1:],
        cells=run.record.c[1:, 0] if problem.spec.has_cell_state else None,
        outputs=run.outputs,
        gradients=run.gradients,
        per_step=run.layer.dA_hh[:, 0, :, None] * h[:-1, None, :],  # dAh_t h_{t−1}ᵀ
        dL_dh=hidden_gradient_norms(problem, run), jacobian_norms=h_norms, cell_norms=c_norms,
        spectral_radii=gate_radii(problem), verdict=kind, rate=rate,
    )
    if truncate is not None:
        report.truncate = truncate
        report.truncated = forward_backward(problem, truncate).gradients
    if check:
        errors = finite_difference_check(problem, run.gradients, loss=forward_loss,
                                         progress=on_check)
        report.check = check_summary(errors)
    if jacobians:
        report.jacobians = jacobian_entries(jacobians, lambda t, k: jacobian_between(
            problem, run.record, t, k))
    return report


@dataclass
class CellComparison(Report):
    """`seqtool bptt --cell rnn,gru,lstm`: each cell's report on the same sequence."""

    reports: list[Any]  # BpttReport or GatedBpttReport, in the order asked for

    @property
    def cells(self) -> list[str]:
        return [getattr(r, "cell", "rnn") for r in self.reports]

    @property
    def check(self) -> dict[str, Any] | None:
        """The worst of the cells' finite-difference checks (None without --check)."""
        checks = [r.check for r in self.reports if r.check is not None]
        if not checks:
            return None
        return max(checks, key=lambda c: (not c["passed"], c["max_relative_error"]))

    def to_dict(self) -> dict[str, Any]:
        first = self.reports[0].problem
        T = first.x.shape[0]
        return {
            "cells": self.cells,
            "k": list(range(T + 1)),
            "side_by_side": [
                {"cell": cell, "loss": r.loss, "jacobian_norms": r.jacobian_norms.tolist(),
                 "dL_dh": r.dL_dh.tolist(), "verdict": r.verdict, "rate_per_step": r.rate,
                 "spectral_radius": r.spectral_radius}
                for cell, r in zip(self.cells, self.reports)
            ],
            "reports": [r.to_dict() for r in self.reports],
        }

    def rows(self) -> list[dict[str, Any]]:
        """The CSV: one row per t = 0..T with each cell's ‖∂L/∂h_t‖ and ‖∂h_T/∂h_t‖ in
        columns named after it."""
        T = len(self.reports[0].dL_dh) - 1
        return [
            {"t": t, **{f"{cell}_{column}": float(value) for cell, r in zip(self.cells, self.reports)
                        for column, value in (("dL_dh_norm", r.dL_dh[t]),
                                              ("jacobian_norm", r.jacobian_norms[t]))}}
            for t in range(T + 1)
        ]


def analyse_any(problem: Any, *, truncate: int | None = None, check: bool = False,
                generated: bool = False, jacobians: Sequence[tuple[int, int]] | None = None,
                on_check: Callable[[str, int, int], None] | None = None) -> Any:
    """Analyse an RNNProblem, a GatedProblem, or a list of them side by side (``jacobians``:
    one problem only); ``on_check(cell, done, total)`` follows each finite-difference check."""
    if isinstance(problem, list):
        return CellComparison([analyse_any(p, truncate=truncate, check=check,
                                           generated=generated, on_check=on_check)
                               for p in problem])
    follow = None if on_check is None else partial(on_check, getattr(problem, "cell", "rnn"))
    if isinstance(problem, GatedProblem):
        return analyse_gated(problem, truncate=truncate, check=check, generated=generated,
                             jacobians=jacobians, on_check=follow)
    if isinstance(problem, RNNProblem):
        return analyse(problem, truncate=truncate, check=check, generated=generated,
                       jacobians=jacobians, on_check=follow)
    raise TypeError(f"not a BPTT problem: {type(problem).__name__}")
