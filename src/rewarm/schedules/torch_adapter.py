"""The only torch-facing part of `rewarm.schedules`: set an optimizer's LRs from a plan."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from rewarm.schedules.stage_plan import StagePlan


def apply_lr(optimizer: torch.optim.Optimizer, plan: StagePlan, position: float) -> float:
    """Set every param group's LR to plan.lr(position) * group.get("lr_scale", 1.0).

    `lr_scale` gives a group its own peak (e.g. a smaller LR for embeddings) while every
    group follows the same schedule. Returns the base LR (scale 1) for logging.
    """
    lr = plan.lr(position)
    for group in optimizer.param_groups:
        group["lr"] = lr * float(group.get("lr_scale", 1.0))
    return lr
