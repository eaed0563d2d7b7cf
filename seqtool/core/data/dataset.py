"""The encoded data set every task shares, and the unigram baseline of a language model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqtool.core.data.vocab import Vocab

TASKS = ("classify", "tag", "lm", "regress", "seq2seq")


@dataclass
class Dataset:
    """Encoded sequences and their targets.

    ``inputs[i]`` is int64 ids (T_i,) for classify/tag/lm/seq2seq, float64 (T_i, D) for
    regress. ``targets[i]`` is, by task:
      classify  int64 () the label id (an index into ``labels``);
      tag       int64 (T_i,) tag ids, one per input step;
      lm        int64 (T_i,) the id of the next token at every step;
      regress   float64 (T_i, O) if ``target_at == "all"``, else (O,) for the last step;
      seq2seq   int64 (M_i + 2,) ``[BOS_ID, y_1 .. y_M, EOS_ID]``, the target sequence
                between the decoder's markers; its own length M_i, unrelated to T_i.

    seq2seq: ``inputs[i]`` are the source ids (T_i = S_i) without BOS or EOS; source and
    target share ``vocab``, which starts ``[PAD, UNK, BOS, EOS]`` (``Vocab.is_seq2seq``);
    ``labels`` is None, ``target_at`` "all", ``tokenizer`` the one both sides were split
    with ("char", "word" or "space") and ``input_size == output_size == len(vocab)``.
    """

    task: str
    name: str
    inputs: list[np.ndarray]
    targets: list[np.ndarray]
    vocab: Vocab | None
    labels: list[str] | None
    target_at: str
    tokenizer: str | None
    input_size: int
    output_size: int

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {TASKS}")
        if len(self.inputs) != len(self.targets):
            raise ValueError(f"{len(self.inputs)} inputs but {len(self.targets)} targets")

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64: the number of steps T_i of every sequence (seq2seq: of every source)."""
        return np.array([len(x) for x in self.inputs], dtype=np.int64)

    def subset(self, indices) -> "Dataset":
        """The same data set (vocabulary, labels, sizes) restricted to ``indices``."""
        indices = [int(i) for i in np.asarray(indices).reshape(-1)]
        return Dataset(
            task=self.task, name=self.name,
            inputs=[self.inputs[i] for i in indices], targets=[self.targets[i] for i in indices],
            vocab=self.vocab, labels=self.labels, target_at=self.target_at,
            tokenizer=self.tokenizer, input_size=self.input_size, output_size=self.output_size,
        )


def unigram_entropy(dataset: Dataset) -> float:
    """H = −Σ_v p(v) log p(v) in nats, p the frequency of token v among all target ids.

    The cross-entropy per predicted token of the best model that ignores the context: a
    language model that learns anything from the past beats it. For seq2seq the predicted
    tokens are y_1 .. y_M and EOS: the leading BOS, which is only ever fed in, is left out.
    """
    skip = 1 if dataset.task == "seq2seq" else 0
    ids = np.concatenate([np.asarray(y, dtype=np.int64).reshape(-1)[skip:]
                          for y in dataset.targets])
    p = np.bincount(ids[ids >= 0]) / np.count_nonzero(ids >= 0)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
