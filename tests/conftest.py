"""Shared fixtures: a CliRunner that keeps stdout and stderr apart, JSON helpers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from seqtool.cli import app


class Result:
    """What one CLI run gave: exit code, stdout, stderr (kept apart)."""

    def __init__(self, raw):
        self.exit_code = raw.exit_code
        self.stdout = raw.stdout
        self.stderr = raw.stderr
        self.exception = raw.exception

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def cli():
    """cli(*args, input=None) runs `seqtool *args` in-process through Typer's CliRunner."""
    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 always keeps them apart
        runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return Result(runner.invoke(app, list(args), input=input))

    return run
