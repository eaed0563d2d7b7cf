"""The sequence models that `seqtool train-rnn` trains: input → stacked RNN → head → loss.

    x_t = E[token_t] (an embedding row) or the numeric input x_t
    h^l_t = cell(h^l_{t−1}, h^{l−1}_t)                (any registered cell; l = 1..L)
    classify:  y = W pool(h^L_1..h^L_n) + b,  pool ∈ {last, mean, max, attention} over the
               n real steps; with a bidirectional encoder h_t = [→h_t; ←h_t] (H/2 each way)
               and "last" is h_n of both directions, [→h_n; ←h_1]
    tag, lm:   y_t = W h^L_t + b at every real step  (y_t depends on x_1..x_t only)
    regress:   y_t = W h^L_t + b at every step, or at the last real step only

Losses are means: cross-entropy per predicted label/token, squared error per predicted
number (as torch's ``CrossEntropyLoss`` and ``MSELoss``). Batches are time-major and
right-padded; every step at or after a sequence's length is masked out of the pooling and
the loss, so padding never changes a result: a one-way RNN's states before the padding do
not see it, and no gradient enters the padded steps. The recurrent layers skip the padded
steps altogether (each sequence's state stays at its last real step's), so a batch costs its
real tokens, not T·B; batches sorted longest first skip the most (seqtool.core.rnn.lengths).

The cell ``bow`` is the bag-of-words baseline: the mean of the embeddings, no recurrence.
The task ``seq2seq`` (an encoder–decoder with attention) lives in seqtool.core.seq2seq.

Parameters use torch's names and layouts: ``embedding.weight`` (V, E), ``rnn.weight_ih_l0``
... as ``torch.nn.RNN/GRU/LSTM``, ``head.weight`` (O, H), ``head.bias`` (O,).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from seqtool.core.errors import InputError
from seqtool.core.rnn.cells import cell_names
from seqtool.core.rnn.jit import kernel
from seqtool.core.rnn.products import product
from seqtool.core.rnn.stack import init_state_dict, stack_backward, stack_forward
from seqtool.core.rnn.table_rows import TableRows

TASKS = ("classify", "tag", "lm", "regress", "seq2seq")
BASELINES = ("bow",)  # models without a recurrent cell
POOLS = ("last", "mean", "max", "attention")
ATTENTION_FIELDS = ("score", "selector", "selector_params")  # in a spec with pool attention
RNN_PREFIX = "rnn."
INFERENCE_BATCH = 256  # sequences per forward pass when evaluating or predicting


def model_cells() -> tuple[str, ...]:
    """What a model's ``cell`` may be: every registered recurrent cell (rnn, gru, lstm, any
    registered at run time) and the bag-of-words baseline."""
    return cell_names() + BASELINES


@dataclass(frozen=True)
class ModelSpec:
    """Everything that fixes a model's shape; stored with every checkpoint."""

    task: str
    cell: str
    input_size: int  # vocabulary size (token tasks) or D (regress)
    output_size: int  # classes, tags, vocabulary size, or O
    hidden: int = 64
    layers: int = 1
    embedding_dim: int | None = 32  # None: numeric inputs (regress)
    pool: str = "last"
    target_at: str = "all"  # regress: all or last; classify: last; tag, lm: all
    dropout: float = 0.0
    nonlinearity: str = "tanh"
    # pool attention: the score, the selector and its parameters (seqtool.core.attention_pool)
    score: str = "dot"
    selector: str = "softmax"
    selector_params: dict = field(default_factory=dict)
    # a bidirectional encoder (classify, seq2seq); torch's "_reverse" parameters
    bidirectional: bool = False

    def __post_init__(self):
        if self.task not in TASKS:
            raise InputError("task", f"is '{self.task}'; choose one of {', '.join(TASKS)}")
        if self.cell not in model_cells():
            raise InputError("cell", f"is '{self.cell}'; choose one of {', '.join(model_cells())}")
        if self.pool not in POOLS:
            raise InputError("pool", f"is '{self.pool}'; choose one of {', '.join(POOLS)}")
        if self.pool == "attention":
            self._check_attention()
        if self.task == "seq2seq":
            self._check_seq2seq()
        if self.bidirectional:
            self._check_bidirectional()
        if self.cell == "bow" and self.task != "classify":
            raise InputError("cell", f"bow (the bag-of-words baseline) classifies whole "
                             f"sequences; the task is {self.task}")

    def _check_attention(self) -> None:
        from seqtool.core.attention_pool import SCORES
        from seqtool.core.selectors import resolve_params, selector_names, unknown_message

        if self.task != "classify" or self.cell == "bow":
            raise InputError("pool", "attention pools a recurrent classifier's outputs: it "
                             f"needs --task classify and a recurrent cell (got {self.task}, "
                             f"{self.cell})")
        if self.score not in SCORES:
            raise InputError("score", f"is '{self.score}'; choose one of {', '.join(SCORES)}")
        names = selector_names() + ("reinforce",)
        if self.selector not in names:
            raise InputError("selector", unknown_message(self.selector, self.selector, names))
        if not isinstance(self.selector_params, dict):
            raise InputError("selector", f"has parameters {self.selector_params!r}; expected "
                             "an object")
        # checked as the selector checks them, for any length (top-k's k is cut to a
        # shorter sequence's length when it runs)
        if self.selector != "reinforce":
            resolve_params(self.selector, 2**31, self.selector_params)

    def _check_seq2seq(self) -> None:
        from seqtool.core.global_attention import REINFORCE, SCORES
        from seqtool.core.selectors import resolve_params, selector_names, unknown_message

        if self.cell == "bow" or not self.tokens_in:
            raise InputError("cell", "seq2seq needs a recurrent cell and token inputs (got "
                             f"{self.cell})")
        if self.score not in SCORES:
            raise InputError("score", f"is '{self.score}'; choose one of {', '.join(SCORES)}")
        names = selector_names() + (REINFORCE,)
        if self.selector not in names:
            raise InputError("selector", unknown_message(self.selector, self.selector, names))
        if not isinstance(self.selector_params, dict):
            raise InputError("selector", f"has parameters {self.selector_params!r}; expected "
                             "an object")
        if self.selector != REINFORCE:
            resolve_params(self.selector, 2**31, self.selector_params)

    def _check_bidirectional(self) -> None:
        if self.task not in ("classify", "seq2seq") or self.cell == "bow":
            why = (" (y_t would depend on x_{t+1}..x_n, the future the task must not see)"
                   if self.task in ("tag", "lm") else "")
            raise InputError("bidirectional", f"applies to a recurrent classify or seq2seq "
                             f"encoder, not to {self.task} with {self.cell}{why}")
        if self.hidden % 2:
            raise InputError("bidirectional", f"splits --hidden between the two directions; "
                             f"{self.hidden} is odd (give an even --hidden)")

    @property
    def uses_attention(self) -> bool:
        """Does the model attend (attention pooling, or a seq2seq decoder)?"""
        return self.pool == "attention" or self.task == "seq2seq"

    @property
    def tokens_in(self) -> bool:
        return self.embedding_dim is not None

    @property
    def features(self) -> int:
        """Width of what the head reads."""
        return self.embedding_dim if self.cell == "bow" else self.hidden

    @property
    def per_step(self) -> bool:
        """Does the model predict at every step (tag, lm, per-step regress)?"""
        return self.task in ("tag", "lm") or (self.task == "regress" and self.target_at == "all")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.uses_attention:  # other models' specs stay as they were
            for key in ATTENTION_FIELDS:
                data.pop(key)
        if not self.bidirectional:
            data.pop("bidirectional")
        return data


# Tasks whose model is not this module's one-RNN model, by the module that implements it:
# ``init_params(spec, seed, dtype)``, ``batch_gradients(spec, params, batch, rng,
# workspace)``, ``evaluate(spec, params, dataset, batch_size)`` and ``warm_passes(tiny,
# params, training, step, regimes, steps)``; the training loop, the warm-up and the
# checkpoints reach them through :func:`family_of`, never by naming the task.
MODEL_FAMILIES: dict[str, str] = {"seq2seq": "seqtool.core.seq2seq"}


def family_of(spec: ModelSpec) -> Any:
    """The module of the model family that implements ``spec.task``, or None for the
    one-RNN models of this module (imported on first use)."""
    import importlib

    path = MODEL_FAMILIES.get(spec.task)
    return None if path is None else importlib.import_module(path)


def init_params(spec: ModelSpec, seed: int = 0, dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """torch's default initialisation: embeddings N(0, 1) (the padding row zero), recurrent
    weights and the head U(−1/√fan_in, 1/√fan_in)."""
    family = family_of(spec)
    if family is not None:
        return family.init_params(spec, seed, dtype)
    rng = np.random.default_rng([seed, 1])
    params: dict[str, np.ndarray] = {}
    width = spec.input_size
    if spec.tokens_in:
        E = rng.standard_normal((spec.input_size, spec.embedding_dim))
        E[0] = 0.0  # <pad>: never read by a real step
        params["embedding.weight"] = E.astype(dtype)
        width = spec.embedding_dim
    if spec.cell != "bow":
        # a bidirectional encoder runs H/2 units each way, so that its outputs stay H wide
        rnn = init_state_dict(spec.cell, width, spec.hidden // (2 if spec.bidirectional else 1),
                              spec.layers, seed=seed, dtype=dtype,
                              **({"bidirectional": True} if spec.bidirectional else {}))
        params.update({RNN_PREFIX + key: value for key, value in rnn.items()})
    if spec.pool == "attention":
        from seqtool.core.attention_pool import init_attention

        params.update(init_attention(spec.score, spec.hidden, seed, dtype, spec.selector))
    bound = 1.0 / np.sqrt(spec.features)
    params["head.weight"] = rng.uniform(-bound, bound, (spec.output_size, spec.features)).astype(dtype)
    params["head.bias"] = rng.uniform(-bound, bound, spec.output_size).astype(dtype)
    return params


def rnn_state(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stacked layers' own state dict (torch's nn.RNN/GRU/LSTM keys)."""
    n = len(RNN_PREFIX)
    return {key[n:]: value for key, value in params.items() if key.startswith(RNN_PREFIX)}


# ---------------------------------------------------------------------------------------
# Forward


@dataclass
class Forward:
    """What the backward pass needs, and the predictions."""

    outputs: np.ndarray  # (T, B, O) per step, or (B, O)
    X: np.ndarray | None  # (T, B, E or D): what the first layer read; None when folded
    features: np.ndarray  # what the head read: (T, B, F) per step, (B, F) pooled
    stack: Any = None  # StackForward (None for bow)
    # classify/last-step: the time index per sequence (B,); max: (B, F); attention: Pooled
    pooled_at: Any = None


def embed_tokens(E: np.ndarray, W_ih: np.ndarray | None, ids: np.ndarray,
                 fold: bool) -> tuple[np.ndarray | None, TableRows | None]:
    """(X, None) with X = E[ids] (T, B, E), or, when ``fold`` and it pays, (None, P) with
    P = (E W_ihᵀ)[ids] (T, B, G·H), the first recurrent layer's input projection, as
    TableRows: the table and the ids, which the recurrent layers read without gathering P
    (seqtool.core.rnn.table_rows).

    x_t W_ihᵀ = E[id_t] W_ihᵀ = (E W_ihᵀ)[id_t]: the table costs V·E·G·H multiply-adds
    against T·B·E·G·H for the product over every step, so it pays when V ≤ T·B. In the
    backward pass (:func:`embedding_gradients`) the rows of ∂L/∂P summed per token,
    S (V, G·H), give ∂L/∂W_ih = Sᵀ E and ∂L/∂E = S W_ih, again instead of two products
    over every step."""
    if fold and W_ih is not None and E.shape[0] <= ids.size:
        # the tiles, not NumPy's matmul: (14, 32) × (32, 1024) in 30 µs against 50 (Zen 4)
        return None, TableRows(product(E, W_ih.T), ids)
    # np.take, not E[ids]: the same rows, in ~60 % of the time (rows of a few KB each)
    return np.take(E, ids, axis=0), None


def embedding_gradients(E: np.ndarray, W_ih: np.ndarray | None, ids: np.ndarray,
                        dX: np.ndarray | None, dP: np.ndarray | None
                        ) -> tuple[np.ndarray, np.ndarray | None]:
    """(∂L/∂E, ∂L/∂W_ih or None) from ∂L/∂X (unfolded) or ∂L/∂P (folded, see
    :func:`embed_tokens`); the <pad> row gets none (it is never a real input)."""
    if dP is not None:  # folded: S[v] = Σ of dP over the steps that read token v
        S = np.zeros((E.shape[0], dP.shape[-1]), dtype=dP.dtype)
        _scatter_add_rows(S, ids.ravel(), dP.reshape(-1, dP.shape[-1]))
        dE = S @ W_ih
        dE[0] = 0.0
        return dE, S.T @ E
    dE = np.zeros_like(E)
    _scatter_add_rows(dE, ids.ravel(), np.ascontiguousarray(dX.reshape(-1, dX.shape[-1])))
    dE[0] = 0.0
    return dE, None


def _last_index(lengths: np.ndarray) -> np.ndarray:
    return np.maximum(lengths - 1, 0)


def forward(spec: ModelSpec, params: dict[str, np.ndarray], inputs: np.ndarray,
            lengths: np.ndarray, *, dropout_rng: np.random.Generator | None = None,
            fold_embedding: bool = False, workspace: Any = None) -> Forward:
    """Outputs for a right-padded batch: inputs (T, B) ids or (T, B, D) numbers, lengths (B,).

    ``dropout_rng`` turns dropout between layers on (training), and draws a Gumbel
    selector's noise; None is evaluation.
    ``fold_embedding`` lets the first layer read its input projection from the table
    E W_ih_l0ᵀ (see :func:`embed_tokens`); :func:`backward` then gives no ∂L/∂x (``Forward.X`` is
    None), which :func:`backward_with_inputs` needs. ``workspace`` lends the recurrent
    layers' large arrays (see :func:`seqtool.core.rnn.stack.stack_forward`).
    """
    T, B = inputs.shape[:2]
    projected = None
    if spec.tokens_in:
        X, projected = embed_tokens(params["embedding.weight"],
                                    params.get(RNN_PREFIX + "weight_ih_l0"), inputs,
                                    fold_embedding and spec.cell != "bow"
                                    and not spec.bidirectional)
    else:
        X = inputs.astype(params["head.weight"].dtype, copy=False)
    mask = np.arange(T)[:, None] < lengths[None, :]  # (T, B)
    W, b = params["head.weight"], params["head.bias"]
    if spec.cell == "bow":
        counts = np.maximum(lengths, 1).astype(X.dtype)[:, None]
        features = (X * mask[..., None]).sum(axis=0) / counts  # (B, E)
        return Forward(features @ W.T + b, X, features)
    p = spec.dropout if dropout_rng is not None else 0.0
    stack = stack_forward(spec.cell, X, rnn_state(params), nonlinearity=spec.nonlinearity,
                          dropout=p, rng=dropout_rng, lengths=lengths, projected=projected,
                          workspace=workspace)
    out = stack.output  # (T, B, H)
    if spec.per_step:
        return Forward(out @ W.T + b, X, out, stack)
    if spec.pool == "attention" and spec.task == "classify":
        from seqtool.core.attention_pool import attention_pool

        features, pooled = attention_pool(spec, params, out, lengths, dropout_rng)
        return Forward(features @ W.T + b, X, features, stack, pooled)
    if spec.bidirectional and spec.pool == "last":
        # h_n of both directions: the forward half after the last real step, the reverse
        # half after it has read back to the first step
        at = _last_index(lengths)
        half = spec.hidden // 2
        features = np.concatenate([out[at, np.arange(B), :half], out[0, :, half:]], axis=1)
    elif spec.task == "regress" or spec.pool == "last":
        at = _last_index(lengths)
        features = out[at, np.arange(B)]  # (B, H)
    elif spec.pool == "mean":
        at = None
        features = (out * mask[..., None]).sum(axis=0) / np.maximum(lengths, 1)[:, None].astype(out.dtype)
    else:  # max over the real steps
        masked = np.where(mask[..., None], out, -np.inf)
        at = masked.argmax(axis=0)  # (B, H): the step that wins each unit
        features = np.take_along_axis(out, at[None], axis=0)[0]
    return Forward(features @ W.T + b, X, features, stack, at)


# ---------------------------------------------------------------------------------------
# Loss


@dataclass
class Loss:
    value: float
    d_outputs: np.ndarray  # ∂L/∂outputs, same shape as the outputs
    count: int  # predictions that count (labels, tokens or numbers)
    correct: int  # right argmax predictions (classify, tag, lm); 0 for regress
    sum: float  # the summed loss (value · count), for averages over batches
    # training an attending model: ‖∂L/∂θ‖ of the scoring parameters (seqtool.core.training)
    score_norm: float | None = None


def loss_of(spec: ModelSpec, outputs: np.ndarray, targets: np.ndarray,
            lengths: np.ndarray) -> Loss:
    """Mean cross-entropy over the predicted labels/tokens, or mean squared error over the
    predicted numbers; targets as :class:`seqtool.core.data.Batch` holds them (−1 pads)."""
    if spec.task == "regress":
        if spec.per_step:
            T = outputs.shape[0]
            valid = (np.arange(T)[:, None] < lengths[None, :])[..., None]  # (T, B, 1)
            diff = np.where(valid, outputs - targets, 0.0)
            count = int(valid.sum()) * outputs.shape[-1]
        else:
            diff = outputs - targets
            count = diff.size
        with np.errstate(over="ignore", invalid="ignore"):  # inf is the divergence signal
            total = float((diff.astype(np.float64) ** 2).sum())
        return Loss(total / max(count, 1), (2.0 / max(count, 1)) * diff, count, 0, total)
    labels = np.ascontiguousarray(targets, dtype=np.int64).reshape(-1)
    count = int((labels >= 0).sum())
    logits = np.ascontiguousarray(outputs).reshape(-1, outputs.shape[-1])
    total, grad, correct = _cross_entropy_rows(logits, labels, 1.0 / max(count, 1))
    return Loss(total / max(count, 1), grad.reshape(outputs.shape), count, int(correct), total)


@kernel
def _cross_entropy_rows(logits, labels, scale):
    """Σ_n −log softmax(z_n)[y_n] over the rows whose label y_n ≥ 0, its gradient
    scale · (softmax(z_n) − onehot(y_n)) (zero for the other rows), and how many rows have
    their label as the argmax (the first maximum on a tie). logsumexp is shifted by the
    row's maximum, so no exp overflows; the sum is kept in float64."""
    N, C = logits.shape
    grad = np.zeros_like(logits)
    total = 0.0
    correct = 0
    for n in range(N):
        y = labels[n]
        if y < 0:
            continue
        best = 0
        top = logits[n, 0]
        for c in range(1, C):
            if logits[n, c] > top:
                top = logits[n, c]
                best = c
        norm = 0.0
        for c in range(C):
            e = math.exp(logits[n, c] - top)
            grad[n, c] = e
            norm += e
        total += top + math.log(norm) - logits[n, y]
        for c in range(C):
            grad[n, c] = grad[n, c] / norm * scale
        grad[n, y] -= scale
        if best == y:
            correct += 1
    return total, grad, correct


# ---------------------------------------------------------------------------------------
# Backward


def backward(spec: ModelSpec, params: dict[str, np.ndarray], fwd: Forward, inputs: np.ndarray,
             lengths: np.ndarray, d_outputs: np.ndarray) -> dict[str, np.ndarray]:
    """∂L/∂ every parameter, given ∂L/∂outputs."""
    grads, dX, dA_in = _backward(spec, params, fwd, lengths, d_outputs)
    if spec.tokens_in:
        W_ih = params.get(RNN_PREFIX + "weight_ih_l0")
        grads["embedding.weight"], dW_ih = embedding_gradients(
            params["embedding.weight"], W_ih, inputs, dX, dA_in)
        if dW_ih is not None:
            grads[RNN_PREFIX + "weight_ih_l0"] = dW_ih
    return grads


@kernel
def _scatter_add_rows(out, ids, rows):
    """out[ids[n]] += rows[n] for every n whose id is not 0 (np.add.at, which is ~10×
    slower). Id 0 is <pad>, read only by the padded steps: their rows are 0 and the
    <pad> row's gradient is set to 0 anyway, so they are not read (~30 % of a seq2seq
    batch's rows, of 4H values each where the embedding is folded)."""
    for n in range(ids.shape[0]):
        i = ids[n]
        if i == 0:
            continue
        for j in range(rows.shape[1]):
            out[i, j] += rows[n, j]


def backward_with_inputs(spec: ModelSpec, params: dict[str, np.ndarray], fwd: Forward,
                         lengths: np.ndarray,
                         d_outputs: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """∂L/∂ every parameter but the embedding, and ∂L/∂X (T, B, E or D): the gradient that
    reaches each step's input vector (of a forward pass that did not fold the embedding)."""
    if fwd.X is None:
        raise ValueError("backward_with_inputs needs ∂L/∂X: run forward without fold_embedding")
    grads, dX, _ = _backward(spec, params, fwd, lengths, d_outputs)
    return grads, dX


def _backward(spec: ModelSpec, params: dict[str, np.ndarray], fwd: Forward,
              lengths: np.ndarray, d_outputs: np.ndarray):
    """(∂L/∂ every parameter but the embedding, ∂L/∂X, None), or for a folded forward pass
    (the same but ∂L/∂W_ih_l0, None, ∂L/∂(X W_ih_l0ᵀ) (T, B, G·H))."""
    W = params["head.weight"]
    F = fwd.features
    grads = {
        "head.weight": d_outputs.reshape(-1, d_outputs.shape[-1]).T @ F.reshape(-1, F.shape[-1]),
        "head.bias": d_outputs.reshape(-1, d_outputs.shape[-1]).sum(axis=0),
    }
    d_features = d_outputs @ W  # (T, B, F) or (B, F)
    T, B = fwd.stack.steps_and_batch if fwd.X is None else fwd.X.shape[:2]
    dA_in = None
    if spec.cell == "bow":
        mask = (np.arange(T)[:, None] < lengths[None, :])[..., None]
        counts = np.maximum(lengths, 1).astype(F.dtype)[:, None]
        dX = np.broadcast_to(d_features / counts, (T, B, F.shape[-1])) * mask
    else:
        if spec.per_step:
            d_out = d_features
        else:
            d_out = np.zeros((T, B, spec.hidden), dtype=F.dtype)
            if spec.pool == "attention" and spec.task == "classify":
                from seqtool.core.attention_pool import attention_pool_backward

                d_out, pool_grads = attention_pool_backward(spec, params,
                                                            fwd.pooled_at.outputs,
                                                            fwd.pooled_at, d_features)
                grads.update(pool_grads)
            elif spec.bidirectional and spec.pool == "last":
                half = spec.hidden // 2
                d_out[fwd.pooled_at, np.arange(B), :half] = d_features[:, :half]
                d_out[0, :, half:] = d_features[:, half:]
            elif spec.task == "regress" or spec.pool == "last":
                d_out[fwd.pooled_at, np.arange(B)] = d_features
            elif spec.pool == "mean":
                mask = (np.arange(T)[:, None] < lengths[None, :])[..., None]
                d_out[:] = mask * (d_features / np.maximum(lengths, 1)[:, None].astype(F.dtype))
            else:
                np.put_along_axis(d_out, fwd.pooled_at[None], d_features[None], axis=0)
        # the initial states are zeros, not parameters: no gradient for them
        layer_grads = stack_backward(fwd.stack, rnn_state(params), d_out,
                                     nonlinearity=spec.nonlinearity,
                                     input_products=fwd.X is not None, initial_states=False)
        dX = layer_grads.pop("x", None)
        dA_in = layer_grads.pop("dA_ih_l0", None)
        for key in ("h0", "c0"):
            layer_grads.pop(key, None)
        grads.update({RNN_PREFIX + key: value for key, value in layer_grads.items()})
    return grads, dX, dA_in


def parameter_count(params: dict[str, np.ndarray]) -> int:
    return int(sum(p.size for p in params.values()))


# ---------------------------------------------------------------------------------------
# What a model costs in memory, before anything is allocated


def parameter_bound(spec: ModelSpec) -> int:
    """An upper bound on the parameters ``spec`` has (computed, not allocated): the
    embedding table V·E, at most four gate blocks per layer, G·H·(E + H + 2) for the first
    and G·H·(2H + 2) for each further one, and the head O·(F + 1)."""
    H, L = spec.hidden, spec.layers
    E = spec.embedding_dim or spec.input_size
    vocab = spec.input_size * E if spec.tokens_in else 0
    layers = 0 if spec.cell == "bow" else 4 * H * (E + H + 2) + (L - 1) * 4 * H * (2 * H + 2)
    attention = 2 * H * (H + 1) if spec.pool == "attention" else 0
    if spec.task == "seq2seq":  # two embeddings and two stacks; W_q, W_k, b, v and W_c
        vocab, layers, attention = 2 * vocab, 2 * layers, 4 * H * (H + 1)
    return vocab + layers + attention + spec.output_size * (max(H, E) + 1)


def _gates(spec: ModelSpec) -> int:
    from seqtool.core.rnn.cells import get_cell

    return 0 if spec.cell == "bow" else len(get_cell(spec.cell).gates)


def memory_bound(spec: ModelSpec, batch: int, steps: int, dtype: Any,
                 training: bool) -> tuple[float, float]:
    """Bytes (parameters, activations) a step over ``batch`` sequences of ``steps`` tokens
    needs at most, estimated from the sizes alone so that what cannot fit is refused before
    it is allocated.

    Parameters: P numbers, six copies in training (the weights, their gradients, Adam's two
    moments, the best model and the checkpoint being written), two in inference, plus the
    float64 draw of the initialisation. Activations per step and sequence: each layer keeps
    its input projection, gates and states, (2G + 3)·H numbers, and training adds their
    gradients, (2G + 1)·H more; the input rows E (twice in training) and the outputs O at
    every step (three times in training: logits, log-probabilities, their gradient); attention
    pooling's keys, H more (and their gradient in training)."""
    size = np.dtype(dtype).itemsize
    P = parameter_bound(spec)
    G, H, L = _gates(spec), spec.hidden, spec.layers
    per_layer = (2 * G + 3) * H + ((2 * G + 1) * H if training else 0)
    E = spec.embedding_dim or spec.input_size
    out_steps = steps if spec.per_step else 1
    per_token = L * per_layer + E * (2 if training else 1)
    if spec.pool == "attention":  # the scores' keys (general, additive) and their gradient
        per_token += H * (2 if training else 1)
    if spec.task == "seq2seq":
        # an encoder and a decoder step per token, logits at every target step, and the
        # attention's (B, M, S) scores, weights and gradients (float64), with the additive
        # score's (B, M, S, H) tanh layer and its gradient
        per_token, out_steps = 2 * per_token, steps
        pairs = steps * steps * (6 * 8 // size + (H * (3 if training else 1)
                                                   if spec.score == "additive" else 0))
        per_token += pairs // max(steps, 1)
    activations = batch * (steps * per_token + out_steps * spec.output_size * (3 if training else 2))
    params = P * size * (6 if training else 2) + P * 8
    return float(params), float(activations * size)
