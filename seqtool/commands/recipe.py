"""`seqtool run RECIPE`: a YAML recipe's runs, here or on a Dask cluster, summarised."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqtool.commands.events import Events
from seqtool.config import RunConfig
from seqtool.core.errors import InputError
from seqtool.core.report import Report


@dataclass
class DryRunReport(Report):
    """`seqtool run --dry-run`: the runs a recipe expands to, and where each would go."""

    recipe: str
    out: Path
    runs: list[Any]  # RunSpec

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "out": str(self.out), "runs": [
            {"id": r.id, "step": r.step, "command": r.command, "params": r.params,
             "hash": r.hash, "dir": str(self.out / r.id)} for r in self.runs]}

    def rows(self) -> list[dict[str, Any]]:
        return [{"id": r.id, "step": r.step, "command": r.command,
                 "params": json.dumps(r.params, sort_keys=True), "hash": r.hash}
                for r in self.runs]

    def columns(self) -> list[str]:
        return ["id", "step", "command", "params", "hash"]


def run(config: RunConfig, events: Events, run_dir: Path | None = None,
        explain: bool = False) -> Report:
    """The recipe's runs (``explain``: each with its command's --explain, where it has one)."""
    from seqtool.recipes.expand import expand
    from seqtool.recipes.load import load_recipe
    from seqtool.recipes.runner import default_out, run_recipe

    loaded = load_recipe(config.recipe, list(config.sets) or None, explain=explain)
    target = Path(config.out) if config.out else default_out(loaded)
    runs = expand(loaded)
    if config.dry_run:
        return DryRunReport(loaded.name, target, runs)
    if events.on_start is not None:
        events.on_start(len(runs))
    return run_recipe(loaded, target, jobs=config.jobs, scheduler=config.scheduler,
                      on_result=events.on_result, runs=runs)


def check_plot(config: RunConfig) -> None:
    """--plot draws the runs' results: a dry run has none (refused before it prints)."""
    if config.dry_run:
        raise InputError("plot", "has nothing to draw: --dry-run runs nothing")


def failure(report: Report) -> str | None:
    failed = getattr(report, "failed", [])
    if not failed:
        return None
    first = failed[0]
    return (f"{len(failed)} of {len(report.results)} runs failed; the first, {first['id']}: "
            f"{first['error']}")
