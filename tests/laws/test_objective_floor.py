"""A trial point that predicts a loss <= 0 must not stop a fit: the objective stays
finite there and its slope points back (the CPT fit once returned a flat 1e30 there,
and L-BFGS-B stopped at its start)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize

from rewarm.laws import areas
from rewarm.laws.fit import _Problem, make_law
from rewarm.laws.staged import _instant_objective, refine_instant_drop

from .test_fit import synthetic


def _instant_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.linspace(0.1, 6.0, 200)
    drop = np.where(s > 4.0, 2e-4, 0.0)
    loss = 3.0 + 0.6 * s**-0.45 - 350.0 * drop
    return s, drop, loss


def test_instant_drop_refinement_leaves_a_start_that_predicts_negative_losses() -> None:
    s, drop, loss = _instant_data()
    start = np.array([3.0, 0.6, 0.45, 3e4])  # B 100x too large: loss < 0 after the drop
    assert np.any(start[0] + start[1] * s ** -start[2] - start[3] * drop <= 0)
    f = _instant_objective(s, drop, loss, 1e-3)
    assert np.isfinite(f(start)) and f(start) < 1e29
    q = refine_instant_drop(start, s, drop, loss, 1e-3)
    assert abs(q[3] - 350.0) / 350.0 < 0.05 and f(q) < 1e-3 * f(start)


def test_fit_objective_has_a_slope_where_every_prediction_is_negative() -> None:
    curves = [synthetic("step", total=3000, warmup=200)]
    prob = _Problem(make_law("mpl"), curves, 1e-3, {})
    p = {"L0": 0.0, "A": 1e-6, "alpha": 0.5, "B": 1e8, "C": 1.0, "beta": 0.5, "gamma": 0.5}
    z = prob.pack(p)
    with torch.no_grad():
        pred = prob.predict({k: areas.as_tensor(v) for k, v in p.items()})
    assert bool(torch.all(pred[-10:] <= 0))
    f0, g = prob.value_and_grad(z)
    assert np.isfinite(f0) and f0 < 1e29 and np.linalg.norm(g) > 0
    res = minimize(prob.value_and_grad, z, jac=True, method="L-BFGS-B", bounds=prob.bounds())
    assert res.fun < 1e-2 * f0
