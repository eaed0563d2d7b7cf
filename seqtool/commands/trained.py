"""A trained model read back from its run directory: checked, with what it needs to be used.

``model.npz`` + ``model.json`` (the best model) or ``last.npz`` + ``last.json`` (the latest
checkpoint) of a `seqtool train-rnn` run; predict, sample, evaluate and --resume read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from seqtool.core.errors import InputError
from seqtool.core.models import ModelSpec, init_params, parameter_bound
from seqtool.io.checkpoint import CheckpointError, load_checkpoint

OPTIM_PREFIX = "optim."  # checkpoint arrays that hold the optimiser's state, not the model's


@dataclass
class Model:
    """A trained model and what it needs to be used."""

    spec: ModelSpec
    params: dict[str, np.ndarray]
    meta: dict[str, Any]

    @cached_property
    def vocab(self):  # built once: dataset_for_model reads it per sequence
        from seqtool.core.data import Vocab

        tokens = self.meta.get("vocab")
        return None if tokens is None else Vocab.from_list(tokens)

    @property
    def labels(self) -> list[str] | None:
        return self.meta.get("labels")

    @property
    def tokenizer(self) -> str | None:
        return self.meta.get("tokenizer")


def load_model(directory: str | Path, name: str = "model", key: str = "model") -> Model:
    """A checkpoint, checked against its own description: spec, parameter names, shapes."""
    arrays, meta = load_checkpoint(directory, name, key)
    return _checked_model(arrays, meta, directory, name, key)


# The types of a model.json's fields (a forged or damaged file is refused, naming the field)
SPEC_INTS = ("input_size", "output_size", "hidden", "layers")
SIZE_LIMIT = 10**8  # no size of a model seqtool trains comes near it


def _checked_meta(meta: dict[str, Any], where: str, key: str) -> None:
    """Every field a model needs, of the type and range it must have: CheckpointError naming
    the file and the field otherwise (a forged or damaged .json, whose checksum covers only
    the arrays)."""
    def fail(field: str, what: str) -> CheckpointError:
        return CheckpointError(key, f"{where} has {field} {what}")

    def is_count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= SIZE_LIMIT

    spec = meta.get("spec")
    if not isinstance(spec, dict):
        raise CheckpointError(key, f"{where} does not describe a seqtool model (no \"spec\" "
                              "object)")
    for field in SPEC_INTS:
        if field in spec and not is_count(spec[field]):
            raise fail(f"spec.{field}", f"{spec[field]!r}; expected a whole number from 1 to "
                       f"{SIZE_LIMIT:,}")
    if spec.get("embedding_dim") is not None and not is_count(spec["embedding_dim"]):
        raise fail("spec.embedding_dim", f"{spec['embedding_dim']!r}; expected a whole number "
                   f"from 1 to {SIZE_LIMIT:,} or null")
    dropout = spec.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise fail("spec.dropout", f"{dropout!r}; expected a number in [0, 1)")
    for field in ("task", "cell", "pool", "target_at", "nonlinearity", "score", "selector"):
        if field in spec and not isinstance(spec[field], str):
            raise fail(f"spec.{field}", f"{spec[field]!r}; expected a name")
    if not isinstance(spec.get("bidirectional", False), bool):
        raise fail("spec.bidirectional", f"{spec['bidirectional']!r}; expected true or false")
    if spec.get("task") == "seq2seq" and (not isinstance(meta.get("vocab"), list)
                                         or meta["vocab"][2:4] != ["<s>", "</s>"]):
        raise fail("vocab", "that does not have \"<s>\", \"</s>\" as entries 2 and 3 (a "
                   "seq2seq model frames its outputs with them)")
    if meta.get("dtype", "float32") not in ("float32", "float64"):
        raise fail("dtype", f"{meta.get('dtype')!r}; expected \"float32\" or \"float64\"")
    for field in ("vocab", "labels"):
        value = meta.get(field)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(t, str) for t in value)):
            raise fail(field, "that is not a list of strings")
        if value is not None and len(set(value)) != len(value):
            raise fail(field, "with an entry twice")
    vocab = meta.get("vocab")
    if vocab is not None and vocab[:2] != ["<pad>", "<unk>"]:
        raise fail("vocab", "that does not start with \"<pad>\", \"<unk>\"")
    if spec.get("embedding_dim") is not None and (vocab is None
                                                  or len(vocab) != spec.get("input_size")):
        raise fail("vocab", f"of {'no' if vocab is None else len(vocab)} tokens; the model's "
                   f"embedding has {spec.get('input_size')!r} rows")
    labels = meta.get("labels")
    if spec.get("task") in ("classify", "tag") and (labels is None
                                                    or len(labels) != spec.get("output_size")):
        raise fail("labels", f"of {'no' if labels is None else len(labels)} names; the "
                   f"model's head has {spec.get('output_size')!r} outputs")
    if meta.get("tokenizer") not in (None, "word", "char", "space"):
        raise fail("tokenizer", f"{meta.get('tokenizer')!r}; expected word, char or space")
    if meta.get("max_len") is not None and not is_count(meta["max_len"]):
        raise fail("max_len", f"{meta['max_len']!r}; expected a whole number ≥ 1 or null")
    builtin = meta.get("builtin")
    if builtin is not None:
        if not isinstance(builtin, dict):
            raise fail("builtin", "that is not an object")
        for field in ("seq_len", "delay", "samples"):
            if builtin.get(field) is not None and not is_count(builtin[field]):
                raise fail(f"builtin.{field}", f"{builtin[field]!r}; expected a whole number "
                           "≥ 1 or null")


def _checked_model(arrays: dict[str, np.ndarray], meta: dict[str, Any], directory: str | Path,
                   name: str, key: str) -> Model:
    """The model in a loaded checkpoint (arrays, meta), checked as load_model says."""
    where = f"{directory}: {name}.json"
    _checked_meta(meta, where, key)
    try:
        spec = ModelSpec(**meta["spec"])
    except (KeyError, TypeError, ValueError) as err:  # InputError is a ValueError
        raise CheckpointError(key, f"{where} does not describe a seqtool model ({err})") from None
    params = {k: v for k, v in arrays.items() if not k.startswith(OPTIM_PREFIX)}
    stored = sum(int(v.size) for v in params.values())
    if parameter_bound(spec) > 4 * stored + 10_000:  # before building the expected shapes
        raise CheckpointError(key, f"{where} describes a model far larger than {name}.npz "
                              f"holds ({stored:,} numbers): a damaged or forged file")
    bad = next((k for k, v in params.items()
                if v.dtype.kind == "f" and not np.all(np.isfinite(v))), None)
    if bad is not None:
        raise CheckpointError(key, f"{directory}: {name}.npz holds NaN or infinity in {bad}")
    expected = init_params(spec, dtype=np.dtype(meta.get("dtype", "float32")))
    if set(params) != set(expected):
        missing = sorted(set(expected) - set(params)) or sorted(set(params) - set(expected))
        raise CheckpointError(key, f"{where} and {name}.npz disagree: parameter "
                              f"{missing[0]} does not fit a {spec.cell} model")
    for k, v in expected.items():
        if params[k].shape != v.shape:
            raise CheckpointError(key, f"{directory}: {name}.npz has {k} of shape "
                                  f"{params[k].shape}; the model needs {v.shape}")
    return Model(spec, params, meta)


def check_inference_fits(model: Model, lengths: Any, flag: str) -> None:
    """Refuse data whose forward passes (INFERENCE_BATCH sequences of up to the longest
    one's tokens) cannot fit in this machine's memory, naming ``flag``."""
    from seqtool.core.models import INFERENCE_BATCH, memory_bound
    from seqtool.core.resources import check_memory

    lengths = np.asarray(lengths)
    if lengths.size == 0:
        return
    longest = int(lengths.max())
    params, activations = memory_bound(model.spec, min(INFERENCE_BATCH, lengths.size), longest,
                                       model.params["head.weight"].dtype, training=False)
    check_memory(flag, params + activations, f"a forward pass over sequences of up to "
                 f"{longest:,} tokens (hidden {model.spec.hidden:,} × {model.spec.layers} layers)")


def dataset_for_model(model: Model, source: str, *, seed: int = 0,
                      samples: int | None = None) -> Any:
    """``source`` (a file in the training format, or a built-in set's name) encoded with
    the model's own vocabulary and label names."""
    from seqtool.core.data import BUILTIN_TASKS, builtin, read_data

    spec = model.spec
    if source not in BUILTIN_TASKS:
        return read_data(source, spec.task, vocab=model.vocab, labels=model.labels,
                         tokenizer=model.tokenizer or "word", max_len=model.meta.get("max_len"))
    if BUILTIN_TASKS[source] != spec.task:
        raise InputError("data", f"is the built-in {source} ({BUILTIN_TASKS[source]}); the "
                         f"model does {spec.task}")
    settings = model.meta.get("builtin") or {}
    data = builtin(source, samples=samples, seq_len=settings.get("seq_len"),
                   delay=settings.get("delay"), seed=seed)
    if data.vocab is not None and model.vocab is not None and data.vocab.tokens != model.vocab.tokens:
        data.inputs = [model.vocab.encode(data.vocab.decode(x)) for x in data.inputs]
        if spec.task in ("lm", "seq2seq"):
            data.targets = [model.vocab.encode(data.vocab.decode(y)) for y in data.targets]
        data.vocab = model.vocab
    if data.labels is not None and model.labels is not None and data.labels != model.labels:
        unseen = [name for name in data.labels if name not in model.labels]
        if unseen:
            raise InputError("data", f"has the label '{unseen[0]}', which the model never saw")
        index = np.array([model.labels.index(name) for name in data.labels])
        data.targets = [np.where(np.asarray(y) >= 0, index[np.maximum(y, 0)], y)
                        for y in data.targets]
        data.labels = model.labels
    return data
