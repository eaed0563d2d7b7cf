"""`seqtool compile`: every kernel for this machine, up front, on every core.

One job per (cell, dtype): a fresh process loads or compiles that cell's kernels in that
dtype (:func:`seqtool.core.rnn.warmup.warm_up`: the layer as the BPTT analysis runs it, and
the model path of training and inference, a token model of two layers and a numeric
one). numba writes each kernel's cache entry atomically, so processes compiling different
kernels (or the same shared helper) at once do not corrupt it. Each job runs in a process
of its own (never one that already ran another job), so "loaded" means this job found
every kernel in the on-disk cache, and its seconds are its own.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqtool.commands.events import Events
from seqtool.config import CompileConfig
from seqtool.core.errors import InputError, RunError
from seqtool.core.report import Report

COLUMNS = ("cell", "dtype", "seconds", "compiled", "loaded")


@dataclass
class CompileReport(Report):
    """Per (cell, dtype): the seconds its kernels took, how many compilations numba made
    (0: loaded from the cache), and the wall time of the whole command; and this machine's
    tuning: where it is kept, whether it was measured now, its thresholds."""

    jobs: int
    seconds: float
    kernels: list[dict[str, Any]]
    tuning: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "seconds": self.seconds, "kernels": self.kernels,
                "tuning": self.tuning}

    def rows(self) -> list[dict[str, Any]]:
        return [{name: row[name] for name in COLUMNS} for row in self.kernels]

    def columns(self) -> list[str]:
        return list(COLUMNS)


def model_specs(cell: str) -> list[Any]:
    """The models whose paths `seqtool compile` warms for ``cell``: tokens in (embedding,
    folded projection, two layers) and numbers in (regress)."""
    from seqtool.core.models import ModelSpec

    return [ModelSpec(task="classify", cell=cell, input_size=5, output_size=3, layers=2),
            ModelSpec(task="regress", cell=cell, input_size=2, output_size=2,
                      embedding_dim=None)]


def compile_job(cell: str, dtype: str) -> dict[str, Any]:
    """One job (in a worker process): every kernel of ``cell`` in ``dtype``."""
    from seqtool.core.rnn.warmup import warm_up

    seconds, compiled = 0.0, 0
    specs = [None] + model_specs(cell)
    for spec in specs:
        result = warm_up(cell, dtype, spec=spec, optimizer="adam", truncated=spec is None,
                         helper=False)
        seconds += result.seconds
        compiled += result.compiled
    return {"cell": cell, "dtype": dtype, "seconds": seconds, "compiled": compiled,
            "loaded": compiled == 0}


def tune_job() -> dict[str, Any]:
    """The measurement of this machine's product methods (in a worker process of its own,
    alone on the machine: seqtool.core.rnn.measure)."""
    from seqtool.core.rnn.measure import measure

    return measure()


def tune(config: CompileConfig, events: Events, context: Any) -> dict[str, Any]:
    """This machine's tuning: measured (in a process of its own, before any kernel is
    compiled, so that the compile jobs read it) when none of this CPU is stored or with
    --retune, then stored; else the stored one, as it is."""
    from concurrent.futures import ProcessPoolExecutor

    from seqtool.core.rnn import tuning

    path = tuning.store_path(os.environ)
    machine = tuning.machine_id()
    stored, note = tuning.read_store(path, machine)
    if path is None:
        return {"path": None, "measured": False, "note": note, "values": {}}
    if stored and not config.retune:
        return {"path": str(path), "measured": False, "note": note, "values": stored}
    _check_writable(path, "retune" if config.retune else "compile")  # before ~8 s of timing
    why = "again: --retune" if stored else f"once: {note}"
    events.say(f"measuring this machine's matrix products ({why}) ...")
    try:
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            result = pool.submit(tune_job).result()
    except Exception as err:  # the measurement's process failed: say so, keep the defaults
        raise RunError(f"measuring this machine's matrix products failed: "
                       f"{type(err).__name__}: {err}; the defaults stay in force "
                       f"({tuning.FILE_VARIABLE}=none skips the measurement)") from err
    try:
        tuning.write_store(path, machine, result["tuning"],
                           {"seconds": result["seconds"], "timings_us": result["timings_us"]})
    except OSError as err:
        raise InputError("retune" if config.retune else "compile",
                         f"cannot keep the tuning in {path}: {err.strerror or err}; set "
                         f"{tuning.FILE_VARIABLE} to a file that can be written") from None
    return {"path": str(path), "measured": True, "seconds": result["seconds"],
            "note": "measured now", "values": result["tuning"]}


def _check_writable(path: Path, key: str) -> None:
    """InputError unless the tuning can be kept at ``path`` (its folder made if need be)."""
    from seqtool.core.rnn import tuning

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK) or path.is_dir():
            raise PermissionError(13, "not writable" if not path.is_dir() else "a folder")
    except OSError as err:
        what = ("a file is in the way of its folder"
                if isinstance(err, (FileExistsError, NotADirectoryError)) else err.strerror)
        raise InputError(key, f"cannot keep the tuning in {path}: {what}; set "
                         f"{tuning.FILE_VARIABLE} to a file that can be written") from None


def run(config: CompileConfig, events: Events, run_dir: Path | None = None) -> CompileReport:
    """This machine's tuning (measured once), then every (cell, dtype) of ``config``
    compiled (or loaded), ``config.jobs`` at a time (default: one per core)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from seqtool.core.rnn.cells import cell_names

    cells = config.cells or cell_names()
    jobs = [(cell, dtype) for cell in cells for dtype in config.dtypes]
    workers = min(config.jobs or os.cpu_count() or 1, len(jobs))
    # spawn: each worker starts from a clean numba (no state forked from this process);
    # one job per process, so that no job finds another's kernels in memory
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    tuned = tune(config, events, context)
    if events.on_start is not None:
        events.on_start(jobs)
    done: dict[tuple[str, str], dict[str, Any]] = {}
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(compile_job, cell, dtype): (cell, dtype) for cell, dtype in jobs}
        for future in as_completed(futures):
            cell, dtype = futures[future]
            try:
                row = future.result()
            except Exception as err:  # a kernel that does not compile: say which
                raise RunError(f"compiling the {cell} kernels ({dtype}) failed: "
                               f"{type(err).__name__}: {err}") from err
            done[(cell, dtype)] = row
            if events.on_result is not None:
                events.on_result(row)
    return CompileReport(jobs=workers, seconds=time.perf_counter() - started,
                         kernels=[done[job] for job in jobs], tuning=tuned)


def metrics(report: dict[str, Any]) -> dict[str, Any]:
    return {"seconds": report["seconds"],
            "compiled": sum(1 for row in report["kernels"] if not row["loaded"])}
