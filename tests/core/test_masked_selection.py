"""Selection over a padded batch (seqtool.core.selectors.masked): padded steps get weight 0
and gradient 0 for every selector, whatever they hold, and each row's real steps get what
the selector gives that row alone."""

from __future__ import annotations

import numpy as np
import pytest

from seqtool.core.errors import InputError
from seqtool.core.selectors import select, selector_names
from seqtool.core.selectors.masked import select_rows

LENGTHS = np.array([7, 3, 1, 5, 3, 7])
RANDOM = ("gumbel",)  # noise drawn per call: compared by its properties, not row by row


def padded_scores(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = rng.normal(scale=2.0, size=(len(LENGTHS), LENGTHS.max()))
    for b, n in enumerate(LENGTHS):  # garbage in the padding: it must never matter
        s[b, n:] = [np.nan, np.inf, -np.inf, 1e300, -7.0, 0.0][: s.shape[1] - n]
    return s


@pytest.mark.parametrize("name", selector_names())
def test_padded_steps_get_no_weight_and_no_gradient(name):
    s = padded_scores()
    chosen = select_rows(name, s, LENGTHS, seed=3)
    g = np.random.default_rng(1).normal(size=s.shape)
    grad = chosen.vjp(g)
    for b, n in enumerate(LENGTHS):
        assert np.all(chosen.weights[b, n:] == 0.0) and np.all(grad[b, n:] == 0.0), (name, b)
        assert np.all(np.isfinite(chosen.weights[b])) and np.all(np.isfinite(grad[b]))
        assert abs(chosen.weights[b, :n].sum() - 1.0) < 1e-12
        if name in RANDOM:
            continue
        alone = select(name, s[b:b + 1, :n], seed=3)
        np.testing.assert_allclose(chosen.weights[b, :n], alone.weights[0], rtol=1e-14,
                                   atol=1e-300)
        np.testing.assert_allclose(grad[b, :n], alone.vjp(g[b:b + 1, :n])[0], rtol=1e-12,
                                   atol=1e-15)


def test_top_k_on_a_row_shorter_than_k_keeps_the_whole_row():
    s = padded_scores()
    chosen = select_rows("topk", s, LENGTHS, k=4)
    for b, n in enumerate(LENGTHS):
        kept = np.count_nonzero(chosen.weights[b])
        assert kept == min(4, n), (b, n, kept)


def test_a_gradient_through_the_rows_matches_finite_differences():
    """∂(Σ g ⊙ w)/∂s by central differences on the real steps (sparsemax, softmax)."""
    s = padded_scores(2)
    s[np.isnan(s) | np.isinf(s) | (np.abs(s) > 1e10)] = 0.0
    g = np.random.default_rng(5).normal(size=s.shape)
    for name in ("softmax", "sparsemax"):
        analytic = select_rows(name, s, LENGTHS).vjp(g)
        eps = 1e-6
        for b, n in enumerate(LENGTHS):
            for t in range(s.shape[1]):
                up, down = s.copy(), s.copy()
                up[b, t] += eps
                down[b, t] -= eps
                numeric = (np.sum(g * select_rows(name, up, LENGTHS).weights)
                           - np.sum(g * select_rows(name, down, LENGTHS).weights)) / (2 * eps)
                assert abs(numeric - analytic[b, t]) < 1e-6, (name, b, t)


@pytest.mark.parametrize("scores, lengths", [
    (np.zeros((2, 3)), np.array([1, 4])),
    (np.zeros((2, 3)), np.array([0, 2])),
    (np.zeros(3), np.array([3])),
    (np.zeros((2, 3)), np.array([1, 2, 3])),
])
def test_bad_shapes_and_lengths_are_input_errors(scores, lengths):
    with pytest.raises(InputError):
        select_rows("softmax", scores, lengths)


@pytest.mark.parametrize("temperature", [0.25, 3.0])
def test_softmax_rows_follow_their_temperature(temperature):
    # the softmax's own kernels (seqtool.core.selectors.masked_kernels), row by row
    s = padded_scores(3)
    g = np.random.default_rng(4).normal(size=s.shape)
    chosen = select_rows("softmax", s, LENGTHS, temperature=temperature)
    grad = chosen.vjp(g)
    for b, n in enumerate(LENGTHS):
        alone = select("softmax", s[b:b + 1, :n], temperature=temperature)
        np.testing.assert_allclose(chosen.weights[b, :n], alone.weights[0], rtol=1e-14)
        np.testing.assert_allclose(grad[b, :n], alone.vjp(g[b:b + 1, :n])[0], rtol=1e-12,
                                   atol=1e-15)


def test_a_nan_among_a_rows_real_scores_makes_that_row_nan():
    # as NumPy's max would: the training loop's guard then stops the run
    s = padded_scores(6)
    s[1, 1] = np.nan
    w = select_rows("softmax", s, LENGTHS).weights
    assert np.isnan(w[1, :LENGTHS[1]]).all()
    assert np.isfinite(np.delete(w, 1, axis=0)).all()
