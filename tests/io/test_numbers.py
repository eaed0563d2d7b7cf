"""The number parser: every accepted spelling, and one clear error for everything else."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seqtool.core.errors import InputError
from seqtool.io.numbers import as_matrix, parse_text, read_matrix, read_vector

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
matrices = st.integers(1, 5).flatmap(
    lambda rows: st.integers(1, 5).flatmap(
        lambda cols: arrays(np.float64, (rows, cols), elements=finite)
    )
)


def spell(matrix: np.ndarray, row_sep: str = ";", item_sep: str = ",") -> str:
    return row_sep.join(item_sep.join(repr(float(x)) for x in row) for row in matrix)


@settings(max_examples=150, deadline=None)
@given(matrices, st.sampled_from([(";", ","), ("\n", ","), ("\n", " "), (";", "\t"), ("; ", ", ")]))
def test_text_round_trips_exactly(matrix, seps):
    parsed = parse_text(spell(matrix, *seps), "keys")
    assert parsed.dtype == np.float64
    np.testing.assert_array_equal(parsed, matrix)


@settings(max_examples=100, deadline=None)
@given(matrices)
def test_json_round_trips_exactly(matrix):
    np.testing.assert_array_equal(read_matrix(json.dumps(matrix.tolist()), "keys"), matrix)
    np.testing.assert_array_equal(read_matrix(matrix.tolist(), "keys"), matrix)


def reference_parse(text: str):
    """The matrix the module docstring describes, or None where it says error: rows split
    at ';' or a new line, items at commas and blanks (a comma at either end of a row
    ignored, two with nothing between them an error), each item a finite float(), every
    row as long as the first, at least one."""
    rows = []
    for line in text.replace(";", "\n").splitlines():
        line = line.strip().strip(",").strip()
        if not line:
            continue
        if any(not piece.split() for piece in line.split(",")):
            return None
        rows.append(line.replace(",", " ").split())
    try:
        values = [[float(item) for item in row] for row in rows]
    except ValueError:
        return None
    if not values or len({len(row) for row in values}) > 1:
        return None
    matrix = np.array(values, dtype=np.float64)
    return matrix if np.all(np.isfinite(matrix)) else None


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789,;.-e xn\n", max_size=20))
def test_anything_typed_parses_as_the_reference_or_raises_input_error(text):
    expected = reference_parse(text)
    try:
        result = parse_text(text, "query")
    except InputError as err:
        assert expected is None, (text, expected)
        assert err.key == "query"
        assert "\n" not in err.message
    else:
        assert expected is not None, (text, result)
        np.testing.assert_array_equal(result, expected)


def test_vector_and_matrix_spellings():
    assert parse_text("3,-1", "q").tolist() == [[3.0, -1.0]]
    assert parse_text("1,5;1,0", "k").tolist() == [[1.0, 5.0], [1.0, 0.0]]
    assert parse_text("1 5\n1 0\n", "k").tolist() == [[1.0, 5.0], [1.0, 0.0]]
    assert parse_text("1e-3, 2.5E2", "k").tolist() == [[0.001, 250.0]]
    assert parse_text("# a comment\n1,2\n", "k").tolist() == [[1.0, 2.0]]
    assert read_vector("1;2;3", "u").tolist() == [1.0, 2.0, 3.0]
    assert as_matrix(7, "x").tolist() == [[7.0]]


def test_header_only_skipped_for_files_and_stdin():
    assert parse_text("a,b\n1,2", "k", allow_header=True).tolist() == [[1.0, 2.0]]
    with pytest.raises(InputError, match="'a' where a number was expected"):
        parse_text("a,b\n1,2", "k")


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "is empty"),
        (";;", "is empty"),
        ("1,,x", "two commas with nothing between them (row 1, item 2)"),
        ("3,,-1", "two commas with nothing between them (row 1, item 2)"),
        ("1,2;3, ,4", "two commas with nothing between them (row 2, item 2)"),
        ("1,x", "'x' where a number was expected (row 1, item 2)"),
        ("1,2;3", "ragged rows: row 1 has 2 numbers but row 2 has 1"),
        ("1,nan", "has nan at row 1, item 2"),
        ("-inf", "has -inf at row 1, item 1"),
        ("[[1,2],[3]]", "ragged rows"),
        ("[6, [-3882], [-3882]]", "mixes numbers and rows: item 2 is a list"),  # the fuzz's
        ("[[1], 2]", "mixes numbers and rows: item 1 is a list"),
        ("[[[1]]]", "nested too deeply"),
        ('[1, "a"]', 'has "a" where a number was expected'),
        ("[true]", "has true where a number was expected"),
        ("[1, 2", "not valid JSON"),
        ('{"other": 1}', "without a 'keys' entry"),
    ],
)
def test_errors_name_the_parameter(value, message):
    with pytest.raises(InputError) as info:
        read_matrix(value, "keys")
    assert info.value.key == "keys"
    assert message in info.value.message


def test_vector_refuses_a_matrix():
    with pytest.raises(InputError, match="is a 2×2 matrix; expected one vector"):
        read_vector("1,2;3,4", "upstream")


def test_files(tmp_path):
    (tmp_path / "m.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "m.tsv").write_text("1\t2\n3\t4\n")
    (tmp_path / "m.json").write_text('{"keys": [[1, 2], [3, 4]]}')
    np.save(tmp_path / "m.npy", np.array([[1, 2], [3, 4]], dtype=np.int32))
    for name in ("m.csv", "m.tsv", "m.json", "m.npy"):
        assert read_matrix(f"@{tmp_path / name}", "keys").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(InputError, match="which is a folder"):
        read_matrix(f"@{tmp_path}", "keys")
    (tmp_path / "bad.npy").write_bytes(b"not an npy file")
    with pytest.raises(InputError, match="cannot read .* as .npy"):
        read_matrix(f"@{tmp_path / 'bad.npy'}", "keys")
