"""The kernels of the seq2seq attention's softmax (seqtool.core.attention_kernels) give the
numbers of the NumPy path they replace (global_attention with FUSED_SOFTMAX off, what
SEQTOOL_PLAIN_ATTENTION=1 runs; that path and the kernels both meet torch in
test_seq2seq.py): weights, context, [c; h], h̃ and every gradient, for dot and general
scores, with a temperature, ragged sources and decoder steps left out of the combine layer,
in float64 and float32; a NaN in the padding reaches nothing; the kernels' Python form
(NUMBA_DISABLE_JIT=1) computes the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seqtool.core import attention_kernels, global_attention
from seqtool.core.models import ModelSpec

ROOT = Path(__file__).resolve().parents[2]
B, M, S, H = 4, 5, 6, 11  # H = 11: the dot products' and copies' remainders run too
LENGTHS = np.array([6, 1, 4, 3])


def case(dtype, score="dot", temperature=1.0, subset=True, seed=0):
    """(spec, params, queries (B, M, H) a view of time-major states, keys zero past each
    length, the combined rows or None, ∂L/∂h̃ of those rows)."""
    rng = np.random.default_rng(seed)
    spec = ModelSpec("seq2seq", "lstm", 9, 9, hidden=H, embedding_dim=3, score=score,
                     selector="softmax", selector_params={"temperature": temperature})
    params = {"combine.weight": rng.uniform(-0.5, 0.5, (H, 2 * H)).astype(dtype)}
    if score == "general":
        params["attention.weight"] = rng.uniform(-0.5, 0.5, (H, H)).astype(dtype)
    queries = rng.standard_normal((M, B, H)).astype(dtype).transpose(1, 0, 2)
    keys = rng.standard_normal((B, S, H)).astype(dtype)
    keys[np.arange(S)[None, :] >= LENGTHS[:, None]] = 0.0
    rows = None
    if subset:  # decoder lengths 5, 2, 4, 1: the padded steps are not combined
        real = np.arange(M)[None, :] < np.array([5, 2, 4, 1])[:, None]
        rows = np.flatnonzero(real)
    R = B * M if rows is None else len(rows)
    return spec, params, queries, keys, rows, rng.standard_normal((R, H)).astype(dtype)


def run(fused, spec, params, queries, keys, rows, d_combined, monkeypatch):
    monkeypatch.setattr(global_attention, "FUSED_SOFTMAX", fused)
    att = global_attention.attend(spec, params, queries, keys, LENGTHS, rows=rows)
    assert (att.fused is not None) == fused
    d_queries, d_keys, grads = global_attention.attend_backward(spec, params, att, d_combined)
    return att, {"weights": att.weights, "context": att.context, "both": att.both,
                 "combined": att.combined, "d_queries": d_queries, "d_keys": d_keys,
                 **grads}


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("score, temperature, subset", [
    ("dot", 1.0, True), ("dot", 0.3, False), ("general", 2.5, True)])
def test_the_kernels_give_the_numbers_of_the_numpy_path(dtype, rtol, score, temperature,
                                                         subset, monkeypatch):
    data = case(dtype, score, temperature, subset)
    _, fused = run(True, *data, monkeypatch)
    _, plain = run(False, *data, monkeypatch)
    assert set(fused) == set(plain)
    for name, reference in plain.items():
        got = fused[name]
        assert got.shape == reference.shape and got.dtype == reference.dtype, name
        scale = max(np.abs(reference).max(), 1e-30)
        np.testing.assert_allclose(got, reference, rtol=0, atol=rtol * scale, err_msg=name)
    # the padding: no weight on a padded source step, no gradient to it
    pad = np.arange(S)[None, :] >= LENGTHS[:, None]
    assert np.all(fused["weights"][pad[:, None, :].repeat(M, axis=1)] == 0.0)
    assert np.all(fused["d_keys"][pad] == 0.0)
    np.testing.assert_allclose(fused["weights"].sum(axis=-1), 1.0, rtol=1e-12)


def test_a_step_left_out_of_the_combine_layer_gets_no_gradient(monkeypatch):
    spec, params, queries, keys, rows, d_combined = case(np.float64)
    _, out = run(True, spec, params, queries, keys, rows, d_combined, monkeypatch)
    left_out = np.ones(B * M, dtype=bool)
    left_out[rows] = False
    assert np.all(out["d_queries"].reshape(B * M, H)[left_out] == 0.0)
    assert np.abs(out["d_queries"].reshape(B * M, H)[rows]).min() > 0.0


def test_nan_in_the_padding_reaches_nothing(monkeypatch):
    spec, params, queries, keys, rows, d_combined = case(np.float64, "general")
    _, clean = run(True, spec, params, queries, keys, rows, d_combined, monkeypatch)
    dirty = keys.copy()
    dirty[np.arange(S)[None, :] >= LENGTHS[:, None]] = np.nan
    _, out = run(True, spec, params, queries, dirty, rows, d_combined, monkeypatch)
    for name in ("weights", "combined", "d_queries"):
        np.testing.assert_array_equal(out[name], clean[name], err_msg=name)
    real = np.arange(S)[None, :] < LENGTHS[:, None]
    np.testing.assert_array_equal(out["d_keys"][real], clean["d_keys"][real])


def test_the_kernels_python_form_computes_the_same():
    """What NUMBA_DISABLE_JIT=1 runs: each kernel's own Python function (its helpers are
    callable from Python either way)."""
    rng = np.random.default_rng(3)
    queries = rng.standard_normal((M, B, H))
    keys = rng.standard_normal((B, S, H))
    rows = np.array([0, 2, 3, 7, 11, 12, 19], dtype=np.int64)
    lengths = LENGTHS.astype(np.int64)
    outputs = []
    for forward in (attention_kernels.softmax_attend_into,
                    attention_kernels.softmax_attend_into.py_func):
        w, c, both = np.empty((B, M, S)), np.empty((B, M, H)), np.empty((len(rows), 2 * H))
        forward(queries, keys, keys, lengths, 0.7, rows, w, c, both)
        outputs.append((w, c, both))
    d_rows = rng.standard_normal((len(rows), 2 * H))
    for backward in (attention_kernels.softmax_attend_backward_into,
                     attention_kernels.softmax_attend_backward_into.py_func):
        d_q, d_k = np.empty((M, B, H)), np.empty((S, B, H))
        backward(outputs[0][0], queries, keys, keys, lengths, 0.7, rows, d_rows, d_q, d_k,
                 d_k, True)
        outputs.append((d_q, d_k))
    for compiled, python in ((outputs[0], outputs[1]), (outputs[2], outputs[3])):
        for a, b in zip(compiled, python):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("value, fused", [("1", False), ("0", True), ("", True)])
def test_the_switch_is_read_from_the_environment(value, fused):
    env = {**os.environ, "SEQTOOL_PLAIN_ATTENTION": value,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", "from seqtool.core import global_attention as g;"
                          " print(g.FUSED_SOFTMAX)"], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == str(fused)
