"""Classic one-phase decays after warmup, as vectorised bodies.

A body maker takes a resolved spec and the schedule's length T and returns
`body(t) -> m`, a function of absolute positions `t` (float64 array, t >= W) that
`Schedule` uses after the warmup. Decays run over [W, T] with p = (t - W) / (T - W).
Formulas: `docs/schedules.md`; sources in each docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import rewarm.schedules.shapes as shapes

Body = Callable[[np.ndarray], np.ndarray]


def progress(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """Progress through the phase [start, end], clipped to [0, 1]; a phase of zero length
    has not started (p = 0), so an empty decay means no decay."""
    if end <= start:
        return np.zeros_like(t)
    return np.clip((t - start) / (end - start), 0.0, 1.0)


def with_warmup(body: Body, total: float, warmup: float, start: float) -> Body:
    """The whole multiplier m(t) for positions clamped to [0, total]: `body` from the
    warmup's end W on, and before it the linear ramp m = s0 + (m(W) - s0) t / W from
    s0 = `start` to the body's value at W (Goyal et al. 2017)."""

    def evaluate(t: np.ndarray) -> np.ndarray:
        # Unused np.where branches may divide by zero or overflow; their values are dropped.
        with np.errstate(all="ignore"):
            return np.asarray(body(t), dtype=np.float64)

    target = float(evaluate(np.array([warmup]))[0])

    def values(positions: np.ndarray) -> np.ndarray:
        t = np.clip(np.asarray(positions, dtype=np.float64), 0.0, total)
        m = evaluate(t)
        if warmup > 0:
            ramp = start + (target - start) * (t / warmup)
            m = np.where(t < warmup, ramp, m)
        return m

    return values


def decay_body(shape: shapes.Shape, spec: dict[str, Any], total: float) -> Body:
    """m = shape(p, 1, f) over [W, T]."""
    start, f = spec["warmup"], spec["final_ratio"]
    return lambda t: shape(progress(t, start, total), 1.0, f)


def constant(spec: dict[str, Any], total: float) -> Body:
    """m = 1."""
    return lambda t: np.ones_like(t)


def linear(spec: dict[str, Any], total: float) -> Body:
    """m = f + (1 - f)(1 - p). Defazio et al. 2023 show it matches or beats cosine."""
    return decay_body(shapes.linear, spec, total)


def cosine(spec: dict[str, Any], total: float) -> Body:
    """m = f + (1 - f)(1 + cos(pi p)) / 2 (Loshchilov & Hutter 2017, without restarts)."""
    return decay_body(shapes.cosine, spec, total)


def polynomial(spec: dict[str, Any], total: float) -> Body:
    """m = f + (1 - f)(1 - p)^power."""
    return decay_body(shapes.polynomial(spec["power"]), spec, total)


def exponential(spec: dict[str, Any], total: float) -> Body:
    """m = f^p: geometric interpolation from 1 to f (f > 0)."""
    return decay_body(shapes.exponential, spec, total)


def rex(spec: dict[str, Any], total: float) -> Body:
    """m = f + (1 - f)(1 - p) / (1 - p / 2) (Chen et al. 2022, "REX")."""
    return decay_body(shapes.rex, spec, total)


def one_cycle(spec: dict[str, Any], total: float) -> Body:
    """Smith & Topin 2019: the warmup is the rise from warmup_start to the peak; then
    anneal to f with `shape` (cosine as in PyTorch's OneCycleLR, or linear as in Smith)."""
    return decay_body(shapes.DECAY_SHAPES[spec["shape"]], spec, total)


def inverse_sqrt(spec: dict[str, Any], total: float) -> Body:
    """m = sqrt(tau / max(t, tau)), tau = timescale (the warmup length by default;
    Vaswani et al. 2017). tau >= W keeps m(W) = 1."""
    tau = spec["timescale"]
    return lambda t: np.sqrt(tau / np.maximum(t, tau))


def step(spec: dict[str, Any], total: float) -> Body:
    """m = gamma^floor(t / step_size): milestones at every multiple of step_size."""
    gamma, size = spec["gamma"], spec["step_size"]
    return lambda t: gamma ** np.floor(t / size)


def multistep(spec: dict[str, Any], total: float) -> Body:
    """m = gamma^(number of milestones <= t)."""
    gamma = spec["gamma"]
    milestones = np.asarray(spec["milestones"], dtype=np.float64)
    return lambda t: gamma ** np.searchsorted(milestones, t, side="right").astype(np.float64)
