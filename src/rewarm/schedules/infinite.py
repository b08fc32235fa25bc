"""The infinite schedule (Ibrahim et al. 2024; Singh et al. 2025, whose code defines it).

Phases, with W = warmup, C = cooldown_end, A = anneal_start, T = the stage's length:

- warmup 0 -> 1 over [0, W] (applied by `Schedule`, from warmup_start);
- cooldown 1 -> c over [W, C], q = (t - W) / (C - W), shape cosine (default), linear or
  inverse-sqrt: m = 1 + (c - 1) g(q) / g(1), g(x) = 1 / sqrt(1 + 10 x) - 1;
- constant c on [C, A] (to the stage's end when A is absent);
- anneal c -> f over [A, T], r = (t - A) / (T - A), exponential (default):
  m = c (f / c)^r, or linear, or cosine.

A later stage with warmup = cooldown_end = 0 and the same c continues the constant
phase; the anneal can start from any checkpoint of it, so the run needs no fixed budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import rewarm.schedules.shapes as shapes
from rewarm.schedules.decays import Body, progress


def infinite(spec: dict[str, Any], total: float) -> Body:
    w, c_end, c = spec["warmup"], spec["cooldown_end"], spec["constant_ratio"]
    cool = shapes.COOLDOWN_SHAPES[spec["cooldown_shape"]]
    anneal = shapes.ANNEAL_SHAPES[spec["anneal_shape"]]
    a_start = spec.get("anneal_start")
    f = spec["final_ratio"]

    def body(t: np.ndarray) -> np.ndarray:
        # A zero-length cooldown has already ended: the body is c from W on.
        if c_end > w:
            m = np.where(t < c_end, cool(progress(t, w, c_end), 1.0, c), c)
        else:
            m = np.full_like(t, c)
        if a_start is not None and a_start < total:
            m = np.where(t > a_start, anneal(progress(t, a_start, total), c, f), m)
        return m

    return body
