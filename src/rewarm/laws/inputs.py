"""Turning command-line curve arguments into `Curve`s (CSV files or rewarm runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewarm.errors import UserError
from rewarm.laws.curves import Curve, read_csv, read_metrics


def load_curves(
    paths: list[str],
    schedule: dict[str, Any] | str | None = None,
    total: int | None = None,
    peak: float | None = None,
    stage: str | None = None,
    smooth_window: int = 1,
    truncate: int | None = None,
) -> list[Curve]:
    """Each path is a `step,lr,loss` CSV, a `metrics.jsonl`, or a run directory holding
    one. `truncate` drops points at or after that step (the shared curves' convention
    is 24000 for runs that end there)."""
    out = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir() or p.suffix == ".jsonl":
            c = read_metrics(p, stage=stage, smooth_window=smooth_window)
        elif p.suffix == ".csv":
            c = read_csv(p, schedule=schedule, total=total, peak=peak)
        else:
            raise UserError(f"{raw}: expected a .csv, a metrics.jsonl or a run directory")
        if truncate is not None:
            c = c.truncated(truncate)
        out.append(c)
    names = [c.name for c in out]
    for c in out:  # two runs' files share a stem: qualify with the parent folder
        if names.count(c.name) > 1:
            c.name = f"{Path(paths[out.index(c)]).parent.name}/{c.name}"
    return out
