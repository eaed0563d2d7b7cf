"""The CLI reference (``docs/cli.md``), written from the command registry and the Typer app.

    python -m seqtool.cli.reference > docs/cli.md

A test regenerates it and fails when the file in the repository is stale.
"""

from __future__ import annotations

import click
import typer

from seqtool.cli.app import app
from seqtool.cli.commands import help_text
from seqtool.commands import commands


def _row(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        names = f"`{param.human_readable_name}`"
    else:
        names = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
    metavar = ""
    if isinstance(param, click.Option) and not param.is_flag:
        metavar = f" `{param.metavar or param.type.name.upper()}`".replace("|", "\\|")
    text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
    if isinstance(param, click.Option) and param.show_default is not False and not param.is_flag \
            and param.default not in (None, ()) and "(default" not in text:
        text += f" (default: {param.default})"
    if getattr(param, "required", False):
        text += " (required)"
    return f"| {names}{metavar} | {' '.join(text.split())} |"


def reference() -> str:
    """Markdown: every command's purpose, usage, examples and flags with their defaults."""
    group = typer.main.get_command(app)
    lines = ["# seqtool command reference", "",
             "Generated from the command registry by `python -m seqtool.cli.reference > "
             "docs/cli.md`; a test fails when this file is stale.", ""]
    lines += [f"- [`seqtool {c.name}`](#seqtool-{c.name}): {c.short_help}" for c in commands()]
    for command in commands():
        click_command = group.commands[command.name]
        ctx = click.Context(click_command, info_name=command.name)
        usage = " ".join(click_command.collect_usage_pieces(ctx))
        lines += ["", f"## seqtool {command.name}", "", "```text",
                  f"seqtool {command.name} {usage}", "```", ""]
        body = help_text(command).replace("\b\n", "")
        text, _, examples = body.partition("\n\nExamples:\n")
        lines += [text.strip(), ""]
        if examples:
            lines += ["```bash", *[e.strip() for e in examples.splitlines()], "```", ""]
        lines += ["| flag | meaning |", "|---|---|"]
        lines += [_row(p) for p in click_command.params if p.name != "help"]
        lines.append(f"| `-h`, `--help` | Show the help and exit. |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(reference())
