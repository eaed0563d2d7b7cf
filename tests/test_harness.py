"""The comparison every numeric test uses must itself fail when it should."""

import numpy as np
import pytest

from harness import assert_close, relative, tolerance


def test_relative_error_is_scaled_by_the_reference():
    assert relative([1.0, 2.0 + 2e-6], [1.0, 2.0]) == pytest.approx(1e-6)
    assert relative([0.0], [0.0]) == 0.0


def test_assert_close_passes_within_and_fails_beyond_the_dtype_tolerance():
    ref = np.array([1.0, -3.0, 0.5])
    assert_close(ref * (1 + 1e-13), ref)
    with pytest.raises(AssertionError, match="relative error"):
        assert_close(ref * (1 + 1e-9), ref)
    as32 = (ref * (1 + 1e-6)).astype(np.float32)
    assert_close(as32, ref)  # float32 is judged by float32's tolerance
    with pytest.raises(AssertionError):
        assert_close(as32, ref, dtype=np.float64)
    assert_close(ref + 1e-8, ref, kind="finite-difference")
    assert tolerance(np.float32) > tolerance(np.float64)


def test_assert_close_refuses_mismatched_shapes_and_misplaced_nan():
    with pytest.raises(AssertionError, match="shapes"):
        assert_close(np.zeros(3), np.zeros(4))
    with pytest.raises(AssertionError, match="NaN"):
        assert_close([np.nan, 1.0], [1.0, 1.0])
    assert_close([np.nan, 1.0], [np.nan, 1.0])
