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
    jobs, processes = len(report.kernels), report.jobs
    console.print(f"{jobs} job{'s' * (jobs != 1)} on {processes} "
                  f"process{'es' * (processes != 1)} in {report.seconds:.1f} s")
    tuned = report.tuning or {}
    if tuned.get("path"):
        values = ", ".join(f"{k}={_threshold(v)}" for k, v in tuned["values"].items())
        how = (f"measured now in {tuned['seconds']:.1f} s" if tuned["measured"]
               else tuned["note"])
        console.print(f"products tuned for this machine ({how}; {tuned['path']}): "
                      f"{values or 'the defaults'}")
    elif tuned:
        console.print(f"products: the defaults ({tuned['note']})")


def _threshold(value: Any) -> str:
    return "never" if isinstance(value, int) and value >= 1 << 40 else f"{value:,}"
