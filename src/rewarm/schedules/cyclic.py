"""Periodic schedules: cosine with warm restarts and Smith's triangular cycles."""

from __future__ import annotations

from typing import Any

import numpy as np

import rewarm.schedules.shapes as shapes
from rewarm.schedules.decays import Body


def cosine_restarts(spec: dict[str, Any], total: float) -> Body:
    """SGDR (Loshchilov & Hutter 2017): after the warmup, cosine cycles from 1 to f of
    lengths P, P*mult, P*mult^2, ...; each cycle restarts at the peak.

    Cycle i starts at u_i = P (mult^i - 1) / (mult - 1) (u_i = i P when mult = 1), with
    u = t - W. The last point of a cycle belongs to it (m = f there), the next point
    restarts at 1.
    """
    w, period, mult, f = spec["warmup"], spec["period"], spec["period_mult"], spec["final_ratio"]

    def body(t: np.ndarray) -> np.ndarray:
        u = np.maximum(t - w, 0.0)
        if mult == 1.0:
            i = np.ceil(u / period) - 1.0
            start = i * period
            length = np.full_like(u, period)
        else:
            i = np.ceil(np.log1p(u * (mult - 1.0) / period) / np.log(mult)) - 1.0
            # The log can land one cycle off at an exact cycle end; step back or forward.
            for _ in range(2):
                start = period * (mult**i - 1.0) / (mult - 1.0)
                i = np.where(start >= u, i - 1.0, i)
                i = np.where(start + period * mult**i < u, i + 1.0, i)
            start = period * (mult**i - 1.0) / (mult - 1.0)
            length = period * mult**i
        i = np.maximum(i, 0.0)
        start = np.where(u <= 0.0, 0.0, start)
        length = np.where(u <= 0.0, period, length)
        p = np.clip((u - start) / length, 0.0, 1.0)
        return shapes.cosine(p, 1.0, f)

    return body


def triangular(spec: dict[str, Any], total: float) -> Body:
    """Cyclical learning rates (Smith 2017): m moves linearly between base_ratio and 1
    with a full period P (a half-period up, a half-period down).

    The body starts at the peak, going down; the default warmup (P/2 from base_ratio)
    is Smith's first rise, so the defaults give his schedule exactly. In "triangular2"
    mode the amplitude halves at every base point (the start of Smith's cycles), where
    the multiplier is at its base, so the curve stays continuous.
    """
    w, period, base, mode = spec["warmup"], spec["period"], spec["base_ratio"], spec["mode"]

    def body(t: np.ndarray) -> np.ndarray:
        u = np.maximum(t - w, 0.0) / period
        tri = np.abs(1.0 - 2.0 * (u - np.floor(u)))  # 1 at the peaks, 0 at the bases
        amp = 0.5 ** np.floor(u + 0.5) if mode == "triangular2" else 1.0
        return base + (1.0 - base) * amp * tri

    return body
