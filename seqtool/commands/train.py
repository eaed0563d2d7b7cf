"""`seqtool train-rnn`: data, model, the training loop, and the run directory.

The command's run function: the CLI and recipes both call :func:`run` (through the command
registry), so that a flag and a recipe train the same way; ``seqtool.core`` does the
numerics and ``seqtool.io.checkpoint`` writes the files.

The run directory:
    config.yaml      the fully resolved TrainConfig
    metrics.jsonl    one JSON object per epoch
    model.npz/.json  the best model so far (lowest validation loss): the state dict in torch
                     names and layouts, and what it needs to be used (spec, vocabulary,
                     label names, tokenizer, seqtool version)
    last.npz/.json   the latest checkpoint: the state dict, the optimiser state
                     (``optim.*``) and the position (epoch, step, history), for --resume
Every file is written atomically; a run that diverges keeps its last good checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from seqtool import __version__
from seqtool.commands.events import Events
from seqtool.config import RESUMABLE_CHANGES, TrainConfig
from seqtool.core import parallel
from seqtool.core.errors import InputError
from seqtool.core.report import Report, finite
from seqtool.core.models import ModelSpec, init_params, parameter_count
from seqtool.core.optim import make_optimizer
from seqtool.core.training import Hooks, Position, TrainSettings, metric_name, train
from seqtool.commands.trained import OPTIM_PREFIX, _checked_model, load_model
from seqtool.io.checkpoint import (
    CheckpointError, append_jsonl, load_checkpoint, save_checkpoint, write_atomic, write_jsonl,
)


# ---------------------------------------------------------------------------------------
# Building the pieces from a config


def load_data(config: TrainConfig) -> tuple[Any, Any]:
    from seqtool.core.data import prepare

    train, val = prepare(config.data, config.task, val=config.val,
                         val_fraction=config.val_fraction,
                         tokenizer=config.tokenizer or _default_tokenizer(config),
                         max_len=config.max_len, samples=config.samples,
                         seq_len=config.seq_len, delay=config.delay, seed=config.seed)
    for data, flag in ((train, "data"), (val, "val" if config.val else "data")):
        _check_range(data, flag, np.dtype(config.dtype))
    return train, val


def _check_range(data: Any, flag: str, dtype: np.dtype) -> None:
    """Real-valued inputs and targets beyond the run's dtype (1e300 in float32) would
    overflow in the first step and look like divergence: refused, naming the file."""
    if data.task != "regress":
        return
    limit = float(np.finfo(dtype).max)
    for i, (x, y) in enumerate(zip(data.inputs, data.targets)):
        for what, values in (("input", x), ("target", y)):
            if values.size and float(np.max(np.abs(values))) > limit:
                big = float(values.flat[np.argmax(np.abs(values))])
                raise InputError(flag, f"has {big:g} in sequence {i + 1}'s {what}s, beyond the "
                                 f"range of {dtype} (±{limit:.3g}); rescale the data or use "
                                 "--dtype float64")


def _default_tokenizer(config: TrainConfig) -> str:
    """char for language models (a plain text file is one when no --task is given), else
    word."""
    from seqtool.core.data import BUILTIN_TASKS

    table = Path(config.data).suffix.lower() in (".csv", ".tsv", ".jsonl")
    lm_file = config.task is None and config.data not in BUILTIN_TASKS and not table
    return "char" if config.task == "lm" or lm_file else "word"


def model_spec(config: TrainConfig, data: Any) -> ModelSpec:
    tokens = data.task != "regress"
    config.check_attention(config.pool == "attention" or data.task == "seq2seq")
    return ModelSpec(
        task=data.task, cell=config.cell, input_size=data.input_size,
        output_size=data.output_size, hidden=config.hidden, layers=config.layers,
        embedding_dim=config.embedding_dim if tokens else None,
        pool=config.pool, target_at=data.target_at, dropout=config.dropout,
        nonlinearity=config.nonlinearity, score=config.score, selector=config.selector,
        selector_params=config.selector_params, bidirectional=config.bidirectional,
    )


def check_fits(spec: ModelSpec, config: TrainConfig, train: Any, val: Any) -> None:
    """Refuse, before allocating, a model or a batch that cannot fit in the memory this
    machine has (``--hidden 10000000`` would otherwise ask for petabytes part-way through
    initialisation), naming the flag that makes it big."""
    from seqtool.core.models import INFERENCE_BATCH, memory_bound, parameter_bound
    from seqtool.core.resources import check_memory

    longest = max(int(train.lengths.max(initial=1)), int(val.lengths.max(initial=1)))
    if spec.task == "seq2seq":  # the decoder runs over the targets, which may be longer
        longest = max([longest] + [len(t) for data in (train, val) for t in data.targets])
    batch = min(config.batch_size, len(train))
    params, step = memory_bound(spec, batch, longest, config.dtype, training=True)
    _, evaluation = memory_bound(spec, min(INFERENCE_BATCH, max(len(val), 1)), longest, config.dtype,
                                 training=False)
    activations = step + evaluation  # the training step's arrays stay lent while it evaluates
    # the flag furthest beyond its default is the one to name
    sizes = {"hidden": spec.hidden / 64, "layers": spec.layers / 2, "batch-size": batch / 32,
             "max-len": longest / 500}
    if spec.tokens_in:
        sizes["embedding-dim"] = (spec.embedding_dim or 1) / 32
    flag = max(sizes, key=sizes.get)
    what = (f"training (a model of up to {parameter_bound(spec):,} parameters, steps over "
            f"{batch:,} sequences of up to {longest:,} tokens)")
    check_memory(flag, params + activations, what)


def settings_of(config: TrainConfig) -> TrainSettings:
    return TrainSettings(optimizer=config.optimizer, lr=config.lr,
                         weight_decay=config.weight_decay, clip_norm=config.clip_norm,
                         batch_size=config.batch_size, epochs=config.epochs,
                         steps=config.steps, patience=config.patience, seed=config.seed)


def default_out(config: TrainConfig, task: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{task}-{config.cell}-{stamp}"


# ---------------------------------------------------------------------------------------
# The model's description in its checkpoint


def _model_meta(spec: ModelSpec, data: Any, config: TrainConfig) -> dict[str, Any]:
    return {
        "seqtool_version": __version__, "spec": spec.to_dict(),
        "vocab": None if data.vocab is None else data.vocab.to_list(),
        "labels": data.labels, "tokenizer": data.tokenizer, "data": data.name,
        "max_len": config.max_len, "dtype": config.dtype,
        "builtin": {"seq_len": config.seq_len, "delay": config.delay},
    }


# ---------------------------------------------------------------------------------------
# The run


# The columns of an epoch's row (--format csv, and the table); {m} is the task's metric.
COLUMNS = ("epoch", "train_loss", "train_{m}", "val_loss", "val_{m}", "grad_norm",
           "tokens_per_s", "seconds")
SEQ2SEQ_COLUMNS = ("val_exact",)  # after val_{m}: the greedy outputs equal to their targets


def columns_of(spec: ModelSpec) -> list[str]:
    """The epoch columns of a model's runs, with its metric's name filled in."""
    names = [c.format(m=metric_name(spec)) for c in COLUMNS]
    if spec.task == "seq2seq":
        at = names.index("grad_norm")
        names[at:at] = list(SEQ2SEQ_COLUMNS)
    return names


@dataclass
class TrainReport(Report):
    """What `seqtool train-rnn` did: ``to_dict`` is its JSON summary, ``rows`` its epochs,
    ``records`` the closing line of its JSON-lines stream (the epochs stream as they end)."""

    config: TrainConfig
    out: Path
    spec: ModelSpec
    data_name: str
    train_size: int
    val_size: int
    parameters: int
    history: list[dict[str, Any]]
    stop_reason: str
    message: str
    best_epoch: int | None
    best_val: dict[str, Any] | None
    final_val: dict[str, Any] | None
    resumed_from: dict[str, Any] | None = None
    baseline: dict[str, float] = field(default_factory=dict)
    position: dict[str, Any] | None = None  # epoch, step_in_epoch, global_step at the end
    dependency: dict[str, Any] | None = None
    params: dict[str, np.ndarray] | None = None
    attention: dict[str, Any] | None = None  # --pool attention: how far the scoring moved
    alignment: dict[str, Any] | None = None  # seq2seq --explain: a validation example's
    pooling: dict[str, Any] | None = None  # --pool attention --explain: a validation example's

    @property
    def metric(self) -> str:
        return metric_name(self.spec)

    def columns(self) -> list[str]:
        return columns_of(self.spec)

    def rows(self) -> list[dict[str, Any]]:
        return [{name: row.get(name, "") for name in self.columns()} for row in self.history]

    def to_json(self) -> dict[str, Any]:
        return finite(self.to_dict())

    def records(self) -> list[dict[str, Any]]:
        """The summary line of the jsonl stream; it repeats the best epoch's validation
        numbers under the epoch lines' names (val_loss, val_<metric>), so that
        ``jq .val_loss`` reads a number on every line."""
        data = self.to_dict()
        best = {f"val_{k}": v for k, v in (self.best_val or {}).items()}
        return [{"event": "summary", **best,
                 **{k: v for k, v in data.items() if k not in ("history", "config", "spec")}}]

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out), "data": self.data_name, "task": self.spec.task,
            "cell": self.spec.cell, "spec": self.spec.to_dict(),
            "config": self.config.to_dict(), "train_size": self.train_size,
            "val_size": self.val_size, "parameters": self.parameters,
            "stop_reason": self.stop_reason, "message": self.message,
            "epochs_run": len(self.history), "best_epoch": self.best_epoch,
            "best_val": self.best_val, "final_val": self.final_val,
            "baseline": self.baseline, "history": self.history,
            "resumed_from": self.resumed_from, "position": self.position,
            **({"dependency": self.dependency} if self.dependency is not None else {}),
            **({"attention": self.attention} if self.attention is not None else {}),
            **({"alignment": self.alignment} if self.alignment is not None else {}),
            **({"pooling": self.pooling} if self.pooling is not None else {}),
        }


def baselines(spec: ModelSpec, train_data: Any, val_data: Any) -> dict[str, float]:
    """What a model that ignores the order of its input scores: the majority class
    (classify, tag) or target token (seq2seq), the unigram entropy (lm), predicting the
    training mean (regress)."""
    if spec.task == "lm":
        from seqtool.core.data import unigram_entropy

        return {"unigram_entropy": float(unigram_entropy(train_data))}
    if spec.task == "regress":
        mean = np.mean(np.concatenate([np.atleast_2d(t) for t in train_data.targets]), axis=0)
        with np.errstate(over="ignore", invalid="ignore"):  # absurd targets: inf, said so
            sq = np.concatenate([(np.atleast_2d(t) - mean) ** 2 for t in val_data.targets])
            return {"predict_the_mean_mse": float(sq.mean())}
    # seq2seq: the tokens the decoder predicts (y_1 .. y_m </s>, not the <s> it starts from)
    skip = 1 if spec.task == "seq2seq" else 0
    train_labels = np.concatenate([np.ravel(t)[skip:] for t in train_data.targets])
    val_labels = np.concatenate([np.ravel(t)[skip:] for t in val_data.targets])
    majority = np.bincount(train_labels).argmax()
    return {"majority_accuracy": float(np.mean(val_labels == majority))}


class RunFiles:
    """Writes one run directory (see the module docstring)."""

    def __init__(self, out: Path, config: TrainConfig, spec: ModelSpec, data: Any):
        self.out, self.config, self.spec = out, config, spec
        self.meta = _model_meta(spec, data, config)

    def start(self, replace_run: bool = False) -> None:
        """Create the directory and write config.yaml. A directory that already holds a
        run is refused (its checkpoints would be overwritten and its metrics mixed with
        these) unless ``replace_run``: then that run's files are replaced."""
        import yaml

        if (self.out / "last.json").exists() or (self.out / "metrics.jsonl").exists():
            if not replace_run:
                raise InputError("out", f"is {self.out}, which already holds a run; continue "
                                 f"it with --resume {self.out}, or choose another --out")
            (self.out / "metrics.jsonl").unlink(missing_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        write_atomic(self.out / "config.yaml",
                     yaml.safe_dump(self.config.to_dict(), sort_keys=False, allow_unicode=True))

    def epoch(self, record: dict[str, Any]) -> None:
        append_jsonl(self.out / "metrics.jsonl", record)

    def resumed(self, position: Position) -> None:
        """metrics.jsonl set back to the epochs the checkpoint holds: a run killed after an
        epoch's line and before its checkpoint runs that epoch again, and must not list it
        twice."""
        write_jsonl(self.out / "metrics.jsonl", position.history)

    def best(self, params: dict[str, np.ndarray], record: dict[str, Any]) -> None:
        save_checkpoint(self.out, "model", params, {**self.meta, "epoch": record["epoch"],
                                                     "val": _val_of(record)})

    def last(self, params: dict[str, np.ndarray], optimizer: Any, position: Position) -> None:
        arrays = dict(params)
        arrays.update({OPTIM_PREFIX + k: v for k, v in optimizer.state_dict().items()})
        save_checkpoint(self.out, "last", arrays, {
            **self.meta, "position": position.to_dict(), "config": self.config.to_dict(),
        })


def _val_of(record: dict[str, Any]) -> dict[str, Any]:
    return {k[4:]: v for k, v in record.items() if k.startswith("val_")}


def _resume_config(directory: Path, changes: dict[str, Any]) -> tuple[TrainConfig, dict, dict]:
    """The stored config of a run, with only --epochs/--steps/--patience changed."""
    arrays, meta = load_checkpoint(directory, "last", "resume")
    if not isinstance(meta.get("config"), dict) or "position" not in meta:
        raise CheckpointError("resume", f"{directory}: last.json is not a train-rnn checkpoint "
                              "(no \"config\" object or no \"position\")")
    try:
        stored = TrainConfig.from_mapping(meta["config"])
    except InputError as err:  # the key it names is one of last.json's config, not a flag
        raise CheckpointError("resume", f"{directory}: last.json has a config that cannot be "
                              f"used: {err}") from None
    try:
        position = Position.from_dict(meta["position"])
    except ValueError as err:
        raise CheckpointError("resume", f"{directory}: last.json has {err}") from None
    for key, value in changes.items():
        if key in ("resume", "out") or key not in stored.to_dict():
            continue
        if key not in RESUMABLE_CHANGES and getattr(stored, key) != value:
            raise InputError(key, f"cannot change on --resume (the run has {getattr(stored, key)}"
                             f"); only {', '.join('--' + k for k in RESUMABLE_CHANGES)} can")
    allowed = {k: v for k, v in changes.items() if k in RESUMABLE_CHANGES}
    config = replace(stored, out=str(directory), **allowed)
    return config, arrays, {"position": position, "meta": meta}


def run_train(config: TrainConfig, *, hooks: Hooks | None = None,
              resume: str | Path | None = None, changes: dict[str, Any] | None = None,
              explain: bool = False, on_start: Any = None,
              replace_run: bool = False) -> TrainReport:
    """Train as ``config`` says (or continue the run in ``resume``), writing the run
    directory as it goes. ``hooks`` are the training loop's; ``on_start(report_so_far)``
    is called once the data and model are ready; ``replace_run`` lets a new run replace
    one already in its directory (recipes rerunning a run they own)."""
    optimizer_state, position = None, None
    if resume is not None:
        directory = Path(resume)
        config, arrays, stored = _resume_config(directory, changes or {})
        position = stored["position"]
    train_data, val_data = load_data(config)
    spec = model_spec(config, train_data)
    dtype = np.dtype(config.dtype)
    check_fits(spec, config, train_data, val_data)
    if resume is not None:
        model = _checked_model(arrays, stored["meta"], directory, "last", "resume")
        if model.spec != spec:
            raise CheckpointError("resume", f"{directory}: last.json describes a different model "
                                  "than its config.yaml gives")
        params = {k: v.copy() for k, v in model.params.items()}
        optimizer_state = {k[len(OPTIM_PREFIX):]: v for k, v in arrays.items()
                           if k.startswith(OPTIM_PREFIX)}
        out = directory
    else:
        params = init_params(spec, seed=config.seed, dtype=dtype)
        out = Path(config.out) if config.out else default_out(config, train_data.task)
        config = replace(config, out=str(out))
    # the count is kept in config.yaml: --resume splits its batches as the run did
    config = replace(config, threads=config.threads or parallel.default_threads())
    files = RunFiles(out, config, spec, train_data)
    if resume is None:
        files.start(replace_run)
    else:
        files.resumed(position)
    report = TrainReport(
        config=config, out=out, spec=spec, data_name=train_data.name,
        train_size=len(train_data), val_size=len(val_data),
        parameters=parameter_count(params), history=[], stop_reason="", message="",
        best_epoch=None, best_val=None, final_val=None,
        resumed_from=None if position is None else {"epoch": position.epoch,
                                                      "step_in_epoch": position.step_in_epoch,
                                                      "global_step": position.global_step},
        baseline=baselines(spec, train_data, val_data),
    )
    if on_start:
        on_start(report)
    user = hooks or Hooks()
    optimizer = make_optimizer(config.optimizer, params, config.lr, config.weight_decay)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)

    def on_epoch(pos: Position, record: dict[str, Any], improved: bool) -> None:
        files.epoch(record)
        if improved:
            files.best(params, record)
        files.last(params, optimizer, pos)
        if user.on_epoch:
            user.on_epoch(pos, record, improved)

    from seqtool.core.training import scoring_parameters

    scoring = {k: params[k].copy() for k in scoring_parameters(spec, params)}
    with parallel.threads(config.threads):
        result = train(spec, settings_of(config), params, train_data, val_data,
                       hooks=Hooks(on_step=user.on_step, on_epoch=on_epoch,
                                   should_stop=user.should_stop),
                       position=position, optimizer=optimizer)
    if result.stop_reason == "interrupted":
        files.last(params, result.optimizer, result.position)
    report.history = result.position.history
    report.position = {"epoch": result.position.epoch,
                       "step_in_epoch": result.position.step_in_epoch,
                       "global_step": result.position.global_step}
    report.stop_reason, report.message = result.stop_reason, result.message
    report.best_epoch = result.position.best_epoch
    if report.best_epoch is not None:
        best = report.history[report.best_epoch - 1] if report.best_epoch <= len(report.history) else None
        report.best_val = None if best is None else _val_of(best)
    report.final_val = _val_of(report.history[-1]) if report.history else None
    report.params = params
    if spec.uses_attention:
        report.attention = attention_summary(spec, scoring, params, report.history)
    if explain and result.stop_reason != "diverged":
        best_model = load_model(out) if (out / "model.npz").exists() else None
        use = best_model.params if best_model else params
        if spec.task == "seq2seq":
            report.alignment = example_alignment(spec, use, val_data)
        else:
            from seqtool.core.dependency import dependency_map

            report.dependency = dependency_map(spec, use, val_data)
        if spec.pool == "attention":  # the dependency map's sequence, so the two sit together
            report.pooling = example_pooling(spec, use, val_data, report.dependency["sequence"])
    return report


def example_pooling(spec: ModelSpec, params: dict[str, np.ndarray], data: Any,
                    index: int = 0) -> dict[str, Any]:
    """Validation sequence ``index`` (0-based, as the dependency map numbers it) of an
    attention-pooling classifier: its tokens, the weight of each in the pooled state, its
    label and the model's."""
    from seqtool.core.inference import classify_attending

    probs, weights = classify_attending(spec, params, [data.inputs[index]])
    return {"example": index, "tokens": data.vocab.decode(data.inputs[index]),
            "weights": [float(w) for w in weights[0]],
            "label": data.labels[int(np.ravel(data.targets[index])[0])],
            "predicted": data.labels[int(probs[0].argmax())]}


def example_alignment(spec: ModelSpec, params: dict[str, np.ndarray], data: Any,
                      index: int = 0) -> dict[str, Any]:
    """Validation pair ``index``: its source, target, the greedy output and the attention
    of each output step over the source (the last row the step that wrote </s>)."""
    from seqtool.core.inference import translate

    out = translate(spec, params, [data.inputs[index]])[0]
    decode = data.vocab.decode
    return {"example": index, "source": decode(data.inputs[index]),
            "target": decode(data.targets[index][1:-1]), "output": decode(out.ids),
            "weights": [[float(v) for v in row] for row in out.alignment]}


def attention_summary(spec: ModelSpec, before: dict[str, np.ndarray],
                      after: dict[str, np.ndarray],
                      history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """How far the attention's scoring parameters moved in this run, ‖θ_end − θ_start‖
    each, the mean norm of the gradient that reached them per epoch, and what it means for a
    selector whose gradient is zero (argmax): they never move."""
    from seqtool.core.global_attention import REINFORCE
    from seqtool.core.selectors import get_selector, resolve_params

    moved = {name: float(np.linalg.norm((after[name] - value).astype(np.float64)))
             for name, value in before.items()}
    grads = [row["score_grad_norm"] for row in history or [] if "score_grad_norm" in row]
    summary = {"score": spec.score, "selector": spec.selector, "params": spec.selector_params,
               "scoring_change": moved,
               "score_grad_norm": float(np.mean(grads)) if grads else None}
    if spec.selector == REINFORCE:
        return {**summary, "gradient": "score-function",
                "note": "reinforce attends to one step drawn from softmax(scores) and "
                        "trains the scores with (ℓ_t − baseline)·∇ log p(choice), an unbiased "
                        "estimate of the gradient of the expected loss"}
    used = resolve_params(spec.selector, 2**31, spec.selector_params)
    kind = get_selector(spec.selector).gradient_kind(used)
    if not before:  # seq2seq's dot score: no scoring parameters of its own
        return {**summary, "gradient": kind,
                "note": f"the dot score has no parameters of its own; {spec.selector}'s "
                        f"{kind} gradient reaches the decoder and encoder states instead"}
    note = {
        "zero": f"{spec.selector} has zero gradient: no gradient reached the scoring "
                "parameters, so they never moved from their initial values; the rest of the "
                "model learned around a fixed choice of steps",
        "surrogate": f"{spec.selector} chooses hard steps with a surrogate gradient (the "
                     "Jacobian of a soft map stands in for it)",
        "exact": f"{spec.selector}'s exact gradient trained the scoring parameters",
    }[kind]
    return {**summary, "gradient": kind, "note": note}


# ---------------------------------------------------------------------------------------
# The command


def run(config: TrainConfig, events: Events, run_dir: Path | None = None, *,
        resume: str | None = None, explain: bool = False) -> TrainReport:
    """train-rnn as the CLI and recipes run it: a new run (into ``run_dir`` for a recipe,
    which owns that directory and may replace a run there), or ``resume`` the one in a
    directory with the parameters given in ``config`` changed (--epochs, --steps,
    --patience)."""
    def on_start(report: TrainReport) -> None:
        _say_what_was_inferred(report, events)
        # the model's kernels, loaded or compiled before the training clock starts (and
        # before a live view draws): a compile is announced as it happens and never
        # counted in epoch 1's tokens/s
        events.warm_up(report.spec.cell, report.config.dtype, spec=report.spec,
                       optimizer=report.config.optimizer)
        if events.on_start is not None:
            events.on_start(report)

    def on_epoch(position: Any, record: dict[str, Any], improved: bool) -> None:
        if events.on_record is not None:
            events.on_record({"event": "epoch", **record})
        if events.on_epoch is not None:
            events.on_epoch(position, record, improved)

    hooks = Hooks(on_step=events.on_step, on_epoch=on_epoch, should_stop=events.should_stop)
    if resume is not None:
        changes = {name: getattr(config, name) for name in config.given_names}
        return run_train(None, hooks=hooks, resume=resume, changes=changes, explain=explain,
                         on_start=on_start)
    if run_dir is not None:
        config = replace(config, out=str(run_dir))
    return run_train(config, hooks=hooks, explain=explain, on_start=on_start,
                     replace_run=run_dir is not None)


def _say_what_was_inferred(report: TrainReport, events: Events) -> None:
    """A file read without --task: say what it was taken for, before training on it (a
    YAML file given by mistake trains a language model on its text otherwise)."""
    from seqtool.core.data import BUILTIN_TASKS

    config = report.config
    if config.task is not None or config.data in BUILTIN_TASKS:
        return
    tokens = config.tokenizer or _default_tokenizer(config)
    events.say(f"read {config.data} as {report.spec.task} data ({tokens} tokens): "
               f"{report.train_size} train / {report.val_size} validation sequences; "
               "--task sets what it is")


def failure(report: TrainReport) -> str | None:
    """An interrupted or diverged run fails (exit 1) after its output, saying what to do."""
    if report.stop_reason == "interrupted":
        pos = report.position
        return (f"interrupted in epoch {pos['epoch'] + 1} after step {pos['global_step']}; "
                f"checkpoint saved in {report.out}; resume with: seqtool train-rnn --resume "
                f"{report.out}")
    if report.stop_reason == "diverged":
        if (Path(report.out) / "last.npz").exists():
            return (f"training diverged: {report.message}; the last good checkpoint (the end "
                    f"of epoch {report.position['epoch']}) is in {report.out}")
        return (f"training diverged: {report.message}; it diverged in its first epoch, so "
                f"{report.out} holds no checkpoint, only config.yaml")
    return None


def metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The best epoch's validation numbers, the epochs run, and the order-blind baseline."""
    out: dict[str, Any] = {f"val_{k}": v for k, v in (report.get("best_val") or {}).items()}
    out["epochs"] = report.get("epochs_run")
    if report.get("attention"):  # how far the pooling's scoring moved: 0 for argmax
        changes = report["attention"]["scoring_change"].values()
        out["attention_change"] = float(np.sqrt(sum(v * v for v in changes)))
        if report["attention"].get("score_grad_norm") is not None:
            out["score_grad_norm"] = report["attention"]["score_grad_norm"]
    out.update({f"baseline_{k}": v for k, v in (report.get("baseline") or {}).items()})
    return out
