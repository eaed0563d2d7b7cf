"""`seqtool attend`: the Config's queries, keys and values through the chosen selector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqtool.commands.events import Events
from seqtool.config import AttendConfig
from seqtool.core.attention import AttendReport, attend_report


def run(config: AttendConfig, events: Events, run_dir: Path | None = None) -> AttendReport:
    return attend_report(**config.report_arguments())


def metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The first query's output and its largest weight."""
    out = {f"output[{j}]": value for j, value in enumerate(report["outputs"][0])}
    out["max_weight"] = max(report["weights"][0])
    return out
