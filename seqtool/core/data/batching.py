"""Padded, time-major mini-batches.

Sequences keep their order and are right-padded to the longest one in the batch, so step
t of every sequence sits in row t and ``mask[t, b]`` says whether it is real. Padded
inputs are 0 (the PAD id, or 0.0); padded class targets are −1 (IGNORE), which no label
uses, so a loss can skip them without the mask; padded regression targets are 0.0.

A seq2seq batch pads sources and targets each to its own longest: ``inputs`` (S, B),
``targets`` (M + 2, B) holding ``[BOS, y_1 .. y_M, EOS]`` per column. ``decoder_io`` turns
the targets into what a teacher-forced decoder reads and predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqtool.core.data.dataset import Dataset
from seqtool.core.data.vocab import BOS_ID, PAD_ID

IGNORE = -1


@dataclass
class Batch:
    """B sequences of a Dataset, T = the longest of them.

    inputs   (T, B) int64 ids, or (T, B, D) float64
    lengths  (B,) int64
    mask     (T, B) bool, True at real steps
    targets  classify (B,) int64; tag, lm (T, B) int64 padded with IGNORE;
             regress (T, B, O) float64 padded with 0 ("all") or (B, O) ("last");
             seq2seq (M + 2, B) int64 ``[BOS, y_1 .. y_M, EOS]`` padded with IGNORE, M + 2
             the longest target of the batch (inputs, lengths and mask are the sources')
    """

    inputs: np.ndarray
    lengths: np.ndarray
    mask: np.ndarray
    targets: np.ndarray

    @property
    def size(self) -> int:
        return len(self.lengths)


def _pad(seqs: list[np.ndarray], T: int, fill, dtype) -> np.ndarray:
    """Stack (T_i, ...) arrays into (T, B, ...), filling steps past T_i with ``fill``."""
    out = np.full((T, len(seqs), *seqs[0].shape[1:]), fill, dtype=dtype)
    for b, seq in enumerate(seqs):
        out[: len(seq), b] = seq
    return out


def make_batch(dataset: Dataset, indices: np.ndarray) -> Batch:
    """The sequences ``indices`` of ``dataset``, in that order, as one padded Batch."""
    indices = [int(i) for i in np.asarray(indices).reshape(-1)]
    xs = [dataset.inputs[i] for i in indices]
    ys = [dataset.targets[i] for i in indices]
    lengths = np.array([len(x) for x in xs], dtype=np.int64)  # (B,)
    T = int(lengths.max())
    mask = np.arange(T)[:, None] < lengths[None, :]  # (T, B)
    if dataset.task == "regress":
        inputs = _pad(xs, T, 0.0, np.float64)  # (T, B, D)
        if dataset.target_at == "all":
            targets = _pad(ys, T, 0.0, np.float64)  # (T, B, O)
        else:
            targets = np.stack(ys).astype(np.float64)  # (B, O)
    else:
        inputs = _pad(xs, T, PAD_ID, np.int64)  # (T, B)
        if dataset.task == "classify":
            targets = np.array([int(np.asarray(y).reshape(-1)[0]) for y in ys], dtype=np.int64)
        elif dataset.task == "seq2seq":
            targets = _pad(ys, max(len(y) for y in ys), IGNORE, np.int64)  # (M + 2, B)
        else:
            targets = _pad(ys, T, IGNORE, np.int64)  # (T, B)
    return Batch(inputs, lengths, mask, targets)


@dataclass
class DecoderIO:
    """A seq2seq batch's targets as a teacher-forced decoder meets them, N = M + 1 steps.

    inputs   (N, B) int64  what step n reads: BOS, y_1 .. y_M; PAD_ID past the end (a
                           shorter column's EOS is not fed in)
    targets  (N, B) int64  what step n predicts: y_1 .. y_M, EOS; IGNORE past the end
    lengths  (B,) int64    the real steps of each column, M_b + 1 (the target length − 1)
    """

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(N, B) bool, True at real decoder steps."""
        return self.targets != IGNORE


def decoder_io(batch: Batch) -> DecoderIO:
    """The decoder's inputs, targets and lengths from a seq2seq Batch.

    Step n is real when it has something to predict (``targets[n + 1]`` is not IGNORE);
    there the input is ``targets[n]``, elsewhere PAD_ID, so a shorter column's EOS is
    never an input and ``inputs != PAD_ID`` is the mask. The targets are ``targets[1:]``,
    a view of ``batch.targets``. Vectorised: one comparison, one select, one count.
    """
    full = batch.targets  # (M + 2, B)
    if full.ndim != 2 or len(full) < 2 or not np.all(full[0] == BOS_ID):
        raise ValueError(f"decoder_io takes a seq2seq batch, whose targets (M + 2, B) start "
                         f"with BOS; got targets of shape {full.shape}")
    targets = full[1:]  # (M + 1, B)
    real = targets != IGNORE  # (M + 1, B)
    inputs = np.where(real, full[:-1], PAD_ID)  # (M + 1, B)
    lengths = np.count_nonzero(real, axis=0).astype(np.int64)  # (B,) = target length − 1
    return DecoderIO(inputs, targets, lengths)


def batch_indices(n: int, batch_size: int, seed: int | None = None) -> list[np.ndarray]:
    """0..n−1 cut into consecutive batches of ``batch_size`` (the last may be smaller),
    after a seeded shuffle when ``seed`` is given."""
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    return [order[i: i + batch_size] for i in range(0, n, batch_size)]
