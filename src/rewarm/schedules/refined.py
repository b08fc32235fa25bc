"""The refined schedule (Defazio et al. 2023, "When, Why and How Much? Adaptive Learning
Rate Scheduling by Refinement").

From a previous run's per-step gradient norms g_1..g_n (median-filtered over a window of
k steps), weights w_t = g_t^-2 and

    m_t  proportional to  w_t * sum_{p > t} w_p / sum_p w_p,

normalised so that max_t m_t = 1. Large early norms give a warmup and the vanishing tail
sum a fast final anneal, both without being asked for. The n values are spread evenly
over the stage (value i at position i T / (n - 1)) and interpolated linearly between.
For Adam the paper derives the weights from L1 norms of the update; which norm to log
is the user's choice (unverified detail of the paper, see docs/schedules.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewarm.schedules.decays import Body


def median_filter(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median; the window shrinks at the ends instead of padding."""
    if window <= 1:
        return values.copy()
    half = window // 2
    n = len(values)
    return np.array([np.median(values[max(0, i - half) : min(n, i + half + 1)]) for i in range(n)])


def refined_multipliers(grad_norms: list[float], window: int) -> np.ndarray:
    """The normalised refined schedule m_1..m_n (peak 1, last value 0)."""
    g = median_filter(np.asarray(grad_norms, dtype=np.float64), window)
    w = g**-2.0
    # sum_{p > t} w_p: the reversed cumulative sum, shifted by one.
    tail = np.concatenate([np.cumsum(w[::-1])[::-1][1:], [0.0]])
    m = w * tail / w.sum()
    return m / m.max()


def default_window(spec: dict[str, Any], total: float) -> int:
    """1% of the norms, >= 1"""
    return max(1, len(spec["grad_norms"]) // 100)


def refined(spec: dict[str, Any], total: float) -> Body:
    m = refined_multipliers(spec["grad_norms"], spec["median_window"])
    grid = np.linspace(0.0, total, len(m))
    return lambda t: np.interp(t, grid, m)
