"""Reports in Jupyter: ``Report._repr_html_`` draws the command's table (and its plot).

The report's command is found in the registry by its ``report`` type; its table renderer
draws on a recording Rich console (100 columns), exported as HTML with inline styles, and,
when the command has a plot and matplotlib is installed, the figure follows as inline SVG.
Anything that fails to draw falls back: a plot that fails is left out, a table that fails
gives the report's JSON in a ``<pre>``.
"""

from __future__ import annotations

import html
import io
import itertools
import json
from typing import Any

WIDTH = 100
# a fragment for a notebook's output cell (Rich's default is a whole page)
CODE_FORMAT = ('<pre style="font-family:Menlo,\'DejaVu Sans Mono\',Consolas,monospace;'
               'line-height:1.2">{code}</pre>')
_FIGURES = itertools.count()  # distinct SVG id prefixes for the figures of one notebook


def command_of(report: Any) -> Any:
    """The registered command whose ``report`` type is the report's (or, failing that, a
    base of it; or the one command whose report type lives in the same package); None when
    there is none."""
    from seqtool.commands.registry import commands, load

    cls = type(report)
    name = f"{cls.__module__}:{cls.__qualname__}"
    known = commands()
    for command in known:
        if command.report == name:
            return command
    for command in known:
        try:
            if isinstance(report, load(command.report)):
                return command
        except Exception:  # noqa: BLE001, S112  (cannot be imported here: not this one)
            continue
    package = cls.__module__.rpartition(".")[0]
    same = [c for c in known if c.report.partition(":")[0].rpartition(".")[0] == package]
    return same[0] if len(same) == 1 else None


def table_html(command: Any, report: Any, precision: int = 4) -> str:
    """The command's table, drawn on a recording console, as HTML with inline styles."""
    from rich.console import Console

    from seqtool.commands.registry import load
    from seqtool.render.console import drawing_on

    # force_jupyter=False: inside a kernel Rich would also send each table to the notebook
    # as a display output of its own, beside the HTML this returns
    console = Console(record=True, width=WIDTH, file=io.StringIO(), force_terminal=True,
                      force_jupyter=False, color_system="truecolor", highlight=False,
                      emoji=False)
    render = load(command.render)
    with drawing_on(console):  # every renderer draws through make_console()
        render(report, precision=precision, explain=False)
    return console.export_html(inline_styles=True, code_format=CODE_FORMAT)


def plot_html(command: Any, report: Any) -> str:
    """The command's plot as an inline ``<svg>`` in a ``<figure>``; "" when the command has
    none, matplotlib is not installed or drawing fails."""
    if not command.plot:
        return ""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ""
    try:
        from seqtool.render.plots import inline_svg

        fig = command.call("plot", report.to_dict())
        return f"<figure>{inline_svg(fig, f'seqtool-fig{next(_FIGURES)}')}</figure>"
    except Exception:  # noqa: BLE001  (a plot that fails to draw is left out)
        return ""


def json_html(report: Any) -> str:
    """The report's JSON in a ``<pre>``: what is shown when the table cannot be drawn."""
    try:
        text = json.dumps(report.to_json(), indent=2, ensure_ascii=False, default=str)
    except Exception as err:  # noqa: BLE001  (not even JSON: say what it is)
        text = f"{type(report).__name__} (cannot be shown: {type(err).__name__}: {err})"
    return f"<pre>{html.escape(text)}</pre>"


def report_html(report: Any) -> str:
    """The report as HTML for a notebook: its table and plot, or its JSON."""
    try:
        command = command_of(report)
        if command is None:
            return json_html(report)
        body = table_html(command, report)
    except Exception:  # noqa: BLE001  (a table that fails to draw: the JSON instead)
        return json_html(report)
    return body + plot_html(command, report)
