"""Running a recipe's runs: in this process, on a local Dask cluster (``jobs``), or on an
existing one (``scheduler``); skipping runs already done; summarising over seeds.

The output directory (``runs/<name>/`` by default):
    <run id>/config.json   the command, its params and their hash
    <run id>/report.json   the command's report (as its --format json gives it)
    <run id>/status.json   done or failed (with the error line), the hash, seconds
    <run id>/...           a training run's own files (config.yaml, model.npz, ...)
    summary.json, summary.csv   every run, and mean ± std over seeds per grid point

A failing run is marked failed and the others go on. A rerun with the same directory skips
every run whose status.json says done with the same hash, and reruns the rest.
"""

from __future__ import annotations

import io
import json
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from seqtool.core.errors import InputError
from seqtool.core.report import Report
from seqtool.io.checkpoint import write_atomic
from seqtool.io.output import finite, write_csv
from seqtool.recipes.execute import execute_in_worker, execute_run
from seqtool.recipes.expand import RunSpec, expand
from seqtool.recipes.load import Recipe


def _dump(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def previous_result(out: Path, run: RunSpec) -> dict[str, Any] | None:
    """The stored result of ``run`` if it completed with the same hash, else None."""
    try:
        status = json.loads((out / run.id / "status.json").read_text())
        if status.get("status") != "done" or status.get("hash") != run.hash:
            return None
        report = json.loads((out / run.id / "report.json").read_text())
    except (OSError, ValueError):
        return None
    from seqtool.recipes.execute import metrics_of

    return {**run.to_dict(), "status": "done", "skipped": True, "report": report,
            "metrics": metrics_of(run.command, report), "seconds": status.get("seconds", 0.0)}


def store(out: Path, result: dict[str, Any]) -> None:
    """Write a run's three files (the client does it, wherever the run ran)."""
    run_dir = out / result["id"]
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.json", _dump({"command": result["command"],
                                                 "params": result["params"],
                                                 "hash": result["hash"]}))
    if result["status"] == "done":
        write_atomic(run_dir / "report.json", _dump(finite(result["report"])))
    status = {"status": result["status"], "hash": result["hash"],
              "seconds": result.get("seconds")}
    if result["status"] == "failed":
        status["error"] = result["error"]
    write_atomic(run_dir / "status.json", _dump(status))


# ---------------------------------------------------------------------------------------
# Executors


def run_local(todo: list[RunSpec], out: Path, on_result: Callable[[dict], None]) -> None:
    for run in todo:
        on_result(execute_run(run.to_dict(), str(out)))


def _check_reachable(scheduler: str) -> None:
    """A tcp:// scheduler whose port refuses connections is an error at once (Dask's client
    would retry for its whole timeout first)."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return  # Dask says what is wrong with it
    if parts.scheme != "tcp" or not host or port is None:
        return
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise InputError("scheduler", f"is {scheduler}, which did not answer: {reason}") from None


def run_dask(todo: list[RunSpec], out: Path, on_result: Callable[[dict], None], *,
             jobs: int | None = None, scheduler: str | None = None) -> None:
    """Submit every run to a Dask cluster: a LocalCluster of ``jobs`` worker processes
    (one thread each), or the existing one at ``scheduler``."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        flag = "scheduler" if scheduler else "jobs"
        raise InputError(flag, "needs Dask, the cluster extra: pip install -e '.[cluster]' in a "
                         "checkout (pip install 'seqtool[cluster]' from an index)") from None
    cluster = None
    try:
        if scheduler:
            _check_reachable(scheduler)
            try:
                client = Client(scheduler, timeout="5s")
            except (OSError, TimeoutError, ValueError) as err:
                raise InputError("scheduler", f"is {scheduler}, which did not answer: "
                                 f"{' '.join(str(err).split())[:200]}") from None
        else:
            # silence_logs: on a busy machine a worker's last heartbeat can reach a
            # scheduler that is closing, and Dask logs that with a traceback on stderr; a
            # run's own failure still comes back through its future
            # each worker's runs split their batches over its share of the cores (a run's
            # own threads: still wins), so that jobs × threads do not oversubscribe them
            from seqtool.core.parallel import THREADS_VARIABLE, available_cores

            share = max(1, available_cores() // max(1, jobs or available_cores()))
            # no dashboard, and the scheduler's HTTP server (Dask starts one for its
            # health routes even then) on a free port of this machine only: on its default
            # port, 8787 on every interface, a second sweep or a notebook's cluster made
            # Dask warn on stderr that the port was taken
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.CRITICAL,
                                   scheduler_kwargs={"dashboard": False,
                                                     "dashboard_address": "127.0.0.1:0"},
                                   env={THREADS_VARIABLE: str(share)})
            client = Client(cluster)
        with client:
            futures = [client.submit(execute_in_worker, run.to_dict(), str(out.resolve()),
                                     pure=False,
                                     key=f"seqtool-{run.id}-{run.hash}") for run in todo]
            for future in as_completed(futures):
                on_result(future.result())
    finally:
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------
# Summary


@dataclass
class RecipeReport(Report):
    """Every run's result and the summary over seeds; ``to_dict`` is summary.json and
    ``rows`` summary.csv."""

    recipe: str
    out: Path
    results: list[dict[str, Any]]
    groups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["status"] == "failed"]

    def to_dict(self) -> dict[str, Any]:
        out = finite({
            "recipe": self.recipe, "out": str(self.out),
            "runs": [{k: v for k, v in r.items() if k != "report"} for r in self.results],
            "summary": self.groups,
            "done": sum(r["status"] == "done" for r in self.results),
            "skipped": sum(bool(r.get("skipped")) for r in self.results),
            "failed": len(self.failed),
        })
        explanation = self.explanation()  # runs with explain: true (or run --explain)
        if explanation:
            out["explanation"] = explanation
        return out

    def explanation(self) -> list[str]:
        """Each run's explanation (its report's "explanation", made when it ran with
        ``explain: true``), under a line naming the run."""
        lines: list[str] = []
        for result in self.results:
            explained = (result.get("report") or {}).get("explanation")
            if explained:
                if lines:
                    lines.append("")
                lines += [f"── {result['id']} ({result['command']}) ──", *explained]
        return lines

    def columns(self) -> list[str]:
        return summary_table(self.groups)[0]

    def rows(self) -> list[dict[str, Any]]:
        header, rows = summary_table(self.groups)
        return [dict(zip(header, row)) for row in rows]


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One group per (step, grid point): for every metric, mean and std over the seeds
    (std with n − 1; 0 for a single run), and how many runs are done and failed."""
    groups: dict[str, dict[str, Any]] = {}
    for r in results:
        key = json.dumps([r["step"], r["point"]], sort_keys=True, default=str)
        g = groups.setdefault(key, {"step": r["step"], "command": r["command"],
                                    "point": r["point"], "runs": 0, "failed": 0, "values": {}})
        g["runs"] += 1
        if r["status"] != "done":
            g["failed"] += 1
            continue
        for name, value in r.get("metrics", {}).items():
            g["values"].setdefault(name, []).append(value)
    out = []
    for g in groups.values():
        metrics = {}
        for name, values in g.pop("values").items():
            metrics[name] = {"mean": statistics.fmean(values),
                             "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                             "n": len(values)}
        out.append({**g, "metrics": metrics})
    return out


def summary_table(groups: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """One row per group: its grid values, run counts, and metric_mean, metric_std."""
    point_keys = sorted({k for g in groups for k in g["point"]})
    metric_names = sorted({m for g in groups for m in g["metrics"]})
    header = ["step", *point_keys, "runs", "failed"]
    for m in metric_names:
        header += [f"{m}_mean", f"{m}_std"]
    rows = []
    for g in groups:
        row = [g["step"], *[g["point"].get(k, "") for k in point_keys], g["runs"], g["failed"]]
        for m in metric_names:
            stat = g["metrics"].get(m)
            row += [stat["mean"], stat["std"]] if stat else ["", ""]
        rows.append(row)
    return header, rows


def summary_csv(groups: list[dict[str, Any]]) -> str:
    """summary.csv: :func:`summary_table` as CSV."""
    buf = io.StringIO()
    write_csv(*summary_table(groups), buf)
    return buf.getvalue()


def with_run_dirs(run: RunSpec, dirs: dict[str, str]) -> RunSpec:
    """``{run:NAME}`` in a text param becomes the directory of step NAME's run."""
    from dataclasses import replace

    from seqtool.recipes.load import RUN_REF

    params = {k: RUN_REF.sub(lambda m: dirs[m.group(1)], v) if isinstance(v, str) else v
              for k, v in run.params.items()}
    return replace(run, params=params)


def default_out(recipe: Recipe) -> Path:
    return Path("runs") / recipe.name


def explain_runs(report: RecipeReport, precision: int = 4) -> list[str]:
    """`seqtool run --explain`: the runs' explanations (each made with the precision its
    run was explained in)."""
    return report.explanation()


def run_recipe(recipe: Recipe, out: Path | None = None, *, jobs: int | None = None,
               scheduler: str | None = None,
               on_result: Callable[[dict[str, Any]], None] | None = None,
               runs: list[RunSpec] | None = None) -> RecipeReport:
    """Run every run of ``recipe`` that is not already done in ``out``; write the files.
    ``runs``: expand(recipe), if the caller has it already."""
    out = out or default_out(recipe)
    out.mkdir(parents=True, exist_ok=True)
    runs = expand(recipe) if runs is None else runs
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for run in runs:
        previous = previous_result(out, run)
        if previous is not None:
            results[run.id] = previous
            if on_result:
                on_result(previous)
        else:
            todo.append(run)

    def collect(result: dict[str, Any]) -> None:
        store(out, result)
        results[result["id"]] = result
        if on_result:
            on_result(result)

    # Steps run in order: a later step may read what an earlier one wrote.
    first_dir = {}
    for run in runs:
        first_dir.setdefault(run.step, str(out / run.id))
    steps = list(dict.fromkeys(run.step for run in todo))
    for step in steps:
        batch = [with_run_dirs(run, first_dir) for run in todo if run.step == step]
        if jobs is None and scheduler is None:
            run_local(batch, out, collect)
        else:
            run_dask(batch, out, collect, jobs=jobs, scheduler=scheduler)
    ordered = [results[run.id] for run in runs]
    report = RecipeReport(recipe.name, out, ordered, summarise(ordered))
    write_atomic(out / "summary.json", _dump(report.to_dict()))
    write_atomic(out / "summary.csv", summary_csv(report.groups))
    return report
