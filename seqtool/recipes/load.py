"""Reading a recipe: YAML with line numbers, ``extends``, ``--set``, and validation of every
key against the command's Config before anything runs.

    name: cells-on-sentiment
    command: train-rnn
    params: {task: classify, data: sentiment, hidden: 64, epochs: 5}
    sweep:
      grid: {cell: [rnn, gru, lstm], lr: [0.01, 0.003]}
      seeds: [0, 1, 2]

or ``steps:``, a list of ``{name, command, params}`` run in order, instead of command and
params. ``extends: base.yaml`` (relative to the recipe) merges a base recipe under this one:
mappings merge key by key, anything else is replaced. Every error names the file, the line
and the key path: ``recipes/x.yaml:4: params.hidden: must be a whole number ≥ 1, got 0``.

YAML is read with ``yaml.safe_load``'s loader: a tag that would build a Python object is
refused, with its line.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqtool.core.errors import InputError

TOP_KEYS = ("name", "description", "command", "params", "sweep", "steps", "extends")
SWEEP_KEYS = ("grid", "seeds")
STEP_KEYS = ("name", "command", "params", "sweep")
# Parameters that name files: a relative path is looked up next to the recipe first.
PATH_PARAMS = ("data", "val")


def config_classes() -> dict[str, type]:
    """The commands a recipe can run, and the Config each one's params must fit."""
    from seqtool.commands import recipe_commands

    return {name: command.config for name, command in recipe_commands().items()}


# A later step can use an earlier one's run directory: run: "{run:train}".
RUN_REF = re.compile(r"\{run:([^}]+)\}")


def run_references(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(param, step name) for every ``{run:NAME}`` in the params' text values."""
    return [(key, name) for key, value in params.items() if isinstance(value, str)
            for name in RUN_REF.findall(value)]


class RecipeError(InputError):
    """A recipe that cannot run: the message starts with ``file:line: key.path:``."""

    def __init__(self, where: str, path: str, message: str):
        self.where, self.path = where, path
        super().__init__(None, f"{where}: {path + ': ' if path else ''}{message}")


# ---------------------------------------------------------------------------------------
# YAML with the line of every key


def _lines(node: yaml.Node, prefix: str, source: str, out: dict[str, str]) -> None:
    """out[key path] = "file:line" for every mapping key and sequence item under node."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            out[path] = f"{source}:{key_node.start_mark.line + 1}"
            _lines(value_node, path, source, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = f"{prefix}[{i}]"
            out[path] = f"{source}:{item.start_mark.line + 1}"
            _lines(item, path, source, out)


def read_yaml(path: Path, label: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The mapping in ``path`` and where each key stands. ``label`` names the file in
    messages (as the user wrote it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("recipe", f"names the file '{label}', which does not exist") from None
    except IsADirectoryError:
        raise InputError("recipe", f"names '{label}', which is a directory") from None
    except UnicodeDecodeError as err:
        raise InputError("recipe", f"'{label}' is not UTF-8 text ({err.reason} at byte "
                         f"{err.start})") from None
    except OSError as err:
        raise InputError("recipe", f"cannot read '{label}': {err.strerror}") from None
    from seqtool.io.documents import DocumentError, load_yaml

    try:
        data, node = load_yaml(text)
    except DocumentError as err:
        line = f":{err.line}" if err.line else ""
        raise InputError(None, f"{label}{line}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        if "constructor for the tag" in problem:
            problem += " (recipes are read with yaml.safe_load: no Python objects)"
        raise InputError(None, f"{label}{line}: {' '.join(problem.split())}") from None
    if data is None:
        raise InputError(None, f"{label}: is empty; a recipe needs command and params, or steps")
    if not isinstance(data, dict):
        raise InputError(None, f"{label}:1: a recipe is a mapping of keys (name, command, "
                         f"params, ...), not a {type(data).__name__}")
    where: dict[str, str] = {"": f"{label}:1"}
    _lines(node, "", label, where)
    return data, where


# ---------------------------------------------------------------------------------------
# extends and --set


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_with_bases(path: Path, label: str, seen: tuple[Path, ...] = ()
                     ) -> tuple[dict[str, Any], dict[str, str]]:
    data, where = read_yaml(path, label)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data, where
    if not isinstance(base_name, str):
        raise RecipeError(where["extends"], "extends", "must name a recipe file")
    base_path = (path.parent / base_name).resolve()
    if base_path in seen + (path.resolve(),):
        raise RecipeError(where["extends"], "extends", f"'{base_name}' extends itself (a cycle)")
    base_label = str(Path(label).parent / base_name)
    if not base_path.exists():
        raise RecipeError(where["extends"], "extends",
                          f"names '{base_label}', which does not exist")
    base, base_where = _load_with_bases(base_path, base_label, seen + (path.resolve(),))
    merged = _merge(base, data)
    return merged, {**base_where, **where}


def apply_set(data: dict[str, Any], where: dict[str, str], assignment: str) -> None:
    """``params.hidden=128``: the value is read as YAML (so 128 is a number, [1, 2] a list)."""
    if "=" not in assignment:
        raise InputError("set", f"is '{assignment}'; expected KEY.PATH=VALUE such as "
                         "params.hidden=128")
    path, _, text = assignment.partition("=")
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise InputError("set", f"is '{assignment}'; the key path is empty")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    target: Any = data
    for key in keys[:-1]:
        target = _child(target, key, assignment)
    last = keys[-1]
    if INDEXED.fullmatch(last):
        raise InputError("set", f"is '{assignment}'; set a key inside a list item, such as "
                         "steps[0].params.epochs=1")
    target[last] = value
    where[".".join(keys)] = f"--set {'.'.join(keys)}"


INDEXED = re.compile(r"(\w[\w-]*)\[(\d+)\]")


def _child(target: dict, key: str, assignment: str) -> Any:
    """target[key] for a --set path, made a mapping if need be; ``steps[1]`` indexes a list."""
    match = INDEXED.fullmatch(key)
    if match:
        items = target.get(match.group(1))
        index = int(match.group(2))
        if not isinstance(items, list) or index >= len(items):
            raise InputError("set", f"is '{assignment}'; the recipe has no {key}")
        return items[index]
    if not isinstance(target.get(key), dict):
        target[key] = {}
    return target[key]


# ---------------------------------------------------------------------------------------
# The recipe


@dataclass
class Step:
    """One command with its params (and, optionally, a sweep)."""

    name: str
    command: str
    params: dict[str, Any]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: list[Any] | None = None
    prefix: str = ""  # key path of this step in the recipe: "" or "steps[1]."


@dataclass
class Recipe:
    name: str
    path: Path
    steps: list[Step]
    where: dict[str, str]
    description: str = ""


def _at(where: dict[str, str], path: str) -> str:
    """The location of ``path`` or of its nearest ancestor that has one."""
    while path:
        if path in where:
            return where[path]
        path = path.rsplit(".", 1)[0] if "." in path else ""
    return where.get("", "recipe")


def _unknown(where: dict[str, str], path: str, key: str, known: tuple[str, ...] | list[str],
             what: str) -> RecipeError:
    hint = difflib.get_close_matches(str(key), list(known), n=1)
    maybe = f"did you mean '{hint[0]}'? " if hint else ""
    return RecipeError(_at(where, path), path,
                       f"is not {what}; {maybe}known: {', '.join(known)}")


# A recipe param besides the Config's: the run's --explain, for commands that have one.
EXPLAIN = "explain"


def explains(command: str) -> bool:
    """Whether ``command`` has an --explain (and so takes ``explain`` in a recipe)."""
    from seqtool.commands import get_command

    return bool(get_command(command).explain)


def load_recipe(path: str | Path, sets: list[str] | None = None,
                explain: bool = False) -> Recipe:
    """Read, merge and check a recipe (nothing runs). ``explain``: every run whose command
    has an --explain gets ``explain: true`` (``seqtool run --explain``)."""
    label = str(path)
    data, where = _load_with_bases(Path(path), label)
    for assignment in sets or []:
        apply_set(data, where, assignment)
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown(where, str(key), key, TOP_KEYS, "a recipe key")
    name = str(data.get("name") or Path(path).stem)
    _check_name(name, where)
    if "steps" in data:
        if "command" in data or "params" in data or "sweep" in data:
            clash = next(k for k in ("command", "params", "sweep") if k in data)
            raise RecipeError(_at(where, clash), clash, "goes inside each step when the "
                              "recipe has steps")
        raw_steps = data["steps"]
        if not isinstance(raw_steps, list) or not raw_steps:
            raise RecipeError(_at(where, "steps"), "steps", "must be a non-empty list of "
                              "{name, command, params}")
        steps = [_step(item, where, f"steps[{i}]", f"step{i + 1}")
                 for i, item in enumerate(raw_steps)]
    else:
        steps = [_step(data, where, "", name)]
    names = [s.name for s in steps]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise RecipeError(_at(where, "steps"), "steps", f"names the step '{twice}' twice")
    if explain:
        for step in steps:
            if explains(step.command):
                step.params[EXPLAIN] = True
    recipe = Recipe(name, Path(path), steps, where, str(data.get("description") or ""))
    validate(recipe)
    return recipe


def _check_name(name: str, where: dict[str, str]) -> None:
    """A recipe's name becomes the folder runs/<name>: it must stay one plain folder name
    (no '/', no '..', not hidden), so that no recipe writes outside where it runs."""
    if (not name or name in (".", "..") or name.startswith(".") or "/" in name
            or "\\" in name or any(ord(c) < 32 for c in name)):
        raise RecipeError(_at(where, "name"), "name",
                          f"is {name!r}; a recipe's name is a folder name under runs/ (letters, "
                          "digits, '-', '_', '.'; no '/' and not starting with '.')")


def _step(item: Any, where: dict[str, str], prefix: str, default_name: str) -> Step:
    dot = f"{prefix}." if prefix else ""
    if not isinstance(item, dict):
        raise RecipeError(_at(where, prefix), prefix, "must be a mapping with command and params")
    if prefix:
        for key in item:
            if key not in STEP_KEYS:
                raise _unknown(where, f"{dot}{key}", key, STEP_KEYS, "a step key")
    commands = config_classes()
    command = item.get("command")
    if command is None:
        raise RecipeError(_at(where, prefix), f"{dot}command".lstrip("."),
                          f"is missing; choose one of {', '.join(commands)}")
    if not isinstance(command, str):
        raise RecipeError(_at(where, f"{dot}command"), f"{dot}command",
                          f"is a {type(command).__name__}; expected one command name, one of "
                          f"{', '.join(commands)}")
    if command not in commands:
        raise _unknown(where, f"{dot}command", command, list(commands), "a command recipes run")
    params = item.get("params") or {}
    if not isinstance(params, dict):
        raise RecipeError(_at(where, f"{dot}params"), f"{dot}params",
                          "must be a mapping of the command's parameters")
    grid, seeds = {}, None
    sweep = item.get("sweep")
    if sweep is not None:
        if not isinstance(sweep, dict):
            raise RecipeError(_at(where, f"{dot}sweep"), f"{dot}sweep",
                              "must be a mapping with grid and/or seeds")
        for key in sweep:
            if key not in SWEEP_KEYS:
                raise _unknown(where, f"{dot}sweep.{key}", key, SWEEP_KEYS, "a sweep key")
        grid = sweep.get("grid") or {}
        if not isinstance(grid, dict):
            raise RecipeError(_at(where, f"{dot}sweep.grid"), f"{dot}sweep.grid",
                              "must map parameters to lists of values")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise RecipeError(_at(where, f"{dot}sweep.grid.{key}"), f"{dot}sweep.grid.{key}",
                                  "must be a non-empty list of values")
        seeds = sweep.get("seeds")
        if seeds is not None and (not isinstance(seeds, list) or not seeds):
            raise RecipeError(_at(where, f"{dot}sweep.seeds"), f"{dot}sweep.seeds",
                              "must be a non-empty list of seeds")
    return Step(str(item.get("name") or default_name), command, dict(params), dict(grid),
                seeds, dot)


# ---------------------------------------------------------------------------------------
# Validation: every run's params through the command's Config


def resolve_paths(params: dict[str, Any], recipe_dir: Path) -> dict[str, Any]:
    """A relative data path that exists next to the recipe is taken from there."""
    out = dict(params)
    for key in PATH_PARAMS:
        value = out.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            beside = recipe_dir / value
            if beside.exists() and not Path(value).exists():
                out[key] = str(beside)
    return out


def check_params(recipe: Recipe, step: Step, params: dict[str, Any],
                 grid_keys: tuple[str, ...] = ()) -> Any:
    """The Config of one run, or a RecipeError at the line of the offending key."""
    from seqtool.config import parameter_names

    from seqtool.commands import get_command

    config_cls = config_classes()[step.command]
    names = parameter_names(config_cls) + ([EXPLAIN] if explains(step.command) else [])
    dot = step.prefix
    for key in params:
        if key not in names:
            path = (f"{dot}sweep.grid.{key}" if key in grid_keys else f"{dot}params.{key}")
            raise _unknown(recipe.where, path, key, names, f"a parameter of {step.command}")
    settings = {k: v for k, v in params.items() if k != EXPLAIN}
    try:
        config = config_cls.from_mapping(resolve_paths(settings, recipe.path.parent))
        if explain_asked(params):
            command = get_command(step.command)
            if command.check_explain:
                command.call("check_explain", config)
    except InputError as err:
        key = err.key or ""
        path = (f"{dot}sweep.grid.{key}" if key in grid_keys else f"{dot}params.{key}"
                if key else f"{dot}params")
        raise RecipeError(_at(recipe.where, path), path, err.message) from None
    if step.command == "train-rnn":
        _check_data(recipe, step, config)
    return config


def explain_asked(params: dict[str, Any]) -> bool:
    """A run's ``explain`` param: true, false or absent (InputError for anything else)."""
    value = params.get(EXPLAIN, False)
    if not isinstance(value, bool):
        raise InputError(EXPLAIN, f"is {value!r}; expected true or false")
    return value


def _check_data(recipe: Recipe, step: Step, config: Any) -> None:
    """A missing data file fails the recipe now, not after the first runs."""
    from seqtool.core.data import BUILTIN_TASKS

    for key in PATH_PARAMS:
        value = getattr(config, key)
        if value and value not in BUILTIN_TASKS and not Path(value).exists():
            path = f"{step.prefix}params.{key}"
            raise RecipeError(_at(recipe.where, path), path,
                              f"names the file '{value}', which does not exist")


def validate(recipe: Recipe) -> None:
    """Every run that the recipe expands to builds its Config, and every ``{run:NAME}``
    names an earlier step that has exactly one run."""
    from seqtool.recipes.expand import expand_step

    earlier: dict[str, int] = {}
    for step in recipe.steps:
        runs = expand_step(step)
        for key, name in run_references(step.params):
            path = f"{step.prefix}params.{key}"
            if name not in earlier:
                raise RecipeError(_at(recipe.where, path), path,
                                  f"refers to {{run:{name}}}, but no earlier step is named "
                                  f"'{name}'" + (f" (earlier: {', '.join(earlier)})" if earlier else ""))
            if earlier[name] != 1:
                raise RecipeError(_at(recipe.where, path), path,
                                  f"refers to {{run:{name}}}, a step with {earlier[name]} runs; "
                                  "it must have exactly one")
        for run in runs:
            check_params(recipe, step, run.params, tuple(step.grid))
        earlier[step.name] = len(runs)
