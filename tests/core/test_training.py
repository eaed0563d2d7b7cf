"""The training loop and the run directory: resume bit-identity, early stopping, the NaN
guard, checkpoints that load into torch, and the quality bars of the built-in sets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from harness import assert_close

from seqtool.config import TrainConfig
from seqtool.core.data import builtin
from seqtool.core.errors import InputError
from seqtool.core.models import ModelSpec, init_params
from seqtool.core.training import Hooks, TrainSettings, batches, epoch_order, train
from seqtool.io.checkpoint import CheckpointError
from seqtool.commands.train import run_train
from seqtool.commands.trained import load_model

SMALL = {"data": "parity", "seq_len": "6", "samples": "160", "hidden": "8", "epochs": "3",
         "batch_size": "16", "embedding_dim": "4"}


def config(tmp_path, name, **changes):
    return TrainConfig.from_mapping({**SMALL, "out": str(tmp_path / name), **changes})


def stop_after(k):
    count = {"steps": 0}

    def on_step(position, loss):
        count["steps"] += 1

    return Hooks(on_step=on_step, should_stop=lambda: count["steps"] >= k)


@pytest.mark.parametrize("stop_at", [5, 9, 10])  # mid-epoch, and right at an epoch's end
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, stop_at):
    changes = {"cell": "lstm", "layers": "2", "dropout": "0.3"}
    whole = run_train(config(tmp_path, "whole", **changes))
    cut = run_train(config(tmp_path, "cut", **changes), hooks=stop_after(stop_at))
    assert cut.stop_reason == "interrupted"
    assert cut.position["global_step"] == stop_at
    resumed = run_train(None, resume=tmp_path / "cut")
    assert resumed.stop_reason == "completed"
    assert set(resumed.params) == set(whole.params)
    for key, value in whole.params.items():
        np.testing.assert_array_equal(resumed.params[key], value, err_msg=key)
    a = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_loss"] for r in a] == [r["val_loss"] for r in b]
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]


def test_resume_may_extend_but_not_change_the_model(tmp_path):
    run_train(config(tmp_path, "run", epochs="1"))
    longer = run_train(None, resume=tmp_path / "run", changes={"epochs": 2})
    assert len(longer.history) == 2 and longer.config.epochs == 2
    with pytest.raises(InputError, match="cannot change on --resume"):
        run_train(None, resume=tmp_path / "run", changes={"lr": 0.5})


def test_run_directory_files(tmp_path):
    report = run_train(config(tmp_path, "run"))
    out = tmp_path / "run"
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "metrics.jsonl", "model.npz",
                                              "model.json", "last.npz", "last.json"}
    assert not [p for p in out.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["epoch"] == 1
    best = load_model(out)
    assert best.meta["epoch"] == report.best_epoch
    assert best.meta["vocab"][:2] == ["<pad>", "<unk>"] and best.labels == ["even", "odd"]
    import yaml

    stored = yaml.safe_load((out / "config.yaml").read_text())
    assert TrainConfig.from_mapping(stored) == report.config


def test_corrupted_and_foreign_checkpoints_give_one_clear_error(tmp_path):
    run_train(config(tmp_path, "run", epochs="1"))
    out = tmp_path / "run"
    (out / "model.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="model.npz"):
        load_model(out)
    meta = json.loads((out / "last.json").read_text())
    meta["spec"]["hidden"] = 99
    (out / "last.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError):
        load_model(out, "last")


def test_early_stopping_counts_epochs_without_improvement():
    data = builtin("parity", samples=64, seq_len=4)
    spec = ModelSpec("classify", "gru", data.input_size, data.output_size, hidden=4,
                     embedding_dim=3)
    params = init_params(spec)
    # an update of lr · g with lr = 1e-300 underflows: the weights never move, so the
    # validation loss never improves after the first epoch
    settings = TrainSettings(optimizer="sgd", lr=1e-300, epochs=10, patience=2, batch_size=16)
    result = train(spec, settings, params, data, data)
    assert result.stop_reason == "early_stopped"
    assert len(result.position.history) == 3 and result.position.best_epoch == 1


def test_a_non_finite_loss_stops_the_run_and_keeps_the_weights():
    data = builtin("adding", samples=40, seq_len=5)
    data.targets[3] = data.targets[3] * np.inf  # one target that no model can fit
    spec = ModelSpec("regress", "rnn", 2, 1, hidden=4, embedding_dim=None, target_at="last")
    params = init_params(spec, dtype=np.float64)
    before = {k: v.copy() for k, v in params.items()}
    result = train(spec, TrainSettings(batch_size=40, epochs=2), params, data, data)
    assert result.stop_reason == "diverged" and "loss became" in result.message
    for key in before:  # the step that met the NaN was not applied
        np.testing.assert_array_equal(params[key], before[key])


def test_checkpoint_loads_into_torch_with_the_same_predictions(tmp_path, torch_model):
    run_train(config(tmp_path, "run", cell="gru", layers="2", dtype="float64"))
    model = load_model(tmp_path / "run")
    data = builtin("parity", samples=20, seq_len=6, seed=9)
    x = np.stack(data.inputs, axis=1)  # (T, B): every sequence has length 6
    torch_logits = torch_model("gru", model.params).step_logits(x)[-1]  # (B, 2)
    from seqtool.core.models import forward

    ours = forward(model.spec, model.params, x, np.full(x.shape[1], x.shape[0])).outputs
    assert_close(ours, torch_logits, kind="exact", what="logits")


def test_training_steps_match_torch(torch_model):
    """Three epochs of one full batch each (Adam, float64): train()'s weights are those of
    the same model trained by torch (autograd, cross_entropy, torch.optim.Adam)."""
    import torch

    data = builtin("parity", samples=24, seq_len=5, seed=2)
    spec = ModelSpec("classify", "lstm", data.input_size, data.output_size, hidden=5,
                     embedding_dim=3)
    params = init_params(spec, seed=4, dtype=np.float64)
    net = torch_model("lstm", params)
    settings = TrainSettings(optimizer="adam", lr=0.05, epochs=3, batch_size=len(data))
    result = train(spec, settings, params, data, data)
    assert result.stop_reason == "completed" and result.position.global_step == 3
    names = ["embedding.weight", *(f"rnn.{k}" for k, _ in net.rnn.named_parameters()),
             "head.weight", "head.bias"]
    t_opt = torch.optim.Adam(net.parameters(), lr=0.05, foreach=False)
    x = np.stack(data.inputs, axis=1)  # (T, B)
    y = torch.as_tensor(np.array([int(t) for t in data.targets]))
    for _ in range(3):
        t_opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net.head(net.states(x)[-1]), y)
        loss.backward()
        t_opt.step()
    for key, tensor in zip(names, net.parameters()):
        assert_close(result.params[key], tensor.detach().numpy(), kind="exact", what=key)


# ---------------------------------------------------------------------------------------
# Quality bars: what each built-in set must reach, at sizes that keep the suite quick


def fit(tmp_path, **flags):
    out = tmp_path / f"{flags['data']}-{flags['cell']}"
    report = run_train(TrainConfig.from_mapping({"out": str(out), **flags}))
    return report, report.history[-1]


def test_parity_8_reaches_full_validation_accuracy(tmp_path):
    # Parity sits on a plateau at chance until the model finds it, and when it escapes
    # depends on rounding: at hidden 32, lr 0.01, 2 of 4 seeds stayed at chance for 25
    # epochs. At hidden 64, lr 0.02, seeds 0-5 all reached 100% within 7 epochs.
    report, last = fit(tmp_path, data="parity", seq_len=8, cell="gru", hidden=64, lr=0.02,
                       epochs=15, patience=None)
    assert report.best_val["accuracy"] == 1.0


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_sentiment_beats_bag_of_words(tmp_path, cell):
    report, _ = fit(tmp_path, data="sentiment", cell=cell, hidden=32, lr=0.01, epochs=8)
    bow, _ = fit(tmp_path, data="sentiment", cell="bow", lr=0.01, epochs=8)
    assert report.best_val["accuracy"] >= 0.90
    assert report.best_val["accuracy"] >= bow.best_val["accuracy"] + 0.1


def test_dyck_lm_beats_the_unigram_entropy(tmp_path):
    report, _ = fit(tmp_path, data="dyck", cell="lstm", hidden=32, lr=0.01, epochs=6)
    assert report.best_val["loss"] < 0.8 * report.baseline["unigram_entropy"]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_echo_with_delay_3_is_learned_exactly(tmp_path, cell):
    report, _ = fit(tmp_path, data="echo", delay=3, cell=cell, hidden=32, lr=0.01, epochs=12)
    assert report.best_val["accuracy"] == 1.0


def test_adding_beats_predicting_the_mean(tmp_path):
    report, _ = fit(tmp_path, data="adding", seq_len=10, cell="lstm", hidden=32, lr=0.01,
                    epochs=10)
    assert report.best_val["mse"] < 0.2 * report.baseline["predict_the_mean_mse"]


def test_training_batches_hold_the_same_sequences_sorted_longest_first():
    lengths = np.array([3, 9, 1, 9, 4, 7, 2, 5, 6, 8])
    order = epoch_order(0, 0, len(lengths))
    plain = list(batches(len(lengths), 4, order))
    sorted_ = list(batches(len(lengths), 4, order, lengths))
    assert [sorted(p.tolist()) for p in plain] == [sorted(q.tolist()) for q in sorted_]
    for chunk, original in zip(sorted_, plain):
        assert np.all(np.diff(lengths[chunk]) <= 0)
        # ties keep the epoch's order
        for a, b in zip(chunk[:-1], chunk[1:]):
            if lengths[a] == lengths[b]:
                assert list(original).index(a) < list(original).index(b)
