"""`seqtool compare-selectors`: every selector on the same inputs, every claim measured."""

from __future__ import annotations

from functools import partial
from typing import Any, Optional

import typer

from seqtool.cli.app import app
from seqtool.cli.inputs import INPUT_HELP, gather
from seqtool.cli.options import (
    config_flag, config_option, format_option, precision_option,
)
from seqtool.cli.output import check_format, emit
from seqtool.config import CompareConfig

_option = partial(config_option, CompareConfig)
_flag = partial(config_flag, CompareConfig)

HELP = """Selectors side by side: weights, outputs, entropy, support, gradients, cost, learning.

Takes the same inputs as attend (the worked example when none are given). --cost times
scores and selection as the number of keys grows; --learn trains W_q and W_k on
associative recall through each selector, which shows why argmax cannot learn them.

Examples:
  seqtool compare-selectors --query 3,-1
  seqtool compare-selectors -q 3,-1 --selectors softmax,argmax --cost --learn --explain
  seqtool compare-selectors -q 3,-1 --format json | jq '.rows[] | {selector, grad_norm_query}'
"""




@app.command(
    "compare-selectors",
    help=HELP,
    short_help="Side by side, e.g. seqtool compare-selectors --learn",
)
def compare_command(
    query: Optional[str] = _option("query", "--query", "-q", metavar="VECTOR|MATRIX"),
    keys: Optional[str] = _option("keys", "--keys", "-k", metavar="MATRIX"),
    values: Optional[str] = _option("values", "--values", "-v", metavar="MATRIX"),
    selectors: Optional[str] = _option("selectors", "--selectors", "-s", metavar="A,B,..."),
    temperature: Optional[str] = _option("temperature", "--temperature", "-t", metavar="T"),
    alpha: Optional[str] = _option("alpha", "--alpha", metavar="ALPHA"),
    k: Optional[str] = _option("k", "--k", metavar="K"),
    seed: Optional[str] = _option("seed", "--seed", metavar="INT"),
    hard: bool = _flag("hard", "--hard"),
    scale: Optional[str] = _option("scale", "--scale", metavar="1|sqrt|NUMBER"),
    upstream: Optional[str] = _option("upstream", "--upstream", metavar="VECTOR"),
    repeats: Optional[str] = _option("repeats", "--repeats", metavar="N"),
    cost: bool = _flag("cost", "--cost"),
    sizes: Optional[str] = _option("sizes", "--sizes", metavar="N,N,..."),
    dim: Optional[str] = _option("dim", "--dim", metavar="D"),
    learn: bool = _flag("learn", "--learn"),
    steps: Optional[str] = _option("steps", "--steps", metavar="N"),
    pairs: Optional[str] = _option("pairs", "--pairs", metavar="N"),
    vocab: Optional[str] = _option("vocab", "--vocab", metavar="V"),
    lr: Optional[str] = _option("lr", "--lr", metavar="LR"),
    input_source: Optional[str] = typer.Option(None, "--input", "-i", metavar="FILE|-",
                                               help=INPUT_HELP),
    output_format: Optional[str] = format_option(),
    precision: int = precision_option(),
    explain: bool = typer.Option(
        False, "--explain", help="The trade-off in prose, every claim citing this run's numbers."
    ),
) -> None:
    check_format(output_format)
    flags = {
        "query": query, "keys": keys, "values": values, "selectors": selectors,
        "temperature": temperature, "alpha": alpha, "k": k, "seed": seed,
        "hard": hard or None, "scale": scale, "upstream": upstream, "repeats": repeats,
        "cost": cost or None, "sizes": sizes, "dim": dim, "learn": learn or None,
        "steps": steps, "pairs": pairs, "vocab": vocab, "lr": lr,
    }
    config = CompareConfig.from_mapping(gather(flags, input_source, CompareConfig))

    from seqtool.core.compare import compare_report

    def run(**options: Any) -> Any:
        return compare_report(**config.report_arguments(), **options)

    if config.learn:
        report = _run_with_progress(config, run)
    else:
        report = run()
    emit(
        report, output_format, precision=precision, explain=explain,
        explanation=_explanation, render=_render, csv_table=csv_table,
    )


def _run_with_progress(config: CompareConfig, run: Any) -> Any:
    """The learning run with a Rich progress bar on stderr (drawn only on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return run()
    columns = (TextColumn("learning {task.fields[selector]:<10}"), BarColumn(),
               TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        total = config.steps * len(config.selectors)
        task = progress.add_task("learn", total=total, selector="", loss=float("nan"))

        def on_step(selector: str, step: int, loss: float) -> None:
            if step % 10 == 0 or step == config.steps - 1:
                done = config.selectors.index(selector) * config.steps + step + 1
                progress.update(task, completed=done, selector=selector, loss=loss)

        return run(on_learn_step=on_step)


def _explanation(report: Any, precision: int) -> list[str]:
    from seqtool.render.explain_compare import explain_compare

    return explain_compare(report, precision)


def _render(report: Any, **options: Any) -> None:
    from seqtool.render.compare import render_compare

    render_compare(report, **options)


def csv_table(report: Any) -> tuple[list[str], list[list[Any]]]:
    """One row per (selector, query); with --cost a select_us_n<N> column per size, with
    --learn the learning run's numbers (they are per selector, repeated per query)."""
    columns = report.columns()
    return columns, [[row[c] for c in columns] for row in report.rows()]
