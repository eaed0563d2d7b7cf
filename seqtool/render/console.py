"""The Rich console every renderer draws on, and the closing notes and walk-through."""

from __future__ import annotations

from rich.console import Console


def make_console() -> Console:
    """stdout; Rich honours NO_COLOR and plain pipes. No emoji codes or auto-highlighting:
    numbers are coloured by meaning, not by regex."""
    return Console(highlight=False, emoji=False)


def print_closing(console: Console, notes: list[str], explanation: list[str]) -> None:
    """The report's notes, then the --explain lines (printed as written, no markup)."""
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if explanation:
        console.print()
        for line in explanation:
            console.print(line, markup=False)
