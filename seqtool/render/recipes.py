"""What `seqtool run` shows: the expanded runs (--dry-run), a progress bar over runs, and
the summary across runs (mean ± std over seeds for each grid point)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from seqtool.io.output import write_json
from seqtool.render.console import make_console
from seqtool.render.numbers import fmt


def render_dry_run(recipe: Any, runs: list[Any], out: Path, fmt_name: str) -> None:
    rows = [{"id": r.id, "step": r.step, "command": r.command, "params": r.params,
             "hash": r.hash, "dir": str(out / r.id)} for r in runs]
    if fmt_name == "json":
        write_json({"recipe": recipe.name, "out": str(out), "runs": rows})
        return
    if fmt_name == "csv":
        from seqtool.io.output import write_csv

        write_csv(["id", "step", "command", "params", "hash"],
                  [[r["id"], r["step"], r["command"], json.dumps(r["params"], sort_keys=True),
                    r["hash"]] for r in rows])
        return
    console = make_console()
    table = Table(title=f"{recipe.name}: {len(rows)} runs into {out}", title_justify="left",
                  header_style="bold")
    for col in ("run", "command", "params"):
        table.add_column(col)
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        table.add_row(r["id"], r["command"], params)
    console.print(table)


class RunProgress:
    """A Rich progress bar over runs on stderr, drawn only on a terminal."""

    def __init__(self, total: int):
        self.total = total
        self.progress = None

    def __enter__(self):
        err = Console(stderr=True)
        if err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[last]}"), console=err,
                                     transient=True)
            self.progress.start()
            self.task = self.progress.add_task("runs", total=self.total, last="")
        return self

    def advance(self, result: dict[str, Any]) -> None:
        if self.progress is not None:
            state = "skipped" if result.get("skipped") else result["status"]
            self.progress.update(self.task, advance=1, last=f"{result['id']} {state}")

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False


def _mean_std(stat: dict[str, float] | None, p: int) -> str:
    if stat is None:
        return "-"
    if stat["n"] == 1:
        return fmt(stat["mean"], p)
    return f"{fmt(stat['mean'], p)} ± {fmt(stat['std'], p)}"


def render_summary(report: Any, fmt_name: str, precision: int = 4) -> None:
    data = report.to_dict()
    if fmt_name == "json":
        write_json(data)
        return
    if fmt_name == "csv":
        from seqtool.recipes.runner import summary_csv

        sys.stdout.write(summary_csv(report.groups))
        return
    console = make_console()
    p = precision
    groups = report.groups
    point_keys = list(dict.fromkeys(k for g in groups for k in g["point"]))
    metric_names = list(dict.fromkeys(m for g in groups for m in g["metrics"]))
    title = (f"{report.recipe}: {data['done']} done ({data['skipped']} skipped), "
             f"{data['failed']} failed — {report.out}")
    if len(metric_names) > WIDE:
        _render_long(console, title, groups, metric_names, p)
    else:
        _render_wide(console, title, groups, point_keys, metric_names, p)
    for r in report.failed:
        console.print(f"[red]failed[/red] {r['id']}: {r['error']}", markup=True)


WIDE = 6  # more metrics than this: one row per metric instead of one column


def _render_long(console: Console, title: str, groups: list[dict[str, Any]],
                 metric_names: list[str], p: int) -> None:
    """A metric per row and a group per column: for recipes that measure many things."""
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("metric")
    for g in groups:
        label = ", ".join(f"{k}={v}" for k, v in g["point"].items()) or g["step"]
        table.add_column(f"{label} ({g['runs'] - g['failed']}/{g['runs']})", justify="right")
    for m in metric_names:
        table.add_row(m, *[_mean_std(g["metrics"].get(m), p) for g in groups])
    console.print(table)


def _render_wide(console: Console, title: str, groups: list[dict[str, Any]],
                 point_keys: list[str], metric_names: list[str], p: int) -> None:
    table = Table(title=title, title_justify="left", header_style="bold")
    if len({g["step"] for g in groups}) > 1:
        table.add_column("step")
    for key in point_keys:
        table.add_column(key)
    table.add_column("runs", justify="right")
    for m in metric_names:
        table.add_column(m, justify="right")
    for g in groups:
        row = [g["step"]] if len({x["step"] for x in groups}) > 1 else []
        row += [str(g["point"].get(k, "")) for k in point_keys]
        row.append(f"{g['runs'] - g['failed']}/{g['runs']}")
        row += [_mean_std(g["metrics"].get(m), p) for m in metric_names]
        table.add_row(*row)
    console.print(table)
