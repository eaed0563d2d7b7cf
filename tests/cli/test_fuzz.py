"""A quick fuzz of the whole command line (#14): random values for every flag of every
command, random stdin, random files, forged run directories and random recipes (see
``tests/fuzz_cases.py``). Whatever comes in, seqtool answers with exit 0 or 1, or exit 2
and one line on stderr; never a traceback, an "internal error" or a raw NumPy warning, and
it writes nothing outside the case's own folder.

The suite runs SEQTOOL_FUZZ_EXAMPLES (default 25) cases of each kind in-process; the long
version, thousands of cases each in its own process with its time and memory measured, is
``python benchmarks/bench_fuzz.py``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_cases import KINDS, REPRODUCERS, Case, prepare, problems, train_runs

EXAMPLES = int(os.environ.get("SEQTOOL_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A folder with the trained runs the cases use ({runs}) and room for the cases."""
    from typer.testing import CliRunner

    from seqtool.cli import app

    root = tmp_path_factory.mktemp("fuzz")
    train_runs(root / "runs", lambda args: CliRunner().invoke(app, args).exit_code)
    return root


def answer_cleanly(cli, home: Path, case: Case):
    """Run ``case`` in-process in a fresh folder; check its answer and that it wrote nothing
    outside that folder. Returns the result."""
    folder = home / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    runs = sorted(p.relative_to(home) for p in (home / "runs").rglob("*"))
    here = sorted(os.listdir("."))
    args, stdin = prepare(case, folder, home / "runs")
    result = cli(*args, input=stdin)
    assert not problems(result.exit_code, result.stderr), (str(case), result.stderr)
    assert sorted(os.listdir(home)) == ["case", "runs"], str(case)  # nothing written beside
    assert sorted(p.relative_to(home) for p in (home / "runs").rglob("*")) == runs
    assert sorted(os.listdir(".")) == here, str(case)
    return result


@pytest.mark.parametrize("kind", list(KINDS))
@FUZZ
@given(data=st.data())
def test_any_case_of_every_kind_is_answered_cleanly(cli, home, kind, data):
    answer_cleanly(cli, home, data.draw(KINDS[kind](), label="case"))


@pytest.mark.parametrize("case", REPRODUCERS, ids=lambda case: " ".join(case.args)[:50])
def test_the_reproducers_of_each_class_are_refused_in_one_line(cli, home, case):
    """The issue's reproducers (sizes that cannot fit, work that would not end, bombs, a
    lying file) are bad input: exit 2, one line (their time and memory:
    benchmarks/bench_fuzz.py)."""
    result = answer_cleanly(cli, home, case)
    assert result.exit_code == 2, (str(case), result.stderr)


def test_the_checker_finds_what_it_must():
    """problems() is what the fuzz rests on: it must see each kind of bad answer."""
    assert problems(0, "") == [] and problems(2, "seqtool: error: --k is 0\n") == []
    assert problems(2, "seqtool: compiling the rnn kernels (float32)...\nseqtool: error: x\n") == []
    assert problems(1, "Traceback (most recent call last):\n") == ["traceback"]
    assert problems(1, "seqtool: error: internal error: KeyError: 'a'\n") == ["internal error"]
    assert problems(0, "x.py:3: RuntimeWarning: overflow\n") == ["raw warning"]
    assert problems(2, "seqtool: error: a\nseqtool: error: b\n") == ["2 lines for one error"]
    assert problems(130, "") == ["exit 130"]
