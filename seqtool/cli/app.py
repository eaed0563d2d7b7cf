"""The Typer application and the one place where errors become messages and exit codes.

Exit codes: 0 done; 2 bad input or usage (one line on stderr naming the flag, what was found
and what was expected); 1 a run that failed. No traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from typing import Any

import click
import typer
from typer.core import TyperGroup

from seqtool import __version__
from seqtool.core.errors import InputError, SeqtoolError


def flag_of(key: str, command: click.Command | None) -> str:
    """How the user wrote parameter ``key``: ``--upstream`` if the command has that flag,
    else the key itself (``W_xh``, a key of a problem file)."""
    flag = "--" + key.replace("_", "-")
    if command is None:
        return flag
    if any(flag in param.opts for param in command.params):
        return flag
    return key


def message_of(err: InputError, command: click.Command | None = None) -> str:
    return f"{flag_of(err.key, command)} {err.message}" if err.key else err.message


def once(message: str) -> str:
    """The message with a sentence said twice said once (typer and click both add "Did you
    mean ...?" to an unknown command)."""
    sentences = re.split(r"(?<=[.?!])\s+", " ".join(message.split()))
    return " ".join(dict.fromkeys(sentences))


def os_message(err: OSError) -> str:
    """One line for a file-system refusal, naming the path: "cannot write runs/x: Read-only
    file system"; without a path (stdout on a full disk), the output."""
    reason = err.strerror or type(err).__name__
    if err.filename is None:
        return f"cannot write the output: {reason}"
    if err.filename2 is not None:
        return f"cannot move {err.filename} to {err.filename2}: {reason}"
    if isinstance(err, FileExistsError) and os.path.isfile(err.filename):
        return f"cannot use {err.filename} as a folder: it is a file (left as it is)"
    return f"cannot use {err.filename}: {reason}"


def fail(code: int, message: str) -> None:
    """One line on stderr, then exit with ``code``."""
    sys.stderr.write(f"seqtool: error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    sys.exit(code)


class SeqtoolGroup(TyperGroup):
    """A Typer group whose ``main`` turns every failure into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # the order they are registered in, not alphabetical

    def _subcommand(self, args: list[str]) -> click.Command | None:
        name = next((a for a in args if not a.startswith("-")), None)
        return self.commands.get(name) if name else None

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        extra["standalone_mode"] = False
        # --debug works before or after the subcommand: it is read here, not by click
        debug = "--debug" in args
        args = [a for a in args if a != "--debug"]
        try:
            code = super().main(args=args, prog_name=prog_name or "seqtool", **extra)
        except click.exceptions.NoArgsIsHelpError as err:
            click.echo(err.ctx.get_help() if err.ctx else "")
            code = 0
        except click.exceptions.UsageError as err:
            where = f" (see '{err.ctx.command_path} --help')" if err.ctx else ""
            fail(2, once(err.format_message()) + where)
        except (click.exceptions.Abort, KeyboardInterrupt):
            _interrupted()
        except InputError as err:
            if debug:
                raise
            fail(2, message_of(err, self._subcommand(args)))
        except SeqtoolError as err:
            if debug:
                raise
            fail(1, str(err))
        except BrokenPipeError:  # `seqtool ... | head`: the reader left; not our failure
            sys.stderr.close()
            code = 0
        except OSError as err:  # the machine said no: a folder that cannot be written, a full
            if debug:           # disk, a path through a file; the user's to fix, not a bug
                raise
            fail(2, os_message(err))
        except Exception as err:  # a bug: still one line, with the way to see more
            if debug:
                raise
            fail(1, f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)")
        if code == TYPER_INTERRUPTED:  # Typer's answer to a Ctrl-C inside a command, silent
            _interrupted()
        sys.exit(code if isinstance(code, int) else 0)


TYPER_INTERRUPTED = 130  # no seqtool command returns it itself


def _interrupted() -> None:
    """Ctrl-C: seqtool's one line and exit 1."""
    try:  # a further Ctrl-C must not cut the message short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (a test runner)
        pass
    fail(1, "interrupted")


EPILOG = (
    "Examples: seqtool attend --query 3,-1 --selector argmax  ·  "
    "seqtool attend -q 3,-1 -k '1,5;1,0' --format json | jq .outputs  ·  "
    "seqtool bptt --steps 3 --activation sigmoid --explain  ·  "
    "seqtool train-rnn --data parity --cell gru --out runs/parity"
)

app = typer.Typer(
    cls=SeqtoolGroup,
    name="seqtool",
    help="Hands-on sequence-model experiments: attention selectors, backprop through time and RNN training, with exact numbers.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        click.echo(f"seqtool {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback on errors."),
) -> None:
    """Hands-on sequence-model experiments, with exact numbers and output you can pipe."""


from seqtool.cli.commands import add_commands  # noqa: E402  (the app must exist first)

add_commands(app)
