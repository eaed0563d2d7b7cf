"""Checkpoints that never unpickle and never lose files; metrics.jsonl lines.

A checkpoint ``<name>`` in a directory is two files:

- ``<name>.npz``: the arrays, one ``<key>.npy`` entry each in an uncompressed zip (what
  ``np.savez`` writes), written with ``allow_pickle=False``; dtypes kept as given.
- ``<name>.json``: the caller's metadata plus ``"format": "seqtool-checkpoint"``,
  ``"format_version": 1``, ``"arrays": {key: [shape, dtype]}`` and ``"npz_sha256"``, the
  SHA-256 of the .npz bytes, so a .json is never paired with an .npz from another save.

Every file is written atomically (temp file in the same folder, fsync, ``os.replace``): a
crash leaves the old file or the new one, never half of one. The pair is one transaction:
a save first moves the old .npz aside to ``.<name>.prev.npz``, then writes the new .npz,
then the .json, then removes the old .npz. A crash (kill -9, a full disk) at any moment
leaves a .json that matches either ``<name>.npz`` or ``.<name>.prev.npz``, and loading
takes the one whose SHA-256 the .json records: the last save that completed, never a torn
pair. Temp files that a killed save left behind are removed by the next save.

Loading never unpickles: each .npy header is read and checked against the .json (shape,
dtype, no object dtype) before its data is read, and data is read with
``allow_pickle=False``. Any problem raises :class:`CheckpointError` with one line naming
the directory, the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
from numpy.lib import format as npy_format

from seqtool.core.errors import InputError
from seqtool.io.output import plain

FORMAT = "seqtool-checkpoint"
FORMAT_VERSION = 1
RESERVED = ("format", "format_version", "arrays", "npz_sha256")

# What reading a damaged or hostile zip / .npy can raise (besides our own checks).
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, ValueError, OSError,
                EOFError, KeyError, RuntimeError, NotImplementedError, TypeError, SyntaxError)


class CheckpointError(InputError):
    """A checkpoint that cannot be written or read, about the flag ``key``.

    ``CheckpointError(key, message)`` as InputError, or ``CheckpointError(message)`` for the
    default key ``"checkpoint"``. The message reads after the flag, e.g. ``--resume`` +
    ``"runs/x: model.npz is not a seqtool checkpoint (bad zip file)"``.
    """

    def __init__(self, *args: str | None):
        if len(args) == 1:
            key, message = "checkpoint", args[0]
        elif len(args) == 2:
            key, message = args
        else:
            raise TypeError("CheckpointError(key, message) or CheckpointError(message)")
        super().__init__(key, message)


# --------------------------------------------------------------------------- atomic writes

def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A temp file beside ``path`` opened for w+b; on success fsync + os.replace onto path.

    On any failure the temp file is removed and ``path`` is left as it was.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_UMASK
        os.chmod(tmp, mode)  # mkstemp makes 0600; give the file the mode a plain open would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); not possible on every platform."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (str as UTF-8) to ``path`` atomically: all of it or nothing.

    A temp file in the same folder is written, fsynced and renamed over ``path``
    (``os.replace``); on failure the temp file is removed and any old ``path`` is intact.
    OSError (no such folder, no permission, disk full) propagates.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    with _atomic_file(Path(path)) as f:
        f.write(data)


# --------------------------------------------------------------------------- jsonl

def _jsonl_line(record: dict) -> str:
    if not isinstance(record, dict):
        raise TypeError(f"a JSON line needs a dict, not {type(record).__name__}")
    return json.dumps(plain(record), ensure_ascii=False, allow_nan=False) + "\n"


def write_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    """Write ``records`` as the JSON lines of ``path``, atomically (the same lines
    :func:`append_jsonl` writes one at a time): how a resumed run sets its metrics.jsonl
    back to the epochs its checkpoint holds."""
    write_atomic(path, "".join(_jsonl_line(r) for r in records))


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append ``record`` as one JSON line to ``path`` (e.g. metrics.jsonl) and flush.

    The line is written with one write call in append mode, so lines from one process are
    never interleaved. NumPy values become Python values; NaN and ±inf (a diverged loss)
    become null, since JSON has no such numbers and every line must parse (``jq``).
    The parent folder is created if needed.
    """
    line = _jsonl_line(record)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()


# --------------------------------------------------------------------------- save

def _check_name(name: str, key: str | None) -> None:
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name
            or "\\" in name or "\0" in name or name.startswith(".")):
        raise CheckpointError(key, f"name {name!r} is not a plain file name (like 'model')")


def _describe(dtype: np.dtype) -> str:
    return dtype.str  # '<f4', '<i8', '|b1': exact, including byte order


def _readable_json(document: dict) -> str:
    """One top-level key per line, and one line per array in "arrays"."""
    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)

    lines = []
    for k, v in document.items():
        if k == "arrays" and v:
            inner = ",\n".join(f"    {dump(a)}: {dump(entry)}" for a, entry in v.items())
            lines.append(f"  {dump(k)}: {{\n{inner}\n  }}")
        else:
            lines.append(f"  {dump(k)}: {dump(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _numpy_scalar(value: Any) -> Any:
    """json.dumps(default=...): NumPy scalars as Python numbers; anything else is refused."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _previous(directory: Path, name: str) -> Path:
    """Where a save keeps the old .npz until its .json is written (see the module docstring)."""
    return directory / f".{name}.prev.npz"


def _remove_stale_temps(directory: Path, name: str) -> None:
    """The temp files of an earlier save of ``name`` that was killed before its rename."""
    for pattern in (f".{name}.npz.*.tmp", f".{name}.json.*.tmp"):
        for path in directory.glob(pattern):
            with contextlib.suppress(OSError):
                path.unlink()


def save_checkpoint(directory: str | os.PathLike, name: str, arrays: dict[str, np.ndarray],
                    meta: dict, *, key: str | None = "checkpoint") -> None:
    """Write ``<directory>/<name>.npz`` (arrays) and ``<name>.json`` (meta) as one
    transaction: each file atomically, the old .npz kept aside until the new .json is in
    place (see the module docstring).

    Arrays keep their dtype and shape; object arrays (which would need pickle) and
    structured dtypes are refused. ``meta`` must be JSON-serialisable (finite numbers) and
    must not use the keys the format reserves (format, format_version, arrays, npz_sha256).
    The directory is created if needed. Raises CheckpointError (flag ``key``) for bad input
    and for a file-system failure, with the old files left intact.
    """
    directory = Path(directory)
    _check_name(name, key)
    where = f"{directory}: {name}"
    if not isinstance(meta, dict):
        raise CheckpointError(key, f"{where}.json: meta is {type(meta).__name__}; expected a dict")
    clash = [k for k in RESERVED if k in meta]
    if clash:
        raise CheckpointError(key, f"{where}.json: meta uses the reserved key '{clash[0]}'")
    listing: dict[str, list] = {}
    for k, a in arrays.items():
        if not isinstance(k, str) or not k or "\0" in k:
            raise CheckpointError(key, f"{where}.npz: array key {k!r} is not a non-empty string")
        if not isinstance(a, np.ndarray):
            raise CheckpointError(key, f"{where}.npz: '{k}' is {type(a).__name__}; "
                                       "expected a NumPy array")
        if a.dtype.hasobject or a.dtype.names is not None or a.dtype.kind == "V":
            raise CheckpointError(key, f"{where}.npz: '{k}' has dtype {a.dtype}; only plain "
                                       "numeric, bool and string arrays are stored (no pickle)")
        listing[k] = [list(a.shape), _describe(a.dtype)]
    try:  # check meta before writing anything
        text = json.dumps(meta, allow_nan=False, default=_numpy_scalar)
    except (TypeError, ValueError) as err:
        raise CheckpointError(key, f"{where}.json: meta is not JSON ({err})") from None

    npz, previous = directory / f"{name}.npz", _previous(directory, name)
    moved = False
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(directory, name)
        if npz.is_file() and (directory / f"{name}.json").is_file():
            os.replace(npz, previous)  # the pair the old .json names, until the new one is in
            moved = True
        with _atomic_file(npz) as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for k, a in arrays.items():
                    with zf.open(f"{k}.npy", "w", force_zip64=True) as entry:
                        npy_format.write_array(entry, np.asanyarray(a), allow_pickle=False)
            f.flush()
            f.seek(0)
            digest = hashlib.sha256(f.read()).hexdigest()
        document = {**json.loads(text), "format": FORMAT, "format_version": FORMAT_VERSION,
                    "arrays": listing, "npz_sha256": digest}
        write_atomic(directory / f"{name}.json", _readable_json(document))
    except OSError as err:
        if moved and not npz.exists():  # put the old pair back as it was, if we can
            with contextlib.suppress(OSError):
                os.replace(previous, npz)
        reason = err.strerror or str(err) or type(err).__name__
        raise CheckpointError(key, f"{where}: cannot write the checkpoint ({reason})") from err
    with contextlib.suppress(OSError):  # the new pair is complete: the old .npz goes
        previous.unlink()


# --------------------------------------------------------------------------- load

def _read_meta(directory: Path, name: str, key: str | None) -> tuple[dict, dict[str, tuple]]:
    """The .json: (its whole dict, {array key: (shape, dtype)}), or CheckpointError."""
    where = f"{directory}: {name}.json"

    def fail(what: str) -> CheckpointError:
        return CheckpointError(key, f"{where} {what}")

    try:
        document = json.loads((directory / f"{name}.json").read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise fail("is not JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as err:
        raise fail(f"is not JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except (OSError, RecursionError) as err:
        raise fail(f"cannot be read ({getattr(err, 'strerror', None) or err})") from None
    if not isinstance(document, dict):
        raise fail(f"is not a seqtool checkpoint (a JSON {type(document).__name__}, "
                   "not an object)")
    if document.get("format") != FORMAT:
        found = f"format {document['format']!r}" if "format" in document else "no \"format\" key"
        raise fail(f"is not a seqtool checkpoint ({found}; expected \"{FORMAT}\")")
    version = document.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            raise fail(f"has format_version {version}, written by a newer seqtool "
                       f"(this one reads {FORMAT_VERSION})")
        raise fail(f"has format_version {version!r}; expected {FORMAT_VERSION}")
    listing = document.get("arrays")
    if not isinstance(listing, dict):
        raise fail("has no \"arrays\" object")
    expected: dict[str, tuple] = {}
    for k, entry in listing.items():
        try:
            shape, descr = entry
            if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
                raise ValueError
            dtype = np.dtype(descr) if isinstance(descr, str) else None
        except (TypeError, ValueError, SyntaxError):
            dtype = None
        if dtype is None:
            raise fail(f"has a malformed \"arrays\" entry for '{k}' (expected [shape, dtype])")
        if dtype.hasobject or dtype.names is not None or dtype.kind == "V":
            raise fail(f"lists '{k}' with dtype {descr!r}, which is not stored by seqtool "
                       "(object arrays need pickle)")
        expected[k] = (tuple(shape), dtype)
    digest = document.get("npz_sha256")
    if not isinstance(digest, str):
        raise fail("has no \"npz_sha256\" string")
    return document, expected


def _read_arrays(data: bytes, expected: dict[str, tuple], listing: str,
                 fail) -> dict[str, np.ndarray]:
    """The arrays of an .npz held in ``data``, each checked against ``expected`` (from the
    file named ``listing``) before its data is read."""
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = zf.namelist()
        found = {e[:-4] if e.endswith(".npy") else e: e for e in entries}
        if len(found) != len(entries):
            raise fail("holds the same array twice")
        missing = [k for k in expected if k not in found]
        if missing:
            raise fail(f"lacks the array '{missing[0]}' that {listing} lists")
        extra = [k for k in found if k not in expected]
        if extra:
            raise fail(f"holds an array '{extra[0]}' that {listing} does not list")
        for k, (shape, dtype) in expected.items():
            with zf.open(found[k]) as entry:
                version = npy_format.read_magic(entry)
                if version == (1, 0):
                    got_shape, fortran, got_dtype = npy_format.read_array_header_1_0(entry)
                elif version == (2, 0):
                    got_shape, fortran, got_dtype = npy_format.read_array_header_2_0(entry)
                else:
                    raise fail(f"holds '{k}' in .npy version {version}, which seqtool does not "
                               "write")
                if got_dtype.hasobject:
                    raise fail(f"holds '{k}' as an object array (pickled data); refused")
                if got_shape != shape or got_dtype != dtype:
                    raise fail(f"holds '{k}' as {got_dtype.str} {got_shape} but {listing} says "
                               f"{dtype.str} {shape}")
                nbytes = math.prod(shape) * dtype.itemsize
                if zf.getinfo(found[k]).file_size - entry.tell() < nbytes:  # before allocating
                    raise fail(f"holds '{k}' truncated (fewer bytes than {dtype.str} {shape} needs)")
            with zf.open(found[k]) as entry:  # headers checked: now the data, never unpickled
                array = npy_format.read_array(entry, allow_pickle=False)
            if array.shape != shape or array.dtype != dtype:  # cannot differ; belt and braces
                raise fail(f"holds '{k}' as {array.dtype.str} {array.shape}, not {dtype.str} "
                           f"{shape}")
            arrays[k] = array
    return arrays


def load_checkpoint(directory: str | os.PathLike, name: str,
                    key: str | None = "checkpoint") -> tuple[dict[str, np.ndarray], dict]:
    """Read ``<directory>/<name>.npz`` and ``<name>.json``: (arrays, meta), fully verified.

    Checks that both files exist, the .json is a seqtool checkpoint (format, version,
    array listing), the .npz is the one the .json was saved with (SHA-256; after a save
    that was killed before its .json, the old .npz it kept aside is), and it holds
    exactly the listed arrays with the listed shapes and dtypes. Nothing is unpickled.
    Returns plain in-memory arrays, in the .json's order, and the meta as it was given to
    :func:`save_checkpoint` (without the format's own keys). Any failure raises
    CheckpointError(key, "<directory>: <file> <what is wrong>").
    """
    directory = Path(directory)
    _check_name(name, key)
    npz_path, json_path = directory / f"{name}.npz", directory / f"{name}.json"
    if not directory.is_dir():
        raise CheckpointError(key, f"{directory}: no such directory")
    previous = _previous(directory, name)
    has_npz, has_json = npz_path.is_file() or previous.is_file(), json_path.is_file()
    if not has_npz and not has_json:
        raise CheckpointError(key, f"{directory}: no checkpoint '{name}' ({name}.npz and "
                                   f"{name}.json are both missing)")
    if not has_json:
        raise CheckpointError(key, f"{directory}: {name}.json is missing ({name}.npz is there "
                                   "but has no metadata: an interrupted save?)")
    if not has_npz:
        raise CheckpointError(key, f"{directory}: {name}.npz is missing ({name}.json names it)")

    document, expected = _read_meta(directory, name, key)

    def fail(what: str) -> CheckpointError:
        return CheckpointError(key, f"{directory}: {name}.npz {what}")

    try:
        data = npz_path.read_bytes() if npz_path.is_file() else b""
        if hashlib.sha256(data).hexdigest() != document["npz_sha256"] and previous.is_file():
            # a save killed between its .npz and its .json: the .json still names the old
            # .npz, which that save kept aside
            kept = previous.read_bytes()
            if hashlib.sha256(kept).hexdigest() == document["npz_sha256"]:
                data = kept
    except OSError as err:
        raise fail(f"cannot be read ({err.strerror or err})") from None
    if not data:
        raise CheckpointError(key, f"{directory}: {name}.npz is missing ({name}.json names it)")
    if not data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise fail("is not a seqtool checkpoint (not a zip file)")
    try:
        arrays = _read_arrays(data, expected, f"{name}.json", fail)
    except CheckpointError:
        raise
    except zipfile.BadZipFile as err:
        raise fail(f"is not a seqtool checkpoint (bad zip file: {err})") from None
    except _READ_ERRORS as err:
        raise fail(f"is damaged ({type(err).__name__}: {err})".replace("\n", " ")) from None
    if hashlib.sha256(data).hexdigest() != document["npz_sha256"]:  # last: specific errors first
        raise fail(f"does not match {name}.json (checksum differs: a damaged file, or one "
                   "from another save)")
    meta = {k: v for k, v in document.items() if k not in RESERVED}
    return arrays, meta
