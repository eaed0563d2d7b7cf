"""`seqtool report DIR -o report.html`: one self-contained HTML page of a run or a sweep.

What DIR may be, tried in this order:

    summary.json   a sweep (`seqtool run`): the summary table, the recipe's plot, and a
                   section per run (its config.json, metrics and its command's plot drawn
                   from its report.json)
    report.json    one run of a sweep: its config.json, metrics and plot
    metrics.jsonl  a train-rnn run directory (train-rnn --out): the report its plot needs
                   is rebuilt from metrics.jsonl (history), config.yaml (config) and
                   model.json (spec, best epoch)

Each plot is its command's ``Command.plot`` called on the report dict, as ``--plot`` draws
it; a command without one, or whose plot module cannot be imported, gets a note on the page
instead. The page is built by ``seqtool.render.plots.report`` and written here, atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqtool import __version__
from seqtool.commands.events import Events
from seqtool.config import ReportConfig
from seqtool.core.errors import InputError
from seqtool.core.report import Report

NOT_A_RUN = "no report.json, summary.json or metrics.jsonl"


@dataclass
class PageReport(Report):
    """What `seqtool report` wrote: the page, what it shows, and the plots it left out."""

    page: Path
    source: Path
    kind: str  # "sweep" or "run"
    command: str  # the run's command ("run" for a sweep)
    recipe: str | None
    runs: int
    plots: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"page": str(self.page), "source": str(self.source), "kind": self.kind,
                "command": self.command, "recipe": self.recipe, "runs": self.runs,
                "plots": self.plots, "notes": self.notes}

    def rows(self) -> list[dict[str, Any]]:
        data = self.to_dict()
        data["notes"] = "; ".join(self.notes)
        return [data]


# ---------------------------------------------------------------------------------------
# Reading a directory


def _read_json(path: Path, what: str) -> Any:
    from seqtool.io.documents import DocumentError, load_json

    try:
        return load_json(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, DocumentError) as err:
        detail = " ".join(str(err).split())[:120]
        raise InputError(None, f"{path} is not a readable {what}: {detail}") from None


def _read_mapping(path: Path, what: str) -> dict[str, Any]:
    data = _read_json(path, what)
    if not isinstance(data, dict):
        raise InputError(None, f"{path} is not a {what}: it holds no JSON object")
    return data


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    from seqtool.io.documents import DocumentError, load_yaml

    try:
        data, _ = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, DocumentError, UnicodeDecodeError) as err:
        detail = " ".join(str(err).split())[:120]
        raise InputError(None, f"{path} is not a readable config: {detail}") from None
    if not isinstance(data, dict):
        raise InputError(None, f"{path} is not a train-rnn config: it holds no mapping")
    return data


def _read_history(path: Path) -> list[dict[str, Any]]:
    from seqtool.io.documents import DocumentError, load_json

    history = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = load_json(line)
        except (ValueError, DocumentError):
            raise InputError(None, f"{path}:{number} is not a JSON line") from None
        if not isinstance(record, dict):
            raise InputError(None, f"{path}:{number} is not an epoch record (a JSON object)")
        history.append(record)
    return history


def stop_reason(config: dict[str, Any], position: Any, history: list[dict[str, Any]]) -> str:
    """Why the run stopped, as far as its files tell: its step or epoch budget spent
    (completed), a checkpoint mid-epoch (interrupted), patience run out (early_stopped);
    else "unfinished" (killed, or diverged: the files do not say which)."""
    position = position if isinstance(position, dict) else {}

    def whole(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    steps, epochs = whole(config.get("steps")), whole(config.get("epochs"))
    patience = whole(config.get("patience"))
    if steps is not None and (whole(position.get("global_step")) or 0) >= steps:
        return "completed"
    if whole(position.get("step_in_epoch")):
        return "interrupted"
    if patience is not None and (whole(position.get("bad_epochs")) or 0) >= patience:
        return "early_stopped"
    if steps is None and epochs is not None and len(history) >= epochs:
        return "completed"
    return "unfinished"


def train_report(directory: Path) -> dict[str, Any]:
    """The dict a train-rnn report's ``to_dict()`` gives, as far as a run directory made by
    train-rnn --out holds it: history (metrics.jsonl), config (config.yaml), spec, best
    epoch and its validation numbers (model.json), the position (last.json), why it stopped
    (:func:`stop_reason`). What the directory cannot tell (the data sizes, the order-blind
    baseline) is None or empty."""
    history = _read_history(directory / "metrics.jsonl")
    config = _read_yaml(directory / "config.yaml") if (directory / "config.yaml").exists() \
        else {}
    model = _read_mapping(directory / "model.json", "model.json") \
        if (directory / "model.json").exists() else {}
    last = _read_mapping(directory / "last.json", "last.json") \
        if (directory / "last.json").exists() else {}
    spec = model.get("spec") if isinstance(model.get("spec"), dict) else None
    final = history[-1] if history else {}
    parameters = None
    arrays = model.get("arrays")
    if isinstance(arrays, dict):
        try:
            import math

            parameters = sum(math.prod(shape) for shape, _ in arrays.values())
        except (TypeError, ValueError):
            parameters = None
    return {
        "out": str(directory), "data": model.get("data", config.get("data")),
        "task": (spec or {}).get("task", config.get("task")),
        "cell": (spec or {}).get("cell", config.get("cell")), "spec": spec,
        "config": config, "train_size": None, "val_size": None, "parameters": parameters,
        "stop_reason": stop_reason(last.get("config") if isinstance(last.get("config"), dict)
                                   else config, last.get("position"), history),
        "message": "", "epochs_run": len(history),
        "best_epoch": model.get("epoch"), "best_val": model.get("val"),
        "final_val": {k[4:]: v for k, v in final.items() if k.startswith("val_")} or None,
        "baseline": {}, "history": history, "resumed_from": None,
        "position": last.get("position") if isinstance(last.get("position"), dict) else None,
    }


# ---------------------------------------------------------------------------------------
# Plots and metrics through the registry


def draw(command_name: str, data: dict[str, Any]) -> tuple[Any, str | None, bool]:
    """(figure, None, _), or (None, the note that stands for it, whether the note is about
    this run alone): the command's plot module is not there (about every run of that
    command), or drawing failed on this report. A command without a plot draws nothing and
    says nothing."""
    from seqtool.commands import get_command

    try:
        command = get_command(command_name)
    except InputError:
        return None, f"{command_name} is not a command of this seqtool: no plot", False
    if not command.plot:
        return None, None, False
    module = command.plot.partition(":")[0]
    try:
        return command.call("plot", data), None, False
    except ModuleNotFoundError as err:
        if err.name and (module == err.name or module.startswith(err.name + ".")):
            return None, (f"no {command_name} plot: {module} is not in this seqtool yet"), False
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        detail = " ".join(str(err).split())[:160]
        return None, (f"the {command_name} plot could not be drawn from this report "
                      f"({type(err).__name__}: {detail})"), True


def metrics(command_name: str, data: dict[str, Any]) -> dict[str, Any]:
    """The scalars a recipe summary keeps of this report (the command's ``metrics``)."""
    from seqtool.recipes.execute import metrics_of

    try:
        return metrics_of(command_name, data)
    except (InputError, KeyError, TypeError, ValueError, IndexError, AttributeError):
        return {}


# ---------------------------------------------------------------------------------------
# The pages


def _recorded_run(directory: Path, config_file: dict[str, Any]) -> dict[str, Any]:
    """A sweep's run folder as the page shows it: config.json, status.json, report.json."""
    command = str(config_file.get("command") or "?")
    params = config_file.get("params") if isinstance(config_file.get("params"), dict) else {}
    status_path = directory / "status.json"
    status = _read_mapping(status_path, "status.json") if status_path.exists() else {}
    run = {"command": command, "params": params, "status": status.get("status", "done"),
           "error": status.get("error"), "seconds": status.get("seconds"), "notes": []}
    report_path = directory / "report.json"
    if report_path.exists():
        data = _read_mapping(report_path, "report.json")
        run["metrics"] = metrics(command, data)
        if isinstance(data.get("history"), list):
            run["history"] = [r for r in data["history"] if isinstance(r, dict)]
        run["figure"], missing, alone = draw(command, data)
        if missing:
            run["notes"].append(missing)
            run["alone"] = alone
    elif run["status"] == "done":
        run["notes"].append("report.json is missing: nothing to draw")
        run["alone"] = True
    return run


def _number(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def checked_summary(summary: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """summary.json with only the groups and runs of the shapes `seqtool run` writes (a
    damaged or hand-made one loses the rest), and how many were left out."""
    groups, dropped = [], 0
    raw_groups = summary.get("summary") if isinstance(summary.get("summary"), list) else []
    for g in raw_groups:
        if not (isinstance(g, dict) and isinstance(g.get("point"), dict)
                and isinstance(g.get("metrics"), dict)):
            dropped += 1
            continue
        stats = {}
        for name, v in g["metrics"].items():
            if isinstance(v, dict) and _number(v.get("mean")):
                std = v.get("std") if _number(v.get("std")) else 0.0
                stats[str(name)] = {"mean": v["mean"], "std": std, "n": _count(v.get("n")) or 1}
        groups.append({"step": str(g.get("step", "")), "command": str(g.get("command", "")),
                       "point": g["point"], "runs": _count(g.get("runs")),
                       "failed": _count(g.get("failed")), "metrics": stats})
    runs = []
    raw_runs = summary.get("runs") if isinstance(summary.get("runs"), list) else []
    for r in raw_runs:
        run_id = r.get("id") if isinstance(r, dict) else None
        # a run's folder is one name inside the sweep: never a path that leaves it
        if not isinstance(run_id, str) or not run_id or Path(run_id).name != run_id \
                or run_id in (".", ".."):
            dropped += 1
            continue
        runs.append(r)
    return {**summary, "summary": groups, "runs": runs}, dropped


def sweep(directory: Path) -> tuple[str, PageReport]:
    from seqtool.render.plots.report import sweep_page

    summary, dropped = checked_summary(
        _read_mapping(directory / "summary.json", "sweep summary (summary.json)"))
    runs, notes, plots = [], [], 0
    if dropped:
        notes.append(f"summary.json: {dropped} entr{'y' if dropped == 1 else 'ies'} of an "
                     "unknown shape left out")
    for result in summary["runs"]:
        run_id = result["id"]
        folder = directory / run_id
        config_path = folder / "config.json"
        config_file = _read_mapping(config_path, "config.json") if config_path.exists() else \
            {"command": result.get("command"), "params": result.get("params") or {}}
        run = _recorded_run(folder, config_file)
        point = result.get("point") if isinstance(result.get("point"), dict) else {}
        run.update(id=run_id, step=result.get("step"), point=point,
                   seed=result.get("seed"), status=result.get("status", run["status"]),
                   error=result.get("error") or run.get("error"),
                   seconds=result.get("seconds", run.get("seconds")))
        if isinstance(result.get("metrics"), dict) and result["metrics"]:
            run["metrics"] = result["metrics"]
        plots += run.get("figure") is not None
        notes += [f"{run_id}: {t}" if run.get("alone") else t for t in run["notes"]]
        if not run.get("alone"):  # said once at the top of the page
            run["notes"] = []
        runs.append(run)
    recipe_figure = None
    if summary.get("summary"):
        recipe_figure, missing, _ = draw("run", summary)
        notes += [f"the recipe: {missing}"] if missing else []
        plots += recipe_figure is not None and bool(recipe_figure.axes)
    name = summary.get("recipe") or directory.name
    done = sum(r.get("status") == "done" for r in runs)
    description = (f"Sweep directory {directory}: recipe {name}, {len(runs)} runs "
                   f"({done} done, {len(runs) - done} failed). seqtool {__version__}.")
    page = sweep_page(summary, recipe_figure, runs, description, _distinct(notes))
    return page, PageReport(Path(), directory, "sweep", "run", str(name), len(runs), plots,
                            _distinct(notes))


def single(directory: Path) -> tuple[str, PageReport]:
    """One run: a sweep's run folder (report.json) or a train-rnn --out (metrics.jsonl)."""
    from seqtool.render.plots.report import run_page

    if (directory / "report.json").exists():
        config_path = directory / "config.json"
        if not config_path.exists():
            raise InputError(None, f"{directory} holds report.json but no config.json naming "
                             "the command that made it")
        run = _recorded_run(directory, _read_mapping(config_path, "config.json"))
        where = f"Run directory {directory} (a run of a sweep)"
    else:
        data = train_report(directory)
        run = {"command": "train-rnn", "params": data["config"],
               "metrics": metrics("train-rnn", data), "history": data["history"],
               "notes": [], "caption": "seqtool train-rnn --plot, drawn from this run's "
               "metrics.jsonl, config.yaml and model.json"}
        if data["spec"] is None:
            run["notes"].append("model.json is missing: no epoch finished with a checkpoint")
        run["figure"], missing, _ = draw("train-rnn", data)
        if missing:
            run["notes"].append(missing)
        where = f"train-rnn run directory {directory}"
        if data["task"]:
            where += (f": {data['task']} on {data['data']}, {data['cell']} cell, "
                      f"{data['epochs_run']} epochs")
            if data["best_epoch"] is not None:
                where += f", best epoch {data['best_epoch']}"
    title = f"seqtool report: {directory.name or directory} ({run['command']})"
    notes = list(run.pop("notes"))
    page = run_page(title, f"{where}. seqtool {__version__}.", run, notes)
    plots = int(run.get("figure") is not None)
    return page, PageReport(Path(), directory, "run", run["command"], None, 1, plots, notes)


def _distinct(notes: list[str]) -> list[str]:
    return list(dict.fromkeys(notes))


def default_page(directory: Path) -> Path:
    return directory / "report.html"


def run(config: ReportConfig, events: Events, run_dir: Path | None = None) -> PageReport:
    """Read the directory, draw every plot, write the page (atomically)."""
    from dataclasses import replace

    from seqtool.io.checkpoint import write_atomic
    from seqtool.render.plots import check_plot_path

    directory = Path(config.run)
    if not directory.exists():
        raise InputError(None, f"{directory} is not a run or sweep directory: it does not exist")
    if not directory.is_dir():
        raise InputError(None, f"{directory} is not a run or sweep directory: it is a file")
    target = Path(config.out) if config.out else default_page(directory)
    target = check_plot_path(str(target), "out")  # a folder that exists; matplotlib there
    if (directory / "summary.json").exists():
        page, report = sweep(directory)
    elif (directory / "report.json").exists() or (directory / "metrics.jsonl").exists():
        page, report = single(directory)
    else:
        raise InputError(None, f"{directory} is not a run or sweep directory: {NOT_A_RUN}")
    write_atomic(target, page)
    return replace(report, page=target)


__all__ = ["PageReport", "run", "train_report"]
