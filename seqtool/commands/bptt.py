"""`seqtool bptt`: the Config's problem (or one per cell) analysed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqtool.commands.events import Events
from seqtool.config import BpttConfig
from seqtool.core.errors import InputError

EXPLAIN_MAX_STEPS = 6


def _steps(config: BpttConfig) -> int:
    return config.steps if config.generated else config.x.shape[0]


def check_explain(config: BpttConfig) -> None:
    """--explain writes the vanilla chain rule out, which is readable for a few steps only."""
    if config.cell != ("rnn",):
        raise InputError("explain", "writes the vanilla RNN's chain rule; it needs --cell rnn "
                         f"(got --cell {','.join(config.cell)})")
    T = _steps(config)
    if T > EXPLAIN_MAX_STEPS:
        raise InputError("explain", f"writes the chain rule for T ≤ {EXPLAIN_MAX_STEPS}; this "
                         f"problem has T = {T} (use --steps {EXPLAIN_MAX_STEPS} or fewer)")


def run(config: BpttConfig, events: Events, run_dir: Path | None = None) -> Any:
    """The config's problem (given, or generated per cell) analysed; several cells side by
    side."""
    from seqtool.core.rnn.bptt import bptt_problems, run_bptt  # numba loads here

    for cell in config.cell:  # the analysis runs in float64; a compile is announced here
        events.warm_up(cell, "float64", truncated=config.truncate is not None)
    problems = bptt_problems(
        config.cell, config.given(), steps=config.steps, input_size=config.input_size,
        hidden=config.hidden, output_size=config.output_size, seed=config.seed,
        radius=config.radius, activation=config.activation, loss=config.loss,
        target_at=config.target_at, forget_bias=config.forget_bias)
    return run_bptt(problems, truncate=config.truncate, check=config.check,
                    generated=config.generated, jacobians=config.jacobian)


def failure(report: Any) -> str | None:
    """A finite-difference check that did not pass fails the run (after its output)."""
    check = report.check
    if check is None or check["passed"]:
        return None
    return (f"finite-difference check failed: max relative error "
            f"{check['max_relative_error']:.3g} > {check['tolerance']:g}")


def metrics(report: dict[str, Any]) -> dict[str, Any]:
    """Per cell: the loss, the Jacobian norms' rate per step, ‖∂h_T/∂h_0‖, the check."""
    out = {}
    parts = report.get("reports") or [report]
    for part in parts:
        prefix = f"{part['cell']}." if "reports" in report else ""
        out[prefix + "loss"] = part["loss"]
        out[prefix + "rate_per_step"] = part["jacobian_norms"]["rate_per_step"]
        out[prefix + "dh_T/dh_0"] = part["jacobian_norms"]["norms"][0]
        if "check" in part:
            out[prefix + "check_max_error"] = part["check"]["max_relative_error"]
    return out
