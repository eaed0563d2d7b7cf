"""seqtool's Python API: the commands as functions, for scripts and notebooks.

Every function here is a thin layer over the command registry
(:mod:`seqtool.commands.registry`): it looks the command up by name, builds the command's
Config with ``from_mapping`` from the keyword arguments (a keyword's name is the Config
field's name, the flag's name with ``_`` for ``-``: ``--val-fraction`` is
``val_fraction``), runs it with empty :class:`~seqtool.commands.events.Events` and
returns its Report. So a keyword is validated by the same code as the flag, a bad value is
the same :class:`~seqtool.core.errors.InputError` (``err.message`` is what the CLI prints
after the flag's name), and the numbers are the same bits as ``--format json``
(``report.to_json()``).

A keyword left at ``None`` is not given (the command's default applies), as a flag left
out; ``False`` for a switch (``hard``, ``grad``, ``check``, ...) is the same as leaving the
switch out. Numbers may be given as the CLI's text (``"3,-1;1,2"``, ``"@keys.npy"``), as
NumPy arrays or as (nested) lists and tuples of numbers.

A run that computed its report but failed (a diverged training, a finite-difference
check that did not pass: the CLI's exit 1) raises :class:`~seqtool.core.errors.RunError`
with the CLI's message; the report is its ``report`` attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# a vector or matrix: the CLI's text ("3,-1", "1,5;1,0", "@keys.npy"), a (nested) list or
# tuple of numbers, or a NumPy array
Numbers = Any

from seqtool.core.errors import InputError, RunError
from seqtool.core.report import set_html_view


def _report_html(report: Any) -> str:
    """A report's table and plot as HTML, drawn by the render layer (imported on first use)."""
    from seqtool.render.notebook import report_html

    return report_html(report)


set_html_view(_report_html)  # reports returned by this API draw themselves in Jupyter

__all__ = ["Model", "attend", "bptt", "compare_selectors", "load", "plot", "run_recipe",
           "train"]


def _plain(value: Any) -> Any:
    """Tuples as lists and NumPy scalars as Python numbers (what the coercers read, as from
    JSON); arrays, strings and everything else as they are."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _mapping(command: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The keywords given, as the CLI gathers its flags: None is not given, and a switch
    that is off is not given either."""
    switches = {flag.name for flag in command.flags if flag.kind == "switch"}
    mapping = {}
    for name, value in params.items():
        if value is None or (name in switches and value is False):
            continue
        mapping[name] = _plain(value)
    return mapping


def _run(name: str, params: dict[str, Any], **options: Any) -> Any:
    """Run the command ``name`` the way the CLI and recipes do: its Config from the
    keywords, its run with empty Events; a failed run raises RunError (with ``report``)."""
    from seqtool.commands.events import Events
    from seqtool.commands.registry import get_command

    command = get_command(name)
    config = command.config.from_mapping(_mapping(command, params))
    report = command.call("run", config, Events(), None, **options)
    failed = command.call("failure", report) if command.failure else None
    if failed:
        error = RunError(failed)
        error.report = report  # type: ignore[attr-defined]
        raise error
    return report


def attend(query: Numbers = None, keys: Numbers = None, values: Numbers = None,
           selector: str = "softmax",
           *, temperature: float | None = None, alpha: float | None = None,
           k: int | None = None, seed: int | None = None, hard: bool = False,
           scale: float | str | None = None, grad: bool = False,
           upstream: Numbers = None) -> Any:
    """Attention of a query over keys and values with any selector (``seqtool attend``).

    scores = scale · q·k_i, weights = selector(scores), output = Σ_i weights_i v_i.

    Parameters
    ----------
    query : str, array_like or None
        A query vector (``"3,-1"``, ``[3, -1]``, an array) or several as rows
        (``"3,-1;1,2"``, a 2-D array). With no ``keys``: the worked example's (3, -1) by
        default.
    keys : str, array_like or None
        The key matrix, one row per key. None: the built-in worked example, keys
        (1,5),(1,0),(1,3),(2,0) and values (1,0,0),(0,1,0),(0,0,1),(6,1,2).
    values : str, array_like or None
        The value matrix, one row per key. None: the keys.
    selector : str
        A registered selector: softmax, argmax, sparsemax, entmax, topk, gumbel, ...
    temperature, alpha, k, seed, hard : optional
        The selector's parameters (a parameter the selector does not read is an error).
    scale : float or "sqrt", optional
        The score scale: a number (default 1) or ``"sqrt"`` for 1/sqrt(d).
    grad : bool
        Also the gradients of upstream·output with respect to query, keys and values.
    upstream : str or array_like, optional
        The upstream gradient ∂L/∂output (default ones); implies ``grad``.

    Returns
    -------
    AttendReport
        ``scores``, ``weights``, ``outputs`` (arrays, one row per query), ``support``,
        ``gradients`` (with ``grad``); ``to_json()`` is what ``--format json`` prints.

    Raises
    ------
    InputError
        A malformed number, a shape that does not fit, an unknown selector, a parameter
        the selector does not read; ``err.key`` names the parameter.

    Examples
    --------
    >>> import seqtool
    >>> report = seqtool.attend(query="3,-1", selector="argmax")
    >>> report.outputs.tolist()
    [[6.0, 1.0, 2.0]]
    >>> report.scores.tolist()
    [[-2.0, 3.0, 0.0, 6.0]]
    >>> seqtool.attend([1, 0], keys=[[1, 0], [0, 1]], selector="sparsemax").weights.tolist()
    [[1.0, 0.0]]
    >>> seqtool.attend("3,-1", selector="argmax", temperature=2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seqtool.core.errors.InputError: temperature does not apply to argmax (it is read by ...)
    """
    return _run("attend", {
        "query": query, "keys": keys, "values": values, "selector": selector,
        "temperature": temperature, "alpha": alpha, "k": k, "seed": seed, "hard": hard,
        "scale": scale, "grad": grad, "upstream": upstream})


def compare_selectors(query: Numbers = None, keys: Numbers = None, values: Numbers = None,
                      selectors: str | Sequence[str] | None = None, *,
                      temperature: float | None = None, alpha: float | None = None,
                      k: int | None = None, seed: int | None = None, hard: bool = False,
                      scale: float | str | None = None, upstream: Numbers = None,
                      repeats: int | None = None, cost: bool = False,
                      sizes: str | Sequence[int] | None = None, dim: int | None = None,
                      learn: bool = False, steps: int | None = None, pairs: int | None = None,
                      vocab: int | None = None, lr: float | None = None) -> Any:
    """Selectors side by side on the same inputs (``seqtool compare-selectors``).

    Parameters
    ----------
    query, keys, values : str, array_like or None
        As for :func:`attend` (the worked example when no keys are given).
    selectors : str or sequence of str, optional
        The selectors to compare, ``"softmax,argmax"`` or a list (default: every
        registered selector).
    temperature, alpha, k, seed, hard, scale : optional
        The selectors' parameters, as for :func:`attend` (each selector reads its own).
    upstream : str or array_like, optional
        The upstream gradient ∂L/∂output of the gradient columns (default ones).
    repeats : int, optional
        Timing repeats per measurement (the median is reported; default 15).
    cost : bool
        Also time scores and selection as the number of keys grows: ``sizes`` (default
        16, 256, 4096, 65536) keys of dimension ``dim`` (default 64).
    sizes : str or sequence of int, optional
    dim : int, optional
    learn : bool
        Also train W_q, W_k on associative recall through each selector: ``steps`` Adam
        steps (default 600) of ``pairs`` (key, value) pairs per sequence (default 8) over
        ``vocab`` tokens (default 64) at learning rate ``lr`` (default 0.02).
    steps, pairs, vocab : int, optional
    lr : float, optional

    Returns
    -------
    CompareReport
        ``to_json()`` is what ``--format json`` prints: a row per selector (weights,
        outputs, entropy, support, gradient norms, time), and the cost and learning runs
        when asked.

    Raises
    ------
    InputError
        As the flags: an unknown selector, a bad number or shape, a value out of range.

    Examples
    --------
    >>> import seqtool
    >>> report = seqtool.compare_selectors(query="3,-1", selectors="softmax,argmax",
    ...                                    repeats=1)
    >>> [row["selector"] for row in report.to_json()["rows"]]
    ['softmax', 'argmax']
    >>> seqtool.compare_selectors(query="3,-1", selectors="softmax,argmx")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seqtool.core.errors.InputError: selectors is 'argmx' (did you mean argmax?); choose one of ...
    """
    return _run("compare-selectors", {
        "query": query, "keys": keys, "values": values, "selectors": selectors,
        "temperature": temperature, "alpha": alpha, "k": k, "seed": seed, "hard": hard,
        "scale": scale, "upstream": upstream, "repeats": repeats, "cost": cost,
        "sizes": sizes, "dim": dim, "learn": learn, "steps": steps, "pairs": pairs,
        "vocab": vocab, "lr": lr})


def bptt(W_xh: Numbers = None, W_hh: Numbers = None, W_hy: Numbers = None,
         b_h: Numbers = None, b_y: Numbers = None, h0: Numbers = None, x: Numbers = None,
         y: Numbers = None, *, activation: str | None = None, loss: str | None = None,
         target_at: str | None = None, truncate: int | None = None, check: bool = False,
         steps: int | None = None, input_size: int | None = None, hidden: int | None = None,
         output_size: int | None = None, seed: int | None = None,
         radius: float | None = None, cell: str | Sequence[str] | None = None,
         forget_bias: float | None = None, jacobian: str | Sequence[Sequence[int]] | None = None,
         threads: int | None = None) -> Any:
    """Backpropagation through time of a vanilla RNN, GRU or LSTM, laid open (``seqtool
    bptt``).

    h_t = f(W_xh x_t + W_hh h_{t−1} + b_h), ŷ_t = W_hy h_t + b_y, L = Σ_t L_t; every
    gradient by BPTT, each step's share of ∂L/∂W_hh, and the chain ∂h_t/∂h_k.

    Parameters
    ----------
    W_xh, W_hh, W_hy, b_h, b_y, h0, x, y : str, array_like or None
        A given problem: input weights (H×D), recurrent weights (H×H), output weights (O×H),
        biases (H, O; default zeros), the initial state (H; default zeros), the inputs
        (T×D) and the targets (T×O reals for mse, T labels for cross_entropy, one target
        with ``target_at="last"``). None of them: a generated problem.
    activation : str, optional
        f: ``"tanh"`` (default), ``"sigmoid"``, ``"relu"``, ``"identity"``.
    loss : str, optional
        ``"mse"`` (½‖ŷ−y‖², default) or ``"cross_entropy"``, summed over steps.
    target_at : str, optional
        ``"all"`` (many-to-many, default) or ``"last"`` (many-to-one: only L_T).
    truncate : int, optional
        Truncated BPTT: each L_t reaches back at most this many steps.
    check : bool
        A five-point finite-difference check of every gradient (fails above 1e-6).
    steps, input_size, hidden, output_size, seed : int, optional
        A generated problem's T (default 10), D (3), H (4), O (2) and seed (0).
    radius : float, optional
        Rescale W_hh to this spectral radius (< 1 vanishing, > 1 exploding).
    cell : str or sequence of str, optional
        ``"rnn"`` (default), ``"gru"``, ``"lstm"``, or several (``"rnn,gru,lstm"``) side by
        side on the same sequence.
    forget_bias : float, optional
        Generated gated problems: the bias of the gate that keeps the old state (default 1).
    jacobian : str or pairs of int, optional
        The matrices ∂h_t/∂h_k for these (t, k): ``"3,1"``, ``"3,1;2,0"`` or ``[(3, 1)]``.
    threads : int, optional
        Threads the finite-difference check's entries are shared among (default: every
        core); the numbers do not depend on it.

    Returns
    -------
    BpttReport
        The loss, every gradient, each step's share of ∂L/∂W_hh, the Jacobian norms
        ‖∂h_T/∂h_k‖ (several cells: one report per cell, side by side).

    Raises
    ------
    InputError
        As the flags: a malformed number, shapes that do not fit, a value out of range.
    RunError
        ``check=True`` and the finite-difference check did not pass (the report is
        ``err.report``).

    Examples
    --------
    >>> import seqtool
    >>> report = seqtool.bptt(steps=5, hidden=3, seed=1)
    >>> len(report.to_json()["jacobian_norms"])
    5
    >>> seqtool.bptt(W_xh=[[1.0]], W_hh=[[0.5]], W_hy=[[1.0]], x=[[1.0], [0.0]],
    ...              y=[[0.0], [0.0]], activation="identity").to_json()["loss"]
    0.625
    >>> seqtool.bptt(steps=0)
    Traceback (most recent call last):
    ...
    seqtool.core.errors.InputError: steps must be a whole number ≥ 1, got 0
    """
    return _run("bptt", {
        "W_xh": W_xh, "W_hh": W_hh, "W_hy": W_hy, "b_h": b_h, "b_y": b_y, "h0": h0, "x": x,
        "y": y, "activation": activation, "loss": loss, "target_at": target_at,
        "truncate": truncate, "check": check, "steps": steps, "input_size": input_size,
        "hidden": hidden, "output_size": output_size, "seed": seed, "radius": radius,
        "cell": cell, "forget_bias": forget_bias, "jacobian": jacobian, "threads": threads})


def train(data: str | None = None, *, task: str | None = None, val: str | None = None,
          val_fraction: float | None = None, tokenizer: str | None = None,
          max_len: int | None = None, samples: int | None = None, seq_len: int | None = None,
          delay: int | None = None, cell: str | None = None, hidden: int | None = None,
          layers: int | None = None, embedding_dim: int | None = None,
          dropout: float | None = None, bidirectional: bool = False, pool: str | None = None,
          score: str | None = None, selector: str | None = None,
          temperature: float | None = None, alpha: float | None = None, k: int | None = None,
          nonlinearity: str | None = None, dtype: str | None = None,
          optimizer: str | None = None, lr: float | None = None,
          weight_decay: float | None = None, clip_norm: float | None = None,
          batch_size: int | None = None, epochs: int | None = None, steps: int | None = None,
          patience: int | None = None, seed: int | None = None, out: str | None = None,
          threads: int | None = None, resume: str | None = None,
          explain: bool = False) -> Any:
    """Train a vanilla RNN, GRU or LSTM (``seqtool train-rnn``), writing a run directory.

    Every keyword left at None takes the command's default (``seqtool train-rnn --help``).

    Parameters
    ----------
    data : str, optional
        A built-in set (``"sentiment"`` (default), ``"parity"``, ``"adding"``, ``"echo"``,
        ``"sine"``, ``"dyck"``; seq2seq: ``"reverse"``, ``"sort"``, ``"copy"``,
        ``"addition"``, ``"dates"``) or a file (TSV/CSV/JSONL; text for lm).
    task : str, optional
        ``"classify"``, ``"tag"``, ``"lm"``, ``"regress"`` or ``"seq2seq"`` (built-in sets
        know theirs).
    val, val_fraction : optional
        A validation file, or the share of the data held out (default 0.1).
    tokenizer, max_len : optional
        ``"char"`` or ``"word"``; the longest sequence kept (lm: the chunk length).
    samples, seq_len, delay : int, optional
        Built-in sets: how many sequences, their length, echo's delay.
    cell : str, optional
        ``"rnn"``, ``"gru"``, ``"lstm"`` (default) or ``"bow"`` (bag of words).
    hidden, layers, embedding_dim, dropout : optional
        H (default 64), stacked layers (1), the embedding size (32), dropout between
        layers (0).
    bidirectional : bool
        classify, seq2seq: a bidirectional encoder, H/2 units each way.
    pool : str, optional
        classify: ``"last"`` (default), ``"mean"``, ``"max"`` or ``"attention"``.
    score, selector, temperature, alpha, k : optional
        Attention (``pool="attention"``, seq2seq): the score (``"dot"``, ``"general"``,
        ``"additive"``), the selector (any registered one, or ``"reinforce"``) and its
        parameters.
    nonlinearity, dtype : str, optional
        The rnn cell's f (``"tanh"``, ``"relu"``); ``"float32"`` (default) or ``"float64"``.
    optimizer, lr, weight_decay, clip_norm : optional
        ``"sgd"``, ``"momentum"``, ``"adam"`` (default), ``"adagrad"``; the learning rate
        (0.003); an L2 penalty; a global gradient-norm clip.
    batch_size, epochs, steps, patience : int, optional
        Sequences per step (32); passes over the data (10), or optimiser steps in all;
        early stopping after this many epochs without a better validation loss.
    seed : int, optional
        Seed of the data, the initialisation, the order and dropout (default 0).
    out : str, optional
        The run directory (default ``runs/<task>-<cell>-<time>``).
    threads : int, optional
        Threads the rows of each batch are split across (default: every core). A run is
        bit-identical for a given count, which the run keeps for ``resume``.
    resume : str, optional
        Continue the run in this directory (``epochs``, ``steps`` and ``patience`` may
        change), as ``--resume``.
    explain : bool
        Also measure the trained model's dependency map, as ``--explain``.

    Returns
    -------
    TrainReport
        ``to_json()`` is what ``--format json`` prints. Its attributes: ``out`` (the run
        directory, which holds the model: see :func:`load`), ``spec`` (the ModelSpec),
        ``history`` (one dict per epoch: ``train_loss``, ``val_loss``, the metric, ...),
        ``metric`` (its name: accuracy, perplexity or mse), ``best_epoch``, ``best_val``
        and ``final_val`` (validation records), ``baseline`` (the majority/mean
        baseline's scores), ``params`` (the final weights by torch's names),
        ``stop_reason``, ``train_size``, ``val_size``, ``parameters``, and with
        ``explain`` ``dependency`` (the map ‖∂y_t/∂x_s‖).

    Raises
    ------
    InputError
        As the flags (an unknown data set, a parameter that does not apply, ...).
    RunError
        The training diverged (the report is ``err.report``).

    Examples
    --------
    >>> import seqtool, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     report = seqtool.train("parity", samples=64, hidden=4, epochs=1,
    ...                            out=tmp + "/run")
    ...     print(report.to_json()["epochs_run"], report.spec.task)
    1 classify
    >>> seqtool.train("parity", cell="lstn")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seqtool.core.errors.InputError: cell is 'lstn' (did you mean lstm?); choose one of ...
    """
    return _run("train-rnn", {
        "data": data, "task": task, "val": val, "val_fraction": val_fraction,
        "tokenizer": tokenizer, "max_len": max_len, "samples": samples, "seq_len": seq_len,
        "delay": delay, "cell": cell, "hidden": hidden, "layers": layers,
        "embedding_dim": embedding_dim, "dropout": dropout, "bidirectional": bidirectional,
        "pool": pool, "score": score, "selector": selector, "temperature": temperature,
        "alpha": alpha, "k": k, "nonlinearity": nonlinearity, "dtype": dtype,
        "optimizer": optimizer, "lr": lr, "weight_decay": weight_decay,
        "clip_norm": clip_norm, "batch_size": batch_size, "epochs": epochs, "steps": steps,
        "patience": patience, "seed": seed, "out": out, "threads": threads}, resume=resume,
        explain=explain)


def run_recipe(path: str, *, out: str | None = None, jobs: int | None = None,
               scheduler: str | None = None, sets: Iterable[str] | None = None,
               dry_run: bool = False, explain: bool = False) -> Any:
    """Run a YAML recipe: one command, a sweep or steps (``seqtool run``).

    Parameters
    ----------
    path : str
        The recipe file.
    out : str, optional
        Where the runs go (default ``runs/<name>/``).
    jobs : int, optional
        Run on a local Dask cluster of this many processes.
    scheduler : str, optional
        Run on an existing Dask cluster (``tcp://host:port``).
    sets : iterable of str, optional
        Overrides of recipe keys, ``"params.hidden=128"`` (as ``--set``).
    dry_run : bool
        Only expand the runs (the report lists them).
    explain : bool
        Each run's ``--explain`` too.

    Returns
    -------
    RecipeReport
        Each run's status and metrics, and the summary over seeds (a dry run: the runs).

    Raises
    ------
    InputError
        A recipe that cannot be read or is not valid; bad settings.
    RunError
        A run of the recipe failed (the others still ran; the report is ``err.report``).

    Examples
    --------
    >>> import seqtool
    >>> seqtool.run_recipe("missing.yaml")
    Traceback (most recent call last):
    ...
    seqtool.core.errors.InputError: recipe names the file 'missing.yaml', which does not exist
    """
    return _run("run", {"recipe": path, "out": out, "jobs": jobs, "scheduler": scheduler,
                        "sets": list(sets) if sets is not None else None,
                        "dry_run": dry_run}, explain=explain)


def plot(report: Any, path: str | None = None) -> Any:
    """The picture of a report, as ``--plot FILE`` draws it (needs matplotlib).

    Drawn from ``report.to_dict()`` by its command's plot, so a report read back from a
    recipe's ``report.json`` draws the same picture.

    Parameters
    ----------
    report : Report
        What :func:`attend`, :func:`compare_selectors`, :func:`bptt`, :func:`train`,
        :func:`run_recipe` or ``Model.evaluate`` returned.
    path : str, optional
        Also write the picture here, atomically; the extension picks the format: ``.png``,
        ``.svg``, ``.pdf`` or ``.html`` (one self-contained page).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (``fig.savefig(...)`` for any other format matplotlib knows).

    Raises
    ------
    InputError
        A report whose command draws no picture (predict, sample, export), an unknown
        extension, a folder that does not exist, matplotlib not installed.

    Examples
    --------
    >>> import seqtool
    >>> fig = seqtool.plot(seqtool.attend(query="3,-1", selector="argmax"))
    >>> fig.axes[0].get_title().splitlines()[0]
    'weights w = argmax(s)'
    >>> seqtool.plot(seqtool.attend(query="3,-1"), "weights.gif")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seqtool.core.errors.InputError: path is 'weights.gif'; the extension chooses the format, ...
    """
    from seqtool.render.notebook import command_of
    from seqtool.render.plots import check_plot_path, encode, require_matplotlib

    command = command_of(report)
    if command is None or not command.plot:
        name = "this report's command" if command is None else command.name
        raise InputError("report", f"{type(report).__name__}: {name} draws no picture")
    target = check_plot_path(str(path), "path") if path is not None else None
    require_matplotlib("report")
    fig = command.call("plot", report.to_dict())
    if target is not None:
        from seqtool.io.checkpoint import write_atomic

        write_atomic(target, encode(fig, target.suffix,
                                    command.plot_title or f"seqtool {command.name}"))
    return fig


class Model:
    """A trained run directory (``train --out``), to predict, sample and evaluate with.

    Made by :func:`load`. Each method runs the command of the same name (``seqtool
    predict RUN``, ...) on this run directory and returns its report.

    Attributes
    ----------
    run : str
        The run directory.
    spec : ModelSpec
        What the model is: ``task``, ``cell``, ``hidden``, ``layers``, ... (read from
        ``model.json``).
    """

    def __init__(self, run: str, trained: Any):
        self.run = run
        self._trained = trained  # seqtool.commands.trained.Model: spec, params, meta
        self.spec = trained.spec

    @property
    def params(self) -> dict[str, Any]:
        """The weights, by torch's names (``rnn.weight_ih_l0``, ``head.weight``, ...)."""
        return self._trained.params

    @property
    def vocab(self) -> list[str] | None:
        """The token of each id (``<pad>``, ``<unk>``, ...), or None (numeric inputs)."""
        return self._trained.meta.get("vocab")

    @property
    def labels(self) -> list[str] | None:
        """The class or tag names (classify, tag), or None."""
        return self._trained.labels

    def __repr__(self) -> str:
        return (f"seqtool.Model({self.run!r}: {self.spec.task}, {self.spec.cell}, "
                f"hidden {self.spec.hidden})")

    def predict(self, texts: str | Iterable[str], beam: int = 1) -> Any:
        """Label texts (classify, tag) or decode them (seq2seq), as ``seqtool predict``.

        Parameters
        ----------
        texts : str or iterable of str
            One text or several.
        beam : int
            seq2seq: the beam width (1: greedy).

        Returns
        -------
        PredictReport
            ``to_json()``: one object per text (label and probabilities, tags, or output
            and alignment), what ``--format json`` prints.

        Raises
        ------
        InputError
            No texts, a text too long, ``beam`` for a model that is not seq2seq, a model
            that does not label texts (lm, regress).

        Examples
        --------
        >>> import seqtool, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = seqtool.train(data="parity", samples=64, hidden=4, epochs=1,
        ...                       out=tmp + "/run")
        ...     rows = seqtool.load(tmp + "/run").predict(["0110", "111"]).to_json()
        >>> [row["text"] for row in rows], sorted(rows[0]["probabilities"])
        (['0110', '111'], ['even', 'odd'])
        """
        items = [texts] if isinstance(texts, str) else list(texts)
        return _run("predict", {"run": self.run, "text": items, "beam": beam})

    def sample(self, length: int | None = None, temperature: float | None = None,
               prime: str | None = None, seed: int | None = None) -> Any:
        """Draw tokens from a language model, as ``seqtool sample``.

        Parameters
        ----------
        length : int, optional
            Tokens to draw at most (default 100).
        temperature : float, optional
            Softmax temperature (default 1; 0: always the likeliest token).
        prime : str, optional
            Text to start from.
        seed : int, optional
            Seed of the draws (default 0).

        Returns
        -------
        SampleReport
            The text drawn; ``to_json()`` as ``--format json``.

        Raises
        ------
        InputError
            A model that is not a language model; a bad setting.

        Examples
        --------
        >>> import seqtool, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +ELLIPSIS
        ...     _ = seqtool.train(data="parity", samples=64, hidden=4, epochs=1,
        ...                       out=tmp + "/run")
        ...     seqtool.load(tmp + "/run").sample(length=5)
        Traceback (most recent call last):
        ...
        seqtool.core.errors.InputError: run holds a classify model; sample needs a language ...
        """
        return _run("sample", {"run": self.run, "length": length,
                               "temperature": temperature, "prime": prime, "seed": seed})

    def evaluate(self, data: str, seed: int = 0, samples: int | None = None) -> Any:
        """Score the model on a data file or a fresh draw of a built-in set, as ``seqtool
        evaluate``.

        Parameters
        ----------
        data : str
            A file in the training format, or the built-in set's name.
        seed : int
            Seed of a built-in set.
        samples : int, optional
            Built-in sets: how many sequences.

        Returns
        -------
        EvaluateReport
            Loss and accuracy, perplexity or mse; ``to_json()`` as ``--format json``.

        Raises
        ------
        InputError
            Data the model cannot read; a bad setting.

        Examples
        --------
        >>> import seqtool, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = seqtool.train(data="parity", samples=64, hidden=4, epochs=1,
        ...                       out=tmp + "/run")
        ...     report = seqtool.load(tmp + "/run").evaluate("parity", seed=3, samples=20)
        >>> 0.0 <= report.to_json()["accuracy"] <= 1.0
        True
        """
        return _run("evaluate", {"run": self.run, "data": data, "seed": seed,
                                 "samples": samples})


    def encode(self, texts: str | Iterable[str]) -> tuple[Any, Any]:
        """Texts as the model's inputs, tokenised and cut as in training: what
        :meth:`to_torch`'s module and an exported file take (seq2seq: the sources).

        Parameters
        ----------
        texts : str or iterable of str
            One text or several.

        Returns
        -------
        ids : numpy.ndarray
            (B, T) int64 vocabulary ids, right-padded with ``<pad>`` (0); an unknown token
            is ``<unk>`` (1), a text with no tokens one ``<pad>`` step.
        lengths : numpy.ndarray
            (B,) int64, each ≥ 1.

        Raises
        ------
        InputError
            A model that reads numbers (regress), not texts.

        Examples
        --------
        >>> import seqtool, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = seqtool.train("parity", samples=64, hidden=4, epochs=1, out=tmp + "/run")
        ...     ids, lengths = seqtool.load(tmp + "/run").encode(["0110", "1"])
        >>> ids.shape, lengths.tolist()
        ((2, 4), [4, 1])
        """
        import numpy as np

        from seqtool.core.data import encode_texts

        if self.vocab is None:
            raise InputError("texts", f"this {self.spec.task} model reads numbers, not texts")
        items = [texts] if isinstance(texts, str) else list(texts)
        trained = self._trained
        sequences = encode_texts(items, trained.vocab, trained.tokenizer or "word",
                                 trained.meta.get("max_len"))
        lengths = np.array([max(len(seq), 1) for seq in sequences], dtype=np.int64)
        ids = np.zeros((len(sequences), int(lengths.max(initial=1))), dtype=np.int64)
        for b, seq in enumerate(sequences):
            ids[b, :len(seq)] = seq
        return ids, lengths

    def to_torch(self) -> Any:
        """The model as a ``torch.nn.Module`` (PyTorch must be installed): torch's own
        Embedding, RNN/GRU/LSTM and Linear layers holding these weights, whose outputs equal
        seqtool's. ``module(ids, lengths)`` (batch first, :meth:`encode` gives them;
        ``module.encode(texts)`` too) returns the logits, and the attention weights for an
        attending model; seq2seq: ``module(src, src_lengths, tgt, tgt_lengths)``. The inputs
        and outputs of every task are listed in :mod:`seqtool.export`.

        Raises
        ------
        InputError
            PyTorch is not installed.

        Examples
        --------
        >>> import seqtool, tempfile, torch
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = seqtool.train("parity", samples=64, hidden=4, epochs=1, out=tmp + "/run")
        ...     model = seqtool.load(tmp + "/run")
        ...     probs = model.predict(["0110"]).to_json()[0]["probabilities"]
        >>> module = model.to_torch()
        >>> ids, lengths = model.encode(["0110", "111"])
        >>> logits = module(torch.from_numpy(ids), torch.from_numpy(lengths))
        >>> abs(torch.softmax(logits, -1)[0, 0].item() - probs[model.labels[0]]) < 1e-6
        True
        """
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise InputError("to_torch", "needs PyTorch, which is not installed: pip install "
                             "torch")
        from seqtool.export.torch_module import build

        trained = self._trained
        return build(trained.spec, trained.params, trained.meta)

    def export(self, out: str, to: str | None = None, check: bool = True) -> Any:
        """Write the model for another runtime, as ``seqtool export``: a TorchScript
        archive (``to="torch"``, .pt) or an ONNX model (``to="onnx"``, .onnx; default: from
        the extension of ``out``), first run in its own runtime and compared with seqtool
        (``check``).

        Returns
        -------
        ExportReport
            ``path``, ``bytes``, the inputs and outputs, and ``errors``: the largest
            relative difference from seqtool per output.

        Raises
        ------
        InputError
            An unknown format, a file that must not be overwritten, a missing package.
        RunError
            The file's outputs differ from seqtool's (nothing was written).

        Examples
        --------
        >>> import seqtool, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = seqtool.train("parity", samples=64, hidden=4, epochs=1, out=tmp + "/run")
        ...     report = seqtool.load(tmp + "/run").export(tmp + "/parity.onnx")
        >>> report.format, report.written, report.worst < 1e-4
        ('onnx', True, True)
        >>> [item["name"] for item in report.inputs]
        ['ids', 'lengths']
        """
        return _run("export", {"run": self.run, "out": out, "to": to,
                               "no_check": not check})

def load(run_dir: Any) -> Model:
    """Read a trained run directory (``train(out=...)``, ``seqtool train-rnn --out``).

    Parameters
    ----------
    run_dir : str or path-like
        The run directory; its ``model.npz`` and ``model.json`` are read and checked now.

    Returns
    -------
    Model
        With ``.spec``, ``.predict(texts, beam=1)``, ``.sample(...)`` and
        ``.evaluate(data, seed=0, samples=None)``.

    Raises
    ------
    InputError
        The directory does not exist or holds no valid model (a ``CheckpointError``, an
        InputError about ``run``).

    Examples
    --------
    >>> import seqtool, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = seqtool.train(data="parity", samples=64, hidden=4, epochs=1,
    ...                       out=tmp + "/run")
    ...     model = seqtool.load(tmp + "/run")
    >>> model.spec.task, model.spec.hidden
    ('classify', 4)
    """
    from seqtool.commands.use import load_run
    from seqtool.config import as_text

    run = as_text("run", str(run_dir))
    return Model(run, load_run(run))
