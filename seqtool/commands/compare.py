"""`seqtool compare-selectors`: every selector on the Config's inputs, measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqtool.commands.events import Events
from seqtool.config import COST_SIZES, CompareConfig
from seqtool.core.compare import CompareReport, compare_report
from seqtool.core.resources import check_memory


def memory_needed(config: CompareConfig) -> tuple[float, str, str]:
    """(bytes, flag, what) of the largest part of the run: the --cost keys and values
    (n × d, float64, with the scores and the selections' temporaries), or the --learn
    embeddings and batch."""
    parts = [(0.0, "dim", "the run")]
    if config.cost:
        n = max(config.sizes)
        flag = "dim" if config.dim * max(COST_SIZES) > n * 64 else "sizes"
        parts.append((8.0 * 6 * n * (config.dim + 2), flag, f"--cost at n = {n}, d = {config.dim}"))
    if config.learn:
        from seqtool.core.recall import EVAL_SEQUENCES

        words = config.vocab * config.dim + 32 * 2 * config.pairs * config.dim + config.dim ** 2
        # the held-out set of N sequences: its keys drawn from (N, V) random numbers and their
        # argsort, its logits against every token with two softmax temporaries (N, V) each,
        # and its embedded keys, values and projected keys (N, pairs, d) each
        N = EVAL_SEQUENCES
        held_out = 5 * N * config.vocab + 3 * N * config.pairs * config.dim
        flag = "dim" if config.dim >= config.vocab else "vocab"
        parts.append((8.0 * (12 * words + held_out), flag, f"--learn at d = {config.dim}"))
    return max(parts)


def run(config: CompareConfig, events: Events, run_dir: Path | None = None) -> CompareReport:
    needed, flag, what = memory_needed(config)
    check_memory(flag, needed, what)
    return compare_report(**config.report_arguments(), on_learn_step=events.on_learn_step)


def metrics(report: dict[str, Any]) -> dict[str, Any]:
    """Each selector's gradient norm at the (first) query, and its accuracy after --learn."""
    out = {}
    for row in report["rows"]:
        norm = row["grad_norm_query"]
        out[f"{row['selector']}.grad_norm_query"] = norm[0] if isinstance(norm, list) else norm
    for row in report.get("learning", []):
        out[f"{row['selector']}.accuracy"] = row["accuracy"]
    return out
