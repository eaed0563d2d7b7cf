"""Data for training sequence models: built-in sets, readers of user files, batching.

    from seqtool.core.data import prepare, make_batch
    train, val = prepare("sentiment")             # or prepare("reviews.csv", "classify")
    batch = make_batch(train, np.arange(32))      # inputs (T, 32), mask (T, 32), targets (32,)

Tasks: classify (sequence -> one label), tag (one tag per step, causal), lm (the next
token at every step), regress (numbers per step or one per sequence), seq2seq (a source
sequence -> a target sequence of its own length, for an encoder-decoder):

    train, val = prepare("reverse")               # or prepare("pairs.tsv", "seq2seq")
    batch = make_batch(train, np.arange(32))      # inputs (S, 32), targets (M + 2, 32)
    dec = decoder_io(batch)                       # inputs, targets (M + 1, 32), lengths (32,)

Built-in sets are in ``builtin``, file formats in ``readers``.
"""

from seqtool.core.data.batching import (
    IGNORE, Batch, DecoderIO, batch_indices, decoder_io, make_batch,
)
from seqtool.core.data.builtin import BUILTIN_TASKS, builtin
from seqtool.core.data.dataset import TASKS, Dataset, unigram_entropy
from seqtool.core.data.prepare import encode_texts, prepare, read_data
from seqtool.core.data.vocab import (
    BOS, BOS_ID, EOS, EOS_ID, PAD, PAD_ID, TOKENIZERS, UNK, UNK_ID, Vocab, tokenize,
)

__all__ = [
    "BOS", "BOS_ID", "BUILTIN_TASKS", "EOS", "EOS_ID", "IGNORE", "PAD", "PAD_ID", "TASKS",
    "TOKENIZERS", "UNK", "UNK_ID", "Batch", "Dataset", "DecoderIO", "Vocab", "batch_indices",
    "builtin", "decoder_io", "encode_texts", "make_batch", "prepare", "read_data", "tokenize",
    "unigram_entropy",
]
