"""From a data source to encoded train and validation sets.

For user files the vocabulary and the label (or tag) set come from the training split
only, so validation measures what a trained model meets on new data: validation tokens
never seen in training become UNK, and a validation label never seen in training is an
error (the model could not predict it). A seq2seq vocabulary is one for both sides, built
from the training split's sources and targets, ``[PAD, UNK, BOS, EOS, ...]``.
"""

from __future__ import annotations

import os

import numpy as np

from seqtool.core.data.builtin import BUILTIN_TASKS, builtin
from seqtool.core.data.dataset import TASKS, Dataset
from seqtool.core.data.readers import Records, infer_task, read_records
from seqtool.core.data.vocab import (
    SEQ2SEQ_SPECIALS, TOKENIZERS, Vocab, tokenize, with_bos_eos,
)
from seqtool.core.errors import InputError

MAX_LEN_LIMIT = 1_000_000
NAMED_AT_MOST = 5  # unseen labels listed in one message


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise InputError("task", f"is '{task}'; expected one of {', '.join(TASKS)}")


def _check_file_settings(tokenizer: str, max_len: int | None) -> None:
    if tokenizer not in TOKENIZERS:
        raise InputError("tokenizer", f"is '{tokenizer}'; expected one of "
                                      f"{', '.join(TOKENIZERS)}")
    whole = isinstance(max_len, (int, np.integer)) and not isinstance(max_len, bool)
    if max_len is not None and not (whole and 1 <= max_len <= MAX_LEN_LIMIT):
        raise InputError("max_len", f"is {max_len!r}; expected a whole number from 1 to "
                                    f"{MAX_LEN_LIMIT:,}")


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded shuffle of 0..n−1 cut into train and validation indices, each sorted;
    validation gets round(n · val_fraction) of them, at least 1 and at most n − 1."""
    if not 0.0 < val_fraction < 1.0:
        raise InputError("val_fraction", f"is {val_fraction}; expected a number between 0 and 1")
    if n < 2:
        raise InputError("data", f"has {n} sequence; a train/validation split needs at least 2")
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _subset(records: Records, indices) -> Records:
    pick = lambda xs: [xs[i] for i in indices] if xs else []  # noqa: E731
    return Records(records.path, records.task, pick(records.tokens), pick(records.targets),
                   pick(records.lines), pick(records.inputs), records.target_at, records.columns)


def _label_values(records: Records) -> list[tuple[str, int]]:
    """(label or tag, line) for every target of a classify or tag file."""
    if records.task == "classify":
        return list(zip(records.targets, records.lines))
    return [(tag, line) for tags, line in zip(records.targets, records.lines) for tag in tags]


def label_set(records: Records) -> list[str]:
    """The sorted labels (classify) or tags (tag) the records use."""
    return sorted({value for value, _ in _label_values(records)})


def unseen_labels(records: Records, labels: list[str]) -> str | None:
    """"the label 'meh' (line 7)" for the values not in ``labels`` (first line of each), or
    None when there are none."""
    known, first = set(labels), {}
    for value, line in _label_values(records):
        if value not in known and value not in first:
            first[value] = line
    if not first:
        return None
    kind = "label" if records.task == "classify" else "tag"
    named = [f"'{v}' (line {line})" for v, line in list(first.items())[:NAMED_AT_MOST]]
    more = f" and {len(first) - NAMED_AT_MOST} more" if len(first) > NAMED_AT_MOST else ""
    return f"the {kind}{'s' if len(first) > 1 else ''} {', '.join(named)}{more}"


def encode_records(records: Records, vocab: Vocab | None, labels: list[str] | None,
                   tokenizer: str) -> Dataset:
    """Records as a Dataset with the given vocabulary and labels (already checked)."""
    name, task = os.path.basename(records.path), records.task
    if task == "regress":
        D, O = records.columns
        return Dataset(task, name, records.inputs, records.targets, None, None,
                       records.target_at, None, D, O)
    ids = [vocab.encode(tokens) for tokens in records.tokens]
    if task == "seq2seq":
        targets = [with_bos_eos(vocab.encode(tokens)) for tokens in records.targets]
        return Dataset(task, name, ids, targets, vocab, None, "all", tokenizer,
                       len(vocab), len(vocab))
    if task == "lm":
        return Dataset(task, name, [x[:-1] for x in ids], [x[1:] for x in ids], vocab, None,
                       "all", tokenizer, len(vocab), len(vocab))
    index = {label: i for i, label in enumerate(labels)}
    if task == "classify":
        targets = [np.array(index[y], dtype=np.int64) for y in records.targets]
    else:
        targets = [np.array([index[t] for t in tags], dtype=np.int64) for tags in records.targets]
    return Dataset(task, name, ids, targets, vocab, list(labels),
                   "last" if task == "classify" else "all",
                   "space" if task == "tag" else tokenizer, len(vocab), len(labels))


def build_vocab(records: Records) -> Vocab | None:
    """The vocabulary of ``records``: none for regress; for seq2seq one shared by sources and
    targets, with BOS and EOS reserved."""
    if records.task == "regress":
        return None
    if records.task == "seq2seq":
        return Vocab.build_seq2seq([*records.tokens, *records.targets])
    return Vocab.build(records.tokens)


def _check_compatible(train: Records, val: Records) -> None:
    """A separate validation file must have the training file's columns."""
    if train.task != "regress":
        return
    for what, a, b in (("x", train.columns[0], val.columns[0]),
                       ("y", train.columns[1], val.columns[1])):
        if a != b:
            raise InputError("val", f"{val.path} has {b} {what} columns but the training "
                                    f"data has {a}")
    if train.target_at != val.target_at:
        where = {"all": "on every row", "last": "only on each sequence's last row"}
        raise InputError("val", f"{val.path} gives y values {where[val.target_at]} but the "
                                f"training data {where[train.target_at]}")


def _prepare_builtin(source, task, val, val_fraction, max_len, samples, seq_len, delay, seed):
    if task is not None and task != BUILTIN_TASKS[source]:
        raise InputError("task", f"is '{task}' but {source} is a {BUILTIN_TASKS[source]} "
                                 "data set")
    if val is not None:
        raise InputError("val", "applies only to data files; a built-in set is split by "
                                "val_fraction")
    if max_len is not None:
        raise InputError("max_len", "applies only to data files; built-in sets take seq_len")
    data = builtin(source, samples=samples, seq_len=seq_len, delay=delay, seed=seed)
    train, held_out = split_indices(len(data), val_fraction, seed)
    return data.subset(train), data.subset(held_out)


def prepare(source: str, task: str | None = None, *, val: str | None = None,
            val_fraction: float = 0.1, tokenizer: str = "word", max_len: int | None = None,
            samples: int | None = None, seq_len: int | None = None, delay: int | None = None,
            seed: int = 0) -> tuple[Dataset, Dataset]:
    """(train, validation) from a built-in name or a data file (see ``readers``).

    A built-in set is generated (samples, seq_len, delay, seed) and split by
    ``val_fraction``; it has its own tokenizer and ignores ``tokenizer``. A file is read
    for ``task`` (inferred from its columns when None: text,label -> classify, tokens,tags
    -> tag, source,target -> seq2seq, seq,x..,y.. -> regress, any other file -> lm) and
    split by a seeded shuffle, or validated on the separate file ``val``. ``max_len`` cuts
    each sequence (seq2seq: each source and each target) to its first max_len tokens. A
    name of a built-in set wins over a file of that name (write ./sentiment for the file).
    """
    _check_task(task)
    if source in BUILTIN_TASKS:
        return _prepare_builtin(source, task, val, val_fraction, max_len,
                                samples, seq_len, delay, seed)
    for key, value in (("samples", samples), ("seq_len", seq_len), ("delay", delay)):
        if value is not None:
            raise InputError(key, "applies only to built-in data sets, not to a file")
    _check_file_settings(tokenizer, max_len)
    if task is None:
        task = infer_task(source, "data")
        if task is None:
            raise InputError("task", f"is needed: the columns of {source} name no task; "
                                     f"expected one of {', '.join(TASKS)}")
    records = read_records(source, task, "data", tokenizer, max_len)
    if val is None:
        train_idx, val_idx = split_indices(len(records), val_fraction, seed)
        train, held_out = _subset(records, train_idx), _subset(records, val_idx)
    else:
        train, held_out = records, read_records(val, task, "val", tokenizer, max_len)
        _check_compatible(train, held_out)
    vocab = build_vocab(train)
    labels = label_set(train) if task in ("classify", "tag") else None
    if labels is not None and (unseen := unseen_labels(held_out, labels)):
        if val is not None:
            raise InputError("val", f"has {unseen}, which the training data never uses; "
                                    f"{'labels' if task == 'classify' else 'tags'}: "
                                    f"{', '.join(labels)}")
        raise InputError("data", f"{source} has {unseen} only in the validation split "
                                 f"(val_fraction {val_fraction}), so training never sees it; "
                                 "give it more examples or pass a val file")
    return (encode_records(train, vocab, labels, tokenizer),
            encode_records(held_out, vocab, labels, tokenizer))


def read_data(path: str, task: str, *, vocab: Vocab | None = None,
              labels: list[str] | None = None, tokenizer: str = "word",
              max_len: int | None = None) -> Dataset:
    """A data file encoded with a trained model's vocabulary and labels (built from this
    file when None). Unknown tokens become UNK; an unknown label is an InputError. For
    seq2seq ``vocab`` must be a seq2seq vocabulary (``Vocab.is_seq2seq``; else an
    InputError about "vocab"): it encodes both sides."""
    _check_task(task)
    _check_file_settings(tokenizer, max_len)
    if task == "seq2seq" and vocab is not None and not vocab.is_seq2seq:
        raise InputError("vocab", f"starts {', '.join(vocab.tokens[:4])}; a seq2seq "
                                  f"vocabulary starts {', '.join(SEQ2SEQ_SPECIALS)}")
    records = read_records(path, task, "data", tokenizer, max_len)
    if vocab is None:
        vocab = build_vocab(records)
    if task in ("classify", "tag"):
        if labels is None:
            labels = label_set(records)
        elif unseen := unseen_labels(records, labels):
            raise InputError("data", f"{path} has {unseen}, which the model was never "
                                     f"trained on; {'labels' if task == 'classify' else 'tags'}: "
                                     f"{', '.join(labels)}")
    return encode_records(records, vocab, labels, tokenizer)


def encode_texts(texts: list[str], vocab: Vocab, tokenizer: str,
                 max_len: int | None = None) -> list[np.ndarray]:
    """int64 ids (T_i,) of every text, tokenised as in training and cut to ``max_len``
    tokens; a text without tokens gives an empty array (the caller decides what it means).
    With a seq2seq vocabulary these are sources: no BOS or EOS is added."""
    _check_file_settings(tokenizer, max_len)
    return [vocab.encode(tokenize(text, tokenizer)[:max_len]) for text in texts]
