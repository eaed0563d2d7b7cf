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

from collections.abc import Iterable
from typing import Any

from seqtool.core.errors import RunError
from seqtool.core.report import set_html_view


def _report_html(report: Any) -> str:
    """A report's table and plot as HTML, drawn by the render layer (imported on first use)."""
    from seqtool.render.notebook import report_html

    return report_html(report)


set_html_view(_report_html)  # reports returned by this API draw themselves in Jupyter

__all__ = ["Model", "attend", "bptt", "compare_selectors", "load", "run_recipe", "train"]


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


def attend(query: Any = None, keys: Any = None, values: Any = None, selector: str = "softmax",
           *, temperature: float | None = None, alpha: float | None = None,
           k: int | None = None, seed: int | None = None, hard: bool = False,
           scale: float | str | None = None, grad: bool = False,
           upstream: Any = None) -> Any:
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


def compare_selectors(query: Any = None, keys: Any = None, values: Any = None,
                      **params: Any) -> Any:
    """Selectors side by side on the same inputs (``seqtool compare-selectors``).

    Parameters
    ----------
    query, keys, values : str, array_like or None
        As for :func:`attend` (the worked example when no keys are given).
    **params
        Any other parameter of ``seqtool compare-selectors``, by its Config name:
        ``selectors`` (``"softmax,argmax"`` or a list; default every registered selector),
        the selectors' ``temperature``, ``alpha``, ``k``, ``seed``, ``hard``, ``scale``,
        ``upstream``; ``repeats`` (timing repeats); ``cost``, ``sizes``, ``dim`` (time
        selection as the number of keys grows); ``learn``, ``steps``, ``pairs``, ``vocab``,
        ``lr`` (train on associative recall through each selector).

    Returns
    -------
    CompareReport
        ``to_json()`` is what ``--format json`` prints: a row per selector (weights,
        outputs, entropy, support, gradient norms, time), and the cost and learning runs
        when asked.

    Raises
    ------
    InputError
        As the flags: an unknown parameter or selector, a bad number or shape.

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
    return _run("compare-selectors", {"query": query, "keys": keys, "values": values,
                                      **params})


def bptt(**params: Any) -> Any:
    """Backpropagation through time of a vanilla RNN, GRU or LSTM, laid open (``seqtool
    bptt``).

    Parameters
    ----------
    **params
        Any parameter of ``seqtool bptt`` by its Config name. A generated problem:
        ``steps`` (T), ``input_size``, ``hidden``, ``output_size``, ``seed``, ``radius``
        (the spectral radius of W_hh), ``cell`` (``"rnn"``, ``"gru"``, ``"lstm"`` or a
        comma list), ``forget_bias``; or a given one: ``W_xh``, ``W_hh``, ``W_hy``,
        ``b_h``, ``b_y``, ``h0``, ``x``, ``y`` (arrays, lists or the CLI's text). Settings:
        ``activation``, ``loss``, ``target_at``, ``truncate``, ``jacobian``, ``check``.

    Returns
    -------
    BpttReport
        The loss, every gradient, each step's share of ∂L/∂W_hh, the Jacobian norms
        ‖∂h_T/∂h_k‖ (several cells: one report per cell, side by side).

    Raises
    ------
    InputError
        As the flags.
    RunError
        ``check=True`` and the finite-difference check did not pass (the report is
        ``err.report``).

    Examples
    --------
    >>> import seqtool
    >>> report = seqtool.bptt(steps=5, hidden=3, seed=1)
    >>> len(report.to_json()["jacobian_norms"])
    5
    >>> seqtool.bptt(steps=0)
    Traceback (most recent call last):
    ...
    seqtool.core.errors.InputError: steps must be a whole number ≥ 1, got 0
    """
    return _run("bptt", params)


def train(*, resume: str | None = None, explain: bool = False, **params: Any) -> Any:
    """Train a vanilla RNN, GRU or LSTM (``seqtool train-rnn``), writing a run directory.

    Parameters
    ----------
    resume : str, optional
        Continue the run in this directory (``epochs``, ``steps`` and ``patience`` may
        change), as ``--resume``.
    explain : bool
        Also measure the trained model's dependency map, as ``--explain``.
    **params
        Any parameter of ``seqtool train-rnn`` by its Config name: ``data`` (a built-in
        set such as ``"parity"`` or a file), ``task``, ``samples``, ``seq_len``, ``cell``,
        ``hidden``, ``layers``, ``embedding_dim``, ``pool``, ``selector``, ``optimizer``,
        ``lr``, ``batch_size``, ``epochs``, ``steps``, ``patience``, ``seed``, ``out``
        (the run directory), ...

    Returns
    -------
    TrainReport
        Every epoch's record and the summary; ``to_json()`` is what ``--format json``
        prints. The run directory (``report.out``) holds the model: see :func:`load`.

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
    ...     report = seqtool.train(data="parity", samples=64, hidden=4, epochs=1,
    ...                            out=tmp + "/run")
    ...     print(report.to_json()["epochs_run"], report.spec.task)
    1 classify
    >>> seqtool.train(data="parity", cell="lstn")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seqtool.core.errors.InputError: cell is 'lstn' (did you mean lstm?); choose one of ...
    """
    return _run("train-rnn", params, resume=resume, explain=explain)


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

    def __init__(self, run: str, spec: Any):
        self.run = run
        self.spec = spec

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
    return Model(run, load_run(run).spec)
