"""One figure of every arm: held-out old-corpus loss (forgetting) and new (adaptation).

The report draws each run on its own; this figure puts the arms on one axis per
domain so the trade-off shows at a glance. Values are the runs' `eval` records as
arranged by `rewarm.continual.timeline` (no smoothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewarm import plotting
from rewarm.continual.timeline import timeline_of
from rewarm.runlog import read_run

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLORS = {
    "retrain": "#4b5563",
    "naive": "#dc2626",
    "rewarm": "#d97706",
    "rewarm+replay": "#2563eb",
    "infinite+replay": "#059669",
}


def arms_figure(
    run_dirs: dict[str, Path],
    out_png: Path,
    stage1_tokens: int,
    domains: tuple[str, str] = ("docs", "code"),
) -> Path:
    """Write `out_png` and its SVG (two panels: old, new corpus) in the report's style."""
    from rewarm.report.drawing import save

    with plotting.style(plotting.REPORT_STYLE):
        fig, axes = plotting.subplots(1, 2, figsize=(10, 3.8), sharex=True)
        _draw(fig, axes, run_dirs, stage1_tokens, domains)
        png, _svg = save(fig, out_png.parent, out_png.stem)
    return png


def _draw(
    fig: Figure,
    axes: Sequence[Axes],
    run_dirs: dict[str, Path],
    stage1_tokens: int,
    domains: tuple[str, str],
) -> None:
    old, new = domains
    shown: dict[str, list[float]] = {old: [], new: []}
    for arm, path in run_dirs.items():
        tl = timeline_of(read_run(path))
        style: dict[str, Any] = {"color": COLORS.get(arm), "lw": 1.6, "marker": ".", "ms": 3}
        if arm == "retrain":
            style |= {"ls": "--"}
        for ax, domain in zip(axes, domains, strict=True):
            ax.plot(tl.tokens, tl.column(domain), label=arm, **style)
            # the y range leaves out the first evaluations (near-untrained model)
            late = tl.column(domain)[tl.tokens >= stage1_tokens // 3]
            shown[domain].extend(float(v) for v in late if v == v)
    titles = {old: f"{old} (stage 1): forgetting", new: f"{new} (stage 2): adaptation"}
    for ax, domain in zip(axes, domains, strict=True):
        ax.axvline(stage1_tokens, color="#64748b", ls=":", lw=1)
        ax.set_title(f"held-out loss, {titles[domain]}", loc="left")
        ax.set_xlabel("training tokens")
        if shown[domain]:
            lo, hi = min(shown[domain]), max(shown[domain])
            pad = 0.08 * (hi - lo or 1.0)
            ax.set_ylim(lo - pad, hi + pad)
    axes[0].set_ylabel("loss (nats/token)")
    axes[1].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
