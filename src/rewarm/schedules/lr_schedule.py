"""One schedule: a resolved spec turned into a pure multiplier function of position.

`build(spec, total)` checks the spec (see `validate_spec`) and returns a `Schedule`;
`Schedule(t)` is the multiplier of the stage's peak LR at position t in [0, total]
(positions outside are clamped), and `Schedule.values(ts)` the same for a numpy array.

Warmup, shared by every kind (Goyal et al. 2017; s0 = warmup_start, 1/100 in Hägele et
al. 2024): on [0, W), m = s0 + (m(W) - s0) t / W where m(W) is the body's value at W
(1 for every kind that starts at its peak, which gives m = s0 + (1 - s0) t / W).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewarm.schedules.kinds import multiplier, resolve_spec


def validate_spec(spec: dict[str, Any], total: float, where: str) -> None:
    """Raise `UserError` (starting with `where`, naming the key) if `spec` is not a valid
    schedule of length `total`: unknown kind or key, wrong type, a length or position
    beyond `total`, phases out of order, a shape that needs final_ratio > 0..."""
    resolve_spec(spec, total, where)


class Schedule:
    """The multiplier m(t) of a stage's peak LR; pure, immutable, vectorised.

    `start_ratio`, when given, replaces the spec's warmup_start: a stage plan passes the
    previous stage's final LR over this stage's peak for `rewarm` with start="previous".
    """

    def __init__(self, spec: dict[str, Any], total: float, start_ratio: float | None = None):
        self.spec = spec  # resolved
        self.total = float(total)
        self.kind = spec["kind"]
        self.warmup = float(spec["warmup"])
        self.start_ratio = float(spec["warmup_start"] if start_ratio is None else start_ratio)
        self._values = multiplier(spec, self.total, self.start_ratio)

    def values(self, positions: np.ndarray) -> np.ndarray:
        """Multipliers at an array of positions (clamped to [0, total])."""
        return self._values(positions)

    def __call__(self, position: float) -> float:
        """The multiplier at one position (a float); an array gives `values(array)`."""
        if np.ndim(position) > 0:
            return self.values(np.asarray(position))  # type: ignore[return-value]
        return float(self.values(np.array([position], dtype=np.float64))[0])

    multiplier = __call__

    @property
    def end_value(self) -> float:
        """The multiplier at the schedule's last position."""
        return self(self.total)

    def __repr__(self) -> str:
        return f"Schedule({self.spec!r}, total={self.total:g})"


def build(spec: dict[str, Any], total: float, *, start_ratio: float | None = None) -> Schedule:
    """Check `spec` and build its `Schedule` over positions [0, total]."""
    return Schedule(resolve_spec(spec, total, "schedule"), total, start_ratio)
