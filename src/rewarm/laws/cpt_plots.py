"""Figures of the CPT law: per-domain curves with intervals (`fit`, `predict`, the
validation benchmark) and the trade-off frontier of `plan` (matplotlib through
`rewarm.plotting`, written atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rewarm import plotting
from rewarm.laws.cpt_fit import CPTFit
from rewarm.laws.cpt_plan import Scenario, pareto
from rewarm.laws.cpt_runs import CPTRun

Series = tuple[
    str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None
]
"""(label, steps, predicted, low, high, observed steps or None, observed losses or None)."""


def plot_domains(
    path: str | Path, by_domain: dict[str, list[Series]], title: str, transfer: int | None = None
) -> None:
    """One panel per domain: each series' law curve, its interval band and, when given,
    the observed losses as dots."""
    names = list(by_domain)
    fig, axes = plotting.subplots(1, len(names), figsize=(5.2 * len(names), 4.2), squeeze=False)
    for ax, d in zip(axes[0], names, strict=True):
        for i, (label, st, pred, lo, hi, ost, oy) in enumerate(by_domain[d]):
            color = f"C{i % 10}"
            ax.plot(st, pred, "-", lw=1.3, color=color, label=label)
            ax.fill_between(st, lo, hi, color=color, alpha=0.15, lw=0)
            if ost is not None and oy is not None:
                ax.plot(ost, oy, "o", ms=3, color=color, alpha=0.8)
        if transfer is not None:
            ax.axvline(transfer, color="k", lw=0.6, ls=":")
        ax.set_title(d)
        ax.set_xlabel("step")
        ax.set_ylabel("held-out loss (nats/token)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    plotting.save(fig, path, format="png", dpi=120, bbox_inches="tight")


def plot_frontier(
    path: str | Path, scenarios: list[Scenario], x: str, y: str, best: Scenario
) -> None:
    """Final loss of domain `x` against domain `y` for every candidate, the frontier
    (no candidate better in both) joined, the weighted optimum marked, intervals as bars."""
    pts = np.array([[s.finals[x][0], s.finals[y][0]] for s in scenarios])
    front = pareto(pts)
    fig, ax = plotting.subplots(figsize=(6.5, 5.2))
    replays = sorted({s.replay for s in scenarios})
    for j, r in enumerate(replays):
        sel = [i for i, s in enumerate(scenarios) if s.replay == r]
        ax.plot(
            pts[sel, 0],
            pts[sel, 1],
            "o",
            ms=4,
            color=f"C{j % 10}",
            alpha=0.7,
            label=f"replay {r:g}",
        )
    order = np.argsort(pts[front, 0])
    ax.plot(pts[front][order, 0], pts[front][order, 1], "-", color="k", lw=1, label="frontier")
    bx, by = best.finals[x], best.finals[y]
    ax.errorbar(
        [bx[0]],
        [by[0]],
        xerr=[[bx[0] - bx[1]], [bx[2] - bx[0]]],
        yerr=[[by[0] - by[1]], [by[2] - by[0]]],
        fmt="*",
        ms=12,
        color="crimson",
        label=f"best: {best.label}",
    )
    ax.set_xlabel(f"final {x} loss (predicted)")
    ax.set_ylabel(f"final {y} loss (predicted)")
    ax.set_title("CPT law: trade-off between domains")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    plotting.save(fig, path, format="png", dpi=120, bbox_inches="tight")


def plot_runs(path: str | Path, fit: CPTFit, runs: list[CPTRun], title: str = "CPT law") -> None:
    """Each run's law curve with its interval and its logged evaluations, per domain."""
    by_domain: dict[str, list[Series]] = {d: [] for d in fit.params}
    for r in runs:
        steps = np.arange(r.warmup + 1, r.eta.size)
        pred = fit.predict(r.eta, r.transfer, r.replay, steps, r.warmup)
        for d, (c, lo, hi) in pred.items():
            obs = r.points.get(d)
            by_domain[d].append(
                (
                    r.name,
                    steps,
                    c,
                    lo,
                    hi,
                    None if obs is None else obs[0],
                    None if obs is None else obs[1],
                )
            )
    plot_domains(path, by_domain, title, transfer=int(fit.options["transfer"]))
