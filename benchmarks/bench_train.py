"""End-to-end training throughput: `seqtool train-rnn`'s step against a PyTorch CPU loop.

Workload, the same for both, on one thread (--threads: more), float32, for every cell (rnn, gru, lstm) at
every hidden size H (default 32, 128, 512; --sizes or --hidden) and each task of --tasks
(default classify,lm):

    classify  builtin("sentiment") (3000 reviews of 3-14 words; 2 classes):
              embedding (V, E) -> 1-layer cell -> h at the last real step (pool "last")
              -> linear head -> cross-entropy, mean over the batch
    lm        builtin("dyck", seq_len=24) (2000 strings, 3-25 steps; 9 symbols):
              embedding -> 1-layer cell -> linear head at every step
              -> cross-entropy, mean over the real (non-padded) steps
    seq2seq   the training split of prepare("reverse", seed=0) (4500 digit strings of 5-12
              tokens -> the string reversed; V = 14: 10 digits, <pad> <unk> <s> </s>,
              shared by source and target): seqtool.core.seq2seq, score "dot", selector
              "softmax", 1 layer, no dropout:
              encoder embedding -> cell over the source -> keys ē_s (B, S, H);
              decoder embedding -> cell over <s> y_1..y_m from the encoder's final state
              (teacher forcing) -> h_t; a_t = softmax over the real s of h_tᵀ ē_s,
              c_t = Σ a_ts ē_s, h̃_t = tanh(W_c [c_t; h_t]) (no bias) -> linear head
              -> cross-entropy against y_1..y_m </s>, mean over the real decoder steps

E = 32, the `--embedding-dim` default of `seqtool train-rnn` (--embedding-dim changes it).
Batches of 32 in the order of the first epoch of `seqtool.core.training.train` (seed 0,
``epoch_order(0, 0, n)``), time-major and right-padded to the longest sequence of the batch,
as ``seqtool.core.data.make_batch`` builds them (seq2seq: the sources so, the targets
[<s> y.. </s>] padded to their own longest; ``decoder_io`` gives the decoder's inputs,
targets and lengths). Adam, lr 1e-3, no weight decay, no clipping.

Same weights: seqtool's ``init_params(spec, seed=0)`` is copied into the torch modules with
``load_state_dict`` (names embedding.*, rnn.*, head.*; seq2seq: encoder.embedding.*,
encoder.rnn.*, decoder.embedding.*, decoder.rnn.*, combine.weight, head.*). Same batches:
every batch is built once, before timing, on both sides (seqtool's ``Batch`` objects; torch
int64 tensors of the same arrays, seq2seq's decoder inputs, (B, M) targets and (B, 1, S)
padding mask included), so both time only forward + loss + backward + optimiser step.

    seqtool, one step: what the inner loop of seqtool.core.training.train does per step,
    minus make_batch and the hooks, i.e. its own function
        loss, norm = train_step(spec, settings, params, optimizer, batch, None, workspace)
    with one seqtool.core.buffers.Workspace kept for the whole run, as train() keeps one,
    and no generator (train() seeds one only when the step draws: dropout, Gumbel; none
    here). For classify and lm that is
        fwd = forward(spec, params, inputs, lengths, fold_embedding=True, workspace=...)
        loss = loss_of(spec, fwd.outputs, targets, lengths); isfinite(loss.value)
        grads = backward(spec, params, fwd, inputs, lengths, loss.d_outputs)
        norm = global_norm(grads); isfinite(norm)
        optimizer.step(grads)                      # seqtool.core.optim.Adam, fused update
    and for seq2seq, seqtool.core.seq2seq.batch_gradients in place of the first three:
        io = decoder_io(batch)
        fwd = seq2seq.forward(spec, params, batch.inputs, batch.lengths, io.inputs,
                              io.lengths, fold_embedding=True, workspace=...)
        loss = loss_of(...); the attention's entropy (a training statistic)
        grads = seq2seq.backward(spec, params, fwd, batch.inputs, io.inputs, ...)
    torch, one step (nn.Embedding(V, E, padding_idx=0), nn.RNN/GRU/LSTM(E, H),
    batch_first=False, nn.Linear(H, O); torch.optim.Adam(lr=1e-3), its defaults):
        optimizer.zero_grad(set_to_none=True)
        classify, "full":   out, _ = model.rnn(model.embedding(x))
                            logits = model.head(out[lengths - 1, arange(B)])
        classify, "packed": _, h_n = model.rnn(pack_padded_sequence(emb, lengths));
                            h_n[-1] (h of LSTM)
        lm, "full":         logits = model.head(model.rnn(emb)[0])
                            CrossEntropyLoss(ignore_index=-1)(logits.view(-1, O), y.view(-1))
        lm, "packed":       out, _ = model.rnn(pack_padded_sequence(emb, lengths))
                            CrossEntropyLoss()(model.head(out.data),
                                               pack_padded_sequence(y, lengths).data)
        loss.backward(); optimizer.step(); loss.item()
    seq2seq (torch.nn.Embedding(V, E, padding_idx=0) and an RNN/GRU/LSTM(E, H) each for
    encoder and decoder, nn.Linear(2H, H, bias=False) combine, nn.Linear(H, V) head;
    targets y (B, M) built once):
        "packed":  out, state = encoder.rnn(pack_padded_sequence(enc_emb, src_lengths))
                   keys = pad_packed_sequence(out, batch_first=True)       (B, S, H)
                   out, _ = decoder.rnn(pack_padded_sequence(dec_emb, dec_lengths), state)
                   queries = pad_packed_sequence(out, batch_first=True)    (B, M, H)
        "full":    the RNNs over the padding too: keys = out.transpose(0, 1), the decoder
                   from state = out[src_lengths - 1, arange(B)] (rnn, gru); the LSTM's
                   encoder stays packed, the only way to its cell state at each source's
                   last real step (its decoder runs over the padding)
        then       scores = bmm(queries, keys.transpose(1, 2)).masked_fill(pad, -inf)
                   context = bmm(softmax(scores, -1), keys)
                   logits = head(tanh(combine(cat([context, queries], -1))))   (B, M, V)
                   F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), ignore_index=-1)
    "packed" skips the padded steps, as seqtool's layers always do (train-rnn sorts each
    batch longest first, so both sides see sorted batches and torch needs no re-sorting;
    a seq2seq batch sorted by source length is sorted by target length too for reverse, and
    enforce_sorted follows each batch's lengths).
    --torch-padding auto (default) probes full and packed on a throw-away copy of the model
    for each task, cell and size, alternating step by step on the same batches, and keeps
    the faster one for torch (the "torch pad" column).

Tokens = Σ lengths over a batch (real tokens, not padding; seq2seq: the sources', as
train()'s tokens_per_s counts them). Timing: every sample is a block of
k back-to-back steps of one implementation over batches j·k .. j·k + k − 1 (cycling through
the epoch), with the same k and the same batches for seqtool and torch; blocks of the two
alternate, so that drift hits both alike. k is chosen so that a block lasts about --block-ms
on the slower side (at least one step); the number of blocks so that each implementation
spends about --budget seconds per row, at least 5 blocks and 5 steps. tokens/s = 1 / the
median over blocks of (block seconds / block tokens); ms/step = the median of block seconds /
k. time.perf_counter throughout.

Warm-up, outside the timing: the agreement checks, which include numba's compilation or
cache load on the first row of a cell, then 3 more steps per side. "grad rel diff" is the
largest, over the parameters, of max |g_seqtool − g_torch| / max |g_torch| for the
gradients of batch 0 from identical weights (≤ 1e-5 expected in float32: rounding only).
"param rel diff" is the same for the parameters after 3 identical Adam steps on batches
0-2; Adam divides each gradient entry by its own magnitude, so where an entry is as small
as the rounding of the others (|g| ~ 1e-7) the two sides step differently, and up to 1e-2
is expected there.

Ratio = seqtool tokens/s ÷ torch tokens/s (= torch time / seqtool time). Goals: classify
and lm ≥ 3× at H ≤ 128, ≥ 1.0× at H = 512 (other sizes: ≥ 1.0×); seq2seq ≥ 2× at every H
(the issue asks for H = 64 and 256: --tasks seq2seq --hidden 64,256). With --threads
default (each side's own thread count): rnn and gru ≥ 2×, the LSTM ≥ 1.5× at every H.

"at most": the largest ratio any implementation could reach against this torch run. It
measures the peak first (NumPy's matmul of two 2048 × 2048 float32 matrices on one core)
and counts the FLOPs of the matrix products that seqtool's step does and cannot skip, on
the real steps only (step_flops); a step can take no less than those FLOPs ÷ (threads ×
peak), so seqtool/torch ≤ torch's time per token ÷ that. A goal above it cannot be met on
that machine by any kernel that is not faster than its BLAS's best.

    python benchmarks/bench_train.py [--sizes|--hidden 32,128,512] [--cells rnn,gru,lstm]
                                     [--tasks classify,lm,seq2seq] [--budget 1.0]
                                     [--block-ms 100]
                                     [--torch-padding auto|full|packed]
                                     [--profile 25] [--profile-steps 200]

--profile N runs cProfile over the seqtool side after each row's timing (--profile-steps
steps, or as many as --budget allows, at least 5) and prints the share of each stage of the
step (seq2seq: decoder_io, forward (encode, stack_forward, attend), loss_of, entropy,
backward (attend_backward, stack_backward, embedding gradients), global_norm, the optimiser;
stack_* count both RNNs), where a step goes and the top N functions by own time. "Where a
step goes" splits the step timed without the profiler into the numba kernels' own times
(cProfile times each kernel call exactly; its overhead lands on the Python around them):
the recurrent kernels, with the FLOPs of the per-step products inside them and what those
take at the peak; product_into (the products after the loops, the combine layer), with its
FLOPs counted call by call and its rate; the attention kernels, Adam, the gradient norm,
the row gathers and the other kernels; and the rest, NumPy and Python around the kernels.

It prints the CPU model, the versions and the BLAS kernels first. Run it without the
OpenBLAS core override, which makes NumPy use AVX2 kernels on an AVX-512
machine while torch's MKL uses AVX-512:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_train.py
"""

from __future__ import annotations

import os
import sys


def _threads_asked(argv: list[str]) -> str:
    """--threads as given (read before torch is imported: its default thread count comes
    from OMP_NUM_THREADS)."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


THREADS = _threads_asked(sys.argv)
# NumPy's and SciPy's BLAS on one thread, as the seqtool CLI runs them (the parts of a batch
# are its threads); torch on one thread too unless --threads says otherwise
for _var in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
if THREADS == "1":
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import copy  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

from machine import blas_report, cpu_model, peak_gflops  # noqa: E402  (benchmarks/machine.py)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

if THREADS != "default":  # else torch keeps the thread counts it chose itself
    torch.set_num_threads(int(THREADS))
    try:
        torch.set_num_interop_threads(int(THREADS))
    except RuntimeError:  # already set
        pass

DATA = {"classify": ("sentiment", None), "lm": ("dyck", 24),  # name, seq_len
        "seq2seq": ("reverse", None)}
SMALL_GOAL, DEFAULT_GOAL = 3.0, 1.0  # seqtool/torch at H <= 128, at larger H
SEQ2SEQ_GOAL = 2.0  # seqtool/torch for seq2seq, at every H
# each side with its default threads (--threads default, #18): rnn and gru ≥ 2×, the LSTM
# ≥ 1.5× at every H
DEFAULT_THREADS_GOALS = {"rnn": 2.0, "gru": 2.0, "lstm": 1.5}
CHECK_STEPS = 3
WARMUP_STEPS = 3
MIN_BLOCKS = 5
MIN_STEPS = 5
GRAD_TOLERANCE = 1e-5
PARAM_TOLERANCE = 1e-2
SEED = 0


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def ratio_goal(task: str, hidden: int, cell: str = "rnn", threads: str = "1") -> float:
    if threads == "default" and task != "seq2seq":
        return DEFAULT_THREADS_GOALS.get(cell, DEFAULT_GOAL)
    if task == "seq2seq":
        return SEQ2SEQ_GOAL
    return SMALL_GOAL if hidden <= 128 else DEFAULT_GOAL


# ---------------------------------------------------------------------------------------
# The data: the same batches, built once, for both sides


class Data:
    def __init__(self, task: str, batch_size: int):
        from seqtool.core.data import builtin, make_batch
        from seqtool.core.training import batches, epoch_order

        name, seq_len = DATA[task]
        self.task, self.name = task, name
        if task == "seq2seq":  # the training split, as `seqtool train-rnn --data reverse` has it
            from seqtool.core.data import prepare

            self.dataset = prepare(name, seq_len=seq_len, seed=SEED)[0]
        else:
            self.dataset = builtin(name, seq_len=seq_len, seed=SEED)
        n = len(self.dataset)
        order = epoch_order(SEED, 0, n)  # train()'s first epoch
        self.batches = [make_batch(self.dataset, idx)
                        for idx in batches(n, batch_size, order, self.dataset.lengths)]
        # train()'s count (its tokens_per_s): the real input tokens, a seq2seq batch's sources
        self.tokens = [int(b.lengths.sum()) for b in self.batches]
        self.torch_batches = []
        if task == "seq2seq":
            self.torch_batches = [seq2seq_torch_batch(b) for b in self.batches]
            return
        for b in self.batches:
            lengths = torch.from_numpy(b.lengths.copy())
            self.torch_batches.append(dict(
                x=torch.from_numpy(b.inputs.copy()),  # (T, B) int64
                lengths=lengths,  # (B,) int64, CPU: what pack_padded_sequence wants
                last=lengths - 1,  # (B,)
                arange=torch.arange(len(b.lengths)),
                y=torch.from_numpy(b.targets.copy()),  # (B,) or (T, B) with -1 pads
            ))

    def describe(self) -> str:
        if self.task == "seq2seq":
            return self._describe_seq2seq()
        lengths = np.concatenate([b.lengths for b in self.batches])
        T = [b.inputs.shape[0] for b in self.batches]
        real = sum(self.tokens) / sum(b.inputs.size for b in self.batches)
        return (f"{self.task}: {self.name}, {len(self.dataset)} sequences, "
                f"{len(self.batches)} batches, lengths {lengths.min()}-{lengths.max()} "
                f"(mean {lengths.mean():.1f}), padded T mean {np.mean(T):.1f}, "
                f"{real:.0%} of the padded steps real; V={self.dataset.input_size}, "
                f"O={self.dataset.output_size}")

    def _describe_seq2seq(self) -> str:
        from seqtool.core.data import decoder_io

        src = np.concatenate([b.lengths for b in self.batches])
        ios = [decoder_io(b) for b in self.batches]
        dec = np.concatenate([io.lengths for io in ios])
        S = [b.inputs.shape[0] for b in self.batches]
        M = [io.inputs.shape[0] for io in ios]
        real_src = src.sum() / sum(b.inputs.size for b in self.batches)
        real_dec = dec.sum() / sum(io.inputs.size for io in ios)
        return (f"{self.task}: {self.name} (training split), {len(self.dataset)} pairs, "
                f"{len(self.batches)} batches, sources {src.min()}-{src.max()} tokens "
                f"(mean {src.mean():.1f}), decoder steps {dec.min()}-{dec.max()} "
                f"(<s> y_1..y_m -> y_1..y_m </s>), padded S mean {np.mean(S):.1f}, M mean "
                f"{np.mean(M):.1f}, {real_src:.0%} / {real_dec:.0%} of the padded encoder / "
                f"decoder steps real; V={self.dataset.input_size} (shared)")


def seq2seq_torch_batch(b) -> dict:
    """A seq2seq Batch as torch tensors, built once: sources (S, B), decoder inputs (M, B)
    (seqtool.core.data.decoder_io), targets (B, M) with −1 pads, lengths, the attention's
    padding mask (B, 1, S)."""
    from seqtool.core.data import decoder_io

    io = decoder_io(b)
    S = b.inputs.shape[0]
    src_lengths, dec_lengths = b.lengths.copy(), io.lengths.copy()
    return {
        "src": torch.from_numpy(b.inputs.copy()),  # (S, B) int64
        "src_lengths": torch.from_numpy(src_lengths),
        "src_sorted": bool(np.all(np.diff(src_lengths) <= 0)),
        "last": torch.from_numpy(src_lengths - 1),
        "arange": torch.arange(len(src_lengths)),
        "dec": torch.from_numpy(io.inputs.copy()),  # (M, B) int64
        "dec_lengths": torch.from_numpy(dec_lengths),
        "dec_sorted": bool(np.all(np.diff(dec_lengths) <= 0)),
        "y": torch.from_numpy(np.ascontiguousarray(io.targets.T)),  # (B, M), −1 past the end
        "pad": torch.from_numpy(np.arange(S)[None, None, :] >= src_lengths[:, None, None]),
    }


# ---------------------------------------------------------------------------------------
# seqtool's side


class SeqtoolTrainer:
    def __init__(self, spec, params: dict[str, np.ndarray], data: Data, lr: float):
        from seqtool.core import optim

        self.spec, self.params, self.data = spec, params, data
        from seqtool.core import training
        from seqtool.core.buffers import Workspace

        self.training = training
        self.settings = training.TrainSettings(optimizer="adam", lr=lr)
        self.opt = training.prepare_optimizer(optim.make_optimizer("adam", params, lr, 0.0))
        if training.draws(spec):
            raise ValueError("the benchmark's models draw no random numbers (no dropout)")
        self.workspace = Workspace()  # train() keeps one for the whole run

    def step(self, i: int) -> float:
        """One step of seqtool.core.training.train on batch i (prebuilt): the loop's own
        train_step with its workspace (no dropout here, so no generator)."""
        batch = self.data.batches[i]
        loss, norm = self.training.train_step(self.spec, self.settings, self.params, self.opt,
                                              batch, None, self.workspace)
        if not (math.isfinite(loss.value) and math.isfinite(norm)):
            raise RuntimeError(f"seqtool: loss {loss.value}, gradient norm {norm} at batch {i}")
        return loss.value

    def gradients(self, i: int) -> dict[str, np.ndarray]:
        """The gradients of batch i, as train_step computes them (folded embeddings), without
        a step and without the workspace (so that they are the caller's to keep)."""
        _, grads, _ = self.training.batch_gradients(self.spec, self.params,
                                                    self.data.batches[i], None)
        return grads


# ---------------------------------------------------------------------------------------
# torch's side


class TorchModel(torch.nn.Module):
    def __init__(self, cell: str, V: int, E: int, H: int, O: int):
        super().__init__()
        self.cell = cell
        self.embedding = torch.nn.Embedding(V, E, padding_idx=0)
        if cell == "rnn":
            self.rnn = torch.nn.RNN(E, H, nonlinearity="tanh", batch_first=False)
        elif cell == "gru":
            self.rnn = torch.nn.GRU(E, H, batch_first=False)
        else:
            self.rnn = torch.nn.LSTM(E, H, batch_first=False)
        self.head = torch.nn.Linear(H, O)


class TorchTrainer:
    def __init__(self, task: str, cell: str, params: dict[str, np.ndarray], data: Data,
                 hidden: int, lr: float, pool: str = "full"):
        V, E = params["embedding.weight"].shape
        O = params["head.weight"].shape[0]
        self.task, self.pool, self.data, self.O = task, pool, data, O
        self.model = TorchModel(cell, V, E, hidden, O)
        self.model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in params.items()},
                                   strict=True)
        self.model.train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.lm_loss = torch.nn.CrossEntropyLoss(ignore_index=-1)

    def clone(self, pool: str) -> "TorchTrainer":
        other = copy.copy(self)
        other.pool = pool
        other.model = copy.deepcopy(self.model)
        other.opt = torch.optim.Adam(other.model.parameters(), lr=self.opt.defaults["lr"])
        return other

    def gradients(self, i: int) -> dict[str, np.ndarray]:
        """The gradients of batch i, without a step."""
        self.step(i, update=False)
        grads = {k: p.grad.numpy().copy() for k, p in self.model.named_parameters()}
        self.opt.zero_grad(set_to_none=True)
        return grads

    def step(self, i: int, update: bool = True) -> float:
        b = self.data.torch_batches[i]
        model = self.model
        self.opt.zero_grad(set_to_none=True)
        emb = model.embedding(b["x"])  # (T, B, E)
        if self.task == "classify":
            if self.pool == "packed":
                packed = torch.nn.utils.rnn.pack_padded_sequence(emb, b["lengths"])
                _, h_n = model.rnn(packed)
                if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
                    h_n = h_n[0]
                features = h_n[-1]  # (B, H), in the batch's order
            else:
                out, _ = model.rnn(emb)  # (T, B, H)
                features = out[b["last"], b["arange"]]
            loss = F.cross_entropy(model.head(features), b["y"])
        elif self.pool == "packed":
            out, _ = model.rnn(torch.nn.utils.rnn.pack_padded_sequence(emb, b["lengths"]))
            y = torch.nn.utils.rnn.pack_padded_sequence(b["y"], b["lengths"]).data
            loss = F.cross_entropy(model.head(out.data), y)
        else:
            out, _ = model.rnn(emb)
            logits = model.head(out)  # (T, B, O)
            loss = self.lm_loss(logits.view(-1, self.O), b["y"].view(-1))
        loss.backward()
        if update:
            self.opt.step()
        return loss.item()

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy() for k, v in self.model.state_dict().items()}


def torch_rnn(cell: str, E: int, H: int) -> torch.nn.Module:
    if cell == "rnn":
        return torch.nn.RNN(E, H, nonlinearity="tanh", batch_first=False)
    if cell == "gru":
        return torch.nn.GRU(E, H, batch_first=False)
    return torch.nn.LSTM(E, H, batch_first=False)


class TorchSide(torch.nn.Module):
    """One side of the encoder-decoder: encoder.* or decoder.* (embedding, rnn)."""

    def __init__(self, cell: str, V: int, E: int, H: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(V, E, padding_idx=0)
        self.rnn = torch_rnn(cell, E, H)


class TorchSeq2Seq(torch.nn.Module):
    """seqtool.core.seq2seq's model (dot score, softmax) with its parameter names."""

    def __init__(self, cell: str, V: int, E: int, H: int):
        super().__init__()
        self.cell = cell
        self.encoder = TorchSide(cell, V, E, H)
        self.decoder = TorchSide(cell, V, E, H)
        self.combine = torch.nn.Linear(2 * H, H, bias=False)
        self.head = torch.nn.Linear(H, V)


class TorchSeq2SeqTrainer(TorchTrainer):
    """The seq2seq model as a PyTorch user writes it: the RNNs over packed sequences (or
    over the padding, --torch-padding), batched attention with bmm, ignore_index loss."""

    def __init__(self, cell: str, params: dict[str, np.ndarray], data: Data, hidden: int,
                 lr: float, pool: str = "packed"):
        V, E = params["encoder.embedding.weight"].shape
        self.task, self.pool, self.data, self.O = "seq2seq", pool, data, V
        self.model = TorchSeq2Seq(cell, V, E, hidden)
        self.model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in params.items()},
                                   strict=True)
        self.model.train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)

    def step(self, i: int, update: bool = True) -> float:
        b = self.data.torch_batches[i]
        model = self.model
        pack = torch.nn.utils.rnn.pack_padded_sequence
        unpack = torch.nn.utils.rnn.pad_packed_sequence
        self.opt.zero_grad(set_to_none=True)
        # encoder: keys (B, S, H) and the final state at each source's last real step
        src = model.encoder.embedding(b["src"])  # (S, B, E)
        S, M = b["src"].shape[0], b["dec"].shape[0]
        if self.pool == "packed" or model.cell == "lstm":
            # (an LSTM's cell state at the last real step needs packing even for "full")
            out, state = model.encoder.rnn(pack(src, b["src_lengths"],
                                                enforce_sorted=b["src_sorted"]))
            keys, _ = unpack(out, batch_first=True, total_length=S)  # zeros past the end
        else:
            out, _ = model.encoder.rnn(src)  # (S, B, H), over the padding too
            keys = out.transpose(0, 1)  # the padded steps are masked out of the softmax
            state = out[b["last"], b["arange"]].unsqueeze(0)  # (1, B, H)
        # decoder, from the encoder's final state, teacher-forced
        dec = model.decoder.embedding(b["dec"])  # (M, B, E)
        if self.pool == "packed":
            out, _ = model.decoder.rnn(pack(dec, b["dec_lengths"],
                                            enforce_sorted=b["dec_sorted"]), state)
            queries, _ = unpack(out, batch_first=True, total_length=M)  # (B, M, H)
        else:
            out, _ = model.decoder.rnn(dec, state)
            queries = out.transpose(0, 1)  # (B, M, H); padded steps are ignored by the loss
        # global attention (dot score, softmax over the real source steps)
        scores = torch.bmm(queries, keys.transpose(1, 2))  # (B, M, S)
        weights = torch.softmax(scores.masked_fill(b["pad"], float("-inf")), dim=-1)
        context = torch.bmm(weights, keys)  # (B, M, H)
        combined = torch.tanh(model.combine(torch.cat([context, queries], dim=-1)))
        logits = model.head(combined)  # (B, M, V)
        loss = F.cross_entropy(logits.reshape(-1, self.O), b["y"].reshape(-1), ignore_index=-1)
        loss.backward()
        if update:
            self.opt.step()
        return loss.item()


# ---------------------------------------------------------------------------------------
# The ceiling: the products a step cannot do without, at NumPy's peak


def step_flop_parts(task: str, cell: str, batch, E: int, H: int, V: int, O: int
                    ) -> dict[str, float]:
    """FLOPs (2 per multiply-add) of the matrix products that seqtool's training step on
    ``batch`` does and cannot skip, counted on the real steps only, by where they run:

        "recurrent loop": per layer and real step after a sequence's first (whose h_0 is 0,
        except in seq2seq's decoder), inside the recurrent kernels: h W_hhᵀ, ∂h = ∂A W_hh,
        2 · 2·G·H²
        "after the loop": ∂W_hh += ∂Aᵀ h for the same steps (2·G·H²), and the folded input
        side, once per batch: E W_ihᵀ, ∂E = S W_ih, ∂W_ih = Sᵀ E (3 · 2·V·E·G·H)
        "head": classify B rows, lm every real step: forward, ∂W, ∂h (3 · 2·H·O per row);
        seq2seq per real decoder step: the combine layer W_c [c; h] (2H → H) and the head
        (H → V), 3 · 2 each
        "attention" (seq2seq): the dot scores and context over the real source steps, six
        (m_b × s_b × H) products per sequence

    Element-wise work (gates, softmax, Adam) is left out, so the time at the peak is a
    floor, and torch's time over it a ceiling on the ratio."""
    from seqtool.core.rnn.cells import get_cell

    G = len(get_cell(cell).gates)
    lengths = np.asarray(batch.lengths)
    real = float(lengths.sum())
    first = float(np.count_nonzero(lengths))
    recurrent = 2.0 * G * H * H  # one product per step
    fold = 6.0 * V * E * G * H
    if task == "seq2seq":
        from seqtool.core.data import decoder_io

        dec = np.asarray(decoder_io(batch).lengths, dtype=float)
        m = float(dec.sum())
        steps = real - first + m
        return {"recurrent loop": 2 * recurrent * steps,
                "after the loop": recurrent * steps + 2 * fold,
                "head": m * 6.0 * (2 * H * H + H * V),
                "attention": 6.0 * 2.0 * float((dec * lengths).sum()) * H}
    steps = real - first
    return {"recurrent loop": 2 * recurrent * steps, "after the loop": recurrent * steps + fold,
            "head": 6.0 * H * O * (real if task == "lm" else len(lengths)), "attention": 0.0}


def step_flops(task: str, cell: str, batch, E: int, H: int, V: int, O: int) -> float:
    """The FLOPs of step_flop_parts, all of them."""
    return sum(step_flop_parts(task, cell, batch, E, H, V, O).values())


def flops_per_token(data: "Data", cell: str, E: int, H: int) -> float:
    """step_flops summed over the epoch's batches per real token (train()'s count)."""
    V = data.dataset.input_size
    O = getattr(data.dataset, "output_size", V)
    total = sum(step_flops(data.task, cell, b, E, H, V, O) for b in data.batches)
    return total / sum(data.tokens)


# ---------------------------------------------------------------------------------------
# Timing


def run_steps(step, start: int, k: int, n: int) -> float:
    """Seconds for k back-to-back steps on batches start .. start + k − 1 (mod n)."""
    t0 = time.perf_counter()
    for j in range(start, start + k):
        step(j % n)
    return time.perf_counter() - t0


def choose_pool(trainer: TorchTrainer, data: Data, seconds: float) -> tuple[str, dict]:
    """The faster of full and packed for torch, timed on throw-away copies: median seconds
    per token of single steps over ~``seconds`` each, the two alternating step by step on
    the same batches (timed one after the other, a change of the machine's speed between
    them had picked the slower one, packed, in about one run of three for seq2seq)."""
    steps = {pool: trainer.clone(pool).step for pool in ("full", "packed")}
    tokens, n = data.tokens, len(data.tokens)
    j = CHECK_STEPS + WARMUP_STEPS
    for step in steps.values():
        run_steps(step, j, 2, n)
    j += 2
    per_token: dict[str, list[float]] = {pool: [] for pool in steps}
    spent = 0.0
    while (spent < 2 * seconds or len(per_token["full"]) < 3) and len(per_token["full"]) < 200:
        order = list(steps) if j % 2 == 0 else list(steps)[::-1]
        for pool in order:
            t = run_steps(steps[pool], j, 1, n)
            per_token[pool].append(t / tokens[j % n])
            spent += t
        j += 1
    times = {pool: statistics.median(v) for pool, v in per_token.items()}
    return min(times, key=times.get), times


def max_rel_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[float, str]:
    worst, worst_name = 0.0, ""
    for name in b:
        a64, b64 = np.asarray(a[name], np.float64), np.asarray(b[name], np.float64)
        err = float(np.max(np.abs(a64 - b64)) / max(np.max(np.abs(b64)), 1e-300))
        if not err <= worst:  # NaN counts
            worst, worst_name = err, name
    return worst, worst_name


def bench_row(seq: SeqtoolTrainer, tch: TorchTrainer, data: Data, budget: float,
              block: float) -> dict:
    n = len(data.batches)
    start = CHECK_STEPS
    for j in range(start, start + WARMUP_STEPS):  # warm-up (the check ran 3 steps each)
        seq.step(j % n)
        tch.step(j % n)
    start += WARMUP_STEPS
    # estimates of one step each, on 3 batches
    est_seq = run_steps(seq.step, start, 3, n) / 3
    est_torch = run_steps(tch.step, start, 3, n) / 3
    start += 3
    slower = max(est_seq, est_torch)
    k = max(1, round(block / slower)) if block > 0 else 1
    blocks = max(MIN_BLOCKS, math.ceil(MIN_STEPS / k), math.ceil(budget / (k * slower)))
    s_seq, s_torch, ms_seq, ms_torch = [], [], [], []
    for b in range(blocks):
        j = start + b * k
        tokens = sum(data.tokens[(j + i) % n] for i in range(k))
        t = run_steps(seq.step, j, k, n)
        s_seq.append(t / tokens)
        ms_seq.append(t / k)
        t = run_steps(tch.step, j, k, n)
        s_torch.append(t / tokens)
        ms_torch.append(t / k)
    return dict(tps_seq=1.0 / statistics.median(s_seq),
                tps_torch=1.0 / statistics.median(s_torch),
                ms_seq=statistics.median(ms_seq) * 1e3, ms_torch=statistics.median(ms_torch) * 1e3,
                blocks=blocks, k=k, next=start + blocks * k)


# ---------------------------------------------------------------------------------------
# Profile of seqtool's side


STAGES = [  # (label, file suffix, function name): cumulative time of each stage of a step
    ("forward", "core/models.py", "forward"),
    ("loss_of", "core/models.py", "loss_of"),
    ("backward", "core/models.py", "backward"),
    ("global_norm", "core/optim.py", "global_norm"),
    ("optimizer.step", "core/optim.py", "step"),
]
SEQ2SEQ_STAGES = [  # seqtool.core.seq2seq.batch_gradients and the rest of train_step
    ("decoder_io", "core/data/batching.py", "decoder_io"),
    ("forward", "core/seq2seq.py", "forward"),
    ("(encode", "core/seq2seq.py", "encode"),
    ("stack_forward", "core/rnn/stack.py", "stack_forward"),
    ("attend)", "core/global_attention.py", "attend"),
    ("loss_of", "core/models.py", "loss_of"),
    ("entropy", "core/global_attention.py", "entropy"),
    ("backward", "core/seq2seq.py", "backward"),
    ("(attend_backward", "core/global_attention.py", "attend_backward"),
    ("stack_backward", "core/rnn/stack.py", "stack_backward"),
    ("embedding gradients)", "core/models.py", "embedding_gradients"),
    ("global_norm", "core/optim.py", "global_norm"),
    ("optimizer.step", "core/optim.py", "step"),
]


# Where a step's time goes: the own times of the numba kernels, which cProfile measures
# exactly as the single calls they are (its overhead lands on the Python around them)
KERNELS = [  # (label, own time or cumulative, ((file suffix, function name), ...))
    ("recurrent kernels", "own", (("rnn/gated.py", "_lstm_forward_into"),
                                  ("rnn/gated.py", "_lstm_backward"),
                                  ("rnn/gated.py", "_gru_forward_into"),
                                  ("rnn/gated.py", "_gru_backward_into"),
                                  ("rnn/vanilla.py", "_rnn_forward"),
                                  ("rnn/vanilla.py", "_rnn_backward"))),
    ("product_into", "own", (("rnn/products.py", "product_into"),)),
    ("attention kernels", "own", (("core/attention_kernels.py", "softmax_attend_into"),
                                  ("core/attention_kernels.py",
                                   "softmax_attend_backward_into"))),
    ("Adam", "own", (("core/fused.py", "_adam_update"),)),
    ("gradient norm", "cumulative", (("core/optim.py", "global_norm"),)),  # with its np.dot
    ("row gathers", "own", (("~", "<method 'take' of 'numpy.ndarray' objects>"),)),
    ("other kernels", "own", (("core/models.py", "_scatter_add_rows"),
                              ("core/models.py", "_cross_entropy_rows"),
                              ("rnn/blas.py", "transposed_copy"))),
]


@contextlib.contextmanager
def swapped(module, name: str, make):
    """``module.name`` replaced by ``make(original)`` wherever a seqtool module bound it (by
    its name, as ``from module import name`` does) while inside; restored after. Compiled
    kernels that call it are not affected: numba bound the original itself."""
    original = getattr(module, name)
    replacement = make(original)
    bound = [m for module_name, m in list(sys.modules.items())
             if module_name.startswith("seqtool") and getattr(m, name, None) is original]
    for m in bound:
        setattr(m, name, replacement)
    try:
        yield
    finally:
        for m in bound:
            setattr(m, name, original)


def counting_products(counter: list[float]):
    """seqtool.core.rnn.products.product_into, wherever a seqtool module bound it, adding
    each call's FLOPs (2·M·K·N) to counter[0] while inside (:func:`swapped`)."""
    from seqtool.core.rnn import products

    def make(original):
        def counted(out, a, w):
            counter[0] += 2.0 * a.shape[0] * a.shape[1] * w.shape[1]
            return original(out, a, w)
        return counted

    return swapped(products, "product_into", make)


def step_breakdown(raw: dict, steps: int, ms_step: float, parts: dict[str, float],
                   product_flops: float, peak: float) -> str:
    """The table of where a step goes: each KERNELS group's own time per step (cumulative
    for the gradient norm), the per-step products that the recurrent kernels hold (their
    FLOPs from step_flop_parts, at the peak) and product_into's rate, and the rest of the
    unprofiled step ``ms_step``: NumPy and Python around the kernels."""
    out = io.StringIO()
    out.write(f"  where a step goes, ms per step (the kernels: their own times under the "
              f"profiler; the total: {ms_step:.2f}, the same steps timed without it just "
              f"before; the peak {peak:.1f} GFLOP/s):\n")
    accounted = 0.0
    for label, which, functions in KERNELS:
        column = 3 if which == "cumulative" else 2  # pstats: (cc, nc, tottime, cumtime, ...)
        ms = sum(v[column] for (f, _, fn), v in raw.items()
                 if any(fn == name and f.endswith(suffix) for suffix, name in functions))
        ms = ms * 1e3 / steps
        accounted += ms
        note = ""
        if label == "recurrent kernels":
            loop = parts["recurrent loop"] / 1e9
            at_peak = loop / peak * 1e3
            note = (f"their per-step products {loop:.3f} GFLOP, {at_peak:.2f} at the peak; "
                    f"the rest {ms - at_peak:.2f}")
        elif label == "product_into" and ms > 0:
            flops = product_flops / steps / 1e9
            note = f"{flops:.3f} GFLOP, {flops / ms * 1e3:.1f} GFLOP/s"
        out.write(f"    {label:<18} {ms:6.2f}  {note}\n")
    out.write(f"    {'NumPy and Python':<18} {ms_step - accounted:6.2f}  (the rest: BLAS calls by "
              f"NumPy, array operations, the code around the kernels)\n")
    floor = sum(parts.values()) / 1e9 / peak * 1e3
    out.write(f"    the products a step cannot skip (step_flops) take {floor:.2f} at the peak: "
              f"{floor / ms_step:.0%} of the step\n")
    return out.getvalue()


def profile_seqtool(seq: SeqtoolTrainer, data: Data, start: int, steps: int, top: int,
                    cell: str, E: int, H: int, peak: float, threads: int) -> str:
    n = len(data.batches)
    # the same batches without the profiler first, right before: the total that the
    # kernels' times are parts of (the machine's speed drifts between runs)
    ms_step = run_steps(seq.step, start, steps, n) * 1e3 / steps
    prof = cProfile.Profile()
    counter = [0.0]
    with counting_products(counter):
        prof.enable()
        t0 = time.perf_counter()
        run_steps(seq.step, start, steps, n)
        wall = time.perf_counter() - t0
        prof.disable()
    raw = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
    total = sum(v[2] for v in raw.values())
    out = io.StringIO()
    out.write(f"  {steps} steps, {wall * 1e3 / steps:.3f} ms/step under the profiler\n"
              f"  stages (cumulative share of the profiled time):")
    for label, suffix, name in (SEQ2SEQ_STAGES if data.task == "seq2seq" else STAGES):
        ct = sum(v[3] for (f, _, fn), v in raw.items() if fn == name and f.endswith(suffix))
        out.write(f" {label} {ct / total:.0%};")
    if seq.training.draws(seq.spec):  # train() seeds a generator for the step: Cython,
        # invisible to cProfile (its time is the caller's own time)
        t_rng = min(timeit.repeat(lambda: np.random.default_rng([SEED, 3, 0, 7]), number=1000,
                                  repeat=3)) / 1000
        out.write(f" (np.random.default_rng, not seen by cProfile: {t_rng * 1e6:.1f} µs/step)")
    out.write("\n")
    V = data.dataset.input_size
    O = getattr(data.dataset, "output_size", V)
    parts: dict[str, float] = {}
    for j in range(start, start + steps):
        for key, value in step_flop_parts(data.task, cell, data.batches[j % n], E, H, V,
                                          O).items():
            parts[key] = parts.get(key, 0.0) + value / steps
    if threads == 1:
        out.write(step_breakdown(raw, steps, ms_step, parts, counter[0], peak))
    else:  # a split batch's kernels run on the crew's threads, which cProfile does not see
        out.write("  (where a step goes: with --threads 1 only)\n")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(top)
    lines = buf.getvalue().splitlines()
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    for line in lines[head:]:
        if line.strip():
            out.write("  " + line + "\n")
    return out.getvalue()


# ---------------------------------------------------------------------------------------


def main() -> None:
    first = __doc__.splitlines()[0]
    parser = argparse.ArgumentParser(description=first)
    parser.add_argument("--sizes", "--hidden", dest="sizes", default="32,128,512",
                        help="hidden sizes (default 32,128,512)")
    parser.add_argument("--cells", default="rnn,gru,lstm")
    parser.add_argument("--tasks", default="classify,lm", help="classify, lm, seq2seq")
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--budget", type=float, default=1.0,
                        help="seconds per implementation and row (at least 5 blocks)")
    parser.add_argument("--block-ms", type=float, default=100.0,
                        help="length of a block of back-to-back steps on the slower side")
    parser.add_argument("--torch-padding", default="auto", choices=("auto", "full", "packed"),
                        help="torch's handling of padded steps (auto: the faster)")
    parser.add_argument("--profile", type=int, default=0, metavar="TOP",
                        help="cProfile seqtool's side of each row; print the top TOP entries")
    parser.add_argument("--profile-steps", type=int, default=None)
    parser.add_argument("--threads", default="1",
                        help="N: seqtool splits each batch across N threads "
                        "(seqtool.core.parallel) and torch runs N threads; default: each "
                        "side's own default (seqtool: every core, as train-rnn; torch: "
                        "torch.get_num_threads() as it starts). Default 1: one each")
    args = parser.parse_args()
    from seqtool.core import parallel

    seqtool_threads = (parallel.available_cores() if args.threads == "default"
                       else int(args.threads))
    threads_context = contextlib.ExitStack()  # held to the end: every step splits so
    threads_context.enter_context(parallel.threads(seqtool_threads))
    sizes = [int(v) for v in args.sizes.split(",") if v.strip()]
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for task in tasks:
        if task not in DATA:
            parser.error(f"unknown task {task!r}; choose from {', '.join(DATA)}")

    import numba

    from seqtool.core.models import ModelSpec, init_params

    print(f"numpy {np.__version__}, numba {numba.__version__} "
          f"(NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}), torch {torch.__version__} "
          f"(threads {torch.get_num_threads()}, interop "
          f"{torch.get_num_interop_threads()}), python {sys.version.split()[0]}; "
          f"seqtool threads {seqtool_threads} (--threads {args.threads})")
    print(cpu_model())
    for line in blas_report():
        print(line)
    print(f"batch {args.batch_size}, E={args.embedding_dim}, Adam lr {args.lr:g}, float32; "
          f"blocks of ~{args.block_ms:g} ms on the slower side, alternating, ~{args.budget:g} s "
          f"per side and row; torch padding: {args.torch_padding}")
    datas = {task: Data(task, args.batch_size) for task in tasks}
    for task in tasks:
        print(datas[task].describe())
    peak = peak_gflops(np.float32)
    print(f"NumPy matmul (2048, 2048) @ (2048, 2048) float32, one core (the peak): "
          f"{peak:.1f} GFLOP/s; \"at most\" = {seqtool_threads} × peak ÷ torch's rate over the "
          f"products a step cannot skip (step_flops)")
    print()

    rows, profiles = [], []
    for task in tasks:
        data = datas[task]
        for cell in cells:
            for H in sizes:
                if task == "seq2seq":
                    V = data.dataset.input_size
                    spec = ModelSpec("seq2seq", cell, V, V, hidden=H,
                                     embedding_dim=args.embedding_dim, score="dot",
                                     selector="softmax")
                else:
                    spec = ModelSpec(task=task, cell=cell, input_size=data.dataset.input_size,
                                     output_size=data.dataset.output_size, hidden=H,
                                     embedding_dim=args.embedding_dim, pool="last")
                params = init_params(spec, seed=SEED, dtype=np.float32)
                if task == "seq2seq":
                    tch = TorchSeq2SeqTrainer(cell, params, data, H, args.lr)
                else:
                    tch = TorchTrainer(task, cell, params, data, H, args.lr)
                if args.torch_padding == "auto":
                    pool, probes = choose_pool(tch, data, min(0.3, args.budget / 3))
                else:
                    pool, probes = args.torch_padding, {}
                tch.pool = pool
                seq = SeqtoolTrainer(spec, params, data, args.lr)  # trains params in place
                t0 = time.perf_counter()
                seq_grads = seq.gradients(0)
                first_seq = time.perf_counter() - t0
                grad_err, grad_name = max_rel_diff(seq_grads, tch.gradients(0))
                for j in range(CHECK_STEPS):
                    seq.step(j)
                for j in range(CHECK_STEPS):
                    tch.step(j)
                err, err_name = max_rel_diff(seq.params, tch.state())
                flag = "" if grad_err <= GRAD_TOLERANCE else f"  <-- above {GRAD_TOLERANCE:g}"
                if not err <= PARAM_TOLERANCE:
                    flag += f"  <-- parameters above {PARAM_TOLERANCE:g}"
                probe_text = ", ".join(f"{p} {v * 1e9:.0f} ns/token" for p, v in probes.items())
                log(f"{task} {cell} H={H}: first seqtool gradients {first_seq * 1e3:.0f} ms; "
                    f"gradients of batch 0 max rel diff {grad_err:.1e} ({grad_name}), "
                    f"parameters after {CHECK_STEPS} Adam steps {err:.1e} ({err_name}){flag}"
                    + (f"; torch probe: {probe_text}" if probes else ""))
                r = bench_row(seq, tch, data, args.budget, args.block_ms / 1e3)
                log(f"    seqtool {r['tps_seq']:,.0f} tok/s ({r['ms_seq']:.3f} ms/step), torch "
                    f"{r['tps_torch']:,.0f} tok/s ({r['ms_torch']:.3f} ms/step); "
                    f"{r['blocks']} blocks of {r['k']} steps")
                bound = (seqtool_threads * peak * 1e9
                         / (flops_per_token(data, cell, args.embedding_dim, H) * r["tps_torch"]))
                rows.append(dict(task=task, cell=cell, H=H, err=err, err_name=err_name,
                                 grad_err=grad_err, pool=pool, bound=bound, **r))
                if args.profile:
                    steps = args.profile_steps or max(
                        MIN_STEPS, min(500, round(args.budget / (r["ms_seq"] / 1e3))))
                    text = profile_seqtool(seq, data, r["next"], steps, args.profile, cell,
                                           args.embedding_dim, H, peak, seqtool_threads)
                    profiles.append((f"{task} {cell} H={H}", text))

    header = (f"{'task':<8} {'cell':<4} {'H':>4} {'seqtool tok/s':>13} {'torch tok/s':>11} "
              f"{'seq/torch':>9} {'goal':>5} {'':<7} {'at most':>7} {'seq ms/step':>11} "
              f"{'torch ms/step':>13} "
              f"{'torch pad':>10} {'grad rel diff':>13} {'param rel diff':>14} {'steps':>6}")
    print(header)
    print("-" * len(header))
    all_met = True
    for r in rows:
        ratio = r["tps_seq"] / r["tps_torch"]
        goal = ratio_goal(r["task"], r["H"], r["cell"], THREADS)
        met = ratio >= goal
        all_met &= met
        print(f"{r['task']:<8} {r['cell']:<4} {r['H']:>4} {r['tps_seq']:>13,.0f} "
              f"{r['tps_torch']:>11,.0f} {ratio:>8.2f}x {goal:>4.1f}x "
              f"{'met' if met else 'NOT MET':<7} {r['bound']:>6.2f}x {r['ms_seq']:>11.3f} "
              f"{r['ms_torch']:>13.3f} "
              f"{r['pool']:>10} {r['grad_err']:>13.1e} {r['err']:>14.1e} "
              f"{r['blocks'] * r['k']:>6}")
    bad = [r for r in rows if not (r["grad_err"] <= GRAD_TOLERANCE
                                   and r["err"] <= PARAM_TOLERANCE)]
    if bad:
        print(f"WARNING: {len(bad)} rows where seqtool and torch disagree (gradients by more "
              f"than {GRAD_TOLERANCE:g}, or parameters after {CHECK_STEPS} Adam steps by more "
              f"than {PARAM_TOLERANCE:g}): " + ", ".join(
                  f"{r['task']} {r['cell']} H={r['H']}" for r in bad))
    print(f"All goals met: {'yes' if all_met else 'no'}")
    for name, text in profiles:
        print()
        print(f"Profile of seqtool's steps, {name}:")
        print(text, end="")


if __name__ == "__main__":
    main()
