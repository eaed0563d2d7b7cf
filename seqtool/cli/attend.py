"""`seqtool attend`: attention of queries over keys and values with a chosen selector.

Thin on purpose: flags (and an optional ``--input`` JSON object) become an AttendConfig,
``attend_report`` does the work, and the report is written as a table, JSON or CSV.
"""

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
from seqtool.config import AttendConfig
from seqtool.core.attention import attend_report

_option = partial(config_option, AttendConfig)
_flag = partial(config_flag, AttendConfig)

HELP = """Attention of a query over keys and values with the selector of your choice.

scores = scale · q·k_i, weights = selector(scores), output = Σ_i weights_i v_i.
With no --keys, the built-in worked example is used: keys (1,5),(1,0),(1,3),(2,0) and
values (1,0,0),(0,1,0),(0,0,1),(6,1,2).

Examples:
  seqtool attend --query 3,-1 --selector argmax
  seqtool attend -q '3,-1;1,2' -k '1,5;1,0;1,3' --selector sparsemax --grad
  echo '{"query": [3,-1], "keys": [[1,5],[1,0]]}' | seqtool attend --input - --format json
"""



@app.command(
    "attend",
    help=HELP,
    short_help="Attention, any selector. e.g. seqtool attend --query 3,-1",
)
def attend_command(
    query: Optional[str] = _option("query", "--query", "-q", metavar="VECTOR|MATRIX"),
    keys: Optional[str] = _option("keys", "--keys", "-k", metavar="MATRIX"),
    values: Optional[str] = _option("values", "--values", "-v", metavar="MATRIX"),
    selector: Optional[str] = _option("selector", "--selector", "-s", metavar="NAME"),
    temperature: Optional[str] = _option("temperature", "--temperature", "-t", metavar="T"),
    alpha: Optional[str] = _option("alpha", "--alpha", metavar="ALPHA"),
    k: Optional[str] = _option("k", "--k", metavar="K"),
    seed: Optional[str] = _option("seed", "--seed", metavar="INT"),
    hard: bool = _flag("hard", "--hard"),
    scale: Optional[str] = _option("scale", "--scale", metavar="1|sqrt|NUMBER"),
    grad: bool = _flag("grad", "--grad"),
    upstream: Optional[str] = _option("upstream", "--upstream", metavar="VECTOR"),
    input_source: Optional[str] = typer.Option(
        None, "--input", "-i", metavar="FILE|-",
        help=INPUT_HELP,
    ),
    output_format: Optional[str] = format_option(),
    precision: int = precision_option(),
    explain: bool = typer.Option(
        False, "--explain", help="Write the worked answer out: dot products, selection, weighted sum."
    ),
) -> None:
    flags = {
        "query": query, "keys": keys, "values": values, "selector": selector,
        "temperature": temperature, "alpha": alpha, "k": k, "seed": seed, "scale": scale,
        "upstream": upstream, "hard": hard or None, "grad": grad or None,
    }
    check_format(output_format)
    config = AttendConfig.from_mapping(gather(flags, input_source, AttendConfig))
    emit(
        attend_report(**config.report_arguments()), output_format, precision=precision,
        explain=explain, explanation=_explanation, render=_render, csv_table=csv_table,
    )


def _explanation(report: Any, precision: int) -> list[str]:
    from seqtool.render.explain import explain_attend

    return explain_attend(report, precision)


def _render(report: Any, **options: Any) -> None:
    from seqtool.render.attend import render_attend

    render_attend(report, **options)


def csv_table(report: Any) -> tuple[list[str], list[list[Any]]]:
    """One row per (query, key): indices, score and weight at full precision."""
    columns = report.columns()
    return columns, [[row[c] for c in columns] for row in report.rows()]
