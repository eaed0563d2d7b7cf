"""Writing results to stdout: JSON (full float precision), CSV, and the format default.

stdout carries data only; the default format is a Rich table on a terminal and JSON when
stdout is a pipe or a file, so ``seqtool ... | jq`` always works.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from typing import Any, Iterable, TextIO

FORMATS = ("table", "json", "csv")


def choose_format(requested: str | None, stream: TextIO | None = None) -> str:
    """The requested format, or table on a terminal and json otherwise."""
    if requested:
        return requested
    stream = stream or sys.stdout
    return "table" if getattr(stream, "isatty", lambda: False)() else "json"


def write_json(data: Any, stream: TextIO | None = None) -> None:
    """JSON with every float at full precision (repr round-trips), one trailing newline."""
    stream = stream or sys.stdout

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)

    if isinstance(data, dict) and data:  # one top-level key per line: readable, and jq-ready
        body = ",\n".join(f"  {dump(key)}: {dump(value)}" for key, value in data.items())
        stream.write("{\n" + body + "\n}\n")
    else:
        stream.write(dump(data) + "\n")


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (a metric that could not be computed) as None:
    JSON has no NaN, and jq refuses it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def write_jsonl(record: Any, stream: TextIO | None = None) -> None:
    """One JSON object on one line, flushed (a stream a reader can follow as it grows)."""
    stream = stream or sys.stdout
    stream.write(json.dumps(finite(record), ensure_ascii=False, allow_nan=False) + "\n")
    stream.flush()


def write_csv(header: list[str], rows: Iterable[list[Any]], stream: TextIO | None = None) -> None:
    """A header line, then one line per row; floats written with repr (full precision)."""
    writer = csv.writer(stream or sys.stdout, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])

