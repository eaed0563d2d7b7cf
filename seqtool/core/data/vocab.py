"""Tokenisers and the vocabulary that maps tokens to integer ids.

Every vocabulary starts with the same two entries, so padding and unknown tokens have the
same ids in every model: ``tokens[0] == PAD`` and ``tokens[1] == UNK``. A seq2seq
vocabulary (one for source and target) also reserves the next two for the decoder's
begin and end markers: ``[PAD, UNK, BOS, EOS, ...]``, ids 0, 1, 2, 3
(``Vocab.build_seq2seq``, ``Vocab.seq2seq``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from seqtool.core.errors import InputError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
BOS, EOS = "<s>", "</s>"
BOS_ID, EOS_ID = 2, 3
SEQ2SEQ_SPECIALS = (PAD, UNK, BOS, EOS)  # the first four tokens of a seq2seq vocabulary
TOKENIZERS = ("word", "char", "space")

# A word is a run of letters/digits, keeping inner apostrophes ("don't"); any other
# visible character (punctuation) is a token of its own.
_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def tokenize(text: str, tokenizer: str) -> list[str]:
    """Split ``text`` into tokens.

    - ``"word"``: lower-cased words, each punctuation mark a separate token;
    - ``"char"``: every character, spaces and newlines included;
    - ``"space"``: whitespace-separated fields as written (the tokens of tag files).
    """
    if tokenizer == "word":
        return _WORD.findall(text.lower())
    if tokenizer == "char":
        return list(text)
    if tokenizer == "space":
        return text.split()
    raise InputError("tokenizer", f"is '{tokenizer}'; expected one of {', '.join(TOKENIZERS)}")


@dataclass
class Vocab:
    """id -> token (``tokens``) and token -> id; unknown tokens encode to ``UNK_ID``."""

    tokens: list[str]
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.tokens[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r}; got {self.tokens[:2]}")
        self._ids = {token: i for i, token in enumerate(self.tokens)}
        if len(self._ids) != len(self.tokens):
            raise ValueError("a vocabulary lists each token once")

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    def encode(self, tokens: list[str]) -> np.ndarray:
        """int64 ids (len(tokens),); tokens not in the vocabulary become UNK_ID."""
        return np.array([self._ids.get(t, UNK_ID) for t in tokens], dtype=np.int64)

    def decode(self, ids) -> list[str]:
        return [self.tokens[int(i)] for i in ids]

    @classmethod
    def build(cls, sequences: Iterable[list[str]], min_count: int = 1) -> "Vocab":
        """PAD, UNK, then every token seen at least ``min_count`` times, most frequent first
        and ties in token order, so the same data always gives the same ids."""
        return cls(_specials_then_counted((PAD, UNK), sequences, min_count))

    @classmethod
    def build_seq2seq(cls, sequences: Iterable[list[str]], min_count: int = 1) -> "Vocab":
        """PAD, UNK, BOS, EOS, then the tokens of ``sequences`` (sources and targets) ordered
        as ``build`` orders them."""
        return cls(_specials_then_counted(SEQ2SEQ_SPECIALS, sequences, min_count))

    @classmethod
    def seq2seq(cls, tokens: Iterable[str]) -> "Vocab":
        """PAD, UNK, BOS, EOS, then ``tokens`` in the order given (a closed alphabet)."""
        return cls([*SEQ2SEQ_SPECIALS, *tokens])

    @property
    def is_seq2seq(self) -> bool:
        """Whether ids 2 and 3 are BOS and EOS, as a seq2seq model needs."""
        return self.tokens[2:4] == [BOS, EOS]

    def to_list(self) -> list[str]:
        return list(self.tokens)

    @classmethod
    def from_list(cls, tokens: Iterable[str]) -> "Vocab":
        return cls(list(tokens))


def _specials_then_counted(specials: tuple[str, ...], sequences: Iterable[list[str]],
                           min_count: int) -> list[str]:
    """``specials``, then every other token seen at least ``min_count`` times, most frequent
    first and ties in token order."""
    counts = Counter(t for seq in sequences for t in seq)
    kept = [t for t, c in counts.items() if c >= min_count and t not in specials]
    kept.sort(key=lambda t: (-counts[t], t))
    return [*specials, *kept]


def with_bos_eos(ids: np.ndarray) -> np.ndarray:
    """int64 ``[BOS_ID, *ids, EOS_ID]`` (len(ids) + 2,): a seq2seq target."""
    out = np.empty(len(ids) + 2, dtype=np.int64)
    out[0], out[1:-1], out[-1] = BOS_ID, ids, EOS_ID
    return out
