"""The train-rnn models: every gradient against finite differences, padding invariance,
dropout, and whole models against torch.nn built from the same state dict."""

from __future__ import annotations

import numpy as np
import pytest

from harness import assert_close
from naive import numeric_grad
from seqtool.core.errors import InputError
from seqtool.core.models import (
    ModelSpec, backward, backward_with_inputs, forward, init_params, loss_of, model_cells,
)
from seqtool.core.rnn.cells import cell_names

V, C, D = 7, 3, 2  # vocabulary, classes, numeric input size


def spec_for(task, cell, pool="last", target_at="all", layers=2, dropout=0.0):
    if task == "regress":
        return ModelSpec(task, cell, D, 2, hidden=4, layers=layers, embedding_dim=None,
                         target_at=target_at, dropout=dropout)
    out = V if task == "lm" else C
    return ModelSpec(task, cell, V, out, hidden=4, layers=layers, embedding_dim=3, pool=pool,
                     target_at="last" if task == "classify" else "all", dropout=dropout)


def batch_for(spec, T=5, lengths=(5, 3, 1), seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths)
    B = len(lengths)
    real = np.arange(T)[:, None] < lengths[None, :]
    if spec.tokens_in:
        inputs = np.where(real, rng.integers(2, V, (T, B)), 0)
    else:
        inputs = np.where(real[..., None], rng.normal(size=(T, B, D)), 0.0)
    if spec.task == "classify":
        targets = rng.integers(0, C, B)
    elif spec.task in ("tag", "lm"):
        targets = np.where(real, rng.integers(0, spec.output_size, (T, B)), -1)
    elif spec.per_step:
        targets = np.where(real[..., None], rng.normal(size=(T, B, 2)), 0.0)
    else:
        targets = rng.normal(size=(B, 2))
    return inputs, lengths, targets


def loss_value(spec, params, inputs, lengths, targets):
    f = forward(spec, params, inputs, lengths)
    return loss_of(spec, f.outputs, targets, lengths).value


CASES = [
    ("classify", "rnn", "last", "all"), ("classify", "gru", "mean", "all"),
    ("classify", "lstm", "max", "all"), ("classify", "bow", "last", "all"),
    ("tag", "lstm", "last", "all"), ("tag", "rnn", "last", "all"), ("lm", "gru", "last", "all"),
    ("regress", "lstm", "last", "all"), ("regress", "gru", "last", "last"),
]


@pytest.mark.parametrize("task,cell,pool,target_at", CASES)
def test_gradients_match_finite_differences(task, cell, pool, target_at):
    spec = spec_for(task, cell, pool, target_at)
    params = init_params(spec, seed=1, dtype=np.float64)
    inputs, lengths, targets = batch_for(spec)
    f = forward(spec, params, inputs, lengths)
    loss = loss_of(spec, f.outputs, targets, lengths)
    grads = backward(spec, params, f, inputs, lengths, loss.d_outputs)
    assert set(grads) == set(params)
    for name, value in params.items():
        numeric = numeric_grad(
            lambda v, name=name: loss_value(spec, {**params, name: v}, inputs, lengths, targets),
            value)
        scale = max(np.abs(numeric).max(), 1e-3)
        assert np.abs(grads[name] - numeric).max() / scale < 1e-6, name


@pytest.mark.parametrize("lengths", [(5, 3, 1), (3, 5, 1)], ids=["sorted", "unsorted"])
@pytest.mark.parametrize("task,cell", [(t, c) for t in ("classify", "lm")
                                       for c in cell_names()])
def test_folded_embedding_gives_the_same_outputs_and_gradients(task, cell, lengths):
    spec = spec_for(task, cell)
    params = init_params(spec, seed=2, dtype=np.float64)
    inputs, lengths, targets = batch_for(spec, lengths=lengths)
    plain = forward(spec, params, inputs, lengths)
    folded = forward(spec, params, inputs, lengths, fold_embedding=True)
    assert folded.X is None  # it folded: V = 7 ≤ T·B = 15
    assert_close(folded.outputs, plain.outputs)
    d_outputs = loss_of(spec, plain.outputs, targets, lengths).d_outputs
    expected = backward(spec, params, plain, inputs, lengths, d_outputs)
    got = backward(spec, params, folded, inputs, lengths, d_outputs)
    assert set(got) == set(expected) == set(params)
    for name in params:
        assert_close(got[name], expected[name], what=name)
    with pytest.raises(ValueError):
        backward_with_inputs(spec, params, folded, lengths, d_outputs)


def test_embedding_is_not_folded_when_the_table_costs_more_than_the_batch():
    spec = spec_for("lm", "lstm")
    params = init_params(spec, seed=2)
    inputs, lengths, _ = batch_for(spec, T=2, lengths=(2, 1))  # T·B = 4 < V = 7
    f = forward(spec, params, inputs, lengths, fold_embedding=True)
    assert f.X is not None
    np.testing.assert_array_equal(f.outputs, forward(spec, params, inputs, lengths).outputs)


@pytest.mark.parametrize("task,cell,pool,target_at", CASES)
def test_padding_never_changes_a_result(task, cell, pool, target_at):
    """A sequence alone, or padded in a batch with a longer one: same outputs, same loss
    gradient."""
    spec = spec_for(task, cell, pool, target_at)
    params = init_params(spec, seed=2, dtype=np.float64)
    inputs, lengths, targets = batch_for(spec, T=6, lengths=(3, 6), seed=3)
    alone = (inputs[:3, :1], lengths[:1], targets[:3, :1] if spec.per_step else targets[:1])

    def run(x, n, y):
        f = forward(spec, params, x, n)
        loss = loss_of(spec, f.outputs, y, n)
        return f, backward(spec, params, f, x, n, loss.d_outputs * loss.count)

    f_alone, g_alone = run(*alone)
    # in the batch, only sequence 0's loss: give sequence 1 no targets
    y = targets.copy()
    if spec.per_step:
        y[:, 1] = -1 if spec.task in ("tag", "lm") else y[:, 1]
    f_batch = forward(spec, params, inputs, lengths)
    loss = loss_of(spec, f_batch.outputs, y, lengths)
    d = loss.d_outputs * loss.count
    if spec.per_step:
        d[:, 1] = 0.0
        out_batch, out_alone = f_batch.outputs[:3, 0], f_alone.outputs[:, 0]
    else:
        d[1] = 0.0
        out_batch, out_alone = f_batch.outputs[0], f_alone.outputs[0]
    np.testing.assert_allclose(out_batch, out_alone, rtol=0, atol=1e-14)
    g_batch = backward(spec, params, f_batch, inputs, lengths, d)
    for name in params:
        np.testing.assert_allclose(g_batch[name], g_alone[name], rtol=0, atol=1e-13,
                                   err_msg=name)


def test_dropout_scales_kept_units_and_is_reproducible():
    spec = spec_for("tag", "gru", layers=3, dropout=0.5)
    params = init_params(spec, dtype=np.float64)
    inputs, lengths, targets = batch_for(spec)
    a = forward(spec, params, inputs, lengths, dropout_rng=np.random.default_rng(4))
    b = forward(spec, params, inputs, lengths, dropout_rng=np.random.default_rng(4))
    plain = forward(spec, params, inputs, lengths)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    assert not np.allclose(a.outputs, plain.outputs)
    masks = [m for m in a.stack.masks if m is not None]
    assert len(masks) == 2 and set(np.unique(masks[0])) == {0.0, 2.0}
    # gradients through dropout still match finite differences for that fixed mask
    loss = loss_of(spec, a.outputs, targets, lengths)
    grads = backward(spec, params, a, inputs, lengths, loss.d_outputs)
    name = "rnn.weight_ih_l1"

    def with_mask(v):
        f = forward(spec, {**params, name: v}, inputs, lengths,
                    dropout_rng=np.random.default_rng(4))
        return loss_of(spec, f.outputs, targets, lengths).value

    numeric = numeric_grad(with_mask, params[name])
    assert np.abs(grads[name] - numeric).max() < 1e-7


def test_float32_models_stay_float32():
    spec = spec_for("classify", "lstm")
    params = init_params(spec)
    inputs, lengths, targets = batch_for(spec)
    f = forward(spec, params, inputs, lengths)
    loss = loss_of(spec, f.outputs, targets, lengths)
    grads = backward(spec, params, f, inputs, lengths, loss.d_outputs)
    assert f.outputs.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


def test_bad_spec_values_are_refused():
    assert model_cells() == cell_names() + ("bow",) == ("rnn", "gru", "lstm", "bow")
    with pytest.raises(InputError, match="cell is 'transformer'; choose one of rnn, gru, "
                       "lstm, bow"):
        ModelSpec("classify", "transformer", 5, 2)
    with pytest.raises(InputError, match="pool"):
        ModelSpec("classify", "gru", 5, 2, pool="median")


TORCH = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}  # the built-in cells' torch twins


@pytest.mark.parametrize("cell", TORCH)
def test_whole_model_matches_torch(cell):
    """Embedding → 2-layer cell → linear head, loaded into torch.nn modules from the state
    dict as it is: same logits, same loss, same gradients."""
    torch = pytest.importorskip("torch")
    spec = spec_for("tag", cell)
    params = init_params(spec, seed=5, dtype=np.float64)
    inputs, lengths, targets = batch_for(spec, lengths=(5, 5, 5))
    emb = torch.nn.Embedding(V, 3).double()
    rnn = getattr(torch.nn, TORCH[cell])(3, 4, num_layers=2).double()
    head = torch.nn.Linear(4, C).double()
    for prefix, module in (("embedding.", emb), ("rnn.", rnn), ("head.", head)):
        module.load_state_dict({k[len(prefix):]: torch.tensor(v) for k, v in params.items()
                                if k.startswith(prefix)})
    out, _ = rnn(emb(torch.tensor(inputs)))
    logits = head(out)
    L = torch.nn.functional.cross_entropy(logits.reshape(-1, C), torch.tensor(targets).reshape(-1))
    L.backward()
    f = forward(spec, params, inputs, lengths)
    loss = loss_of(spec, f.outputs, targets, lengths)
    np.testing.assert_allclose(f.outputs, logits.detach().numpy(), rtol=1e-12, atol=1e-13)
    assert loss.value == pytest.approx(L.item(), rel=1e-12)
    grads = backward(spec, params, f, inputs, lengths, loss.d_outputs)
    named = {**{"embedding." + k: p for k, p in emb.named_parameters()},
             **{"rnn." + k: p for k, p in rnn.named_parameters()},
             **{"head." + k: p for k, p in head.named_parameters()}}
    for key, p in named.items():
        np.testing.assert_allclose(grads[key], p.grad.numpy(), rtol=1e-10, atol=1e-13,
                                   err_msg=key)


def test_sampling_from_a_model_whose_outputs_are_not_finite_is_a_run_error():
    # softmax of a NaN or ∞ logit has no probabilities to draw from: a clear RunError, not
    # NumPy's "probabilities contain NaN" from inside the draw
    from seqtool.core.errors import RunError
    from seqtool.core.inference import sample

    spec = ModelSpec("lm", "rnn", 6, 6, hidden=4, embedding_dim=3)
    params = init_params(spec, seed=0)
    assert len(sample(spec, params, np.array([1, 2]), 4, temperature=0.5)[0]) == 4
    params["head.bias"][3] = np.inf
    with pytest.raises(RunError, match="not finite"):
        sample(spec, params, np.array([1, 2]), 4, temperature=0.5)
