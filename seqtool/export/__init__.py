"""Exports of a trained model to other runtimes: `seqtool export RUN --to torch|onnx`.

An exporter is one entry of :data:`EXPORTERS`: a format name and an :class:`Exporter`,
which names (as ``"module:function"``, imported on first use: torch and onnx are optional)
what turns a model into the file's bytes, ``to_bytes(spec, params, meta) -> bytes``, and
what runs those bytes in their own runtime, ``run(data, arguments) -> outputs``. ``spec`` is the
:class:`~seqtool.core.models.ModelSpec`, ``params`` the checkpoint's arrays (torch's names),
``meta`` the run's ``model.json`` (vocab, labels, tokenizer, max_len, dtype).

Every exported model follows one contract, whatever the runtime (batch first, right-padded):

==========  ===========================================  ====================================
task        inputs                                       outputs
==========  ===========================================  ====================================
classify    ids (B, T) int64, lengths (B,) int64         logits (B, C); attention (B, T)
                                                         with ``--pool attention``
tag, lm     ids (B, T), lengths (B,)                     logits (B, T, O)
regress     x (B, T, D) float, lengths (B,)              outputs (B, T, O), or (B, O) with
                                                         ``target_at: last``
seq2seq     src (B, S), src_lengths (B,), tgt (B, M),     logits (B, M, V); attention
            tgt_lengths (B,)                             (B, M, S)
==========  ===========================================  ====================================

``ids`` are the model's vocabulary ids (``<pad>`` = 0 past each length, ``<unk>`` = 1), from
:func:`metadata`'s tokenizer; ``lengths`` ≥ 1. ``tgt`` is the decoder's input, ``<s>``
(id 2) then the target prefix (teacher forcing); a greedy decoder feeds back the argmax of
the last step. Values at padded steps are unspecified: read only the real ones. Every
selector exports as it evaluates: Gumbel and REINFORCE attend to the argmax, as seqtool
does outside training.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Exporter:
    """One export format: its file's suffix (``-o`` names the format by it), the
    ``"module:function"`` giving the bytes and the one running them (see the module
    docstring), the package each needs, and how to install them."""

    suffix: str
    build: str
    run: str
    builds_with: str  # the package to_bytes imports
    runs_with: str  # the runtime that runs the file (the check)
    install: str

    def function(self, target: str) -> Callable[..., Any]:
        """``build`` or ``run`` (a ``"module:function"``), imported."""
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)


EXPORTERS: dict[str, Exporter] = {
    "torch": Exporter(".pt", "seqtool.export.torch_module:to_bytes",
                      "seqtool.export.check:run_torchscript", "torch", "torch",
                      "pip install torch"),
    "onnx": Exporter(".onnx", "seqtool.export.onnx_graph:to_bytes",
                     "seqtool.export.check:run_onnx", "onnx", "onnxruntime",
                     "pip install 'seqtool[export]'"),
}

# the word tokenizer's pattern (seqtool.core.data.vocab), applied to the lower-cased text
WORD_PATTERN = r"\w+(?:'\w+)*|[^\w\s]"


def metadata(spec: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """What a user of the exported file needs besides the weights: the spec, the
    vocabulary and label names, how texts become ids, and the input/output names."""
    from seqtool import __version__

    tokenizer = meta.get("tokenizer")
    return {
        "seqtool_version": __version__,
        "spec": spec.to_dict(),
        "vocab": meta.get("vocab"),
        "labels": meta.get("labels"),
        "tokenizer": tokenizer,
        "tokenizer_rule": {
            "word": f"lower-case the text, then every match of {WORD_PATTERN}",
            "char": "every character, spaces included",
            "space": "the whitespace-separated fields as written",
        }.get(tokenizer),
        # the word tokenizer as a regular expression to apply to the lower-cased text (None:
        # char takes every character, space splits on whitespace)
        "tokenizer_pattern": WORD_PATTERN if tokenizer == "word" else None,
        "max_len": meta.get("max_len"),
        "inputs": [{"name": n, "shape": shape, "dtype": dtype}
                   for n, shape, dtype in inputs_of(spec)],
        "outputs": [{"name": n, "shape": shape, "dtype": dtype}
                    for n, shape, dtype in outputs_of(spec)],
    }


def input_names(spec: Any) -> tuple[str, ...]:
    return tuple(name for name, _, _ in inputs_of(spec))


def output_names(spec: Any) -> tuple[str, ...]:
    return tuple(name for name, _, _ in outputs_of(spec))


def inputs_of(spec: Any) -> list[tuple[str, str, str]]:
    """(name, shape, dtype) of each input, as the contract above says."""
    if spec.task == "seq2seq":
        return [("src", "(B, S)", "int64"), ("src_lengths", "(B,)", "int64"),
                ("tgt", "(B, M)", "int64"), ("tgt_lengths", "(B,)", "int64")]
    if spec.tokens_in:
        return [("ids", "(B, T)", "int64"), ("lengths", "(B,)", "int64")]
    return [("x", f"(B, T, {spec.input_size})", "float"), ("lengths", "(B,)", "int64")]


def outputs_of(spec: Any) -> list[tuple[str, str, str]]:
    """(name, shape, dtype) of each output, as the contract above says."""
    O = spec.output_size
    if spec.task == "seq2seq":
        return [("logits", f"(B, M, {O})", "float"), ("attention", "(B, M, S)", "float")]
    first = "outputs" if spec.task == "regress" else "logits"
    shape = f"(B, T, {O})" if spec.per_step else f"(B, {O})"
    attention = [("attention", "(B, T)", "float")] if spec.uses_attention else []
    return [(first, shape, "float")] + attention
