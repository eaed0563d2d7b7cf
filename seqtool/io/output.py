"""The one output path: every command's Report written as json, jsonl or csv.

stdout carries data only; the default format is a Rich table on a terminal (drawn by
``seqtool.render``) and JSON when stdout is a pipe or a file, so ``seqtool ... | jq`` always
works. A machine format is one entry of :data:`WRITERS`: a function that writes a Report
(see :mod:`seqtool.core.report`) to a stream. Adding a format is one entry here and its
test; every command offers it (``streams=True`` marks a format that only commands which
emit records as they go, such as train-rnn and predict, offer).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TextIO

from seqtool.core.report import finite

__all__ = ["NON_FINITE_KEY", "WRITERS", "Writer", "choose_format", "finite",
           "formats_for", "plain", "register_writer", "unregister_writer", "write_csv", "write_json",
           "write_jsonl", "write_report"]


def choose_format(requested: str | None, stream: TextIO | None = None) -> str:
    """The requested format, or table on a terminal and json otherwise."""
    if requested:
        return requested
    stream = stream or sys.stdout
    return "table" if getattr(stream, "isatty", lambda: False)() else "json"


NON_FINITE_KEY = "non_finite"  # where a JSON document says which nulls stand for NaN or ±inf


def plain(value: Any, path: str = "", found: list[str] | None = None) -> Any:
    """``value`` with NumPy scalars and arrays as Python values and every NaN or ±inf as
    None; the path of each such None (``history[3].val_loss``) is added to ``found``."""
    if isinstance(value, dict):
        return {str(k): plain(v, f"{path}.{k}" if path else str(k), found)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # a NumPy array or scalar
        return plain(value.tolist(), path, found)
    if isinstance(value, float) and not math.isfinite(value):
        if found is not None:
            found.append(path or "(the value)")
        return None
    return value


def _as_python(value: Any) -> Any:
    """json's hook for what it cannot write: NumPy arrays and scalars as Python values."""
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dump(value: Any) -> str:
    """``value`` as JSON in C speed; ValueError at a NaN or ±inf (see :func:`write_json`)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=_as_python)


def _layout(data: Any) -> str:
    """A non-empty object with one top-level key per line (readable, and jq-ready); any
    other value on one line."""
    if isinstance(data, dict) and data:
        return "{\n" + ",\n".join(f"  {_dump(str(k))}: {_dump(v)}" for k, v in data.items()) \
            + "\n}\n"
    return _dump(data) + "\n"


def write_json(data: Any, stream: TextIO | None = None) -> None:
    """JSON with every float at full precision (repr round-trips), one trailing newline.
    JSON has no NaN or infinity: such a number is written null, and a top-level object
    lists where, under "non_finite" (a metric that could not be computed, a diverged
    loss)."""
    stream = stream or sys.stdout
    try:  # all finite (nearly always): json's C encoder reads the NumPy values directly
        text = _layout(data)
    except (ValueError, TypeError):  # a NaN or ±inf, or keys json will not take: walk it
        found: list[str] = []
        data = plain(data, "", found)
        if found and isinstance(data, dict):
            data = {**data, NON_FINITE_KEY: {
                "note": "null stands for a number that was NaN or infinite (JSON has neither)",
                "at": found[:50], "count": len(found)}}
        text = _layout(data)
    stream.write(text)


def write_jsonl(record: Any, stream: TextIO | None = None) -> None:
    """One JSON object on one line, flushed (a stream a reader can follow as it grows)."""
    stream = stream or sys.stdout
    try:
        text = _dump(record)
    except (ValueError, TypeError):
        text = _dump(plain(record))
    stream.write(text + "\n")
    stream.flush()


def write_csv(header: list[str], rows: Iterable[list[Any]], stream: TextIO | None = None) -> None:
    """A header line, then one line per row; floats written with repr (full precision)."""
    writer = csv.writer(stream or sys.stdout, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])


# ---------------------------------------------------------------------------------------
# One writer per machine format


@dataclass(frozen=True)
class Writer:
    """A machine format: how a Report (with any --explain lines) goes to a stream."""

    name: str
    write: Callable[[Any, TextIO, "list[str] | None"], None]
    streams: bool = False  # offered only by commands that emit records as they go


def _json(report: Any, stream: TextIO, explanation: list[str] | None) -> None:
    data = report.to_json()
    if explanation is not None and isinstance(data, dict):
        data = {**data, "explanation": explanation}
    write_json(data, stream)


def _jsonl(report: Any, stream: TextIO, explanation: list[str] | None) -> None:
    for record in report.records():
        write_jsonl(record, stream)


def _csv(report: Any, stream: TextIO, explanation: list[str] | None) -> None:
    columns = report.columns()
    write_csv(columns, ([row.get(c, "") for c in columns] for row in report.rows()), stream)


WRITERS: dict[str, Writer] = {w.name: w for w in (
    Writer("json", _json),
    Writer("jsonl", _jsonl, streams=True),
    Writer("csv", _csv),
)}



def register_writer(writer: Writer) -> Writer:
    """Add a machine format: every command offers it from then on."""
    WRITERS[writer.name] = writer
    return writer


def unregister_writer(name: str) -> None:
    WRITERS.pop(name, None)


def formats_for(streams: bool) -> tuple[str, ...]:
    """The --format choices of a command: table, then the machine formats it offers."""
    return ("table",) + tuple(name for name, w in WRITERS.items() if streams or not w.streams)



def write_report(report: Any, fmt: str, explanation: list[str] | None = None,
                 stream: TextIO | None = None) -> None:
    """Write ``report`` in the machine format ``fmt`` (json, jsonl, csv, ...)."""
    WRITERS[fmt].write(report, stream or sys.stdout, explanation)
