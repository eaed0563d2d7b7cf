"""YAML and JSON documents read so that a small file cannot become a huge object.

Two attacks fit in a few hundred bytes:

- **alias bombs** ("billion laughs"): YAML anchors and aliases share one node, so nine lines
  of ``&a [*b, *b, ...]`` build an object that is small in memory but 10⁹ items long to
  anything that walks it (our checks, a JSON dump), which then runs for minutes and
  gigabytes;
- **nesting**: ``[[[[...`` a hundred thousand levels deep, which the parsers (recursive)
  answer with a RecursionError.

:func:`load_yaml` composes the document first and measures it as if every alias were
copied out (a count over the node graph, linear in its size): a document whose aliases
amplify it beyond :data:`MAX_EXPANSION` times its own nodes (and more than
:data:`FREE_NODES`), or that nests deeper than :data:`MAX_DEPTH`, is refused before a
Python object is built. :func:`load_json` refuses nesting the same way. Both raise
:class:`DocumentError` with one line that says what was found; callers name the file or
flag.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 100  # levels of nesting: recipes and problems use a handful
FREE_NODES = 100_000  # any document may expand to this many nodes, aliases or not
MAX_EXPANSION = 10  # beyond FREE_NODES, at most this many times its own nodes


class DocumentError(ValueError):
    """A document refused for its shape (too deep, or aliases that multiply it); the message
    reads after "the file ..." or "--flag reads ...". ``line``: 1-based, where known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


# half of a UTF-16 pair on its own (JSON's "\ud800", or a byte that was not UTF-8): no
# character, and nothing can write it out again
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_lone_surrogate(text: str, line: int | None = None) -> None:
    found = _LONE_SURROGATE.search(text)
    if found:
        raise DocumentError(f"holds {found.group()!r}, which is not a character (half of a "
                            "UTF-16 pair, or a byte that is not UTF-8)", line)


def _measure(node: Any) -> tuple[int, int]:
    """(nodes counting every alias as a copy, distinct nodes) of a composed YAML node graph;
    DocumentError if it nests deeper than MAX_DEPTH."""
    from yaml import MappingNode, SequenceNode

    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: an alias back to one is a cycle
    # iterative post-order walk: no recursion, whatever the depth
    stack: list[tuple[Any, int, bool]] = [(node, 1, False)]
    while stack:
        current, depth, children_done = stack.pop()
        key = id(current)
        if isinstance(current, SequenceNode):
            children = list(current.value)
        elif isinstance(current, MappingNode):
            children = [part for pair in current.value for part in pair]
        else:
            children = []
            mark = getattr(current, "start_mark", None)
            _no_lone_surrogate(str(current.value), None if mark is None else mark.line + 1)
        if children_done:
            open_nodes.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in children)
            continue
        if key in expanded:
            continue  # an alias of a node already measured
        if key in open_nodes:
            mark = getattr(current, "start_mark", None)
            raise DocumentError("refers to itself (an alias inside its own anchor)",
                                None if mark is None else mark.line + 1)
        if depth > MAX_DEPTH:
            mark = getattr(current, "start_mark", None)
            raise DocumentError(f"nests deeper than {MAX_DEPTH} levels",
                                None if mark is None else mark.line + 1)
        open_nodes.add(key)
        stack.append((current, depth, True))
        stack.extend((child, depth + 1, False) for child in children)
    distinct = len(expanded)
    return expanded[id(node)], distinct


def load_yaml(text: str) -> tuple[Any, Any]:
    """(data, composed node) of a single YAML document, read with the safe loader (no
    Python objects); yaml.YAMLError for a malformed one, DocumentError for one that aliases
    or nests beyond the limits above."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise DocumentError(f"nests deeper than {MAX_DEPTH} levels") from None
        if node is None:
            return None, None
        total, distinct = _measure(node)
        if total > max(FREE_NODES, MAX_EXPANSION * distinct):
            raise DocumentError(
                f"uses aliases (*name) that expand {distinct:,} nodes to {total:,}; an alias "
                f"may not multiply a document beyond {MAX_EXPANSION}×", node.start_mark.line + 1)
        return loader.construct_document(node), node
    finally:
        loader.dispose()


def load_json(text: str) -> Any:
    """json.loads, with nesting beyond MAX_DEPTH refused (json.JSONDecodeError for malformed
    JSON, DocumentError for too deep)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:  # a cheap scan first: the parser itself recurses
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    raise DocumentError(f"nests deeper than {MAX_DEPTH} levels")
        elif ch in "]}":
            depth -= 1
    data = json.loads(text)
    if "\\u" in text or _LONE_SURROGATE.search(text):  # only an escape can make one
        stack = [data]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                for key in value:
                    _no_lone_surrogate(key)
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, str):
                _no_lone_surrogate(value)
    return data


__all__ = ["DocumentError", "FREE_NODES", "MAX_DEPTH", "MAX_EXPANSION", "load_json",
           "load_yaml"]
