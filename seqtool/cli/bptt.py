"""`seqtool bptt`: backpropagation through time of a vanilla RNN, GRU or LSTM, laid open."""

from __future__ import annotations

from functools import partial
import sys
from typing import Any, Optional

import typer

from seqtool.cli.app import app
from seqtool.cli.options import (
    config_flag, config_option, format_option, precision_option,
)
from seqtool.cli.output import check_format, emit
from seqtool.config import BpttConfig
from seqtool.core.errors import InputError
from seqtool.io.numbers import read_mapping

_option = partial(config_option, BpttConfig)
_flag = partial(config_flag, BpttConfig)

HELP = """Backpropagation through time of a vanilla RNN, GRU or LSTM, every gradient laid open.

h_t = f(W_xh x_t + W_hh h_{t-1} + b_h), y_t = W_hy h_t + b_y, L = Σ_t L_t.
Reports the loss, every gradient, each step's share of dL/dW_hh, ‖dL/dh_t‖, the Jacobian
norms ‖dh_T/dh_k‖ that vanish or explode, truncated BPTT and a finite-difference check.
--cell gru or lstm runs the same report through the gates (PyTorch's equations);
--cell rnn,gru,lstm puts the cells' gradient-norm decay side by side on one sequence.

Examples:
  seqtool bptt --steps 20 --radius 0.8            # vanishing gradients
  seqtool bptt --steps 20 --radius 1.5 --format json | jq .jacobian_norms
  seqtool bptt --problem problem.yaml --check --truncate 3
  seqtool bptt --steps 3 --activation sigmoid --explain
  seqtool bptt --steps 30 --cell rnn,gru,lstm     # which cells keep gradients alive
"""

EXPLAIN_MAX_STEPS = 6



@app.command(
    "bptt",
    help=HELP,
    short_help="BPTT laid open. e.g. seqtool bptt --steps 20 --radius 1.5",
)
def bptt_command(
    problem: Optional[str] = typer.Option(
        None, "--problem", "-p", metavar="FILE|-",
        help="Problem as JSON or YAML: W_xh, W_hh, W_hy, b_h, b_y, h0, x, y (and settings "
        "by name); - reads stdin. Flags override it.",
    ),
    steps: Optional[str] = _option("steps", "--steps", "-T", metavar="T"),
    input_size: Optional[str] = _option("input_size", "--input-size", "-D", metavar="D"),
    hidden: Optional[str] = _option("hidden", "--hidden", "-H", metavar="H"),
    output_size: Optional[str] = _option("output_size", "--output-size", "-O", metavar="O"),
    seed: Optional[str] = _option("seed", "--seed", metavar="INT"),
    radius: Optional[str] = _option("radius", "--radius", "-g", metavar="G"),
    activation: Optional[str] = _option("activation", "--activation", "-a", metavar="NAME"),
    loss: Optional[str] = _option("loss", "--loss", metavar="mse|cross_entropy"),
    target_at: Optional[str] = _option("target_at", "--target-at", metavar="all|last"),
    truncate: Optional[str] = _option("truncate", "--truncate", "-k", metavar="K"),
    cell: Optional[str] = _option("cell", "--cell", "-c", metavar="rnn|gru|lstm[,...]"),
    forget_bias: Optional[str] = _option("forget_bias", "--forget-bias", metavar="B"),
    check: bool = _flag("check", "--check"),
    output_format: Optional[str] = format_option(),
    precision: int = precision_option(),
    explain: bool = typer.Option(
        False, "--explain", help=f"The chain rule written out with this run's numbers (T ≤ {EXPLAIN_MAX_STEPS})."
    ),
) -> None:
    check_format(output_format)
    flags = {
        "steps": steps, "input_size": input_size, "hidden": hidden, "output_size": output_size,
        "seed": seed, "radius": radius, "activation": activation, "loss": loss,
        "target_at": target_at, "truncate": truncate, "check": check or None, "cell": cell,
        "forget_bias": forget_bias,
    }
    mapping = {} if problem is None else read_mapping(problem, "problem")
    mapping.update({key: value for key, value in flags.items() if value is not None})
    config = BpttConfig.from_mapping(mapping)
    T = config.steps if config.generated else config.x.shape[0]
    if explain and config.cell != ("rnn",):
        raise InputError("explain", "writes the vanilla RNN's chain rule; it needs --cell rnn "
                         f"(got --cell {','.join(config.cell)})")
    if explain and T > EXPLAIN_MAX_STEPS:
        raise InputError("explain", f"writes the chain rule for T ≤ {EXPLAIN_MAX_STEPS}; this "
                         f"problem has T = {T} (use --steps {EXPLAIN_MAX_STEPS} or fewer)")

    from seqtool.core.rnn.bptt import bptt_problems, run_bptt  # numba loads here
    from seqtool.core.rnn.cells import get_cell

    if not all(get_cell(name).kernels_cached() for name in config.cell):
        sys.stderr.write("seqtool: compiling the RNN kernels (once per machine)...\n")
    problems = bptt_problems(
        config.cell, config.given(), steps=config.steps, input_size=config.input_size,
        hidden=config.hidden, output_size=config.output_size, seed=config.seed,
        radius=config.radius, activation=config.activation, loss=config.loss,
        target_at=config.target_at, forget_bias=config.forget_bias)
    report = run_bptt(problems, truncate=config.truncate, check=config.check,
                      generated=config.generated)

    emit(
        report, output_format, precision=precision, explain=explain,
        explanation=_explanation, render=_render,
        csv_table=csv_table,
    )
    if report.check is not None and not report.check["passed"]:
        sys.stderr.write(
            f"seqtool: error: finite-difference check failed: max relative error "
            f"{report.check['max_relative_error']:.3g} > {report.check['tolerance']:g}\n"
        )
        raise typer.Exit(1)


def _explanation(report: Any, precision: int) -> list[str]:
    from seqtool.render.explain_bptt import explain_bptt

    return explain_bptt(report, precision)


def _render(report: Any, **options: Any) -> None:
    from seqtool.render.bptt import render_any

    render_any(report, **options)


def csv_table(report: Any) -> tuple[list[str], list[list[Any]]]:
    """The report's rows (one per time step t = 0..T), their keys as the header."""
    rows = report.rows()
    return list(rows[0]), [list(row.values()) for row in rows]
