"""Numbers from the command line, files and stdin.

A vector is written ``3,-1``; a matrix is rows separated by ``;`` or new lines
(``1,5;1,0``); items may also be separated by spaces or tabs. Two commas with nothing
between them (``3,,-1``) are a typo, not a separator, and an error; a comma at the start
or end of a row is ignored. ``@path`` reads a ``.json``,
``.npy`` or text (``.csv``, ``.tsv``, ``.txt``) file; ``-`` reads stdin (JSON or text).
Every reader returns a 2-D float64 array of finite numbers, or raises :class:`InputError`
naming the parameter, what was found and what was expected.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import numpy as np

from seqtool.core.errors import InputError

_ROW_SPLIT = re.compile(r"[;\n]")


def _number(item: str, key: str, where: str) -> float:
    try:
        return float(item)
    except ValueError:
        raise InputError(key, f"has '{item}' where a number was expected ({where})") from None


def _rows_of_text(text: str, key: str) -> list[list[str]]:
    rows = []
    for line in _ROW_SPLIT.split(text.replace("\r", "")):
        line = line.strip()
        if line.startswith("#"):
            continue
        line = line.strip(",").strip()
        if not line:
            continue
        items: list[str] = []
        for piece in line.split(","):
            words = piece.split()
            if not words:  # ",," (or ", ,"): an item left out
                raise InputError(key, f"has two commas with nothing between them (row "
                                 f"{len(rows) + 1}, item {len(items) + 1}); expected numbers "
                                 "such as 3,-1")
            items += words
        rows.append(items)
    return rows


def _is_number(item: str) -> bool:
    try:
        float(item)
    except ValueError:
        return False
    return True


def parse_text(text: str, key: str, *, allow_header: bool = False) -> np.ndarray:
    """Parse ``"1,5;1,0"`` (or lines of comma/space separated numbers) into a matrix.

    With ``allow_header`` (files and stdin), a first line with no number at all is a
    column header and is skipped.
    """
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        return from_json_text(stripped, key, source="the input")
    rows = _rows_of_text(text, key)
    if allow_header and len(rows) > 1 and not any(_is_number(item) for item in rows[0]):
        rows = rows[1:]
    if not rows:
        raise InputError(key, "is empty; expected numbers such as 3,-1 or 1,5;1,0")
    values = [
        [_number(item, key, f"row {r + 1}, item {c + 1}") for c, item in enumerate(row)]
        for r, row in enumerate(rows)
    ]
    return as_matrix(values, key)


def as_matrix(value: Any, key: str) -> np.ndarray:
    """A number, a list of numbers or a list of rows as a checked 2-D float64 array."""
    if isinstance(value, np.ndarray):
        array = value
        if array.dtype.kind not in "iuf":
            raise InputError(key, f"holds {array.dtype} data; expected numbers")
    else:
        _check_json_numbers(value, key)
        if isinstance(value, list) and len({isinstance(row, list) for row in value}) > 1:
            row = next(i for i, item in enumerate(value) if isinstance(item, list))
            raise InputError(key, f"mixes numbers and rows: item {row + 1} is a list but "
                             "others are numbers; expected a vector or a list of rows")
        if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
            lengths = [len(row) for row in value]
            if len(set(lengths)) > 1:
                first = lengths[0]
                bad = next(i for i, n in enumerate(lengths) if n != first)
                raise InputError(
                    key,
                    f"has ragged rows: row 1 has {first} numbers but row {bad + 1} has "
                    f"{lengths[bad]}",
                )
        array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InputError(key, f"has {array.ndim} dimensions; expected a vector or a matrix")
    if array.size == 0:
        raise InputError(key, "is empty; expected numbers such as 3,-1 or 1,5;1,0")
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        r, c = bad[0]
        raise InputError(
            key, f"has {array[r, c]} at row {r + 1}, item {c + 1}; expected finite numbers"
        )
    return np.ascontiguousarray(array, dtype=np.float64)


def _check_json_numbers(value: Any, key: str, depth: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        raise InputError(key, f"has {json.dumps(value)} where a number was expected")
    if isinstance(value, list):
        if depth >= 2:
            raise InputError(key, "is nested too deeply; expected a vector or a matrix")
        for item in value:
            _check_json_numbers(item, key, depth + 1)


def from_json_text(text: str, key: str, *, source: str) -> np.ndarray:
    """A JSON number, list or list of lists; an object is searched for ``key``."""
    from seqtool.io.documents import DocumentError, load_json

    try:
        value = load_json(text)
    except json.JSONDecodeError as err:
        raise InputError(key, f"reads {source}, which is not valid JSON: {err}") from None
    except DocumentError as err:
        raise InputError(key, f"reads {source}, which {err}") from None
    return from_json_value(value, key, source=source)


def from_json_value(value: Any, key: str, *, source: str) -> np.ndarray:
    if isinstance(value, dict):
        if key not in value:
            raise InputError(key, f"reads {source}, a JSON object without a '{key}' entry")
        value = value[key]
    return as_matrix(value, key)


def _check_file(path: str, key: str) -> None:
    if not os.path.exists(path):
        raise InputError(key, f"names the file '{path}', which does not exist")
    if os.path.isdir(path):
        raise InputError(key, f"names '{path}', which is a folder; expected a file")


def read_text_file(path: str, key: str) -> str:
    """The whole UTF-8 text of ``path``, or one InputError naming ``key``."""
    _check_file(path, key)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError:
        raise InputError(key, f"cannot read '{path}': it is not UTF-8 text") from None
    except OSError as err:
        raise InputError(key, f"cannot read '{path}': {err.strerror or err}") from None


def _read_npy(path: str, key: str) -> np.ndarray:
    """A .npy file of numbers, its header checked before anything is allocated: the magic
    (a zip, such as an .npz renamed, is not a .npy), the dtype (numbers, never pickled
    objects) and the size the header claims against the bytes the file has."""
    from numpy.lib import format as npy_format

    def refuse(what: str) -> InputError:
        return InputError(key, f"cannot read '{path}' as .npy: {what}")

    try:
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":
                handle.seek(0)
                start = handle.read(4)
                raise refuse("it is a zip file (an .npz?), not a .npy" if start == b"PK\x03\x04"
                             else "it does not start with NumPy's .npy header")
            handle.seek(0)
            version = npy_format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(handle)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = npy_format.read_array_header_2_0(handle)
            else:
                raise refuse(f"unknown .npy version {version}")
            if dtype.hasobject or dtype.kind not in "biuf":
                raise refuse(f"it holds {dtype} data; expected numbers")
            needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            left = os.fstat(handle.fileno()).st_size - handle.tell()
            if needed > left:
                raise refuse(f"its header claims {shape} {dtype} ({needed:,} bytes) but the "
                             f"file holds {left:,}")
            handle.seek(0)
            return as_matrix(np.load(handle, allow_pickle=False), key)
    except InputError:
        raise
    except (ValueError, OSError, SyntaxError, TypeError) as err:  # corrupted or unreadable
        raise refuse(" ".join(str(err).split())) from None


def _read_file(path: str, key: str) -> np.ndarray:
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        _check_file(path, key)
        return _read_npy(path, key)
    text = read_text_file(path, key)
    if suffix == ".json":
        return from_json_text(text, key, source=f"'{path}'")
    return parse_text(text, key, allow_header=True)


def read_stdin_text(key: str) -> str:
    """All of stdin; an interactive terminal is refused rather than waited on."""
    stream = sys.stdin
    if stream is None or (stream.isatty() if hasattr(stream, "isatty") else False):
        raise InputError(key, "is '-' (read stdin) but nothing is piped into stdin")
    return stream.read()


def read_matrix(value: Any, key: str) -> np.ndarray:
    """Any accepted form of numbers for parameter ``key`` as a checked 2-D float64 array.

    ``value`` may be an array, a JSON-like list, a number, or a string: ``"3,-1"``,
    ``"1,5;1,0"``, ``"@path"`` or ``"-"`` (stdin).
    """
    if not isinstance(value, str):
        return as_matrix(value, key)
    if value.strip() == "-":
        return parse_text(read_stdin_text(key), key, allow_header=True)
    if value.startswith("@"):
        return _read_file(value[1:], key)
    return parse_text(value, key)


def read_vector(value: Any, key: str) -> np.ndarray:
    """Like :func:`read_matrix` for a single vector (one row or one column)."""
    matrix = read_matrix(value, key)
    if 1 not in matrix.shape:
        rows, cols = matrix.shape
        raise InputError(key, f"is a {rows}×{cols} matrix; expected one vector")
    return matrix.ravel()


def read_mapping(source: str, key: str) -> dict:
    """A JSON or YAML object from a file (by extension; YAML with safe_load) or '-' (stdin)."""
    if source.strip() == "-":
        text, where, is_yaml = read_stdin_text(key), "stdin", None
    else:
        text, where = read_text_file(source, key), f"'{source}'"
        is_yaml = os.path.splitext(source)[1].lower() in (".yaml", ".yml")
    if is_yaml is None:  # stdin: JSON, or YAML (a superset) if it is not JSON
        is_yaml = not text.lstrip().startswith(("{", "["))
    if is_yaml:
        import yaml  # only problems written in YAML pay for it

        from seqtool.io.documents import DocumentError, load_yaml

        try:
            data, _ = load_yaml(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise InputError(key, f"reads {where}, which is not valid YAML{at}") from None
        except DocumentError as err:
            at = f" (line {err.line})" if err.line else ""
            raise InputError(key, f"reads {where}, which {err}{at}") from None
    else:
        from seqtool.io.documents import DocumentError, load_json

        try:
            data = load_json(text)
        except json.JSONDecodeError as err:
            raise InputError(key, f"reads {where}, which is not valid JSON: {err}") from None
        except DocumentError as err:
            raise InputError(key, f"reads {where}, which {err}") from None
    if not isinstance(data, dict):
        raise InputError(key, f"reads {where}, which does not hold an object of named entries")
    return data
