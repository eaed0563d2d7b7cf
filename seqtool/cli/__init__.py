"""The command-line face of seqtool: a Typer app built from the command registry.

Only what a command needs is imported when it runs: ``seqtool --help`` and
``seqtool attend`` never import numba (the recurrent commands do).
"""

import os

# One BLAS thread unless the user asks for more. numpy and numba (through SciPy) each load
# their own OpenBLAS, and two pools of spinning threads on a 2-core machine made training
# 4× slower (parity, GRU H=32: 0.48 s against 0.12 s for 3 epochs). It must be set before
# numpy is imported; importing seqtool.cli is the console script's first step.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import signal  # noqa: E402
import sys  # noqa: E402


def _interrupted(*_: object) -> None:
    """Ctrl-C before the app's own handling is in place (while the imports run) or a
    second Ctrl-C while it handles the first: seqtool's one line, exit 1, no traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a third one changes nothing
    try:
        sys.stderr.write("seqtool: error: interrupted\n")
        sys.stderr.flush()
    finally:
        os._exit(1)  # at once: nothing left half-done is worth a traceback


def _as_the_command() -> bool:
    """Whether this process is `seqtool` or `python -m seqtool` (not a notebook or a test
    importing seqtool.cli, whose Ctrl-C is its own business)."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name in ("seqtool", "__main__.py") or name.startswith("seqtool")


try:
    from seqtool.cli.app import app  # noqa: E402
except KeyboardInterrupt:
    if _as_the_command():
        _interrupted()
    raise


def main() -> None:
    """Entry point of the ``seqtool`` console script and ``python -m seqtool``."""
    try:
        app()
    except KeyboardInterrupt:
        _interrupted()


__all__ = ["app", "main"]
