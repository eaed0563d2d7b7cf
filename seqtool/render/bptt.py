"""Rich tables for `seqtool bptt`: per-step shares, gradient norms, Jacobians, gradients;
for the vanilla cell, the gated cells, and the cells side by side."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from typing import Any

from seqtool.core.rnn.bptt import PARAMETERS, BpttReport
from seqtool.render.console import make_console, print_closing
from seqtool.render.explain_bptt import explain_bptt
from seqtool.render.numbers import fmt, sparkline, vec

FULL_MATRIX_MAX = 12  # larger gradients are summarised; --format json has every entry


# (column header, caption): short headers, so that the table fits 80 columns unwrapped
SHARE_TITLES = {
    "rnn": ("‖dz_t h_{t-1}ᵀ‖", "dz_t h_{t-1}ᵀ is step t's share of ∂L/∂W_hh"),
    "gated": ("‖dA_t h_{t-1}ᵀ‖", "dA_t h_{t-1}ᵀ is step t's share of ∂L/∂weight_hh"),
}


def step_table(report: Any, p: int) -> Table:
    T = len(report.dL_dh) - 1
    losses = dict(zip(report.loss_steps, report.losses))
    share, caption = SHARE_TITLES["gated" if hasattr(report, "cell") else "rnn"]
    table = Table(title="per step", title_justify="left", header_style="bold",
                  caption=caption, caption_justify="left")
    for name in ("t", "L_t", "‖∂L/∂h_t‖", "‖∂h_T/∂h_t‖", share):
        table.add_column(name, justify="right")
    for t in range(T + 1):
        share = "" if t == 0 else fmt(np.linalg.norm(report.per_step[t - 1]), p)
        loss = fmt(losses[t], p) if t in losses else ""
        table.add_row(str(t), loss, fmt(report.dL_dh[t], p), fmt(report.jacobian_norms[t], p), share)
    return table


def matrix_table(name: str, matrix: np.ndarray, p: int, prefix: str = "∂L/∂") -> Table | str:
    """A gradient (∂L/∂name) or any matrix (prefix="") as a table, a line, or its norm."""
    m = np.atleast_2d(matrix)
    label = prefix + name
    if matrix.ndim == 1 and len(matrix) <= 4 * FULL_MATRIX_MAX:
        return f"{label} = {vec(matrix, p)}"  # a vector reads best on one line
    if max(m.shape) > FULL_MATRIX_MAX:
        return (f"{label}: {'×'.join(map(str, matrix.shape))}, norm "
                f"{fmt(np.linalg.norm(m), p)} (all entries: --format json)")
    table = Table(title=label, title_justify="left", header_style="bold", show_header=False)
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
    print_jacobians(console, report.jacobians, "∂h_t/∂h_k = Π_{j=k+1..t} diag(f'(z_j)) W_hh",
                    p)
    print_gradients_and_checks(console, report, PARAMETERS, p)
    print_closing(console, report.notes, explain_bptt(report, p) if explain else [])


def print_jacobians(console: Console, jacobians: list | None, formula: str, p: int) -> None:
    """The matrices of --jacobian: the formula once, then each matrix with its norm."""
    if not jacobians:
        return
    console.print(formula)
    for j in jacobians:
        shown = matrix_table(f"∂h_{j['t']}/∂h_{j['k']}", j["matrix"], p, prefix="")
        if isinstance(shown, str):  # too large to show: its size and norm
            console.print(shown)
            continue
        # the name on a line of its own: a table's title wraps at the table's width
        console.print(f"∂h_{j['t']}/∂h_{j['k']}, ‖·‖₂ = {fmt(j['norm'], p)}")
        shown.title = None
        console.print(shown)


def print_gradients_and_checks(console: Console, report: Any, names: tuple[str, ...],
                               p: int) -> None:
    """Every gradient, then what --truncate and --check added (any cell's report)."""
    for name in names:
        console.print(matrix_table(name, report.gradients[name], p))
    if report.truncated is not None:
        table = Table(title=f"truncated BPTT, k = {report.truncate}", title_justify="left",
                      header_style="bold")
        for col in ("parameter", "‖full‖", "‖truncated‖", "‖difference‖", "relative"):
            table.add_column(col, justify="right")
        for name in names:
            if name not in report.truncated:
                continue
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


def render_gated(report: Any, *, precision: int = 4, explain: bool = False,
                 console: Console | None = None) -> None:
    """`seqtool bptt --cell gru|lstm`."""
    console = console or make_console()
    p, prob = precision, report.problem
    T, D = prob.x.shape
    H, O = prob.hidden_size, prob.W_hy.shape[0]
    source = "generated" if report.generated else "given"
    gates = ", ".join(report.spectral_radii)
    console.print(f"{prob.cell.upper()} (gates {gates}; PyTorch's equations), {prob.loss} loss "
                  f"at {'every step' if prob.target_at == 'all' else 'the last step'}; "
                  f"T={T} D={D} H={H} O={O} ({source} problem)")
    console.print(f"loss L = Σ_t L_t = [bold]{fmt(report.loss, p)}[/bold]")
    console.print(step_table(report, p))
    radii = ", ".join(f"ρ(W_h{name}) = {fmt(r, p)}" for name, r in report.spectral_radii.items())
    console.print(f"‖∂h_T/∂h_k‖, k = 0..{T}: {sparkline(report.jacobian_norms)}  {radii}; "
                  f"[bold]{report.verdict}[/bold] (× {fmt(report.rate, p)} per step back)")
    if report.cell_norms is not None:
        console.print(f"‖∂c_T/∂c_k‖, k = 0..{T}: {sparkline(report.cell_norms)}  "
                      f"(the cell path: ‖∂c_T/∂c_0‖ = {fmt(report.cell_norms[0], p)})")
    state = "s = (h, c), with c_k held fixed" if report.cell_norms is not None else "s = h"
    print_jacobians(console, report.jacobians, "∂h_t/∂h_k is the h-block of "
                    f"Π_{{j=k+1..t}} ∂s_j/∂s_{{j-1}}, {state}", p)
    print_gradients_and_checks(console, report, tuple(prob.parameter_names), p)
    print_closing(console, report.notes, [])


def render_comparison(report: Any, *, precision: int = 4, explain: bool = False,
                      console: Console | None = None) -> None:
    """`seqtool bptt --cell rnn,gru,lstm`: the gradient-norm decay of each cell, side by side."""
    console = console or make_console()
    p = precision
    first = report.reports[0].problem
    T, D = first.x.shape
    console.print(f"the same sequence through {', '.join(report.cells)}: T={T} D={D} "
                  f"H={report.reports[0].hidden.shape[1]}")
    table = Table(title="‖∂h_T/∂h_k‖ and ‖∂L/∂h_k‖ per cell", title_justify="left",
                  header_style="bold")
    table.add_column("k", justify="right")
    for cell in report.cells:
        table.add_column(f"{cell} ‖∂h_T/∂h_k‖", justify="right")
        table.add_column(f"{cell} ‖∂L/∂h_k‖", justify="right")
    for k in range(T + 1):
        row = [str(k)]
        for r in report.reports:
            row += [fmt(r.jacobian_norms[k], p), fmt(r.dL_dh[k], p)]
        table.add_row(*row)
    console.print(table)
    console.print(f"‖∂h_T/∂h_k‖, k = 0..{T} (log scale), and the decay per step back:")
    width = max(len(cell) for cell in report.cells)
    for cell, r in zip(report.cells, report.reports):
        cell_path = ("" if getattr(r, "cell_norms", None) is None
                     else f"; cell path ‖∂c_T/∂c_0‖ = {fmt(r.cell_norms[0], p)}")
        console.print(f"  {cell:<{width}} {sparkline(r.jacobian_norms)}  ‖∂h_T/∂h_0‖ = "
                      f"{fmt(r.jacobian_norms[0], p)}, × {fmt(r.rate, p)} per step: "
                      f"[bold]{r.verdict}[/bold]{cell_path}; L = {fmt(r.loss, p)}")
    for cell, r in zip(report.cells, report.reports):
        if r.check is not None:
            verdict = "[green]passed[/green]" if r.check["passed"] else "[red]FAILED[/red]"
            console.print(f"{cell}: finite-difference check, max relative error "
                          f"{fmt(r.check['max_relative_error'], 3)}: {verdict}")
    print_closing(console, [], [])


def render_any(report: Any, **options: Any) -> None:
    """The renderer that fits the report: one vanilla cell, one gated cell, or several."""
    if hasattr(report, "reports"):
        render_comparison(report, **options)
    elif hasattr(report, "cell"):
        render_gated(report, **options)
    else:
        render_bptt(report, **options)
