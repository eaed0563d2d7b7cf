"""`seqtool bptt`: the Config's problem (or one per cell) analysed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seqtool.commands.events import Events
from seqtool.config import BpttConfig
from seqtool.core import parallel
from seqtool.core.errors import InputError

EXPLAIN_MAX_STEPS = 6
# The Jacobian chains of the analysis (2·T·S³ multiply-adds): a bound of some seconds
MAX_CHAIN_FLOPS = 2e11
# Each step's share of ∂L/∂W_hh is in the report (T × G·H × H numbers): 4·10⁶ of them are
# about 100 MB of JSON and seconds to write; more is no longer something to read
MAX_SHARE_NUMBERS = 4_000_000
# --check runs four forward passes of T steps per parameter entry, one step at a time
MAX_CHECK_STEPS = 5_000_000
# The rest of the report (the problem, the states, the outputs and every gradient): as many
# numbers again at most; an --input-size or --output-size of 10⁷ had made hundreds of MB of
# JSON and, at 10⁸, more memory than the machine has
MAX_REPORT_NUMBERS = 4_000_000


def _steps(config: BpttConfig) -> int:
    return config.steps if config.generated else config.x.shape[0]


def check_explain(config: BpttConfig) -> None:
    """--explain writes the vanilla chain rule out, which is readable for a few steps only."""
    if config.cell != ("rnn",):
        raise InputError("explain", "writes the vanilla RNN's chain rule; it needs --cell rnn "
                         f"(got --cell {','.join(config.cell)})")
    T = _steps(config)
    if T > EXPLAIN_MAX_STEPS:
        raise InputError("explain", f"writes the chain rule for T ≤ {EXPLAIN_MAX_STEPS}; this "
                         f"problem has T = {T} (use --steps {EXPLAIN_MAX_STEPS} or fewer)")


def _bytes_for(T: int, D: int, H: int, O: int, G: int) -> float:
    """What the analysis of one generated problem holds, in float64, generously: the
    weights, the inputs, targets and outputs, the states and gradients per step, each
    step's share of ∂L/∂W_hh (T × G·H × H) and the Jacobian chains, about six copies of
    each (gradients, the truncated run, the finite-difference check)."""
    words = (T * D + G * H * D + G * H * H + O * H + 2 * T * O + T * (G + 2) * H
             + T * G * H * H + H * H)
    return 8.0 * 6 * words


def _report_numbers(T: int, D: int, H: int, O: int, G: int) -> int:
    """The numbers of the report besides the shares: the problem and the gradients (the
    weights, twice), the inputs, the targets and the outputs, the states."""
    weights = G * H * D + G * H * H + O * H + G * H + O + H
    return 2 * weights + T * D + 2 * T * O + T * H


def check_sizes(config: BpttConfig) -> None:
    """A generated problem too large for this machine's memory is refused before anything
    is allocated, naming the flag that makes it so."""
    if not config.generated:
        return  # a given problem is in memory already
    from seqtool.core.rnn.cells import get_cell
    from seqtool.core.resources import check_memory

    G = max(len(get_cell(cell).gates) for cell in config.cell)
    sizes = {"steps": config.steps, "input_size": config.input_size, "hidden": config.hidden,
             "output_size": config.output_size}
    defaults = {"steps": 10, "input_size": 3, "hidden": 4, "output_size": 2}

    def culprit(count) -> str:
        """The flag whose return to its default shrinks count(T, D, H, O, G) the most."""
        def without(flag: str) -> float:
            shrunk = {**sizes, flag: min(sizes[flag], defaults[flag])}
            return count(shrunk["steps"], shrunk["input_size"], shrunk["hidden"],
                         shrunk["output_size"], G)
        return min(sizes, key=without)

    shown = (f"the analysis (T = {config.steps}, D = {config.input_size}, H = {config.hidden}, "
             f"O = {config.output_size})")
    check_memory(culprit(_bytes_for), _bytes_for(*sizes.values(), G), shown)
    numbers = _report_numbers(*sizes.values(), G)
    if numbers > MAX_REPORT_NUMBERS:
        flag = culprit(_report_numbers)
        raise InputError(flag, f"makes the report of {shown} hold {numbers:,} numbers (the "
                         f"problem, its outputs and every gradient); at most "
                         f"{MAX_REPORT_NUMBERS:,}: a smaller --{flag.replace('_', '-')}")
    # the chain ∂h_T/∂h_k multiplies a state Jacobian (S × S, S = H or 2H) per step
    S = max(get_cell(cell).state_size(config.hidden) for cell in config.cell)
    flops = 2.0 * config.steps * S ** 3
    if flops > MAX_CHAIN_FLOPS:
        flag = "hidden" if S ** 2 > config.steps else "steps"
        raise InputError(flag, f"makes {shown} multiply {config.steps:,} Jacobians of "
                         f"{S} × {S}, about {flops:.1e} operations (minutes to hours); at "
                         f"most {MAX_CHAIN_FLOPS:.0e}: a smaller --hidden or --steps")
    if config.check:
        check_cost(config, G, shown)
    shares = config.steps * G * config.hidden ** 2
    if shares > MAX_SHARE_NUMBERS:
        flag = "hidden" if G * config.hidden ** 2 > config.steps else "steps"
        raise InputError(flag, f"makes the report of {shown} hold {shares:,} numbers (each "
                         f"step's share of ∂L/∂W_hh, T × G·H × H); at most "
                         f"{MAX_SHARE_NUMBERS:,}: a smaller --hidden or --steps")


def check_cost(config: BpttConfig, G: int, shown: str) -> None:
    """--check's forward steps, 4 · P · T (P parameter entries), within MAX_CHECK_STEPS."""
    H, D, O = config.hidden, config.input_size, config.output_size
    P = G * H * (D + H + 2) + O * (H + 1)
    steps = 4 * P * config.steps
    if steps > MAX_CHECK_STEPS:
        raise InputError("check", f"on {shown} runs four forward passes of T steps per "
                         f"parameter entry ({P:,} entries): {steps:,} steps; at most "
                         f"{MAX_CHECK_STEPS:,}: a smaller --hidden, --input-size or --steps")


def run(config: BpttConfig, events: Events, run_dir: Path | None = None) -> Any:
    """The config's problem (given, or generated per cell) analysed; several cells side by
    side."""
    check_sizes(config)
    from seqtool.core.rnn.bptt import bptt_problems, run_bptt  # numba loads here

    threads = parallel.resolve_threads(config.threads)  # refused before any compile
    for cell in config.cell:  # the analysis runs in float64; a compile is announced here
        events.warm_up(cell, "float64", truncated=config.truncate is not None)
    problems = bptt_problems(
        config.cell, config.given(), steps=config.steps, input_size=config.input_size,
        hidden=config.hidden, output_size=config.output_size, seed=config.seed,
        radius=config.radius, activation=config.activation, loss=config.loss,
        target_at=config.target_at, forget_bias=config.forget_bias)
    progress = events.on_progress
    on_check = None if progress is None else (
        lambda cell, done, total: progress(f"checking {cell}", done, total))
    with parallel.threads(threads):  # the check's entries across cores
        return run_bptt(problems, truncate=config.truncate, check=config.check,
                        generated=config.generated, jacobians=config.jacobian,
                        on_check=on_check)


def failure(report: Any) -> str | None:
    """A finite-difference check that did not pass fails the run (after its output)."""
    check = report.check
    if check is None or check["passed"]:
        return None
    return (f"finite-difference check failed: max relative error "
            f"{check['max_relative_error']:.3g} > {check['tolerance']:g}")


def metrics(report: dict[str, Any]) -> dict[str, Any]:
    """Per cell: the loss, the Jacobian norms' rate per step, ‖∂h_T/∂h_0‖, the check."""
    out = {}
    parts = report.get("reports") or [report]
    for part in parts:
        prefix = f"{part['cell']}." if "reports" in report else ""
        out[prefix + "loss"] = part["loss"]
        out[prefix + "rate_per_step"] = part["jacobian_norms"]["rate_per_step"]
        out[prefix + "dh_T/dh_0"] = part["jacobian_norms"]["norms"][0]
        if "check" in part:
            out[prefix + "check_max_error"] = part["check"]["max_relative_error"]
    return out
