"""Choosing a continual pre-training stage with the fitted CPT law: the re-warm peak,
the schedule's shape and the replay ratio that minimise a weighted sum of the
domains' final losses (the use Wang, Tissue et al. 2025 propose: minimise
lambda1 * L_old + lambda2 * L_new), and the trade-off between domains.

A CPT stage of `total` updates follows the fitted runs' pre-training part (the LR of
every PT update is stored in the fit). Every candidate warms up linearly over
`warmup` updates from the LR pre-training ended at to its peak (Ibrahim et al. 2024;
Gupta et al. 2023), then follows its shape: `cosine` or `linear` re-decay to
`final_ratio` x peak, `wsd` (stable, then a 1-sqrt decay over the last 20%), or
`constant`. `continue` is the stage without re-warm: constant at the LR pre-training
ended at (the demo's naive arm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewarm import schedules
from rewarm.laws.cpt_fit import CPTFit

SHAPES = ("cosine", "linear", "wsd", "constant", "continue")
PEAKS = (0.25, 0.5, 0.75, 1.0)
"""Default re-warm peaks, as multiples of the pre-training peak."""
REPLAYS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)


@dataclass
class Scenario:
    label: str
    spec: dict[str, Any]
    peak: float
    replay: float
    eta: np.ndarray
    """LR of every update, pre-training included."""
    finals: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """domain -> (predicted final loss, interval low, high)."""
    score: float = float("nan")


def pt_eta(fit: CPTFit) -> np.ndarray:
    return np.asarray(fit.options["pt_eta"], dtype=np.float64)


def stage_eta(fit: CPTFit, spec: dict[str, Any], total: int, peak: float) -> np.ndarray:
    """Pre-training LRs followed by `total` CPT updates of `spec` at `peak`. A `rewarm`
    spec (start "previous", its default) and every candidate here warm up from the LR
    pre-training ended at, as a stage plan does."""
    pt = pt_eta(fit)
    start = None
    if spec.get("kind") == "rewarm" and spec.get("start", "previous") == "previous":
        start = float(pt[-1]) / peak
    sched = schedules.build(spec, float(total), start_ratio=start)
    return np.concatenate([pt, peak * sched.values(np.arange(total, dtype=np.float64))])


def candidate_spec(shape: str, total: int, warmup: int, final_ratio: float) -> dict[str, Any]:
    """The CPT stage's spec of one shape (its warmup starts where pre-training ended:
    `candidates` passes that start to the schedule)."""
    if shape in ("cosine", "linear"):
        return {"kind": "rewarm", "shape": shape, "final_ratio": final_ratio, "warmup": warmup}
    if shape == "wsd":
        decay = max(1, round(0.2 * total))
        return {
            "kind": "wsd",
            "decay": decay,
            "shape": "1-sqrt",
            "final_ratio": final_ratio,
            "warmup": warmup,
        }
    if shape == "constant":
        return {"kind": "constant", "warmup": warmup}
    if shape == "continue":
        return {"kind": "constant"}
    raise ValueError(f"unknown shape {shape!r}")


def candidates(
    fit: CPTFit,
    total: int,
    peaks: list[float],
    shapes: list[str],
    replays: list[float],
    warmup: int,
    final_ratio: float,
) -> list[Scenario]:
    """Every (shape, peak, replay) combination; `continue` has one peak, the PT's last LR."""
    pt = pt_eta(fit)
    pt_peak, pt_last = float(pt.max()), float(pt[-1])
    steps = np.arange(total, dtype=np.float64)
    out = []
    for shape in shapes:
        for mult in [None] if shape == "continue" else peaks:
            peak = pt_last if mult is None else mult * pt_peak
            spec = candidate_spec(shape, total, warmup, final_ratio)
            sched = schedules.build(spec, float(total), start_ratio=pt_last / peak)
            eta = np.concatenate([pt, peak * sched.values(steps)])
            what = "continue at the PT's final LR" if mult is None else f"{shape}, peak {mult:g}x"
            for r in replays:
                out.append(Scenario(f"{what}, replay {r:g}", spec, peak, r, eta))
    return out


def evaluate(fit: CPTFit, scenarios: list[Scenario], weights: dict[str, float]) -> list[Scenario]:
    """Each scenario's final losses (with intervals) and weighted score; best first."""
    transfer = int(fit.options["transfer"])
    for sc in scenarios:
        last = np.array([sc.eta.size - 1])
        pred = fit.predict(sc.eta, transfer, sc.replay, last)
        sc.finals = {
            d: (float(c[0]), float(lo[0]), float(hi[0])) for d, (c, lo, hi) in pred.items()
        }
        sc.score = sum(w * sc.finals[d][0] for d, w in weights.items())
    return sorted(scenarios, key=lambda s: s.score)


def pareto(points: np.ndarray) -> np.ndarray:
    """Bool mask of the points (n, 2) no other point beats in both coordinates (lower is
    better): the trade-off frontier."""
    keep = np.ones(len(points), dtype=bool)
    for i, p in enumerate(points):
        better = np.all(points <= p, axis=1) & np.any(points < p, axis=1)
        keep[i] = not better.any()
    return keep
