"""Jackknife+ intervals over held-out fits (`laws.intervals`)."""

from __future__ import annotations

import numpy as np
import pytest

from rewarm.laws import intervals


def test_one_fold_with_a_constant_error_gives_that_band() -> None:
    centre = np.array([2.0, 3.0])
    errors = intervals.summarise(np.array([0.01, -0.01, 0.01]))  # |e| = 1% everywhere
    lo, hi = intervals.band(centre, [centre], [errors])
    np.testing.assert_allclose(lo, centre * 0.99)
    np.testing.assert_allclose(hi, centre * 1.01)


def test_band_widens_where_folds_disagree_and_contains_the_centre() -> None:
    centre = np.array([1.0, 1.0, 1.0])
    # two folds agree at the first point and disagree by 10% at the last
    preds = [np.array([1.0, 1.0, 0.95]), np.array([1.0, 1.02, 1.05])]
    errors = [intervals.summarise(np.zeros(5)), intervals.summarise(np.zeros(5))]
    lo, hi = intervals.band(centre, preds, errors, level=0.9)
    assert hi[0] - lo[0] == pytest.approx(0.0)
    assert lo[2] == pytest.approx(0.95) and hi[2] == pytest.approx(1.05)
    assert np.all(lo <= centre) and np.all(hi >= centre)
    # no fold at all: no interval
    lo, hi = intervals.band(centre, [], [])
    assert np.array_equal(lo, centre) and np.array_equal(hi, centre)


def test_nominal_coverage_on_exchangeable_curves() -> None:
    # Curves whose level differs by a random factor: jackknife+ over curves covers a new
    # curve's points about as often as it says.
    rng = np.random.default_rng(0)
    inside = []
    for _ in range(200):
        scale = 1.0 + 0.02 * rng.standard_normal(6)  # 5 fitted curves and a new one
        fits = [np.full(10, np.mean(np.delete(scale[:5], k))) for k in range(5)]
        errors = [intervals.summarise(np.full(10, scale[k] / fits[k][0] - 1)) for k in range(5)]
        lo, hi = intervals.band(np.full(10, scale[:5].mean()), fits, errors, level=0.9)
        inside.append(intervals.coverage(np.full(10, scale[5]), lo, hi))
    assert np.mean(inside) >= 0.8
