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
from seqtool.core.models import ModelSpec, init_params
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


def _checked_model(arrays: dict[str, np.ndarray], meta: dict[str, Any], directory: str | Path,
                   name: str, key: str) -> Model:
    """The model in a loaded checkpoint (arrays, meta), checked as load_model says."""
    where = f"{directory}: {name}.json"
    try:
        spec = ModelSpec(**meta["spec"])
    except (KeyError, TypeError, InputError) as err:
        raise CheckpointError(key, f"{where} does not describe a seqtool model ({err})") from None
    params = {k: v for k, v in arrays.items() if not k.startswith(OPTIM_PREFIX)}
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
        if spec.task == "lm":
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
