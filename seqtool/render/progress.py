"""Progress bars on stderr for long runs, drawn only when stderr is a terminal.

Rich is imported when something is drawn: the CLI attaches :class:`CompileStatus` to every
command, and ``seqtool attend`` piped must not pay for Rich's console.
"""

from __future__ import annotations

import sys
from typing import Any


class LearnProgress:
    """compare-selectors --learn: one bar over every selector's steps, with the live loss."""

    def __init__(self, config: Any, fmt_name: str = "table", precision: int = 4):
        self.config = config
        self.progress = None

    def __enter__(self) -> "LearnProgress":
        from rich.console import Console

        console = Console(stderr=True)
        if self.config.learn and console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            columns = (TextColumn("learning {task.fields[selector]:<10}"), BarColumn(),
                       TextColumn("{task.fields[loss]}"), TimeRemainingColumn())
            self.progress = Progress(*columns, console=console, transient=True)
            self.progress.start()
            total = self.config.steps * len(self.config.selectors)
            # no loss to show before the first step (it said "loss nan")
            self.task = self.progress.add_task("learn", total=total, selector="", loss="")
        return self

    def attach(self, events: Any) -> None:
        if self.progress is not None:
            events.on_learn_step = self.on_step

    def on_step(self, selector: str, step: int, loss: float) -> None:
        steps = self.config.steps
        if step % 10 == 0 or step == steps - 1:
            done = self.config.selectors.index(selector) * steps + step + 1
            self.progress.update(self.task, completed=done, selector=selector,
                                 loss=f"loss {loss:.3f}")

    def __exit__(self, *exc: Any) -> bool:
        if self.progress is not None:
            self.progress.stop()
        return False


def _write(text: str) -> None:
    sys.stderr.write(f"seqtool: {text}\n")
    sys.stderr.flush()


class CompileStatus:
    """The notice of a warm-up that compiles (seqtool.core.rnn.warmup): "compiling the lstm
    kernels (float32)..." with a spinner and the elapsed time on a terminal (one line
    otherwise), then "compiled ... in N.N s". A warm-up that loads from the cache shows
    nothing (the core calls neither callback)."""

    def __init__(self) -> None:
        self.progress = None

    def attach(self, events: Any) -> None:
        events.on_compile, events.on_compiled = self.started, self.finished

    def started(self, cell: str, dtype: str) -> None:
        from rich.console import Console

        text = f"compiling the {cell} kernels ({dtype})..."
        console = Console(stderr=True)
        if not console.is_terminal:
            _write(text)
            return
        from rich.markup import escape
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(SpinnerColumn(), TextColumn(escape(f"seqtool: {text}")),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.progress.add_task("compile", total=None)
        self.progress.start()

    def finished(self, result: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        _write(f"compiled the {result.cell} kernels ({result.dtype}) in {result.seconds:.1f} s")


class CompileProgress:
    """seqtool compile: one bar over the (cell, dtype) jobs, on a terminal's stderr."""

    def __init__(self, config: Any, fmt_name: str = "table", precision: int = 4):
        self.config = config
        self.progress = None
        self.task = None

    def __enter__(self) -> "CompileProgress":
        return self

    def attach(self, events: Any) -> None:
        events.on_start, events.on_result = self.on_start, self.on_result

    def on_start(self, jobs: list[tuple[str, str]]) -> None:
        from rich.console import Console

        console = Console(stderr=True)
        if console.is_terminal:
            from rich.progress import (
                BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
            )

            self.progress = Progress(TextColumn("compiling {task.fields[last]:<16}"),
                                     BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task("compile", total=len(jobs), last="")

    def on_result(self, row: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, last=f"{row['cell']} {row['dtype']}")

    def __exit__(self, *exc: Any) -> bool:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        return False


class AnalysisProgress:
    """bptt: a bar over the long part of an analysis (the finite-difference check's
    parameter entries, per cell), on a terminal's stderr, from its first report on."""

    def __init__(self, config: Any, fmt_name: str = "table", precision: int = 4):
        self.progress = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> "AnalysisProgress":
        return self

    def attach(self, events: Any) -> None:
        events.on_progress = self.update

    def update(self, what: str, done: int, total: int) -> None:
        if self.progress is None:
            from rich.console import Console

            console = Console(stderr=True)
            if not console.is_terminal:
                self.progress = False  # nothing to draw on: never ask again
                return
            from rich.progress import (
                BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn,
            )

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeRemainingColumn(),
                                     console=console, transient=True)
            self.progress.start()
        if self.progress is False:
            return
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(what, total=total)
        if done == total or done % 16 == 0:  # drawing every entry would cost more than it
            self.progress.update(self.tasks[what], completed=done)

    def __exit__(self, *exc: Any) -> bool:
        if self.progress:
            self.progress.stop()
        self.progress = None
        return False
