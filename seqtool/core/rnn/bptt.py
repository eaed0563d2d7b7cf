"""Backpropagation through time laid open, for one sequence of a vanilla RNN.

    z_t = W_xh x_t + W_hh h_{t−1} + b_h,  h_t = f(z_t),  ŷ_t = W_hy h_t + b_y,  L = Σ_t L_t

Besides every gradient, the analysis keeps what homework answers write by hand:
- the share of ∂L/∂W_hh that enters at step t, dz_t h_{t−1}ᵀ (they sum to ∂L/∂W_hh);
- ‖∂L/∂h_t‖ for t = 0..T, the whole gradient reaching each hidden state;
- ‖∂h_T/∂h_k‖₂ = ‖Π_{j=k+1..T} diag(f'(z_j)) W_hh‖₂ for k = 0..T, whose decay or growth per
  step is why gradients vanish or explode;
- truncated BPTT (each L_t reaches back at most k steps) next to the full gradient;
- a central finite-difference check of every parameter.
Analysis runs in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from seqtool.core import parallel
from seqtool.core.errors import InputError
from seqtool.core.report import Report
from seqtool.core.losses import LOSSES, TARGETS_AT, sequence_loss
from seqtool.core.rnn.cells import get_cell
from seqtool.core.rnn.cells.rnn import RNN, RNNForward
from seqtool.core.rnn.vanilla import ACTIVATIONS, rnn_backward, rnn_forward

PARAMETERS = ("W_xh", "W_hh", "W_hy", "b_h", "b_y", "h0")
CHECK_TOLERANCE = 1e-6
FD_STEP = 1e-4
FD_FLOOR = 1e-6
VANISHING_BELOW = 0.9  # geometric-mean change of ‖∂h_T/∂h_k‖ per step
EXPLODING_ABOVE = 1.1


@dataclass
class RNNProblem:
    """One sequence and the weights of a vanilla RNN with a linear output layer."""

    W_xh: np.ndarray  # (H, D)
    W_hh: np.ndarray  # (H, H)
    W_hy: np.ndarray  # (O, H)
    b_h: np.ndarray  # (H,)
    b_y: np.ndarray  # (O,)
    h0: np.ndarray  # (H,)
    x: np.ndarray  # (T, D)
    y: np.ndarray  # (S, O) reals for mse, (S,) labels for cross_entropy; S = T or 1
    activation: str = "tanh"
    loss: str = "mse"
    target_at: str = "all"

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in PARAMETERS}

    @property
    def steps(self) -> np.ndarray:
        """0-based time indices with a loss term."""
        T = self.x.shape[0]
        return np.arange(T) if self.target_at == "all" else np.array([T - 1])


def scale_to_radius(W: np.ndarray, radius: float) -> np.ndarray:
    """W · g/ρ(W): the same matrix with spectral radius g."""
    rho = float(np.max(np.abs(np.linalg.eigvals(W))))
    return W * (radius / rho) if rho > 0 else W


def generate_problem(
    steps: int, input_size: int, hidden: int, output_size: int, seed: int = 0,
    radius: float | None = None, activation: str = "tanh", loss: str = "mse",
    target_at: str = "all",
) -> RNNProblem:
    """A random problem: weights N(0, 1/fan_in), W_hh rescaled to spectral radius ``radius``
    if given, inputs N(0, 1), targets N(0, 1) (mse) or uniform labels (cross_entropy)."""
    rng = np.random.default_rng(seed)
    T, D, H, O = steps, input_size, hidden, output_size
    W_hh = rng.normal(0.0, 1.0 / np.sqrt(H), (H, H))
    if radius is not None:
        W_hh = scale_to_radius(W_hh, radius)
    S = T if target_at == "all" else 1
    y = rng.normal(size=(S, O)) if loss == "mse" else rng.integers(0, O, size=S).astype(float)
    return RNNProblem(
        W_xh=rng.normal(0.0, 1.0 / np.sqrt(D), (H, D)), W_hh=W_hh,
        W_hy=rng.normal(0.0, 1.0 / np.sqrt(H), (O, H)), b_h=np.zeros(H), b_y=np.zeros(O),
        h0=np.zeros(H), x=rng.normal(size=(T, D)), y=y, activation=activation, loss=loss,
        target_at=target_at,
    )


# ---------------------------------------------------------------------------------------
# Forward and backward of one sequence (B = 1)


@dataclass
class Pass:
    """Forward and backward of one problem; arrays are time-major with the batch dropped."""

    h: np.ndarray  # (T+1, H), h[0] = h0
    outputs: np.ndarray  # (T, O)
    losses: np.ndarray  # (S,)
    dy: np.ndarray  # (T, O) ∂L/∂ŷ_t
    dh_out: np.ndarray  # (T, H) ∂L/∂h_t through the outputs only
    dz: np.ndarray  # (T, H) ∂L/∂z_t
    gradients: dict[str, np.ndarray]


def _targets(problem: RNNProblem) -> np.ndarray:
    return problem.y[:, None] if problem.loss == "cross_entropy" else problem.y[:, None, :]


def forward_loss(problem: RNNProblem, params: dict[str, np.ndarray] | None = None) -> float:
    """L for the problem's data with ``params`` (default: the problem's)."""
    p = params or problem.params
    h = rnn_forward(problem.x[:, None, :], p["W_xh"], p["W_hh"], p["b_h"], p["h0"][None, :],
                    problem.activation)
    outputs = h[1:] @ p["W_hy"].T + p["b_y"]
    losses, _ = sequence_loss(problem.loss, outputs, _targets(problem), problem.steps)
    return float(losses.sum())


def forward_backward(problem: RNNProblem, truncate: int | None = None) -> Pass:
    """Every gradient of L by BPTT (each L_t reaching back at most ``truncate`` steps)."""
    X = problem.x[:, None, :]  # (T, 1, D)
    h = rnn_forward(X, problem.W_xh, problem.W_hh, problem.b_h, problem.h0[None, :],
                    problem.activation)  # (T+1, 1, H)
    outputs = h[1:] @ problem.W_hy.T + problem.b_y  # (T, 1, O)
    losses, dy = sequence_loss(problem.loss, outputs, _targets(problem), problem.steps)
    dh_out = dy @ problem.W_hy  # (T, 1, H)
    rnn = rnn_backward(X, problem.W_xh, problem.W_hh, h, dh_out, problem.activation, truncate)
    gradients = {
        "W_xh": rnn.W_xh, "W_hh": rnn.W_hh, "W_hy": dy[:, 0].T @ h[1:, 0],
        "b_h": rnn.b_h, "b_y": dy[:, 0].sum(axis=0), "h0": rnn.h0[0],
    }
    return Pass(h[:, 0], outputs[:, 0], losses[:, 0], dy[:, 0], dh_out[:, 0], rnn.dz[:, 0],
                gradients)


# ---------------------------------------------------------------------------------------
# The pieces of the report


def hidden_gradient_norms(problem: RNNProblem, run: Pass) -> np.ndarray:
    """‖∂L/∂h_t‖ for t = 0..T: through the output at t plus through z_{t+1}."""
    through_next = run.dz @ problem.W_hh  # row t: ∂L/∂h_t via z_{t+1}, t = 0..T−1
    total = np.vstack([through_next[:1], run.dh_out])  # t = 0 has no output
    total[1:-1] += through_next[1:]
    return np.linalg.norm(total, axis=1)


def jacobian_norms(problem: RNNProblem, h: np.ndarray) -> np.ndarray:
    """‖∂h_T/∂h_k‖₂ for k = 0..T, with the rnn cell's step Jacobian
    ∂h_j/∂h_{j−1} = diag(f'(z_j)) W_hh."""
    T, H = h.shape[0] - 1, h.shape[1]
    record = RNNForward(h[:, None, :])  # (T+1, 1, H)
    norms = np.empty(T + 1)
    J = np.eye(H)
    norms[T] = 1.0
    for k in range(T - 1, -1, -1):
        J = J @ RNN.step_jacobian(problem.W_hh, record, k, problem.activation)
        norms[k] = np.linalg.norm(J, 2)
    return norms


def jacobian_between(problem: RNNProblem, h: np.ndarray, t: int, k: int) -> np.ndarray:
    """∂h_t/∂h_k = Π_{j=k+1..t} diag(f'(z_j)) W_hh (H, H), the chain that carries a gradient
    from step t back to step k (0 ≤ k < t ≤ T; h is (T+1, H) with h[0] = h_0)."""
    record = RNNForward(h[:, None, :])  # (T+1, 1, H)
    J = np.eye(h.shape[1])
    for j in range(k, t):  # step_jacobian(..., j) is ∂h_{j+1}/∂h_j
        J = RNN.step_jacobian(problem.W_hh, record, j, problem.activation) @ J
    return J


def verdict(norms: np.ndarray) -> tuple[str, float]:
    """vanishing / exploding / stable from the change of ‖∂h_T/∂h_k‖ per step back."""
    T = len(norms) - 1
    if T == 0:
        return "stable", 1.0
    rate = float(norms[0] ** (1.0 / T)) if norms[0] > 0 else 0.0
    if rate < VANISHING_BELOW:
        return "vanishing", rate
    if rate > EXPLODING_ABOVE:
        return "exploding", rate
    return "stable", rate


def finite_difference_check(
    problem: Any, analytic: dict[str, np.ndarray], eps: float = FD_STEP,
    loss: Callable[[Any, dict[str, np.ndarray]], float] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """Check every parameter entry against the five-point central difference
    ∂L/∂θ ≈ (−L(θ+2ε) + 8L(θ+ε) − 8L(θ−ε) + L(θ−2ε)) / 12ε, whose truncation error is O(ε⁴),
    so ε = 1e-4 leaves rounding (~1e-12) as the only noise.

    Per parameter, the relative error is max|a − n| / max(max|a|, max|n|, floor), where the
    floor, 1e-6 of the largest gradient of any parameter, keeps a vanished gradient
    (say 1e-15, below what any difference quotient resolves) from failing on noise alone.
    ``problem.params`` names the parameters; ``loss(problem, params)`` is L at other values
    (default: the vanilla RNN's :func:`forward_loss`). ``progress(done, total)`` hears of
    each parameter entry checked (four forward passes each).
    """
    forward_loss_of = loss or forward_loss
    base = problem.params
    floor = FD_FLOOR * max(float(np.abs(analytic[name]).max()) for name in base)
    entries = [(name, index) for name in base for index in np.ndindex(base[name].shape)]

    def difference_quotient(k: int) -> float:
        name, index = entries[k]
        value = base[name]

        def loss_at(offset: float) -> float:
            moved = value.copy()
            moved[index] += offset
            return forward_loss_of(problem, {**base, name: moved})

        return (-loss_at(2 * eps) + 8 * loss_at(eps) - 8 * loss_at(-eps)
                + loss_at(-2 * eps)) / (12 * eps)

    quotients = _spread(difference_quotient, len(entries), progress)
    errors, start = {}, 0
    for name in base:
        value = base[name]
        numeric = quotients[start:start + value.size].reshape(value.shape).astype(value.dtype)
        start += value.size
        scale = max(np.abs(analytic[name]).max(), np.abs(numeric).max(), floor, 1e-300)
        errors[name] = float(np.abs(analytic[name] - numeric).max() / scale)
    return errors


def _spread(compute: Callable[[int], float], count: int,
            progress: Callable[[int, int], None] | None) -> np.ndarray:
    """[compute(0), ..., compute(count − 1)], entry k on part k mod n of the thread count's
    parts (seqtool.core.parallel; each entry is computed alone, so the numbers do not depend
    on n); ``progress(done, count)`` is heard on the calling thread."""
    out = np.empty(count)
    n = max(1, min(parallel.current_threads(), count))
    done = [0] * n

    def part(i: int) -> Callable[[], None]:
        def run() -> None:
            for k in range(i, count, n):
                out[k] = compute(k)
                done[i] += 1
                if i == 0 and progress is not None:
                    progress(sum(done), count)
        return run

    if n == 1:
        part(0)()
    else:
        parallel.crew(n).run([part(i) for i in range(n)])
        if progress is not None:
            progress(count, count)
    return out


# ---------------------------------------------------------------------------------------
# The report


def _tolist(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


@dataclass
class BpttReport(Report):
    """Everything `seqtool bptt` computed; ``to_dict`` is its JSON form, ``rows`` its CSV."""

    problem: RNNProblem
    generated: bool
    loss: float
    losses: np.ndarray
    loss_steps: list[int]  # 1-based t of each loss term
    hidden: np.ndarray  # (T, H) h_1..h_T
    outputs: np.ndarray  # (T, O)
    gradients: dict[str, np.ndarray]
    per_step: np.ndarray  # (T, H, H): dz_t h_{t−1}ᵀ
    dL_dh: np.ndarray  # (T+1,)
    jacobian_norms: np.ndarray  # (T+1,)
    spectral_radius: float
    verdict: str
    rate: float
    truncate: int | None = None
    truncated: dict[str, np.ndarray] | None = None
    check: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    # --jacobian t,k: {"t", "k", "matrix" ∂h_t/∂h_k, "norm" its spectral norm} per pair
    jacobians: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        p = self.problem
        out: dict[str, Any] = {
            "activation": p.activation, "loss_name": p.loss, "target_at": p.target_at,
            "generated": self.generated,
            "shapes": {"T": p.x.shape[0], "D": p.x.shape[1], "H": p.W_hh.shape[0],
                       "O": p.W_hy.shape[0]},
            "problem": {name: _tolist(getattr(p, name)) for name in (*PARAMETERS, "x", "y")},
            **trace_parts(self, "dW_hh"),
        }
        out.update(optional_parts(self))
        return out

    def rows(self) -> list[dict[str, Any]]:
        return step_rows(self)


def step_rows(report: Any) -> list[dict[str, Any]]:
    """The CSV of one cell's report: one row per time step t = 0..T (t = 0 is h_0: no loss,
    no share, so those fields are empty)."""
    losses = dict(zip(report.loss_steps, report.losses.tolist()))
    shares = [""] + [float(np.linalg.norm(share)) for share in report.per_step]
    return [{"t": t, "loss": losses.get(t, ""), "dL_dh_norm": float(report.dL_dh[t]),
             "jacobian_norm": float(report.jacobian_norms[t]), "share_norm": shares[t]}
            for t in range(len(report.dL_dh))]


def trace_parts(report: Any, share_name: str) -> dict[str, Any]:
    """The JSON of what every cell's report has: the loss, states, gradients, per-step
    shares (named ``share_name``), ‖∂L/∂h_t‖ and the Jacobian norms with their verdict."""
    return {
        "loss": report.loss,
        "losses": report.losses.tolist(),
        "loss_steps": report.loss_steps,
        "hidden": report.hidden.tolist(),
        "outputs": report.outputs.tolist(),
        "gradients": {k: v.tolist() for k, v in report.gradients.items()},
        "per_step": [
            {"t": t + 1, share_name: share.tolist(), "norm": float(np.linalg.norm(share))}
            for t, share in enumerate(report.per_step)
        ],
        "dL_dh": report.dL_dh.tolist(),
        "jacobian_norms": {
            "k": list(range(len(report.jacobian_norms))),
            "norms": report.jacobian_norms.tolist(),
            "spectral_radius": report.spectral_radius,
            "verdict": report.verdict,
            "rate_per_step": report.rate,
        },
    }


def optional_parts(report: Any) -> dict[str, Any]:
    """The JSON of what --truncate and --check add, and the notes (every cell's report)."""
    out: dict[str, Any] = {}
    if report.truncated is not None:
        full = report.gradients
        out["truncate"] = report.truncate
        out["truncated"] = {
            "gradients": {k: v.tolist() for k, v in report.truncated.items()},
            "difference_norm": {
                k: float(np.linalg.norm(v - full[k])) for k, v in report.truncated.items()
            },
            "relative_difference": {
                k: float(np.linalg.norm(v - full[k]) / max(np.linalg.norm(full[k]), 1e-300))
                for k, v in report.truncated.items()
            },
        }
    if report.check is not None:
        out["check"] = report.check
    out["notes"] = report.notes
    if getattr(report, "jacobians", None) is not None:
        out["jacobians"] = [{**j, "matrix": j["matrix"].tolist()} for j in report.jacobians]
    return out


def check_summary(errors: dict[str, float]) -> dict[str, Any]:
    """The --check verdict: every parameter's relative error against CHECK_TOLERANCE."""
    worst = max(errors.values())
    return {"relative_errors": errors, "max_relative_error": worst,
            "tolerance": CHECK_TOLERANCE, "passed": bool(worst <= CHECK_TOLERANCE)}


def check_truncate(truncate: int | None) -> None:
    if truncate is not None and truncate < 1:
        raise InputError("truncate", f"must be a whole number ≥ 1, got {truncate}")


def analyse(problem: RNNProblem, *, truncate: int | None = None, check: bool = False,
            generated: bool = False, jacobians: Sequence[tuple[int, int]] | None = None,
            on_check: Callable[[int, int], None] | None = None) -> BpttReport:
    """Run the whole analysis of ``problem`` (and the matrices ∂h_t/∂h_k of ``jacobians``,
    pairs (t, k) with 0 ≤ k < t ≤ T); ``on_check(done, total)`` follows the check."""
    check_truncate(truncate)
    run = forward_backward(problem)
    norms = jacobian_norms(problem, run.h)
    kind, rate = verdict(norms)
    report = BpttReport(
        problem=problem, generated=generated, loss=float(run.losses.sum()), losses=run.losses,
        loss_steps=[int(t) + 1 for t in problem.steps], hidden=run.h[1:], outputs=run.outputs,
        gradients=run.gradients,
        per_step=run.dz[:, :, None] * run.h[:-1, None, :],  # dz_t h_{t−1}ᵀ
        dL_dh=hidden_gradient_norms(problem, run), jacobian_norms=norms,
        spectral_radius=float(np.max(np.abs(np.linalg.eigvals(problem.W_hh)))),
        verdict=kind, rate=rate,
    )
    if truncate is not None:
        report.truncate = truncate
        report.truncated = forward_backward(problem, truncate).gradients
    if check:
        report.check = check_summary(finite_difference_check(problem, run.gradients,
                                                             progress=on_check))
    if jacobians:
        report.jacobians = jacobian_entries(jacobians, lambda t, k: jacobian_between(
            problem, run.h, t, k))
    return report


def jacobian_entries(pairs: Sequence[tuple[int, int]], between: Any) -> list[dict[str, Any]]:
    """--jacobian's report entries: {"t", "k", "matrix" = between(t, k), "norm" its spectral
    norm} per pair (any cell's)."""
    entries = []
    for t, k in pairs:
        J = between(t, k)
        entries.append({"t": t, "k": k, "matrix": J, "norm": float(np.linalg.norm(J, 2))})
    return entries


# ---------------------------------------------------------------------------------------
# Problems: given as arrays (a vanilla RNN in math names) or generated per cell

GIVEN_ARRAYS = ("W_xh", "W_hh", "W_hy", "b_h", "b_y", "h0", "x", "y")
REQUIRED_ARRAYS = ("W_xh", "W_hh", "W_hy", "x", "y")


def _shape(array: np.ndarray) -> str:
    return "×".join(str(n) for n in array.shape)


def _is_given(given: dict[str, Any] | None) -> bool:
    return given is not None and any(given.get(name) is not None for name in REQUIRED_ARRAYS)


def checked_targets(y: np.ndarray, T: int, O: int, loss: str, target_at: str) -> np.ndarray:
    """y as (S, O) reals for mse or (S,) labels for cross_entropy, S = T or 1."""
    S = T if target_at == "all" else 1
    if loss == "mse":
        if y.size == S * O and (y.shape == (S, O) or 1 in y.shape and S == 1):
            return y.reshape(S, O)
        raise InputError("y", f"has shape {_shape(y)}; expected {S}×{O} real targets "
                         f"(mse, target_at={target_at})")
    if y.size != S or (S > 1 and 1 not in y.shape):
        raise InputError("y", f"has shape {_shape(y)}; expected {S} label(s) "
                         f"(cross_entropy, target_at={target_at})")
    labels = y.ravel()
    bad = [v for v in labels if v != int(v) or not 0 <= v < O]
    if bad:
        raise InputError("y", f"has the label {bad[0]:g}; expected whole numbers in 0..{O - 1}"
                         " (one per output unit)")
    return labels


def check_given_problem(cells: Sequence[str], given: dict[str, Any] | None, loss: str = "mse",
                        target_at: str = "all") -> np.ndarray | None:
    """Check a given problem (``given``: the arrays of :data:`GIVEN_ARRAYS`, None where not
    given) against each other and the settings; return its targets (None when nothing is
    given: the problems are generated). A problem file holds a vanilla RNN in math names,
    so it runs with ``cells`` = (rnn,) only."""
    for cell in cells:
        get_cell(cell)
    if not _is_given(given):
        return None
    if tuple(cells) != ("rnn",):
        raise InputError("cell", f"is {','.join(cells)}, but a problem file holds a "
                         "vanilla RNN (W_xh, W_hh, ...); gru and lstm run on generated "
                         "problems (--steps, --hidden, ...)")
    missing = [name for name in REQUIRED_ARRAYS if given.get(name) is None]
    if missing:
        raise InputError(missing[0], "is missing from the problem (it needs W_xh, W_hh, W_hy, "
                         "x and y; b_h, b_y and h0 default to zeros)")
    H, D = given["W_xh"].shape
    O, T = given["W_hy"].shape[0], given["x"].shape[0]
    expected = {"W_hh": (H, H), "W_hy": (O, H), "x": (T, D)}
    why = {"W_hh": "H×H", "W_hy": "O×H", "x": "T×D"}
    for name, shape in expected.items():
        array = given[name]
        if array.shape != shape:
            raise InputError(name, f"has shape {_shape(array)}; expected "
                             f"{shape[0]}×{shape[1]} ({why[name]}, with H = {H} and D = {D} "
                             f"from W_xh, O = {O} from W_hy, T = {T} from x)")
    for name, size, label in (("b_h", H, "H"), ("b_y", O, "O"), ("h0", H, "H")):
        array = given.get(name)
        if array is not None and array.shape != (size,):
            raise InputError(name, f"has length {array.shape[0]}; expected {label} = {size}")
    return checked_targets(given["y"], T, O, loss, target_at)


def bptt_problems(cells: Sequence[str], given: dict[str, Any] | None = None, *,
                  steps: int = 10, input_size: int = 3, hidden: int = 4, output_size: int = 2,
                  seed: int = 0, radius: float | None = None, activation: str = "tanh",
                  loss: str = "mse", target_at: str = "all",
                  forget_bias: float = 1.0) -> list[Any]:
    """The problem of each cell in ``cells`` (registered names, in order).

    With ``given`` arrays (see :func:`check_given_problem`): that vanilla RNN problem, W_hh
    rescaled to spectral radius ``radius`` if given and b_h, b_y, h0 zero where not given.
    Otherwise each cell's generated problem (:meth:`Cell.bptt_problem`), all on the same
    sequence, targets and output layer (from ``seed``).
    """
    y = check_given_problem(cells, given, loss, target_at)
    if y is None:
        return [get_cell(cell).bptt_problem(
            steps=steps, input_size=input_size, hidden=hidden, output_size=output_size,
            seed=seed, radius=radius, activation=activation, loss=loss, target_at=target_at,
            forget_bias=forget_bias) for cell in cells]
    H, O = given["W_xh"].shape[0], given["W_hy"].shape[0]
    W_hh = given["W_hh"] if radius is None else scale_to_radius(given["W_hh"], radius)

    def or_zeros(name: str, size: int) -> np.ndarray:
        return np.zeros(size) if given.get(name) is None else given[name]

    return [RNNProblem(
        W_xh=given["W_xh"], W_hh=W_hh, W_hy=given["W_hy"], b_h=or_zeros("b_h", H),
        b_y=or_zeros("b_y", O), h0=or_zeros("h0", H), x=given["x"], y=y,
        activation=activation, loss=loss, target_at=target_at,
    )]


def run_bptt(problems: Sequence[Any], *, truncate: int | None = None, check: bool = False,
             generated: bool = False, jacobians: Sequence[tuple[int, int]] | None = None,
             on_check: Callable[[str, int, int], None] | None = None) -> Any:
    """The `seqtool bptt` run: one problem analysed (a :class:`BpttReport` or a
    :class:`~seqtool.core.rnn.gated_bptt.GatedBpttReport`), or several (one per cell, from
    :func:`bptt_problems`) side by side in a
    :class:`~seqtool.core.rnn.gated_bptt.CellComparison`. ``on_check(cell, done, total)``
    follows the finite-difference check, the long part of a large problem."""
    from seqtool.core.rnn import gated_bptt

    problems = list(problems)
    if jacobians and len(problems) != 1:
        raise InputError("jacobian", "writes the matrices ∂h_t/∂h_k of one cell; ask for "
                         "one --cell")
    return gated_bptt.analyse_any(problems[0] if len(problems) == 1 else problems,
                                  truncate=truncate, check=check, generated=generated,
                                  jacobians=jacobians, on_check=on_check)


__all__ = ["ACTIVATIONS", "LOSSES", "TARGETS_AT", "RNNProblem", "analyse", "bptt_problems",
           "check_given_problem", "generate_problem", "run_bptt"]
