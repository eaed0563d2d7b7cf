"""A recipe's runs: each step's params, times its sweep grid, times its seeds.

Every run has an id that names it in the output directory (``003-cell=gru-lr=0.01-seed=1``)
and a hash of what it computes (command and params), so that a rerun with the same
``--out`` skips the runs already done with exactly these settings.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from seqtool.recipes.load import Recipe, Step


@dataclass
class RunSpec:
    """One run, as plain data (it travels to Dask workers)."""

    index: int
    id: str
    step: str
    command: str
    params: dict[str, Any]
    point: dict[str, Any] = field(default_factory=dict)  # the grid values of this run
    seed: Any = None
    hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_hash(command: str, params: dict[str, Any]) -> str:
    text = json.dumps({"command": command, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(value))[:40]


def expand_step(step: Step) -> list[RunSpec]:
    """The step's runs in grid order (the last grid key varies fastest), seeds innermost;
    their index, id and hash are set by expand, once the data paths are resolved."""
    keys = list(step.grid)
    points = [dict(zip(keys, values)) for values in itertools.product(*step.grid.values())]
    seeds = step.seeds if step.seeds is not None else [None]
    runs = []
    for point in points:
        for seed in seeds:
            params = {**step.params, **point}
            if seed is not None:
                params["seed"] = seed
            runs.append(RunSpec(0, "", step.name, step.command, params, point, seed, ""))
    return runs


def expand(recipe: Recipe) -> list[RunSpec]:
    """Every run of the recipe, numbered in the order the steps and sweeps give."""
    from seqtool.recipes.load import resolve_paths

    runs = []
    for step in recipe.steps:
        runs.extend(expand_step(step))
    for run in runs:  # data files named next to the recipe are read from there
        run.params = resolve_paths(run.params, recipe.path.parent)
        run.hash = run_hash(run.command, run.params)
    several_steps = len(recipe.steps) > 1
    for i, run in enumerate(runs):
        parts = [f"{i + 1:03d}"]
        if several_steps:
            parts.append(_slug(run.step))
        parts += [f"{k}={_slug(v)}" for k, v in run.point.items()]
        if run.seed is not None:
            parts.append(f"seed={_slug(run.seed)}")
        run.index, run.id = i, "-".join(parts)
    return runs
