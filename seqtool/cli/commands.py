"""Every Typer command, built from the command registry, and the one way a command runs.

For each registered :class:`~seqtool.commands.Command` this module makes a Typer command
whose options are the command's flags (help texts and defaults from its Config), and runs
it the same way for all: check ``--format``, gather the flags (and an ``--input`` /
``--problem`` mapping, or stdin lines) into the Config, run the command with live views
on stderr, then draw the table or write the machine format, and exit 1 if the command
says its run failed. cli does no numerics and draws nothing itself.
"""

from __future__ import annotations

import inspect
import signal
import sys
from contextlib import nullcontext
from dataclasses import MISSING, fields
from typing import Any, Optional

import typer

from seqtool.commands import Command, Flag, commands, load
from seqtool.core.errors import InputError, RunError

FORMAT = "output_format"
PRECISION = "precision"
EXPLAIN = "explain"
PLOT = "plot"


# ---------------------------------------------------------------------------------------
# Building the Typer commands


def _default_text(config_cls: type, name: str) -> str:
    """' (default: X)' for a Config field with a default worth showing."""
    for f in fields(config_cls):
        if f.name == name and (f.default is not MISSING or f.default_factory is not MISSING):
            value = f.default if f.default is not MISSING else f.default_factory()
            if value is None or value == "" or value == () or value is False:
                return ""
            if isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            return f" (default: {value})"
    return ""


def _help(command: Command, flag: Flag) -> str:
    if flag.help is not None:
        return flag.help
    field = next(f for f in fields(command.config) if f.name == flag.name)
    return field.metadata["help"] + _default_text(command.config, flag.name)


def _parameter(command: Command, flag: Flag) -> inspect.Parameter:
    """A Typer parameter for one flag; a value left out arrives as None (not given)."""
    help_text = _help(command, flag)
    if flag.kind == "argument":
        default: Any = typer.Argument(..., metavar=flag.metavar, help=help_text)
        annotation: Any = str
    elif flag.kind == "switch":
        default, annotation = typer.Option(False, *flag.decls, help=help_text), bool
    elif flag.kind == "many":
        default = typer.Option(None, *flag.decls, metavar=flag.metavar, help=help_text)
        annotation = Optional[list[str]]
    elif flag.kind == "int":
        default = typer.Option(None, *flag.decls, metavar=flag.metavar, min=flag.minimum,
                               help=help_text)
        annotation = Optional[int]
    else:
        default = typer.Option(... if flag.required else None, *flag.decls,
                               metavar=flag.metavar, help=help_text)
        annotation = str if flag.required else Optional[str]
    return inspect.Parameter(flag.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)


def _format_help(command: Command) -> str:
    if command.format_help:
        return command.format_help
    if command.streams:
        piped = "jsonl (predict) or json" if command.piped_default == "jsonl" else "json"
        return f"Default: table on a terminal, {piped} when piped."
    return "Output format. Default: table on a terminal, json when piped."


def _output_parameters(command: Command) -> list[inspect.Parameter]:
    from seqtool.io.output import formats_for

    keyword = inspect.Parameter.KEYWORD_ONLY
    formats = formats_for(command.streams)
    out = [inspect.Parameter(FORMAT, keyword, annotation=Optional[str], default=typer.Option(
        None, "--format", "-f", metavar="|".join(formats), help=_format_help(command)))]
    if command.precision:
        out.append(inspect.Parameter(PRECISION, keyword, annotation=int, default=typer.Option(
            4, "--precision", min=1, max=17, metavar="1..17",
            help="Significant digits in tables.")))
    if command.explain:
        out.append(inspect.Parameter(EXPLAIN, keyword, annotation=bool, default=typer.Option(
            False, "--explain", help=command.explain_help)))
    if command.plot:
        out.append(inspect.Parameter(PLOT, keyword, annotation=Optional[str], default=typer.Option(
            None, "--plot", metavar="FILE", help="Also draw the result to FILE: .png, .svg, "
            ".pdf or .html (one self-contained page); needs matplotlib "
            "(pip install 'seqtool[plot]').")))
    return out


def _source_name(command: Command) -> str:
    return f"{command.source.name}_source" if command.source else ""


def signature(command: Command) -> inspect.Signature:
    """The Typer signature of ``command``: its flags, its source, its options, the outputs."""
    params = [_parameter(command, flag) for flag in command.flags]
    if command.source is not None:
        src = command.source
        params.append(inspect.Parameter(
            _source_name(command), inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
            default=typer.Option(None, *src.decls, metavar=src.metavar, help=src.help)))
    params += [_parameter(command, flag) for flag in command.options]
    params += _output_parameters(command)
    # Typer lists positional arguments by their order in the signature: keep them first
    params.sort(key=lambda p: 0 if isinstance(p.default, typer.models.ArgumentInfo) else 1)
    return inspect.Signature(params)


def help_text(command: Command) -> str:
    """The command's help, what its positional arguments are (click shows their names
    only), and its examples one per line."""
    text = command.help
    for flag in command.flags:
        if flag.kind == "argument":
            text += f"\n\n{flag.metavar}: {_help(command, flag)}"
    if not command.examples:
        return text
    # "\b" keeps click from rewrapping the examples into one paragraph
    return text + "\n\n\b\nExamples:\n" + "\n".join(f"  {e}" for e in command.examples)


def add_commands(app: typer.Typer) -> None:
    """One Typer command per registered command, in registration order."""
    for command in commands():
        def callback(__command: Command = command, **values: Any) -> None:
            invoke(__command, values)

        callback.__signature__ = signature(command)  # type: ignore[attr-defined]
        callback.__annotations__ = {}  # Typer reads types from the signature alone
        callback.__name__ = command.name.replace("-", "_") + "_command"
        app.command(command.name, help=help_text(command),
                    short_help=command.short_help)(callback)


# ---------------------------------------------------------------------------------------
# Running one


def check_format(requested: str | None, formats: tuple[str, ...]) -> None:
    """Refuse an unknown --format before any work is done."""
    if requested is not None and requested not in formats:
        raise InputError("format", f"is '{requested}'; choose one of {', '.join(formats)}")


def gather(command: Command, values: dict[str, Any]) -> dict[str, Any]:
    """The Config's parameters: the source mapping's (--input, --problem), overridden by
    the flags that were given; stdin's lines for a ``stdin_lines`` field not given."""
    from seqtool.io.numbers import read_mapping

    flags = {}
    for flag in command.flags:
        value = values.get(flag.name)
        if flag.kind == "switch":
            value = True if value else None
        elif flag.kind == "many":
            value = value or None
        if value is not None:
            flags[flag.name] = value
    source = values.get(_source_name(command)) if command.source else None
    stdin_readers = [k for k, v in flags.items() if isinstance(v, str) and v.strip() == "-"]
    if source is not None and source.strip() == "-":
        stdin_readers.append(command.source.name)
    if len(stdin_readers) > 1:
        names = " and ".join(f"--{k}" for k in stdin_readers)
        raise InputError(None, f"{names} both read stdin ('-'); only one of them can")
    mapping: dict[str, Any] = {}
    if source is not None:
        mapping = _recipe_params(read_mapping(source, command.source.name), command)
        if command.source_keys_checked:
            from seqtool.config import check_known

            try:
                check_known(command.config, mapping, command.name)
            except InputError as err:
                raise InputError(command.source.name,
                                 f"has a key that is not known: {err.message}") from None
    mapping.update(flags)
    if command.stdin_lines and command.stdin_lines not in mapping:
        mapping[command.stdin_lines] = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    return mapping


def _recipe_params(mapping: dict[str, Any], command: Command) -> dict[str, Any]:
    """A recipe of this command (``command:`` and ``params:``) read as its params, so that
    ``seqtool bptt --problem recipes/bptt-sigmoid-worked.yaml --explain`` works."""
    name = command.source.name
    if isinstance(mapping.get("steps"), list):
        raise InputError(name, "is a recipe of several steps; run it with seqtool run")
    if "command" not in mapping or "params" not in mapping:
        return mapping
    if mapping["command"] != command.name:
        raise InputError(name, f"is a recipe of {mapping['command']}, not of {command.name}; "
                         f"run it with seqtool run")
    extra = [k for k in mapping if k not in ("name", "description", "command", "params")]
    if extra:
        raise InputError(name, f"is a recipe with '{extra[0]}', which only seqtool run "
                         "understands")
    params = mapping["params"]
    if not isinstance(params, dict):
        raise InputError(name, "is a recipe whose params are not a mapping")
    return dict(params)


class StopFlag:
    """Ctrl-C sets a flag that a long run reads after each whole step; a second one
    stops at once."""

    def __init__(self):
        self.set = False
        self._previous = None

    def __enter__(self):
        def handler(signum, frame):
            if self.set:
                raise KeyboardInterrupt
            self.set = True
            sys.stderr.write("\nseqtool: stopping after this step (Ctrl-C again to abort)...\n")

        try:
            self._previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread (e.g. a test runner): no handler
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class RuntimeWarningsAsNote:
    """NumPy's RuntimeWarnings ("overflow encountered in ...") raised while a command runs
    are not printed raw: they are collected and said once, in seqtool's own words, at the
    end (other warnings pass as usual)."""

    def __enter__(self):
        import warnings

        self.seen: dict[str, int] = {}
        self._previous = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, RuntimeWarning):
                text = " ".join(str(message).split())
                self.seen[text] = self.seen.get(text, 0) + 1
            else:
                self._previous(message, category, filename, lineno, file, line)

        self._filters = warnings.catch_warnings()
        self._filters.__enter__()
        warnings.simplefilter("always", RuntimeWarning)
        warnings.showwarning = show
        return self

    def __exit__(self, *exc):
        import warnings

        warnings.showwarning = self._previous
        self._filters.__exit__(*exc)
        if self.seen:
            said = "; ".join(sorted(self.seen))
            _notice(f"note: NumPy reported {said} (numbers that left the floating-point "
                    "range: look for inf, NaN or null in the output)")
        return False


def _write_plot(command: Command, report: Any, path: Any) -> None:
    """Draw the report (from its to_dict(), as `seqtool report` does) and write the file."""
    from seqtool.io.checkpoint import write_atomic
    from seqtool.render.plots import encode

    fig = command.call("plot", report.to_dict())
    write_atomic(path, encode(fig, path.suffix, command.plot_title or f"seqtool {command.name}"))
    _notice(f"plot written to {path}")


def _notice(text: str) -> None:
    sys.stderr.write(f"seqtool: {text}\n")
    sys.stderr.flush()


def invoke(command: Command, values: dict[str, Any]) -> None:
    """Run ``command`` with the values Typer parsed, and write what it reports."""
    from seqtool.commands.events import Events
    from seqtool.io.output import choose_format, formats_for, write_jsonl, write_report
    from seqtool.render.progress import CompileStatus

    requested = values.get(FORMAT)
    check_format(requested, formats_for(command.streams))
    fmt = choose_format(requested)
    if requested is None and fmt == "json":
        fmt = command.piped_default
    precision = values.get(PRECISION, 4)
    explain = bool(values.get(EXPLAIN))
    plot_path = None
    if values.get(PLOT) is not None:  # checked before any work: a bad path wastes no run
        from seqtool.render.plots import check_plot_path

        plot_path = check_plot_path(values[PLOT])
    config = command.config.from_mapping(gather(command, values))
    if explain and command.check_explain:
        command.call("check_explain", config)
    if plot_path is not None and command.check_plot:
        command.call("check_plot", config)
    options = {flag.name: values.get(flag.name) for flag in command.options}
    if command.explain_runs:
        options[EXPLAIN] = explain
    events = Events(notice=_notice, on_record=write_jsonl if fmt == "jsonl" else None)
    CompileStatus().attach(events)  # a warm-up that compiles says so on stderr
    live = load(command.live)(config, fmt, precision) if command.live else nullcontext()
    with RuntimeWarningsAsNote(), \
            StopFlag() if command.interruptible else nullcontext() as flag, live as view:
        if view is not None:
            view.attach(events)
        if flag is not None:
            events.should_stop = lambda: flag.set
        report = command.call("run", config, events, None, **options)
    if fmt == "table":
        command.call("render", report, precision=precision, explain=explain)
    else:
        explanation = None
        if explain and command.explain:
            if fmt == "csv":
                _notice("note: --explain is shown in the table and json formats")
            else:
                explanation = command.call("explain", report, precision)
        write_report(report, fmt, explanation)
    if plot_path is not None:
        _write_plot(command, report, plot_path)
    failed = command.call("failure", report) if command.failure else None
    if failed:
        raise RunError(failed)
