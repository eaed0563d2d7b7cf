"""train-rnn --pool attention (#15, first part): a classifier that pools its RNN's outputs
with attention under any selector, used by predict and evaluate, resumed bit for bit; and
argmax, whose scoring parameters never move, said in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqtool.commands.trained import load_model
from seqtool.core.models import init_params


def train(cli, out, *args):
    result = cli("train-rnn", "--data", "parity", "--samples", "200", "--seq-len", "6",
                 "--hidden", "8", "--pool", "attention", "--out", str(out), *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_argmax_attention_never_moves_its_scoring_parameters_and_says_so(cli, tmp_path):
    report = train(cli, tmp_path / "run", "--selector", "argmax", "--score", "additive",
                   "--epochs", "3", "--lr", "0.05")
    assert report["attention"]["gradient"] == "zero"
    assert report["attention"]["scoring_change"] == {"attention.query": 0.0,
                                                     "attention.weight": 0.0,
                                                     "attention.bias": 0.0}
    model = load_model(tmp_path / "run")
    start = init_params(model.spec, seed=0, dtype=np.float32)
    for name in ("attention.query", "attention.weight", "attention.bias"):
        np.testing.assert_array_equal(model.params[name], start[name])
    assert not np.array_equal(model.params["head.weight"], start["head.weight"])


@pytest.mark.parametrize("selector, extra", [("softmax", ()), ("sparsemax", ()),
                                             ("entmax", ("--alpha", "1.5")),
                                             ("topk", ("--k", "2"))])
def test_exact_selectors_train_their_scoring_parameters(cli, tmp_path, selector, extra):
    report = train(cli, tmp_path / "run", "--selector", selector, *extra, "--epochs", "2")
    assert report["attention"]["gradient"] == "exact"
    assert report["attention"]["scoring_change"]["attention.query"] > 0
    assert report["spec"]["selector"] == selector


def test_explain_draws_the_attention_pooling_and_measures_its_dependency_map(cli, tmp_path):
    report = train(cli, tmp_path / "run", "--selector", "sparsemax", "--epochs", "1",
                   "--explain")
    assert any("w = sparsemax(dot scores)" in line for line in report["explanation"])
    assert report["dependency"] is not None
    # a validation sequence's pooling weights, as predict gives them for its text
    pooling = report["pooling"]
    assert len(pooling["weights"]) == len(pooling["tokens"])
    assert sum(pooling["weights"]) == pytest.approx(1.0)
    assert pooling["example"] == report["dependency"]["sequence"]  # the map's sequence
    assert pooling["tokens"] == report["dependency"]["inputs"]
    assert any(f"attention pooling on validation sequence {pooling['example']} " in line
               for line in report["explanation"])
    text = "".join(pooling["tokens"])  # parity's tokens are characters
    predicted = cli("predict", str(tmp_path / "run"), "-t", text, "-f", "json")
    row = json.loads(predicted.stdout)[0]
    np.testing.assert_allclose(row["attention"], pooling["weights"], rtol=1e-6, atol=1e-7)
    assert row["label"] == pooling["predicted"]
    from seqtool.render.plots.train import plot

    fig = plot(report)
    panel = next(ax for ax in fig.axes if "attention pooling" in ax.get_title())
    np.testing.assert_allclose(panel.images[0].get_array()[0], pooling["weights"])
    assert [t.get_text() for t in panel.get_xticklabels()] == pooling["tokens"]


def test_reinforce_pooling_trains_its_scoring_by_the_score_function(cli, tmp_path):
    report = train(cli, tmp_path / "run", "--selector", "reinforce", "--score", "general",
                   "--epochs", "2")
    assert report["attention"]["gradient"] == "score-function"
    assert report["attention"]["scoring_change"]["attention.query"] > 0
    assert "attention.baseline" not in report["attention"]["scoring_change"]
    model = load_model(tmp_path / "run")
    assert float(model.params["attention.baseline"]) > 0  # the running mean of the losses


def test_attention_runs_predict_evaluate_and_resume_bit_for_bit(cli, tmp_path):
    whole = train(cli, tmp_path / "whole", "--selector", "gumbel", "--temperature", "0.5",
                  "--epochs", "3")
    train(cli, tmp_path / "part", "--selector", "gumbel", "--temperature", "0.5", "--epochs", "2")
    resumed = cli("train-rnn", "--resume", str(tmp_path / "part"), "--epochs", "3", "-f", "json")
    assert resumed.exit_code == 0, resumed.stderr

    def losses(report):
        return [(r["train_loss"], r["val_loss"]) for r in report["history"]]

    assert losses(json.loads(resumed.stdout)) == losses(whole)  # gumbel's noise included
    predicted = cli("predict", str(tmp_path / "whole"), "-t", "0 1 1", "-f", "json")
    assert predicted.exit_code == 0, predicted.stderr
    row = json.loads(predicted.stdout)[0]
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-12
    evaluated = cli("evaluate", str(tmp_path / "whole"), "--data", "parity", "--samples", "50",
                    "-f", "json")
    assert evaluated.exit_code == 0, evaluated.stderr


@pytest.mark.parametrize("args, words", [
    (("--selector", "argmax"), "--selector applies to a model that attends: --pool attention (the pool is last)"),
    (("--pool", "attention", "--alpha", "1.5"),
     "--alpha is not a parameter of the softmax selector (it reads temperature)"),
    (("--pool", "attention", "--selector", "topk", "--k", "0"), "--k must be a whole number"),
    (("--pool", "attention", "--score", "cosine"), "--score"),
    (("--pool", "attention", "--cell", "bow"), "--pool attention pools a recurrent"),
])
def test_attention_settings_that_cannot_work_are_one_line(cli, tmp_path, args, words):
    result = cli("train-rnn", "--data", "parity", *args, "--out", str(tmp_path / "r"))
    assert result.exit_code == 2, result.stderr
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_predict_shows_each_token_s_attention_weight(cli, tmp_path):
    """predict's rows of an attention model carry the tokens and their weights, the same as
    the model's forward pass gives them (and a plain model's rows do not)."""
    from seqtool.core.data import encode_texts
    from seqtool.core.models import forward

    train(cli, tmp_path / "run", "--selector", "sparsemax", "--epochs", "2")
    texts = ["01101", "1", "00"]  # parity reads characters
    result = cli("predict", str(tmp_path / "run"), *[a for t in texts for a in ("-t", t)],
                 "-f", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    model = load_model(tmp_path / "run")
    for text, row in zip(texts, rows):
        ids = encode_texts([text], model.vocab, model.tokenizer)[0]
        fwd = forward(model.spec, model.params, ids[:, None], np.array([len(ids)]))
        assert row["tokens"] == list(text)
        # float32: the batch of three rounds its products otherwise than one sequence alone
        np.testing.assert_allclose(row["attention"], fwd.pooled_at.weights[0], rtol=1e-5)
        assert abs(sum(row["attention"]) - 1) < 1e-9 and min(row["attention"]) >= 0
    csv_out = cli("predict", str(tmp_path / "run"), "-t", "01", "-f", "csv").stdout
    assert csv_out.splitlines()[0].split(",")[-2] == "attention"
    table = cli("predict", str(tmp_path / "run"), "-t", "0110", "-f", "table").stdout
    assert "attention" in table and "0110" in table
    plain = cli("train-rnn", "--data", "parity", "--samples", "100", "--hidden", "4",
                "--epochs", "1", "--out", str(tmp_path / "plain"), "-f", "json")
    assert plain.exit_code == 0, plain.stderr
    row = json.loads(cli("predict", str(tmp_path / "plain"), "-t", "01", "-f", "json").stdout)[0]
    assert "attention" not in row and "tokens" not in row


def test_evaluate_reports_the_attention_s_entropy_and_support(cli, tmp_path):
    """Entropy and support of the weights over the data, against the weights themselves."""
    from seqtool.commands.trained import dataset_for_model
    from seqtool.core.inference import classify_attending

    train(cli, tmp_path / "run", "--selector", "sparsemax", "--epochs", "2")
    result = cli("evaluate", str(tmp_path / "run"), "--data", "parity", "--samples", "40",
                 "-f", "json")
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)
    model = load_model(tmp_path / "run")
    data = dataset_for_model(model, "parity", samples=40)
    weights = [w.astype(np.float64) for w in
               classify_attending(model.spec, model.params, list(data.inputs))[1]]
    entropy = np.mean([-(w[w > 0] * np.log(w[w > 0])).sum() for w in weights])
    assert scores["attention_entropy"] == pytest.approx(entropy, rel=1e-9)
    assert scores["attention_support"] == pytest.approx(np.mean([np.count_nonzero(w)
                                                                 for w in weights]))
    assert 1 <= scores["attention_support"] <= max(len(w) for w in weights)
