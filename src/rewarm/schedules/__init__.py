"""Learning-rate schedules for continual pre-training: pure multipliers of progress.

Every schedule is a multiplier m(t) of the stage's peak LR at position t (tokens in run
configs); `StagePlan` composes one per stage into the absolute LR at any global position.
Nothing here imports torch except `rewarm.schedules.torch_adapter`.

Formulas and papers: docs/schedules.md. Contract: docs/architecture.md.
"""

from rewarm.schedules.fingerprint import describe_change
from rewarm.schedules.kinds import KINDS, resolve_spec
from rewarm.schedules.lr_schedule import Schedule, build, validate_spec
from rewarm.schedules.stage_plan import StagePlan, StageSpec

__all__ = [
    "KINDS",
    "Schedule",
    "StagePlan",
    "StageSpec",
    "build",
    "describe_change",
    "resolve_spec",
    "validate_spec",
]
