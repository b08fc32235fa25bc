"""WSM merge weights (Tian et al. 2025): the mapping between decay multipliers and
checkpoint weights, and the shapes it is applied to."""

from __future__ import annotations

import numpy as np
import pytest

from rewarm.mitigate.wsm import (
    decay_multipliers,
    merge_weights,
    multipliers_from_weights,
    weights_from_multipliers,
)


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_linear_decay_is_the_uniform_mean(n):
    # The paper's mapping: c_0 = 1 - w_1, c_j = w_j - w_{j+1}, c_k = w_k; for the linear
    # decay w_i = 1 - i/n over n snapshots every c_j is 1/n.
    np.testing.assert_allclose(merge_weights("linear", n), np.full(n, 1.0 / n), atol=1e-15)


def test_weights_follow_the_papers_formulas_for_any_decay():
    w = np.array([0.9, 0.7, 0.2, 0.05])
    c = weights_from_multipliers(w)
    assert c[0] == pytest.approx(1 - w[0])
    for j in range(1, 4):
        assert c[j] == pytest.approx(w[j - 1] - w[j])
    assert c[4] == pytest.approx(w[3])
    assert c.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(multipliers_from_weights(c), w)


@pytest.mark.parametrize("shape", ["cosine", "1-sqrt", "square", "exponential", "harmonic"])
def test_every_shape_gives_a_convex_combination_emulating_it(shape):
    c = merge_weights(shape, 8)
    assert np.all(c >= -1e-15) and c.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(multipliers_from_weights(c), decay_multipliers(shape, 8))


def test_one_minus_sqrt_weights_the_oldest_snapshot_most():
    # 1-sqrt drops fastest at the start of the decay: the first update is damped most.
    c = merge_weights("1-sqrt", 5)
    assert c[0] == pytest.approx(np.sqrt(1 / 5))
    assert c.argmax() == 0


def test_increasing_multipliers_are_refused():
    with pytest.raises(ValueError, match="non-increasing"):
        weights_from_multipliers(np.array([0.5, 0.6]))
