"""Prediction intervals from held-out fits: jackknife+ (Barber et al. 2021, "Predictive
inference with the jackknife+") with curves, not points, as the exchangeable units,
since the points of one curve are not independent.

A law is refitted K times, each fit k holding out data it then predicts (a curve, or
the later part of every curve; `laws.select`, `laws.cpt_fit`); fit k's relative
residuals there, R = |actual / mu_k - 1|, show how wrong a fit is on what it did not
see. At a new point x the interval runs from the (1 - level) quantile of the values
mu_k(x) * (1 - R) to the `level` quantile of mu_k(x) * (1 + R), over every fit k and
every residual of it, each fit weighing the same (jackknife+ takes each side's
quantile at the full 1 - level; its coverage guarantee is 1 - 2 (1 - level) in the
worst case and about `level` in practice). It widens where the fits disagree
(extrapolation) and follows the errors on whole held-out curves, which is what a
new schedule is. The fit on all the data gives the central prediction; the interval
always contains it.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.9
"""Nominal coverage of the intervals `predict` and `plan` print."""
QUANTILES = 64
"""Each fold's errors are summarised by this many quantiles (enough for a 90% band)."""


def summarise(errors: np.ndarray, n: int = QUANTILES) -> np.ndarray:
    """`n` evenly spaced quantiles (mid-points) of one fold's absolute relative errors."""
    e = np.abs(np.asarray(errors, dtype=np.float64))
    e = e[np.isfinite(e)]
    if e.size == 0:
        return np.zeros(0)
    return np.quantile(e, (np.arange(n) + 0.5) / n)


def band(
    centre: np.ndarray,
    fold_preds: list[np.ndarray],
    fold_errors: list[np.ndarray],
    level: float = LEVEL,
    chunk: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) at each point of `centre`: fold k predicts `fold_preds[k]` there and has
    the (summarised) held-out absolute relative errors `fold_errors[k]`."""
    centre = np.asarray(centre, dtype=np.float64)
    folds = [
        (np.asarray(p, dtype=np.float64), e)
        for p, e in zip(fold_preds, fold_errors, strict=True)
        if e.size
    ]
    if not folds:
        return centre.copy(), centre.copy()
    # equal weight per fold, spread over its error quantiles
    weights = np.concatenate([np.full(e.size, 1.0 / (len(folds) * e.size)) for _, e in folds])
    lo, hi = np.empty_like(centre), np.empty_like(centre)
    for a in range(0, centre.size, chunk):
        b = min(centre.size, a + chunk)
        down = np.concatenate([p[a:b, None] * (1.0 - e[None, :]) for p, e in folds], axis=1)
        up = np.concatenate([p[a:b, None] * (1.0 + e[None, :]) for p, e in folds], axis=1)
        lo[a:b] = _weighted_quantile(down, weights, 1.0 - level)
        hi[a:b] = _weighted_quantile(up, weights, level)
    return np.minimum(lo, centre), np.maximum(hi, centre)


def _weighted_quantile(vals: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Per row of `vals` (rows, m), the smallest value whose cumulative weight >= q."""
    order = np.argsort(vals, axis=1)
    cum = np.cumsum(weights[order], axis=1)
    idx = np.minimum((cum < q - 1e-12).sum(axis=1), vals.shape[1] - 1)
    rows = np.arange(vals.shape[0])
    return vals[rows, order[rows, idx]]


def coverage(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of `actual` inside [lo, hi]."""
    a = np.asarray(actual, dtype=np.float64)
    return float(np.mean((a >= lo) & (a <= hi)))
