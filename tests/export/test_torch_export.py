"""`--to torch`: the nn.Module of every kind of model computes seqtool's forward pass, and
its TorchScript bytes load with torch.jit alone (seqtool.export.torch_module).

Cases cover every axis pairwise, not the cross product: each cell (rnn tanh and relu, gru,
lstm, bow), 1 and 2 layers, bidirectional encoders, every pool, every attention score with
every selector, every task, both dtypes. Models are torch's default initialisation (no
training): the module must compute the same function for any weights.
"""

from __future__ import annotations

import io
import json
import sys
import warnings

import numpy as np
import pytest
import torch
from export_reference import make_model, random_inputs, real_steps, reference_outputs
from harness import assert_close

from seqtool.core.data import encode_texts
from seqtool.core.data.vocab import Vocab
from seqtool.core.errors import InputError
from seqtool.export import input_names, metadata, output_names
from seqtool.export.torch_module import METADATA_FILE, build, select_rows, to_bytes

F64, F32 = np.float64, np.float32

CLASSIFY = [  # (spec fields, dtype): cells × layers × bidirectional × pools
    (dict(cell="rnn", pool="last"), F64),
    (dict(cell="rnn", nonlinearity="relu", pool="max", layers=2), F64),
    (dict(cell="rnn", pool="mean", bidirectional=True), F32),
    (dict(cell="gru", pool="mean", bidirectional=True), F64),
    (dict(cell="gru", pool="last", layers=2), F32),
    (dict(cell="lstm", pool="max", bidirectional=True), F32),
    (dict(cell="lstm", pool="last", layers=2, bidirectional=True), F64),
    (dict(cell="lstm", pool="mean", layers=2), F64),
    (dict(cell="bow"), F64),
    (dict(cell="bow"), F32),
]

ATTENTION = [  # (cell, score, selector, params, extra fields, dtype): every selector and score
    ("gru", "dot", "softmax", {"temperature": 0.5}, {}, F64),
    ("lstm", "additive", "softmax", {"temperature": 0.5}, {"bidirectional": True}, F32),
    ("rnn", "general", "sparsemax", {}, {"nonlinearity": "relu"}, F64),
    ("lstm", "additive", "entmax", {"alpha": 1.5}, {"layers": 2}, F64),
    ("gru", "dot", "entmax", {"alpha": 1.3}, {"bidirectional": True}, F64),
    ("lstm", "general", "entmax", {"alpha": 1.3}, {}, F32),
    ("gru", "general", "topk", {"k": 2, "temperature": 0.5}, {}, F64),
    ("rnn", "dot", "topk", {"k": 3}, {"layers": 2}, F32),
    ("rnn", "additive", "argmax", {}, {}, F64),
    ("lstm", "dot", "st-argmax", {"temperature": 0.5}, {}, F64),
    ("gru", "general", "gumbel", {"temperature": 0.5, "hard": True}, {"layers": 2}, F64),
    ("lstm", "additive", "reinforce", {}, {"bidirectional": True}, F64),
    ("gru", "dot", "sparsemax", {}, {"bidirectional": True, "layers": 2}, F32),
]

PER_STEP = [  # (task, spec fields, dtype)
    ("tag", dict(cell="rnn", nonlinearity="relu", layers=2), F64),
    ("tag", dict(cell="lstm"), F32),
    ("lm", dict(cell="gru"), F64),
    ("lm", dict(cell="lstm", layers=2), F32),
    ("regress", dict(cell="rnn"), F64),
    ("regress", dict(cell="gru", layers=2), F32),
    ("regress", dict(cell="lstm", target_at="last"), F64),
    ("regress", dict(cell="rnn", nonlinearity="relu", target_at="last", layers=2), F32),
]

SEQ2SEQ = [  # (cell, score, selector, params, extra fields, dtype)
    ("lstm", "dot", "softmax", {}, {}, F64),
    ("gru", "general", "entmax", {"alpha": 1.3}, {"bidirectional": True}, F64),
    ("rnn", "additive", "sparsemax", {}, {}, F64),
    ("lstm", "additive", "topk", {"k": 2}, {"bidirectional": True, "layers": 2}, F32),
    ("gru", "dot", "reinforce", {}, {"layers": 2}, F64),
    ("lstm", "general", "gumbel", {}, {"bidirectional": True}, F64),
    ("rnn", "dot", "st-argmax", {}, {"nonlinearity": "relu", "layers": 2}, F32),
    ("gru", "additive", "entmax", {"alpha": 1.5}, {}, F64),
]


def _case_id(task: str, fields: dict, dtype) -> str:
    """e.g. attention-gru-dot-entmax-alpha=1.3-bidirectional=True-float64."""
    words = [task]
    for key, value in fields.items():
        if key == "selector_params":
            words += [f"{k}={v}" for k, v in value.items()]
        elif key in ("cell", "pool", "score", "selector"):
            words += [] if value == "attention" else [str(value)]
        else:
            words.append(f"{key}={value}")
    return "-".join(words + [dtype.__name__])


def _models():
    for fields, dtype in CLASSIFY:
        yield pytest.param("classify", fields, dtype, id=_case_id("classify", fields, dtype))
    for cell, score, selector, params, extra, dtype in ATTENTION:
        fields = dict(cell=cell, pool="attention", score=score, selector=selector,
                      selector_params=params, **extra)
        yield pytest.param("classify", fields, dtype, id=_case_id("attention", fields, dtype))
    for task, fields, dtype in PER_STEP:
        yield pytest.param(task, fields, dtype, id=_case_id(task, fields, dtype))
    for cell, score, selector, params, extra, dtype in SEQ2SEQ:
        fields = dict(cell=cell, score=score, selector=selector, selector_params=params, **extra)
        yield pytest.param("seq2seq", fields, dtype, id=_case_id("seq2seq", fields, dtype))


def _run(module, spec, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The module's outputs by the contract's names."""
    with torch.no_grad():
        out = module(*[torch.from_numpy(inputs[name]) for name in input_names(spec)])
    out = out if isinstance(out, tuple) else (out,)
    assert len(out) == len(output_names(spec))
    return {name: value.numpy() for name, value in zip(output_names(spec), out)}


def _assert_matches(spec, params, got: dict[str, np.ndarray],
                    inputs: dict[str, np.ndarray], dtype) -> None:
    """Every output equals seqtool's: 1e-10 relative in float64, 1e-5 in float32; a seq2seq
    attention at its real target steps (its padded rows are 0 here, unspecified there)."""
    want = reference_outputs(spec, params, inputs)
    assert set(got) == set(want)
    for name, value in got.items():
        assert value.dtype == dtype, name
        ref = want[name]
        if name == "attention" and spec.task == "seq2seq":
            ref = real_steps(ref, inputs["tgt_lengths"])
            assert np.array_equal(value, real_steps(value, inputs["tgt_lengths"]))
        scale = 1.0 if dtype == F64 else 0.5
        assert_close(value, ref, dtype=dtype, kind="reference", scale=scale, what=name)


def _model(task, fields, dtype, **meta_fields):
    spec, params, meta = make_model(task, dtype=dtype, **fields)
    meta.update(meta_fields)
    return spec, params, meta


@pytest.mark.parametrize("task, fields, dtype", list(_models()))
def test_module_computes_seqtools_forward(task, fields, dtype):
    spec, params, meta = _model(task, fields, dtype)
    module = build(spec, params, meta)
    assert not module.training
    inputs = random_inputs(spec, dtype=dtype)
    _assert_matches(spec, params, _run(module, spec, inputs), inputs, dtype)


@pytest.mark.parametrize("name, params", [
    ("softmax", {"temperature": 0.5}), ("argmax", {}), ("sparsemax", {}),
    ("entmax", {"alpha": 1.5}), ("entmax", {"alpha": 1.3}), ("entmax", {"alpha": 2.5}),
    ("topk", {"k": 2}), ("topk", {"k": 3, "temperature": 0.5}),
], ids=lambda v: str(v) if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()))
def test_selection_matches_seqtool_with_ties_and_ragged_rows(name, params):
    """The torch selectors against seqtool.core.selectors.masked.select_rows on rows with
    ties (argmax and top-k's boundary: the lowest index wins) and of every length."""
    from seqtool.core.selectors.masked import select_rows as seqtool_rows

    rng = np.random.default_rng(7)
    scores = rng.integers(-2, 3, (24, 6)).astype(np.float64)  # many ties
    scores[12:] += rng.standard_normal((12, 6))
    lengths = np.resize(np.arange(1, 7), 24)
    want = seqtool_rows(name, scores, lengths, **params).weights
    got = select_rows(torch.from_numpy(scores), torch.from_numpy(lengths), name,
                      float(params.get("temperature", 1.0)), float(params.get("alpha", 1.5)),
                      int(params.get("k", 0)))
    assert_close(got.numpy(), want, kind="reference", what=name)


def test_parameters_are_the_checkpoints_by_name():
    """The state dict is the checkpoint: same names, same values; torch's own modules."""
    spec, params, meta = _model("seq2seq", dict(cell="lstm", score="additive",
                                                selector="reinforce", bidirectional=True), F64)
    module = build(spec, params, meta)
    state = module.state_dict()
    assert set(state) == set(params)
    for name, value in params.items():
        assert np.array_equal(state[name].numpy(), value), name
    assert isinstance(module.encoder.rnn, torch.nn.LSTM) and module.encoder.rnn.bidirectional
    assert isinstance(module.attention.key, torch.nn.Linear)
    assert "attention.baseline" in dict(module.named_buffers())

    spec, params, meta = _model("classify", dict(cell="gru", pool="attention",
                                                 score="general"), F32)
    module = build(spec, params, meta)
    assert isinstance(module.attention.query, torch.nn.Parameter)
    assert module.attention.query.dtype == torch.float32
    assert isinstance(module.rnn, torch.nn.GRU) and isinstance(module.embedding, torch.nn.Embedding)


def test_padding_past_the_longest_row_changes_nothing():
    """Wider batches (more <pad> columns than any row needs) give the same real outputs."""
    spec, params, meta = _model("classify", dict(cell="lstm", pool="attention",
                                                 selector="sparsemax"), F64)
    module = build(spec, params, meta)
    inputs = random_inputs(spec, dtype=F64)
    wide = dict(inputs, ids=np.pad(inputs["ids"], [(0, 0), (0, 3)]))
    narrow, wider = _run(module, spec, inputs), _run(module, spec, wide)
    assert np.array_equal(narrow["logits"], wider["logits"])
    assert np.array_equal(narrow["attention"], wider["attention"][:, :7])
    assert not wider["attention"][:, 7:].any()


SCRIPTED = [  # a handful of scripted models: one per module class, the entmax loop, both states
    pytest.param("classify", dict(cell="lstm", pool="last", bidirectional=True, layers=2), F64,
                 id="classify-bidirectional"),
    pytest.param("classify", dict(cell="gru", pool="attention", score="additive",
                                  selector="entmax", selector_params={"alpha": 1.3}), F32,
                 id="attention-entmax-bisect"),
    pytest.param("classify", dict(cell="bow"), F64, id="bow"),
    pytest.param("tag", dict(cell="rnn", nonlinearity="relu"), F64, id="tag"),
    pytest.param("regress", dict(cell="lstm", target_at="last"), F32, id="regress-last"),
    pytest.param("seq2seq", dict(cell="gru", score="general", selector="topk",
                                 selector_params={"k": 2}), F64, id="seq2seq-gru"),
]


def _load(data: bytes):
    """(scripted module, the seqtool.json it carries)."""
    extra = {METADATA_FILE: ""}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.load` is deprecated", DeprecationWarning)
        module = torch.jit.load(io.BytesIO(data), _extra_files=extra)
    return module, json.loads(extra[METADATA_FILE])


@pytest.mark.parametrize("task, fields, dtype", SCRIPTED)
def test_torchscript_bytes_round_trip(task, fields, dtype):
    spec, params, meta = _model(task, fields, dtype, max_len=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # to_bytes silences torch.jit's deprecation itself
        data = to_bytes(spec, params, meta)
    module, carried = _load(data)
    assert carried == json.loads(json.dumps(metadata(spec, meta)))
    arguments = [arg.name for arg in module.forward.schema.arguments]
    assert arguments == ["self", *input_names(spec)]  # the contract's names, in its order
    inputs = random_inputs(spec, dtype=dtype, seed=3)
    _assert_matches(spec, params, _run(module, spec, inputs), inputs, dtype)


def test_torchscript_loads_without_seqtool(monkeypatch):
    """With every seqtool module made unimportable, torch.jit.load still reads and runs the
    file: the archive holds its own code, never a reference to seqtool's Python."""
    spec, params, meta = _model("seq2seq", dict(cell="lstm", score="additive",
                                                selector="entmax", bidirectional=True), F64)
    data = to_bytes(spec, params, meta)
    inputs = random_inputs(spec, dtype=F64)
    for name in [name for name in sys.modules if name.split(".")[0] == "seqtool"]:
        monkeypatch.setitem(sys.modules, name, None)  # import seqtool... raises ImportError
    with pytest.raises(ImportError):
        import seqtool.export  # noqa: F401
    module, carried = _load(data)
    with torch.no_grad():
        logits, attention = module(*[torch.from_numpy(inputs[n]) for n in input_names(spec)])
    monkeypatch.undo()
    _assert_matches(spec, params, {"logits": logits.numpy(), "attention": attention.numpy()},
                    inputs, F64)
    assert [entry["name"] for entry in carried["inputs"]] == list(input_names(spec))


def test_encode_matches_seqtools_encoding():
    texts = ["W3 w4, w5!", "", "an unknownword w2 w6 w7 w8", "?"]
    for task, fields in (("classify", dict(cell="gru")), ("seq2seq", dict(cell="lstm"))):
        spec, params, meta = _model(task, fields, F32, max_len=4)
        ids, lengths = build(spec, params, meta).encode(texts)
        assert ids.dtype == lengths.dtype == torch.int64
        expected = encode_texts(texts, Vocab(meta["vocab"]), "word", max_len=4)
        assert lengths.tolist() == [max(len(e), 1) for e in expected] == [4, 1, 4, 1]
        assert ids.shape == (4, 4)
        for row, want in zip(ids.numpy(), expected):
            assert row[:len(want)].tolist() == want.tolist()
            assert not row[len(want):].any()  # <pad>; an empty text is one <pad> step
        assert 1 in ids[2].tolist()  # <unk>

    spec, params, _ = _model("regress", dict(cell="gru"), F64)
    with pytest.raises(InputError, match="texts"):
        build(spec, params).encode(["a"])


def test_a_checkpoint_that_does_not_fit_is_one_clear_error():
    spec, params, meta = _model("classify", dict(cell="gru", pool="attention"), F64)
    with pytest.raises(InputError, match="attention.query") as missing:
        build(spec, {k: v for k, v in params.items() if k != "attention.query"}, meta)
    assert missing.value.key == "to" and "\n" not in str(missing.value)
    bad = dict(params, **{"head.bias": np.zeros(5)})
    with pytest.raises(InputError, match=r"head\.bias is \(5,\)"):
        build(spec, bad, meta)


def test_a_selector_torch_does_not_know_is_refused():
    from seqtool.core.selectors.registry import Forward, Selector, registered

    uniform = Selector("uniform", lambda s: Forward(np.full_like(s, 1.0 / s.shape[-1])), None,
                       (), "zero")
    with registered(uniform):
        spec, params, meta = _model("classify", dict(cell="gru", pool="attention",
                                                     selector="uniform"), F64)
        with pytest.raises(InputError, match="selector 'uniform'") as refused:
            build(spec, params, meta)
    assert refused.value.key == "to"
