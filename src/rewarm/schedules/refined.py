"""The refined schedule (Defazio et al. 2023, "When, Why and How Much? Adaptive Learning
Rate Scheduling by Refinement", arXiv 2310.07831), as the authors' code computes it
(facebookresearch/adaptive_scheduling: `find_closed_form_schedule` and the smoothing
of its `visual.py`).

From a previous run's per-step gradient norms g_1..g_n:

1. Smoothing. Resample the norms (linear interpolation) to 10,000 points when there
   are fewer; median-filter them with a window of 1001 points (10% of 10,000),
   padding only the right end, by reflection, with two windows' worth of points
   (the left end is read as its nearest value); resample the result to 10,000
   points. With `resample = false` the norms are filtered as given (n points).
2. Weights by optimizer. Adam-type (per-coordinate) optimizers, the default because
   rewarm trains with AdamW: w_t = G_t^-1 with G the smoothed L1 norm of the
   gradient (the trainer logs it as `grad_norm_l1`). SGD: w_t = G_t^-2 with G the
   smoothed L2 norm (`grad_norm`).
3. Closed form: m_t proportional to w_t * sum_{p > t} w_p, normalised to a peak of 1;
   m at the last point is 0.

Large early norms give a warmup and the vanishing tail sum a fast final anneal,
both without being asked for. The schedule's points are spread evenly over the
stage (point i at position i T / (N - 1)) and interpolated linearly between.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from rewarm.schedules.decays import Body

POINTS = 10_000
"""The grid the authors smooth and solve on (`nvals`)."""
EXPONENT = {"adamw": 1.0, "sgd": 2.0}
"""w_t = G_t^-k: per-coordinate (L1 norm) vs SGD (L2 norm)."""


def _resample(values: np.ndarray, points: int) -> np.ndarray:
    return np.interp(np.linspace(0.0, 1.0, points), np.linspace(0.0, 1.0, values.size), values)


def smooth_norms(norms: np.ndarray, window: int, resample: bool = True) -> np.ndarray:
    """The authors' smoothing (step 1 of the module docstring)."""
    g = np.asarray(norms, dtype=np.float64)
    if resample and g.size < POINTS:
        g = _resample(g, POINTS)
    if window > 1:
        pad = 2 * window
        padded = np.pad(g, (0, pad), mode="reflect")
        g = ndimage.median_filter(padded, size=window, mode="nearest")[:-pad]
    return _resample(g, POINTS) if resample else g


def closed_form(weights: np.ndarray) -> np.ndarray:
    """m_t = w_t * sum_{p > t} w_p, normalised to a peak of 1 (m at the end is 0)."""
    tail = np.concatenate([np.cumsum(weights[::-1])[::-1][1:], [0.0]])
    m = weights * tail
    return m / m.max()


def refined_multipliers(
    grad_norms: list[float], window: int, optimizer: str = "adamw", resample: bool = True
) -> np.ndarray:
    """The normalised refined schedule over its grid (peak 1, last value 0)."""
    g = smooth_norms(np.asarray(grad_norms, dtype=np.float64), window, resample)
    return closed_form(g ** -EXPONENT[optimizer])


def default_window(spec: dict[str, Any], total: float) -> int:
    """1001 (10% of the 10,000 resampled points); resample = false: 10% of the norms, odd"""
    n = POINTS if spec["resample"] else len(spec["grad_norms"])
    return 2 * (n // 10 // 2) + 1


def refined(spec: dict[str, Any], total: float) -> Body:
    m = refined_multipliers(
        spec["grad_norms"], spec["median_window"], spec["optimizer"], spec["resample"]
    )
    grid = np.linspace(0.0, total, len(m))
    return lambda t: np.interp(t, grid, m)
