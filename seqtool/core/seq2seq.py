"""An encoder–decoder with global attention: `seqtool train-rnn --task seq2seq`.

For a source x_1..x_n and a target y_1..y_m (framed as <s> y_1 .. y_m </s>):

    ē_1..ē_n      = encoder RNN(E_enc[x_1..x_n])           (any cell, L layers; with
                                                            --bidirectional [→ē_s; ←ē_s], H/2 each)
    h_0           = the encoder's final states             (per layer; both directions
                                                            concatenated when bidirectional)
    h_1..h_{m+1}  = decoder RNN(E_dec[<s> y_1 .. y_m])       (teacher forcing: the true tokens)
    h̃_t           = tanh(W_c [c_t; h_t]),  c_t = Σ_s a_ts ē_s   (seqtool.core.global_attention)
    p(y_t | y_<t, x) = softmax(W_o h̃_t + b_o),   targets y_1 .. y_m </s>

The loss is the mean cross-entropy over the real target steps (padded ones never count).
The decoder reads only the previous token (no input feeding), so a whole teacher-forced
batch runs each RNN as one call of the stacked kernels, and the attention of every decoder
step at once is a few batched products.

Parameters, as a torch module of the same shape names them: ``encoder.embedding.weight``
(V, E), ``encoder.rnn.*`` (``torch.nn.LSTM`` ... names, ``_reverse`` when bidirectional),
``decoder.embedding.weight``, ``decoder.rnn.*``, the attention's (see global_attention),
``combine.weight`` (H, 2H), ``head.weight`` (V, H), ``head.bias`` (V,). Source and target
share one vocabulary (its <s> and </s> frame the targets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqtool.core.global_attention import (
    BASELINE, REINFORCE, Attended, attend, attend_backward, entropy, init_attention,
    next_baseline,
)
from seqtool.core.losses import cross_entropy_each
from seqtool.core.models import (
    Loss, ModelSpec, embed_tokens, embedding_gradients, loss_of,
)
from seqtool.core.rnn.stack import init_state_dict, stack_backward, stack_forward

ENCODER, DECODER = "encoder.", "decoder."
BOS_ID, EOS_ID = 2, 3  # the shared vocabulary's <s> and </s> (seqtool.core.data.vocab)
# a decoder never writes <pad> (id 0) or <s>: no target holds them, so their probability
# only drains to 0 in training; decoding leaves them out from the first step
NEVER_WRITTEN = (0, BOS_ID)


def encoder_hidden(spec: ModelSpec) -> int:
    """Each encoder direction's width: H, or H/2 when bidirectional (so that ē_s and the
    decoder's states are both H wide, as OpenNMT-py's brnn encoder does)."""
    return spec.hidden // 2 if spec.bidirectional else spec.hidden


def init_params(spec: ModelSpec, seed: int = 0, dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """torch's defaults: embeddings N(0, 1) with the <pad> row zero; the RNNs' and linear
    layers' weights U(−1/√fan_in, 1/√fan_in); each part from a generator of its own."""
    rng = np.random.default_rng([seed, 5])
    V, E, H = spec.input_size, spec.embedding_dim, spec.hidden
    params: dict[str, np.ndarray] = {}
    for prefix in (ENCODER, DECODER):
        table = rng.standard_normal((V, E))
        table[0] = 0.0
        params[prefix + "embedding.weight"] = table.astype(dtype)
    encoder = init_state_dict(spec.cell, E, encoder_hidden(spec), spec.layers, seed=[seed, 6],
                              dtype=dtype, **_bidirectional(spec))
    decoder = init_state_dict(spec.cell, E, H, spec.layers, seed=[seed, 7], dtype=dtype)
    params.update({ENCODER + "rnn." + k: v for k, v in encoder.items()})
    params.update({DECODER + "rnn." + k: v for k, v in decoder.items()})
    params.update(init_attention(spec.score, H, spec.selector, seed, dtype))
    bound = 1.0 / np.sqrt(H)
    params["head.weight"] = rng.uniform(-bound, bound, (spec.output_size, H)).astype(dtype)
    params["head.bias"] = rng.uniform(-bound, bound, spec.output_size).astype(dtype)
    return params


def _bidirectional(spec: ModelSpec) -> dict[str, bool]:
    return {"bidirectional": True} if spec.bidirectional else {}


def _rnn(params: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    start = prefix + "rnn."
    return {k[len(start):]: v for k, v in params.items() if k.startswith(start)}


# ---------------------------------------------------------------------------------------
# Forward


@dataclass
class Encoded:
    """The encoder's pass: its record, the keys (B, S, H) and the decoder's initial states."""

    stack: Any
    X: np.ndarray | None
    keys: np.ndarray
    h0: np.ndarray  # (L, B, H)
    c0: np.ndarray | None


@dataclass
class Seq2SeqForward:
    outputs: np.ndarray  # (M, B, V) logits
    encoded: Encoded
    decoder: Any  # StackForward
    X_dec: np.ndarray | None
    attended: Attended


def _final_states(spec: ModelSpec, states: np.ndarray | None) -> np.ndarray | None:
    """The encoder's (L·D, B, H/D) final states as the decoder's (L, B, H): torch orders a
    bidirectional stack's rows l0 forward, l0 reverse, l1 forward, ...; each layer's two
    become one [→h; ←h]."""
    if states is None or not spec.bidirectional:
        return states
    L2, B, half = states.shape
    return states.reshape(L2 // 2, 2, B, half).transpose(0, 2, 1, 3).reshape(L2 // 2, B, 2 * half)


def _split_states(spec: ModelSpec, d: np.ndarray | None) -> np.ndarray | None:
    """The inverse of :func:`_final_states`, for the gradients."""
    if d is None or not spec.bidirectional:
        return d
    L, B, H = d.shape
    return d.reshape(L, B, 2, H // 2).transpose(0, 2, 1, 3).reshape(2 * L, B, H // 2)


def encode(spec: ModelSpec, params: dict[str, np.ndarray], src: np.ndarray,
           src_lengths: np.ndarray, rng: np.random.Generator | None = None,
           fold: bool = False, workspace: Any = None) -> Encoded:
    """The encoder over ``src`` (S, B) ids, ``src_lengths`` (B,)."""
    state = _rnn(params, ENCODER)
    X, projected = embed_tokens(params[ENCODER + "embedding.weight"], state["weight_ih_l0"],
                                src, fold and not spec.bidirectional)
    p = spec.dropout if rng is not None else 0.0
    stack = stack_forward(spec.cell, X, state, nonlinearity=spec.nonlinearity, dropout=p,
                          rng=rng, lengths=src_lengths, projected=projected,
                          workspace=None if workspace is None else workspace.scope("encoder"))
    S, B = src.shape
    keys = np.ascontiguousarray(stack.output.transpose(1, 0, 2))  # (B, S, H)
    keys[np.arange(S)[None, :] >= src_lengths[:, None]] = 0.0  # the padding zeroed
    return Encoded(stack, X, keys, _final_states(spec, stack.h_n),
                   _final_states(spec, stack.c_n))


def forward(spec: ModelSpec, params: dict[str, np.ndarray], src: np.ndarray,
            src_lengths: np.ndarray, dec_in: np.ndarray, dec_lengths: np.ndarray, *,
            rng: np.random.Generator | None = None, fold_embedding: bool = False,
            workspace: Any = None) -> Seq2SeqForward:
    """Teacher-forced logits (M, B, V) for sources ``src`` (S, B) and decoder inputs
    ``dec_in`` (M, B) (<s> y_1 .. y_{m}, padded); ``rng`` is training's (dropout, Gumbel
    noise, REINFORCE's draws), None for evaluation."""
    enc = encode(spec, params, src, src_lengths, rng, fold_embedding, workspace)
    state = _rnn(params, DECODER)
    X, projected = embed_tokens(params[DECODER + "embedding.weight"], state["weight_ih_l0"],
                                dec_in, fold_embedding)
    p = spec.dropout if rng is not None else 0.0
    dec = stack_forward(spec.cell, X, state, enc.h0, enc.c0, nonlinearity=spec.nonlinearity,
                        dropout=p, rng=rng, lengths=dec_lengths, projected=projected,
                        workspace=None if workspace is None else workspace.scope("decoder"))
    queries = dec.output.transpose(1, 0, 2)  # (B, M, H): a view of the time-major states
    B, M = queries.shape[:2]
    real = np.arange(M)[None, :] < dec_lengths[:, None]  # (B, M)
    rows = None if real.all() else np.flatnonzero(real)
    att = attend(spec, params, queries, enc.keys, src_lengths, rng, rows)
    # the output layer on the real steps only; a padded step's logits are 0 (never read)
    z = att.combined @ params["head.weight"].T + params["head.bias"]
    if rows is None:
        logits = z
    else:
        logits = np.zeros((B * M, z.shape[1]), dtype=z.dtype)
        logits[rows] = z
    return Seq2SeqForward(logits.reshape(B, M, -1).transpose(1, 0, 2), enc, dec, X, att)


def step_losses(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """ℓ_t = −log softmax(z_t)[y_t] per step (M, B) in float64, 0 where y_t is padding."""
    return cross_entropy_each(logits, targets)


# ---------------------------------------------------------------------------------------
# Backward


def backward(spec: ModelSpec, params: dict[str, np.ndarray], fwd: Seq2SeqForward,
             src: np.ndarray, dec_in: np.ndarray, d_logits: np.ndarray,
             step_loss: np.ndarray | None = None, step_mask: np.ndarray | None = None,
             scale: float = 1.0) -> dict[str, np.ndarray]:
    """∂L/∂ every weight given ∂L/∂logits (M, B, V): the output layer, the attention
    (seqtool.core.global_attention), the decoder (whose ∂L/∂h_0 is the gradient of the
    encoder's final states), the encoder, and both embeddings. ``step_loss``, ``step_mask``
    (M, B) and ``scale`` (1/N) feed REINFORCE's score-function gradient."""
    att = fwd.attended
    V = d_logits.shape[-1]
    d_z = np.ascontiguousarray(d_logits.transpose(1, 0, 2)).reshape(-1, V)  # (B·M, V)
    if att.rows is not None:
        d_z = d_z[att.rows]  # the combined rows (a padded step's gradient is 0 anyway)
    grads = {"head.weight": d_z.T @ att.combined, "head.bias": d_z.sum(axis=0)}
    d_combined = d_z @ params["head.weight"]
    losses = None if step_loss is None else step_loss.T
    mask = None if step_mask is None else step_mask.T
    d_queries, d_keys, att_grads = attend_backward(spec, params, att, d_combined, losses, mask,
                                                   scale)
    grads.update(att_grads)
    dec_state = _rnn(params, DECODER)
    dec = stack_backward(fwd.decoder, dec_state, d_queries.transpose(1, 0, 2),
                         nonlinearity=spec.nonlinearity, input_products=fwd.X_dec is not None)
    _embedding(grads, params, DECODER, dec_in, dec)
    enc_state = _rnn(params, ENCODER)
    enc = stack_backward(fwd.encoded.stack, enc_state, d_keys.transpose(1, 0, 2),
                         _split_states(spec, dec.pop("h0")),
                         _split_states(spec, dec.pop("c0", None)),
                         nonlinearity=spec.nonlinearity,
                         input_products=fwd.encoded.X is not None,
                         initial_states=False)  # the encoder starts from zeros
    _embedding(grads, params, ENCODER, src, enc)
    for prefix, layer_grads in ((DECODER, dec), (ENCODER, enc)):
        for key in ("h0", "c0"):
            layer_grads.pop(key, None)
        grads.update({prefix + "rnn." + k: v for k, v in layer_grads.items()})
    return grads


def _embedding(grads: dict[str, np.ndarray], params: dict[str, np.ndarray], prefix: str,
               ids: np.ndarray, layer_grads: dict[str, np.ndarray]) -> None:
    name = prefix + "rnn.weight_ih_l0"
    dE, dW_ih = embedding_gradients(params[prefix + "embedding.weight"], params[name], ids,
                                    layer_grads.pop("x", None), layer_grads.pop("dA_ih_l0", None))
    grads[prefix + "embedding.weight"] = dE
    if dW_ih is not None:
        layer_grads["weight_ih_l0"] = dW_ih


# ---------------------------------------------------------------------------------------
# A batch: the loss and its gradients (what the training loop calls)


@dataclass
class Seq2SeqLoss(Loss):
    """The teacher-forced loss, plus what the attention did."""

    entropy_sum: float = 0.0  # Σ over real decoder steps of H(a_t), nats


def batch_loss(spec: ModelSpec, params: dict[str, np.ndarray], batch: Any,
               rng: np.random.Generator | None = None, fold_embedding: bool = False,
               workspace: Any = None, measure: bool = False
               ) -> tuple[Seq2SeqLoss, Seq2SeqForward, Any]:
    """(loss, forward, decoder io) of a seq2seq Batch (seqtool.core.data); ``measure`` sums
    the attention's entropy too (evaluation)."""
    from seqtool.core.data import decoder_io

    io = decoder_io(batch)
    fwd = forward(spec, params, batch.inputs, batch.lengths, io.inputs, io.lengths, rng=rng,
                  fold_embedding=fold_embedding, workspace=workspace)
    loss = loss_of(spec, fwd.outputs, io.targets, io.lengths)
    ent = 0.0
    if measure:
        ent = float(entropy(fwd.attended.weights)[(io.targets >= 0).T].sum())
    return (Seq2SeqLoss(loss.value, loss.d_outputs, loss.count, loss.correct, loss.sum,
                        entropy_sum=ent),
            fwd, io)


def batch_gradients(spec: ModelSpec, params: dict[str, np.ndarray], batch: Any,
                    rng: np.random.Generator | None, workspace: Any = None
                    ) -> tuple[Seq2SeqLoss, dict[str, np.ndarray] | None, dict[str, Any]]:
    """(loss, ∂L/∂ every weight, buffer updates) of one training batch; the gradients are
    None when the loss is not finite. REINFORCE's baseline moves after the step
    (``updates``), from the step losses this batch drew its choices with."""
    loss, fwd, io = batch_loss(spec, params, batch, rng, fold_embedding=True,
                               workspace=workspace)
    if not math.isfinite(loss.value):
        return loss, None, {}
    updates: dict[str, Any] = {}
    per_step = mask = None
    if spec.selector == REINFORCE:
        per_step = step_losses(fwd.outputs, io.targets)
        mask = io.targets >= 0
        updates[BASELINE] = next_baseline(float(params[BASELINE]), per_step, loss.count)
    grads = backward(spec, params, fwd, batch.inputs, io.inputs, loss.d_outputs, per_step,
                     mask, 1.0 / max(loss.count, 1))
    return loss, grads, updates


def evaluate(spec: ModelSpec, params: dict[str, np.ndarray], dataset: Any,
             batch_size: int) -> Any:
    """The teacher-forced loss and token accuracy, the share of sequences whose greedy
    output equals the target exactly (overall, and per target length in ``details``), and
    the mean entropy of the attention per target step (teacher-forced): the training
    loop's ``seqtool.core.training.Evaluation``."""
    from seqtool.core.data import make_batch
    from seqtool.core.training import Evaluation, _metric, batches, metric_name

    loss_sum, correct, count, exact, entropy = 0.0, 0, 0, 0, 0.0
    by_length: dict[int, list[int]] = {}  # target length M -> [sequences, exact]
    for idx in batches(len(dataset), batch_size, lengths=dataset.lengths):
        batch = make_batch(dataset, idx)
        loss, _, io = batch_loss(spec, params, batch, measure=True)
        loss_sum, correct, count = loss_sum + loss.sum, correct + loss.correct, count + loss.count
        entropy += loss.entropy_sum
        outputs = greedy(spec, params, batch.inputs, batch.lengths,
                                 limit=io.inputs.shape[0])
        for b, out in enumerate(outputs):
            target = batch.targets[1:, b]
            wanted = [int(t) for t in target[target >= 0][:-1]]  # y_1 .. y_M, no </s>
            hit = bool(out.finished and out.ids == wanted)
            exact += hit
            tally = by_length.setdefault(len(wanted), [0, 0])
            tally[0] += 1
            tally[1] += hit
    n = len(dataset)
    extra = {"exact": exact / n if n else math.nan,
             "attention_entropy": entropy / count if count else math.nan}
    lengths = sorted(by_length)
    details = {"exact_by_length": {  # the share of exact outputs per target length M
        "length": lengths, "sequences": [by_length[m][0] for m in lengths],
        "exact": [by_length[m][1] / by_length[m][0] for m in lengths]}}
    mean = loss_sum / count if count else math.nan
    return Evaluation(mean, _metric(spec, loss_sum, correct, count), metric_name(spec), count,
                      extra, details)


# ---------------------------------------------------------------------------------------
# Decoding: greedy and beam search


def decode_limit(source_length: int) -> int:
    """The most tokens a decoder writes for a source of ``source_length`` (then it stops
    even without </s>): twice the source and ten more, enough for every built-in task."""
    return 2 * int(source_length) + 10


@dataclass
class Decoded:
    """One decoded output: its ids (without <s> and </s>), the attention of each output
    step over the source (len(ids) + 1 rows with the step that wrote </s>, n columns), its
    log-probability, and whether it ended with </s>."""

    ids: list[int]
    alignment: np.ndarray
    log_prob: float
    finished: bool


def _decoder_step(spec: ModelSpec, params: dict[str, np.ndarray], tokens: np.ndarray,
                  h: np.ndarray, c: np.ndarray | None, keys: np.ndarray,
                  lengths: np.ndarray):
    """One decoder step for every row: (log-probabilities (B, V), h, c, attention (B, S))."""
    state = _rnn(params, DECODER)
    X = params[DECODER + "embedding.weight"][tokens][None]  # (1, B, E)
    dec = stack_forward(spec.cell, X, state, h, c, nonlinearity=spec.nonlinearity)
    att = attend(spec, params, np.ascontiguousarray(dec.output.transpose(1, 0, 2)), keys, lengths)
    z = (att.combined @ params["head.weight"].T + params["head.bias"]).astype(np.float64)
    top = z.max(axis=1, keepdims=True)
    logp = z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    logp[:, list(NEVER_WRITTEN)] = -np.inf  # outside the model's distribution of outputs
    return logp, dec.h_n, dec.c_n, att.weights[:, 0]


def greedy(spec: ModelSpec, params: dict[str, np.ndarray], src: np.ndarray,
           src_lengths: np.ndarray, limit: int | None = None) -> list[Decoded]:
    """y_t = argmax p(y | y_<t, x) for every source of the batch ``src`` (S, B), until </s>
    or ``limit`` tokens (default :func:`decode_limit` of the longest source)."""
    enc = encode(spec, params, src, src_lengths)
    B = src.shape[1]
    limit = decode_limit(src.shape[0]) if limit is None else limit
    tokens = np.full(B, BOS_ID)
    h, c = enc.h0, enc.c0
    out = [[] for _ in range(B)]
    rows = [[] for _ in range(B)]
    score = np.zeros(B)
    done = np.zeros(B, dtype=bool)
    for _ in range(limit):
        logp, h, c, weights = _decoder_step(spec, params, tokens, h, c, enc.keys, src_lengths)
        tokens = logp.argmax(axis=1)
        for b in np.flatnonzero(~done):
            rows[b].append(weights[b, :src_lengths[b]])
            score[b] += logp[b, tokens[b]]
            if tokens[b] == EOS_ID:
                done[b] = True
            else:
                out[b].append(int(tokens[b]))
        if done.all():
            break
    return [Decoded(out[b], np.array(rows[b]), float(score[b]), bool(done[b]))
            for b in range(B)]


def beam_search(spec: ModelSpec, params: dict[str, np.ndarray], src: np.ndarray,
                width: int, limit: int | None = None) -> Decoded:
    """The most probable output found by a beam of ``width`` for one source ``src`` (n,):
    each step extends every live hypothesis by every token and keeps the ``width`` best by
    Σ log p; a hypothesis ending in </s> is set aside, and the search stops when the best
    finished one beats every live one (log-probabilities only fall) or at ``limit``."""
    n = len(src)
    enc = encode(spec, params, src[:, None], np.array([n]))
    limit = decode_limit(n) if limit is None else limit
    keys = enc.keys
    h, c = enc.h0, enc.c0
    beams = [([], [], 0.0)]  # (ids, alignment rows, log p)
    tokens = np.array([BOS_ID])
    finished: list[Decoded] = []
    for _ in range(limit + 1):
        k = len(beams)
        lengths = np.full(k, n)
        logp, h, c, weights = _decoder_step(spec, params, tokens, h, c,
                                            np.repeat(keys, k, axis=0), lengths)
        total = np.array([b[2] for b in beams])[:, None] + logp  # (k, V)
        flat = np.argsort(-total, axis=None, kind="stable")[:2 * width]
        survivors, parents, next_tokens = [], [], []
        for index in flat:
            parent, token = divmod(int(index), total.shape[1])
            ids, rows, _ = beams[parent]
            rows = rows + [weights[parent, :n]]
            if token == EOS_ID:
                finished.append(Decoded(ids, np.array(rows), float(total[parent, token]), True))
            elif len(survivors) < width:
                survivors.append((ids + [token], rows, float(total[parent, token])))
                parents.append(parent)
                next_tokens.append(token)
        best_done = max((d.log_prob for d in finished), default=-np.inf)
        if not survivors or best_done >= survivors[0][2] or len(survivors[0][0]) >= limit:
            break
        beams, tokens = survivors, np.array(next_tokens)
        h = h[:, parents]
        c = None if c is None else c[:, parents]
    if finished:
        return max(finished, key=lambda d: d.log_prob)
    ids, rows, score = beams[0] if not survivors else survivors[0]
    return Decoded(ids, np.array(rows), score, False)


def warm_passes(tiny: ModelSpec, params: dict[str, np.ndarray], training: bool, step: Any,
                regimes: tuple, steps: int) -> None:
    """The warm-up's run of a tiny model (seqtool.core.rnn.warmup): a teacher-forced pass
    (both embeddings folded and not, a workspace, the backward pass, an optimiser step
    ``step``) and greedy decoding's one-step passes, under each tuning of ``regimes``, so
    that every kernel these paths call is compiled or loaded before a run's clocks."""
    from seqtool.core.buffers import Workspace
    from seqtool.core.rnn import tuning

    T, V = steps, tiny.input_size
    rng = np.random.default_rng(1)
    src_lengths, dec_lengths = np.array([T, T - 1, T - 2]), np.array([T - 1, T, T - 2])
    src = np.where(np.arange(T)[:, None] < src_lengths, rng.integers(4, V, (T, 3)), 0)
    dec_in = np.where(np.arange(T)[:, None] < dec_lengths, rng.integers(4, V, (T, 3)), 0)
    targets = np.where(np.arange(T)[:, None] < dec_lengths, rng.integers(0, V, (T, 3)), -1)
    drawing = np.random.default_rng(2)
    for changes in regimes:
        with tuning.use(**changes):
            greedy(tiny, params, src, src_lengths, limit=2)
            if not training:
                continue
            for fold in (True, False):
                fwd = forward(tiny, params, src, src_lengths, dec_in, dec_lengths,
                              rng=drawing, fold_embedding=fold, workspace=Workspace())
                loss = loss_of(tiny, fwd.outputs, targets, dec_lengths)
                grads = backward(tiny, params, fwd, src, dec_in, loss.d_outputs,
                                 step_losses(fwd.outputs, targets), targets >= 0,
                                 1.0 / max(loss.count, 1))
                if step is not None:
                    step.step(grads)


__all__ = ["Encoded", "Seq2SeqForward", "Seq2SeqLoss", "backward", "batch_gradients",
           "batch_loss", "encode", "encoder_hidden", "evaluate", "forward", "init_params",
           "step_losses", "warm_passes"]
