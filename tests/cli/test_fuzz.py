"""A quick fuzz of the command line (#14): random values for every numeric and list flag of
the analysis commands, and random bytes on stdin. Whatever comes in, seqtool answers with
exit 0, or exit 2 and one line on stderr; never a traceback or an "internal error".
A longer run: SEQTOOL_FUZZ_EXAMPLES=2000 python -m pytest tests/cli/test_fuzz.py."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("SEQTOOL_FUZZ_EXAMPLES", "25"))

# what a user could type into a number: numbers of every size, signs, separators, junk
NUMBERISH = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789-+.,;e ", min_size=0, max_size=12),
    st.sampled_from(["", "-", "nan", "inf", "1e309", "0x10", "1_000", "@", "@/nonexistent",
                     "[1,2]", "[[1],[2,3]]", "{}", "3,,-1", ";"]),
)

FLAGS = {
    "attend": ["--query", "--keys", "--values", "--scale", "--temperature", "--alpha", "--k",
               "--seed", "--precision"],
    "compare-selectors": ["--query", "--keys", "--repeats", "--sizes", "--dim", "--steps",
                          "--pairs", "--vocab", "--lr", "--alpha", "--k", "--temperature"],
    "bptt": ["--steps", "--input-size", "--hidden", "--output-size", "--seed", "--radius",
             "--truncate", "--jacobian", "--forget-bias"],
}
BASE = {"attend": ["-q", "3,-1"], "compare-selectors": ["-q", "3,-1", "--repeats", "1"],
        "bptt": ["--steps", "3"]}


def answered_cleanly(result) -> None:
    assert "internal error" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command=st.sampled_from(sorted(FLAGS)), data=st.data())
def test_any_value_of_any_flag_is_answered_cleanly(cli, command, data):
    flag = data.draw(st.sampled_from(FLAGS[command]))
    value = data.draw(NUMBERISH)
    extra = ["--cost", "--sizes", "16"] if flag in ("--sizes", "--dim") else []
    extra += ["--learn", "--steps", "3"] if flag in ("--pairs", "--vocab", "--lr") else []
    args = [command, *BASE[command], *extra, flag, value, "-f", "json"]
    answered_cleanly(cli(*args))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=200),
                      st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_anything_on_stdin_is_answered_cleanly(cli, text):
    answered_cleanly(cli("attend", "-q", "-", "-f", "json", input=text))
    answered_cleanly(cli("attend", "-q", "3,-1", "--input", "-", "-f", "json", input=text))
