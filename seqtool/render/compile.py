"""What `seqtool compile` shows people: a row per cell and dtype."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from seqtool.render.console import make_console


def render_compile(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """Each (cell, dtype) with its seconds and whether it compiled or loaded from the cache,
    then the wall time of the whole command."""
    table = Table(header_style="bold")
    for name, justify in (("cell", "left"), ("dtype", "left"), ("seconds", "right"),
                          ("kernels", "left")):
        table.add_column(name, justify=justify)
    for row in report.kernels:
        what = ("loaded from the cache" if row["loaded"]
                else f"compiled ({row['compiled']} compilations)")
        table.add_row(row["cell"], row["dtype"], f"{row['seconds']:.1f}", what)
    console = make_console()
    console.print(table)
    console.print(f"{len(report.kernels)} jobs on {report.jobs} processes in "
                  f"{report.seconds:.1f} s")
