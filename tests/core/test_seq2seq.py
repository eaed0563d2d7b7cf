"""The encoder–decoder with global attention (seqtool.core.seq2seq, #15): the logits, the loss
and the gradients of every weight (both embeddings, both RNNs, the attention, the combine
and output layers) against a plain torch re-implementation in float64 (packed sequences,
autograd), for each score, softmax / sparsemax / entmax, one and two layers, ragged
lengths, bidirectional or not; argmax's exactly-zero scoring gradient; REINFORCE's
score-function gradient; padding that never matters."""

from __future__ import annotations

import numpy as np
import pytest

from naive import numeric_grad
from seqtool.core import seq2seq
from seqtool.core.errors import InputError
from seqtool.core.models import ModelSpec, loss_of

V, E, H = 9, 3, 4


def spec_for(cell="lstm", score="dot", selector="softmax", layers=1, bidirectional=False,
             **selector_params):
    return ModelSpec("seq2seq", cell, V, V, hidden=H, layers=layers, embedding_dim=E,
                     score=score, selector=selector, selector_params=selector_params,
                     bidirectional=bidirectional)


def pairs(src_lengths=(5, 2, 4), tgt_lengths=(3, 4, 1), seed=0):
    """Sources (S, B), decoder inputs <s> y.. (M, B), targets y.. </s> (M, B, −1 padded)."""
    rng = np.random.default_rng(seed)
    src_lengths, dec_lengths = np.array(src_lengths), np.array(tgt_lengths) + 1
    S, M = src_lengths.max(), dec_lengths.max()
    src = np.where(np.arange(S)[:, None] < src_lengths, rng.integers(4, V, (S, len(src_lengths))), 0)
    real = np.arange(M)[:, None] < dec_lengths
    body = rng.integers(4, V, (M, len(src_lengths)))
    dec_in = np.where(real, body, 0)
    dec_in[0] = seq2seq.BOS_ID
    targets = np.where(real, np.vstack([body[1:], body[:1]]), -1)
    targets[dec_lengths - 1, np.arange(len(dec_lengths))] = seq2seq.EOS_ID
    return src, src_lengths, dec_in, dec_lengths, targets


def sharpened(params):
    """Scores large enough that sparsemax and entmax leave real steps out."""
    for name in ("attention.weight", "attention.v.weight"):
        if name in params:
            params[name] = params[name] * 40
    return params


def loss_and_grads(spec, params, data, rng=None):
    src, sl, dec_in, dl, targets = data
    f = seq2seq.forward(spec, params, src, sl, dec_in, dl, rng=rng)
    loss = loss_of(spec, f.outputs, targets, dl)
    return f, loss, seq2seq.backward(spec, params, f, src, dec_in, loss.d_outputs)


# ---------------------------------------------------------------------------------------
# torch, written out plainly


def t_sparsemax(z, torch):
    zs, _ = torch.sort(z, dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cs = zs.cumsum(-1)
    support = ((1 + k * zs) > cs).sum(-1, keepdim=True)
    tau = (cs.gather(-1, support - 1) - 1) / support
    return torch.clamp(z - tau, min=0)


def t_entmax15(z, torch):
    x = z / 2
    x = x - x.max(-1, keepdim=True).values
    xs, _ = torch.sort(x, dim=-1, descending=True)
    rho = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    mean = xs.cumsum(-1) / rho
    mean_sq = (xs ** 2).cumsum(-1) / rho
    delta = (1 - rho * (mean_sq - mean ** 2)) / rho
    tau = mean - torch.sqrt(torch.clamp(delta, min=0))
    support = (tau <= xs).sum(-1, keepdim=True)
    return torch.clamp(x - tau.gather(-1, support - 1), min=0) ** 2


def torch_model(spec, params, data, torch):
    """(logits (M, B, V), loss, {name: ∂loss/∂name}) from torch modules run functionally."""
    from torch.func import functional_call
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    src, sl, dec_in, dl, targets = data
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    kind = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[spec.cell]
    D = 2 if spec.bidirectional else 1
    enc = kind(E, H // D, spec.layers, bidirectional=spec.bidirectional).double()
    dec = kind(E, H, spec.layers).double()

    def run(module, prefix, ids, lengths, state=None):
        x = torch.nn.functional.embedding(torch.tensor(ids), tp[prefix + "embedding.weight"])
        packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        weights = {k[len(prefix + "rnn."):]: v for k, v in tp.items()
                   if k.startswith(prefix + "rnn.")}
        args = (packed,) if state is None else (packed, state)
        out, final = functional_call(module, weights, args)
        return pad_packed_sequence(out, total_length=ids.shape[0])[0], final

    keys, final = run(enc, "encoder.", src, sl)
    L, B = spec.layers, src.shape[1]

    def joined(h):  # (L·D, B, H/D) -> (L, B, H), each layer's directions concatenated
        return h.reshape(L, D, B, H // D).permute(0, 2, 1, 3).reshape(L, B, H)

    state = tuple(joined(h) for h in final) if spec.cell == "lstm" else joined(final)
    queries, _ = run(dec, "decoder.", dec_in, dl, state)
    q, k = queries.transpose(0, 1), keys.transpose(0, 1)  # (B, M, H), (B, S, H)
    if spec.score == "dot":
        s = q @ k.transpose(1, 2)
    elif spec.score == "general":
        s = q @ (k @ tp["attention.weight"].T).transpose(1, 2)
    else:
        pre = (q @ tp["attention.query.weight"].T)[:, :, None, :] + \
            (k @ tp["attention.key.weight"].T + tp["attention.key.bias"])[:, None, :, :]
        s = torch.tanh(pre) @ tp["attention.v.weight"][0]
    pad = torch.tensor(np.arange(src.shape[0])[None, None, :] >= sl[:, None, None])
    if spec.selector == "softmax":
        t = spec.selector_params.get("temperature", 1.0)
        a = torch.softmax((s / t).masked_fill(pad, float("-inf")), dim=-1)
    elif spec.selector == "sparsemax":
        a = t_sparsemax(s.masked_fill(pad, -1e6), torch)
    else:
        a = t_entmax15(s.masked_fill(pad, -1e6), torch)
    c = a @ k
    combined = torch.tanh(torch.cat([c, q], dim=-1) @ tp["combine.weight"].T)
    logits = (combined @ tp["head.weight"].T + tp["head.bias"]).transpose(0, 1)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                             torch.tensor(targets).reshape(-1), ignore_index=-1)
    loss.backward()
    return logits.detach().numpy(), loss.item(), {k: v.grad.numpy() for k, v in tp.items()}


@pytest.mark.parametrize("cell, score, selector, layers, bidirectional, extra", [
    ("lstm", "dot", "softmax", 1, False, {}),
    ("gru", "general", "softmax", 2, False, {"temperature": 0.7}),
    ("rnn", "additive", "softmax", 1, False, {}),
    ("lstm", "general", "sparsemax", 2, False, {}),
    ("gru", "dot", "entmax", 1, False, {"alpha": 1.5}),
    ("lstm", "additive", "softmax", 2, True, {}),
    ("gru", "dot", "sparsemax", 1, True, {}),
])
def test_every_gradient_matches_torch(cell, score, selector, layers, bidirectional, extra):
    torch = pytest.importorskip("torch")
    spec = spec_for(cell, score, selector, layers, bidirectional, **extra)
    params = sharpened(seq2seq.init_params(spec, seed=4, dtype=np.float64))
    data = pairs()
    f, loss, grads = loss_and_grads(spec, params, data)
    logits, value, reference = torch_model(spec, params, data, torch)
    real = data[4] >= 0
    np.testing.assert_allclose(f.outputs[real], logits[real], rtol=1e-11, atol=1e-13)
    assert loss.value == pytest.approx(value, rel=1e-12)
    assert set(grads) == set(reference)
    for name, g in reference.items():
        scale = max(np.abs(g).max(), 1e-12)
        assert np.abs(grads[name] - g).max() / scale < 1e-10, name


def test_sparsemax_case_really_leaves_real_steps_out():
    spec = spec_for("lstm", "general", "sparsemax", 2)
    params = sharpened(seq2seq.init_params(spec, seed=4, dtype=np.float64))
    src, sl, dec_in, dl, _ = pairs()
    w = seq2seq.forward(spec, params, src, sl, dec_in, dl).attended.weights
    real_keys = np.arange(src.shape[0])[None, None, :] < sl[:, None, None]
    assert np.any((w == 0) & real_keys)


@pytest.mark.parametrize("score", ["dot", "additive"])
def test_gradients_match_finite_differences_with_topk(score):
    spec = spec_for("gru", score, "topk", k=2)
    params = seq2seq.init_params(spec, seed=1, dtype=np.float64)
    data = pairs((4, 3), (2, 3))
    src, sl, dec_in, dl, targets = data
    _, _, grads = loss_and_grads(spec, params, data)

    def value(name, v):
        f = seq2seq.forward(spec, {**params, name: v}, src, sl, dec_in, dl)
        return loss_of(spec, f.outputs, targets, dl).value

    for name, p in params.items():
        numeric = numeric_grad(lambda v, name=name: value(name, v), p)
        scale = max(np.abs(numeric).max(), 1e-3)
        assert np.abs(grads[name] - numeric).max() / scale < 1e-6, name


def test_folded_embeddings_give_the_same_gradients():
    spec = spec_for("lstm", "general", "softmax", 2)
    params = seq2seq.init_params(spec, seed=2, dtype=np.float64)
    src, sl, dec_in, dl, targets = pairs((5, 5, 4, 2, 3, 1), (3, 1, 2, 4, 4, 2))
    plain = seq2seq.forward(spec, params, src, sl, dec_in, dl)
    folded = seq2seq.forward(spec, params, src, sl, dec_in, dl, fold_embedding=True)
    assert folded.X_dec is None and folded.encoded.X is None  # V ≤ T·B: the table is used
    loss = loss_of(spec, plain.outputs, targets, dl)
    a = seq2seq.backward(spec, params, plain, src, dec_in, loss.d_outputs)
    b = seq2seq.backward(spec, params, folded, src, dec_in, loss.d_outputs)
    for name in params:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-11, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("selector", ["softmax", "sparsemax", "argmax", "st-argmax"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_a_pair_s_logits(selector, bidirectional):
    spec = spec_for("gru", "additive", selector, 2, bidirectional)
    params = seq2seq.init_params(spec, seed=2, dtype=np.float64)
    src, sl, dec_in, dl, _ = pairs()
    together = seq2seq.forward(spec, params, src, sl, dec_in, dl).outputs
    for b in range(len(sl)):
        alone = seq2seq.forward(spec, params, src[:sl[b], b:b + 1], sl[b:b + 1],
                                dec_in[:dl[b], b:b + 1], dl[b:b + 1]).outputs
        np.testing.assert_allclose(together[:dl[b], b], alone[:, 0], rtol=1e-12, atol=1e-14)


def test_argmax_gives_the_scoring_parameters_exactly_zero_gradient():
    spec = spec_for("lstm", "additive", "argmax")
    params = seq2seq.init_params(spec, seed=1, dtype=np.float64)
    f, _, grads = loss_and_grads(spec, params, pairs())
    for name in ("attention.query.weight", "attention.key.weight", "attention.key.bias",
                 "attention.v.weight"):
        assert np.all(grads[name] == 0.0), name
    assert np.any(grads["combine.weight"] != 0) and np.any(grads["encoder.rnn.weight_hh_l0"] != 0)
    w = f.attended.weights
    assert np.all(w.max(axis=-1) == 1.0) and np.all(w.sum(axis=-1) == 1.0)


def test_reinforce_draws_hard_choices_and_its_gradient_is_the_score_function():
    """In training each row attends to one key drawn from p = softmax(scores); the scores get
    (ℓ_t − b)(onehot − p)/N, which the test forms from torch's log-softmax gradient; at
    evaluation it attends to argmax p."""
    torch = pytest.importorskip("torch")
    spec = spec_for("lstm", "general", "reinforce")
    params = seq2seq.init_params(spec, seed=3, dtype=np.float64)
    params[seq2seq.BASELINE] = np.array(1.7)
    src, sl, dec_in, dl, targets = data = pairs()
    rng = np.random.default_rng(5)
    f = seq2seq.forward(spec, params, src, sl, dec_in, dl, rng=rng)
    w = f.attended.weights
    assert np.all(w.max(axis=-1) == 1.0) and np.all(w.sum(axis=-1) == 1.0)
    loss = loss_of(spec, f.outputs, targets, dl)
    per_step = seq2seq.step_losses(f.outputs, targets)
    assert per_step.sum() == pytest.approx(loss.sum, rel=1e-12)
    mask = targets >= 0
    grads = seq2seq.backward(spec, params, f, src, dec_in, loss.d_outputs, per_step, mask,
                             1.0 / loss.count)
    # the reference: Σ_t (ℓ_t − b) log p_t(k_t) / N through torch, with p from the same scores
    att = f.attended
    W = torch.tensor(params["attention.weight"], requires_grad=True)
    q, k = torch.tensor(att.queries), torch.tensor(att.keys)
    s = q @ (k @ W.T).transpose(1, 2)
    pad = torch.tensor(np.arange(src.shape[0])[None, None, :] >= sl[:, None, None])
    logp = torch.log_softmax(s.masked_fill(pad, float("-inf")), dim=-1)
    chosen = torch.tensor(att.chosen)[..., None]
    advantage = torch.tensor(np.where(mask.T, per_step.T - 1.7, 0.0))
    surrogate = (advantage * logp.gather(-1, chosen)[..., 0]).sum() / loss.count
    surrogate.backward()
    # W reaches the loss through the scores only: its whole gradient is the surrogate's
    np.testing.assert_allclose(grads["attention.weight"], W.grad.numpy(), rtol=1e-10, atol=1e-14)
    evaluated = seq2seq.forward(spec, params, src, sl, dec_in, dl).attended.weights
    argmax = spec_for("lstm", "general", "argmax")
    np.testing.assert_array_equal(
        evaluated, seq2seq.forward(argmax, params, src, sl, dec_in, dl).attended.weights)


def test_reinforce_draws_follow_the_probabilities():
    spec = spec_for("lstm", "dot", "reinforce")
    params = seq2seq.init_params(spec, seed=3, dtype=np.float64)
    src, sl, dec_in, dl, _ = pairs((5,), (1,))
    counts = np.zeros(5)
    draws = 3000
    for i in range(draws):
        att = seq2seq.forward(spec, params, src, sl, dec_in, dl,
                              rng=np.random.default_rng(i)).attended
        counts[att.chosen[0, 0]] += 1
    p = att.probabilities[0, 0]
    # within 4.5 standard errors of the binomial for every key
    assert np.all(np.abs(counts / draws - p) < 4.5 * np.sqrt(p * (1 - p) / draws) + 1e-12)


@pytest.mark.parametrize("changes, key", [
    ({"cell": "bow"}, "cell"), ({"score": "cosine"}, "score"),
    ({"selector": "softmaks"}, "selector"), ({"selector_params": {"alpha": 0.5}}, "alpha"),
    ({"hidden": 5, "bidirectional": True}, "bidirectional"),
])
def test_bad_seq2seq_settings_are_refused(changes, key):
    settings = dict(task="seq2seq", cell="lstm", input_size=V, output_size=V, hidden=H,
                    embedding_dim=E, selector="entmax")
    settings.update(changes)
    with pytest.raises(InputError) as caught:
        ModelSpec(**settings)
    assert caught.value.key == key


def test_the_tagger_refuses_a_bidirectional_encoder_and_says_why():
    with pytest.raises(InputError, match="future") as caught:
        ModelSpec("tag", "lstm", V, 3, hidden=H, bidirectional=True)
    assert caught.value.key == "bidirectional"


def test_the_training_loop_draws_for_the_selectors_that_sample():
    from seqtool.core.training import draws

    assert draws(spec_for(selector="gumbel")) and draws(spec_for(selector="reinforce"))
    assert not draws(spec_for(selector="softmax")) and not draws(spec_for(selector="argmax"))


def trained_like(seed):
    """An untrained model with peaked outputs (the head scaled up), whose decoding of the
    sources below ends after a few tokens for these seeds (the tests check they do)."""
    spec = spec_for("gru", "general", "softmax")
    params = seq2seq.init_params(spec, seed=seed, dtype=np.float64)
    params["head.weight"] = params["head.weight"] * 6
    return spec, params


def test_greedy_decoding_is_the_argmax_of_teacher_forcing_on_its_own_output():
    """Feeding the greedy output back teacher-forced gives the same logits, so every output
    token is the argmax there, and the summed log-probabilities agree."""
    spec, params = trained_like(seed=1)
    src, sl, *_ = pairs((5, 3, 6, 4), (1, 1, 1, 1), seed=2)
    outputs = seq2seq.greedy(spec, params, src, sl, limit=8)
    assert all(out.finished and out.ids for out in outputs)
    assert all(seq2seq.BOS_ID not in out.ids and 0 not in out.ids for out in outputs)
    for b, out in enumerate(outputs):
        body = out.ids
        dec_in = np.array([seq2seq.BOS_ID] + body)[:, None]
        f = seq2seq.forward(spec, params, src[:sl[b], b:b + 1], sl[b:b + 1], dec_in,
                            np.array([len(body) + 1]))
        logits = f.outputs[:, 0]
        allowed = logits.copy()
        allowed[:, list(seq2seq.NEVER_WRITTEN)] = -np.inf  # decoding never writes <pad>, <s>
        chosen = allowed.argmax(axis=1)
        steps = len(body) + out.finished
        np.testing.assert_array_equal(chosen[:len(body)], body)
        if out.finished:
            assert chosen[len(body)] == seq2seq.EOS_ID
        # the model's own log p (normalised over the whole vocabulary)
        logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1,
                               keepdims=True)) - logits.max(1, keepdims=True)
        assert out.log_prob == pytest.approx(logp[np.arange(steps), chosen[:steps]].sum(),
                                             rel=1e-12)
        np.testing.assert_allclose(out.alignment, f.attended.weights[0, :steps, :sl[b]],
                                   rtol=1e-12, atol=1e-15)


def test_a_beam_of_one_is_greedy_and_wider_beams_find_no_worse():
    spec, params = trained_like(seed=3)
    src, sl, *_ = pairs((5, 3, 6, 4), (1, 1, 1, 1), seed=2)
    greedy = seq2seq.greedy(spec, params, src, sl, limit=8)
    assert sum(bool(g.ids) and g.finished for g in greedy) >= 3
    better = 0
    for b in range(len(sl)):
        one = seq2seq.beam_search(spec, params, src[:sl[b], b], 1, limit=8)
        assert one.ids == greedy[b].ids and one.log_prob == pytest.approx(greedy[b].log_prob)
        wide = seq2seq.beam_search(spec, params, src[:sl[b], b], 4, limit=8)
        if greedy[b].finished:
            assert wide.finished and wide.log_prob >= greedy[b].log_prob - 1e-12
            better += wide.log_prob > greedy[b].log_prob + 1e-6
    assert better >= 2  # the beam found more probable outputs than greedy did
