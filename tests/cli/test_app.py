"""The `seqtool` application as a whole: help, version, errors, imports, the entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import seqtool


def test_help_lists_every_command_with_purpose_and_example(cli):
    result = cli("--help")
    assert result.exit_code == 0
    assert "e.g. seqtool attend --query 3,-1" in result.stdout
    assert "e.g. seqtool bptt --steps 20 --radius 1.5" in result.stdout
    assert "e.g. seqtool compare-selectors --learn" in result.stdout
    assert "e.g. seqtool train-rnn --data parity" in result.stdout
    assert "e.g. seqtool predict runs/x --text 'not bad'" in result.stdout
    assert "e.g. seqtool sample runs/x --length 40" in result.stdout
    assert "e.g. seqtool evaluate runs/x --data dyck" in result.stdout
    assert "e.g. seqtool run recipes/dyck-lm.yaml" in result.stdout


def test_no_arguments_shows_help(cli):
    result = cli()
    assert result.exit_code == 0
    assert "Usage: seqtool" in result.stdout


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"seqtool {seqtool.__version__}"


def test_unknown_command_is_one_line_exit_2(cli):
    result = cli("atend")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert "No such command 'atend'" in result.stderr


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_attend_and_help_do_not_import_numba_or_pydantic():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from seqtool.cli import app\n"
        "r = CliRunner().invoke(app, {args})\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('numba', 'pydantic', 'yaml', 'scipy', 'matplotlib')\n"
        "             if m in sys.modules))\n"
    )
    for args in (["--help"], ["bptt", "--help"], ["attend", "-q", "3,-1", "-f", "table"],
                 ["attend", "-q", "3,-1"], ["compare-selectors", "--repeats", "1", "--learn",
                                            "--steps", "2", "-f", "table"]):
        out = _run(code.format(args=args)).stdout.strip()
        assert out == "[]", (args, out)


def test_installed_entry_point_in_a_subprocess():
    exe = os.path.join(os.path.dirname(sys.executable), "seqtool")
    command = [exe] if os.path.exists(exe) else [sys.executable, "-m", "seqtool"]
    done = subprocess.run(
        [*command, "attend", "--query", "3,-1", "--selector", "argmax"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # piped: json by default
    # argmax attention outputs the value of the key with the largest score q·k
    winner = int(np.argmax(np.array(report["keys"]) @ np.array([3.0, -1.0])))
    assert report["outputs"] == [report["values"][winner]] == [[6.0, 1.0, 2.0]]
    bad = subprocess.run([*command, "attend", "-q", "3,x"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr == "seqtool: error: --query has 'x' where a number was expected (row 1, item 2)\n"


def test_python_dash_m():
    done = subprocess.run(
        [sys.executable, "-m", "seqtool", "attend", "-q", "3,-1", "-s", "argmax", "-f", "csv"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0,3,6.0,1.0"


def test_no_color_is_respected():
    env = dict(os.environ, NO_COLOR="1", FORCE_COLOR="", TERM="xterm-256color")
    env.pop("FORCE_COLOR")
    done = subprocess.run(
        [sys.executable, "-m", "seqtool", "attend", "-q", "3,-1", "-f", "table"],
        capture_output=True, text=True, env=env,
    )
    assert done.returncode == 0
    assert "\x1b[" not in done.stdout
