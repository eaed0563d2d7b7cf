"""The CLI reference in docs/cli.md is generated from the command registry: never stale."""

from pathlib import Path

from seqtool.cli.reference import reference
from seqtool.commands import commands

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_md_is_the_generated_reference():
    assert DOC.read_text(encoding="utf-8") == reference(), (
        "docs/cli.md is stale: run python -m seqtool.cli.reference > docs/cli.md")


def test_reference_names_every_command_and_every_flag():
    text = reference()
    for command in commands():
        assert f"## seqtool {command.name}" in text
        for flag in command.flags + command.options:
            if flag.kind != "argument":
                assert f"`{flag.decls[0]}`" in text, (command.name, flag.decls[0])


def test_help_shows_defaults(cli):
    out = " ".join(cli("bptt", "--help").stdout.split())  # undo the help's line wrapping
    assert "(default: 10)" in out  # --steps
    assert "(default: tanh)" in out  # --activation
    out = " ".join(cli("train-rnn", "--help").stdout.split())
    assert "(default: adam)" in out and "(default: 0.003)" in out
