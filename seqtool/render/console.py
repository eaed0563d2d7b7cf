"""The Rich console every renderer draws on, and the closing notes and walk-through."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rich.console import Console

# the console the renderers draw on instead of stdout while `drawing_on` is in force (a
# notebook's recording console); a context variable, so threads and tasks never share it
_TARGET: ContextVar[Console | None] = ContextVar("seqtool_console", default=None)


def make_console() -> Console:
    """stdout (or the console of an enclosing :func:`drawing_on`); Rich honours NO_COLOR
    and plain pipes. No emoji codes or auto-highlighting: numbers are coloured by meaning,
    not by regex."""
    target = _TARGET.get()
    return target if target is not None else Console(highlight=False, emoji=False)


@contextmanager
def drawing_on(console: Console) -> Iterator[Console]:
    """Every renderer called inside draws on ``console`` (e.g. one that records, for HTML)."""
    token = _TARGET.set(console)
    try:
        yield console
    finally:
        _TARGET.reset(token)


def print_closing(console: Console, notes: list[str], explanation: list[str]) -> None:
    """The report's notes, then the --explain lines (printed as written, no markup)."""
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if explanation:
        console.print()
        for line in explanation:
            console.print(line, markup=False)
