"""Data for training sequence models: built-in sets, readers of user files, batching.

    from seqtool.core.data import prepare, make_batch
    train, val = prepare("sentiment")             # or prepare("reviews.csv", "classify")
    batch = make_batch(train, np.arange(32))      # inputs (T, 32), mask (T, 32), targets (32,)

Tasks: classify (sequence -> one label), tag (one tag per step, causal), lm (the next
token at every step), regress (numbers per step or one per sequence). Built-in sets are
in ``builtin``, file formats in ``readers``.
"""

from seqtool.core.data.batching import IGNORE, Batch, batch_indices, make_batch
from seqtool.core.data.builtin import BUILTIN_TASKS, builtin
from seqtool.core.data.dataset import TASKS, Dataset, unigram_entropy
from seqtool.core.data.prepare import encode_texts, prepare, read_data
from seqtool.core.data.vocab import PAD, PAD_ID, TOKENIZERS, UNK, UNK_ID, Vocab, tokenize

__all__ = [
    "BUILTIN_TASKS", "IGNORE", "PAD", "PAD_ID", "TASKS", "TOKENIZERS", "UNK", "UNK_ID",
    "Batch", "Dataset", "Vocab", "batch_indices", "builtin", "encode_texts", "make_batch",
    "prepare", "read_data", "tokenize", "unigram_entropy",
]
