"""Warmup-stable-decay and its relatives: WSD, WSD-S, any-time branches, stage re-warm."""

from __future__ import annotations

from typing import Any

import numpy as np

import rewarm.schedules.shapes as shapes
from rewarm.schedules.decays import Body, progress


def wsd(spec: dict[str, Any], total: float) -> Body:
    """Warmup-stable-decay (Hu et al. 2024 "MiniCPM"; Hägele et al. 2024; Wen et al. 2024):
    m = 1 on [W, T - D], then shape(p, 1, f) over the last D with p = (t - (T - D)) / D."""
    d, f = spec["decay"], spec["final_ratio"]
    shape = shapes.DECAY_SHAPES[spec["shape"]]
    return lambda t: shape(progress(t, total - d, total), 1.0, f)


def wsd_s(spec: dict[str, Any], total: float) -> Body:
    """WSD-S (Wen et al. 2024): after the warmup, periods of length P, each stable at 1 for
    P - D then decaying to f over its last D; the next period continues from the decayed
    weights with the LR back at the peak (no re-warm). The last point of a period belongs
    to it (m = f there). A final period cut short by the stage's end keeps its stable part.
    """
    w, period, d, f = spec["warmup"], spec["period"], spec["decay"], spec["final_ratio"]
    shape = shapes.DECAY_SHAPES[spec["shape"]]

    def body(t: np.ndarray) -> np.ndarray:
        u = np.maximum(t - w, 0.0)
        # v in (0, P]: the position within the current period, period ends included.
        v = np.where(u <= 0.0, 0.0, u - period * (np.ceil(u / period) - 1.0))
        return shape(progress(v, period - d, period), 1.0, f)

    return body


def branch(spec: dict[str, Any], total: float, start: float) -> Body:
    """Any-time cooldown (Hägele et al. 2024; Wen et al. 2024's decay branch): the stage
    starts at the main branch's multiplier a = main(s) at main position s = `at` (given
    as `start`, computed by the caller from the nested main spec), and decays from a to
    f over `decay` with `shape`, then stays at f. m = shape(p, a, f), p = (t - W) / D."""
    w, d, f = spec["warmup"], spec["decay"], spec["final_ratio"]
    shape = shapes.DECAY_SHAPES[spec["shape"]]
    return lambda t: shape(progress(t, w, w + d), start, f)


def rewarm(spec: dict[str, Any], total: float) -> Body:
    """Stage re-warm (Gupta et al. 2023; Ibrahim et al. 2024): after the warmup from the
    previous stage's final LR (or from warmup_start), re-decay from 1 to f over [W, T]
    with `shape` (cosine by default). The warmup itself is applied by `Schedule`."""
    shape = shapes.DECAY_SHAPES[spec["shape"]]
    w, f = spec["warmup"], spec["final_ratio"]
    return lambda t: shape(progress(t, w, total), 1.0, f)
