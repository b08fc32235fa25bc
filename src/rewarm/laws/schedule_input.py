"""Per-step LRs of a schedule named on the command line, for `predict` and `plan`."""

from __future__ import annotations

from typing import Any

import numpy as np

from rewarm.errors import UserError
from rewarm.laws.curves import schedule_lr


def resolve_lr(
    spec: dict[str, Any] | str,
    total: int | None,
    peak: float | None,
    warmup: int | None,
    where: str,
) -> tuple[np.ndarray, int]:
    """`(lr for steps 0..total, warmup)`. `warmup` is added to a table without its own
    `warmup` key; a shared-curve name brings its own length, peak and warmup."""
    if isinstance(spec, str):
        return schedule_lr(spec, 0, 0.0, where)
    if total is None or total < 2:
        raise UserError(f"{where}: --total (steps, >= 2) is required for a schedule table")
    if peak is None or not peak > 0:
        raise UserError(f"{where}: --peak must be given (> 0); the fit file records none")
    spec = dict(spec)
    if warmup is not None and "warmup" not in spec:
        spec["warmup"] = warmup
    lr, w = schedule_lr(spec, total, peak, where)
    if w >= total:
        raise UserError(f"{where}: the warmup ({w}) must end before the last step ({total})")
    return lr, w
