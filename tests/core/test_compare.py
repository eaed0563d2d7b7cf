"""compare-selectors' numerics: rows, cost, the report, Adam, and the associative-recall
learner."""

from __future__ import annotations

import types

import numpy as np
import pytest

from harness import assert_close
from naive import numeric_grad
from seqtool.core import compare
from seqtool.core.attention import EXAMPLE_KEYS, EXAMPLE_VALUES, attend_report, attention_scores
from seqtool.core.compare import compare_report, entropy, measure_cost, time_call
from seqtool.core.optim import Adam
from seqtool.core.recall import (
    RecallSetup, embeddings, forward_backward, learn, sample_batch,
)
from seqtool.core.selectors import Selection, get_selector, resolve_params, select, selector_names

SMALL = RecallSetup(pairs=4, dim=16, vocab=16, steps=150, lr=0.05, seed=0)


def test_entropy_matches_definition():
    w = np.array([[0.5, 0.25, 0.25, 0.0], [1.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(entropy(w), [1.5 * np.log(2), 0.0], atol=1e-15)
    assert str(entropy(w)[1]) == "0.0"  # not -0.0


class FakeClock:
    """time.perf_counter for time_call: each call of ``fn`` advances the clock by the next
    duration (seconds) of ``durations``, nothing else does."""

    def __init__(self, durations):
        self.now, self.durations, self.calls = 0.0, list(durations), 0

    def perf_counter(self):
        return self.now

    def fn(self):
        self.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1


def test_time_call_is_the_median_and_quartiles_of_the_repeats(monkeypatch):
    # warm-up, the call that sets the count (~1 ms ≥ min_seconds: one call per repeat), then
    # 5 repeats of 5, 1, 4, 2, 3 ticks: median 3, quartiles 2 and 4 (ticks of 2⁻²⁰ s keep
    # the clock's sums exact)
    tick = 2.0**-20
    clock = FakeClock([2.0**-10, 2.0**-10, *(tick * np.array([5, 1, 4, 2, 3]))])
    monkeypatch.setattr(compare, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    median, p25, p75 = time_call(clock.fn, repeats=5)
    assert clock.calls == 2 + 5
    assert_close([median, p25, p75], np.array([3, 2, 4]) * tick * 1e6)


def test_time_call_runs_short_calls_many_times_per_repeat(monkeypatch):
    # 2⁻¹⁷ s (7.6 µs) per call and min_seconds = 200 µs: 26 calls per repeat, each sample
    # their mean
    clock = FakeClock([2.0**-17])
    monkeypatch.setattr(compare, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    median, p25, p75 = time_call(clock.fn, repeats=3, min_seconds=2e-4)
    assert clock.calls == 2 + 3 * 26
    assert_close([median, p25, p75], [2.0**-17 * 1e6] * 3)


SELECT_US = {"softmax": 3.0, "argmax": 2.0, "sparsemax": 5.0, "topk": 7.0, "st-argmax": 4.0}


def fake_time_call(timed):
    """A time_call that runs ``fn`` once, keeps what it returned, and reports a fixed time:
    SELECT_US[name] for a selection or a whole attention pass, 11 µs for the scores."""

    def time_fn(fn, repeats=15):
        result = fn()
        timed.append(result)
        selection = getattr(result, "selection", result)  # attend() -> Attention
        t = SELECT_US[selection.name] if isinstance(selection, Selection) else 11.0
        return t, t - 1.0, t + 1.0

    return time_fn


def test_measure_cost_times_each_selector_on_the_same_scores(monkeypatch):
    timed = []
    monkeypatch.setattr(compare, "time_call", fake_time_call(timed))
    rows = measure_cost(["softmax", "sparsemax", "topk"], [8, 64], 4, {"temperature": 2.0},
                        seed=3, repeats=3)
    assert [(r.selector, r.n) for r in rows] == [
        ("softmax", 8), ("sparsemax", 8), ("topk", 8),
        ("softmax", 64), ("sparsemax", 64), ("topk", 64)]
    for r in rows:  # each ratio divides by argmax's time at the same n, timed as well
        assert r.ratio_to_argmax == SELECT_US[r.selector] / SELECT_US["argmax"]
        assert (r.scores_us, r.select_us) == (11.0, SELECT_US[r.selector])
        assert r.select_spread_us == (r.select_us - 1.0, r.select_us + 1.0)
    # what was timed: the scores of one query over n keys from the seed, then the selections
    rng = np.random.default_rng(3)
    for n, chunk in ((8, timed[:5]), (64, timed[5:])):
        q, K = rng.normal(size=(1, 4)), rng.normal(size=(n, 4))
        S = attention_scores(q, K, 1 / np.sqrt(4))
        np.testing.assert_array_equal(chunk[0], S)
        assert [sel.name for sel in chunk[1:]] == ["argmax", "softmax", "sparsemax", "topk"]
        for sel in chunk[1:]:
            ref = select(sel.name, S, **resolve_params(sel.name, n, {"temperature": 2.0}))
            np.testing.assert_array_equal(sel.weights, ref.weights)
        assert (chunk[4].weights > 0).sum() == 2  # top-k's default k = min(2, n)


def test_sample_batch_is_a_recall_task():
    batch = sample_batch(np.random.default_rng(0), SMALL, 50)
    for b in range(50):
        assert len(set(batch.keys[b])) == SMALL.pairs  # distinct keys
        j = list(batch.keys[b]).index(batch.query[b])  # the query is one of them
        assert batch.answer[b] == batch.values[b, j]


@pytest.mark.parametrize("selector", ["softmax", "sparsemax", "entmax", "topk"])
def test_recall_gradients_match_finite_differences(selector):
    rng = np.random.default_rng(3)
    E = embeddings(rng, SMALL)
    params = {"W_q": rng.normal(size=(16, 16)) * 0.5, "W_k": rng.normal(size=(16, 16)) * 0.5}
    batch = sample_batch(rng, SMALL, 6)
    sel = {"k": 2} if selector == "topk" else {}
    step = forward_backward(params, E, batch, selector, sel)
    for name in ("W_q", "W_k"):
        def loss(W, name=name):
            return forward_backward({**params, name: W}, E, batch, selector, sel,
                                    need_grads=False).loss
        numeric = numeric_grad(loss, params[name])
        assert_close(step.grads[name], numeric, kind="finite-difference")


def test_argmax_gradients_are_exactly_zero():
    rng = np.random.default_rng(4)
    E = embeddings(rng, SMALL)
    params = {"W_q": rng.normal(size=(16, 16)), "W_k": rng.normal(size=(16, 16))}
    step = forward_backward(params, E, sample_batch(rng, SMALL, 8), "argmax", {})
    assert np.all(step.grads["W_q"] == 0) and np.all(step.grads["W_k"] == 0)


def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    theta = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(5)]
    ours = {"w": theta.copy()}
    opt = Adam(ours, lr=0.01)
    t = torch.tensor(theta.copy(), requires_grad=True)
    t_opt = torch.optim.Adam([t], lr=0.01)
    for g in grads:
        opt.step({"w": g})
        t.grad = torch.tensor(g)
        t_opt.step()
    assert_close(ours["w"], t.detach().numpy())


def test_learning_softmax_learns_and_argmax_cannot():
    soft = learn("softmax", SMALL)
    arg = learn("argmax", SMALL)
    assert soft.accuracy >= soft.chance + 0.5  # far above chance
    assert soft.loss_end < 0.5 * soft.loss_start
    assert soft.weights_changed and soft.grad_norm_Wq > 0 and soft.grad_norm_Wk > 0
    assert arg.grad_norm_Wq == 0.0 and arg.grad_norm_Wk == 0.0
    assert arg.weights_changed is False
    assert arg.accuracy == arg.accuracy_at_init  # nothing was learned
    assert abs(arg.accuracy - arg.chance) < 0.15
    assert len(soft.losses) == SMALL.steps


def test_every_selector_runs_the_learning_task():
    short = RecallSetup(pairs=4, dim=16, vocab=16, steps=5, seed=1)
    for name in selector_names():
        result = learn(name, short, resolve_params(name, short.pairs))
        assert len(result.losses) == 5 and np.all(np.isfinite(result.losses))
        zero = get_selector(name).gradient_kind(resolve_params(name, short.pairs)) == "zero"
        assert (result.grad_norm_Wq == 0) == zero and result.weights_changed != zero


def test_learning_is_reproducible_by_seed():
    a, b = learn("softmax", SMALL), learn("softmax", SMALL)
    assert a.losses == b.losses and a.accuracy == b.accuracy
    c = learn("softmax", RecallSetup(**{**vars(SMALL), "seed": 1}))
    assert c.losses != a.losses


def test_compare_report_rows_agree_with_attend_report(monkeypatch):
    monkeypatch.setattr(compare, "time_call", fake_time_call([]))
    Q = np.array([[3.0, -1.0], [1.0, 2.0]])
    params = {"temperature": 2.0, "alpha": 1.5, "k": 3, "seed": 0, "hard": False}
    u = np.array([1.0, 0.0, 0.5])
    report = compare_report(Q, EXAMPLE_KEYS, EXAMPLE_VALUES,
                            selectors=["softmax", "argmax", "topk"], params=params, scale="sqrt",
                            upstream=u, repeats=2)
    assert [r.selector for r in report.selector_rows] == ["softmax", "argmax", "topk"]
    assert report.scale == 1 / np.sqrt(2) and report.cost == [] and report.learning == []
    for row in report.selector_rows:
        ref = attend_report(Q, EXAMPLE_KEYS, EXAMPLE_VALUES, selector=row.selector,
                            params=params, scale="sqrt", upstream=u)
        assert row.params == ref.params
        np.testing.assert_array_equal(row.weights, ref.weights)
        np.testing.assert_array_equal(row.outputs, ref.outputs)
        assert row.grad_norm_query == np.linalg.norm(ref.gradients.query)
        assert row.grad_norm_keys == np.linalg.norm(ref.gradients.keys)
        assert row.gradient == ref.gradient
        assert (row.cost_us, row.cost_spread_us) == (SELECT_US[row.selector],
                                                     (SELECT_US[row.selector] - 1,
                                                      SELECT_US[row.selector] + 1))
    assert report.row("topk").params == {"k": 3, "temperature": 2.0}
    assert list(report.row("topk").support) == [3, 3]


def test_compare_report_csv_rows(monkeypatch):
    monkeypatch.setattr(compare, "time_call", fake_time_call([]))
    setup = RecallSetup(pairs=2, dim=4, vocab=4, steps=3, seed=0)
    report = compare_report(np.array([[3.0, -1.0], [1.0, 2.0]]), EXAMPLE_KEYS, EXAMPLE_VALUES,
                            selectors=["softmax", "argmax"], cost_sizes=[8, 16], cost_dim=4,
                            learning=setup, repeats=2)
    rows = report.rows()
    columns = ["selector", "query", "entropy", "support", "max_weight", "grad_norm_query",
               "grad_norm_keys", "gradient", "cost_us", "cost_p25_us", "cost_p75_us",
               "select_us_n8", "select_us_n16", "loss_start", "loss_end", "accuracy",
               "accuracy_at_init", "grad_norm_Wq", "grad_norm_Wk"]
    assert report.columns() == columns and all(list(row) == columns for row in rows)
    assert [(r["selector"], r["query"]) for r in rows] == [
        ("softmax", 0), ("softmax", 1), ("argmax", 0), ("argmax", 1)]
    for r in rows:
        sel = report.row(r["selector"])
        learned = next(x for x in report.learning if x.selector == r["selector"])
        j = r["query"]
        assert (r["entropy"], r["support"], r["max_weight"]) == (
            sel.entropy[j], sel.support[j], sel.max_weight[j])
        assert type(r["support"]) is int and type(r["entropy"]) is float
        assert r["select_us_n8"] == r["select_us_n16"] == SELECT_US[r["selector"]]
        assert (r["cost_us"], r["cost_p25_us"], r["cost_p75_us"]) == (
            SELECT_US[r["selector"]], SELECT_US[r["selector"]] - 1, SELECT_US[r["selector"]] + 1)
        assert (r["loss_start"], r["accuracy"], r["grad_norm_Wk"]) == (
            learned.loss_start, learned.accuracy, learned.grad_norm_Wk)
    assert rows[2]["grad_norm_Wq"] == 0.0 and rows[0]["grad_norm_Wq"] > 0  # argmax, softmax
    assert report.to_dict()["learning_setup"] == dict(vars(setup))
