"""Rich tables for `seqtool compare-selectors`: the rows, the cost table, the learning run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from seqtool.core.compare import CompareReport
from seqtool.render.console import make_console, print_closing
from seqtool.render.explain_compare import explain_compare
from seqtool.render.numbers import fmt, sparkline, vec

GRADIENT_STYLE = {"exact": "green", "zero": "red", "surrogate": "yellow"}


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


ROW_COLUMNS = ("weights", "output", "H(w)", "|S|", "max w", "‖∂o/∂q‖", "‖∂o/∂K‖", "grad", "µs")
# On a narrow terminal the rows come as two tables: what each selector computed, and what
# that means (spread, gradient, cost).
SPLIT = (("weights", "output"), ("H(w)", "|S|", "max w", "‖∂o/∂q‖", "‖∂o/∂K‖", "grad", "µs"))


def rows_table(report: CompareReport, p: int, columns: tuple[str, ...] = ROW_COLUMNS,
               title: str = "selectors on the same query, keys and values") -> Table:
    several = report.queries.shape[0] > 1
    table = Table(title=title, title_justify="left", header_style="bold")
    for name in ["selector"] + (["q"] if several else []) + list(columns):
        wraps = name in ("weights", "output")
        table.add_column(name, justify="left" if wraps or name in ("selector", "grad") else "right",
                         no_wrap=not wraps, min_width=6 if wraps else None)
    for row in report.selector_rows:
        for j in range(len(row.entropy)):
            first = j == 0  # per-selector numbers once, per-query numbers on every line
            style = GRADIENT_STYLE[row.gradient]
            cells = {
                "weights": vec(row.weights[j], p), "output": vec(row.outputs[j], p),
                "H(w)": fmt(row.entropy[j], p), "|S|": str(int(row.support[j])),
                "max w": fmt(row.max_weight[j], p),
                "‖∂o/∂q‖": fmt(row.grad_norm_query, p) if first else "",
                "‖∂o/∂K‖": fmt(row.grad_norm_keys, p) if first else "",
                "grad": f"[{style}]{row.gradient}[/{style}]" if first else "",
                "µs": f"{row.cost_us:.1f}" if first else "",
            }
            table.add_row(row.selector if first else "", *([str(j)] if several else []),
                          *(cells[name] for name in columns))
    return table


def print_rows(console: Console, report: CompareReport, p: int) -> None:
    """One table when the terminal is wide enough for it, else two that each fit."""
    table = rows_table(report, p)
    if _fits(console, table):
        console.print(table)
        return
    console.print(rows_table(report, p, SPLIT[0], "what each selector computed"))
    console.print(rows_table(report, p, SPLIT[1], "what it means: spread, gradient, cost"))


def cost_table(report: CompareReport, by_selector: bool = False) -> Table:
    """A row per number of keys and a column per selector, or (``by_selector``) a row per
    selector and a column per number of keys, which fits a narrow terminal."""
    names = list(dict.fromkeys(c.selector for c in report.cost))
    sizes = sorted({c.n for c in report.cost})
    cells = {(c.selector, c.n): c for c in report.cost}
    table = Table(title=f"cost per call, µs (d = {report.cost_dim}); selection ÷ argmax's",
                  title_justify="left", header_style="bold")

    def cell(name: str, n: int) -> str:
        c = cells[(name, n)]
        return f"{_microseconds(c.select_us)} (×{_ratio(c.ratio_to_argmax)})"

    if by_selector:
        table.add_column("n keys", justify="left", no_wrap=True)
        for n in sizes:
            table.add_column(str(n), justify="right", no_wrap=True)
        table.add_row("scores q·K", *(_microseconds(cells[(names[0], n)].scores_us)
                                      for n in sizes))
        for name in names:
            table.add_row(name, *(cell(name, n) for n in sizes))
        return table
    table.add_column("n keys", justify="right")
    table.add_column("scores q·K", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for n in sizes:
        table.add_row(str(n), _microseconds(cells[(names[0], n)].scores_us),
                      *(cell(name, n) for name in names))
    return table


def _microseconds(us: float) -> str:
    """A time with a tenth of a µs below 100 µs and whole µs above: a slow, noisy call
    (2264 µs) stays as narrow as a fast one (22.2 µs)."""
    return f"{us:.1f}" if us < 100 else f"{us:.0f}"


def _ratio(r: float) -> str:
    """Two significant figures below 10 and a whole number above (×127, not ×1.3e+02)."""
    return f"{r:.2g}" if r < 10 else f"{r:.0f}"


def _fits(console: Console, table: Table) -> bool:
    """Whether ``table`` shows whole (no cell wrapped or cut) at the console's width."""
    unwrapped = console.measure(table, options=console.options.update(max_width=10_000))
    return unwrapped.maximum <= console.width


LEARNING_COLUMNS = ("loss start → end", "held-out acc (untrained)", "chance", "Σ‖∂L/∂W_q‖",
                    "Σ‖∂L/∂W_k‖", "W changed", "loss curve")
# On a narrow terminal: what each selector learned, and what reached its queries and keys.
LEARNING_SPLIT = (LEARNING_COLUMNS[:3], LEARNING_COLUMNS[3:])


def learning_table(report: CompareReport, p: int,
                   columns: tuple[str, ...] = LEARNING_COLUMNS, title: str | None = None,
                   curve_points: int = 30) -> Table:
    s = report.learning_setup
    table = Table(
        title=title or (f"associative recall: {s.pairs} pairs, d = {s.dim}, {s.vocab} tokens, "
                        f"{s.steps} Adam steps (lr {s.lr}), seed {s.seed}; W_q and W_k learned"),
        title_justify="left", header_style="bold")
    for name in ("selector",) + columns:
        table.add_column(name, justify="left" if name in ("selector", "loss curve") else "right",
                         no_wrap=name in ("selector", "loss curve"))
    for r in report.learning:
        curve = r.losses[:: max(1, len(r.losses) // curve_points)]
        cells = {
            "loss start → end": f"{fmt(r.loss_start, p)} → {fmt(r.loss_end, p)}",
            "held-out acc (untrained)": f"{r.accuracy:.1%} ({r.accuracy_at_init:.1%})",
            "chance": f"{r.chance:.1%}",
            "Σ‖∂L/∂W_q‖": fmt(r.grad_norm_Wq, p), "Σ‖∂L/∂W_k‖": fmt(r.grad_norm_Wk, p),
            "W changed": "yes" if r.weights_changed else "no",
            "loss curve": sparkline(curve, log=False),
        }
        table.add_row(r.selector, *(cells[name] for name in columns))
    return table


def print_learning(console: Console, report: CompareReport, p: int) -> None:
    """One table when the terminal is wide enough for it, else two that each fit."""
    table = learning_table(report, p)
    if _fits(console, table):
        console.print(table)
        return
    s = report.learning_setup
    console.print(f"associative recall: {s.pairs} pairs, d = {s.dim}, {s.vocab} tokens, "
                  f"{s.steps} Adam steps (lr {s.lr}), seed {s.seed}; W_q and W_k learned")
    console.print(learning_table(report, p, LEARNING_SPLIT[0], "what each selector learned"))
    console.print(learning_table(report, p, LEARNING_SPLIT[1],
                                 "what reached the queries and keys", curve_points=20))


def render_compare(report: CompareReport, *, precision: int = 4, explain: bool = False,
                   console: Console | None = None) -> None:
    console = console or make_console()
    source = "the built-in worked example" if report.example else "your keys and values"
    console.print(f"{len(report.selector_rows)} selectors on {source}; "
                  f"scale = {fmt(report.scale, precision)}"
                  f", upstream u = {vec(report.upstream, precision)}")
    print_rows(console, report, precision)
    settings = "; ".join(f"{r.selector}: {_params(r.params)}" for r in report.selector_rows
                         if r.params)
    console.print(f"H(w) entropy in nats, |S| support size, µs median per call "
                  f"(p25–p75 in --format json); {settings}", style="dim")
    if report.cost:
        table = cost_table(report)
        console.print(table if _fits(console, table) else cost_table(report, by_selector=True))
    if report.learning:
        print_learning(console, report, precision)
    print_closing(console, [], explain_compare(report, precision) if explain else [])
