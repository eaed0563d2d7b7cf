"""Writing a command's report in the chosen format: the part every command shares."""

from __future__ import annotations

import sys
from typing import Any, Callable

from seqtool.core.errors import InputError
from seqtool.io.output import FORMATS, choose_format, write_csv, write_json


# the commands that stream a record at a time (train-rnn, predict, sample, evaluate) add jsonl
STREAM_FORMATS = ("table", "json", "jsonl", "csv")


def check_format(requested: str | None, formats: tuple[str, ...] = FORMATS) -> None:
    """Refuse an unknown --format before any work is done."""
    if requested is not None and requested not in formats:
        raise InputError("format", f"is '{requested}'; choose one of {', '.join(formats)}")


def emit(
    report: Any,
    requested: str | None,
    *,
    precision: int,
    explain: bool,
    explanation: Callable[[Any, int], list[str]],
    render: Callable[..., None],
    csv_table: Callable[[Any], tuple[list[str], list[list[Any]]]],
) -> None:
    """JSON (with the explanation lines under "explanation"), CSV, or the Rich tables.

    ``explanation`` and ``render`` are called only for the formats that need them, so the
    modules behind them (Rich, for one) load only then.
    """
    fmt = choose_format(requested)
    if fmt == "json":
        data = report.to_dict()
        if explain:
            data["explanation"] = explanation(report, precision)
        write_json(data)
    elif fmt == "csv":
        if explain:
            sys.stderr.write("seqtool: note: --explain is shown in the table and json formats\n")
        write_csv(*csv_table(report))
    else:
        render(report, precision=precision, explain=explain)
