"""Attention forward and backward against loop-only references, finite differences, torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import assert_close
from naive import (
    numeric_grad, ref_argmax, ref_attention, ref_entmax, ref_entmax_threshold, ref_softmax,
    ref_sparsemax, ref_sparsemax_threshold, ref_topk,
)
from seqtool.core.attention import (
    EXAMPLE_KEYS, EXAMPLE_QUERY, EXAMPLE_VALUES, attend, attend_backward, attend_report,
    resolve_scale,
)
from seqtool.core.errors import InputError

m, n, d, d_v = 3, 5, 4, 3


def problem(seed, size=0.6):
    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(m, d)) * size  # (m, d)
    K = rng.normal(size=(n, d)) * size  # (n, d)
    V = rng.normal(size=(n, d_v))  # (n, d_v)
    U = rng.normal(size=(m, d_v))  # (m, d_v) upstream ∂L/∂O
    return Q, K, V, U


# selector, its parameters, the one-row reference of its forward pass
CASES = [
    ("softmax", dict(temperature=0.7), lambda r: ref_softmax(r, 0.7)),
    ("sparsemax", {}, ref_sparsemax),
    ("entmax", dict(alpha=1.5), lambda r: ref_entmax(r, 1.5)),
    ("entmax", dict(alpha=1.7), lambda r: ref_entmax(r, 1.7)),
    ("topk", dict(k=2, temperature=0.5), lambda r: ref_topk(r, 2, 0.5)),
    ("argmax", {}, ref_argmax),
    ("st-argmax", dict(temperature=0.5), ref_argmax),
]
IDS = [f"{name}-{params}" for name, params, _ in CASES]


def ref_values_gradient(W, U):
    """∂L/∂V_ic = Σ_j W_ji U_jc, by loops."""
    dV = np.zeros((W.shape[1], U.shape[1]))
    for i in range(W.shape[1]):
        for c in range(U.shape[1]):
            for j in range(W.shape[0]):
                dV[i, c] += W[j, i] * U[j, c]
    return dV


@pytest.mark.parametrize("scale", [1.0, "sqrt", 0.3])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name, params, ref_fn", CASES, ids=IDS)
def test_forward_matches_loops(name, params, ref_fn, seed, scale):
    Q, K, V, _ = problem(seed)
    c = resolve_scale(scale, d)
    comp = attend(Q, K, V, name, c, **params)
    ref_S, ref_W, ref_O = ref_attention(Q, K, V, ref_fn, c)
    assert_close(comp.scores, ref_S, kind="reference")
    assert_close(comp.weights, ref_W, kind="reference")
    assert_close(comp.outputs, ref_O, kind="reference")
    assert comp.outputs.shape == (m, d_v)


@pytest.mark.parametrize("name, params, ref_fn", CASES, ids=IDS)
def test_values_gradient_matches_loops(name, params, ref_fn):
    Q, K, V, U = problem(2)
    fwd = attend(Q, K, V, name, 0.8, **params)
    grads = attend_backward(Q, K, V, fwd, U, 0.8)
    _, ref_W, _ = ref_attention(Q, K, V, ref_fn, 0.8)
    assert_close(grads.values, ref_values_gradient(ref_W, U), kind="reference")


def well_separated(name, params, S):
    """Smallest distance of any score row from a kink of the selector (inf if smooth)."""
    margins = [np.inf]
    for row in S:
        if name == "sparsemax":
            tau, x = ref_sparsemax_threshold(row)
            margins.append(min(abs(v - tau) for v in x))
        elif name == "entmax":
            tau, x = ref_entmax_threshold(row, params["alpha"])
            margins.append(min(abs(v - tau) for v in x))
        elif name == "topk":
            s = np.sort(row)[::-1]
            margins.append(s[params["k"] - 1] - s[params["k"]])
    return min(margins)


SMOOTH = [case for case in CASES if case[0] in ("softmax", "sparsemax", "entmax", "topk")]
SMOOTH += [("entmax", dict(alpha=1.3), lambda r: ref_entmax(r, 1.3))]


@pytest.mark.parametrize("seed", [3, 4, 5])
@pytest.mark.parametrize("name, params, ref_fn", SMOOTH,
                         ids=[f"{name}-{params}" for name, params, _ in SMOOTH])
def test_gradients_match_finite_differences_of_the_loops(name, params, ref_fn, seed):
    """attend_backward vs central differences of L = Σ U ⊙ O, O from the loop reference."""
    Q, K, V, U = problem(seed)
    scale = resolve_scale("sqrt", d)
    fwd = attend(Q, K, V, name, scale, **params)
    assert well_separated(name, params, fwd.scores) > 1e-3  # ε = 1e-6 never crosses a kink
    assert any((row > 0).sum() >= 2 for row in fwd.weights)  # the scores do get a gradient
    comp = attend_backward(Q, K, V, fwd, U, scale)

    def loss(Q, K, V):
        return float(np.sum(U * ref_attention(Q, K, V, ref_fn, scale)[2]))

    assert_close(comp.query, numeric_grad(lambda x: loss(x, K, V), Q), kind="finite-difference")
    assert_close(comp.keys, numeric_grad(lambda x: loss(Q, x, V), K), kind="finite-difference")
    assert_close(comp.values, numeric_grad(lambda x: loss(Q, K, x), V), kind="finite-difference")
    assert np.abs(comp.query).max() > 1e-3 and np.abs(comp.keys).max() > 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_argmax_gradients(seed):
    Q, K, V, U = problem(seed)
    fwd = attend(Q, K, V, "argmax", 1.0)
    grads = attend_backward(Q, K, V, fwd, U, 1.0)
    assert np.all(grads.query == 0) and grads.query.shape == (m, d)
    assert np.all(grads.keys == 0) and grads.keys.shape == (n, d)
    assert np.all(grads.scores == 0)
    np.testing.assert_array_equal(grads.values, fwd.weights.T @ U)
    _, ref_W, _ = ref_attention(Q, K, V, ref_argmax, 1.0)
    np.testing.assert_array_equal(grads.values, ref_values_gradient(ref_W, U))


def test_vector_upstream_is_broadcast_to_every_query():
    Q, K, V, U = problem(6)
    u = U[0]  # (d_v,)
    fwd = attend(Q, K, V, "softmax", 0.5)
    one = attend_backward(Q, K, V, fwd, u, 0.5)
    full = attend_backward(Q, K, V, fwd, np.tile(u, (m, 1)), 0.5)
    for name in ("query", "keys", "values", "scores"):
        np.testing.assert_array_equal(getattr(one, name), getattr(full, name))


def test_resolve_scale():
    assert resolve_scale("sqrt", 4) == 0.5
    assert resolve_scale(" SQRT ", 9) == pytest.approx(1 / 3, rel=1e-15)
    assert resolve_scale(2, 4) == 2.0
    assert resolve_scale(0.25, 100) == 0.25
    with pytest.raises(InputError) as info:
        resolve_scale("half", 4)
    assert info.value.key == "scale"


def test_overflowing_scores_are_an_input_error():
    with pytest.raises(InputError) as info:
        attend(np.array([[1e200, 1.0]]), np.array([[1e200, 0.0]]), np.eye(1), "softmax", 1.0)
    assert info.value.key == "query"


def test_worked_example():
    fwd = attend(EXAMPLE_QUERY, EXAMPLE_KEYS, EXAMPLE_VALUES, "argmax", 1.0)
    np.testing.assert_array_equal(fwd.scores, [[-2.0, 3.0, 0.0, 6.0]])
    np.testing.assert_array_equal(fwd.weights, [[0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(fwd.outputs, [[6.0, 1.0, 2.0]])
    assert not fwd.selection.ties[0]
    soft = attend(EXAMPLE_QUERY, EXAMPLE_KEYS, EXAMPLE_VALUES, "softmax", 1.0)
    ref_S, ref_W, ref_O = ref_attention(EXAMPLE_QUERY, EXAMPLE_KEYS, EXAMPLE_VALUES,
                                        ref_softmax, 1.0)
    np.testing.assert_array_equal(ref_S, [[-2.0, 3.0, 0.0, 6.0]])
    assert_close(soft.weights, ref_W, kind="reference")
    assert_close(soft.outputs, ref_O, kind="reference")
    # sparsemax of (-2, 3, 0, 6): τ = 5 puts all the weight on key 3
    sparse = attend(EXAMPLE_QUERY, EXAMPLE_KEYS, EXAMPLE_VALUES, "sparsemax", 1.0)
    np.testing.assert_array_equal(sparse.outputs, [[6.0, 1.0, 2.0]])


@pytest.mark.parametrize("seed", [0, 7])
def test_softmax_attention_against_torch(seed):
    torch = pytest.importorskip("torch")
    Q, K, V, U = problem(seed, size=1.0)
    scale = 1.0 / math.sqrt(d)
    fwd = attend(Q, K, V, "softmax", scale)
    grads = attend_backward(Q, K, V, fwd, U, scale)
    q, k, v = (torch.tensor(a[None], requires_grad=True) for a in (Q, K, V))  # (1, ·, ·)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(d)
    out.backward(torch.tensor(U[None]))
    assert out.dtype == torch.float64
    assert_close(fwd.outputs, out.detach().numpy()[0])
    assert_close(grads.query, q.grad.numpy()[0])
    assert_close(grads.keys, k.grad.numpy()[0])
    assert_close(grads.values, v.grad.numpy()[0])


# ---------------------------------------------------------------------------------------
# attend_report: the report of `seqtool attend`


def report_for(query=EXAMPLE_QUERY, keys=EXAMPLE_KEYS, values=None, **options):
    Q, K = np.atleast_2d(np.asarray(query, float)), np.asarray(keys, float)
    V = K if values is None else np.asarray(values, float)
    return attend_report(Q, K, V, example=keys is EXAMPLE_KEYS, **options)


def assert_support_and_ties_consistent(report):
    assert report.support == [np.flatnonzero(row > 0).tolist() for row in report.weights]
    assert len(report.ties) == len(report.weights)
    data = report.to_dict()
    assert data["support"] == report.support and data["ties"] == report.ties
    np.testing.assert_array_equal(np.array(data["weights"]), report.weights)


def test_report_argmax_ties():
    # scores: query 0 → (1, 0, 1), a tie won by key 0; query 1 → (0, 1, 0)
    report = report_for(query=[[1.0, 0.0], [0.0, 1.0]], keys=[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
                        selector="argmax")
    np.testing.assert_array_equal(report.scores, [[1, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(report.weights, [ref_argmax(r) for r in report.scores])
    assert report.support == [[0], [1]]
    assert report.ties == [True, False]
    assert any("tie" in note and "query 0" in note for note in report.notes)
    assert_support_and_ties_consistent(report)


def test_report_topk_boundary_tie():
    # scores: query 0 → (3, 1, 1): the 2nd and 3rd tie at the boundary; query 1 → (−3, −1, −1)
    report = report_for(query=[[1.0], [-1.0]], keys=[[3.0], [1.0], [1.0]], selector="topk",
                        params={"k": 2})
    assert_close(report.weights, [ref_topk(r, 2) for r in report.scores], kind="reference")
    assert report.support == [[0, 1], [1, 2]]
    assert report.ties == [True, False]
    assert report.params == {"k": 2, "temperature": 1.0}
    assert any("k-th largest" in note for note in report.notes)
    assert_support_and_ties_consistent(report)


def test_report_sparsemax_support():
    Q, K, V, _ = problem(8, size=1.5)
    report = report_for(query=Q, keys=K, values=V, selector="sparsemax", scale="sqrt")
    assert report.scale == 0.5 and report.scale_rule == "sqrt"
    _, ref_W, ref_O = ref_attention(Q, K, V, ref_sparsemax, 0.5)
    assert_close(report.weights, ref_W, kind="reference")
    assert_close(report.outputs, ref_O, kind="reference")
    assert report.support == [np.flatnonzero(row > 0).tolist() for row in ref_W]
    assert any(len(s) < n for s in report.support)  # really sparse
    assert report.ties == [False] * m
    assert_support_and_ties_consistent(report)


def test_report_worked_example_with_gradients():
    report = report_for(values=EXAMPLE_VALUES, selector="argmax", upstream=np.array([1.0, 0, 0]))
    assert report.example
    np.testing.assert_array_equal(report.scores, [[-2.0, 3.0, 0.0, 6.0]])
    np.testing.assert_array_equal(report.outputs, [[6.0, 1.0, 2.0]])
    assert report.support == [[3]] and report.ties == [False]
    assert report.gradient == "zero"
    np.testing.assert_array_equal(report.gradients.query, [[0.0, 0.0]])
    np.testing.assert_array_equal(report.gradients.keys, np.zeros((4, 2)))
    np.testing.assert_array_equal(report.gradients.values,
                                  [[0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]])
    assert_support_and_ties_consistent(report)


def test_report_reads_only_its_selectors_params():
    Q, K, V, _ = problem(9)
    report = attend_report(Q, K, V, selector="entmax", scale="sqrt",
                           params={"temperature": 3.0, "alpha": 2.0, "k": 99, "seed": 4})
    assert report.params == {"alpha": 2.0}
    assert report.scale == 0.5 and report.scale_rule == "sqrt"
    _, ref_W, ref_O = ref_attention(Q, K, V, ref_sparsemax, 0.5)  # α = 2 is sparsemax
    assert_close(report.weights, ref_W, kind="reference")
    assert_close(report.outputs, ref_O, kind="reference")
    assert report.gradients is None and report.upstream is None
    with pytest.raises(InputError) as info:  # no selector can use T = 0
        attend_report(Q, K, V, selector="entmax", params={"temperature": 0.0})
    assert info.value.key == "temperature"
    with pytest.raises(InputError) as info:
        attend_report(Q, K, V, selector="entmx")
    assert info.value.key == "selector"


def test_report_gradients_default_to_ones_upstream():
    Q, K, V, _ = problem(10)
    report = attend_report(Q, K, V, selector="softmax", grad=True)
    np.testing.assert_array_equal(report.upstream, np.ones((m, d_v)))
    fwd = attend(Q, K, V, "softmax", 1.0)
    ref = attend_backward(Q, K, V, fwd, np.ones((m, d_v)), 1.0)
    for name in ("query", "keys", "values", "scores"):
        np.testing.assert_array_equal(getattr(report.gradients, name), getattr(ref, name))


def test_report_rows_are_one_per_query_and_key():
    report = report_for(query=[[3.0, -1.0], [1.0, 2.0]], selector="sparsemax")
    rows = report.rows()
    assert len(rows) == 2 * 4
    assert [list(row) for row in rows] == [report.columns()] * 8
    assert report.columns() == ["query", "key", "score", "weight"]
    assert [(row["query"], row["key"]) for row in rows] == [(j, i) for j in range(2)
                                                            for i in range(4)]
    assert all(type(row["query"]) is int and type(row["score"]) is float for row in rows)
    np.testing.assert_array_equal([row["score"] for row in rows], report.scores.ravel())
    np.testing.assert_array_equal([row["weight"] for row in rows], report.weights.ravel())
    assert [row["weight"] for row in rows[4:]] == [1.0, 0.0, 0.0, 0.0]  # scores 11, 1, 7, 2
