"""Shared fixtures.

``cli``
    ``cli(*args, input=None)`` runs ``seqtool *args`` in-process through Typer's CliRunner
    and returns a :class:`Result` (exit code, stdout and stderr kept apart, ``.json()``).

``small_problem``
    ``small_problem(cell="gru", input_size=3, hidden=4, steps=5, batch=2, layers=1,
    seed=0, dtype=np.float64)`` -> :class:`Problem`: random inputs ``x`` (T, B, D), initial
    states ``h0`` (and ``c0`` for the LSTM) (L, B, H), an upstream gradient ``G`` (T, B, H)
    for a loss L = Σ G·h, and the weights ``state`` of a ``layers``-deep cell under torch's
    names and layouts (``weight_ih_l0`` (G·H, D), ``weight_hh_l0``, ``bias_ih_l0``,
    ``bias_hh_l0``, ...; G = 1, 3, 4 gates for rnn, gru, lstm), drawn as torch initialises
    them (U(−1/√H, 1/√H)). Everything is a fresh array of ``dtype``; the same arguments give
    the same bits. It is built here with NumPy, not by seqtool, so a test of seqtool's cells
    does not take its inputs from the code under test.

``torch_module``
    ``torch_module(cell, state, nonlinearity="tanh")`` -> a ``torch.nn.RNN/GRU/LSTM``
    (sizes and layer count read off ``state``, float64 or float32 as the state's arrays)
    holding the weights of a seqtool state dict (torch's keys, with or without an ``rnn.``
    prefix). Skips the test when torch is not installed (CI installs it, so there it runs).

``torch_model``
    ``torch_model(cell, params, nonlinearity="tanh")`` -> :class:`TorchModel`: the whole
    sequence model of a seqtool checkpoint (``embedding.weight``, ``rnn.*``, ``head.weight``,
    ``head.bias``) as torch modules; ``.step_logits(ids)`` gives the head's output at every
    step, y_t = W h^L_t + b, for one sequence of token ids. Skips as ``torch_module``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI does (seqtool/cli/__init__.py)
# The defaults, not a tuning some `seqtool compile` measured on this machine: every test run
# takes the same paths (tests/core/test_measure.py tests the stored tuning itself)
os.environ["SEQTOOL_TUNING_FILE"] = "none"

import json  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from seqtool.cli import app  # noqa: E402

GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # torch's gate blocks: -, (r, z, n), (i, f, g, o)


@pytest.fixture
def long_training():
    """long_training(out) -> a `seqtool train-rnn` process (400 epochs of parity, jsonl on
    stdout) in its own interpreter, returned once its first epoch is in metrics.jsonl and
    its checkpoint saved: a run to send signals to. Killed at the end of the test if it
    still runs."""
    import subprocess
    import sys
    import time

    started = []

    def start(out):
        args = [sys.executable, "-m", "seqtool", "train-rnn", "--data", "parity", "--seq-len",
                "8", "--samples", "2000", "--hidden", "32", "--epochs", "400", "--out",
                str(out), "-f", "jsonl"]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "NO_COLOR": "1"})
        started.append(proc)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "metrics.jsonl").exists() and (out / "last.json").exists():
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


class Result:
    """What one CLI run gave: exit code, stdout, stderr (kept apart)."""

    def __init__(self, raw):
        self.exit_code = raw.exit_code
        self.stdout = raw.stdout
        self.stderr = raw.stderr
        self.exception = raw.exception

    def json(self):
        return json.loads(self.stdout)


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 always keeps them apart
        return CliRunner()


@pytest.fixture
def cli():
    """cli(*args, input=None) runs `seqtool *args` in-process through Typer's CliRunner."""
    runner = _runner()

    def run(*args: str, input: str | None = None) -> Result:
        return Result(runner.invoke(app, list(args), input=input))

    return run


# ---------------------------------------------------------------------------------------
# A small problem for a recurrent cell


@dataclass
class Problem:
    """Inputs and weights of one small recurrent problem (see the module docstring)."""

    cell: str
    x: np.ndarray  # (T, B, D)
    h0: np.ndarray  # (L, B, H)
    c0: np.ndarray | None  # (L, B, H), lstm only
    G: np.ndarray  # (T, B, H): ∂L/∂h_t of the last layer, for L = Σ_t G_t · h_t
    state: dict[str, np.ndarray]  # torch's names: weight_ih_l0, weight_hh_l0, bias_ih_l0, ...
    seed: int
    dtype: np.dtype

    @property
    def steps(self) -> int:
        return self.x.shape[0]

    @property
    def batch(self) -> int:
        return self.x.shape[1]

    @property
    def hidden(self) -> int:
        return self.h0.shape[2]

    @property
    def layers(self) -> int:
        return self.h0.shape[0]


def make_problem(cell: str = "gru", input_size: int = 3, hidden: int = 4, steps: int = 5,
                 batch: int = 2, layers: int = 1, seed: int = 0,
                 dtype=np.float64) -> Problem:
    if cell not in GATES:
        raise ValueError(f"cell is {cell!r}; the fixture knows {sorted(GATES)}")
    rng = np.random.default_rng([seed, 12])
    dtype = np.dtype(dtype)
    bound = 1.0 / np.sqrt(hidden)
    state = {}
    for layer in range(layers):
        width = input_size if layer == 0 else hidden
        rows = GATES[cell] * hidden
        for name, shape in (("weight_ih", (rows, width)), ("weight_hh", (rows, hidden)),
                            ("bias_ih", (rows,)), ("bias_hh", (rows,))):
            state[f"{name}_l{layer}"] = rng.uniform(-bound, bound, shape).astype(dtype)
    x = rng.standard_normal((steps, batch, input_size)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((layers, batch, hidden))).astype(dtype)
    c0 = (0.5 * rng.standard_normal((layers, batch, hidden))).astype(dtype) if cell == "lstm" else None
    G = rng.standard_normal((steps, batch, hidden)).astype(dtype)
    return Problem(cell, x, h0, c0, G, state, seed, dtype)


@pytest.fixture
def small_problem():
    """small_problem(cell, input_size, hidden, steps, batch, layers, seed, dtype) -> Problem."""
    return make_problem


# ---------------------------------------------------------------------------------------
# torch modules holding a seqtool state dict


def _torch_module(torch, cell: str, state: dict[str, np.ndarray], nonlinearity: str = "tanh"):
    state = {k[len("rnn."):] if k.startswith("rnn.") else k: v for k, v in state.items()}
    layers = sum(1 for k in state if k.startswith("weight_ih_l"))
    rows, input_size = state["weight_ih_l0"].shape
    hidden = rows // GATES[cell]
    kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    module = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](
        input_size, hidden, num_layers=layers, **kwargs)
    module = module.double() if state["weight_ih_l0"].dtype == np.float64 else module.float()
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return module


@pytest.fixture
def torch_module():
    """torch_module(cell, state, nonlinearity="tanh") -> torch.nn.RNN/GRU/LSTM."""
    torch = pytest.importorskip("torch")
    return lambda cell, state, nonlinearity="tanh": _torch_module(torch, cell, state,
                                                                  nonlinearity)


class TorchModel:
    """Embedding -> RNN/GRU/LSTM -> Linear, from a seqtool model's parameters."""

    def __init__(self, torch, cell: str, params: dict[str, np.ndarray], nonlinearity: str):
        self.torch = torch
        E = params["embedding.weight"]
        self.embedding = torch.nn.Embedding(*E.shape)
        W = params["head.weight"]
        self.head = torch.nn.Linear(W.shape[1], W.shape[0])
        for module in (self.embedding, self.head):
            module.to(torch.float64 if E.dtype == np.float64 else torch.float32)
        self.embedding.load_state_dict({"weight": torch.from_numpy(np.array(E))})
        self.head.load_state_dict({"weight": torch.from_numpy(np.array(W)),
                                   "bias": torch.from_numpy(np.array(params["head.bias"]))})
        self.rnn = _torch_module(torch, cell, {k: v for k, v in params.items()
                                               if k.startswith("rnn.")}, nonlinearity)

    def parameters(self):
        return [*self.embedding.parameters(), *self.rnn.parameters(), *self.head.parameters()]

    def states(self, ids):
        """h^L_t for token ids (T,) or (T, B): (T, H) or (T, B, H), a torch tensor."""
        ids = self.torch.as_tensor(np.asarray(ids, dtype=np.int64))
        out, _ = self.rnn(self.embedding(ids))
        return out

    def step_logits(self, ids) -> np.ndarray:
        """y_t = W h^L_t + b at every step (no gradient): (T, O) or (T, B, O)."""
        with self.torch.no_grad():
            return self.head(self.states(ids)).numpy()


@pytest.fixture
def torch_model():
    """torch_model(cell, params, nonlinearity="tanh") -> TorchModel."""
    torch = pytest.importorskip("torch")
    return lambda cell, params, nonlinearity="tanh": TorchModel(torch, cell, params,
                                                                nonlinearity)


# The test files that take longest (cold: compiling in subprocesses, the notebook's kernel,
# the README's command lines), run first: xdist hands out whole files in this order
# (--no-loadscope-reorder in pyproject.toml), so that what is left at the end is many short
# files that even out the two workers, not one long file that keeps one of them busy.
SLOWEST_FIRST = ("test_readme.py", "test_notebook.py", "test_fastpaths.py", "test_bptt.py",
                 "test_kernel_cache.py", "test_products.py", "test_run.py",
                 "test_report_html.py", "test_compile.py", "test_hostile.py", "test_training.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole


def pytest_collection_finish(session):
    """A whole-suite run under xdist compiles every cell's kernels first, the jobs split
    between the workers (tests/precompile.py)."""
    import precompile

    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None and precompile.wanted(session):
        precompile.precompile(factory.getbasetemp().parent / "precompiled-kernels")
