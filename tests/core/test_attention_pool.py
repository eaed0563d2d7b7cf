"""Attention pooling (seqtool.core.attention_pool, #15): every gradient of the whole model
against finite differences for each score and the selectors with a true gradient, against
torch autograd for softmax, padding that never matters, and argmax's exactly-zero gradient."""

from __future__ import annotations

import numpy as np
import pytest

from naive import numeric_grad
from seqtool.core.errors import InputError
from seqtool.core.models import ModelSpec, backward, forward, init_params, loss_of

V, C, E, H = 7, 3, 3, 4


def spec_for(cell="lstm", score="dot", selector="softmax", layers=1, **selector_params):
    return ModelSpec("classify", cell, V, C, hidden=H, layers=layers, embedding_dim=E,
                     pool="attention", target_at="last", score=score, selector=selector,
                     selector_params=selector_params)


def batch(lengths=(6, 3, 1, 4), seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths)
    T = lengths.max()
    real = np.arange(T)[:, None] < lengths[None, :]
    return np.where(real, rng.integers(2, V, (T, len(lengths))), 0), lengths, \
        rng.integers(0, C, len(lengths))


def loss_and_grads(spec, params, inputs, lengths, targets):
    f = forward(spec, params, inputs, lengths)
    loss = loss_of(spec, f.outputs, targets, lengths)
    return f, loss, backward(spec, params, f, inputs, lengths, loss.d_outputs)


@pytest.mark.parametrize("cell, score, selector, extra", [
    ("lstm", "dot", "softmax", {}), ("gru", "general", "softmax", {"temperature": 0.5}),
    ("rnn", "additive", "softmax", {}), ("lstm", "dot", "sparsemax", {}),
    ("gru", "additive", "sparsemax", {}), ("lstm", "general", "entmax", {"alpha": 1.5}),
    ("lstm", "dot", "topk", {"k": 2}),
])
def test_gradients_match_finite_differences(cell, score, selector, extra):
    spec = spec_for(cell, score, selector, layers=2 if cell == "gru" else 1, **extra)
    params = init_params(spec, seed=3, dtype=np.float64)
    params["attention.query"] = params["attention.query"] * 8  # sharp enough to be sparse
    inputs, lengths, targets = batch()
    f, loss, grads = loss_and_grads(spec, params, inputs, lengths, targets)
    assert set(grads) == set(params)
    if selector == "sparsemax":  # the interesting case: some real steps get weight 0
        assert np.any((f.pooled_at.weights == 0) & (np.arange(6)[None] < lengths[:, None]))

    def value(name, v):
        g = forward(spec, {**params, name: v}, inputs, lengths)
        return loss_of(spec, g.outputs, targets, lengths).value

    for name, p in params.items():
        numeric = numeric_grad(lambda v, name=name: value(name, v), p)
        scale = max(np.abs(numeric).max(), 1e-3)
        assert np.abs(grads[name] - numeric).max() / scale < 1e-6, name


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
def test_softmax_attention_pooling_matches_torch(score):
    """The same model in torch (padded steps masked with −inf before the softmax): logits,
    loss and every gradient to 1e-10 in float64, ragged lengths."""
    torch = pytest.importorskip("torch")
    spec = spec_for("lstm", score)
    params = init_params(spec, seed=5, dtype=np.float64)
    inputs, lengths, targets = batch((5, 2, 4))
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    rnn = torch.nn.LSTM(E, H).double()
    rnn.load_state_dict({k[4:]: tp[k] for k in tp if k.startswith("rnn.")})
    x = torch.nn.functional.embedding(torch.tensor(inputs), tp["embedding.weight"])
    out, _ = rnn(x)  # (T, B, H); one-way: a real step never sees the padding
    q = tp["attention.query"]
    if score == "dot":
        s = out @ q
    elif score == "general":
        s = (out @ tp["attention.weight"].T) @ q
    else:
        s = torch.tanh(out @ tp["attention.weight"].T + tp["attention.bias"]) @ q
    pad = torch.tensor(np.arange(inputs.shape[0])[:, None] >= lengths[None, :])
    w = torch.softmax(s.masked_fill(pad, float("-inf")), dim=0)
    logits = (w[..., None] * out).sum(0) @ tp["head.weight"].T + tp["head.bias"]
    L = torch.nn.functional.cross_entropy(logits, torch.tensor(targets))
    L.backward()
    f, loss, grads = loss_and_grads(spec, params, inputs, lengths, targets)
    np.testing.assert_allclose(f.outputs, logits.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert loss.value == pytest.approx(L.item(), rel=1e-12)
    named = {**{k: v.grad for k, v in tp.items() if not k.startswith("rnn.")},
             **{"rnn." + k: p.grad for k, p in rnn.named_parameters()}}
    for key, g in named.items():
        np.testing.assert_allclose(grads[key], g.numpy(), rtol=1e-10, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("selector", ["softmax", "sparsemax", "argmax", "gumbel", "st-argmax"])
def test_padding_never_changes_a_sequence_s_pooled_state(selector):
    spec = spec_for("gru", "additive", selector)
    params = init_params(spec, seed=2, dtype=np.float64)
    inputs, lengths, _ = batch((6, 3, 1, 4))
    together = forward(spec, params, inputs, lengths).features
    for b, n in enumerate(lengths):
        alone = forward(spec, params, inputs[:n, b:b + 1], lengths[b:b + 1]).features
        np.testing.assert_allclose(together[b], alone[0], rtol=1e-13, atol=1e-15)


def test_argmax_gives_the_scoring_parameters_exactly_zero_gradient():
    spec = spec_for("lstm", "additive", "argmax")
    params = init_params(spec, seed=1, dtype=np.float64)
    inputs, lengths, targets = batch()
    f, loss, grads = loss_and_grads(spec, params, inputs, lengths, targets)
    for name in ("attention.query", "attention.weight", "attention.bias"):
        assert np.all(grads[name] == 0.0), name
    assert np.any(grads["head.weight"] != 0.0)  # the rest of the model learns
    hard = f.pooled_at.weights
    assert np.all(np.sort(hard, axis=1)[:, -1] == 1.0) and np.all(hard.sum(axis=1) == 1.0)


def test_gumbel_samples_in_training_and_is_argmax_in_evaluation():
    spec = spec_for("lstm", "dot", "gumbel", temperature=0.5)
    params = init_params(spec, seed=1, dtype=np.float64)
    inputs, lengths, _ = batch()
    argmax = spec_for("lstm", "dot", "argmax")
    evaluated = forward(spec, params, inputs, lengths).features
    np.testing.assert_array_equal(evaluated, forward(argmax, params, inputs, lengths).features)
    a = forward(spec, params, inputs, lengths, dropout_rng=np.random.default_rng(0)).features
    b = forward(spec, params, inputs, lengths, dropout_rng=np.random.default_rng(1)).features
    again = forward(spec, params, inputs, lengths, dropout_rng=np.random.default_rng(0)).features
    assert not np.array_equal(a, b) and np.array_equal(a, again)


@pytest.mark.parametrize("changes, key", [
    ({"task": "tag", "target_at": "all"}, "pool"), ({"cell": "bow"}, "pool"),
    ({"score": "cosine"}, "score"), ({"selector": "softmaks"}, "selector"),
    ({"selector_params": {"temperature": -1}}, "temperature"),
    ({"selector_params": {"colour": 1}}, "colour"),
])
def test_bad_attention_settings_are_refused(changes, key):
    fields = {**spec_for().to_dict(), **changes}
    with pytest.raises(InputError) as err:
        ModelSpec(**fields)
    assert err.value.key == key


def test_other_models_keep_their_spec_and_initial_weights():
    plain = ModelSpec("classify", "lstm", V, C, hidden=H, embedding_dim=E, target_at="last")
    assert "selector" not in plain.to_dict() and "score" not in plain.to_dict()
    pooled = init_params(spec_for(), seed=4)
    for name, value in init_params(plain, seed=4).items():
        np.testing.assert_array_equal(pooled[name], value)


def test_reinforce_pools_one_drawn_step_and_trains_the_scores_by_the_score_function():
    """Training pools h_k at a step k drawn from p = softmax(s); the scores' gradient is
    Σ_b A_b ∇ log p_b(k_b) with A_b = (ℓ_b − baseline)/N (torch's log-softmax as the
    reference), and evaluation pools the argmax of p."""
    torch = pytest.importorskip("torch")
    from seqtool.core.training import batch_gradients

    spec = spec_for("lstm", "general", "reinforce")
    params = init_params(spec, seed=2, dtype=np.float64)
    params["attention.baseline"] = np.array(0.9)
    inputs, lengths, targets = batch()

    class Batch:  # what batch_gradients reads of seqtool.core.data.Batch
        pass

    b = Batch()
    b.inputs, b.lengths, b.targets = inputs, lengths, targets
    rng = np.random.default_rng(4)
    loss, grads, updates = batch_gradients(spec, params, b, rng)
    f = forward(spec, params, inputs, lengths, dropout_rng=np.random.default_rng(4))
    pooled = f.pooled_at
    assert np.all(pooled.weights.max(axis=1) == 1.0) and np.all(pooled.weights.sum(axis=1) == 1)
    assert np.all(pooled.chosen < lengths)
    logp_all = f.outputs - f.outputs.max(1, keepdims=True)
    logp_all = logp_all - np.log(np.exp(logp_all).sum(1, keepdims=True))
    ell = -logp_all[np.arange(len(targets)), targets]
    assert updates["attention.baseline"] == pytest.approx(0.9 * 0.9 + 0.1 * ell.mean())

    W = torch.tensor(params["attention.weight"], requires_grad=True)
    out = torch.tensor(pooled.outputs)  # (T, B, H)
    s = (out @ W.T) @ torch.tensor(params["attention.query"])  # (T, B)
    pad = torch.tensor(np.arange(inputs.shape[0])[:, None] >= lengths[None, :])
    logp = torch.log_softmax(s.masked_fill(pad, float("-inf")), dim=0)
    chosen = torch.tensor(pooled.chosen)
    advantage = torch.tensor((ell - 0.9) / len(targets))
    (advantage * logp[chosen, torch.arange(len(targets))]).sum().backward()
    # W reaches the loss only through the scores, and the pooled state not through them
    np.testing.assert_allclose(grads["attention.weight"], W.grad.numpy(), rtol=1e-10, atol=1e-15)
    argmax = spec_for("lstm", "general", "argmax")
    evaluated = forward(spec, params, inputs, lengths).features
    np.testing.assert_array_equal(evaluated, forward(argmax, params, inputs, lengths).features)
