"""`seqtool export RUN --to torch|onnx -o FILE`: a trained model for another runtime.

The exporter (:data:`seqtool.export.EXPORTERS`) turns the run's model into the file's
bytes. Unless ``--no-check``, those bytes are first run in their own runtime
(``torch.jit.load``, onnxruntime) on a sample batch and compared with seqtool's forward
pass: a gap beyond the dtype's tolerance fails the run (exit 1) and nothing is written, so
a file that does not compute seqtool's function never replaces one that does. The file is
written atomically.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqtool.commands.events import Events
from seqtool.config import ExportConfig
from seqtool.core.errors import InputError
from seqtool.core.report import Report

# the largest relative gap a checked file may show: float32 runtimes sum in other orders
TOLERANCE = {"float32": 1e-4, "float64": 1e-9}


@dataclass
class ExportReport(Report):
    """What `seqtool export` wrote, what it takes and gives, and how it was checked."""

    format: str
    path: str
    bytes: int
    task: str
    cell: str
    dtype: str
    parameters: int
    inputs: list[dict[str, str]]
    outputs: list[dict[str, str]]
    checked_with: str | None = None  # "onnxruntime 1.32.0"; None: not checked
    sequences: int = 0
    errors: dict[str, float] = field(default_factory=dict)  # per output, relative
    tolerance: float = 0.0
    notes: list[str] = field(default_factory=list)
    written: bool = False

    @property
    def worst(self) -> float | None:
        return max(self.errors.values()) if self.errors else None

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "path": self.path, "bytes": self.bytes,
                "task": self.task, "cell": self.cell, "dtype": self.dtype,
                "parameters": self.parameters, "inputs": self.inputs,
                "outputs": self.outputs, "checked_with": self.checked_with,
                "sequences": self.sequences, "errors": self.errors,
                "max_error": self.worst, "tolerance": self.tolerance, "written": self.written,
                "notes": self.notes}

    def rows(self) -> list[dict[str, Any]]:
        data = self.to_dict()
        for key in ("inputs", "outputs"):
            data[key] = " ".join(f"{d['name']}{d['shape'].replace(' ', '')}" for d in data[key])
        data["errors"] = " ".join(f"{k}={v!r}" for k, v in self.errors.items())
        data["notes"] = "; ".join(self.notes)
        return [data]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _version(module: str) -> str:
    return getattr(importlib.import_module(module), "__version__", "?")


def check_target(out: str, fmt: str) -> Path:
    """The file to write, refused before any work when it cannot or must not be written:
    a folder, a folder that does not exist, or an existing file that is not an export of
    this format (a checkpoint, a user's file: never overwritten)."""
    from seqtool.export import EXPORTERS

    suffix = EXPORTERS[fmt].suffix
    path = Path(out)
    if path.is_dir():
        raise InputError("out", f"is {out}, a folder; give a file name such as "
                         f"{path / ('model' + suffix)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError("out", f"is {out}, in a folder that does not exist ({parent})")
    if path.exists() and path.suffix.lower() != suffix:
        raise InputError("out", f"is {out}, an existing file that is not a {suffix} export; "
                         "seqtool will not overwrite it (give another name)")
    return path


def run(config: ExportConfig, events: Events, run_dir: Path | None = None) -> ExportReport:
    """The model of ``config.run`` as ``config.to``: built, checked, written to ``config.out``."""
    from seqtool.commands.use import load_run
    from seqtool.core.models import parameter_count
    from seqtool.export import EXPORTERS, inputs_of, outputs_of
    from seqtool.io.checkpoint import write_atomic

    fmt = config.to
    exporter = EXPORTERS[fmt]
    if not _installed(exporter.builds_with):
        raise InputError("to", f"{fmt} needs the {exporter.builds_with} package, which is not "
                         f"installed: {exporter.install}")
    path = check_target(config.out, fmt)
    model = load_run(config.run)
    spec, params = model.spec, model.params
    dtype = params["head.weight"].dtype.name
    data = exporter.function(exporter.build)(spec, params, model.meta)
    report = ExportReport(fmt, str(path), len(data), spec.task, spec.cell, dtype,
                          parameter_count(params),
                          [dict(zip(("name", "shape", "dtype"), i)) for i in inputs_of(spec)],
                          [dict(zip(("name", "shape", "dtype"), o)) for o in outputs_of(spec)],
                          tolerance=TOLERANCE[dtype])
    runtime = exporter.runs_with
    if config.no_check:
        report.notes.append("not checked (--no-check)")
    elif not _installed(runtime):
        report.notes.append(f"not checked: {runtime} is not installed ({exporter.install})")
    else:  # checked before writing: a file that fails never replaces a good one
        from seqtool.export.check import compare

        comparison = compare(fmt, data, spec, params)
        report.checked_with = f"{runtime} {_version(runtime)}"
        report.sequences, report.errors = comparison.sequences, comparison.errors
    if failure(report) is None:
        write_atomic(path, data)
        report.written = True
    return report


def failure(report: ExportReport) -> str | None:
    """A checked file whose outputs differ from seqtool's beyond the tolerance."""
    worst = report.worst
    if worst is not None and not worst <= report.tolerance:
        return (f"the exported file differs from seqtool by {worst:.3g} (relative; at most "
                f"{report.tolerance:g} allowed): {report.path} does not "
                "compute this model, so it was not written")
    return None


def metrics(report: dict[str, Any]) -> dict[str, Any]:
    return {"bytes": report["bytes"], "max_error": report["max_error"]}


__all__ = ["ExportReport", "failure", "metrics", "run"]
