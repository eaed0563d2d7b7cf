"""The selectors against loop-only references, finite differences and their own identities;
the registry: every entry's backward pass against finite differences, unknown names, params."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness import assert_close
from naive import (
    numeric_grad, ref_argmax, ref_entmax, ref_entmax_threshold, ref_softmax, ref_sparsemax,
    ref_sparsemax_threshold, ref_topk,
)
from seqtool.core import selectors
from seqtool.core.errors import InputError
from seqtool.core.selectors import (
    entmax, entmax_bisect, get_selector, gumbel_noise, resolve_params, select, selector_names,
)

# ---------------------------------------------------------------------------------------
# Strategies and helpers

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)
# (rows, n) with 1..4 rows of 1..12 scores each
score_matrices = st.tuples(st.integers(1, 4), st.integers(1, 12)).flatmap(
    lambda shape: arrays(np.float64, shape, elements=finite)
)
HUGE = [
    np.array([[1e6, -1e6, 0.0]]),
    np.array([[-1e6, 1e6, 1e6]]),
    np.array([[1e6, 1e6 - 1e-9, -1e6, 0.0]]),
    np.array([[-1e6, -1e6, -1e6]]),
    np.array([[5.0]]),
]


def with_huge_examples(test):
    """Add the explicit huge-score rows to a property of ``scores``."""
    for scores in HUGE:
        test = example(scores=scores)(test)
    return test


def with_huge_examples_and_k(test):
    """Add the explicit huge-score rows, with k = 1 and k = n, to a (scores, k) property."""
    for scores in HUGE:
        test = example(scores=scores, k=1)(test)
        test = example(scores=scores, k=scores.shape[-1])(test)
    return test


def per_row(ref, scores, *args):
    """Apply a one-row reference to every row of a (rows, n) matrix."""
    return np.array([ref(row, *args) for row in scores])


def resolvable(scores, alpha):
    """Whether float64 bisection can reach |Σw − 1| ≤ 1e-12 (see ENTMAX_UNREACHABLE below).

    For α > 2 the mass Σ[x_i − τ]₊^{1/(α−1)} is steepest where some x_i − τ is small:
    with every x_i − τ on the support above 1e-6, one ulp of τ (≤ 1.1e-16) moves the mass
    by at most 12 · ½(1e-6)^{−½} · 1.1e-16 ≈ 7e-13 < 1e-12 (α = 3). For α ≤ 2 it always can.
    """
    if alpha <= 2.0:
        return True
    for row in scores:
        tau, x = ref_entmax_threshold(row, alpha)
        if min(v - tau for v in x if v > tau) <= 1e-6:
            return False
    return True


# Sensible parameters for every selector (and a few more alphas of entmax).
CASES = [
    ("softmax", dict(temperature=0.7)),
    ("argmax", {}),
    ("sparsemax", {}),
    ("entmax", dict(alpha=1.5)),
    ("entmax", dict(alpha=1.2)),
    ("entmax", dict(alpha=2.0)),
    ("entmax", dict(alpha=3.0)),
    ("topk", dict(temperature=2.0)),  # k is drawn
    ("gumbel", dict(temperature=0.5, seed=1)),
    ("gumbel", dict(temperature=0.5, seed=1, hard=True)),
    ("st-argmax", dict(temperature=0.3)),
]


def test_cases_cover_every_selector():
    assert {name for name, _ in CASES} == set(selector_names())
    assert selector_names() == ("softmax", "argmax", "sparsemax", "entmax", "topk", "gumbel",
                                "st-argmax")


# ---------------------------------------------------------------------------------------
# Properties of every selector


@pytest.mark.parametrize("name, params", CASES, ids=[f"{n}-{p}" for n, p in CASES])
@settings(max_examples=100, deadline=None)
@given(scores=score_matrices, k=st.integers(1, 12))
@with_huge_examples_and_k
def test_weights_are_a_distribution(name, params, scores, k):
    if name == "topk":
        params = dict(params, k=min(k, scores.shape[-1]))
    if name == "entmax":
        assume(resolvable(scores, params["alpha"]))  # else: test_entmax_bisection_answers...
    sel = select(name, scores, **params)
    w = sel.weights
    assert w.shape == scores.shape
    assert np.all(np.isfinite(w))
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=0, atol=1e-9)
    assert sel.ties.shape == scores.shape[:-1] and sel.ties.dtype == bool


@settings(max_examples=100, deadline=None)
@given(scores=score_matrices, k=st.integers(1, 12))
@with_huge_examples_and_k
def test_selectors_equal_loop_references(scores, k):
    k = min(k, scores.shape[-1])
    assert_close(select("softmax", scores, temperature=0.7).weights,
                 per_row(ref_softmax, scores, 0.7), kind="reference")
    assert_close(select("sparsemax", scores).weights, per_row(ref_sparsemax, scores),
                 kind="reference")
    assert_close(select("topk", scores, k=k, temperature=2.0).weights,
                 per_row(ref_topk, scores, k, 2.0), kind="reference")
    np.testing.assert_array_equal(select("argmax", scores).weights, per_row(ref_argmax, scores))
    np.testing.assert_array_equal(select("st-argmax", scores).weights,
                                  per_row(ref_argmax, scores))


@settings(max_examples=100, deadline=None)
@given(scores=score_matrices)
@with_huge_examples
def test_sparsemax_is_the_projection_onto_the_simplex(scores):
    """The sort-based sparsemax equals the bisection projection (no sorting) and is optimal:
    w_i = max(z_i − τ, 0) with one τ per row."""
    comp = selectors.sparsemax(scores)
    ref = per_row(ref_sparsemax, scores)
    assert_close(comp, ref, kind="reference")
    for row, w in zip(scores, comp):
        tau, x = ref_sparsemax_threshold(row)
        assert_close(w, np.maximum(np.array(x) - tau, 0.0), kind="reference")


@settings(max_examples=100, deadline=None)
@given(scores=score_matrices)
@with_huge_examples
def test_entmax_alpha_2_is_sparsemax(scores):
    assert_close(entmax(scores, 2.0), selectors.sparsemax(scores), kind="reference")
    assert_close(select("entmax", scores, alpha=2.0).weights, per_row(ref_sparsemax, scores),
                 kind="reference")


@settings(max_examples=100, deadline=None)
@given(scores=score_matrices)
@with_huge_examples
def test_entmax15_exact_equals_reference_and_bisection(scores):
    comp = entmax(scores, 1.5)  # the sort-based exact path
    assert_close(comp, per_row(ref_entmax, scores, 1.5), kind="reference")
    assert_close(comp, entmax_bisect(scores, 1.5), kind="reference")


@pytest.mark.parametrize("alpha", [1.2, 1.7, 2.0, 3.0])
@settings(max_examples=100, deadline=None)
@given(scores=score_matrices)
@with_huge_examples
def test_entmax_bisection_sums_to_one_before_normalising(alpha, scores):
    # the loop reference's own raw bisection meets the 1e-12 bound on these rows, and
    # seqtool's bisection agrees with it
    assume(resolvable(scores, alpha))  # the rest: test_entmax_bisection_answers_every_valid_alpha
    comp = entmax_bisect(scores, alpha)
    for row in scores:
        raw = ref_entmax(row, alpha, normalise=False)
        assert abs(raw.sum() - 1.0) <= 1e-12
    assert_close(comp, per_row(ref_entmax, scores, alpha), kind="reference")


@pytest.mark.parametrize("alpha", [1.2, 1.7, 3.0])
@pytest.mark.parametrize("offset", [1e6, 1e12, -1e15])
def test_entmax_bisection_is_as_exact_far_from_zero(alpha, offset):
    """Scores far from 0 that differ by small amounts give the weights of the same scores
    near 0: the shift by the row's max comes before the scale by α − 1, which rounded at
    the scores' magnitude (1.2e-10 relative at 1e6, ~1e-4 at 1e12)."""
    near = np.array([[0.0, -0.5, -0.5, -0.25], [0.5, 0.5, -1.0, 0.0]])
    far = near + offset  # exact: every entry is a multiple of 0.25 below 2^53 · 0.25
    np.testing.assert_array_equal(far - offset, near)
    assert_close(entmax_bisect(far, alpha), per_row(ref_entmax, near, alpha), kind="reference")
    np.testing.assert_allclose(entmax_bisect(far, alpha), entmax_bisect(near, alpha),
                               rtol=0, atol=1e-15)


# Rows where float64 cannot bring |Σw − 1| to 1e-12 before normalisation although the answer
# is well defined: one ulp of τ moves the mass by ~ulp·Σ_i (1/(α−1))(x_i − τ)^{1/(α−1) − 1},
# ~1e-12 or more (a) for α near 1 and (b) for α > 2 when a score lies just inside the support
# boundary. entmax_bisect must still answer them (it once raised RunError).
# Expected values: 50-digit bisection (mpmath) for the first row; the
# normalised loop reference (itself within 2e-12 of it there) for the others.
ENTMAX_UNREACHABLE = [
    (3.0, [0.5, 2.0**-14, 2.0**-14],
     [0.99993896344670218557, 3.0518276648907214427e-05, 3.0518276648907214427e-05]),
    (1.0001, [0.0, 0.0], [0.5, 0.5]),
    (1.00001, [0.3, -0.2, 0.1], None),
]


@pytest.mark.parametrize("alpha, row, expected", ENTMAX_UNREACHABLE)
def test_entmax_bisection_answers_every_valid_alpha(alpha, row, expected):
    if expected is None:
        expected = ref_entmax(row, alpha)
    assert_close(ref_entmax(row, alpha), expected, kind="reference")  # the reference is right here
    assert_close(select("entmax", np.array(row), alpha=alpha).weights, expected,
                 kind="reference")


def test_entmax_near_one_approaches_softmax():
    """α-entmax → softmax as α → 1. Measured at normal(0, 2) scores, n = 6: max |Δw| is
    8e-4 at α = 1.001 (asserted ≤ 2e-3) and shrinks about tenfold per tenfold step of α − 1."""
    scores = np.random.default_rng(0).normal(size=(200, 6)) * 2.0
    soft = per_row(ref_softmax, scores)
    gaps = [float(np.abs(entmax(scores, 1.0 + eps) - soft).max()) for eps in (1e-1, 1e-2, 1e-3)]
    assert gaps[2] <= 2e-3
    assert gaps[0] > 5 * gaps[1] > 25 * gaps[2]


@settings(max_examples=100, deadline=None)
@given(scores=score_matrices)
@with_huge_examples
def test_topk_with_k_n_is_softmax(scores):
    n = scores.shape[-1]
    for T in (0.5, 1.0, 3.0):
        comp = select("topk", scores, k=n, temperature=T).weights
        assert_close(comp, per_row(ref_softmax, scores, T), kind="reference")
        assert_close(comp, select("softmax", scores, temperature=T).weights, kind="reference")


@settings(max_examples=100, deadline=None)
@given(scores=score_matrices)
@with_huge_examples
def test_softmax_at_tiny_temperature_is_argmax(scores):
    top2 = -np.sort(-scores, axis=-1)[:, :2]
    gap = top2[:, 0] - top2[:, 1] if scores.shape[-1] > 1 else np.full(len(scores), np.inf)
    assume(np.all(gap >= 0.05))  # a unique maximum: the others get ≤ n·e^{−50}
    w = select("softmax", scores, temperature=1e-3).weights
    np.testing.assert_allclose(w, per_row(ref_argmax, scores), rtol=0, atol=1e-18)


def test_softmax_at_tiny_temperature_splits_a_tied_maximum():
    w = select("softmax", np.array([1.0, 3.0, 3.0]), temperature=1e-3).weights
    np.testing.assert_allclose(w, [0.0, 0.5, 0.5], rtol=0, atol=1e-300)


# ---------------------------------------------------------------------------------------
# Backward passes


def kink_margin(name, row, params):
    """Distance of the scores from the nearest point where the selector is not smooth."""
    if name == "sparsemax" or (name == "entmax" and params["alpha"] == 2.0):
        tau, x = ref_sparsemax_threshold(row)
        return min(abs(v - tau) for v in x)
    if name == "entmax":
        tau, x = ref_entmax_threshold(row, params["alpha"])
        return min(abs(v - tau) for v in x)
    if name == "topk" and params["k"] < len(row):
        s = np.sort(row)[::-1]
        return s[params["k"] - 1] - s[params["k"]]
    return np.inf  # softmax and gumbel are smooth everywhere


SMOOTH_CASES = [
    ("softmax", dict(temperature=0.6)),
    ("softmax", dict(temperature=2.5)),
    ("sparsemax", {}),
    ("entmax", dict(alpha=1.5)),
    ("entmax", dict(alpha=1.3)),
    ("entmax", dict(alpha=2.0)),
    ("topk", dict(k=2, temperature=0.8)),
    ("topk", dict(k=4, temperature=1.0)),
    ("gumbel", dict(temperature=0.7, seed=5)),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name, params", SMOOTH_CASES,
                         ids=[f"{n}-{p}" for n, p in SMOOTH_CASES])
def test_vjp_matches_finite_differences(name, params, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(3, 6)) * 0.5  # (rows, n); small: sparse supports of 2+
    g = rng.normal(size=scores.shape)
    for row in scores:
        assert kink_margin(name, row, params) > 1e-3  # ε = 1e-6 never crosses a kink
    sel = select(name, scores, **params)
    comp = sel.vjp(g)
    numeric = numeric_grad(lambda s: np.sum(g * select(name, s, **params).weights), scores)
    assert_close(comp, numeric, kind="finite-difference")
    assert np.abs(numeric).max() > 1e-3  # a real gradient, not 0 = 0
    if name != "gumbel":  # every row of Jᵀg sums to 0: the weights' sum does not move
        np.testing.assert_allclose(comp.sum(axis=-1), 0.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_argmax_vjp_is_exactly_zero(seed):
    rng = np.random.default_rng(seed)
    scores, g = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    sel = select("argmax", scores)
    assert sel.gradient == "zero"
    comp = sel.vjp(g)
    assert comp.shape == scores.shape and np.all(comp == 0)
    numeric = numeric_grad(lambda s: np.sum(g * select("argmax", s).weights), scores)
    assert np.all(numeric == 0)  # piecewise constant away from ties


@pytest.mark.parametrize("T", [0.4, 1.0, 3.0])
def test_st_argmax_vjp_is_softmax_vjp(T):
    rng = np.random.default_rng(7)
    scores, g = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    st_sel = select("st-argmax", scores, temperature=T)
    assert st_sel.gradient == "surrogate"
    np.testing.assert_array_equal(st_sel.weights, per_row(ref_argmax, scores))
    np.testing.assert_array_equal(st_sel.vjp(g), select("softmax", scores, temperature=T).vjp(g))


@pytest.mark.parametrize("seed", [0, 3, 11])
def test_gumbel_hard_and_soft(seed):
    rng = np.random.default_rng(100 + seed)
    scores, g = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    T = 0.8
    soft = select("gumbel", scores, temperature=T, seed=seed)
    hard = select("gumbel", scores, temperature=T, seed=seed, hard=True)
    # the noise, recomputed from its definition: G = −log(−log U), U from default_rng(seed)
    u = np.random.default_rng(seed).random(scores.shape)
    noise = -np.log(-np.log(u))
    np.testing.assert_array_equal(soft.noise, noise)
    np.testing.assert_array_equal(hard.noise, noise)
    np.testing.assert_array_equal(gumbel_noise(scores.shape, seed), noise)
    assert_close(soft.weights, per_row(ref_softmax, scores + noise, T), kind="reference")
    np.testing.assert_array_equal(hard.weights, per_row(ref_argmax, scores + noise))
    assert (soft.gradient, hard.gradient) == ("exact", "surrogate")
    np.testing.assert_array_equal(hard.vjp(g), soft.vjp(g))
    # the same seed gives the same bits; another seed other noise
    np.testing.assert_array_equal(select("gumbel", scores, seed=seed).noise, noise)
    assert not np.array_equal(select("gumbel", scores, seed=seed + 1).noise, noise)


def test_softmax_vjp_divides_by_temperature():
    """Jᵀg of softmax(s/T) is w ⊙ (g − w·g)/T, written out for one row."""
    s, g, T = np.array([0.2, -1.0, 0.7]), np.array([1.0, -2.0, 0.5]), 2.5
    w = ref_softmax(s, T)
    ref = np.array([w[i] * (g[i] - sum(w[j] * g[j] for j in range(3))) / T for i in range(3)])
    assert_close(select("softmax", s, temperature=T).vjp(g), ref, kind="reference")


# ---------------------------------------------------------------------------------------
# Ties


def test_argmax_tie_picks_lowest_index_and_says_so():
    sel = select("argmax", np.array([1.0, 3.0, 3.0]))
    np.testing.assert_array_equal(sel.weights, [0.0, 1.0, 0.0])
    assert sel.ties.shape == () and bool(sel.ties) is True
    rows = select("argmax", np.array([[1.0, 3.0, 3.0], [1.0, 3.0, 2.0], [4.0, 4.0, 4.0]]))
    np.testing.assert_array_equal(rows.weights, [[0, 1, 0], [0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(rows.ties, [True, False, True])
    st_sel = select("st-argmax", np.array([1.0, 3.0, 3.0]))
    np.testing.assert_array_equal(st_sel.weights, [0.0, 1.0, 0.0])
    assert bool(st_sel.ties) is True


@pytest.mark.parametrize("row, k, kept, tie", [
    ([1.0, 3.0, 3.0], 1, [1], True),  # 3 = 3 at the boundary: index 1 kept, 2 dropped
    ([5.0, 3.0, 3.0], 2, [0, 1], True),
    ([5.0, 3.0, 3.0], 1, [0], False),  # the tie is inside the dropped part
    ([3.0, 3.0, 1.0], 2, [0, 1], False),  # the tie is inside the kept part
    ([3.0, 3.0, 3.0], 3, [0, 1, 2], False),  # k = n: nothing dropped
    ([2.0, 0.0, 2.0, 2.0], 2, [0, 2], True),
])
def test_topk_boundary_tie(row, k, kept, tie):
    sel = select("topk", np.array(row), k=k, temperature=1.0)
    np.testing.assert_array_equal(np.flatnonzero(sel.weights > 0), kept)
    assert bool(sel.ties) is tie
    assert_close(sel.weights, ref_topk(row, k, 1.0), kind="reference")


def test_soft_selectors_report_no_ties():
    row = np.array([1.0, 3.0, 3.0])
    for name in ("softmax", "sparsemax", "entmax", "gumbel"):
        assert bool(select(name, row).ties) is False, name


# ---------------------------------------------------------------------------------------
# Bad parameters


def raises_input_error(key, **kwargs):
    scores = kwargs.pop("scores", np.array([0.5, -1.0, 2.0]))
    with pytest.raises(InputError) as info:
        select(scores=scores, **kwargs)
    assert info.value.key == key
    return info.value


@pytest.mark.parametrize("name", ["softmx", "ARGMAX", "", "entmax15"])
def test_unknown_selector(name):
    error = raises_input_error("selector", name=name)
    assert name in str(error) and "sparsemax" in str(error)


@pytest.mark.parametrize("name", ["softmax", "topk", "gumbel", "st-argmax"])
@pytest.mark.parametrize("temperature", [0.0, -1.0, -1e-300, float("nan"), float("inf")])
def test_bad_temperature(name, temperature):
    raises_input_error("temperature", name=name, temperature=temperature)


@pytest.mark.parametrize("alpha", [1.0, 0.5, -2.0, float("nan"), float("inf")])
def test_bad_alpha(alpha):
    raises_input_error("alpha", name="entmax", alpha=alpha)


@pytest.mark.parametrize("k", [0, -1, 4, 10, 1.5, True])
def test_bad_k(k):
    error = raises_input_error("k", name="topk", k=k)
    assert "1..3" in str(error)


def test_good_edge_parameters_are_accepted():
    row = np.array([0.5, -1.0, 2.0])
    assert_close(select("topk", row, k=3).weights, ref_softmax(row), kind="reference")
    assert_close(select("topk", row, k=1).weights, [0.0, 0.0, 1.0], kind="reference")
    assert_close(select("topk", row).weights, ref_topk(row, 2), kind="reference")  # default k = 2
    assert_close(select("entmax", row, alpha=1.0 + 1e-2).weights, ref_entmax(row, 1.01),
                 kind="reference")


def test_topk_mask_equals_the_stable_sort_definition_under_heavy_ties():
    """The O(n) partition path keeps exactly what a stable sort would (lowest index first)."""
    from seqtool.core.selectors import topk_mask

    rng = np.random.default_rng(11)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        k = int(rng.integers(1, n + 1))
        scores = rng.integers(0, 3, size=(2, n)).astype(float)
        mask, ties = topk_mask(scores, k)
        for row, got, tie in zip(scores, mask, ties):
            order = np.argsort(-row, kind="stable")
            expected = np.zeros(n, dtype=bool)
            expected[order[:k]] = True
            assert np.array_equal(got, expected)
            assert tie == (k < n and row[order[k - 1]] == row[order[k]])


# ---------------------------------------------------------------------------------------
# The registry: every entry, whatever its name


# Parameter settings beyond the defaults that change a selector's maps.
VARIANTS = {
    "softmax": [dict(temperature=0.6), dict(temperature=2.5)],
    "entmax": [dict(alpha=1.3), dict(alpha=2.0)],
    "topk": [dict(k=4, temperature=0.8)],
    "gumbel": [dict(temperature=0.7, seed=5), dict(seed=2, hard=True)],
    "st-argmax": [dict(temperature=0.4)],
}
REGISTRY_CASES = [(name, params) for name in selector_names()
                  for params in [{}, *VARIANTS.get(name, [])]]


def smooth_point(smooth, rng, shape=(3, 6), delta=1e-4):
    """Scores where ``smooth`` keeps its support (and argmax) under every ±delta move of one
    score, so that a central difference with ε = 1e-6 never crosses a kink."""
    for _ in range(100):
        s = rng.normal(size=shape) * 0.5
        w = smooth(s)
        pattern, top = w > 0, w.argmax(axis=-1)
        if (pattern.sum(axis=-1) < 2).any():
            continue  # a single-key support is locally constant: 0 = 0 proves nothing
        moved = [smooth(s + sign * delta * np.eye(s.size)[i].reshape(shape))
                 for i in range(s.size) for sign in (-1, 1)]
        if all(np.array_equal(m > 0, pattern) and np.array_equal(m.argmax(axis=-1), top)
               for m in moved):
            return s
    raise AssertionError("no kink-free scores found")


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("name, params", REGISTRY_CASES,
                         ids=[f"{n}-{p}" for n, p in REGISTRY_CASES])
def test_every_registered_backward_is_the_jacobian_of_its_soft_map(name, params, seed):
    """exact: Jᵀg of the forward map; surrogate: Jᵀg of the entry's soft map; zero: 0."""
    entry = get_selector(name)
    rng = np.random.default_rng(seed)
    used = resolve_params(name, 6, params)
    kind = entry.gradient_kind(used)
    assert kind in ("exact", "zero", "surrogate")
    if entry.soft is not None:
        soft = lambda s: entry.soft(s, **used)  # noqa: E731
    else:
        soft = lambda s: select(name, s, **params).weights  # noqa: E731
    if kind == "zero":
        s, g = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
        comp = select(name, s, **params).vjp(g)
        assert comp.shape == s.shape and np.all(comp == 0)
        assert np.all(numeric_grad(lambda x: np.sum(g * soft(x)), s) == 0)
        return
    s = smooth_point(soft, rng)
    g = rng.normal(size=s.shape)
    sel = select(name, s, **params)
    if kind == "exact":
        np.testing.assert_array_equal(sel.weights, soft(s))
    comp = sel.vjp(g)
    numeric = numeric_grad(lambda x: np.sum(g * soft(x)), s)
    assert np.abs(numeric).max() > 1e-3  # a real gradient
    assert_close(comp, numeric, kind="finite-difference")


def test_gradient_kinds_of_the_built_ins():
    kinds = {name: get_selector(name).gradient_kind(resolve_params(name, 4))
             for name in selector_names()}
    assert kinds == {"softmax": "exact", "argmax": "zero", "sparsemax": "exact",
                     "entmax": "exact", "topk": "exact", "gumbel": "exact",
                     "st-argmax": "surrogate"}
    assert get_selector("gumbel").gradient_kind(resolve_params("gumbel", 4, {"hard": True})) \
        == "surrogate"


def test_resolve_params_reads_exactly_what_each_selector_reads():
    given = {"temperature": 2.0, "alpha": 1.7, "k": None, "seed": 3, "hard": True}
    assert resolve_params("softmax", 5, given) == {"temperature": 2.0}
    assert resolve_params("argmax", 5, given) == {}
    assert resolve_params("entmax", 5, given) == {"alpha": 1.7}
    assert resolve_params("topk", 5, given) == {"k": 2, "temperature": 2.0}
    assert resolve_params("topk", 1, given) == {"k": 1, "temperature": 2.0}  # k ≤ n
    assert resolve_params("gumbel", 5, given) == {"temperature": 2.0, "seed": 3, "hard": True}
    assert resolve_params("topk", 5) == {"k": 2, "temperature": 1.0}  # the defaults
    assert list(resolve_params("topk", 5, {"temperature": 3, "k": 4})) == ["k", "temperature"]


def test_resolve_params_checks():
    # a temperature or alpha no selector could use is refused even where it is not read
    with pytest.raises(InputError) as info:
        resolve_params("argmax", 3, {"temperature": 0.0})
    assert info.value.key == "temperature"
    with pytest.raises(InputError) as info:
        resolve_params("softmax", 3, {"alpha": 1.0})
    assert info.value.key == "alpha"
    # k's bound is the number of keys of topk: other selectors ignore it
    assert resolve_params("softmax", 3, {"k": 9}) == {"temperature": 1.0}
    with pytest.raises(InputError) as info:
        resolve_params("topk", 3, {"k": 9})
    assert "1..3" in str(info.value)
    with pytest.raises(InputError) as info:
        resolve_params("softmax", 3, {"beta": 1.0})
    assert info.value.key == "beta"
    for key, value in (("seed", -1), ("seed", 1.5), ("hard", "yes")):
        with pytest.raises(InputError) as info:
            resolve_params("gumbel", 3, {key: value})
        assert info.value.key == key


@pytest.mark.parametrize("name, hint", [("softmx", "softmax"), ("st_argmax", "st-argmax"),
                                        ("uniform", None)])
def test_unknown_selector_is_an_input_error_with_a_hint(name, hint):
    for call in (lambda: get_selector(name), lambda: select(name, np.zeros(3)),
                 lambda: resolve_params(name, 3)):
        with pytest.raises(InputError) as info:
            call()
        message = str(info.value)
        assert info.value.key == "selector" and f"is '{name}'" in message
        if hint:
            assert f"(did you mean {hint}?)" in message
        else:
            assert "did you mean" not in message
        assert message.endswith(
            "choose one of softmax, argmax, sparsemax, entmax, topk, gumbel, st-argmax")


def test_register_and_unregister():
    from seqtool.core.selectors import (
        Forward, Param, Selector, register_selector, registered, unregister_selector,
    )

    def halves(s):  # w = (½, ½) on two keys, whatever the scores
        return Forward(np.full_like(s, 1.0 / s.shape[-1]))

    entry = Selector("halves", halves, lambda fwd, g: np.zeros_like(g), (), "exact")
    with registered(entry):
        assert selector_names()[-1] == "halves"
        np.testing.assert_array_equal(select("halves", np.array([3.0, -1.0])).weights, [0.5, 0.5])
        with pytest.raises(ValueError, match="already registered"):
            register_selector(entry)
    assert "halves" not in selector_names()
    with pytest.raises(InputError):
        unregister_selector("halves")
    # a parameter name means one thing for every selector
    clash = Param("temperature", 2.0, lambda v, n: v, "another temperature")
    with pytest.raises(ValueError, match="differs"):
        register_selector(Selector("hot", halves, None, (clash,), "zero"))
    with pytest.raises(ValueError, match="gradient"):
        register_selector(Selector("odd", halves, None, (), "approximate"))
    assert "hot" not in selector_names() and "odd" not in selector_names()
    # a new parameter joins the table while its selector is registered, and leaves with it
    beta = Param("beta", 0.5, lambda v, n: float(v), "a new parameter")
    with registered(Selector("beta-halves", lambda s, beta: halves(s), None, (beta,), "zero")):
        assert resolve_params("beta-halves", 2, {"beta": 2}) == {"beta": 2.0}
        assert resolve_params("softmax", 2, {"beta": 2}) == {"temperature": 1.0}
    with pytest.raises(InputError):
        resolve_params("softmax", 2, {"beta": 2})
