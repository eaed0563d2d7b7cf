"""What every command returns: a Report, which the one output path writes in any format.

A Report is a dataclass of arrays and plain values (what the run computed) with four views:

    to_dict()   everything, as JSON-ready data (what a recipe stores as report.json)
    to_json()   the document `--format json` prints (to_dict() unless a command says less)
    records()   the lines of `--format jsonl` (one object by default: to_json())
    rows()      the rows of `--format csv`, one dict per row, keys = columns in order
    columns()   the CSV header (the first row's keys unless a report says otherwise, so that
                an empty table still has its header)

``seqtool.io.output`` writes them; ``seqtool.render`` draws the tables people read. Nothing
here formats text or touches a stream.
"""

from __future__ import annotations

import math
from typing import Any, Callable


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (a metric that could not be computed) as None:
    JSON has no NaN, and jq refuses it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class Report:
    """Base of every command's report (see the module docstring)."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__}.to_dict")

    def to_json(self) -> Any:
        return self.to_dict()

    def records(self) -> list[Any]:
        return [self.to_json()]

    def rows(self) -> list[dict[str, Any]]:
        raise NotImplementedError(f"{type(self).__name__}.rows")

    def columns(self) -> list[str]:
        rows = self.rows()
        return list(rows[0]) if rows else []

    def _repr_html_(self) -> str:
        """Jupyter's view: the command's table and plot when a drawing layer has set one
        (``seqtool.api`` sets ``seqtool.render.notebook``'s: core draws nothing and imports
        no renderer), else the JSON in a <pre>."""
        if _html_view is not None:
            return _html_view(self)
        import html
        import json

        return f"<pre>{html.escape(json.dumps(self.to_json(), indent=2, default=str))}</pre>"


# How a Report draws itself as HTML (Jupyter), set by the layer that can draw.
_html_view: Callable[[Report], str] | None = None


def set_html_view(view: Callable[[Report], str] | None) -> None:
    """Use ``view(report) -> html`` for every Report's ``_repr_html_`` (None: the JSON)."""
    global _html_view
    _html_view = view
