"""The Python API reference (``docs/api.md``), written from the API's own docstrings.

    python -m seqtool.api_reference > docs/api.md

Each public name of :mod:`seqtool.api` (and each method of ``Model``) becomes a section: its
signature, then its numpydoc docstring with the Parameters, Returns and Raises sections as
lists and the Examples as a Python block (the same examples the test suite runs as
doctests). A test regenerates the page and fails when the file in the repository is stale.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

SECTIONS = ("Parameters", "Returns", "Raises", "Attributes", "Examples")


def _split(doc: str) -> tuple[str, dict[str, list[str]]]:
    """(the text before the first section, {section: its lines})."""
    lines = inspect.cleandoc(doc).splitlines()
    intro: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = intro
    i = 0
    while i < len(lines):
        line = lines[i]
        if (line.strip() in SECTIONS and i + 1 < len(lines)
                and set(lines[i + 1].strip()) == {"-"}):
            current = sections.setdefault(line.strip(), [])
            i += 2
            continue
        current.append(line)
        i += 1
    return "\n".join(intro).strip(), sections


def _entries(lines: list[str]) -> list[str]:
    """numpydoc entries (a name line, then indented text) as Markdown list items."""
    items: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        if not line.startswith(" "):
            name, _, kind = line.partition(" : ")
            names = ", ".join(f"`{n.strip()}`" for n in name.split(","))
            items.append(f"- {names}" + (f" ({kind.strip()})" if kind else "") + ":")
        elif items:
            items[-1] += " " + line.strip()
    return [item[:-1] if item.endswith(":") else item for item in items]


def _rst(text: str) -> str:
    """reStructuredText's inline markup as Markdown: ``x`` and :func:`x` as `x`."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _markdown(title: str, obj: Any, level: str = "##", signature: str = "") -> str:
    doc = _rst(obj.__doc__ or "")
    intro, sections = _split(doc)
    out = [f"{level} {title}", ""]
    if signature:
        out += ["```python", signature, "```", ""]
    if intro:
        out += [intro, ""]
    for name in SECTIONS[:-1]:
        if name in sections:
            out += [f"**{name}**", "", *_entries(sections[name]), ""]
    if "Examples" in sections:
        example = "\n".join(sections["Examples"]).strip()
        out += ["**Examples**", "", "```python", example, "```", ""]
    return "\n".join(out)


def _signature(name: str, obj: Any, width: int = 92) -> str:
    """``name(params) -> returns`` as Python, one parameter per line when it is long."""
    signature = inspect.signature(obj)
    params = [p for p in signature.parameters.values() if p.name != "self"]
    texts, star = [], False
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star:
            texts.append("*")
            star = True
        text = p.name
        if p.annotation is not p.empty:  # a string under `from __future__ import annotations`
            text += f": {p.annotation}".replace("'", "")
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        texts.append(text)
    returns = signature.return_annotation
    tail = "" if returns is inspect.Signature.empty else f" -> {returns}".replace("'", "")
    one_line = f"{name}({', '.join(texts)}){tail}"
    if len(one_line) <= width:
        return one_line
    body = "".join(f"    {text},\n" for text in texts)
    return f"{name}(\n{body}){tail}"


def reference() -> str:
    """The whole page."""
    from seqtool import api

    parts = [
        "# The Python API",
        "",
        "Generated from the docstrings of `seqtool.api` "
        "(`python -m seqtool.api_reference > docs/api.md`); every example here runs in the "
        "test suite as a doctest. `import seqtool` gives each name below; a keyword left at "
        "`None` takes the command's default, as a flag left out. The commands behind them "
        "are in [cli.md](cli.md).",
        "",
    ]
    names = sorted(api.__all__, key=lambda name: inspect.isclass(getattr(api, name)))
    for name in names:  # the functions, then the Model they load
        obj = getattr(api, name)
        if not inspect.isclass(obj):
            parts.append(_markdown(f"`seqtool.{name}`", obj,
                                   signature=_signature(f"seqtool.{name}", obj)))
            continue
        parts.append(_markdown(f"`seqtool.{name}`", obj))
        for member_name, member in vars(obj).items():
            if member_name.startswith("_"):
                continue
            if isinstance(member, property):
                parts.append(f"### `{name}.{member_name}`\n\n{_rst(member.__doc__ or '').strip()}\n")
            elif callable(member):
                parts.append(_markdown(f"`{name}.{member_name}`", member, "###",
                                       _signature(f"{name.lower()}.{member_name}", member)))
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
