"""Parameters from flags and an --input object: what attend and compare-selectors share."""

from __future__ import annotations

from typing import Any

from seqtool.config import check_known
from seqtool.core.errors import InputError
from seqtool.io.numbers import read_mapping

INPUT_HELP = (
    'A JSON (or YAML) object {"query": ..., "keys": ..., "values": ...} (other parameters by '
    "name too) from a file or - (stdin); flags override it."
)


def gather(flags: dict[str, Any], input_source: str | None, config_cls: type) -> dict[str, Any]:
    """The parameters: the --input object's, overridden by the flags that were given."""
    stdin_readers = [k for k, v in flags.items() if isinstance(v, str) and v.strip() == "-"]
    if input_source is not None and input_source.strip() == "-":
        stdin_readers.append("input")
    if len(stdin_readers) > 1:
        names = " and ".join(f"--{k}" for k in stdin_readers)
        raise InputError(None, f"{names} both read stdin ('-'); only one of them can")
    mapping: dict[str, Any] = {}
    if input_source is not None:
        mapping = read_mapping(input_source, "input")
        try:
            check_known(config_cls, mapping, config_cls.COMMAND)
        except InputError as err:
            raise InputError("input", f"has a key that is not known: {err.message}") from None
    mapping.update({key: value for key, value in flags.items() if value is not None})
    return mapping
