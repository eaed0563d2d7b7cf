"""`seqtool predict`, `sample` and `evaluate`: using a trained run directory.

Each returns a Report (see :mod:`seqtool.core.report`), the same for the CLI and recipes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqtool.commands.events import Events
from seqtool.commands.trained import Model, check_inference_fits, dataset_for_model, load_model
from seqtool.config import EvaluateConfig, PredictConfig, SampleConfig
from seqtool.core import parallel
from seqtool.core.data.vocab import UNK_ID
from seqtool.core.errors import InputError
from seqtool.core.report import Report

BEGIN, END = "^", "$"  # the markers of built-in language-model data (dyck)


def load_run(run: str) -> Model:
    return load_model(run, "model", "run")


# ---------------------------------------------------------------------------------------
# predict


CSV_KEYS = ("text", "label", "output", "tokens", "tags", "log_prob", "finished")


@dataclass
class PredictReport(Report):
    """One prediction per text: the label and every label's probability (classify), or each
    token's tag and its confidence (tag)."""

    task: str
    predictions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.predictions}

    def to_json(self) -> list[dict[str, Any]]:
        return self.predictions

    def records(self) -> list[dict[str, Any]]:
        return self.predictions

    def rows(self) -> list[dict[str, Any]]:
        """The text and its label with every label's probability (p_<label>), or its tokens,
        tags and confidences as space-separated text; and the share of unknown tokens."""
        out = []
        for r in self.predictions:
            row = {k: " ".join(r[k]) if isinstance(r[k], list) else r[k]
                   for k in CSV_KEYS if k in r}
            if "probabilities" in r:
                row.update({f"p_{name}": p for name, p in r["probabilities"].items()})
            for key in ("confidence", "attention"):
                if key in r:
                    row[key] = " ".join(repr(c) for c in r[key])
            if "alignment" in r:  # rows of the matrix separated by ";" (as a matrix flag)
                row["alignment"] = ";".join(",".join(repr(v) for v in line)
                                            for line in r["alignment"])
            row["unknown"] = r["unknown"]
            out.append(row)
        return out


def predict(config: PredictConfig, events: Events, run_dir: Path | None = None) -> PredictReport:
    """Label ``config.text`` with the classify or tag model in ``config.run``."""
    from seqtool.core import inference
    from seqtool.core.data import encode_texts

    texts = list(config.text)
    if not texts:
        raise InputError("text", "is missing: give --text or lines on stdin")
    model = load_run(config.run)
    spec = model.spec
    if spec.task not in ("classify", "tag", "seq2seq"):
        raise InputError("run", f"holds a {spec.task} model; predict labels texts with a "
                         "classify, tag or seq2seq model (sample draws from an lm, evaluate "
                         "scores any)")
    if config.beam > 1 and spec.task != "seq2seq":
        raise InputError("beam", f"applies to a seq2seq model; this one does {spec.task}")
    vocab, labels = model.vocab, model.labels
    ids = encode_texts(texts, vocab, model.tokenizer, model.meta.get("max_len"))
    check_inference_fits(model, [len(seq) for seq in ids], "text")
    threads = parallel.resolve_threads(config.threads)  # refused before any compile
    events.warm_up(spec.cell, model.params["head.weight"].dtype, spec=spec, training=False)
    unknown = [float(np.mean(seq == UNK_ID)) if len(seq) else 0.0 for seq in ids]
    blind = [i for i, share in enumerate(unknown) if share == 1.0]
    if blind:
        events.say(f"warning: every token of {_texts(blind, texts)} is unknown to the model "
                   "(not in its training vocabulary): its prediction rests on no evidence")
    with parallel.threads(threads):  # the rows of a batch across cores
        if spec.task == "seq2seq":
            rows = _translations(model, texts, ids, config.beam)
        elif spec.task == "classify":
            probs, attention = inference.classify_attending(spec, model.params, ids)
            rows = [{"text": t, "label": labels[int(p.argmax())],
                     "probabilities": {name: float(v) for name, v in zip(labels, p)}}
                    for t, p in zip(texts, probs)]
            for row, seq, w in zip(rows, ids, attention or []):
                # an attention-pooling model: the weight of each token in the pooled state
                row["tokens"], row["attention"] = vocab.decode(seq), [float(v) for v in w]
        else:
            rows = [{"text": t, "tokens": vocab.decode(seq),
                     "tags": [labels[int(k)] for k in p.argmax(axis=1)],
                     "confidence": [float(v) for v in p.max(axis=1)]}
                    for t, seq, p in zip(texts, ids, inference.tag(spec, model.params, ids))]
    for row, share in zip(rows, unknown):
        row["unknown"] = share  # the share of the text's tokens the model never saw
    return PredictReport(spec.task, rows)


def _translations(model: Model, texts: list[str], ids: list[np.ndarray],
                  beam: int) -> list[dict[str, Any]]:
    """Each source's output (greedy or beam search) with its alignment: row t is the
    attention of output step t over the source tokens (the last row the step that wrote
    </s>), so ``alignment`` has len(output tokens) + 1 rows when the output ended."""
    from seqtool.core import inference

    vocab = model.vocab
    joiner = "" if model.tokenizer == "char" else " "
    rows = []
    for text, seq, out in zip(texts, ids, inference.translate(model.spec, model.params, ids,
                                                               beam)):
        tokens = vocab.decode(out.ids)
        rows.append({"text": text, "output": joiner.join(tokens),
                     "source_tokens": vocab.decode(seq), "tokens": tokens,
                     "log_prob": out.log_prob, "finished": out.finished,
                     "alignment": [[float(v) for v in row] for row in out.alignment]})
    return rows


def _texts(indices: list[int], texts: list[str]) -> str:
    first = texts[indices[0]]
    shown = f"text {indices[0] + 1} ({first[:40]!r})"
    return shown if len(indices) == 1 else f"{len(indices)} texts, the first {shown}"


def predict_metrics(report: dict[str, Any]) -> dict[str, Any]:
    rows = report["rows"]
    out: dict[str, Any] = {"texts": len(rows)}
    if rows and "probabilities" in rows[0]:
        out["mean_confidence"] = sum(max(r["probabilities"].values()) for r in rows) / len(rows)
    return out


# ---------------------------------------------------------------------------------------
# sample


@dataclass
class SampleReport(Report):
    """Tokens drawn from a language model after the prime, with each one's log-probability."""

    prime: str
    start: str
    tokens: list[str]
    text: str
    logprobs: list[float]
    logprob: float
    temperature: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> dict[str, Any]:
        """Without the per-token log-probabilities (the CSV has them)."""
        return {k: v for k, v in self.to_dict().items() if k != "logprobs"}

    def rows(self) -> list[dict[str, Any]]:
        return [{"position": i + 1, "token": w, "logprob": lp}
                for i, (w, lp) in enumerate(zip(self.tokens, self.logprobs))]

    def columns(self) -> list[str]:
        return ["position", "token", "logprob"]


def sample(config: SampleConfig, events: Events, run_dir: Path | None = None) -> SampleReport:
    """Draw ``config.length`` tokens after the prime (or the model's begin marker)."""
    from seqtool.core import inference
    from seqtool.core.data import tokenize

    model = load_run(config.run)
    if model.spec.task != "lm":
        raise InputError("run", f"holds a {model.spec.task} model; sample needs a language "
                         "model (train-rnn --task lm, or --data dyck)")
    events.warm_up(model.spec.cell, model.params["head.weight"].dtype, spec=model.spec,
                   training=False)
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
    return SampleReport(prime=config.prime, start=joiner.join(tokens), tokens=words,
                        text=joiner.join(words), logprobs=logps, logprob=float(sum(logps)),
                        temperature=config.temperature, seed=config.seed)


def sample_metrics(report: dict[str, Any]) -> dict[str, Any]:
    return {"logprob": report["logprob"], "tokens": len(report["tokens"])}


# ---------------------------------------------------------------------------------------
# evaluate


@dataclass
class EvaluateReport(Report):
    """A trained model's loss and metric on a file or a fresh draw of a built-in set, and
    what a picture of it needs (``details``, nested; the CSV row keeps the scalars):

    confusion          classify, tag: {"labels": [L names], "counts": L × L whole numbers,
                       row = the true label, column = the predicted one (the argmax)}
    exact_by_length    seq2seq: {"length": [M], "sequences": [n per M], "exact": [share of
                       greedy outputs equal to their target, per M]} (M: target tokens)
    loss_by_position   lm, and regress with a target at every step: {"position": [1..T],
                       "loss": [mean loss at that step: cross-entropy in nats (lm), squared
                       error (regress)], "count": [targets at that step]}
    """

    run: str
    data: str
    task: str
    sequences: int
    scores: dict[str, Any]  # loss and accuracy / perplexity / mse
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "data": self.data, "task": self.task,
                "sequences": self.sequences, **self.scores, **self.details}

    def rows(self) -> list[dict[str, Any]]:
        """One row of the scalars (the nested details are in the json format)."""
        return [{k: v for k, v in self.to_dict().items() if not isinstance(v, (dict, list))}]


def evaluate(config: EvaluateConfig, events: Events, run_dir: Path | None = None) -> EvaluateReport:
    from seqtool.core.training import evaluate as evaluate_model

    model = load_run(config.run)
    dataset = dataset_for_model(model, config.data, seed=config.seed, samples=config.samples)
    check_inference_fits(model, dataset.lengths, "data")
    threads = parallel.resolve_threads(config.threads)  # refused before any compile
    events.warm_up(model.spec.cell, model.params["head.weight"].dtype, spec=model.spec,
                   training=False)
    with parallel.threads(threads):  # the rows of a batch across cores
        evaluation = evaluate_model(model.spec, model.params, dataset)
        scores = evaluation.to_dict()
        if model.spec.pool == "attention":
            scores.update(attention_statistics(model, dataset))
        details = {**evaluation.details, **breakdown(model, dataset)}
    return EvaluateReport(config.run, config.data, model.spec.task, len(dataset), scores,
                          details)


def breakdown(model: Model, dataset: Any) -> dict[str, Any]:
    """The confusion matrix (classify, tag) or the mean loss per position (lm, regress at
    every step) of ``model`` on ``dataset``: the batches the evaluation scores, through the
    same forward pass again (the counts' diagonal sums to its accuracy). {} for other
    models (seq2seq's exact share per length comes with its evaluation)."""
    from seqtool.core.data import make_batch
    from seqtool.core.losses import log_softmax
    from seqtool.core.models import INFERENCE_BATCH, forward
    from seqtool.core.training import batches

    spec, params = model.spec, model.params
    if spec.task in ("classify", "tag"):
        L = spec.output_size
        counts = np.zeros((L, L), dtype=np.int64)
    elif spec.task == "lm" or (spec.task == "regress" and spec.per_step):
        T = int(max(dataset.lengths, default=0))
        sums, counts = np.zeros(T), np.zeros(T, dtype=np.int64)
    else:
        return {}
    for idx in batches(len(dataset), INFERENCE_BATCH, lengths=dataset.lengths):
        batch = make_batch(dataset, idx)
        inputs = (batch.inputs if spec.tokens_in
                  else batch.inputs.astype(params["head.weight"].dtype, copy=False))
        out = forward(spec, params, inputs, batch.lengths).outputs
        if spec.task in ("classify", "tag"):
            truth = batch.targets.reshape(-1)
            guess = out.reshape(-1, out.shape[-1]).argmax(axis=1)
            real = truth >= 0  # tag: padded steps hold IGNORE
            np.add.at(counts, (truth[real], guess[real]), 1)
        elif spec.task == "lm":
            for t in range(out.shape[0]):  # a step at a time: (B, V) in float64, not (T, B, V)
                real = batch.targets[t] >= 0
                logp = log_softmax(out[t].astype(np.float64))
                picked = logp[np.arange(len(real)), np.maximum(batch.targets[t], 0)]
                sums[t] += float(-picked[real].sum())
                counts[t] += int(real.sum())
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # inf: divergence, said so
                sq = ((out.astype(np.float64) - batch.targets) ** 2).mean(axis=-1)
            steps = batch.mask.shape[0]
            sums[:steps] += np.where(batch.mask, sq, 0.0).sum(axis=1)
            counts[:steps] += batch.mask.sum(axis=1)
    if spec.task in ("classify", "tag"):
        labels = list(model.labels) if model.labels else [str(i) for i in range(L)]
        return {"confusion": {"labels": labels, "counts": counts.tolist()}}
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return {"loss_by_position": {"position": list(range(1, len(counts) + 1)),
                                 "loss": [float(v) for v in means],
                                 "count": [int(c) for c in counts]}}


def attention_statistics(model: Model, dataset: Any) -> dict[str, float]:
    """An attention-pooling model's weights over the data: their mean entropy
    −Σ_t w_t log w_t (nats; log n for uniform weights over n steps, 0 for one step) and the
    mean number of steps with a weight above zero."""
    from seqtool.core.inference import classify_attending

    _, weights = classify_attending(model.spec, model.params, list(dataset.inputs))
    entropy = [float(-np.sum(w[w > 0] * np.log(w[w > 0]))) for w in weights]
    support = [int(np.count_nonzero(w)) for w in weights]
    return {"attention_entropy": float(np.mean(entropy)) if entropy else float("nan"),
            "attention_support": float(np.mean(support)) if support else float("nan")}


def evaluate_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The scalars (a recipe's summary averages them; the nested details are not)."""
    return {k: v for k, v in report.items()
            if k not in ("run", "data", "task") and not isinstance(v, (dict, list))}


__all__ = ["EvaluateReport", "PredictReport", "SampleReport", "evaluate", "predict",
           "sample"]
