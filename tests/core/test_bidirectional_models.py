"""A bidirectional classifier (train-rnn --bidirectional, #15): H/2 units each way, outputs
[→h_t; ←h_t], pooled last ([→h_n; ←h_1]), mean, max or by attention; logits and every
gradient against torch (packed sequences, autograd) to 1e-10 in float64."""

from __future__ import annotations

import numpy as np
import pytest

from seqtool.core.models import ModelSpec, backward, forward, init_params, loss_of

V, C, E, H = 8, 3, 3, 4


def spec_for(cell, pool, layers):
    return ModelSpec("classify", cell, V, C, hidden=H, layers=layers, embedding_dim=E, pool=pool,
                     target_at="last", bidirectional=True)


@pytest.mark.parametrize("cell, pool, layers", [("lstm", "last", 1), ("gru", "last", 2),
                                                ("rnn", "mean", 2), ("lstm", "max", 1),
                                                ("gru", "attention", 1)])
def test_bidirectional_classifier_matches_torch(cell, pool, layers):
    torch = pytest.importorskip("torch")
    from torch.func import functional_call
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    spec = spec_for(cell, pool, layers)
    params = init_params(spec, seed=3, dtype=np.float64)
    assert "rnn.weight_hh_l0_reverse" in params and params["rnn.weight_hh_l0"].shape[1] == H // 2
    rng = np.random.default_rng(0)
    lengths = np.array([4, 6, 1, 3])
    T = lengths.max()
    real = np.arange(T)[:, None] < lengths
    inputs = np.where(real, rng.integers(2, V, (T, 4)), 0)
    targets = rng.integers(0, C, 4)

    f = forward(spec, params, inputs, lengths, fold_embedding=True)
    assert f.X is not None  # a bidirectional encoder never folds its embedding
    loss = loss_of(spec, f.outputs, targets, lengths)
    grads = backward(spec, params, f, inputs, lengths, loss.d_outputs)

    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    kind = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    module = kind(E, H // 2, layers, bidirectional=True).double()
    x = torch.nn.functional.embedding(torch.tensor(inputs), tp["embedding.weight"])
    packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    out, final = functional_call(module, {k[4:]: v for k, v in tp.items() if k.startswith("rnn.")},
                                 (packed,))
    out = pad_packed_sequence(out, total_length=T)[0]  # (T, B, H), zero on padding
    h_n = final[0] if cell == "lstm" else final
    mask = torch.tensor(real)[..., None]
    if pool == "last":
        features = torch.cat([h_n[-2], h_n[-1]], dim=1)
    elif pool == "mean":
        features = (out * mask).sum(0) / torch.tensor(lengths)[:, None]
    elif pool == "max":
        features = out.masked_fill(~mask, float("-inf")).max(0).values
    else:
        s = (out @ tp["attention.query"]).masked_fill(~torch.tensor(real), float("-inf"))
        features = (torch.softmax(s, dim=0)[..., None] * out).sum(0)
    logits = features @ tp["head.weight"].T + tp["head.bias"]
    reference = torch.nn.functional.cross_entropy(logits, torch.tensor(targets))
    reference.backward()
    np.testing.assert_allclose(f.outputs, logits.detach().numpy(), rtol=1e-11, atol=1e-13)
    assert set(grads) == set(tp)
    for name, value in tp.items():
        g = value.grad.numpy()
        scale = max(np.abs(g).max(), 1e-12)
        assert np.abs(grads[name] - g).max() / scale < 1e-10, name
