"""Exceptions raised by seqtool's library code.

Only ``seqtool.cli`` turns them into messages and exit codes. An :class:`InputError` names
the parameter it is about (``key``, the Config field name such as ``"keys"`` or
``"temperature"``); the command line shows it as ``--keys``, a recipe as ``params.keys``.
"""

from __future__ import annotations


class SeqtoolError(Exception):
    """Base class of every error seqtool raises on purpose."""


class InputError(SeqtoolError, ValueError):
    """Bad input a user can type: a malformed number, a wrong shape, a bad setting.

    ``message`` is a predicate that reads after the parameter's name, e.g.
    ``InputError("keys", "has rows of length 3 but the query has 2")``.
    """

    def __init__(self, key: str | None, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key} {message}" if key else message)


class RunError(SeqtoolError):
    """A run that started with good input and failed (diverged, did not converge)."""
