"""What `seqtool run` shows: the expanded runs (--dry-run), a progress bar over runs, and
the summary across runs (mean ± std over seeds for each grid point)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from seqtool.render.console import make_console, print_closing
from seqtool.render.numbers import fmt


def render_dry_run(report: Any) -> None:
    """The runs a recipe expands to, one row each."""
    console = make_console()
    table = Table(title=f"{report.recipe}: {len(report.runs)} runs into {report.out}",
                  title_justify="left", header_style="bold")
    for col in ("run", "command", "params"):
        table.add_column(col)
    for r in report.runs:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        table.add_row(r.id, r.command, params)
    console.print(table)


def render_run(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """`seqtool run`'s table: the summary, or the expanded runs of --dry-run; then, with
    --explain, each run's explanation."""
    if hasattr(report, "groups"):
        render_summary(report, precision)
        # the runs that were asked to explain themselves (explain: true, or run --explain)
        print_closing(make_console(), [], report.explanation())
    else:
        render_dry_run(report)


class RunProgress:
    """A Rich progress bar over runs on stderr, drawn only on a terminal."""

    def __init__(self, config: Any = None, fmt_name: str = "table", precision: int = 4):
        self.progress = None

    def attach(self, events: Any) -> None:
        events.on_start, events.on_result = self.start, self.advance

    def __enter__(self):
        return self

    def start(self, total: int) -> None:
        err = Console(stderr=True)
        if err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[last]}"), console=err,
                                     transient=True)
            self.progress.start()
            self.task = self.progress.add_task("runs", total=total, last="")

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


def render_summary(report: Any, precision: int = 4) -> None:
    """Mean ± std over seeds per grid point: a column per metric, or a row per metric when
    there are many."""
    data = report.to_dict()
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
