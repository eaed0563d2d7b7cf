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
    from seqtool.recipes.load import config_classes

    config_cls = config_classes()[command]
    if command == "train-rnn":
        from dataclasses import replace

        from seqtool.training_run import run_train

        config = replace(config_cls.from_mapping(params), out=str(run_dir))
        report = run_train(config, replace_run=True)  # the recipe owns this directory
        if report.stop_reason == "diverged":
            raise SeqtoolError(f"training diverged: {report.message}")
        return report.to_dict()
    config = config_cls.from_mapping(params)
    if command in ("predict", "sample", "evaluate"):
        from seqtool import using_runs

        if command == "predict":
            return {"rows": using_runs.predict_texts(config, list(config.text))}
        if command == "sample":
            return using_runs.sample_text(config)
        return using_runs.evaluate_run(config)
    if command == "attend":
        from seqtool.core.attention import attend_report

        return attend_report(**config.report_arguments()).to_dict()
    if command == "compare-selectors":
        from seqtool.core.compare import compare_report

        return compare_report(**config.report_arguments()).to_dict()
    from seqtool.core.rnn.bptt import run_bptt

    report = run_bptt(config)
    data = report.to_dict()
    if report.check is not None and not report.check["passed"]:
        raise SeqtoolError(f"finite-difference check failed: max relative error "
                           f"{report.check['max_relative_error']:.3g}")
    return data


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def metrics_of(command: str, report: dict[str, Any]) -> dict[str, float]:
    """The scalar results a sweep summary averages over seeds."""
    out: dict[str, Any] = {}
    if command == "train-rnn":
        for key, value in (report.get("best_val") or {}).items():
            out[f"val_{key}"] = value
        out["epochs"] = report.get("epochs_run")
        for key, value in (report.get("baseline") or {}).items():
            out[f"baseline_{key}"] = value
    elif command == "bptt":
        parts = report.get("reports") or [report]
        for part in parts:
            prefix = f"{part['cell']}." if "reports" in report else ""
            out[prefix + "loss"] = part["loss"]
            out[prefix + "rate_per_step"] = part["jacobian_norms"]["rate_per_step"]
            out[prefix + "dh_T/dh_0"] = part["jacobian_norms"]["norms"][0]
            if "check" in part:
                out[prefix + "check_max_error"] = part["check"]["max_relative_error"]
    elif command == "evaluate":
        out.update({k: v for k, v in report.items() if k not in ("run", "data", "task")})
    elif command == "sample":
        out["logprob"] = report["logprob"]
        out["tokens"] = len(report["tokens"])
    elif command == "predict":
        rows = report["rows"]
        out["texts"] = len(rows)
        if rows and "probabilities" in rows[0]:
            out["mean_confidence"] = sum(max(r["probabilities"].values()) for r in rows) / len(rows)
    elif command == "attend":
        for j, value in enumerate(report["outputs"][0]):
            out[f"output[{j}]"] = value
        out["max_weight"] = max(report["weights"][0])
    else:  # compare-selectors
        for row in report["rows"]:
            out[f"{row['selector']}.grad_norm_query"] = row["grad_norm_query"][0] \
                if isinstance(row["grad_norm_query"], list) else row["grad_norm_query"]
        for row in report.get("learning", []):
            out[f"{row['selector']}.accuracy"] = row["accuracy"]
    return {k: v for k, v in ((k, _number(v)) for k, v in out.items()) if v is not None}


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
