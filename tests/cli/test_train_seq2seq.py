"""train-rnn --task seq2seq (#15): an encoder–decoder with global attention trained on a
built-in task or a file of pairs, used by predict (greedy and beam search, with the
alignment) and evaluate (token and exact-sequence accuracy, attention entropy), resumed bit
for bit (REINFORCE's draws included); argmax's scoring parameters never move."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqtool.commands.trained import load_model
from seqtool.core import seq2seq
from seqtool.core.models import init_params, loss_of

SMALL = ("--samples", "300", "--seq-len", "6", "--hidden", "16", "--embedding-dim", "8")


def train(cli, out, *args, data="reverse"):
    result = cli("train-rnn", "--data", data, *(SMALL if data == "reverse" else ()),
                 "--out", str(out), *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_a_seq2seq_run_reports_exact_accuracy_entropy_and_the_scoring_gradient(cli, tmp_path):
    report = train(cli, tmp_path / "run", "--score", "general", "--epochs", "2", "--explain")
    assert report["task"] == "seq2seq" and report["spec"]["score"] == "general"
    last = report["history"][-1]
    for key in ("val_loss", "val_accuracy", "val_exact", "val_attention_entropy",
                "score_grad_norm"):
        assert key in last, key
    assert 0 <= last["val_exact"] <= last["val_accuracy"] <= 1
    assert last["score_grad_norm"] > 0
    attention = report["attention"]
    assert attention["gradient"] == "exact" and attention["scoring_change"]["attention.weight"] > 0
    # --explain: a validation pair's alignment, one row per output token and one for </s>
    alignment = report["alignment"]
    assert len(alignment["weights"]) in (len(alignment["output"]), len(alignment["output"]) + 1)
    for row in alignment["weights"]:
        assert len(row) == len(alignment["source"]) and sum(row) == pytest.approx(1.0)
    assert any("alignment of validation pair 1" in line for line in report["explanation"])


def test_argmax_attention_never_moves_its_scoring_parameters(cli, tmp_path):
    report = train(cli, tmp_path / "run", "--score", "additive", "--selector", "argmax",
                   "--epochs", "2")
    assert report["attention"]["gradient"] == "zero"
    assert set(report["attention"]["scoring_change"].values()) == {0.0}
    assert report["attention"]["score_grad_norm"] == 0.0
    model = load_model(tmp_path / "run")
    start = init_params(model.spec, seed=0, dtype=np.float32)
    for name in report["attention"]["scoring_change"]:
        np.testing.assert_array_equal(model.params[name], start[name])
    assert not np.array_equal(model.params["combine.weight"], start["combine.weight"])


def test_resume_is_bit_identical_with_reinforce_s_draws(cli, tmp_path):
    # no dropout: the step's generator is drawn for REINFORCE's choices alone
    args = ("--score", "general", "--selector", "reinforce", "--layers", "2")
    whole = train(cli, tmp_path / "whole", *args, "--epochs", "3")
    train(cli, tmp_path / "part", *args, "--epochs", "2")
    resumed = cli("train-rnn", "--resume", str(tmp_path / "part"), "--epochs", "3", "-f", "json")
    assert resumed.exit_code == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    assert [r["val_loss"] for r in again["history"]] == [r["val_loss"] for r in whole["history"]]
    a, b = load_model(tmp_path / "whole", "last"), load_model(tmp_path / "part", "last")
    for name, value in a.params.items():
        np.testing.assert_array_equal(b.params[name], value, err_msg=name)
    assert float(a.params[seq2seq.BASELINE]) > 0  # the running mean of the step losses moved
    assert whole["attention"]["gradient"] == "score-function"
    # the score-function gradient trains the scoring (argmax at training would leave it)
    assert whole["attention"]["scoring_change"]["attention.weight"] > 0
    assert whole["attention"]["score_grad_norm"] > 0


def test_predict_decodes_with_alignments_and_beam_scores_are_the_model_s(cli, tmp_path):
    train(cli, tmp_path / "run", "--epochs", "2")
    texts = ("31415", "2718", "9")
    greedy = cli("predict", str(tmp_path / "run"), *[a for t in texts for a in ("-t", t)],
                 "-f", "json")
    assert greedy.exit_code == 0, greedy.stderr
    beam = cli("predict", str(tmp_path / "run"), *[a for t in texts for a in ("-t", t)],
               "--beam", "3", "-f", "json")
    assert beam.exit_code == 0, beam.stderr
    model = load_model(tmp_path / "run")
    for g, b in zip(json.loads(greedy.stdout), json.loads(beam.stdout)):
        for row in (g, b):
            n = len(row["source_tokens"])
            assert len(row["alignment"]) == len(row["tokens"]) + row["finished"]
            assert all(len(r) == n and sum(r) == pytest.approx(1.0) for r in row["alignment"])
            if row["finished"]:  # the reported log p is the teacher-forced one of the output
                assert row["log_prob"] == pytest.approx(
                    teacher_forced_log_prob(model, row["source_tokens"], row["tokens"]),
                    rel=1e-4, abs=1e-4)
        assert b["log_prob"] >= g["log_prob"] - 1e-5 or not g["finished"]


def teacher_forced_log_prob(model, source, output):
    vocab = model.vocab
    src = vocab.encode(source)[:, None]
    body = list(vocab.encode(output))
    dec_in = np.array([seq2seq.BOS_ID] + body)[:, None]
    targets = np.array(body + [seq2seq.EOS_ID])[:, None]
    f = seq2seq.forward(model.spec, model.params, src, np.array([len(source)]), dec_in,
                        np.array([len(body) + 1]))
    loss = loss_of(model.spec, f.outputs, targets, np.array([len(body) + 1]))
    return -loss.sum


def test_a_file_of_pairs_trains_and_evaluate_counts_exact_outputs(cli, tmp_path):
    rng = np.random.default_rng(0)
    lines = ["source\ttarget"]
    for _ in range(120):
        words = rng.choice(["red", "green", "blue", "cat", "dog"], rng.integers(1, 4))
        lines.append(" ".join(words) + "\t" + " ".join(words[::-1]))
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n")
    report = train(cli, tmp_path / "run", "--hidden", "16", "--epochs", "2", data=str(path))
    assert report["task"] == "seq2seq"
    evaluated = cli("evaluate", str(tmp_path / "run"), "--data", str(path), "-f", "json")
    assert evaluated.exit_code == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout)
    sources = [line.split("\t")[0] for line in lines[1:]]
    targets = [line.split("\t")[1] for line in lines[1:]]
    predicted = cli("predict", str(tmp_path / "run"), *[a for s in sources for a in ("-t", s)],
                    "-f", "json")
    rows = json.loads(predicted.stdout)
    exact = np.mean([r["finished"] and r["output"] == t for r, t in zip(rows, targets)])
    assert scores["exact"] == pytest.approx(exact)
    assert 0 <= scores["accuracy"] <= 1 and scores["attention_entropy"] >= 0


@pytest.mark.parametrize("args, words", [
    (("--data", "echo", "--bidirectional"), "--bidirectional applies to a recurrent classify "
                                            "or seq2seq encoder, not to tag"),
    (("--data", "reverse", "--bidirectional", "--hidden", "7"), "is odd"),
    (("--data", "reverse", "--selector", "reinforce", "--temperature", "2"),
     "--temperature is not a parameter of the reinforce selector"),
    (("--data", "reverse", "--cell", "bow"), "seq2seq needs a recurrent cell"),
])
def test_seq2seq_settings_that_cannot_work_are_one_line(cli, tmp_path, args, words):
    result = cli("train-rnn", *args, "--out", str(tmp_path / "r"))
    assert result.exit_code == 2, result.stderr
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_beam_is_refused_for_a_model_that_does_not_decode(cli, tmp_path):
    result = cli("train-rnn", "--data", "parity", "--samples", "100", "--hidden", "8",
                 "--epochs", "1", "--out", str(tmp_path / "p"), "-f", "json")
    assert result.exit_code == 0, result.stderr
    refused = cli("predict", str(tmp_path / "p"), "-t", "0 1", "--beam", "2")
    assert refused.exit_code == 2 and "--beam applies to a seq2seq model" in refused.stderr
