"""Typer options built from the Config's help texts, and the ones every command has."""

from __future__ import annotations

from typing import Any

import typer

from seqtool.config import help_of


def config_option(config_cls: type, name: str, *flags: str, metavar: str = "TEXT") -> Any:
    """A flag whose value goes, as typed, to the Config field ``name`` (None: not given)."""
    return typer.Option(None, *flags, help=help_of(config_cls, name), metavar=metavar)


def config_flag(config_cls: type, name: str, flag: str) -> Any:
    """An on/off flag for the boolean Config field ``name``."""
    return typer.Option(False, flag, help=help_of(config_cls, name))


def format_option() -> Any:
    return typer.Option(None, "--format", "-f", metavar="table|json|csv",
                        help="Output format. Default: table on a terminal, json when piped.")


def precision_option() -> Any:
    return typer.Option(4, "--precision", min=1, max=17, help="Significant digits in tables.")


def given(**flags: Any) -> dict[str, Any]:
    """The flags the user gave (None means not given), for a Config's from_mapping."""
    return {key: value for key, value in flags.items() if value is not None}
