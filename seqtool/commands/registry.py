"""The command registry: each seqtool command is one :class:`Command`.

A Command names everything about a command that more than one face needs: its flags and
the Config they fill, the function that runs it, the Report it returns, the renderer that
draws that report as a table, and what a recipe's summary keeps of it. The Typer app
(``seqtool.cli``), the recipe runner (``seqtool.recipes``), ``--help`` and the CLI
reference (``docs/cli.md``) all loop over :func:`commands`.

Functions are named by ``"module:attribute"`` and imported when first used, so that
building the CLI costs nothing of what the commands need to run (numba, the training loop,
Rich's tables): ``seqtool attend`` starts as fast as importing numpy, typer and rich.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from seqtool.core.errors import InputError

KINDS = ("value", "switch", "many", "argument", "int")


@dataclass(frozen=True, eq=False)
class Flag:
    """One command-line parameter.

    ``name`` is the Config field it sets (or, for a command's own ``options``, the keyword
    its run function takes); ``decls`` how it is written (``"--query", "-q"``). ``kind``:
    ``value`` (text handed to the Config's coercer), ``switch`` (on when given), ``many``
    (repeatable), ``argument`` (positional), ``int`` (a whole number ≥ ``minimum``, checked
    by the parser). ``help`` defaults to the Config field's help text.
    """

    name: str
    decls: tuple[str, ...]
    metavar: str = "TEXT"
    kind: str = "value"
    help: str | None = None
    required: bool = False
    minimum: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"flag {self.name}: kind {self.kind!r} is not one of {KINDS}")


@dataclass(frozen=True, eq=False)
class Command:
    """Everything about one command (see the module docstring).

    run:        ``"module:function"``, ``run(config, events, run_dir=None, **options) ->
                Report``; ``run_dir`` is set when a recipe runs it (its files go there).
    render:     ``"module:function"``, ``render(report, precision=, explain=)``: the table.
    explain:    ``"module:function"``, ``explain(report, precision) -> list[str]``: the
                --explain lines (added to JSON as "explanation"); None: no --explain flag.
    check_explain: ``"module:function"``, ``(config) -> None``: refuse --explain early.
    plot:       ``"module:function"``, ``plot(report_dict) -> matplotlib Figure``: the
                picture of --plot FILE (seqtool.render.plots), drawn from ``to_dict()``;
                None: no --plot flag.
    check_plot: ``"module:function"``, ``(config) -> None``: refuse --plot early (a run
                that would draw nothing).
    failure:    ``"module:function"``, ``(report) -> str | None``: a run that computed its
                report but failed (exit 1 after the output).
    metrics:    ``"module:function"``, ``(report_dict) -> dict``: the scalars a recipe's
                summary averages over seeds.
    live:       ``"module:Class"``, ``Class(config, fmt, precision)``: a context manager
                whose ``events()`` draw progress while the command runs (render layer).
    source:     a flag whose value is a file or ``-`` holding a mapping of parameters
                (``--input``, ``--problem``); the flags given override it.
    options:    flags that are not Config fields; their values go to ``run`` by name.
    stdin_lines: a Config field filled with stdin's non-empty lines when not given.
    explain_runs: --explain asks the run itself for more (``run(..., explain=True)``).
    interruptible: the run polls ``events.should_stop`` (Ctrl-C stops it after a step).
    streams:    the command offers the stream formats (jsonl): its report's ``records()``,
                and ``events.on_record`` while it runs.
    """

    name: str
    config: type
    run: str
    report: str
    help: str
    short_help: str
    flags: tuple[Flag, ...]
    render: str
    explain: str | None = None
    explain_help: str = ""
    check_explain: str | None = None
    plot: str | None = None
    plot_title: str = ""
    check_plot: str | None = None
    failure: str | None = None
    metrics: str | None = None
    live: str | None = None
    source: Flag | None = None
    source_keys_checked: bool = True
    options: tuple[Flag, ...] = ()
    stdin_lines: str | None = None
    explain_runs: bool = False
    interruptible: bool = False
    streams: bool = False
    piped_default: str = "json"
    format_help: str = ""
    precision: bool = True
    recipes: bool = True
    examples: tuple[str, ...] = field(default=())

    def call(self, attribute: str, *args: Any, **kwargs: Any) -> Any:
        """Import and call the function named by field ``attribute`` (run, render, ...)."""
        return load(getattr(self, attribute))(*args, **kwargs)


def load(target: str) -> Callable[..., Any]:
    """The attribute named by ``"package.module:attribute"``."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


_COMMANDS: dict[str, Command] = {}


def register_command(command: Command) -> Command:
    """Add a command (the CLI, recipes and the reference pick it up)."""
    if command.name in _COMMANDS:
        raise ValueError(f"a command named {command.name!r} is registered already")
    _COMMANDS[command.name] = command
    return command


def commands() -> list[Command]:
    """Every command, in the order they were registered (the order --help lists them)."""
    from seqtool.commands import catalog  # noqa: F401  (registers the built-in commands)

    return list(_COMMANDS.values())


def get_command(name: str, what: str = "command") -> Command:
    """The command called ``name``; an unknown name is an InputError with the closest one."""
    known = {c.name: c for c in commands()}
    if name not in known:
        hint = difflib.get_close_matches(str(name), list(known), n=1)
        maybe = f" (did you mean {hint[0]}?)" if hint else ""
        raise InputError(what, f"is '{name}'{maybe}; choose one of {', '.join(known)}")
    return known[name]


def recipe_commands() -> dict[str, Command]:
    """The commands a recipe can run, by name."""
    return {c.name: c for c in commands() if c.recipes}
