"""Goodness of fit of a predicted loss curve (Luo et al. 2025 report PredE/WorstE).

R^2 = 1 - sum (y - p)^2 / sum (y - mean y)^2;  MAE = mean |y - p|;
RMSE = sqrt(mean (y - p)^2);  PredE = mean |y - p| / y;  WorstE = max |y - p| / y.

Two summaries over several held-out curves: "pooled" scores all their points as one
set (`fit_metrics` of the concatenation), "curve mean" averages each metric over the
curves (`curve_mean`), so every curve weighs the same and WorstE is the mean of the
per-curve maxima. The paper's published PredE / WorstE are curve means: its
released parameters reproduce them exactly that way (docs/laws.md).
"""

from __future__ import annotations

import numpy as np


def fit_metrics(actual: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    y = np.asarray(actual, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    err = p - y
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return {
        "r2": 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan"),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "pred_e": float(np.mean(np.abs(err) / y)),
        "worst_e": float(np.max(np.abs(err) / y)),
        "points": int(y.size),
    }


def curve_mean(per_curve: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each metric averaged over curves (points: their total)."""
    rows = list(per_curve.values())
    if not rows:
        raise ValueError("no curves to average")
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "points"}
    out["points"] = int(sum(r["points"] for r in rows))
    return out
