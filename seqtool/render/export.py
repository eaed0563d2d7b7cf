"""The table of `seqtool export`: what was written, its inputs and outputs, the check."""

from __future__ import annotations

from typing import Any

FORMAT_NAMES = {"torch": "TorchScript", "onnx": "ONNX"}


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if count < 1024 or unit == "MB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)


def render_export(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """Where the file went and what it is; its signature; the largest gap from seqtool."""
    from rich.table import Table

    from seqtool.render.console import make_console

    console = make_console()
    kind = FORMAT_NAMES.get(report.format, report.format)
    what = (f"{kind} of the {report.task} {report.cell} model ({report.parameters:,} "
            f"parameters, {report.dtype})")
    if report.written:
        console.print(f"wrote {report.path}: {what}, {_size(report.bytes)}", markup=False)
    else:
        console.print(f"not written: {report.path} would hold the {what}", markup=False)
    table = Table(show_edge=False, pad_edge=False, box=None)
    for column in ("", "name", "shape", "dtype"):
        table.add_column(column)
    for side in ("inputs", "outputs"):
        for i, item in enumerate(getattr(report, side)):
            table.add_row(side if i == 0 else "", item["name"], item["shape"], item["dtype"])
    console.print(table)
    if report.checked_with:
        parts = ", ".join(f"{name} {value:.2e}" for name, value in report.errors.items())
        console.print(f"checked with {report.checked_with} on {report.sequences} sequences: "
                      f"largest relative difference from seqtool {report.worst:.2e} ({parts}; "
                      f"tolerance {report.tolerance:g})", markup=False)
    for text in report.notes:
        console.print("[yellow]note:[/yellow] ", end="")
        console.print(text, markup=False)
