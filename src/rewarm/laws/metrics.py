"""Goodness of fit of a predicted loss curve (Luo et al. 2025 report PredE/WorstE).

R^2 = 1 - sum (y - p)^2 / sum (y - mean y)^2;  MAE = mean |y - p|;
RMSE = sqrt(mean (y - p)^2);  PredE = mean |y - p| / y;  WorstE = max |y - p| / y.
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
