"""WSM, warmup-stable-and-merge: checkpoint merge weights from a decay shape (no torch).

Tian et al. 2025 (arXiv 2507.17634, "WSM: Decay-Free Learning Rate Schedule via
Checkpoint Merging for LLM Pre-training"): at a constant LR, checkpoints
theta_{n+j} = theta_n - eta * sum_{i<=j} g_{n+i-1} (j = 0..k) merged with weights c_j
(sum 1) give, to first order,

    sum_j c_j theta_{n+j} = theta_n - eta * sum_{i=1..k} w_i g_{n+i-1},
    w_i = sum_{j>=i} c_j,

a decay whose multiplier of the i-th update is w_i. Conversely, any non-increasing
1 >= w_1 >= ... >= w_k >= 0 is reached by c_0 = 1 - w_1, c_j = w_j - w_{j+1},
c_k = w_k. A uniform mean (c_j = 1 / (k + 1)) is a linear decay.

`merge_weights(shape, n)` merges n = k + 1 snapshots: w_i = shape(i / n, 1, 0), the
decay shape of `rewarm.schedules.shapes` from 1 to 0 sampled after each of the k
updates, so that "linear" gives exactly the uniform mean. Shapes that need a positive
end (exponential, harmonic) decay to `floor` instead of 0.
"""

from __future__ import annotations

import numpy as np

from rewarm.schedules.shapes import DECAY_SHAPES, NEEDS_POSITIVE_END

POSITIVE_FLOOR = 0.01
"""End value of shapes that cannot reach 0 (exponential, harmonic)."""


def decay_multipliers(shape: str, n: int) -> np.ndarray:
    """w_1..w_{n-1}: the decay `shape` from 1 to 0 at progress i / n (float64)."""
    if n < 1:
        raise ValueError(f"merge of {n} snapshots")
    end = POSITIVE_FLOOR if shape in NEEDS_POSITIVE_END else 0.0
    p = np.arange(1, n, dtype=np.float64) / n
    return np.asarray(DECAY_SHAPES[shape](p, 1.0, end), dtype=np.float64)


def weights_from_multipliers(w: np.ndarray) -> np.ndarray:
    """c_0..c_k from non-increasing w_1..w_k in [0, 1] (Tian et al. 2025, the inverse map)."""
    w = np.asarray(w, dtype=np.float64)
    if np.any(w < 0) or np.any(w > 1) or np.any(np.diff(w) > 0):
        raise ValueError("decay multipliers must be non-increasing and in [0, 1]")
    padded = np.concatenate(([1.0], w, [0.0]))
    return padded[:-1] - padded[1:]


def multipliers_from_weights(c: np.ndarray) -> np.ndarray:
    """w_1..w_k = sum_{j>=i} c_j: the decay a merge with weights c_0..c_k amounts to."""
    c = np.asarray(c, dtype=np.float64)
    return np.cumsum(c[::-1])[::-1][1:]


def merge_weights(shape: str, n: int) -> np.ndarray:
    """Weights c_0..c_{n-1} (oldest first, sum 1) of n snapshots emulating `shape`."""
    return weights_from_multipliers(decay_multipliers(shape, n))
