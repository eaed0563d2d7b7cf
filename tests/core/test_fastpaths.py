"""Every way of running the recurrent core gives the default path's numbers:

- NUMBA_DISABLE_JIT=1 (the kernels as plain Python, every intrinsic through its Python
  form) against the compiled kernels, for each cell and for ``seqtool bptt``;
- SEQTOOL_PLAIN_PRODUCTS=1 (every product np.dot) against the register tiles and blocked
  loops;
- the large-size paths (arrays from a workspace, the LSTM's products after the loop in
  NumPy, gathered rows), run at small sizes by lowering the per-call thresholds, against
  the default path and the loop references;
- and the tuning object itself: parsed from the environment, refused where it would need a
  recompile.

The subprocesses share this checkout's kernel cache: a non-default tuning caches into its
own directory (seqtool.core.rnn.jit), so only the first run of a session compiles.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiling import quick_compile
from harness import assert_close
from naive import ref_gated_gradients, ref_gru_states, ref_lstm_states
from rnn_cases import compute, problem, run_cell
from seqtool.core.buffers import Workspace
from seqtool.core.errors import InputError
from seqtool.core.rnn import lengths as lengths_module
from seqtool.core.rnn import tuning

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "rnn_cases.py"


def environment(**changes) -> dict:
    """This process's environment with this checkout first on the path, plus ``changes``
    (None removes a variable)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name in (tuning.PLAIN_VARIABLE, tuning.TUNING_VARIABLE, "NUMBA_DISABLE_JIT"):
        env.pop(name, None)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


# The cells split over two processes run side by side (each compiles its own kernels: on
# two cores the wall time of a cold compile is about halved)
CELL_GROUPS = ("rnn,gru", "lstm")


def cases_in_subprocess(tmp_path, tiny: bool, **env) -> tuple[dict[str, np.ndarray], list]:
    """rnn_cases.compute() in processes with ``env``, and how they ran:
    [jit disabled, *the compiled tuning]."""
    running = []
    for i, cells in enumerate(CELL_GROUPS):
        out = tmp_path / f"cases{i}.npz"
        args = ([sys.executable, str(CASES), str(out)] + (["--tiny"] if tiny else [])
                + ["--cells", cells])
        running.append((out, subprocess.Popen(args, env=quick_compile(environment(**env)),
                                              text=True, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE)))
    cases, how = {}, []
    for out, process in running:
        _, stderr = process.communicate(timeout=1200)
        assert process.returncode == 0, stderr
        with np.load(out) as data:
            part = {name: data[name] for name in data.files}
        how.append(part.pop("_how").tolist())
        cases.update(part)
    assert how[0] == how[1]
    return cases, how[0]


def assert_same_numbers(comp: dict, ref: dict) -> None:
    assert sorted(comp) == sorted(ref)
    for name in ref:
        assert_close(comp[name], ref[name], what=name)


# ---------------------------------------------------------------------------------------
# NUMBA_DISABLE_JIT=1 and the plain products


def test_without_jit_every_cell_gives_the_compiled_numbers(tmp_path):
    python, how = cases_in_subprocess(tmp_path, tiny=True, NUMBA_DISABLE_JIT="1")
    assert how[0] == 1
    assert_same_numbers(python, compute(tiny=True))


def bptt_json(cell: str, **env) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "seqtool", "bptt", "--steps", "4", "--cell", cell,
         "--format", "json"], env=environment(**env), capture_output=True, text=True,
        timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def numbers(value, path=""):
    """(path, float) for every number in a JSON value, and (path, other) for the rest."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from numbers(item, f"{path}[{i}]")
    else:
        yield path, value


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_without_jit_bptt_reports_the_compiled_numbers(cell):
    compiled = dict(numbers(bptt_json(cell)))
    python = dict(numbers(bptt_json(cell, NUMBA_DISABLE_JIT="1")))
    assert compiled.keys() == python.keys()
    floats = {k: v for k, v in compiled.items() if isinstance(v, float)}
    assert len(floats) > 50  # states, losses, every gradient, the Jacobian norms
    for key, value in compiled.items():
        if isinstance(value, float):
            assert_close(python[key], value, what=key)
        else:
            assert python[key] == value, key


def test_without_jit_training_gives_the_compiled_numbers(tmp_path):
    # the models' and the optimiser's kernels too (seqtool.core.models, seqtool.core.fused)
    def train(out, **env):
        result = subprocess.run(
            [sys.executable, "-m", "seqtool", "train-rnn", "--data", "parity", "--cell", "lstm",
             "--samples", "24", "--seq-len", "5", "--hidden", "4", "--steps", "3",
             "--batch-size", "8", "--dtype", "float64", "--optimizer", "adam", "--out",
             str(tmp_path / out), "--format", "json"], env=environment(**env),
            capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stderr
        report = dict(numbers(json.loads(result.stdout)))
        return {k: v for k, v in report.items()
                if not k.endswith((".seconds", ".tokens_per_s", ".out"))}

    compiled, python = train("compiled"), train("python", NUMBA_DISABLE_JIT="1")
    assert compiled.keys() == python.keys()
    losses = [k for k in compiled if ".loss" in k]
    assert losses
    for key, value in compiled.items():
        if isinstance(value, float):
            assert_close(python[key], value, what=key)
        else:
            assert python[key] == value, key


def test_plain_products_give_the_numbers_of_the_tiles(tmp_path):
    plain, how = cases_in_subprocess(tmp_path, tiny=False, SEQTOOL_PLAIN_PRODUCTS="1")
    assert how == [0, *dataclasses.replace(tuning.DEFAULTS, plain=True).compiled()]
    assert_same_numbers(plain, compute())


# ---------------------------------------------------------------------------------------
# The large-size paths at small sizes

LARGE_PATHS = dict(recycle_from=0, products_in_kernel_below=0, gather_below=1.01)


def test_large_size_paths_give_the_default_numbers():
    default = compute()
    with tuning.use(**LARGE_PATHS):
        large = compute()
    assert_same_numbers(large, default)


# (T, B, D, H), small: the references are loops over complex numbers; B = 9 runs a tile of 8
# rows and one left over
REFERENCE_SHAPES = [(5, 1, 3, 4), (5, 4, 3, 5), (4, 9, 2, 3)]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("shape", REFERENCE_SHAPES)
def test_large_size_paths_match_the_loop_references(cell, shape):
    p = problem(cell, *shape, seed=sum(shape) + 1)
    space = Workspace()
    with tuning.use(**LARGE_PATHS):
        # the paths really run: rows gathered (below 101 % real steps: always), arrays
        # from the workspace
        assert lengths_module.step_schedule(p["lengths"], shape[0], shape[1])[1] is not None
        got = run_cell(cell, p, p["lengths"], workspace=space)
    assert space.nbytes > 0
    T, B = shape[:2]
    weights = {"weight_ih": 0, "weight_hh": 0, "bias_ih": 0, "bias_hh": 0}
    for b in range(B):
        n = int(p["lengths"][b])  # the sequence runs n steps, then keeps its state
        args = {"x": p["X"][:n, b], "weight_ih": p["W_ih"], "weight_hh": p["W_hh"],
                "bias_ih": p["b_ih"], "bias_hh": p["b_hh"], "h0": p["h0"][b]}
        if cell == "lstm":
            args["c0"] = p["c0"][b]
            ref_h, ref_c = ref_lstm_states(*(np.asarray(args[k]).tolist() for k in
                                             ("x", "weight_ih", "weight_hh", "bias_ih",
                                              "bias_hh", "h0", "c0")))
            assert_close(got["c"][:n + 1, b], np.real(ref_c), kind="reference")
        else:
            ref_h = ref_gru_states(*(np.asarray(args[k]).tolist() for k in
                                     ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                      "h0")))
        assert_close(got["h"][:n + 1, b], np.real(ref_h), kind="reference", what="h")
        # past its end, ∂L/∂h_t of the frozen steps reaches h_n unchanged
        dh = p["dh"][:n, b].copy()
        dh[n - 1] += p["dh"][n:, b].sum(axis=0)
        dc_n = p["dc_n"][b] if cell == "lstm" else None
        ref = ref_gated_gradients(cell, args, dh, dc_n)
        for name in weights:
            weights[name] = weights[name] + ref[name]
        assert_close(got["x"][:n, b], ref["x"], kind="reference", scale=10, what="x")
        assert_close(got["x"][n:, b], np.zeros_like(got["x"][n:, b]), what="padded x")
        assert_close(got["h0"][b], ref["h0"], kind="reference", scale=10, what="h0")
    for name, value in weights.items():
        assert_close(got[name], value, kind="reference", scale=10, what=name)


# ---------------------------------------------------------------------------------------
# The tuning object


def test_tuning_reads_the_switch_and_any_threshold_from_the_environment():
    assert tuning.from_environment({}) == tuning.ProductTuning()
    assert tuning.from_environment({"SEQTOOL_PLAIN_PRODUCTS": "1"}).plain is True
    assert tuning.from_environment({"SEQTOOL_PLAIN_PRODUCTS": "0"}).plain is False
    t = tuning.from_environment({"SEQTOOL_PRODUCT_TUNING": "tiled_from_rows=0, gather_below=0.5,"
                                                           "tiled_w_below=0x100"})
    assert (t.tiled_from_rows, t.gather_below, t.tiled_w_below) == (0, 0.5, 256)
    assert t.compiled() != tuning.ProductTuning().compiled()


@pytest.mark.parametrize("environ", [
    {"SEQTOOL_PLAIN_PRODUCTS": "yes"},
    {"SEQTOOL_PRODUCT_TUNING": "tiled_from_row=3"},
    {"SEQTOOL_PRODUCT_TUNING": "tiled_from_rows"},
    {"SEQTOOL_PRODUCT_TUNING": "tiled_from_rows=-1"},
    {"SEQTOOL_PRODUCT_TUNING": "tiled_from_rows=1.5"},
])
def test_a_bad_tuning_is_an_input_error(environ):
    with pytest.raises(InputError):
        tuning.from_environment(environ)


def test_use_changes_per_call_thresholds_only_and_only_inside():
    before = tuning.current()
    with tuning.use(recycle_from=5) as inside:
        assert tuning.current() is inside and inside.recycle_from == 5
    assert tuning.current() == before
    with pytest.raises(InputError) as info:
        with tuning.use(tiled_from_rows=before.tiled_from_rows + 1):
            pass
    assert info.value.key == "tiled_from_rows"


def test_the_product_module_compiles_the_tuning_it_was_imported_with():
    from seqtool.core.rnn import products

    t = tuning.TUNING
    assert (products.PLAIN, products.TILED_FROM_ROWS, products.TILED_STRIP_BELOW,
            products.TILED_STRIP_BELOW_128, products.TILED_W_BELOW, products.BLOCKED_FEW_ROWS, products.W_BELOW_8,
            products.W_BELOW_16, products.W_BELOW_32, products.W_BELOW_64,
            products.ROW_W_BELOW) == t.compiled()

