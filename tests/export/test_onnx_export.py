"""`seqtool export --to onnx` (seqtool.export.onnx_graph): the ONNX graph, run by
onnxruntime, computes seqtool's own outputs (tests/export_reference.py) on the export
contract's inputs, for every cell, pool, score and selector, and for the encoder–decoder.

Combinations are pairwise, not the full cross product: every (score, cell) pair of
attention pooling once, each selector once; the seq2seq cases cover each score, cell and a
few selectors, two layers and bidirectional encoders. Attention's scoring weights are
scaled up (``SHARPEN``) so that sparsemax, entmax and top-k have supports between one step
and the whole row, which the test checks. The selectors' graphs alone are checked against
seqtool's selectors in float64 (to 1e-12), away from the recurrent layers' float32.

A float64 model's recurrent layers are Scans of the cells' equations (onnxruntime has no
double RNN, GRU or LSTM kernel), checked to 1e-12 for every cell, bidirectional included.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export_reference import make_model, random_inputs, real_steps, reference_outputs
from seqtool.core.errors import InputError
from seqtool.core.selectors.masked import select_rows
from seqtool.export import input_names, metadata, onnx_graph, output_names
from seqtool.export.onnx_graph import OPSET, build, to_bytes

TOLERANCE = 1e-5  # max |onnx − seqtool| / max |seqtool|, per output (float32)
TOLERANCE_FLOAT64 = 1e-12
SHARPEN = (6.0, 3.0, 12.0, 24.0, 48.0, 96.0, 1.5)  # scales of the attention's scoring weights
SPARSE = ("sparsemax", "entmax", "topk")
SCORE_WEIGHTS = ("attention.query", "attention.v.weight", "attention.weight")

# ---------------------------------------------------------------------------------------
# Helpers


def session(spec, params, meta) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(to_bytes(spec, params, meta), options,
                                providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, inputs)))


def scaled(params: dict[str, np.ndarray], factor: float) -> dict[str, np.ndarray]:
    return {k: v * v.dtype.type(factor) if k in SCORE_WEIGHTS else v for k, v in params.items()}


def partial(weights: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows whose support has more than one step and fewer than all the real ones."""
    support = (weights > 0).sum(axis=-1)
    return (support > 1) & (support < lengths)


def attention_rows(spec, inputs, weights) -> tuple[np.ndarray, np.ndarray]:
    """(the attention's real rows, their lengths), broadcast alike."""
    if spec.task == "seq2seq":
        return real_steps(weights, inputs["tgt_lengths"]), inputs["src_lengths"][:, None]
    return weights, inputs["lengths"]


def sharpened(spec, params, inputs) -> dict[str, np.ndarray]:
    """The parameters with the scoring weights scaled (wider score ranges); for sparsemax,
    entmax and top-k by the first of SHARPEN that gives seqtool's own weights a row with a
    partial support, so that the support size is computed, not trivially 1 or n."""
    for factor in SHARPEN:
        candidate = scaled(params, factor)
        if spec.selector not in SPARSE:
            return candidate
        weights = reference_outputs(spec, candidate, inputs)["attention"]
        if partial(*attention_rows(spec, inputs, weights)).any():
            return candidate
    raise AssertionError(f"no scale in {SHARPEN} gives {spec.selector} a partial support")


def worst_error(spec, params, inputs, got) -> float:
    """The largest relative error over the outputs (padded target rows of seq2seq's
    attention, unspecified by the contract, left out); asserts names, shapes, dtypes."""
    ref = reference_outputs(spec, params, inputs)
    assert sorted(got) == sorted(ref) == sorted(output_names(spec))
    worst = 0.0
    for name, expected in ref.items():
        if spec.task == "seq2seq" and name == "attention":
            expected = real_steps(expected, inputs["tgt_lengths"])
        assert got[name].shape == expected.shape, name
        assert got[name].dtype == params["head.weight"].dtype, name
        scale = max(float(np.abs(expected).max()), 1e-30)
        worst = max(worst, float(np.abs(got[name] - expected).max()) / scale)
    return worst


def tolerance(params) -> float:
    return TOLERANCE_FLOAT64 if params["head.weight"].dtype == np.float64 else TOLERANCE


def check(spec, params, meta, inputs=None) -> dict[str, np.ndarray]:
    inputs = random_inputs(spec, dtype=params["head.weight"].dtype) if inputs is None else inputs
    got = run(session(spec, params, meta), inputs)
    error = worst_error(spec, params, inputs, got)
    assert error <= tolerance(params), error
    return got


# ---------------------------------------------------------------------------------------
# The one-RNN models: every cell and pool, tag, lm, regress

ONE_RNN = [
    ("classify", "rnn", {}),
    ("classify", "rnn", {"pool": "mean", "nonlinearity": "relu", "layers": 2}),
    ("classify", "gru", {"pool": "max"}),
    ("classify", "gru", {"layers": 2, "bidirectional": True}),
    ("classify", "lstm", {"pool": "mean", "bidirectional": True}),
    ("classify", "lstm", {"pool": "max", "layers": 2, "bidirectional": True}),
    ("classify", "lstm", {"layers": 2}),
    ("classify", "bow", {}),
    ("tag", "lstm", {"layers": 2}),
    ("tag", "rnn", {"nonlinearity": "relu"}),
    ("lm", "gru", {}),
    ("regress", "lstm", {}),
    ("regress", "gru", {"target_at": "last", "layers": 2}),
    ("regress", "rnn", {"target_at": "last", "nonlinearity": "relu"}),
]


@pytest.mark.parametrize("task, cell, fields", ONE_RNN,
                         ids=[f"{t}-{c}-{'-'.join(f'{k}={v}' for k, v in f.items())}"
                              for t, c, f in ONE_RNN])
def test_one_rnn_models(task, cell, fields):
    check(*make_model(task, cell, **fields))


# ---------------------------------------------------------------------------------------
# Attention pooling: every selector once, every (score, cell) pair once

SELECTORS = [("softmax", {"temperature": 0.5}), ("sparsemax", {}), ("entmax", {"alpha": 1.5}),
             ("entmax", {"alpha": 1.3}), ("topk", {"k": 2}), ("argmax", {}),
             ("st-argmax", {}), ("gumbel", {}), ("reinforce", {})]
SCORES = ("dot", "general", "additive")
CELLS = ("lstm", "gru", "rnn")
# (selector, params, score, cell, bidirectional, layers): the i-th selector takes the i-th
# (score, cell) pair of a Latin square, so the nine cases hold every pair once
POOL_CASES = [(name, given, SCORES[i % 3], CELLS[(i // 3 + i) % 3], i % 2 == 1,
               2 if i % 4 == 0 else 1) for i, (name, given) in enumerate(SELECTORS)]


@pytest.mark.parametrize("selector, given, score, cell, bidirectional, layers", POOL_CASES,
                         ids=[f"{s}{g or ''}-{sc}-{c}{'-bi' if b else ''}-L{n}"
                              for s, g, sc, c, b, n in POOL_CASES])
def test_attention_pooling(selector, given, score, cell, bidirectional, layers):
    spec, params, meta = make_model("classify", cell, pool="attention", score=score,
                                    selector=selector, selector_params=given, layers=layers,
                                    bidirectional=bidirectional)
    inputs = random_inputs(spec, batch=6)
    got = check(spec, sharpened(spec, params, inputs), meta, inputs)
    np.testing.assert_allclose(got["attention"].sum(axis=1), 1.0, atol=1e-6)
    if selector in SPARSE:
        assert partial(*attention_rows(spec, inputs, got["attention"])).any()


def test_argmax_takes_the_first_maximum():
    """Tied scores: the lowest index wins (NumPy's argmax, seqtool's one_hot_argmax)."""
    spec, params, meta = make_model("classify", "gru", pool="attention", score="dot",
                                    selector="argmax")
    params = dict(params, **{"attention.query": np.zeros_like(params["attention.query"])})
    inputs = random_inputs(spec)
    got = run(session(spec, params, meta), inputs)
    first = np.eye(inputs["ids"].shape[1])[np.zeros(len(inputs["ids"]), int)]
    np.testing.assert_array_equal(got["attention"], first)
    assert worst_error(spec, params, inputs, got) <= TOLERANCE


def selector_session(name: str, params: dict) -> ort.InferenceSession:
    """A graph of one selector alone: float64 scores s (B, T) and lengths (B,) -> w."""
    g = onnx_graph._Graph(np.dtype(np.float64))
    real = onnx_graph._real_steps(g, "s", "lengths")
    w = onnx_graph.SELECTORS[name](g, "s", real, g.unsqueeze("lengths", 1), **params)
    g.add("Identity", [w], out=["w"])
    graph = onnx.helper.make_graph(
        g.nodes, "selector",
        [onnx.helper.make_tensor_value_info("s", onnx.TensorProto.DOUBLE, ["B", "T"]),
         onnx.helper.make_tensor_value_info("lengths", onnx.TensorProto.INT64, ["B"])],
        [onnx.helper.make_tensor_value_info("w", onnx.TensorProto.DOUBLE, ["B", "T"])])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   ir_version=onnx_graph.IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name, params", [
    ("softmax", {"temperature": 0.5}), ("argmax", {}), ("sparsemax", {}),
    ("entmax", {"alpha": 1.5}), ("entmax", {"alpha": 1.3}), ("entmax", {"alpha": 2.5}),
    ("entmax", {"alpha": 1.05}), ("topk", {"k": 3, "temperature": 2.0}),
    ("topk", {"k": 1, "temperature": 1.0}),
], ids=lambda v: str(v))
def test_selector_graphs_match_seqtool_in_float64(name, params):
    """Each selector's graph against seqtool's select_rows: scores of many scales, tied
    and whole-number rows, every length, NaN in the padding (which must not leak)."""
    rng = np.random.default_rng(0)
    B, T = 120, 9
    s = rng.standard_normal((B, T)) * rng.choice([0.1, 1.0, 3.0, 10.0, 100.0], (B, 1))
    s[::7, 2] = s[::7, 1]
    s[::11] = np.round(s[::11])
    lengths = rng.integers(1, T + 1, B)
    padded = np.arange(T)[None, :] >= lengths[:, None]
    expected = select_rows(name, s, lengths, **params).weights
    s[padded] = np.nan
    w = selector_session(name, params).run(None, {"s": s, "lengths": lengths})[0]
    assert np.abs(w - expected).max() <= 1e-12


# ---------------------------------------------------------------------------------------
# The encoder–decoder

SEQ2SEQ = [
    ("dot", "softmax", {"temperature": 0.5}, "lstm", {}),
    ("general", "entmax", {"alpha": 1.3}, "gru", {"layers": 2}),
    ("additive", "sparsemax", {}, "lstm", {"bidirectional": True, "layers": 2}),
    ("dot", "argmax", {}, "rnn", {"bidirectional": True}),
    ("general", "topk", {"k": 2}, "lstm", {"bidirectional": True}),
    ("additive", "entmax", {"alpha": 1.5}, "gru", {"bidirectional": True}),
    ("dot", "reinforce", {}, "gru", {"layers": 2}),
    ("general", "gumbel", {}, "rnn", {"nonlinearity": "relu"}),
    ("additive", "st-argmax", {}, "lstm", {}),
]


@pytest.mark.parametrize("score, selector, given, cell, fields", SEQ2SEQ,
                         ids=[f"{sc}-{s}{g or ''}-{c}-{'-'.join(f'{k}={v}' for k, v in f.items())}"
                              for sc, s, g, c, f in SEQ2SEQ])
def test_seq2seq(score, selector, given, cell, fields):
    spec, params, meta = make_model("seq2seq", cell, score=score, selector=selector,
                                    selector_params=given, **fields)
    inputs = random_inputs(spec)
    got = check(spec, sharpened(spec, params, inputs), meta, inputs)
    if selector in SPARSE:
        assert partial(*attention_rows(spec, inputs, got["attention"])).any()
    real = np.arange(got["logits"].shape[1])[None, :] < inputs["tgt_lengths"][:, None]
    assert np.all(got["logits"][~real] == 0) and np.all(got["attention"][~real] == 0)
    np.testing.assert_allclose(got["attention"][real].sum(axis=-1), 1.0, atol=1e-6)


# ---------------------------------------------------------------------------------------
# float64, dynamic axes, the model file itself, refusals

FLOAT64 = [
    ("classify", "rnn", {"layers": 2, "bidirectional": True}),
    ("classify", "gru", {"pool": "mean", "bidirectional": True}),
    ("classify", "lstm", {"pool": "attention", "score": "general", "selector": "entmax",
                          "selector_params": {"alpha": 1.3}, "bidirectional": True}),
    ("classify", "bow", {}),
    ("tag", "rnn", {"nonlinearity": "relu", "layers": 2}),
    ("lm", "lstm", {}),
    ("regress", "gru", {"target_at": "last"}),
    ("seq2seq", "lstm", {"score": "additive", "selector": "topk", "bidirectional": True,
                         "layers": 2}),
    ("seq2seq", "gru", {"score": "dot", "selector": "sparsemax", "bidirectional": True}),
    ("seq2seq", "rnn", {"score": "general", "nonlinearity": "relu"}),
]


@pytest.mark.parametrize("task, cell, fields", FLOAT64,
                         ids=[f"{t}-{c}-{'-'.join(f'{k}={v}' for k, v in f.items())}"
                              for t, c, f in FLOAT64])
def test_float64_models(task, cell, fields):
    """float64 in and out, to 1e-12: the recurrent layers are Scans of the cells' equations
    (onnxruntime has no double RNN, GRU or LSTM kernel), reverse directions included."""
    spec, params, meta = make_model(task, cell, dtype=np.float64, **fields)
    got = check(spec, params, meta)
    assert all(value.dtype == np.float64 for value in got.values())


DYNAMIC = [
    ("classify", "lstm", {"pool": "attention", "selector": "topk", "selector_params": {"k": 3}}),
    ("tag", "gru", {}),
    ("seq2seq", "lstm", {"score": "general", "bidirectional": True}),
    ("seq2seq", "gru", {"score": "dot", "bidirectional": True, "dtype": np.float64}),
]


@pytest.mark.parametrize("task, cell, fields", DYNAMIC,
                         ids=[f"{t}-{f.get('dtype', np.float32).__name__}"
                              for t, _, f in DYNAMIC])
def test_batches_of_other_sizes_and_lengths(task, cell, fields):
    spec, params, meta = make_model(task, cell, **fields)
    sess = session(spec, params, meta)
    for batch, steps, seed in ((4, 7, 1), (3, 11, 2), (7, 2, 3), (1, 1, 4)):
        inputs = random_inputs(spec, batch, steps, seed, params["head.weight"].dtype)
        assert worst_error(spec, params, inputs, run(sess, inputs)) <= tolerance(params)


@pytest.mark.parametrize("task, cell, fields", [
    ("classify", "gru", {"pool": "attention", "score": "additive", "selector": "entmax",
                         "selector_params": {"alpha": 1.3}}),
    ("seq2seq", "lstm", {"layers": 2, "bidirectional": True}),
    ("regress", "rnn", {"target_at": "last"}),
    ("seq2seq", "lstm", {"bidirectional": True, "dtype": np.float64}),
], ids=["classify", "seq2seq", "regress", "seq2seq-float64"])
def test_model_checks_and_carries_its_metadata(task, cell, fields):
    spec, params, meta = make_model(task, cell, **fields)
    model = build(spec, params, meta)
    onnx.checker.check_model(model, full_check=True)
    assert model.producer_name == "seqtool" and model.doc_string
    assert [op.version for op in model.opset_import if op.domain in ("", "ai.onnx")] == [OPSET]
    props = {p.key: p.value for p in model.metadata_props}
    assert list(props) == ["seqtool"]
    assert json.loads(props["seqtool"]) == json.loads(json.dumps(metadata(spec, meta)))
    assert [i.name for i in model.graph.input] == list(input_names(spec))
    assert [o.name for o in model.graph.output] == list(output_names(spec))
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch"
    initializers = {t.name for t in model.graph.initializer}
    assert "head.weight" in initializers
    recurrent = "rnn.weight_ih_l0" if fields.get("dtype") == np.float64 else "rnn.l0.W"
    assert any(name.endswith(recurrent) for name in initializers)
    assert onnx.load_from_string(to_bytes(spec, params, meta)) == model


def test_a_selector_without_a_graph_is_refused():
    from seqtool.core.selectors.registry import Forward, Selector, registered

    entry = Selector("uniform", lambda s: Forward(np.full_like(s, 1.0 / s.shape[-1])), None,
                     (), "zero")
    with registered(entry):
        spec, params, meta = make_model("classify", "gru", pool="attention", selector="uniform")
        with pytest.raises(InputError, match="selector 'uniform'"):
            build(spec, params, meta)


def test_a_cell_without_an_operator_is_refused():
    from seqtool.core.rnn.cells import Cell, registered

    class OneGate(Cell):
        name = "onegate"
        gates = ("a",)

    with registered(OneGate()):
        spec, params, meta = make_model("tag", "onegate")
        with pytest.raises(InputError, match="cell 'onegate'"):
            build(spec, params, meta)


def test_other_float_types_are_refused():
    spec, params, meta = make_model("classify", "gru")
    params = {k: v.astype(np.float16) for k, v in params.items()}
    with pytest.raises(InputError, match="float16"):
        build(spec, params, meta)
