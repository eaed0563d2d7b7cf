"""seqtool: hands-on sequence-model experiments from the command line, and from Python.

``import seqtool`` is light: the Python API (:mod:`seqtool.api`: ``attend``,
``compare_selectors``, ``bptt``, ``train``, ``run_recipe``, ``load``, ``Model``, ``plot``) and the
errors are imported on first use of their names.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("attend", "compare_selectors", "bptt", "train", "run_recipe", "load", "Model", "plot")
_ERRORS = ("InputError", "RunError", "SeqtoolError")

__all__ = [
    "InputError",
    "Model",
    "RunError",
    "SeqtoolError",
    "__version__",
    "attend",
    "bptt",
    "compare_selectors",
    "load",
    "plot",
    "run_recipe",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        from seqtool import api

        return getattr(api, name)
    if name in _ERRORS:
        from seqtool.core import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'seqtool' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, *_ERRORS])
