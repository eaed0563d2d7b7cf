"""Models for the export tests (torch and ONNX), and seqtool's own outputs on the export
contract's inputs (:mod:`seqtool.export.check`, which `seqtool export` uses to check a file).

``make_model`` gives a model as a run directory holds it (spec, params, meta) with torch's
default initialisation, no training needed: the exported file must compute the same
function for any weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqtool.core.models import ModelSpec, init_params
from seqtool.export.check import reference_outputs, zero_padding
from seqtool.export.check import sample_inputs as random_inputs

__all__ = ["make_model", "random_inputs", "real_steps", "reference_outputs"]


def make_model(task: str = "classify", cell: str = "lstm", *, dtype: Any = np.float32,
               seed: int = 0, vocab_size: int = 12, classes: int = 3, **spec_fields: Any
               ) -> tuple[ModelSpec, dict[str, np.ndarray], dict[str, Any]]:
    """(spec, params, meta) of a small model; ``spec_fields`` override the spec's."""
    fields: dict[str, Any] = {"hidden": 6, "layers": 1, "embedding_dim": 5}
    if task == "regress":
        fields.update(embedding_dim=None, input_size=3, output_size=2)
    elif task in ("lm", "seq2seq"):
        fields.update(input_size=vocab_size, output_size=vocab_size)
    else:
        fields.update(input_size=vocab_size, output_size=classes)
    fields.update(spec_fields)
    spec = ModelSpec(task=task, cell=cell, **fields)
    params = init_params(spec, seed=seed, dtype=np.dtype(dtype))
    meta: dict[str, Any] = {"spec": spec.to_dict(), "dtype": np.dtype(dtype).name,
                            "tokenizer": None if task == "regress" else "word"}
    if spec.tokens_in:
        specials = ["<pad>", "<unk>"] + (["<s>", "</s>"] if task == "seq2seq" else [])
        meta["vocab"] = specials + [f"w{i}" for i in range(spec.input_size - len(specials))]
    if task in ("classify", "tag"):
        meta["labels"] = [f"label{i}" for i in range(spec.output_size)]
    return spec, params, meta


def real_steps(outputs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per-step outputs (B, T, ...) with the padded steps set to 0, to compare the real ones."""
    return zero_padding(outputs, lengths)
