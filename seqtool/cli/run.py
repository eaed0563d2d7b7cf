"""`seqtool run RECIPE`: a YAML recipe's runs, here or on a Dask cluster, summarised."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from seqtool.cli.app import app
from seqtool.cli.options import precision_option
from seqtool.core.errors import InputError, RunError

HELP = """Run a YAML recipe: one command with its params, a sweep (grid × seeds), or steps.

Each run gets a directory under --out (default runs/<name>/) with its config, report and
status; summary.json and summary.csv hold mean ± std over seeds per grid point. A failed
run does not stop the others (exit 1 at the end); rerunning with the same --out skips the
runs already done with the same settings.

Examples:
  seqtool run recipes/vanishing-exploding.yaml
  seqtool run recipes/cells-on-sentiment.yaml --jobs 2 --set params.epochs=2
  seqtool run recipes/cells-on-sentiment.yaml --dry-run
  seqtool run sweep.yaml --scheduler tcp://10.0.0.5:8786 --format json | jq .summary
"""


@app.command("run", help=HELP,
             short_help="Run recipes. e.g. seqtool run recipes/dyck-lm.yaml")
def run_command(
    recipe: str = typer.Argument(..., metavar="RECIPE", help="The recipe file (YAML)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", metavar="DIR",
                                      help="Where the runs go (default runs/<name>/)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", metavar="N", min=1,
                                       help="Run on a local Dask cluster of N processes."),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", metavar="ADDRESS",
        help="Run on an existing Dask cluster, e.g. tcp://127.0.0.1:8786."),
    sets: Optional[list[str]] = typer.Option(
        None, "--set", metavar="KEY.PATH=VALUE",
        help="Override a recipe key, e.g. --set params.hidden=128 (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the expanded runs and exit."),
    output_format: Optional[str] = typer.Option(
        None, "--format", "-f", metavar="table|json|csv",
        help="Output format. Default: table on a terminal, json when piped."),
    precision: int = precision_option(),
) -> None:
    from seqtool.cli.output import check_format
    from seqtool.io.output import choose_format

    check_format(output_format)
    if jobs is not None and scheduler is not None:
        raise InputError("jobs", "and --scheduler both choose where to run; give one")
    fmt = choose_format(output_format)
    from seqtool.recipes.load import load_recipe

    loaded = load_recipe(recipe, sets)
    from seqtool.recipes.expand import expand
    from seqtool.recipes.runner import default_out, run_recipe

    target = Path(out) if out else default_out(loaded)
    if dry_run:
        from seqtool.render.recipes import render_dry_run

        render_dry_run(loaded, expand(loaded), target, fmt)
        return
    from seqtool.render.recipes import RunProgress, render_summary

    runs = expand(loaded)
    with RunProgress(len(runs)) as progress:
        report = run_recipe(loaded, target, jobs=jobs, scheduler=scheduler,
                            on_result=progress.advance, runs=runs)
    render_summary(report, fmt, precision)
    if report.failed:
        first = report.failed[0]
        raise RunError(f"{len(report.failed)} of {len(report.results)} runs failed; the first, "
                       f"{first['id']}: {first['error']}")
