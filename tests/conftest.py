"""Shared fixtures: a CliRunner that keeps stdout and stderr apart, JSON helpers."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI does (seqtool/cli/__init__.py)

import json  # noqa: E402

import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from seqtool.cli import app  # noqa: E402


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
