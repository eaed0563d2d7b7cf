"""One run of a recipe: build the command's Config, call the same function the CLI calls,
and keep the numbers a summary compares.

:func:`execute_run` takes and returns plain data, so it runs the same in this process and
on a Dask worker. A run that fails returns its error as one line; it never raises.
"""

from __future__ import annotations

import math
import time
import traceback
from pathlib import Path
from typing import Any

from seqtool.core.errors import SeqtoolError


def _run_command(command: str, params: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The command's report as data: its Config from ``params``, its run function, and its
    failure check, all from the command registry (as the CLI calls them)."""
    from seqtool.commands import get_command
    from seqtool.commands.events import Events

    from seqtool.recipes.load import EXPLAIN, explain_asked

    cmd = get_command(command)
    explain = explain_asked(params)
    config = cmd.config.from_mapping({k: v for k, v in params.items() if k != EXPLAIN})
    options = {EXPLAIN: explain} if cmd.explain_runs else {}
    report = cmd.call("run", config, Events(), run_dir, **options)
    failed = cmd.call("failure", report) if cmd.failure else None
    if failed:
        raise SeqtoolError(failed)
    out = report.to_dict()
    if explain:  # what --explain adds to the command's JSON
        out["explanation"] = cmd.call("explain", report, EXPLAIN_PRECISION)
    return out


EXPLAIN_PRECISION = 4  # significant digits of a run's explanation (the CLI's default)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def metrics_of(command: str, report: dict[str, Any]) -> dict[str, float]:
    """The scalar results a sweep summary averages over seeds (the command says which)."""
    from seqtool.commands import get_command

    cmd = get_command(command)
    out = cmd.call("metrics", report) if cmd.metrics else {}
    return {k: v for k, v in ((k, _number(v)) for k, v in out.items()) if v is not None}


def execute_in_worker(spec: dict[str, Any], out: str) -> dict[str, Any]:
    """execute_run in a worker of a Dask cluster, whose cores the other workers use
    already: a first compile there starts no helper process of its own
    (seqtool.core.rnn.warmup)."""
    import os

    from seqtool.core.rnn.warmup import HELPER_VARIABLE

    os.environ[HELPER_VARIABLE] = "0"
    return execute_run(spec, out)


def execute_run(spec: dict[str, Any], out: str) -> dict[str, Any]:
    """Run ``spec`` (a RunSpec as a dict) with its directory under ``out``."""
    run_dir = Path(out) / spec["id"]
    started = time.perf_counter()
    result = {"id": spec["id"], "step": spec["step"], "command": spec["command"],
              "params": spec["params"], "point": spec["point"], "seed": spec["seed"],
              "hash": spec["hash"]}
    try:
        report = _run_command(spec["command"], spec["params"], run_dir)
        result.update(status="done", metrics=metrics_of(spec["command"], report),
                      report=report)
    except KeyboardInterrupt:
        raise
    except SeqtoolError as err:
        result.update(status="failed", error=" ".join(str(err).split()))
    except Exception as err:  # a bug in one run must not take the others down
        last = traceback.extract_tb(err.__traceback__)[-1]
        result.update(status="failed", error=f"internal error: {type(err).__name__}: {err} "
                      f"({Path(last.filename).name}:{last.lineno})")
    result["seconds"] = time.perf_counter() - started
    return result
