"""Prediction intervals from leave-one-curve-out fits (jackknife+ over curves).

A law is fitted K times, each time without one of its K curves; fold k's model
mu_k predicts its left-out curve, whose signed relative errors
e = actual / mu_k - 1 show how wrong a fit is on a curve it did not see. At a new
point x, fold k proposes the values mu_k(x) * (1 + e) for every e of its left-out
curve, each fold weighing the same; the interval is the central `level` range of
all proposals (Barber et al. 2021, "Predictive inference with the jackknife+",
with curves as the exchangeable units, since points within a curve are not
independent). It widens where the fold models disagree (extrapolation) and follows
the error distribution of whole held-out curves, which is what a new schedule is.
The fit on all curves gives the central prediction; the interval always contains it.

Too few curves give no interval: K = 1 has no fold at all.
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.9
"""Nominal coverage of the intervals `predict` and `plan` print."""
QUANTILES = 64
"""Each fold's errors are summarised by this many quantiles (enough for a 90% band)."""


def summarise(errors: np.ndarray, n: int = QUANTILES) -> np.ndarray:
    """`n` evenly spaced quantiles (mid-points) of one fold's relative errors."""
    e = np.asarray(errors, dtype=np.float64)
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
    the (summarised) left-out relative errors `fold_errors[k]`."""
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
    q_lo, q_hi = (1 - level) / 2, (1 + level) / 2
    lo, hi = np.empty_like(centre), np.empty_like(centre)
    for a in range(0, centre.size, chunk):
        b = min(centre.size, a + chunk)
        vals = np.concatenate([p[a:b, None] * (1.0 + e[None, :]) for p, e in folds], axis=1)
        order = np.argsort(vals, axis=1)
        cum = np.cumsum(weights[order], axis=1)
        rows = np.arange(b - a)
        i_lo = np.minimum((cum < q_lo).sum(axis=1), vals.shape[1] - 1)
        i_hi = np.minimum((cum < q_hi).sum(axis=1), vals.shape[1] - 1)
        lo[a:b] = vals[rows, order[rows, i_lo]]
        hi[a:b] = vals[rows, order[rows, i_hi]]
    return np.minimum(lo, centre), np.maximum(hi, centre)


def coverage(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of `actual` inside [lo, hi]."""
    a = np.asarray(actual, dtype=np.float64)
    return float(np.mean((a >= lo) & (a <= hi)))
