"""Figures of schedules and stage plans (matplotlib through `rewarm.plotting`, imported
on use, matplotlib's default style), written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rewarm import plotting
from rewarm.errors import UserError
from rewarm.schedules.lr_schedule import Schedule
from rewarm.schedules.stage_plan import StagePlan

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

POINTS = 4001  # dense enough that a 1000-wide figure shows every kink and jump
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def _figure() -> tuple[Figure, Axes]:
    return plotting.subplots(figsize=(10, 5.5), dpi=100)


def _save(fig: Figure, out: Path) -> Path:
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UserError(f"--out {out}: unsupported figure type (use {', '.join(FORMATS)})")
    try:
        return plotting.save(fig, out, format=fmt)
    except OSError as err:
        raise UserError(f"--out {out}: cannot write: {err.strerror}") from None


def plot_schedules(
    schedules: Sequence[Schedule], labels: Sequence[str], total: float, out: Path
) -> Path:
    """Multipliers of several schedules of the same length on one axis."""
    fig, ax = _figure()
    t = np.linspace(0.0, total, POINTS)
    for sched, label in zip(schedules, labels, strict=True):
        ax.plot(t, sched.values(t), label=label, linewidth=1.8)
    ax.set_xlabel("position")
    ax.set_ylabel("multiplier of the peak LR")
    ax.set_xlim(0, total)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    ax.set_title("learning-rate schedules")
    fig.tight_layout()
    return _save(fig, out)


def plot_plan(plan: StagePlan, out: Path, title: str = "stage plan") -> Path:
    """Absolute LR over the whole run (tokens), stage boundaries dashed and named."""
    fig, ax = _figure()
    # Sample each stage on its own grid so every boundary is drawn exactly; the last
    # point of a stage and the first of the next are both shown (jumps stay visible).
    for i, st in enumerate(plan.stages):
        start = plan.boundaries[i]
        offsets = np.linspace(0.0, float(st.length), POINTS // len(plan.stages) + 2)
        lrs = float(st.peak_lr) * plan.schedules[i].values(offsets)
        ax.plot(start + offsets, lrs, color="C0", linewidth=1.8)
    top = float(plan.lrs(np.linspace(0.0, plan.total, POINTS)).max()) or 1.0
    for i, st in enumerate(plan.stages):
        lo, hi = plan.boundaries[i], plan.boundaries[i + 1]
        if i > 0:
            ax.axvline(lo, color="0.4", linestyle="--", linewidth=1)
        label = st.name or f"stage {i}"
        ax.text(
            (lo + hi) / 2,
            top * 1.17,
            f"{label}\n{st.spec.get('kind')}",
            ha="center",
            va="top",
            fontsize=8,
        )
    ax.set_xlabel("tokens")
    ax.set_ylabel("learning rate")
    ax.set_xlim(0, plan.total)
    ax.set_ylim(0, top * 1.2)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, out)
