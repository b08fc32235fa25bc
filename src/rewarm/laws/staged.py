"""The Multi-Power Law's published two-stage fit (Luo et al. 2025, arXiv 2503.12811).

Stage 1, "instant drop": with G = 1 (every LR drop after warmup fully realised at
once) MPL is

    L(t) = L0 + A * (S1(t) + S_W)^-alpha - B * (eta_W - eta_t),   eta_W: LR at warmup's end

which is linear in (L0, A, B) for a fixed alpha. For each alpha on a grid the three
come from non-negative least squares on the loss; the best grid point is refined
by L-BFGS-B on the same Huber(log residual) objective as the full fit.

Stage 2, a short Adam refinement of all seven parameters on that objective, from
the stage-1 values and C = 1, beta = 0.5, gamma = 0.5, in the parameters' own
units: step size 5e-2 for the scale parameters (L0, A, B, C) and 5e-3 for the
exponents (alpha, beta, gamma), at most 200 steps, stopping after 20 steps
without improvement and keeping the best point seen. These are the settings of
the paper's released fitting code.

Why not optimise to convergence: the fitted curves (24,000 steps) leave the
long-horizon shape of LD under-determined. Run to convergence, the objective
drives beta towards 0 and B up ~7x (a logarithmic kernel) and extrapolates 3x
longer schedules worse (see docs/laws.md). The short refinement keeps B near its
stage-1 value, the fully realised drop per unit LR decrease (5e-2 per step
against B ~ 400), and moves the exponents by at most 1: in effect a strong prior,
and the procedure behind the paper's published held-out errors. Deterministic: no
randomness and a fixed number of floating-point operations.

`fit(method="paper")` replicates the released code more literally: the law with
the warmup inside LD (`MPLaw(warmup_ld=True)`) and AdamW's default weight decay of
0.01. `method="staged"` keeps the law exactly as written in the paper (t counted from
the end of warmup) and plain Adam.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import minimize, nnls

from rewarm.laws import areas

ALPHA_GRID = np.round(np.arange(0.05, 1.5001, 0.01), 10)
START = {"C": 1.0, "beta": 0.5, "gamma": 0.5}
SCALE_LR, SHAPE_LR = 5e-2, 5e-3
SCALE_PARAMS = ("L0", "A", "B", "C")
FLOOR = 1e-3
"""Below FLOOR times the observed loss, log(prediction) continues linearly (`safe_log`)."""


def _huber_np(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def instant_drop_fit(
    s_total: np.ndarray, drop: np.ndarray, loss: np.ndarray, delta: float
) -> dict[str, float]:
    """Stage 1: (L0, A, alpha, B) of `L0 + A s^-alpha - B drop` (s = S1 + S_W,
    drop = eta_0 - eta_t at each observed point) under Huber(log residual)."""
    objective = _instant_objective(s_total, drop, loss, delta)
    best: tuple[float, np.ndarray] | None = None
    for alpha in ALPHA_GRID:
        mat = np.stack([np.ones_like(s_total), s_total ** (-alpha), -drop], 1)
        scale = np.maximum(np.abs(mat).max(0), 1e-300)
        coef, _ = nnls(mat / scale, loss)
        q = np.array([coef[0] / scale[0], coef[1] / scale[1], alpha, coef[2] / scale[2]])
        f = objective(q)
        if best is None or f < best[0]:
            best = (f, q)
    assert best is not None
    q = refine_instant_drop(best[1], s_total, drop, loss, delta)
    return {"L0": float(q[0]), "A": float(q[1]), "alpha": float(q[2]), "B": float(q[3])}


def safe_log(pred: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """log(pred) above `floor`, continued below it by its tangent there, so a trial
    point that predicts a loss near or below zero gets a finite objective whose
    slope points back (a 1e30 wall instead has no slope, and a finite-difference
    or autograd gradient there is zero or meaningless)."""
    return np.log(np.maximum(pred, floor)) + (np.minimum(pred, floor) - floor) / floor


def _instant_objective(
    s_total: np.ndarray, drop: np.ndarray, loss: np.ndarray, delta: float
) -> Callable[[np.ndarray], float]:
    log_y, floor = np.log(loss), FLOOR * loss

    def objective(q: np.ndarray) -> float:
        pred = q[0] + q[1] * s_total ** (-q[2]) - q[3] * drop
        return float(np.mean(_huber_np(safe_log(pred, floor) - log_y, delta))) / delta**2

    return objective


def refine_instant_drop(
    q0: np.ndarray, s_total: np.ndarray, drop: np.ndarray, loss: np.ndarray, delta: float
) -> np.ndarray:
    """L-BFGS-B on stage 1's objective from `q0` = (L0, A, alpha, B); `q0` if no better."""
    objective = _instant_objective(s_total, drop, loss, delta)
    res = minimize(
        objective,
        q0,
        method="L-BFGS-B",
        bounds=[(0.0, None), (0.0, None), (1e-3, 5.0), (0.0, None)],
        options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-9},
    )
    return np.asarray(res.x if res.fun <= objective(q0) else q0)


def adam_refine(
    objective: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    start: dict[str, float],
    bounds: dict[str, tuple[float, float]],
    steps: int = 200,
    patience: int = 20,
    weight_decay: float = 0.0,
) -> tuple[dict[str, float], float]:
    """Stage 2: Adam on `objective(dict of scalar tensors)`, parameters in their own
    units and kept within `bounds`; returns the best point seen and its value.
    `weight_decay` > 0 is AdamW's decoupled decay (the released code's optimiser is
    torch's AdamW with its default 0.01)."""
    p = {k: torch.tensor(float(v), dtype=areas.DTYPE, requires_grad=True) for k, v in start.items()}
    opt = torch.optim.AdamW(
        [
            {"params": [p[k] for k in p if k in SCALE_PARAMS], "lr": SCALE_LR},
            {"params": [p[k] for k in p if k not in SCALE_PARAMS], "lr": SHAPE_LR},
        ],
        weight_decay=weight_decay,
    )
    best_f, best_p, run_min, stale = float("inf"), dict(start), float("inf"), 0
    for _ in range(steps):
        opt.zero_grad()
        f = objective(p)
        fv = float(f.detach())
        if not np.isfinite(fv):
            break
        if fv < best_f:
            best_f, best_p = fv, {k: float(v.detach()) for k, v in p.items()}
        if fv < run_min:
            run_min, stale = fv, 0
        else:
            stale += 1
            if stale >= patience:
                break
        f.backward()
        opt.step()
        with torch.no_grad():
            for k, v in p.items():
                v.clamp_(*bounds[k])
    return best_p, best_f
