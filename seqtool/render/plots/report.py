"""`seqtool report`: the HTML page of a run or a sweep, built as a string (the command writes
it), and the table line that says where it went.

The page is :func:`seqtool.render.plots.html_page`: inline CSS, every figure an inline SVG,
no script, nothing fetched. Each SVG is matplotlib's, made fit to sit beside others in one
document: its metadata block (which names matplotlib's web site and RDF vocabularies) and
its namespace declarations are dropped (HTML puts an inline ``<svg>`` in the SVG namespace
by itself, and ``href`` replaces ``xlink:href``), and its ids get a prefix of their own, so
that two figures never share one. Numbers are shown with 4 significant digits; the full
value is in each cell's ``title`` (and a summary cell's ``data-mean`` / ``data-std``).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any

from seqtool.render.numbers import fmt
from seqtool.render.plots import inline_svg

PRECISION = 4
HISTORY_OPEN = 20  # epoch tables longer than this start folded
WIDE = 6  # more metrics than this: the summary lists one row per metric

# what this page adds to the shared CSS (html_page's): side-by-side tables, notes, muted text
EXTRA_CSS = (".pair{display:flex;flex-wrap:wrap;gap:0 2rem;align-items:flex-start}"
             ".muted{color:#555}.note{background:#fff8e1;border-left:4px solid #E69F00;"
             "padding:.4rem .8rem}.failed{color:#b00020}"
             "section.run{border-top:1px solid #ddd;margin-top:1.5rem}"
             "nav ol{columns:3 16rem;font-size:.9rem}caption{text-align:left;"
             "font-weight:600;padding:.2rem 0;white-space:nowrap}"
             "details>summary{cursor:pointer;margin:.5rem 0}")


# ---------------------------------------------------------------------------------------
# Pieces


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def value_text(value: Any) -> str:
    """A config or metric value as people read it."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return fmt(value, PRECISION)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def cell(value: Any) -> str:
    """A <td>: numbers right-aligned, a float's full value in its title."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        title = f' title="{esc(repr(value))}"' if isinstance(value, float) else ""
        return f'<td class="num"{title}>{esc(value_text(value))}</td>'
    return f"<td>{esc(value_text(value))}</td>"


def table(header: list[str], rows: Iterable[list[Any]], caption: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>\n" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>\n"


def key_values(mapping: dict[str, Any], caption: str, header=("parameter", "value")) -> str:
    return table(list(header), ([k, v] for k, v in mapping.items()), caption)


def figure_block(fig: Any, prefix: str, caption: str) -> str:
    return (f"<figure>{inline_svg(fig, prefix)}<figcaption class=\"muted\">{esc(caption)}"
            "</figcaption></figure>\n")


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>\n'


def anchor(run_id: str) -> str:
    return "run-" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", run_id)


# ---------------------------------------------------------------------------------------
# The summary of a sweep


def _mean_std_cell(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "<td>—</td>"
    mean, std, n = stat["mean"], stat.get("std") or 0.0, stat.get("n", 1)
    shown = fmt(mean, PRECISION) if n == 1 else \
        f"{fmt(mean, PRECISION)} ± {fmt(std, PRECISION)}"
    return (f'<td class="num" data-mean="{mean!r}" data-std="{std!r}" data-n="{n}" '
            f'title="mean {mean!r}, std {std!r}, n = {n}">{esc(shown)}</td>')


def summary_table(groups: list[dict[str, Any]]) -> str:
    """Mean ± std over seeds per grid point (as `seqtool run` prints it): a column per
    metric, or a row per metric when there are many."""
    point_keys = list(dict.fromkeys(k for g in groups for k in g["point"]))
    metrics = list(dict.fromkeys(m for g in groups for m in g["metrics"]))
    steps = len({g["step"] for g in groups}) > 1
    if len(metrics) > WIDE:
        head = "<th>metric</th>" + "".join(
            f"<th>{esc(_group_label(g, steps))} ({g['runs'] - g['failed']}/{g['runs']})</th>"
            for g in groups)
        body = "".join(f"<tr><td>{esc(m)}</td>"
                       + "".join(_mean_std_cell(g["metrics"].get(m)) for g in groups)
                       + "</tr>\n" for m in metrics)
    else:
        names = (["step"] if steps else []) + point_keys + ["runs done"] + metrics
        head = "".join(f"<th>{esc(n)}</th>" for n in names)
        body = ""
        for g in groups:
            row = ([cell(g["step"])] if steps else []) + [cell(g["point"].get(k))
                                                          for k in point_keys]
            row.append(cell(f"{g['runs'] - g['failed']}/{g['runs']}"))
            row += [_mean_std_cell(g["metrics"].get(m)) for m in metrics]
            body += "<tr>" + "".join(row) + "</tr>\n"
    return (f'<table class="summary"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}'
            "</tbody></table>\n")


def _group_label(g: dict[str, Any], steps: bool) -> str:
    parts = [g["step"]] if steps else []
    parts += [f"{k}={value_text(v)}" for k, v in g["point"].items()]
    return ", ".join(parts) or g["step"]


# ---------------------------------------------------------------------------------------
# A run


def history_table(history: list[dict[str, Any]], folded: bool = False) -> str:
    """Every epoch's numbers (folded when asked, or when there are many)."""
    if not history:
        return ""
    columns = list(dict.fromkeys(k for row in history for k in row))
    inner = table(columns, ([row.get(c) for c in columns] for row in history))
    opened = "" if folded or len(history) > HISTORY_OPEN else " open"
    return (f"<details{opened}><summary>every epoch ({len(history)})</summary>\n{inner}"
            "</details>\n")


def config_tables(params: dict[str, Any], caption: str = "config") -> str:
    """The config as key/value tables side by side (a long one in up to three columns),
    with what "—" means."""
    items = list(params.items())
    per = max(12, -(-len(items) // 3))
    chunks = [dict(items[i:i + per]) for i in range(0, len(items), per)] or [{}]
    tables = "".join(key_values(chunk, caption if i == 0 else "\u00a0")
                     for i, chunk in enumerate(chunks))
    unset = any(v is None for v in params.values())
    legend = ('<p class="muted">—: not set (the command chooses or infers it)</p>\n'
              if unset else "")
    return f'<div class="pair">{tables}</div>\n{legend}'


def run_body(run: dict[str, Any], prefix: str, in_sweep: bool = False) -> str:
    """A run's metrics, plot (or the note that stands for it), epochs and config.

    ``run``: command, params (the config), metrics, history, figure (a matplotlib Figure
    or None), caption (of the figure), notes, and for a sweep's run its status, error and
    seconds. In a sweep the config (mostly the recipe's, shown once above) and the epochs
    start folded."""
    out = ""
    if run.get("status") == "failed":
        out += f'<p class="failed">failed: {esc(run.get("error") or "no error recorded")}</p>\n'
    if run.get("metrics"):
        out += key_values(run["metrics"], "metrics", ("metric", "value"))
    if run.get("figure") is not None:
        out += figure_block(run["figure"], prefix, run.get("caption") or
                            f"seqtool {run['command']} --plot, drawn from this run's "
                            "report.json")
    for text in run.get("notes", []):
        out += note(text)
    if run.get("history"):
        out += history_table(run["history"], folded=in_sweep)
    if in_sweep:
        out += (f"<details><summary>config: all {len(run['params'])} parameters</summary>\n"
                f"{config_tables(run['params'], '')}</details>\n")
    else:
        out += config_tables(run["params"])
    return out


def _values_text(values: list[Any]) -> str:
    shown = list(dict.fromkeys(value_text(v) for v in values))
    return ", ".join(shown[:8]) + (f", … ({len(shown)} values)" if len(shown) > 8 else "")


def recipe_table(runs: list[dict[str, Any]]) -> str:
    """Per step: its command, what its runs share, and what varies between them."""
    steps: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        steps.setdefault(r.get("step") or "", []).append(r)
    out = ""
    for step, mine in steps.items():
        keys = list(dict.fromkeys(k for r in mine for k in r["params"]))
        shared, varying = {}, []
        for k in keys:
            values = [json.dumps(r["params"].get(k), sort_keys=True, default=str) for r in mine]
            if len(set(values)) == 1 and all(k in r["params"] for r in mine):
                shared[k] = mine[0]["params"][k]
            else:
                varying.append(k)
        line = f"step {step}: {mine[0]['command']}, {len(mine)} run" + \
            ("s" if len(mine) != 1 else "")
        out += f"<h3>{esc(line)}</h3>\n"
        if varying:
            out += "<p>varies between runs — " + "; ".join(
                f"{esc(k)}: {esc(_values_text([r['params'].get(k) for r in mine]))}"
                for k in varying) + "</p>\n"
        out += config_tables(shared, "shared by every run" if len(mine) > 1 else "parameters")
    return out


def run_page(title: str, description: str, run: dict[str, Any], notes: list[str]) -> str:
    """The page of one run directory."""
    from seqtool.render.plots import html_page

    body = (f"<style>{EXTRA_CSS}</style>\n<h1>{esc(title)}</h1>\n"
            f'<p class="muted">{esc(description)}</p>\n' + "".join(note(t) for t in notes)
            + run_body(run, "f1"))
    return html_page(title, body)


def sweep_page(summary: dict[str, Any], recipe_figure: Any, runs: list[dict[str, Any]],
               description: str, notes: list[str]) -> str:
    """The page of a sweep directory: the summary table, the recipe's plot, then a section
    per run."""
    from seqtool.render.plots import html_page

    name = summary.get("recipe") or "recipe"
    title = f"seqtool report: {name}"
    body = f"<style>{EXTRA_CSS}</style>\n<h1>{esc(title)}</h1>\n"
    body += f'<p class="muted">{esc(description)}</p>\n'
    body += "".join(note(t) for t in notes)
    body += "<h2>Summary: mean ± std over seeds per grid point</h2>\n"
    groups = summary.get("summary") or []
    body += summary_table(groups) if groups else note("no run of this sweep finished")
    if recipe_figure is not None and recipe_figure.axes:  # (no axes: nothing to compare)
        body += figure_block(recipe_figure, "f0", "seqtool run --plot: each point's mean, "
                             "error bars ± one standard deviation over its seeds")
    if runs:
        body += "<h2>Recipe: the parameters of each step</h2>\n" + recipe_table(runs)
    body += "<h2>Runs</h2>\n<nav><ol>" + "".join(
        f'<li><a href="#{esc(anchor(r["id"]))}">{esc(r["id"])}</a>'
        + (' <span class="failed">failed</span>' if r.get("status") == "failed" else "")
        + "</li>" for r in runs) + "</ol></nav>\n"
    for i, run in enumerate(runs, 1):
        seconds = run.get("seconds")
        took = f" in {seconds:.1f} s" if isinstance(seconds, (int, float)) else ""
        where = [f"{k}={value_text(v)}" for k, v in (run.get("point") or {}).items()]
        if run.get("seed") is not None:
            where.append(f"seed={value_text(run['seed'])}")
        line = f"{run['command']}{', ' + ', '.join(where) if where else ''}: " \
            f"{run.get('status', '?')}{took}"
        body += (f'<section class="run" id="{esc(anchor(run["id"]))}">\n'
                 f'<h3>{esc(run["id"])}</h3>\n<p class="muted">{esc(line)}</p>\n'
                 + run_body(run, f"f{i}", in_sweep=True) + "</section>\n")
    return html_page(title, body)


# ---------------------------------------------------------------------------------------
# The table line


def render_report(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """Where the page went, what it holds, and its notes."""
    from seqtool.render.console import make_console

    console = make_console()
    what = (f"the sweep {report.recipe} ({report.runs} runs)" if report.kind == "sweep"
            else f"the {report.command} run")
    console.print(f"report written to {report.page}: {what} in {report.source}, "
                  f"{report.plots} plot{'s' if report.plots != 1 else ''}", markup=False)
    for text in report.notes:
        console.print("[yellow]note:[/yellow] ", end="")
        console.print(text, markup=False)


__all__ = ["render_report", "run_page", "summary_table", "sweep_page"]
