"""Readers of user data files: raw tokens and targets, not yet encoded.

Formats, by task (column names are case-insensitive; extra columns are an error only for
regress):

classify  ``.csv`` or ``.tsv`` with a header naming ``text`` and ``label`` columns, or
          ``.jsonl`` with one ``{"text": "...", "label": "..."}`` object per line. CSV uses
          the csv module's quoting (quote text that holds commas); TSV has no quoting: a
          field runs to the next tab. Text is split by the chosen tokenizer.
tag       the same formats with ``tokens`` and ``tags`` columns: whitespace-separated, one
          tag per token (in JSONL, lists of strings work too). Tokens are taken as written
          (tokenizer "space"), so that they line up with their tags.
lm        any UTF-8 text file: the whole text is tokenised (by default in words; pass
          tokenizer "char" for characters) and cut into chunks of max_len + 1 tokens that
          overlap by one, so every token but the first is a target: inputs ids[:-1],
          targets ids[1:], each max_len long (the last chunk may be shorter).
regress   ``.csv`` or ``.tsv`` with a header ``seq,x1,..,xD,y1,..,yO`` (inputs are the columns
          whose names start with x, targets those starting with y, in header order); one
          row per time step, the rows of a sequence consecutive and sharing their ``seq``
          value. Give y on every row for a target per step (target_at "all"), or only on
          the last row of each sequence, leaving the y cells of the other rows empty, for
          one target per sequence (target_at "last").

seq2seq   ``.csv``, ``.tsv`` or ``.jsonl`` (as for classify) with ``source`` and ``target``
          columns, or ``{"source": "...", "target": "..."}`` objects: both are split by the
          chosen tokenizer ("char" keeps every character as written, spaces included). An
          empty source or target is an error, and so is a token the decoder reserves
          (``<pad>``, ``<unk>``, ``<s>``, ``</s>``: only tokenizer "space" can write one).

``max_len`` truncates sequences to their first max_len steps (classify, tag, regress; a
last-step regress target is kept; seq2seq: sources and targets each to max_len tokens,
the target before the decoder's BOS and EOS go around it).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np

from seqtool.core.data.vocab import SEQ2SEQ_SPECIALS, tokenize
from seqtool.core.errors import InputError

TABLE_FORMATS = (".csv", ".tsv", ".jsonl")
COLUMNS = {"classify": ("text", "label"), "tag": ("tokens", "tags"),
           "seq2seq": ("source", "target")}
DEFAULT_LM_LEN = 64
_BOM = b"\xef\xbb\xbf"


@dataclass
class Records:
    """A file's sequences before encoding, each with the line it starts on (lm: the chunk
    number).

    ``tokens[i]`` token strings; ``targets[i]`` a label (classify), tag strings (tag), None
    (lm: the targets are the next tokens), the target's token strings (seq2seq, without
    BOS/EOS), or float64 (T_i, O) / (O,) (regress, where ``inputs[i]`` is float64 (T_i, D)
    and ``tokens`` is empty).
    """

    path: str
    task: str
    tokens: list[list[str]] = field(default_factory=list)
    targets: list = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)
    target_at: str = "last"
    columns: tuple[int, int] = (0, 0)  # regress: (D, O)

    def __len__(self) -> int:
        return len(self.lines)


def check_exists(path: str, key: str) -> None:
    """A missing file is an InputError; a name close to a built-in set's says which."""
    if os.path.exists(path):
        return
    import difflib

    from seqtool.core.data.builtin import BUILTIN_TASKS

    hint = difflib.get_close_matches(path, list(BUILTIN_TASKS), n=1)
    maybe = f"; did you mean the built-in set '{hint[0]}'?" if hint else ""
    raise InputError(key, f"names the file '{path}', which does not exist{maybe}")


def read_text(path: str, key: str) -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark is dropped)."""
    check_exists(path, key)
    if os.path.isdir(path):
        raise InputError(key, f"names '{path}', which is a directory, not a file")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InputError(key, f"names the file '{path}', which cannot be read ({e.strerror})")
    start = len(_BOM) if raw.startswith(_BOM) else 0
    try:
        text = raw[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = start + e.start
        raise InputError(key, f"{path} is not UTF-8 text "
                              f"(byte 0x{raw[offset]:02x} at offset {offset})")
    if not text.strip():
        raise InputError(key, f"{path} is empty")
    return text


def extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


# ---------------------------------------------------------------------------- tables


def _csv_reader(text: str, path: str):
    # strict: an unclosed quote is an error, not a field that swallows the rest of the file
    dialect = (dict(delimiter="\t", quoting=csv.QUOTE_NONE) if extension(path) == ".tsv"
               else dict(strict=True))
    return csv.reader(io.StringIO(text, newline=""), **dialect)


def _csv_rows(text: str, path: str, key: str) -> tuple[list[str], list[tuple[int, list]]]:
    """Header (lower-cased names) and (line, fields) of every non-blank row."""
    reader = _csv_reader(text, path)
    rows, line = [], 1
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((line, fields))
            line = reader.line_num + 1
    except csv.Error as e:
        raise InputError(key, f"{path} line {reader.line_num} is not valid CSV ({e})")
    if not rows:
        raise InputError(key, f"{path} is empty")
    (_, header), body = rows[0], rows[1:]
    if not body:
        raise InputError(key, f"{path} has a header but no rows")
    return [h.strip().lower() for h in header], body


def _csv_header(text: str, path: str) -> set[str] | None:
    """The lower-cased names of the first non-blank row, without parsing the rest of the file
    (None if that row is not valid CSV)."""
    try:
        for fields in _csv_reader(text, path):
            if any(f.strip() for f in fields):
                return {f.strip().lower() for f in fields}
    except csv.Error:
        return None
    return None


def _json_value(value, name: str, where: str, key: str):
    """A JSONL cell as a string or a list of strings (numbers are written out)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                       for v in value):
        return [str(v) for v in value]
    raise InputError(key, f"{where} has a '{name}' that is {type(value).__name__}; "
                          "expected a string")


def _jsonl_rows(text: str, path: str, key: str, names: tuple[str, ...]) -> list[tuple[int, dict]]:
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path} line {line}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise InputError(key, f"{where} is not valid JSON ({e.msg} at column {e.colno})")
        except RecursionError:  # [[[[... thousands deep: the parser recurses
            raise InputError(key, f"{where} nests too deeply to be a row of data") from None
        if not isinstance(obj, dict):
            raise InputError(key, f"{where} is not a JSON object; expected "
                                  + ", ".join(f'"{n}": ...' for n in names).join("{}"))
        obj = {str(k).lower(): v for k, v in obj.items()}
        rows.append((line, {n: _json_value(obj.get(n), n, where, key) for n in names}))
    if not rows:
        raise InputError(key, f"{path} is empty")
    return rows


def table_rows(text: str, path: str, key: str, names: tuple[str, ...]) -> list[tuple[int, dict]]:
    """(line, {name: value or None}) for every record of a .csv, .tsv or .jsonl file."""
    if extension(path) == ".jsonl":
        return _jsonl_rows(text, path, key, names)
    header, body = _csv_rows(text, path, key)
    expected = ",".join(names)
    for name in names:
        if name not in header:
            raise InputError(key, f"{path} has no '{name}' column (header: "
                                  f"{','.join(header)}); expected a header {expected}")
    where = {name: header.index(name) for name in names}
    rows = []
    for line, fields in body:
        if len(fields) > len(header):
            hint = " (quote text that contains commas)" if extension(path) == ".csv" else ""
            raise InputError(key, f"{path} line {line} has {len(fields)} fields but the "
                                  f"header has {len(header)}{hint}")
        rows.append((line, {n: fields[i] if i < len(fields) else None for n, i in where.items()}))
    return rows


def _value(row: dict, name: str, line: int, path: str, key: str, names) -> str | list[str]:
    value = row[name]
    if value is None or (isinstance(value, str) and not value.strip()) or value == []:
        raise InputError(key, f"{path} line {line} has no '{name}' column value; "
                              f"expected {','.join(names)}")
    return value


def read_classify(path: str, key: str, tokenizer: str, max_len: int | None) -> Records:
    names = COLUMNS["classify"]
    records = Records(path, "classify")
    for line, row in table_rows(read_text(path, key), path, key, names):
        text = _value(row, "text", line, path, key, names)
        label = _value(row, "label", line, path, key, names)
        if isinstance(text, list) or isinstance(label, list):
            raise InputError(key, f"{path} line {line} has a list where text and label "
                                  "should be strings")
        tokens = tokenize(text, tokenizer)
        if not tokens:
            raise InputError(key, f"{path} line {line} has text with no tokens")
        records.tokens.append(tokens[:max_len])
        records.targets.append(label.strip())
        records.lines.append(line)
    return records


def read_tag(path: str, key: str, max_len: int | None) -> Records:
    names = COLUMNS["tag"]
    records = Records(path, "tag")
    for line, row in table_rows(read_text(path, key), path, key, names):
        tokens, tags = (_value(row, n, line, path, key, names) for n in names)
        tokens = tokens.split() if isinstance(tokens, str) else tokens
        tags = tags.split() if isinstance(tags, str) else tags
        if len(tokens) != len(tags):
            raise InputError(key, f"{path} line {line} has {len(tokens)} tokens but "
                                  f"{len(tags)} tags; expected one tag per token")
        records.tokens.append(tokens[:max_len])
        records.targets.append(tags[:max_len])
        records.lines.append(line)
    return records


def _seq2seq_tokens(value, name: str, line: int, path: str, key: str,
                    tokenizer: str) -> list[str]:
    """The tokens of a row's source or target: at least one, none of them reserved."""
    if isinstance(value, list):
        raise InputError(key, f"{path} line {line} has a list as its '{name}'; expected a "
                              "string")
    tokens = tokenize(value, tokenizer)
    if not tokens:  # a blank value is refused before; this guards a tokenizer that drops text
        raise InputError(key, f"{path} line {line} has a '{name}' with no tokens")
    reserved = next((t for t in tokens if t in SEQ2SEQ_SPECIALS), None)
    if reserved is not None:
        raise InputError(key, f"{path} line {line} has the token '{reserved}' in its "
                              f"'{name}'; seq2seq reserves {', '.join(SEQ2SEQ_SPECIALS)}")
    return tokens


def read_seq2seq(path: str, key: str, tokenizer: str, max_len: int | None) -> Records:
    """(source, target) rows, both sides tokenised and cut to ``max_len`` tokens."""
    names = COLUMNS["seq2seq"]
    records = Records(path, "seq2seq", target_at="all")
    for line, row in table_rows(read_text(path, key), path, key, names):
        source, target = (_seq2seq_tokens(_value(row, n, line, path, key, names), n, line,
                                          path, key, tokenizer) for n in names)
        records.tokens.append(source[:max_len])
        records.targets.append(target[:max_len])
        records.lines.append(line)
    return records


def read_lm(path: str, key: str, tokenizer: str, max_len: int | None) -> Records:
    """Chunks of max_len + 1 tokens overlapping by one (see the module docstring)."""
    text = read_text(path, key)
    size = DEFAULT_LM_LEN if max_len is None else max_len
    tokens = tokenize(text, tokenizer)
    if len(tokens) < 2:
        raise InputError(key, f"{path} has {len(tokens)} token; a language model needs "
                              "at least 2")
    records = Records(path, "lm", target_at="all")
    for chunk, start in enumerate(range(0, len(tokens) - 1, size), start=1):
        records.tokens.append(tokens[start: start + size + 1])
        records.targets.append(None)
        records.lines.append(chunk)  # a text has no lines per sequence: number the chunks
    return records


# ---------------------------------------------------------------------------- regress


def _number(cell: str, name: str, line: int, path: str, key: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise InputError(key, f"{path} line {line} has '{cell.strip()}' in column '{name}', "
                              "which is not a number")
    if not np.isfinite(value):
        raise InputError(key, f"{path} line {line} has '{cell.strip()}' in column '{name}'; "
                              "expected a finite number")
    return value


def _regress_header(header: list[str], path: str, key: str) -> tuple[list[int], list[int], int]:
    expected = "expected a header seq,x1,..,xD,y1,..,yO"
    if "seq" not in header:
        raise InputError(key, f"{path} has no 'seq' column (header: {','.join(header)}); "
                              f"{expected}")
    for name in header:
        if name != "seq" and name[:1] not in ("x", "y"):
            raise InputError(key, f"{path} has a column '{name}'; {expected}")
    xs = [i for i, h in enumerate(header) if h.startswith("x")]
    ys = [i for i, h in enumerate(header) if h.startswith("y")]
    if not xs or not ys:
        raise InputError(key, f"{path} has no '{'x' if not xs else 'y'}' columns; {expected}")
    return xs, ys, header.index("seq")


def _regress_steps(path: str, key: str) -> list[tuple[str, list[tuple[int, list, list | None]]]]:
    """Rows grouped by sequence: [(seq, [(line, x values, y values or None)])]."""
    if extension(path) not in (".csv", ".tsv"):
        raise InputError(key, f"{path} has the extension '{extension(path)}'; regress reads "
                              ".csv or .tsv")
    header, body = _csv_rows(read_text(path, key), path, key)
    xs, ys, seq = _regress_header(header, path, key)
    groups: list[tuple[str, list]] = []
    ended: dict[str, int] = {}
    for line, fields in body:
        if len(fields) != len(header):
            raise InputError(key, f"{path} line {line} has {len(fields)} fields but the "
                                  f"header has {len(header)}")
        sid = fields[seq].strip()
        if not sid:
            raise InputError(key, f"{path} line {line} has no 'seq' column value")
        if not groups or groups[-1][0] != sid:
            if sid in ended:
                raise InputError(key, f"{path} line {line} continues sequence '{sid}', which "
                                      f"ended on line {ended[sid]}; the rows of a sequence "
                                      "must be consecutive")
            groups.append((sid, []))
        for i in xs:
            if not fields[i].strip():
                raise InputError(key, f"{path} line {line} has no '{header[i]}' column value")
        x = [_number(fields[i], header[i], line, path, key) for i in xs]
        filled = [bool(fields[i].strip()) for i in ys]
        if any(filled) and not all(filled):
            missing = header[ys[filled.index(False)]]
            raise InputError(key, f"{path} line {line} has no '{missing}' value but other "
                                  "y values; give all y values of a row or none")
        y = [_number(fields[i], header[i], line, path, key) for i in ys] if all(filled) else None
        groups[-1][1].append((line, x, y))
        ended[sid] = line
    return groups


def _target_at(groups, path: str, key: str) -> str:
    """ "all" if every row has y; "last" if exactly each sequence's last row has y."""
    if all(y is not None for _, steps in groups for _, _, y in steps):
        return "all"
    for _, steps in groups:
        for i, (line, _, y) in enumerate(steps):
            last = i == len(steps) - 1
            if (y is not None) != last:
                raise InputError(key, f"{path} line {line} {'has' if y is not None else 'has no'}"
                                      " y values; give y on every row (a target per step) or "
                                      "only on the last row of each sequence (one target per "
                                      "sequence)")
    return "last"


def read_regress(path: str, key: str, max_len: int | None) -> Records:
    groups = _regress_steps(path, key)
    target_at = _target_at(groups, path, key)
    records = Records(path, "regress", target_at=target_at)
    for _, steps in groups:
        x = np.array([s[1] for s in steps], dtype=np.float64)  # (T, D)
        if target_at == "all":
            y = np.array([s[2] for s in steps], dtype=np.float64)[:max_len]  # (T, O)
        else:
            y = np.array(steps[-1][2], dtype=np.float64)  # (O,)
        records.inputs.append(x[:max_len])
        records.targets.append(y)
        records.lines.append(steps[0][0])
    records.columns = (records.inputs[0].shape[1], records.targets[0].shape[-1])
    return records


def read_records(path: str, task: str, key: str, tokenizer: str,
                 max_len: int | None) -> Records:
    """The file's raw records for ``task``; errors name ``key`` (the flag), file and line."""
    check_exists(path, key)
    if task in COLUMNS and extension(path) not in TABLE_FORMATS:
        raise InputError(key, f"{path} has the extension '{extension(path) or '(none)'}'; "
                              f"{task} reads .csv, .tsv or .jsonl")
    if task == "classify":
        return read_classify(path, key, tokenizer, max_len)
    if task == "tag":
        return read_tag(path, key, max_len)
    if task == "lm":
        return read_lm(path, key, tokenizer, max_len)
    if task == "seq2seq":
        return read_seq2seq(path, key, tokenizer, max_len)
    return read_regress(path, key, max_len)


def infer_task(path: str, key: str) -> str | None:
    """The task a file's columns name (text,label / tokens,tags / source,target /
    seq,x..,y..); "lm" for anything that is not a table; None when a table's columns fit
    no task."""
    if extension(path) not in TABLE_FORMATS:
        return "lm"
    text = read_text(path, key)
    if extension(path) == ".jsonl":
        first = next(line for line in text.splitlines() if line.strip())
        try:
            obj = json.loads(first)
        except (json.JSONDecodeError, RecursionError):
            return None
        names = {str(k).lower() for k in obj} if isinstance(obj, dict) else set()
        return _task_of(names)
    task = _task_of(_csv_header(text, path) or set())
    if task is None:  # the file's own faults first, in the words reading it would use
        _csv_rows(text, path, key)
    return task  # (when a task fits, its reader parses the file and reports any fault)


def _task_of(names: set[str]) -> str | None:
    """The task whose columns ``names`` (a header, lower-cased) holds, or None."""
    for task, columns in COLUMNS.items():
        if set(columns) <= names:
            return task
    if "seq" in names and any(n.startswith("x") for n in names):
        return "regress"
    return None
