"""PNG figures for `rewarm fit`, `predict` and `plan` (matplotlib through
`rewarm.plotting`, matplotlib's default style), written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rewarm import plotting

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _save(fig: Figure, path: str | Path) -> None:
    plotting.save(fig, path, format="png", dpi=120, bbox_inches="tight")


def plot_fit(
    path: str | Path,
    series: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    title: str,
) -> None:
    """`series`: (name, observed steps, observed loss, curve steps, predicted loss)."""
    fig, (ax, axr) = plotting.subplots(
        2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    for i, (name, st, y, cst, pred) in enumerate(series):
        color = f"C{i % 10}"
        ax.plot(st, y, ".", ms=3, color=color, alpha=0.6, label=f"{name} (actual)")
        ax.plot(cst, pred, "-", lw=1.2, color=color, label=f"{name} (law)")
        at = np.interp(st, cst, pred)
        axr.plot(st, (at - y) / y * 100, "-", lw=1, color=color)
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    axr.axhline(0, color="k", lw=0.6)
    axr.set_ylabel("error (%)")
    axr.set_xlabel("step")
    axr.grid(alpha=0.3)
    _save(fig, path)


def plot_curves(
    path: str | Path,
    series: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    title: str,
    bands: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> None:
    """`series`: (label, steps, lr per step, predicted loss): loss on top, LR below;
    `bands`: per series, the prediction interval (low, high) drawn as a shaded band."""
    fig, (ax, axl) = plotting.subplots(
        2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
    )
    for i, (label, st, lr, loss) in enumerate(series):
        color = f"C{i % 10}"
        ax.plot(st, loss, lw=1.2, color=color, label=label)
        if bands is not None:
            ax.fill_between(st, bands[i][0], bands[i][1], color=color, alpha=0.15, lw=0)
        axl.plot(np.arange(lr.size), lr, lw=1, color=color)
    ax.set_ylabel("predicted loss")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    # zoom on the part of the curves that differs (the last 80%)
    lows = [float(np.min(s[3])) for s in series]
    his = [float(np.percentile(s[3], 80)) for s in series]
    lo, hi = min(lows), max(his)
    if hi > lo:
        ax.set_ylim(lo - 0.05 * (hi - lo), hi)
    axl.set_ylabel("LR")
    axl.set_xlabel("step")
    axl.grid(alpha=0.3)
    _save(fig, path)
