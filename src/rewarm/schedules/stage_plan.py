"""A stage plan: the absolute learning rate at every global position of a multi-stage run.

Stage i covers global positions [b_i, b_{i+1}) (the last stage includes its end) where
b = `plan.boundaries` = (0, L_0, L_0 + L_1, ..., total). Inside a stage the LR is
peak_i * m_i(position - b_i) with m_i the stage's `Schedule`. The plan is a pure function
of the config, so a resumed run rebuilds it and only the position is checkpointed.

Continuity across stages is decided by the specs: `rewarm` with start = "previous"
warms up from the absolute LR at the end of the previous stage (Ibrahim et al. 2024;
Gupta et al. 2023), so its start depends on the previous stage's peak; an `infinite`
stage with warmup = cooldown_end = 0 continues the previous stage's constant phase
when c and the peak are the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rewarm.errors import UserError
from rewarm.schedules.fingerprint import fingerprint as plan_fingerprint
from rewarm.schedules.kinds import resolve_spec
from rewarm.schedules.lr_schedule import Schedule

if TYPE_CHECKING:
    from rewarm.config import Config


@dataclass(frozen=True)
class StageSpec:
    length: float
    """Positions in the stage (tokens in run configs)."""
    spec: dict[str, Any]
    """The stage's schedule spec (a table with `kind`)."""
    peak_lr: float
    """The LR a multiplier of 1 stands for."""
    name: str = field(default="", compare=False)
    """For messages only; it does not change any LR, so it is not fingerprinted."""


class StagePlan:
    """Compose per-stage schedules into one LR function of the global position."""

    def __init__(self, stages: Sequence[StageSpec], *, source: str = ""):
        """`source` (a config path) prefixes error messages: `run.toml: stages[1]...`."""
        if not stages:
            raise UserError("schedule plan: needs at least one stage")
        self.stages = list(stages)
        self.schedules: list[Schedule] = []
        self.resolved: list[dict[str, Any]] = []
        starts = [0.0]
        for i, st in enumerate(self.stages):
            where = f"{source}: stages[{i}].schedule" if source else f"stages[{i}].schedule"
            if not (
                isinstance(st.length, int | float) and math.isfinite(st.length) and st.length > 0
            ):
                raise UserError(f"stages[{i}]: length must be > 0, got {st.length!r}")
            if not (
                isinstance(st.peak_lr, int | float)
                and math.isfinite(st.peak_lr)
                and st.peak_lr >= 0
            ):
                raise UserError(f"stages[{i}]: peak LR must be >= 0, got {st.peak_lr!r}")
            spec = resolve_spec(st.spec, st.length, where)
            self.resolved.append(spec)
            self.schedules.append(Schedule(spec, st.length, self._start_ratio(i, spec)))
            starts.append(starts[-1] + float(st.length))
        self.boundaries: tuple[float, ...] = tuple(starts)
        self._inner = np.asarray(starts[1:-1], dtype=np.float64)
        self._peaks = np.asarray([st.peak_lr for st in self.stages], dtype=np.float64)

    def _start_ratio(self, i: int, spec: dict[str, Any]) -> float | None:
        """rewarm/previous: the previous stage's final absolute LR over this stage's peak."""
        if spec["kind"] != "rewarm" or spec["start"] != "previous" or i == 0:
            return None  # the spec's own warmup_start (0 by default)
        peak = float(self.stages[i].peak_lr)
        if peak <= 0:
            return 0.0
        prev_end = float(self.stages[i - 1].peak_lr) * self.schedules[i - 1].end_value
        return prev_end / peak

    @classmethod
    def from_config(cls, cfg: Config) -> StagePlan:
        """Stage lengths are `stage.tokens`, peaks `cfg.stage_lr(i)`; positions are tokens."""
        return cls(
            [
                StageSpec(float(st.tokens), st.schedule, cfg.stage_lr(i), st.name)
                for i, st in enumerate(cfg.stages)
            ],
            source=cfg.source,
        )

    @property
    def total(self) -> float:
        return self.boundaries[-1]

    def stage_at(self, position: float) -> tuple[int, float]:
        """(stage index, offset into it); positions past the end clamp to the last one."""
        if not position >= 0:
            raise ValueError(f"position must be >= 0, got {position!r}")
        i = int(np.searchsorted(self._inner, position, side="right"))
        offset = min(float(position) - self.boundaries[i], float(self.stages[i].length))
        return i, offset

    def multiplier(self, position: float) -> float:
        """The multiplier of the current stage's peak LR at a global position."""
        i, offset = self.stage_at(position)
        return self.schedules[i](offset)

    def lr(self, position: float) -> float:
        """The absolute LR at a global position."""
        i, offset = self.stage_at(position)
        return float(self.stages[i].peak_lr) * self.schedules[i](offset)

    def multipliers(self, positions: npt.ArrayLike) -> np.ndarray:
        """`multiplier` for an array of positions (vectorised, same values)."""
        pos = np.clip(np.asarray(positions, dtype=np.float64), 0.0, self.total)
        idx = np.searchsorted(self._inner, pos, side="right")
        out = np.empty_like(pos)
        for i, sched in enumerate(self.schedules):
            mask = idx == i
            if mask.any():
                out[mask] = sched.values(pos[mask] - self.boundaries[i])
        return out

    def lrs(self, positions: npt.ArrayLike) -> np.ndarray:
        """`lr` for an array of positions (vectorised, same values)."""
        pos = np.clip(np.asarray(positions, dtype=np.float64), 0.0, self.total)
        idx = np.searchsorted(self._inner, pos, side="right")
        return self._peaks[idx] * self.multipliers(pos)

    def fingerprint(self) -> str:
        """A canonical JSON string of everything that decides an LR; see `describe_change`."""
        return plan_fingerprint(self)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{s.spec.get('kind')}x{s.length:g}" for s in self.stages)
        return f"StagePlan([{kinds}])"
