"""Rich tables for `seqtool bptt`: per-step shares, gradient norms, Jacobians, gradients."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from seqtool.core.rnn.bptt import PARAMETERS, BpttReport
from seqtool.render.console import make_console, print_closing
from seqtool.render.explain_bptt import explain_bptt
from seqtool.render.numbers import fmt, sparkline

FULL_MATRIX_MAX = 12  # larger gradients are summarised; --format json has every entry


def step_table(report: BpttReport, p: int) -> Table:
    T = len(report.dL_dh) - 1
    losses = dict(zip(report.loss_steps, report.losses))
    table = Table(title="per step", title_justify="left", header_style="bold")
    for name in ("t", "L_t", "‖∂L/∂h_t‖", "‖∂h_T/∂h_t‖", "‖share of ∂L/∂W_hh‖ = ‖dz_t h_{t-1}ᵀ‖"):
        table.add_column(name, justify="right")
    for t in range(T + 1):
        share = "" if t == 0 else fmt(np.linalg.norm(report.per_step[t - 1]), p)
        loss = fmt(losses[t], p) if t in losses else ""
        table.add_row(str(t), loss, fmt(report.dL_dh[t], p), fmt(report.jacobian_norms[t], p), share)
    return table


def matrix_table(name: str, matrix: np.ndarray, p: int) -> Table | str:
    m = np.atleast_2d(matrix)
    if max(m.shape) > FULL_MATRIX_MAX:
        return (f"∂L/∂{name}: {'×'.join(map(str, matrix.shape))}, norm "
                f"{fmt(np.linalg.norm(m), p)} (all entries: --format json)")
    table = Table(title=f"∂L/∂{name}", title_justify="left", header_style="bold", show_header=False)
    for _ in range(m.shape[1]):
        table.add_column(justify="right")
    for row in m:
        table.add_row(*(fmt(x, p) for x in row))
    return table


def render_bptt(report: BpttReport, *, precision: int = 4, explain: bool = False,
                console: Console | None = None) -> None:
    console = console or make_console()
    p, prob = precision, report.problem
    T, D = prob.x.shape
    H, O = prob.W_hh.shape[0], prob.W_hy.shape[0]
    source = "generated" if report.generated else "given"
    console.print(f"vanilla RNN, f = {prob.activation}, {prob.loss} loss at "
                  f"{'every step' if prob.target_at == 'all' else 'the last step'}; "
                  f"T={T} D={D} H={H} O={O} ({source} problem)")
    console.print(f"loss L = Σ_t L_t = [bold]{fmt(report.loss, p)}[/bold]")
    console.print(step_table(report, p))
    console.print(
        f"‖∂h_T/∂h_k‖, k = 0..{T}: {sparkline(report.jacobian_norms)}  "
        f"spectral radius ρ(W_hh) = {fmt(report.spectral_radius, p)}; "
        f"[bold]{report.verdict}[/bold] (× {fmt(report.rate, p)} per step back)"
    )
    for name in PARAMETERS:
        console.print(matrix_table(name, report.gradients[name], p))
    if report.truncated is not None:
        table = Table(title=f"truncated BPTT, k = {report.truncate}", title_justify="left",
                      header_style="bold")
        for col in ("parameter", "‖full‖", "‖truncated‖", "‖difference‖", "relative"):
            table.add_column(col, justify="right")
        for name in PARAMETERS:
            full, cut = report.gradients[name], report.truncated[name]
            diff = np.linalg.norm(cut - full)
            rel = diff / max(np.linalg.norm(full), 1e-300)
            table.add_row(name, fmt(np.linalg.norm(full), p), fmt(np.linalg.norm(cut), p),
                          fmt(diff, p), fmt(rel, p))
        console.print(table)
    if report.check is not None:
        table = Table(title="finite-difference check (5-point, float64)", title_justify="left",
                      header_style="bold")
        table.add_column("parameter")
        table.add_column("relative error", justify="right")
        for name, err in report.check["relative_errors"].items():
            table.add_row(name, fmt(err, 3))
        console.print(table)
        verdict = "[green]passed[/green]" if report.check["passed"] else "[red]FAILED[/red]"
        console.print(f"max relative error {fmt(report.check['max_relative_error'], 3)} "
                      f"(tolerance {report.check['tolerance']:g}): {verdict}")
    print_closing(console, report.notes, explain_bptt(report, p) if explain else [])
