"""The command-line face of seqtool: one thin module per subcommand.

Only what a command needs is imported when it runs: ``seqtool --help`` and
``seqtool attend`` never import numba (the recurrent commands do).
"""

from seqtool.cli import attend as _attend  # noqa: F401  (registers `seqtool attend`)
from seqtool.cli import bptt as _bptt  # noqa: F401  (registers `seqtool bptt`)
from seqtool.cli import compare as _compare  # noqa: F401  (registers `seqtool compare-selectors`)
from seqtool.cli.app import app


def main() -> None:
    """Entry point of the ``seqtool`` console script and ``python -m seqtool``."""
    app()


__all__ = ["app", "main"]
