"""Every cell's kernels compiled once per test session, split between the xdist workers.

On a cold kernel cache (CI's fresh clone) about half of the suite's CPU time is numba
compiling, and the two workers used to compile much of it twice: each compiled the kernels
its first test files needed, at the same time, and a subprocess test (`seqtool train-rnn`
under Ctrl-C, say) compiled the training kernels a third time when it ran before either
worker had written them to the cache. Here each worker, once its tests are collected, takes
the jobs of ``seqtool compile`` (one per cell and dtype: the layer, its BPTT extras, the
model paths of training and inference; seqtool.commands.compile.compile_job) one at a time
under a file lock that the other worker skips, then waits for the other's jobs; after that
every test and every `seqtool` process it starts loads those kernels from the cache.

It runs only for a whole-suite run under xdist (at least MIN_ITEMS tests collected): a run
of one file, or a ``-k`` selection, compiles what it uses as it goes, as before. On a warm
cache the jobs only load (about a second in all).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

MIN_ITEMS = 1000  # a whole-suite run (the suite has ~2000 tests)
SLOWEST = ("lstm", "gru", "rnn")  # the slowest to compile first, so the jobs end together


def jobs() -> list[tuple[str, str]]:
    """(cell, dtype) for every registered cell (the built-in ones slowest first, any other
    after them) and both dtypes: `seqtool compile`'s jobs."""
    from seqtool.core.rnn.cells import cell_names
    from seqtool.core.rnn.warmup import DTYPES

    rank = {name: i for i, name in enumerate(SLOWEST)}
    cells = sorted(cell_names(), key=lambda name: rank.get(name, len(rank)))
    return [(cell, dtype) for cell in cells for dtype in DTYPES]


def wanted(session) -> bool:
    """Whether this process is an xdist worker of a whole-suite run."""
    if ("PYTEST_XDIST_WORKER" not in os.environ or len(session.items) < MIN_ITEMS
            or session.config.option.collectonly):
        return False
    from numba import config  # numba's own reading of NUMBA_DISABLE_JIT, as forkserver's

    return not config.DISABLE_JIT


def precompile(folder: Path) -> list[tuple[str, str]]:
    """Run each job not yet done by any worker sharing ``folder``, then wait until the
    others' are done too. Returns the jobs this process ran."""
    from seqtool.commands.compile import compile_job

    folder.mkdir(parents=True, exist_ok=True)
    ran, others = [], []
    for cell, dtype in jobs():
        lock = open(folder / f"{cell}-{dtype}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another worker is compiling it: wait for it at the end
            others.append(lock)
            continue
        done = folder / f"{cell}-{dtype}.done"
        if not done.exists():
            try:
                compile_job(cell, dtype)
            except Exception:  # noqa: BLE001 (the tests that use it will say what fails)
                pass
            else:
                ran.append((cell, dtype))
            done.touch()
        lock.close()  # releases the lock
    for lock in others:
        fcntl.flock(lock, fcntl.LOCK_EX)  # returns once the other worker has finished it
        lock.close()
    return ran
