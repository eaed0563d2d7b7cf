"""Using a trained run: what `seqtool predict`, `sample` and `evaluate` compute, as plain
data, for the CLI and for recipes alike (same layer as :mod:`seqtool.training_run`)."""

from __future__ import annotations

from typing import Any

from seqtool.config import EvaluateConfig, PredictConfig, SampleConfig
from seqtool.core.errors import InputError
from seqtool.training_run import Model, dataset_for_model, load_model

BEGIN, END = "^", "$"  # the markers of built-in language-model data (dyck)


def load_run(run: str) -> Model:
    return load_model(run, "model", "run")


def predict_texts(config: PredictConfig, texts: list[str]) -> list[dict[str, Any]]:
    """One row per text: the label and every label's probability (classify), or each
    token's tag and its probability (tag)."""
    from seqtool.core import inference
    from seqtool.core.data import encode_texts

    if not texts:
        raise InputError("text", "is missing: give --text or lines on stdin")
    model = load_run(config.run)
    spec = model.spec
    if spec.task not in ("classify", "tag"):
        raise InputError("run", f"holds a {spec.task} model; predict labels texts with a "
                         "classify or tag model (sample draws from an lm, evaluate scores any)")
    vocab, labels = model.vocab, model.labels
    ids = encode_texts(texts, vocab, model.tokenizer, model.meta.get("max_len"))
    if spec.task == "classify":
        return [{"text": t, "label": labels[int(p.argmax())],
                 "probabilities": {name: float(v) for name, v in zip(labels, p)}}
                for t, p in zip(texts, inference.classify(spec, model.params, ids))]
    return [{"text": t, "tokens": vocab.decode(seq),
             "tags": [labels[int(k)] for k in p.argmax(axis=1)],
             "confidence": [float(v) for v in p.max(axis=1)]}
            for t, seq, p in zip(texts, ids, inference.tag(spec, model.params, ids))]


def sample_text(config: SampleConfig) -> dict[str, Any]:
    """Tokens drawn from a language model after the prime (or its begin marker)."""
    from seqtool.core import inference
    from seqtool.core.data import tokenize

    model = load_run(config.run)
    if model.spec.task != "lm":
        raise InputError("run", f"holds a {model.spec.task} model; sample needs a language "
                         "model (train-rnn --task lm, or --data dyck)")
    vocab = model.vocab
    tokens = tokenize(config.prime, model.tokenizer) if config.prime else []
    if not tokens:
        if BEGIN not in vocab:
            raise InputError("prime", "is needed: this model has no begin marker to start from")
        tokens = [BEGIN]
    unknown = [t for t in tokens if t not in vocab]
    if unknown:
        raise InputError("prime", f"has '{unknown[0]}', which the model's vocabulary lacks")
    end = int(vocab.encode([END])[0]) if END in vocab else None
    drawn, logps = inference.sample(model.spec, model.params, vocab.encode(tokens),
                                    config.length, config.temperature, config.seed, end)
    words = vocab.decode(drawn)
    joiner = "" if model.tokenizer == "char" else " "
    return {"prime": config.prime, "start": joiner.join(tokens), "tokens": words,
            "text": joiner.join(words), "logprobs": logps, "logprob": float(sum(logps)),
            "temperature": config.temperature, "seed": config.seed}


def evaluate_run(config: EvaluateConfig) -> dict[str, Any]:
    """Loss and metric of a trained model on a file or a fresh draw of a built-in set."""
    from seqtool.core.training import evaluate

    model = load_run(config.run)
    dataset = dataset_for_model(model, config.data, seed=config.seed, samples=config.samples)
    return {"run": config.run, "data": config.data, "task": model.spec.task,
            "sequences": len(dataset), **evaluate(model.spec, model.params, dataset).to_dict()}
