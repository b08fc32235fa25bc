"""The per-run task figure: every task metric over training tokens, stages shaded."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rewarm import plotting
from rewarm.report.drawing import PALETTE, _kilo, _shade_stages
from rewarm.report.summary import RunSummary


def task_figure(run: RunSummary, _colors: dict[str, str]) -> Figure | None:
    """One panel per task metric: value and its standard-error band over tokens; the
    dotted line at each stage start is the value forgetting is measured against."""
    t = run.tasks
    if t is None:
        return None
    g = t.grid
    n = len(g.columns)
    fig, axes = plotting.subplots(n, 1, sharex=True, squeeze=False, figsize=(8, 2.6 * n + 0.6))
    for c, (ax, col) in enumerate(zip(axes[:, 0], g.columns, strict=True)):
        _shade_stages(ax, run, label=c == 0)
        ok = ~np.isnan(g.value[:, c])
        x, y, err = g.tokens[ok], g.value[ok, c], np.nan_to_num(g.stderr[ok, c])
        color = PALETTE[c % len(PALETTE)]
        ax.fill_between(x, y - err, y + err, color=color, alpha=0.15, lw=0)
        ax.plot(x, y, color=color, lw=1.8, marker="o", ms=3)
        for k in range(len(g.stages)):
            row = g.start_row(k, c)
            if row is not None and g.old(k, c):
                s = g.stages[k]
                ax.hlines(g.value[row, c], s.start, s.end, color=color, lw=0.8, ls=":")
        where = col.domain or "knowledge from before the run"
        ax.set_title(f"{col.label} ({where})", loc="left", fontsize=9.5, pad=14 if c == 0 else 4)
        ax.set_ylabel(col.metric)
    axes[-1, 0].set_xlabel("training tokens")
    axes[-1, 0].xaxis.set_major_formatter(_kilo)
    fig.tight_layout()
    return fig
