"""`seqtool train-rnn`: train an RNN, GRU or LSTM on a built-in set or your data, with
checkpoints, Ctrl-C and --resume."""

from __future__ import annotations

import signal
import sys
from functools import partial
from typing import Any, Optional

import typer

from seqtool.cli.app import app
from seqtool.cli.options import config_option, precision_option
from seqtool.cli.output import STREAM_FORMATS, check_format
from seqtool.config import TrainConfig
from seqtool.core.errors import RunError

_option = partial(config_option, TrainConfig)


HELP = """Train a vanilla RNN, GRU or LSTM: classify (many-to-one), tag (one-way
many-to-many), lm (p(y_t | y_<t)) or regress, on a built-in set or your data.

Writes a run directory (--out): config.yaml, metrics.jsonl, model.npz/.json (the best
model, torch names and layouts) and last.npz/.json (for --resume). Ctrl-C saves a
checkpoint and prints the command that resumes it; a resumed run ends bit-identical to an
uninterrupted one.

Examples:
  seqtool train-rnn --data sentiment --cell gru --epochs 5
  seqtool train-rnn --data parity --seq-len 8 --cell lstm --hidden 32
  seqtool train-rnn --data dyck --cell lstm --format jsonl | jq .val_loss
  seqtool train-rnn --data reviews.tsv --task classify --out runs/reviews --explain
  seqtool train-rnn --resume runs/reviews --epochs 20
"""

FLAG_NAMES = (
    "data", "task", "val", "val_fraction", "tokenizer", "max_len", "samples", "seq_len",
    "delay", "cell", "hidden", "layers", "embedding_dim", "dropout", "pool", "nonlinearity",
    "dtype", "optimizer", "lr", "weight_decay", "clip_norm", "batch_size", "epochs", "steps",
    "patience", "seed", "out",
)


@app.command(
    "train-rnn",
    help=HELP,
    short_help="Train RNN/GRU/LSTM. e.g. seqtool train-rnn --data parity",
)
def train_command(
    data: Optional[str] = _option("data", "--data", "-d", metavar="NAME|FILE"),
    task: Optional[str] = _option("task", "--task", metavar="classify|tag|lm|regress"),
    val: Optional[str] = _option("val", "--val", metavar="FILE"),
    val_fraction: Optional[str] = _option("val_fraction", "--val-fraction", metavar="F"),
    tokenizer: Optional[str] = _option("tokenizer", "--tokenizer", metavar="char|word"),
    max_len: Optional[str] = _option("max_len", "--max-len", metavar="N"),
    samples: Optional[str] = _option("samples", "--samples", metavar="N"),
    seq_len: Optional[str] = _option("seq_len", "--seq-len", metavar="T"),
    delay: Optional[str] = _option("delay", "--delay", metavar="K"),
    cell: Optional[str] = _option("cell", "--cell", "-c", metavar="rnn|gru|lstm|bow"),
    hidden: Optional[str] = _option("hidden", "--hidden", "-H", metavar="H"),
    layers: Optional[str] = _option("layers", "--layers", "-L", metavar="L"),
    embedding_dim: Optional[str] = _option("embedding_dim", "--embedding-dim", metavar="E"),
    dropout: Optional[str] = _option("dropout", "--dropout", metavar="P"),
    pool: Optional[str] = _option("pool", "--pool", metavar="last|mean|max"),
    nonlinearity: Optional[str] = _option("nonlinearity", "--nonlinearity", metavar="tanh|relu"),
    dtype: Optional[str] = _option("dtype", "--dtype", metavar="float32|float64"),
    optimizer: Optional[str] = _option("optimizer", "--optimizer", metavar="NAME"),
    lr: Optional[str] = _option("lr", "--lr", metavar="LR"),
    weight_decay: Optional[str] = _option("weight_decay", "--weight-decay", metavar="WD"),
    clip_norm: Optional[str] = _option("clip_norm", "--clip-norm", metavar="N"),
    batch_size: Optional[str] = _option("batch_size", "--batch-size", "-b", metavar="B"),
    epochs: Optional[str] = _option("epochs", "--epochs", "-e", metavar="N"),
    steps: Optional[str] = _option("steps", "--steps", metavar="N"),
    patience: Optional[str] = _option("patience", "--patience", metavar="N"),
    seed: Optional[str] = _option("seed", "--seed", metavar="INT"),
    out: Optional[str] = _option("out", "--out", "-o", metavar="DIR"),
    resume: Optional[str] = typer.Option(
        None, "--resume", metavar="DIR",
        help="Continue the run in DIR with its optimiser and position (--epochs, --steps and "
        "--patience may change).",
    ),
    output_format: Optional[str] = typer.Option(
        None, "--format", "-f", metavar="table|json|jsonl|csv",
        help="table: a row per epoch and a summary; jsonl: one JSON object per epoch as it "
        "ends; json: the summary; csv: the epochs. Default: table on a terminal, json piped.",
    ),
    precision: int = precision_option(),
    explain: bool = typer.Option(
        False, "--explain", help="The architecture as a diagram, and the measured dependency "
        "map ‖∂y_t/∂x_s‖ of the trained model."),
) -> None:
    check_format(output_format, STREAM_FORMATS)
    given = {name: value for name, value in locals().items()
             if name in FLAG_NAMES and value is not None}
    from seqtool.io.output import choose_format

    fmt = choose_format(output_format)
    if resume is not None:
        changes = TrainConfig.from_mapping(given)  # validates the flags given with --resume
        config = None
        changes_given = {k: getattr(changes, k) for k in given}
    else:
        config = TrainConfig.from_mapping(given)
        changes_given = None
    run_and_report(config, fmt, precision, explain, resume, changes_given)


class _StopFlag:
    """Ctrl-C sets a flag that the training loop reads after each whole step."""

    def __init__(self):
        self.set = False
        self._previous = None

    def __enter__(self):
        def handler(signum, frame):
            if self.set:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.set = True
            sys.stderr.write("\nseqtool: stopping after this step (Ctrl-C again to abort)...\n")

        try:
            self._previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread (e.g. a test runner): no handler
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def run_and_report(config: TrainConfig | None, fmt: str, precision: int, explain: bool,
                   resume: str | None, changes: dict[str, Any] | None,
                   should_stop: Any = None) -> Any:
    from seqtool.core.rnn.cells import cell_names, get_cell
    from seqtool.core.training import Hooks
    from seqtool.render.train import TrainView
    from seqtool.training_run import run_train

    # the configured cell's kernels (the rnn's, as a stand-in, for bow or a resumed run)
    cell = config.cell if config is not None and config.cell in cell_names() else "rnn"
    if not get_cell(cell).kernels_cached():
        sys.stderr.write("seqtool: compiling the RNN kernels (once per machine)...\n")
    view = TrainView(fmt, precision)
    with _StopFlag() as flag:
        hooks = Hooks(on_step=view.on_step, on_epoch=view.on_epoch,
                      should_stop=should_stop or (lambda: flag.set))
        try:
            report = run_train(config, hooks=hooks, resume=resume, changes=changes,
                               explain=explain, on_start=view.on_start)
        finally:
            view.close()
    view.finish(report, explain)
    if report.stop_reason == "interrupted":
        pos = report.position
        raise RunError(
            f"interrupted in epoch {pos['epoch'] + 1} after step {pos['global_step']}; "
            f"checkpoint saved in {report.out}; resume with: seqtool train-rnn --resume "
            f"{report.out}"
        )
    if report.stop_reason == "diverged":
        raise RunError(f"training diverged: {report.message}; the last good checkpoint is in "
                       f"{report.out}")
    return report

