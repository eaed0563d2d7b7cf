"""Progress bars on stderr for long runs, drawn only when stderr is a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console


class LearnProgress:
    """compare-selectors --learn: one bar over every selector's steps, with the live loss."""

    def __init__(self, config: Any, fmt_name: str = "table", precision: int = 4):
        self.config = config
        self.progress = None

    def __enter__(self) -> "LearnProgress":
        console = Console(stderr=True)
        if self.config.learn and console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            columns = (TextColumn("learning {task.fields[selector]:<10}"), BarColumn(),
                       TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn())
            self.progress = Progress(*columns, console=console, transient=True)
            self.progress.start()
            total = self.config.steps * len(self.config.selectors)
            self.task = self.progress.add_task("learn", total=total, selector="",
                                               loss=float("nan"))
        return self

    def attach(self, events: Any) -> None:
        if self.progress is not None:
            events.on_learn_step = self.on_step

    def on_step(self, selector: str, step: int, loss: float) -> None:
        steps = self.config.steps
        if step % 10 == 0 or step == steps - 1:
            done = self.config.selectors.index(selector) * steps + step + 1
            self.progress.update(self.task, completed=done, selector=selector, loss=loss)

    def __exit__(self, *exc: Any) -> bool:
        if self.progress is not None:
            self.progress.stop()
        return False
