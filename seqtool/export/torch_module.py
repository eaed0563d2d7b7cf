"""seqtool's models as ``torch.nn.Module`` s, and their TorchScript bytes (`--to torch`).

A seqtool checkpoint already is a torch state dict: its arrays carry torch's names and
layouts (``embedding.weight``, ``rnn.weight_ih_l0``, ``rnn.weight_hh_l0_reverse``,
``head.weight``, ``encoder.rnn.*``, ``attention.query``, ...). :func:`build` makes the
modules those names belong to (``nn.Embedding``, ``nn.RNN/GRU/LSTM``, ``nn.Linear``, and a
plain ``nn.Parameter`` where the name is no module's, such as the pooling query
``attention.query`` (H,)), loads the checkpoint into them by name, and gives a module whose
``forward`` computes seqtool's evaluation (no dropout; Gumbel, REINFORCE and st-argmax
attend to the argmax) by the contract of :mod:`seqtool.export`:

==========  ======================================  =======================================
task        forward(...)                            returns
==========  ======================================  =======================================
classify    ids (B, T), lengths (B,)                logits (B, C), or (logits, attention
                                                    (B, T)) with pool attention
tag, lm     ids (B, T), lengths (B,)                logits (B, T, O)
regress     x (B, T, D), lengths (B,)               outputs (B, T, O), or (B, O) at the last
                                                    step (target_at last)
seq2seq     src (B, S), src_lengths (B,),           (logits (B, M, V), attention (B, M, S))
            tgt (B, M), tgt_lengths (B,)
==========  ======================================  =======================================

Batches are batch first and right-padded; the recurrent layers read each row's real steps
only (``pack_padded_sequence``), and every per-step output (logits, attention rows) is 0 at
a padded step. Outputs have the parameters' dtype (float32 or float64); the selectors run in
float64 on the scores, as seqtool's do, and their weights are cast back.

:func:`to_bytes` scripts the module (``torch.jit.script``: the lengths decide how many
steps each row runs, which a trace would freeze) and saves it with the metadata of
:func:`seqtool.export.metadata` as the archive's ``seqtool.json``; ``torch.jit.load`` reads
it without seqtool. The eager module also has :meth:`Exported.encode` (texts -> ids,
lengths, as seqtool tokenises them), which the TorchScript file leaves out (its metadata
says how).

This module imports torch at the top; it is imported only to export (the command checks
that torch is installed first), and nothing else in seqtool imports it.
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqtool.core.errors import InputError
from seqtool.export import metadata as export_metadata

METADATA_FILE = "seqtool.json"  # the archive's extra file holding metadata(spec, meta)

RECURRENT = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
# selectors whose evaluation is the one-hot of the first maximum: argmax itself, the
# straight-through argmax (one-hot forward), and Gumbel and REINFORCE, which seqtool
# evaluates at their argmax (seqtool.core.attention_pool._selector, global_attention._selector)
AS_ARGMAX = ("argmax", "st-argmax", "gumbel", "reinforce")
SELECTORS = ("softmax", "sparsemax", "entmax", "topk") + AS_ARGMAX


# ---------------------------------------------------------------------------------------
# Selection over the real steps of each row (TorchScript functions, float64 scores)


def select_rows(scores: Tensor, lengths: Tensor, selector: str, temperature: float,
                alpha: float, k: int) -> Tensor:
    """Weights (R, T) of ``selector`` over each row of ``scores`` (R, T) restricted to its
    first ``lengths[r]`` steps, 0 past them (seqtool.core.selectors.masked.select_rows):

        w_r = select(s_r[:n_r]) ⊕ 0_{T − n_r}

    Rows of one length run together, so a padded score never reaches a selector (not even
    sparsemax's threshold); top-k's k is min(k, n_r)."""
    T = scores.size(1)
    weights = torch.zeros_like(scores)
    sizes: List[int] = torch.unique(lengths).tolist()
    for n in sizes:
        rows = torch.nonzero(lengths == n).flatten()
        chosen = select(scores.index_select(0, rows)[:, :n], selector, temperature, alpha,
                        min(k, n))
        weights.index_copy_(0, rows, nn.functional.pad(chosen, [0, T - n]))
    return weights


def select(s: Tensor, selector: str, temperature: float, alpha: float, k: int) -> Tensor:
    """One selector on every row of ``s`` (R, n): seqtool.core.selectors.maps, forward."""
    if selector == "softmax":
        return softmax(s, temperature)
    if selector == "argmax":
        return one_hot_argmax(s)
    if selector == "sparsemax":
        return sparsemax(s)
    if selector == "entmax":
        return entmax15(s) if alpha == 1.5 else entmax_bisect(s, alpha)
    if selector == "topk":
        return topk_softmax(s, k, temperature)
    raise RuntimeError("unknown selector " + selector)


def softmax(s: Tensor, temperature: float) -> Tensor:
    """w_i = exp((s_i − max s)/T) / Σ_j exp((s_j − max s)/T)."""
    z = torch.exp((s - s.max(dim=-1, keepdim=True).values) / temperature)
    return z / z.sum(dim=-1, keepdim=True)


def one_hot_argmax(s: Tensor) -> Tensor:
    """One-hot of the largest score of each row; on a tie the lowest index (torch.argmax,
    like NumPy's, returns the first maximum)."""
    first = torch.argmax(s, dim=-1, keepdim=True)
    return torch.zeros_like(s).scatter_(-1, first, 1.0)


def _ranks(s: Tensor) -> Tensor:
    return torch.arange(1, s.size(-1) + 1, dtype=s.dtype, device=s.device)


def sparsemax(s: Tensor) -> Tensor:
    """w_i = max(s_i − τ, 0), τ = (Σ_{j≤k} s_(j) − 1)/k, k = max{k : 1 + k s_(k) > Σ_{j≤k}
    s_(j)} over the scores sorted descending (shifted by the max and raised to −2, which
    changes no weight: τ ≥ max s − 1)."""
    s = torch.clamp_min(s - s.max(dim=-1, keepdim=True).values, -2.0)
    ordered = torch.sort(s, dim=-1, descending=True).values
    cumsum = ordered.cumsum(dim=-1)
    support = (1.0 + _ranks(s) * ordered > cumsum).sum(dim=-1, keepdim=True)
    tau = (cumsum.gather(-1, support - 1) - 1.0) / support.to(s.dtype)
    return torch.clamp_min(s - tau, 0.0)


def entmax15(s: Tensor) -> Tensor:
    """1.5-entmax, exact: w_i = [x_i − τ]₊², x = s/2 (shifted, raised to −2); for each
    support size ρ of the sorted x, τ_ρ = mean_ρ − sqrt((1 − ρ·var_ρ)/ρ), and the support
    is the largest ρ with τ_ρ ≤ x_(ρ)."""
    x = s / 2.0
    x = torch.clamp_min(x - x.max(dim=-1, keepdim=True).values, -2.0)
    ordered = torch.sort(x, dim=-1, descending=True).values
    rank = _ranks(x)
    mean = ordered.cumsum(dim=-1) / rank
    mean_sq = (ordered * ordered).cumsum(dim=-1) / rank
    delta = (1.0 - rank * (mean_sq - mean * mean)) / rank
    tau = mean - torch.sqrt(torch.clamp_min(delta, 0.0))
    support = (tau <= ordered).sum(dim=-1, keepdim=True)
    tau_star = tau.gather(-1, support - 1)
    return torch.clamp_min(x - tau_star, 0.0) ** 2


def _mass(x: Tensor, tau: Tensor, power: float) -> Tensor:
    return (torch.clamp_min(x - tau, 0.0) ** power).sum(dim=-1, keepdim=True)


def entmax_bisect(s: Tensor, alpha: float, halvings: int = 2000) -> Tensor:
    """α-entmax by bisection on τ: w_i = [x_i − τ]₊^{1/(α−1)}, x = (α−1)s shifted to max 0,
    τ ∈ [−1, −n^{1−α}] halved until its ends are adjacent floats, the end whose mass is
    nearer 1 kept, then normalised (seqtool.core.selectors.maps.entmax_bisect; ~1100
    ``halvings`` separate any two float64 numbers)."""
    x = (alpha - 1.0) * s
    x = x - x.max(dim=-1, keepdim=True).values
    power = 1.0 / (alpha - 1.0)
    lo = torch.full([x.size(0), 1], -1.0, dtype=x.dtype, device=x.device)
    hi = torch.full_like(lo, -(float(x.size(-1)) ** (1.0 - alpha)))
    for _ in range(halvings):
        mid = 0.5 * (lo + hi)
        if bool(((mid == lo) | (mid == hi)).all()):
            break
        too_much = _mass(x, mid, power) >= 1.0  # the mass falls as τ grows
        lo = torch.where(too_much, mid, lo)
        hi = torch.where(too_much, hi, mid)
    nearer = (_mass(x, lo, power) - 1.0).abs() <= (_mass(x, hi, power) - 1.0).abs()
    w = torch.clamp_min(x - torch.where(nearer, lo, hi), 0.0) ** power
    return w / w.sum(dim=-1, keepdim=True)


def topk_softmax(s: Tensor, k: int, temperature: float) -> Tensor:
    """softmax(s/T) over the k largest scores of each row (ties to the lowest index), 0
    elsewhere: every score above the k-th largest v is kept, then the first ones equal to v
    fill the remaining places."""
    kth = torch.sort(s, dim=-1, descending=True).values[:, k - 1:k]
    above = s > kth
    equal = s == kth
    places = k - above.sum(dim=-1, keepdim=True)
    kept = above | (equal & (equal.cumsum(dim=-1) <= places))
    z = torch.where(kept, torch.exp((s - s.max(dim=-1, keepdim=True).values) / temperature),
                    torch.zeros_like(s))
    return z / z.sum(dim=-1, keepdim=True)


def _real_steps(lengths: Tensor, steps: int) -> Tensor:
    """(B, steps) bool: step t < lengths[b]."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def _unpack(packed: PackedSequence, steps: int) -> Tensor:
    """The padded (B, steps, ·) outputs of a packed RNN pass, 0 at the padded steps."""
    out, _ = pad_packed_sequence(packed, batch_first=True, total_length=steps)
    return out


# ---------------------------------------------------------------------------------------
# The modules


class Exported(nn.Module):
    """What every exported model shares: :meth:`encode` (eager only) and the metadata."""

    # plain Python state of the eager module, left out of the TorchScript archive
    __jit_ignored_attributes__ = ["text", "metadata"]

    def __init__(self) -> None:
        super().__init__()
        self.text: Optional[dict] = None  # vocab, tokenizer, max_len (from the run's meta)
        self.metadata: Optional[dict] = None  # seqtool.export.metadata(spec, meta)

    def encode(self, texts: List[str]) -> Tuple[Tensor, Tensor]:
        """(ids (B, T) int64, lengths (B,) int64) of ``texts`` as seqtool encodes them
        (seqtool.core.data.encode_texts, seqtool.core.inference): the run's tokenizer, its
        vocabulary (<unk> = 1 for a token it lacks), cut to max_len tokens, right-padded with
        <pad> = 0; a text without tokens is one <pad> step of length 1. Not in the
        TorchScript file (its metadata holds the vocabulary and the tokenizer's rule)."""
        from seqtool.core.data.vocab import UNK_ID, tokenize

        if self.text is None or self.text.get("vocab") is None:
            raise InputError("texts", "cannot be encoded: the model was built without its "
                                      "run's vocabulary (meta)")
        ids = {token: i for i, token in enumerate(self.text["vocab"])}
        tokenizer, max_len = self.text["tokenizer"], self.text.get("max_len")
        rows = [[ids.get(token, UNK_ID) for token in tokenize(text, tokenizer)[:max_len]]
                for text in texts]
        lengths = [max(len(row), 1) for row in rows]
        out = torch.zeros((len(rows), max(lengths, default=1)), dtype=torch.int64)
        for b, row in enumerate(rows):
            out[b, :len(row)] = torch.tensor(row, dtype=torch.int64)
        return out, torch.tensor(lengths, dtype=torch.int64)


class Recurrent(Exported):
    """Embedding (or numeric inputs) → stacked RNN → per-sequence outputs (B, T, H), 0 at
    padded steps; a bidirectional layer's outputs are [→h_t; ←h_t] (H/2 each)."""

    def __init__(self, embedding: Optional[nn.Embedding], rnn: nn.RNNBase) -> None:
        super().__init__()
        self.embedding = embedding
        self.rnn = rnn

    def states(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        if self.embedding is not None:
            x = self.embedding(inputs)
        else:
            x = inputs
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.rnn(packed)
        return _unpack(out, inputs.size(1))


class Classifier(Recurrent):
    """y = W pool(h_1..h_n) + b, pool over the n real steps: last (h_n; bidirectional
    [→h_n; ←h_1]), mean (Σ h_t / n) or max (per unit)."""

    def __init__(self, embedding: nn.Embedding, rnn: nn.RNNBase, head: nn.Linear, pool: str,
                 bidirectional: bool) -> None:
        super().__init__(embedding, rnn)
        self.head = head
        self.pool = pool
        self.bidirectional = bidirectional

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        out = self.states(ids, lengths)  # (B, T, H)
        B, T, H = out.size(0), out.size(1), out.size(2)
        rows = torch.arange(B, device=out.device)
        if self.pool == "mean":
            features = out.sum(dim=1) / lengths[:, None].to(out.dtype)
        elif self.pool == "max":
            real = _real_steps(lengths, T)[:, :, None]
            features = out.masked_fill(~real, float("-inf")).max(dim=1).values
        elif self.bidirectional:
            half = H // 2
            features = torch.cat([out[rows, lengths - 1, :half], out[:, 0, half:]], dim=1)
        else:
            features = out[rows, lengths - 1]
        return self.head(features)


class AttentionPool(nn.Module):
    """Attention pooling (seqtool.core.attention_pool) over a sequence's real steps:

        dot: s_t = q · h_t;  general: s_t = q · (W h_t);  additive: s_t = q · tanh(W h_t + b)
        w = selector(s_1..s_n),  pooled = Σ_t w_t h_t

    Parameters ``query`` q (H,), ``weight`` W (H, H) (general, additive), ``bias`` b (H,)
    (additive); the buffer ``baseline`` with REINFORCE (unused at evaluation)."""

    def __init__(self, score: str, hidden: int, selector: Tuple[str, float, float, int],
                 reinforce: bool) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(hidden))
        if score in ("general", "additive"):
            self.weight = nn.Parameter(torch.zeros(hidden, hidden))
        else:
            self.register_parameter("weight", None)
        if score == "additive":
            self.bias = nn.Parameter(torch.zeros(hidden))
        else:
            self.register_parameter("bias", None)
        if reinforce:
            self.register_buffer("baseline", torch.zeros(()))
        self.selector, self.temperature, self.alpha, self.k = selector

    def forward(self, out: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        keys = out
        if self.weight is not None:  # general, additive
            keys = torch.matmul(out, self.weight.t())
            if self.bias is not None:  # additive
                keys = torch.tanh(keys + self.bias)
        scores = torch.matmul(keys, self.query)  # (B, T)
        w = select_rows(scores.to(torch.float64), lengths, self.selector, self.temperature,
                        self.alpha, self.k).to(out.dtype)
        return torch.einsum("bt,bth->bh", w, out), w


class AttentionClassifier(Recurrent):
    """y = W pooled + b with attention pooling; returns (logits (B, C), attention (B, T))."""

    def __init__(self, embedding: nn.Embedding, rnn: nn.RNNBase, attention: AttentionPool,
                 head: nn.Linear) -> None:
        super().__init__(embedding, rnn)
        self.attention = attention
        self.head = head

    def forward(self, ids: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        pooled, weights = self.attention(self.states(ids, lengths), lengths)
        return self.head(pooled), weights


class BagOfWords(Exported):
    """The bow baseline: y = W (Σ_{t≤n} E[id_t] / n) + b."""

    def __init__(self, embedding: nn.Embedding, head: nn.Linear) -> None:
        super().__init__()
        self.embedding = embedding
        self.head = head

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        x = self.embedding(ids)
        real = _real_steps(lengths, ids.size(1))[:, :, None].to(x.dtype)
        return self.head((x * real).sum(dim=1) / lengths[:, None].to(x.dtype))


class Tagger(Recurrent):
    """tag, lm: y_t = W h_t + b at every real step, 0 at the padded ones (B, T, O)."""

    def __init__(self, embedding: nn.Embedding, rnn: nn.RNNBase, head: nn.Linear) -> None:
        super().__init__(embedding, rnn)
        self.head = head

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        y = self.head(self.states(ids, lengths))
        return y * _real_steps(lengths, ids.size(1))[:, :, None].to(y.dtype)


class Regressor(Recurrent):
    """regress: y_t = W h_t + b at every real step (0 at the padded ones) (B, T, O), or
    y = W h_n + b at the last real step (B, O) (target_at last)."""

    def __init__(self, rnn: nn.RNNBase, head: nn.Linear, per_step: bool) -> None:
        super().__init__(None, rnn)
        self.head = head
        self.per_step = per_step

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        out = self.states(x.to(self.head.weight.dtype), lengths)
        if self.per_step:
            y = self.head(out)
            return y * _real_steps(lengths, x.size(1))[:, :, None].to(y.dtype)
        rows = torch.arange(out.size(0), device=out.device)
        return self.head(out[rows, lengths - 1])


class Part(nn.Module):
    """The encoder or the decoder of a seq2seq model: ``embedding`` and ``rnn``."""

    def __init__(self, embedding: nn.Embedding, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.embedding = embedding
        self.rnn = rnn


class DotScore(nn.Module):
    """score(h_t, ē_s) = h_tᵀ ē_s (no parameters)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()

    def forward(self, queries: Tensor, keys: Tensor) -> Tensor:
        return torch.matmul(queries, keys.transpose(1, 2))


class GeneralScore(nn.Module):
    """score(h_t, ē_s) = h_tᵀ W_a ē_s; ``weight`` W_a (H, H)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(hidden, hidden))

    def forward(self, queries: Tensor, keys: Tensor) -> Tensor:
        return torch.matmul(queries, torch.matmul(keys, self.weight.t()).transpose(1, 2))


class AdditiveScore(nn.Module):
    """score(h_t, ē_s) = vᵀ tanh(W_q h_t + W_k ē_s + b): ``query`` W_q, ``key`` (W_k, b)
    and ``v`` (1, H), as Linear layers."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, hidden, bias=False)
        self.key = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, queries: Tensor, keys: Tensor) -> Tensor:
        pairs = torch.tanh(self.query(queries)[:, :, None, :] + self.key(keys)[:, None, :, :])
        return torch.matmul(pairs, self.v.weight[0])  # (B, M, S)


class Seq2Seq(Exported):
    """The encoder–decoder with Luong attention (seqtool.core.seq2seq), teacher-forced:

        ē_1..ē_n = encoder(E_enc[src]),  h_0 = its final states (a bidirectional layer's
                   two directions concatenated, [→h; ←h])
        h_1..h_m = decoder(E_dec[tgt]) from h_0
        a_t = selector(score(h_t, ē_1..ē_n)),  c_t = Σ_s a_ts ē_s
        logits_t = W_o tanh(W_c [c_t; h_t]) + b_o

    Returns (logits (B, M, V), attention (B, M, S)), both 0 at padded target steps."""

    def __init__(self, encoder: Part, decoder: Part, attention: nn.Module, hidden: int,
                 vocab: int, selector: Tuple[str, float, float, int],
                 bidirectional: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.attention = attention
        self.combine = nn.Linear(2 * hidden, hidden, bias=False)
        self.head = nn.Linear(hidden, vocab)
        self.selector, self.temperature, self.alpha, self.k = selector
        self.bidirectional = bidirectional

    def initial(self, states: Tensor) -> Tensor:
        """The encoder's (L·D, B, H/D) final states as the decoder's (L, B, H): torch's rows
        l0, l0 reverse, l1, ... become one [→h; ←h] per layer."""
        if not self.bidirectional:
            return states
        L2, B, half = states.size(0), states.size(1), states.size(2)
        return states.reshape(L2 // 2, 2, B, half).permute(0, 2, 1, 3).reshape(L2 // 2, B,
                                                                               2 * half)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt: Tensor,
                tgt_lengths: Tensor) -> Tuple[Tensor, Tensor]:
        S, M = src.size(1), tgt.size(1)
        packed = pack_padded_sequence(self.encoder.embedding(src), src_lengths.cpu(),
                                      batch_first=True, enforce_sorted=False)
        encoded, final = self.encoder.rnn(packed)
        keys = _unpack(encoded, S)  # (B, S, H), 0 past each source
        packed = pack_padded_sequence(self.decoder.embedding(tgt), tgt_lengths.cpu(),
                                      batch_first=True, enforce_sorted=False)
        if torch.jit.isinstance(final, Tuple[Tensor, Tensor]):  # LSTM: (h_n, c_n)
            decoded, _ = self.decoder.rnn(packed, (self.initial(final[0]),
                                                   self.initial(final[1])))
        else:
            decoded, _ = self.decoder.rnn(packed, self.initial(final))
        queries = _unpack(decoded, M)  # (B, M, H)
        B = queries.size(0)
        scores = self.attention(queries, keys).to(torch.float64).reshape(B * M, S)
        rows = src_lengths.repeat_interleave(M)  # every (b, t) is one row over b's source
        weights = select_rows(scores, rows, self.selector, self.temperature, self.alpha,
                              self.k).reshape(B, M, S).to(keys.dtype)
        weights = weights * _real_steps(tgt_lengths, M)[:, :, None].to(keys.dtype)
        context = torch.bmm(weights, keys)
        combined = torch.tanh(self.combine(torch.cat([context, queries], dim=-1)))
        logits = self.head(combined)
        return logits * _real_steps(tgt_lengths, M)[:, :, None].to(logits.dtype), weights


# ---------------------------------------------------------------------------------------
# Building and saving


def build(spec: Any, params: dict[str, np.ndarray], meta: dict[str, Any] | None = None
          ) -> nn.Module:
    """The ``nn.Module`` of a seqtool model (``spec`` a ModelSpec, ``params`` its
    checkpoint's arrays), in evaluation mode, holding ``params`` loaded by name, in their
    dtype; ``meta`` (the run's model.json) gives :meth:`Exported.encode` its vocabulary."""
    dtype = params["head.weight"].dtype
    if dtype not in (np.float32, np.float64):
        raise InputError("to", f"exports float32 and float64 models; the weights are {dtype}")
    module = _module(spec)
    _load(module.to(torch.float64 if dtype == np.float64 else torch.float32), params)
    module.text = None if meta is None else {
        "vocab": meta.get("vocab"), "tokenizer": meta.get("tokenizer"),
        "max_len": meta.get("max_len")}
    module.metadata = None if meta is None else export_metadata(spec, meta)
    return module.eval()


def to_bytes(spec: Any, params: dict[str, np.ndarray], meta: dict[str, Any]) -> bytes:
    """A TorchScript archive of :func:`build`'s module, with ``seqtool.json`` (the
    metadata of :func:`seqtool.export.metadata`) as an extra file; ``torch.jit.load``
    reads it without seqtool."""
    module = build(spec, params, meta)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.13 warns that torch.jit.script and torch.jit.save are deprecated (in
        # favour of torch.compile / torch.export); they still work, and a TorchScript file
        # is what runs a pass whose steps depend on the lengths without Python or seqtool.
        # The warning says nothing to an exporting user: silenced here, and only these two
        warnings.filterwarnings("ignore", r"`torch\.jit\.(script|save)` is deprecated",
                                DeprecationWarning)
        scripted = torch.jit.script(module)
        torch.jit.save(scripted, buffer, _extra_files={
            METADATA_FILE: json.dumps(module.metadata)})
    return buffer.getvalue()


def _module(spec: Any) -> Exported:
    """The untrained module of ``spec`` (its parameters' names are the checkpoint's)."""
    if spec.cell != "bow" and spec.cell not in RECURRENT:
        raise InputError("to", f"has no torch form for the cell '{spec.cell}' (torch has "
                               f"{', '.join(RECURRENT)}; bow is an embedding mean)")
    H = spec.hidden
    if spec.task == "seq2seq":
        E, V = spec.embedding_dim, spec.input_size
        encoder = Part(nn.Embedding(V, E, padding_idx=0),
                       _rnn(spec, E, H // 2 if spec.bidirectional else H, spec.bidirectional))
        decoder = Part(nn.Embedding(V, E, padding_idx=0), _rnn(spec, E, H, False))
        attention = {"dot": DotScore, "general": GeneralScore,
                     "additive": AdditiveScore}[spec.score](H)
        if spec.selector == "reinforce":
            attention.register_buffer("baseline", torch.zeros(()))
        return Seq2Seq(encoder, decoder, attention, H, spec.output_size, _selector(spec),
                       spec.bidirectional)
    head = nn.Linear(spec.features, spec.output_size)
    embedding = (nn.Embedding(spec.input_size, spec.embedding_dim, padding_idx=0)
                 if spec.tokens_in else None)
    if spec.cell == "bow":
        return BagOfWords(embedding, head)
    width = spec.embedding_dim if spec.tokens_in else spec.input_size
    rnn = _rnn(spec, width, H // 2 if spec.bidirectional else H, spec.bidirectional)
    if spec.task == "regress":
        return Regressor(rnn, head, spec.per_step)
    if spec.per_step:  # tag, lm
        return Tagger(embedding, rnn, head)
    if spec.pool == "attention":
        pool = AttentionPool(spec.score, H, _selector(spec), spec.selector == "reinforce")
        return AttentionClassifier(embedding, rnn, pool, head)
    return Classifier(embedding, rnn, head, spec.pool, spec.bidirectional)


def _rnn(spec: Any, input_size: int, hidden: int, bidirectional: bool) -> nn.RNNBase:
    """torch's RNN/GRU/LSTM of the spec's cell (batch first; no dropout: evaluation)."""
    extra = {"nonlinearity": spec.nonlinearity} if spec.cell == "rnn" else {}
    return RECURRENT[spec.cell](input_size, hidden, spec.layers, batch_first=True,
                                bidirectional=bidirectional, **extra)


def _selector(spec: Any) -> Tuple[str, float, float, int]:
    """(name, temperature, alpha, k) of the selector as seqtool evaluates it: the
    argmax family as argmax; the parameters' defaults filled by the registry (top-k's k
    defaults to 2, cut to each row's length when it runs)."""
    from seqtool.core.selectors import resolve_params

    name = spec.selector
    if name not in SELECTORS:
        raise InputError("to", f"has no torch form for the selector '{name}' (torch export "
                               f"knows {', '.join(SELECTORS)})")
    if name in AS_ARGMAX:
        return "argmax", 1.0, 1.5, 0
    given = resolve_params(name, 2**31, spec.selector_params)
    return (name, float(given.get("temperature", 1.0)), float(given.get("alpha", 1.5)),
            int(given.get("k", 0)))


def _load(module: nn.Module, params: dict[str, np.ndarray]) -> None:
    """``module.load_state_dict`` of ``params`` (torch's names), after checking that the
    names and shapes are the module's, so a mismatch is one line naming the first one."""
    expected = module.state_dict()
    for name in sorted(set(expected) | set(params)):
        if name not in params:
            raise InputError("to", f"cannot load the checkpoint: it has no {name}, which the "
                                   "torch module needs")
        if name not in expected:
            raise InputError("to", f"cannot load the checkpoint: the torch module has no "
                                   f"{name}")
        if tuple(expected[name].shape) != np.shape(params[name]):
            raise InputError("to", f"cannot load the checkpoint: {name} is "
                                   f"{np.shape(params[name])}, the torch module's "
                                   f"{tuple(expected[name].shape)}")
    module.load_state_dict({name: torch.from_numpy(np.array(value))
                            for name, value in params.items()})


__all__ = ["METADATA_FILE", "build", "select_rows", "to_bytes"]
