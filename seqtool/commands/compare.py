"""`seqtool compare-selectors`: every selector on the Config's inputs, measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqtool.commands.events import Events
from seqtool.config import CompareConfig
from seqtool.core.compare import CompareReport, compare_report


def run(config: CompareConfig, events: Events, run_dir: Path | None = None) -> CompareReport:
    return compare_report(**config.report_arguments(), on_learn_step=events.on_learn_step)


def metrics(report: dict[str, Any]) -> dict[str, Any]:
    """Each selector's gradient norm at the (first) query, and its accuracy after --learn."""
    out = {}
    for row in report["rows"]:
        norm = row["grad_norm_query"]
        out[f"{row['selector']}.grad_norm_query"] = norm[0] if isinstance(norm, list) else norm
    for row in report.get("learning", []):
        out[f"{row['selector']}.accuracy"] = row["accuracy"]
    return out
