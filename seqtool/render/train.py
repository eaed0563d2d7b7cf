"""What `seqtool train-rnn` shows people while it trains and when it is done.

table: a header, one aligned row per epoch as it ends, then a summary (and --explain).
A Rich progress bar with the live loss runs on stderr when stderr is a terminal, whatever
the format. (The machine formats are written by ``seqtool.io.output`` from the report.)
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from seqtool.commands.train import columns_of
from seqtool.render.console import make_console
from seqtool.render.numbers import fmt, sparkline

SHORT = {"epoch": "epoch", "train_loss": "train loss", "val_loss": "val loss",
         "grad_norm": "‖grad‖", "tokens_per_s": "tokens/s", "seconds": "s",
         "train_accuracy": "train acc", "val_accuracy": "val acc", "train_perplexity": "train ppl",
         "val_perplexity": "val ppl", "train_mse": "train mse", "val_mse": "val mse",
         "val_exact": "val exact"}


def _cell(value: Any, p: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else fmt(value, p)
    return str(value)


class TrainView:
    """The live view of a training run: the header and a row per epoch (table format), and
    a progress bar on a terminal's stderr (any format)."""

    def __init__(self, config: Any, fmt_name: str, precision: int = 4):
        self.fmt, self.p = fmt_name, precision
        self.console = make_console()
        self.progress = None
        self.task = None
        self.metric = "metric"
        self.widths: list[int] = []

    def attach(self, events: Any) -> None:
        events.on_start, events.on_step, events.on_epoch = (
            self.on_start, self.on_step, self.on_epoch)

    def __enter__(self) -> "TrainView":
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.close()
        return False

    # -- during the run --------------------------------------------------------------

    def on_start(self, report: Any) -> None:
        self.metric = report.metric
        spec = report.spec
        if self.fmt == "table":
            what = (f"{spec.cell.upper()} ×{spec.layers}, H={spec.hidden}"
                    if spec.cell != "bow" else "bag of words")
            resumed = (f"; resumed at step {report.resumed_from['global_step']}"
                       if report.resumed_from else "")
            threads = report.config.threads
            on = f"{threads} threads" if threads and threads > 1 else "1 thread"
            self.console.print(
                f"[bold]{spec.task}[/bold] on {report.data_name}: {report.train_size} train / "
                f"{report.val_size} val sequences; {what}, {report.parameters:,} parameters, "
                f"{on}; run directory {report.out}{resumed}")
            self.columns = columns_of(spec)
            names = [SHORT[c] for c in self.columns]
            self.widths = [max(len(n), self.p + 4) for n in names]
            self.widths[0] = 5
            # a row wider than the terminal would wrap: the last columns (seconds, then
            # tokens/s) give way; the csv and json formats keep every one
            while sum(self.widths) + len(self.widths) + 5 > self.console.width and len(names) > 6:
                names, self.widths, self.columns = names[:-1], self.widths[:-1], self.columns[:-1]
            self.console.print(" ".join(n.rjust(w) for n, w in zip(names, self.widths)),
                               style="bold")
        err = Console(stderr=True)
        if err.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}"), BarColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  {task.fields[metric]}"),
                TimeRemainingColumn(), console=err, transient=True)
            self.progress.start()
            cfg = report.config
            from seqtool.core.training import steps_per_epoch

            per_epoch = steps_per_epoch(report.train_size, cfg.batch_size)
            total = cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
            done = report.resumed_from["global_step"] if report.resumed_from else 0
            self.task = self.progress.add_task("train", total=total, completed=done,
                                               epoch=1, loss=float("nan"), metric="")

    def on_step(self, position: Any, loss: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=position.global_step,
                                 epoch=position.epoch + 1, loss=loss,
                                 metric=self._running_metric(position.running))

    def _running_metric(self, running: dict[str, Any]) -> str:
        """This epoch's metric so far, from the loop's running sums."""
        count = running.get("count", 0)
        if not count:
            return ""
        mean = running.get("loss_sum", 0.0) / count
        if self.metric == "accuracy":
            return f"acc {running.get('correct', 0) / count:.3f}"
        if self.metric == "perplexity":
            return f"ppl {math.exp(min(mean, 700.0)):.3f}"
        return f"mse {mean:.4g}"

    def on_epoch(self, position: Any, record: dict[str, Any], improved: bool) -> None:
        if self.fmt == "table":
            cells = [_cell(record.get(n), self.p) for n in self.columns]
            line = " ".join(c.rjust(w) for c, w in zip(cells, self.widths))
            self._row_console().print(line + ("  [green]best[/green]" if improved else ""))

    def _row_console(self) -> Console:
        """While the progress bar is drawn and stdout is the same terminal, rows go through
        the bar's console, which prints them above the bar instead of through it."""
        if self.progress is not None and self.console.is_terminal:
            return self.progress.console
        return self.console

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def render_summary(report: Any, *, precision: int = 4, explain: bool = False) -> None:
    """The summary table after the epochs' rows, then the --explain walk-through."""
    console = make_console()
    p = precision
    table = Table(title="summary", title_justify="left", header_style="bold",
                  show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("stopped", report.stop_reason + (f": {report.message}" if report.message else ""))
    table.add_row("epochs", str(len(report.history)))
    if report.best_val:
        best = ", ".join(f"{k} {_cell(v, p)}" for k, v in report.best_val.items())
        table.add_row("best", f"epoch {report.best_epoch}: {best}")
    if report.history:
        curve = [row["val_loss"] for row in report.history]
        table.add_row("val loss", f"{sparkline(curve)}  {_cell(curve[0], p)} → {_cell(curve[-1], p)}")
    for name, value in report.baseline.items():
        table.add_row("baseline", f"{name.replace('_', ' ')} {_cell(value, p)}")
    if report.attention is not None:
        moved = ", ".join(f"‖Δ{name.removeprefix('attention.')}‖ {_cell(v, p)}"
                          for name, v in report.attention["scoring_change"].items())
        table.add_row("attention", f"{report.attention['score']} score, "
                      f"{report.attention['selector']} ({moved}): {report.attention['note']}")
    table.add_row("files", f"{report.out}/model.npz (best), last.npz, metrics.jsonl, config.yaml")
    console.print(table)
    if explain and (report.dependency is not None or report.alignment is not None):
        console.print()
        for line in explanation(report, p):
            console.print(line, markup=False, highlight=False)


def explanation(report: Any, precision: int = 4) -> list[str] | None:
    """The --explain lines (None when there is nothing measured to explain): the
    dependency map, or a seq2seq model's alignment of a validation example."""
    if report.alignment is not None:
        from seqtool.render.alignment import alignment_lines

        a = report.alignment
        title = (f"alignment of validation pair {a['example'] + 1} (rows: the greedy output; "
                 f"target {''.join(a['target']) if _chars(a) else ' '.join(a['target'])!r})")
        return architecture(report.spec) + [""] + alignment_lines(a["source"], a["output"],
                                                                  a["weights"], title)
    if report.dependency is None:
        return None
    lines = explain_lines(report, precision)
    if report.pooling is not None:
        p = report.pooling
        heaviest = sorted(zip(p["weights"], p["tokens"]), reverse=True)[:5]
        lines += ["", f"attention pooling on validation sequence {p['example']} "
                  f"(label {p['label']}, predicted {p['predicted']}): the heaviest tokens "
                  + ", ".join(f"{t} {fmt(w, precision)}" for w, t in heaviest if w > 0),
                  "  " + " ".join(f"{t}({fmt(w, 2)})" for t, w in zip(p["tokens"],
                                                                      p["weights"]))]
    return lines


def _chars(alignment: dict[str, Any]) -> bool:
    return all(len(t) == 1 for t in alignment["source"] + alignment["target"])


# ---------------------------------------------------------------------------------------
# --explain


def architecture(spec: Any) -> list[str]:
    """Which outputs read which inputs, as a small diagram."""
    T = 4
    xs = "   ".join(f"x_{t}" for t in range(1, T + 1)) + "   ..."
    hs = " → ".join(f"h_{t}" for t in range(1, T + 1)) + " → ..."
    up = "     ".join("↑" for _ in range(T))  # under the middle of each 3-character name
    cell = (f"{spec.cell.upper()} ×{spec.layers}, H = {spec.hidden}" if spec.cell != "bow"
            else "")
    embed = (f"x_t = E[token_t] (E: {spec.input_size}×{spec.embedding_dim})" if spec.tokens_in
             else f"x_t ∈ R^{spec.input_size}")
    lines = [f"architecture ({spec.task}):"]
    if spec.task == "seq2seq":
        two = " (bidirectional, H/2 each way)" if spec.bidirectional else ""
        cell = f"{spec.cell.upper()} ×{spec.layers}"
        return lines + [
            f"  encoder:   ē_1..ē_n = {cell}(E_enc[x_1..x_n]){two}",
            f"  decoder:   h_t = {cell}(h_{{t−1}}, E_dec[y_{{t−1}}]), h_0 = the encoder's",
            "             final state (H = {})".format(spec.hidden),
            f"  attention: a_t = {spec.selector}({spec.score} score of h_t and ē_1..ē_n)",
            "             c_t = Σ_s a_ts ē_s,  h̃_t = tanh(W_c [c_t; h_t])",
            "  output:    p(y_t | y_<t, x) = softmax(W h̃_t + b)"]
    if spec.cell == "bow":
        return lines + ["  y = W · mean_t(x_t) + b: no order, every word counts the same",
                        f"  {embed}"]
    if spec.per_step:
        ys = "   ".join(f"y_{t}" for t in range(1, T + 1)) + "   ..."
        what = ("p(token_{t+1} | token_1..token_t)" if spec.task == "lm" else
                "y_t reads x_1..x_t only (one-way)")
        lines += [f"  {ys}     {what}", f"   {up}"]
    else:
        pooled = {"last": "y = W h_n + b (the last real step)",
                  "mean": "y = W mean_t(h_t) + b", "max": "y = W max_t(h_t) + b",
                  "attention": f"y = W Σ_t w_t h_t + b, w = {spec.selector}({spec.score} "
                               "scores)"}
        key = "last" if spec.task == "regress" else spec.pool
        lines += [f"  {pooled[key]}: one output reads the whole sequence", "   ↑"]
    lines += [f"  {hs}     {cell}", f"   {up}", f"  {xs}     {embed}"]
    return lines


def tensor_shapes(spec: Any, batch: int) -> str:
    """The arrays of one training step, stage by stage, at this run's sizes (T: the batch's
    longest sequence; B: --batch-size)."""
    C = spec.output_size
    first = (f"ids (T, {batch}) → embeddings (T, {batch}, {spec.embedding_dim})"
             if spec.tokens_in else f"inputs (T, {batch}, {spec.input_size})")
    if spec.cell == "bow":
        return f"shapes: {first} → mean ({batch}, {spec.embedding_dim}) → logits ({batch}, {C})"
    layers = f" ×{spec.layers} layers" if spec.layers > 1 else ""
    states = f"states (T, {batch}, {spec.hidden}){layers}"
    name = "outputs" if spec.task == "regress" else "logits"
    if spec.per_step:
        return f"shapes: {first} → {states} → {name} (T, {batch}, {C})"
    pool = "last" if spec.task == "regress" else spec.pool
    return (f"shapes: {first} → {states} → {pool} state ({batch}, {spec.hidden}) → "
            f"{name} ({batch}, {C})")


def explain_lines(report: Any, p: int) -> list[str]:
    dep = report.dependency
    lines = architecture(report.spec) + [
        "  " + tensor_shapes(report.spec, report.config.batch_size), ""]
    norms = dep["norms"]
    tokens = dep["inputs"]
    lines.append(f"dependency map ‖∂y_t/∂x_s‖ of the trained model on validation sequence "
                 f"{dep['sequence']} ({' '.join(tokens)}):")
    width = max(8, p + 5)
    header = " " * 6 + "".join(f"s={s + 1:<{width - 2}}" for s in range(dep["steps"]))
    lines.append(header)
    for t, row in enumerate(norms):
        label = f"y_{t + 1}" if dep["per_step"] else "y"
        lines.append(f"{label:<6}" + "".join(f"{fmt(v, 3):<{width}}" for v in row))
    if dep["per_step"]:
        lines.append(f"largest entry above the diagonal (s > t): {dep['max_above_diagonal']:g}"
                     " — y_t never reads a later input, as a one-way model must")
    else:
        lines.append("one output reads every step; the norms show how much each position "
                     "still matters at the end")
    return lines
