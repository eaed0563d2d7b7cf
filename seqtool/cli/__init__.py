"""The command-line face of seqtool: one thin module per subcommand.

Only what a command needs is imported when it runs: ``seqtool --help`` and
``seqtool attend`` never import numba (the recurrent commands do).
"""

import os

# One BLAS thread unless the user asks for more. numpy and numba (through SciPy) each load
# their own OpenBLAS, and two pools of spinning threads on a 2-core machine made training
# 4× slower (parity, GRU H=32: 0.48 s against 0.12 s for 3 epochs). It must be set before
# numpy is imported; importing seqtool.cli is the console script's first step.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from seqtool.cli import attend as _attend  # noqa: F401  (registers `seqtool attend`)
from seqtool.cli import bptt as _bptt  # noqa: F401  (registers `seqtool bptt`)
from seqtool.cli import compare as _compare  # noqa: F401  (registers `seqtool compare-selectors`)
from seqtool.cli import train as _train  # noqa: F401  (registers `seqtool train-rnn`)
from seqtool.cli import predict as _predict  # noqa: F401  (predict, sample, evaluate)
from seqtool.cli import run as _run  # noqa: F401  (registers `seqtool run`)
from seqtool.cli.app import app


def main() -> None:
    """Entry point of the ``seqtool`` console script and ``python -m seqtool``."""
    app()


__all__ = ["app", "main"]
