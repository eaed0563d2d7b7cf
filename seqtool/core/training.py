"""The training loop of `seqtool train-rnn`: batches, steps, evaluation, early stopping.

Everything random is a function of (seed, epoch, step): the order of epoch e is
``default_rng([seed, 2, e]).permutation(n)`` and the dropout of its step s draws from
``default_rng([seed, 3, e, s])``. So a run resumed from a checkpoint taken after any step
(weights, optimiser state and the position (epoch, step)) continues with exactly the bits
an uninterrupted run would have used, and ends with bit-identical weights.

The loop touches no file and no terminal: it reports through :class:`Hooks`, and the caller
saves checkpoints, draws progress bars and decides when to stop (``should_stop``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from seqtool.core.buffers import Workspace
from seqtool.core.global_attention import BASELINE, REINFORCE, next_baseline
from seqtool.core.losses import cross_entropy_each
from seqtool.core.models import (
    INFERENCE_BATCH, ModelSpec, backward, family_of, forward, loss_of,
)
from seqtool.core.optim import clip_grad_norm, global_norm, make_optimizer
from seqtool.core.report import finite
from seqtool.core.rnn.lengths import longest_first

STOP_REASONS = ("completed", "early_stopped", "interrupted", "diverged")


@dataclass(frozen=True)
class TrainSettings:
    """How to train (the model's shape is the ModelSpec's)."""

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip_norm: float | None = None
    batch_size: int = 32
    epochs: int = 10
    steps: int | None = None  # total optimiser steps; overrides epochs when given
    patience: int | None = None  # epochs without a better validation loss before stopping
    seed: int = 0


@dataclass
class Position:
    """Where a run is: epochs completed, steps into the current epoch, steps in all."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_val_loss: float = math.inf
    best_epoch: int | None = None
    bad_epochs: int = 0  # epochs since the best one
    history: list[dict[str, Any]] = field(default_factory=list)
    # the current epoch's running sums, so that an epoch interrupted and resumed reports
    # the same train loss as an uninterrupted one
    running: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step,
                "best_val_loss": None if math.isinf(self.best_val_loss) else self.best_val_loss,
                "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "history": self.history, "running": self.running}

    @classmethod
    def from_dict(cls, d: Any) -> "Position":
        """The position a checkpoint stored, checked field by field (a forged or damaged
        file's is refused with ValueError naming the field, never half-used)."""
        return cls(**_checked_position(d))


COUNT_LIMIT = 10**15  # no real run comes near it


def _checked_position(d: Any) -> dict[str, Any]:
    def count(field: str, low: int = 0) -> int:
        value = d.get(field, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= COUNT_LIMIT:
            raise ValueError(f"position.{field} {value!r}; expected a whole number ≥ {low}")
        return value

    def number(value: Any) -> bool:
        return (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                  and math.isfinite(value)))

    if not isinstance(d, dict):
        raise ValueError("a position that is not an object")
    for field in ("epoch", "step_in_epoch", "global_step"):
        if field not in d:
            raise ValueError(f"no position.{field}")
    epoch, step, total = count("epoch"), count("step_in_epoch"), count("global_step")
    if step > total:
        raise ValueError(f"position.step_in_epoch {step}, beyond position.global_step {total}")
    history = d.get("history", [])
    if not isinstance(history, list) or len(history) != epoch:
        raise ValueError(f"position.history that does not list the {epoch} epochs run")
    for i, record in enumerate(history):
        if (not isinstance(record, dict) or record.get("epoch") != i + 1
                or not all(isinstance(k, str) and number(v) for k, v in record.items())):
            raise ValueError(f"position.history[{i}] that is not epoch {i + 1}'s numbers")
    best = d.get("best_val_loss")
    if not number(best):
        raise ValueError(f"position.best_val_loss {best!r}; expected a finite number or null")
    best_epoch = d.get("best_epoch")
    if best_epoch is not None and (isinstance(best_epoch, bool) or not isinstance(best_epoch, int)
                                   or not 1 <= best_epoch <= epoch):
        raise ValueError(f"position.best_epoch {best_epoch!r}; expected one of the epochs "
                         f"1..{epoch} or null")
    running = d.get("running", {})
    if not isinstance(running, dict) or not all(isinstance(k, str) and number(v) and v is not None
                                                for k, v in running.items()):
        raise ValueError("position.running that is not an object of finite numbers")
    return {"epoch": epoch, "step_in_epoch": step, "global_step": total,
            "best_val_loss": math.inf if best is None else float(best), "best_epoch": best_epoch,
            "bad_epochs": count("bad_epochs"), "history": history, "running": dict(running)}


@dataclass
class Hooks:
    """Callbacks of the loop; every one is optional."""

    on_step: Callable[[Position, float], None] | None = None  # after each step, with its loss
    on_epoch: Callable[[Position, dict[str, Any], bool], None] | None = None  # record, improved
    should_stop: Callable[[], bool] | None = None  # checked after each step (Ctrl-C)


@dataclass
class Evaluation:
    loss: float
    metric: float  # accuracy, perplexity or mse (see metric_name)
    metric_name: str
    count: int
    # seq2seq: exact (greedy outputs equal to their targets) and attention_entropy (nats)
    extra: dict[str, float] = field(default_factory=dict)
    # nested numbers for a picture, kept out of ``extra``: an epoch's record (built from
    # ``extra``) holds numbers only, as --resume checks. seq2seq: "exact_by_length"
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, self.metric_name: self.metric, **self.extra,
                "count": self.count}


def metric_name(spec: ModelSpec) -> str:
    """The task's metric; a seq2seq model's is the teacher-forced token accuracy."""
    return {"classify": "accuracy", "tag": "accuracy", "lm": "perplexity",
            "regress": "mse", "seq2seq": "accuracy"}[spec.task]


def _metric(spec: ModelSpec, loss_sum: float, correct: int, count: int) -> float:
    if count == 0:
        return math.nan
    if spec.task == "lm":
        return math.exp(min(loss_sum / count, 700.0))
    if spec.task == "regress":
        return loss_sum / count
    return correct / count


def batches(n: int, batch_size: int, order: np.ndarray | None = None,
            lengths: np.ndarray | None = None):
    """Index arrays of consecutive batches of ``order`` (default 0..n−1); with the
    sequences' ``lengths`` (n,), each batch's indices are sorted longest first, the order in
    which the recurrent layers skip the most padding (seqtool.core.rnn.lengths). A batch
    holds the same sequences either way, and its losses are order-blind."""
    order = np.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        chunk = order[start:start + batch_size]
        yield chunk if lengths is None else chunk[longest_first(lengths[chunk])]


def evaluate(spec: ModelSpec, params: dict[str, np.ndarray], dataset: Any,
             batch_size: int = INFERENCE_BATCH) -> Evaluation:
    """Mean loss and metric of ``params`` on every sequence of ``dataset`` (no dropout)."""
    from seqtool.core.data import make_batch

    family = family_of(spec)
    if family is not None:
        return family.evaluate(spec, params, dataset, batch_size)
    loss_sum, correct, count = 0.0, 0, 0
    for idx in batches(len(dataset), batch_size, lengths=dataset.lengths):
        batch = make_batch(dataset, idx)
        inputs = _cast(spec, batch.inputs, params)
        fwd = forward(spec, params, inputs, batch.lengths)
        loss = loss_of(spec, fwd.outputs, batch.targets, batch.lengths)
        loss_sum += loss.sum
        correct += loss.correct
        count += loss.count
    mean = loss_sum / count if count else math.nan
    return Evaluation(mean, _metric(spec, loss_sum, correct, count), metric_name(spec), count)


def _cast(spec: ModelSpec, inputs: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    return inputs if spec.tokens_in else inputs.astype(params["head.weight"].dtype, copy=False)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 2, epoch]).permutation(n)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


@dataclass
class TrainResult:
    params: dict[str, np.ndarray]
    optimizer: Any
    position: Position
    stop_reason: str
    message: str = ""


def draws(spec: ModelSpec) -> bool:
    """Whether a training step draws random numbers: dropout, or attention that samples
    (Gumbel noise, REINFORCE's choices)."""
    return spec.dropout > 0 or (spec.uses_attention and spec.selector in ("gumbel", "reinforce"))


def train(spec: ModelSpec, settings: TrainSettings, params: dict[str, np.ndarray],
          train_data: Any, val_data: Any, *, hooks: Hooks | None = None,
          position: Position | None = None, optimizer: Any = None) -> TrainResult:
    """Train ``params`` in place from ``position`` (a fresh run when None) with ``optimizer``
    (a new one of ``settings.optimizer`` when None; pass one to resume its state).

    Stops when the epochs (or steps) are done, when the validation loss has not improved
    for ``patience`` epochs, when ``hooks.should_stop()`` says so (after a whole step), or
    when a loss or gradient is not finite (that step's update is not applied).
    """
    from seqtool.core.data import make_batch

    hooks = hooks or Hooks()
    pos = position or Position()
    opt = prepare_optimizer(optimizer or make_optimizer(settings.optimizer, params,
                                                        settings.lr, settings.weight_decay))
    n = len(train_data)
    per_epoch = steps_per_epoch(n, settings.batch_size)
    total_steps = settings.steps if settings.steps is not None else settings.epochs * per_epoch

    # the layers' large arrays are lent again every step (no page faults for fresh ones);
    # made here, in the thread that trains, which is the only one that may use it
    workspace = Workspace()
    # an epoch interrupted after its last step still owes its record: finish it first
    while pos.global_step < total_steps or pos.step_in_epoch > 0:
        order = epoch_order(settings.seed, pos.epoch, n)
        chunks = list(batches(n, settings.batch_size, order, train_data.lengths))
        started = time.perf_counter() - pos.running.get("seconds", 0.0)
        while pos.step_in_epoch < len(chunks) and pos.global_step < total_steps:
            batch = make_batch(train_data, chunks[pos.step_in_epoch])
            rng = (np.random.default_rng([settings.seed, 3, pos.epoch, pos.step_in_epoch])
                   if draws(spec) else None)  # seeding costs ~7 µs: only when used
            loss, norm = train_step(spec, settings, params, opt, batch, rng, workspace)
            if not (math.isfinite(loss.value) and math.isfinite(norm)):
                what = "loss" if not math.isfinite(loss.value) else "gradient norm"
                value = loss.value if what == "loss" else norm
                return TrainResult(params, opt, pos, "diverged",
                                   f"the {what} became {value} at epoch {pos.epoch + 1}, step "
                                   f"{pos.step_in_epoch + 1}; try a smaller --lr or --clip-norm")
            r = pos.running
            r["loss_sum"] = r.get("loss_sum", 0.0) + loss.sum
            r["correct"] = r.get("correct", 0) + loss.correct
            r["count"] = r.get("count", 0) + loss.count
            r["norm_sum"] = r.get("norm_sum", 0.0) + norm
            if loss.score_norm is not None:
                r["score_norm_sum"] = r.get("score_norm_sum", 0.0) + loss.score_norm
            r["steps"] = r.get("steps", 0) + 1
            r["tokens"] = r.get("tokens", 0) + int(batch.lengths.sum())
            r["seconds"] = time.perf_counter() - started
            pos.step_in_epoch += 1
            pos.global_step += 1
            if hooks.on_step:
                hooks.on_step(pos, loss.value)
            if hooks.should_stop and hooks.should_stop():
                return TrainResult(params, opt, pos, "interrupted")
        # the epoch is over (or the step budget ends inside it)
        record = _epoch_record(spec, settings, params, val_data, pos)
        if record["val_loss"] is None:  # not finite (NaN or ±inf, written as null)
            return TrainResult(params, opt, pos, "diverged",
                               f"the validation loss is not finite after epoch {pos.epoch + 1} "
                               "(the model's outputs overflowed on the validation data); the "
                               "epoch was not recorded")
        improved = record["val_loss"] < pos.best_val_loss
        if improved:
            pos.best_val_loss, pos.best_epoch, pos.bad_epochs = record["val_loss"], pos.epoch + 1, 0
        else:
            pos.bad_epochs += 1
        pos.history.append(record)
        pos.epoch += 1
        pos.step_in_epoch = 0
        pos.running = {}
        if hooks.on_epoch:
            hooks.on_epoch(pos, record, improved)
        if settings.patience is not None and pos.bad_epochs >= settings.patience:
            return TrainResult(params, opt, pos, "early_stopped",
                               f"no better validation loss for {settings.patience} epochs; "
                               f"best at epoch {pos.best_epoch}")
    return TrainResult(params, opt, pos, "completed")


def train_step(spec: ModelSpec, settings: TrainSettings, params: dict[str, np.ndarray],
               optimizer: Any, batch: Any, rng: np.random.Generator | None,
               workspace: Any = None) -> tuple[Any, float]:
    """One step on ``batch``: forward, loss, backward, gradient norm, clipping, update.
    ``workspace`` lends the recurrent layers' arrays (valid until the next step).

    Returns the loss and the gradient norm before clipping; when either is not finite the
    update is not applied (the caller stops the run). An attending model's loss carries
    the norm of the gradient that reached its scoring parameters (``score_norm``)."""
    # a diverging run overflows here; it is caught below (not finite: stop, nothing applied),
    # so NumPy's RuntimeWarnings would only repeat it as noise on the user's terminal
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss, grads, updates = batch_gradients(spec, params, batch, rng, workspace)
        if grads is None:
            return loss, math.nan
        norm = global_norm(grads)
    if not math.isfinite(norm):
        return loss, norm
    loss.score_norm = scoring_norm(spec, grads)
    if settings.clip_norm is not None:
        clip_grad_norm(grads, settings.clip_norm, total=norm)
    optimizer.step(grads)
    for name, value in updates.items():  # buffers (REINFORCE's baseline) move after the step
        params[name][...] = value
    return loss, norm


def batch_gradients(spec: ModelSpec, params: dict[str, np.ndarray], batch: Any,
                    rng: np.random.Generator | None, workspace: Any = None
                    ) -> tuple[Any, dict[str, np.ndarray] | None, dict[str, Any]]:
    """(loss, ∂L/∂ every weight or None when the loss is not finite, buffer updates) of one
    training batch, for every task."""
    family = family_of(spec)
    if family is not None:
        return family.batch_gradients(spec, params, batch, rng, workspace)
    inputs = _cast(spec, batch.inputs, params)
    fwd = forward(spec, params, inputs, batch.lengths, dropout_rng=rng,
                  fold_embedding=True, workspace=workspace)
    loss = loss_of(spec, fwd.outputs, batch.targets, batch.lengths)
    if not math.isfinite(loss.value):
        return loss, None, {}
    updates = {}
    if spec.pool == "attention" and spec.selector == REINFORCE:
        # each sequence's choice is rewarded by its own loss, less the running baseline
        per_sequence = cross_entropy_each(fwd.outputs, batch.targets)
        baseline = float(params[BASELINE])
        fwd.pooled_at.advantage = (per_sequence - baseline) / max(loss.count, 1)
        updates[BASELINE] = next_baseline(baseline, per_sequence, loss.count)
    grads = backward(spec, params, fwd, inputs, batch.lengths, loss.d_outputs)
    return loss, grads, updates


def scoring_parameters(spec: ModelSpec, params: dict[str, Any]) -> list[str]:
    """The attention's scoring parameters (query, W_a, ...): the ones a zero-gradient
    selector never moves. None for a dot-product seq2seq score, which has none."""
    if not spec.uses_attention:
        return []
    return [name for name in params if name.startswith("attention.") and name != BASELINE]


def scoring_norm(spec: ModelSpec, grads: dict[str, np.ndarray]) -> float | None:
    """‖∂L/∂θ_score‖ over the scoring parameters, or None for a model without them."""
    names = scoring_parameters(spec, grads)
    if not names:
        return None
    return math.sqrt(sum(float(np.vdot(grads[n], grads[n])) for n in names))


def prepare_optimizer(optimizer: Any) -> Any:
    """The loop's optimiser settings: Adam's one-pass update kernel."""
    if hasattr(optimizer, "fused"):
        optimizer.fused = True
    return optimizer


def _epoch_record(spec: ModelSpec, settings: TrainSettings, params: dict[str, np.ndarray],
                  val_data: Any, pos: Position) -> dict[str, Any]:
    r = pos.running
    count = r.get("count", 0)
    name = metric_name(spec)
    val = evaluate(spec, params, val_data)
    seconds = r.get("seconds", 0.0)
    steps = max(r.get("steps", 1), 1)
    record = {
        "epoch": pos.epoch + 1, "step": pos.global_step,
        "train_loss": r.get("loss_sum", 0.0) / count if count else math.nan,
        f"train_{name}": _metric(spec, r.get("loss_sum", 0.0), r.get("correct", 0), count),
        "val_loss": val.loss, f"val_{name}": val.metric,
        **{f"val_{k}": v for k, v in val.extra.items()},
        "grad_norm": r.get("norm_sum", 0.0) / steps,
        **({"score_grad_norm": r["score_norm_sum"] / steps} if "score_norm_sum" in r else {}),
        "tokens_per_s": r.get("tokens", 0) / seconds if seconds > 0 else math.nan,
        "seconds": seconds,
    }
    # a value that could not be measured (no tokens, no time) is None, not NaN: JSON has no NaN
    return finite(record)
