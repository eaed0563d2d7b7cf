"""Using a trained model: class probabilities, tags, and sampling from a language model.

Sampling draws token_{t+1} ~ softmax(y_t / temperature) and feeds it back, carrying the
recurrent state (h, and c for the LSTM) from step to step, so each new token costs one
step of the network rather than a pass over the whole prefix.
"""

from __future__ import annotations

import numpy as np

from seqtool.core.errors import InputError, RunError
from seqtool.core.losses import log_softmax
from seqtool.core.models import INFERENCE_BATCH, ModelSpec, forward, rnn_state
from seqtool.core.rnn.stack import stack_forward


def _batch(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded (T, B) ids and the lengths (B,); an empty sequence becomes one <pad>."""
    lengths = np.array([max(len(s), 1) for s in sequences])
    inputs = np.zeros((lengths.max(), len(sequences)), dtype=np.int64)
    for b, s in enumerate(sequences):
        inputs[:len(s), b] = s
    return inputs, lengths


def _chunks(sequences: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Batches of INFERENCE_BATCH: memory stays bounded however many texts come in."""
    return [sequences[i:i + INFERENCE_BATCH] for i in range(0, len(sequences), INFERENCE_BATCH)]


def classify(spec: ModelSpec, params: dict[str, np.ndarray],
             sequences: list[np.ndarray]) -> np.ndarray:
    """p(label | sequence) for each sequence: (N, classes)."""
    return classify_attending(spec, params, sequences)[0]


def classify_attending(spec: ModelSpec, params: dict[str, np.ndarray],
                       sequences: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """(p(label | sequence) (N, classes), and for an attention-pooling model each
    sequence's attention weights over its steps (T_i,) each; None for other models)."""
    parts, weights = [], [] if spec.pool == "attention" else None
    for chunk in _chunks(sequences):
        inputs, lengths = _batch(chunk)
        fwd = forward(spec, params, inputs, lengths)
        parts.append(np.exp(log_softmax(fwd.outputs.astype(np.float64))))
        if weights is not None:
            weights += [fwd.pooled_at.weights[b, :len(s)] for b, s in enumerate(chunk)]
    probs = np.concatenate(parts) if parts else np.zeros((0, spec.output_size))
    return probs, weights


def tag(spec: ModelSpec, params: dict[str, np.ndarray],
        sequences: list[np.ndarray]) -> list[np.ndarray]:
    """p(tag_t | token_1..token_t) for each sequence: a (T_i, tags) array each."""
    result = []
    for chunk in _chunks(sequences):
        inputs, lengths = _batch(chunk)
        out = forward(spec, params, inputs, lengths).outputs  # (T, B, tags)
        probs = np.exp(log_softmax(out.astype(np.float64)))
        result += [probs[:len(s), b] for b, s in enumerate(chunk)]
    return result


def sample(spec: ModelSpec, params: dict[str, np.ndarray], prime: np.ndarray, length: int,
           temperature: float = 1.0, seed: int = 0,
           stop_id: int | None = None) -> tuple[list[int], list[float]]:
    """``length`` tokens drawn after ``prime`` (ids, at least one), and the log-probability
    of each draw; stops early after ``stop_id`` if given. temperature → 0 is greedy."""
    if spec.task != "lm":
        raise InputError("model", f"is a {spec.task} model; sample needs a language model "
                         "(train-rnn --task lm)")
    if len(prime) == 0:
        raise InputError("prime", "is empty; give at least one token to start from")
    rng = np.random.default_rng(seed)
    E, W, b = params["embedding.weight"], params["head.weight"], params["head.bias"]
    state = rnn_state(params)
    f = stack_forward(spec.cell, E[np.asarray(prime)][:, None, :], state,
                      nonlinearity=spec.nonlinearity)
    drawn, logps = [], []
    for _ in range(length):
        logits = (f.output[-1, 0] @ W.T + b).astype(np.float64)
        if temperature <= 0:
            token = int(logits.argmax())
            logp = log_softmax(logits)[token]
        else:
            # shifted first: a tiny temperature (1e-310) then sends every other logit to −∞
            # (probability 0, the greedy limit) rather than the largest to ∞ (NaN after);
            # a logit that is not finite is refused below, without NumPy's warnings
            with np.errstate(over="ignore", invalid="ignore"):
                logp_all = log_softmax((logits - logits.max()) / temperature)
                p = np.exp(logp_all)
            if not np.isfinite(p).all():
                raise RunError("the model's outputs are not finite numbers (a diverged model?): "
                               "nothing to sample from")
            token = int(rng.choice(len(logits), p=p))
            logp = logp_all[token]
        drawn.append(token)
        logps.append(float(logp))
        if stop_id is not None and token == stop_id:
            break
        f = stack_forward(spec.cell, E[[token]][:, None, :], state, h0=f.h_n, c0=f.c_n,
                          nonlinearity=spec.nonlinearity)
    return drawn, logps


def translate(spec: ModelSpec, params: dict[str, np.ndarray], sequences: list[np.ndarray],
              beam: int = 1) -> list:
    """A seq2seq model's output for each source (ids (n_i,)): greedy (``beam`` 1) in
    batches, or a beam search of width ``beam`` per source; each a
    :class:`seqtool.core.seq2seq.Decoded` (ids, alignment over the source, log p)."""
    from seqtool.core import seq2seq

    if beam > 1:
        return [seq2seq.beam_search(spec, params, s if len(s) else np.zeros(1, np.int64), beam)
                for s in sequences]
    out = []
    for chunk in _chunks(sequences):
        inputs, lengths = _batch(chunk)
        out += seq2seq.greedy(spec, params, inputs, lengths)
    return out
