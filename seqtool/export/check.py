"""An exported file checked against seqtool: the same inputs through both, the largest
difference of their outputs.

:func:`sample_inputs` draws inputs by the export contract (:mod:`seqtool.export`): ragged
lengths (one sequence at the full length, one of a single step), random ids past the
special tokens, zeros past each length. :func:`reference_outputs` is seqtool's own forward
pass on them (evaluation mode: no dropout; Gumbel and REINFORCE at their argmax), batch
first, per-step outputs zero at the padded steps. :func:`run_exported` runs the file's
bytes in its runtime (torch.jit or onnxruntime), and :func:`compare` measures the gap.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqtool.export import EXPORTERS, input_names, output_names


def sample_inputs(spec: Any, batch: int = 4, steps: int = 7, seed: int = 1,
                  dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """Inputs by the export contract's names, for ``spec``'s task."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, steps + 1, batch).astype(np.int64)
    lengths[0], lengths[-1] = steps, 1

    def ids(lengths: np.ndarray, T: int, first: int) -> np.ndarray:
        out = rng.integers(first, max(spec.input_size, first + 1),
                           (len(lengths), T)).astype(np.int64)
        out[np.arange(T)[None, :] >= lengths[:, None]] = 0
        return out

    if spec.task == "seq2seq":
        tgt_lengths = rng.integers(1, steps + 2, batch).astype(np.int64)
        tgt = ids(tgt_lengths, int(tgt_lengths.max()), 3)
        tgt[:, 0] = 2  # <s>
        return {"src": ids(lengths, steps, 4), "src_lengths": lengths,
                "tgt": tgt, "tgt_lengths": tgt_lengths}
    if not spec.tokens_in:
        x = rng.standard_normal((batch, steps, spec.input_size)).astype(dtype)
        x[np.arange(steps)[None, :] >= lengths[:, None]] = 0
        return {"x": x, "lengths": lengths}
    return {"ids": ids(lengths, steps, 2), "lengths": lengths}


def reference_outputs(spec: Any, params: dict[str, np.ndarray],
                      inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """seqtool's outputs for ``inputs``, by the contract's names."""
    from seqtool.core import seq2seq
    from seqtool.core.models import forward

    if spec.task == "seq2seq":
        fwd = seq2seq.forward(spec, params, inputs["src"].T.copy(), inputs["src_lengths"],
                              inputs["tgt"].T.copy(), inputs["tgt_lengths"])
        logits = fwd.outputs.transpose(1, 0, 2)
        return {"logits": zero_padding(logits, inputs["tgt_lengths"]),
                "attention": zero_padding(fwd.attended.weights, inputs["tgt_lengths"])}
    lengths = inputs["lengths"]
    data = inputs["ids" if spec.tokens_in else "x"]
    fwd = forward(spec, params, np.ascontiguousarray(np.swapaxes(data, 0, 1)), lengths)
    name = output_names(spec)[0]
    if spec.per_step:
        result = {name: zero_padding(fwd.outputs.transpose(1, 0, 2), lengths)}
    else:
        result = {name: fwd.outputs}
    if spec.pool == "attention":
        result["attention"] = fwd.pooled_at.weights
    return result


def zero_padding(per_step: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per-step values (B, T, ...) with the steps at or past each length set to 0."""
    real = np.arange(per_step.shape[1])[None, :] < lengths[:, None]
    return np.where(real.reshape(real.shape + (1,) * (per_step.ndim - 2)), per_step, 0)


def run_exported(fmt: str, data: bytes, spec: Any,
                 inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The exported file's outputs for ``inputs``, run in its own runtime (the format's
    :attr:`Exporter.run`), by the contract's output names."""
    exporter = EXPORTERS[fmt]
    arguments = {name: np.ascontiguousarray(inputs[name]) for name in input_names(spec)}
    values = exporter.function(exporter.run)(data, arguments)
    return dict(zip(output_names(spec), values))


def run_torchscript(data: bytes, arguments: dict[str, np.ndarray]) -> list[np.ndarray]:
    """A TorchScript archive through ``torch.jit.load``, its arguments in order."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; it still loads
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch")
        module = torch.jit.load(io.BytesIO(data))
    with torch.no_grad():
        out = module(*[torch.from_numpy(a) for a in arguments.values()])
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def run_onnx(data: bytes, arguments: dict[str, np.ndarray]) -> list[np.ndarray]:
    """An ONNX model through onnxruntime on the CPU, its inputs by name."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, arguments)


@dataclass
class Comparison:
    """The largest gap between the exported file and seqtool, per output and overall:
    max |exported − seqtool| / max(1, max |seqtool|) over the real steps."""

    errors: dict[str, float]
    sequences: int

    @property
    def worst(self) -> float:
        return max(self.errors.values())


def compare(fmt: str, data: bytes, spec: Any, params: dict[str, np.ndarray],
            batch: int = 8, steps: int = 9, seed: int = 1) -> Comparison:
    """Run a sample batch through the exported file and through seqtool."""
    inputs = sample_inputs(spec, batch, steps, seed, params["head.weight"].dtype)
    expected = reference_outputs(spec, params, inputs)
    got = run_exported(fmt, data, spec, inputs)
    lengths = inputs["tgt_lengths" if spec.task == "seq2seq" else "lengths"]
    per_step = spec.per_step or spec.task == "seq2seq"  # (B, T, ...): padded steps unread
    errors = {}
    for name, want in expected.items():
        have = np.asarray(got[name], dtype=np.float64)
        if have.shape != want.shape:
            errors[name] = float("inf")
            continue
        if per_step:
            have, want = zero_padding(have, lengths), zero_padding(want, lengths)
        scale = max(1.0, float(np.max(np.abs(want))))
        errors[name] = float(np.max(np.abs(have - want))) / scale
    return Comparison(errors, batch)
