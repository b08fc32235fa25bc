"""Report figures, each drawn by one function from run summaries and saved as PNG
and SVG by `save`.

Figures are drawn in the current matplotlib style: `rewarm.report.figures` applies
`rewarm.plotting.REPORT_STYLE` around drawing and saving. Colours are fixed per
domain and per run so a domain looks the same in every figure.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rewarm import plotting
from rewarm.continual.compare import new_compute
from rewarm.report.summary import RunSummary, Study
from rewarm.report.tables import final_mean

PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#4b5563"]
STAGE_SHADES = ["#f1f5f9", "#fefce8"]


def slug(name: str) -> str:
    """A file-name-safe version of a run name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"


def domain_colors(runs: list[RunSummary]) -> dict[str, str]:
    names = list(dict.fromkeys(d for r in runs for d in r.timeline.domains))
    return {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(names)}


def save(fig: Figure, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write STEM.png and STEM.svg atomically (call inside `plotting.style`)."""
    png, svg = (
        plotting.save(
            fig, out_dir / f"{stem}.{ext}", format=ext, bbox_inches="tight", metadata={"Date": None}
        )
        for ext in ("png", "svg")
    )
    return png, svg


def _kilo(x: float, _pos: object = None) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:g}{unit}"
    return f"{x:g}"


def _shade_stages(ax: Axes, run: RunSummary, label: bool = True) -> None:
    for k, s in enumerate(run.timeline.stages):
        ax.axvspan(s.start, s.end, color=STAGE_SHADES[k % 2], zorder=0, lw=0)
        if k:
            ax.axvline(s.start, color="#64748b", lw=0.8, ls="--", zorder=1)
        if label:
            ax.text(
                (s.start + s.end) / 2,
                1.0,
                f"{run.timeline.number(k)}. {s.name}",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8.5,
                color="#475569",
            )


def lr_figure(st: Study) -> Figure:
    """Learning rate over training tokens, one panel per run, stages shaded."""
    n = len(st.runs)
    fig, axes = plotting.subplots(n, 1, sharex=True, squeeze=False, figsize=(8, 1.9 * n + 0.6))
    for ax, run in zip(axes[:, 0], st.runs, strict=True):
        _shade_stages(ax, run)
        tr = run.log.trains
        if tr:
            ax.plot([t.tokens for t in tr], [t.lr for t in tr], color="#0f172a", lw=1.4)
        ax.set_ylabel("learning rate")
        ax.set_title(run.name, loc="left", pad=14)
        ax.yaxis.set_major_formatter(lambda y, _p: f"{y:.0e}" if y else "0")
    axes[-1, 0].set_xlabel("training tokens")
    axes[-1, 0].xaxis.set_major_formatter(_kilo)
    fig.tight_layout()
    return fig


def loss_figure(run: RunSummary, colors: dict[str, str]) -> Figure:
    """Held-out loss of every domain over tokens, stages shaded, boundaries dashed."""
    tl = run.timeline
    fig, ax = plotting.subplots(figsize=(8, 4))
    _shade_stages(ax, run)
    for d in tl.domains:
        col = tl.column(d)
        ok = ~np.isnan(col)
        trained = tl.first_stage(d) is not None
        ax.plot(
            tl.tokens[ok],
            col[ok],
            color=colors[d],
            lw=1.8 if trained else 1.2,
            ls="-" if trained else ":",
            marker="o",
            ms=2.5,
            label=d if trained else f"{d} (never trained)",
        )
    ax.set_xlabel("training tokens")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.xaxis.set_major_formatter(_kilo)
    ax.set_title(f"{run.name}: loss per domain", loc="left", pad=14)
    ax.legend(loc="upper right", ncols=min(3, len(tl.domains)))
    fig.tight_layout()
    return fig


def gap_figure(run: RunSummary, colors: dict[str, str]) -> Figure | None:
    """Zoom on each stage boundary: old domains around s_k, with the gap and recovery marked."""
    tl = run.timeline
    stages = sorted({g.stage for g in run.gaps})
    if not stages:
        return None
    fig, axes = plotting.subplots(
        1, len(stages), figsize=(min(4.2 * len(stages) + 1.5, 12), 3.6), squeeze=False
    )
    for ax, k in zip(axes[0], stages, strict=True):
        s, prev = tl.stages[k], tl.stages[k - 1]
        gaps = [g for g in run.gaps if g.stage == k]
        last_peak = max(g.peak_tokens for g in gaps)
        rec = [s.start + g.recover_tokens for g in gaps if g.recovered and g.recover_tokens]
        right = max([last_peak, *rec]) - s.start
        span = max(right * 1.8, 0.25 * (s.end - s.start))
        if not all(g.recovered for g in gaps):
            span = s.end - s.start  # show the whole stage: the loss never came back
        lo, hi = s.start - 0.15 * span, min(s.end, s.start + span)
        lo = max(lo, prev.start)
        ax.axvspan(s.start, hi, color=STAGE_SHADES[k % 2], zorder=0, lw=0)
        ax.axvline(s.start, color="#64748b", lw=0.8, ls="--")
        for g in gaps:
            col = tl.column(g.domain)
            sel = (tl.tokens >= lo) & (tl.tokens <= hi) & ~np.isnan(col)
            c = colors[g.domain]
            state = "recovered" if g.recovered else "not recovered by stage end"
            ax.plot(
                tl.tokens[sel],
                col[sel],
                color=c,
                lw=1.8,
                marker="o",
                ms=3,
                label=f"{g.domain}: {state}",
            )
            ax.axhline(g.start_loss, color=c, lw=0.8, ls=":")
            ax.axhspan(g.start_loss, g.start_loss + run.eps, color=c, alpha=0.08, lw=0)
            ax.annotate(
                f"gap {g.gap:+.3f}",
                (g.peak_tokens, g.peak_loss),
                xytext=(6, 6),
                textcoords="offset points",
                fontsize=8.5,
                color=c,
                fontweight="bold",
            )
            ax.plot([g.peak_tokens], [g.peak_loss], marker="^", color=c, ms=7, zorder=5)
            if g.recovered and g.recover_tokens:
                x = s.start + g.recover_tokens
                ax.axvline(x, color=c, lw=1, ls="-.", alpha=0.7)
                ax.text(
                    x, 0.02, " recovered", transform=ax.get_xaxis_transform(), color=c, fontsize=8
                )
        ax.set_xlim(lo, hi)
        ax.margins(y=0.15)
        ax.set_title(f"into stage {tl.number(k)}: {s.name}", loc="left")
        ax.set_xlabel("training tokens")
        ax.xaxis.set_major_formatter(_kilo)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8.5)
    axes[0, 0].set_ylabel("held-out loss (nats/token)")
    fig.suptitle(
        f"{run.name}: stability gap (band: within eps = {run.eps:g})",
        x=0.01,
        ha="left",
        fontsize=10.5,
        fontweight="bold",
    )
    fig.tight_layout()
    return fig


def matrix_figure(run: RunSummary) -> Figure:
    """Heatmap of R[k][i], the loss of domain i at the end of stage k."""
    r = run.matrix
    k_n, d_n = r.values.shape
    fig, ax = plotting.subplots(figsize=(1.4 * d_n + 2.4, 0.7 * k_n + 1.5))
    ax.grid(False)
    masked = np.ma.masked_invalid(r.values)
    im = ax.imshow(masked, cmap="viridis_r", aspect="auto")
    finite = r.values[~np.isnan(r.values)]
    mid = float(finite.mean()) if finite.size else 0.0
    for k in range(k_n):
        for i in range(d_n):
            v = r.values[k, i]
            text = "n/a" if math.isnan(v) else f"{v:.3f}"
            dark = not math.isnan(v) and v > mid
            ax.text(
                i, k, text, ha="center", va="center", fontsize=9, color="white" if dark else "black"
            )
    ax.set_xticks(range(d_n), r.domains)
    ax.set_yticks(range(k_n), [f"{run.timeline.number(k)}. {n}" for k, n in enumerate(r.stages)])
    ax.set_xlabel("evaluated domain")
    ax.set_ylabel("end of stage")
    ax.set_title(f"{run.name}: loss matrix R[k][i]", loc="left")
    fig.colorbar(im, ax=ax, label="loss (nats/token)", shrink=0.85)
    fig.tight_layout()
    return fig


def compute_figure(st: Study) -> Figure:
    """Final mean loss against training compute (shared stage 1 counted once per run)."""
    views = [r.view() for r in st.runs]
    fig, ax = plotting.subplots(figsize=(6.5, 4))
    use_flops = all(r.compute.flops_per_token for r in st.runs)
    for i, (run, view) in enumerate(zip(st.runs, views, strict=True)):
        since, shared = new_compute(view, views)
        scale = (run.compute.flops_per_token or 1.0) if use_flops else 1.0
        y = final_mean(run)
        if y is None:
            continue
        base = st.baseline == i
        color = "#0f172a" if base else PALETTE[i % len(PALETTE)]
        total = (since + (shared or 0)) * scale
        if not base and since * scale < total:
            # The compute actually spent given the shared checkpoint (hollow), joined to the
            # full cost including that checkpoint (filled).
            ax.plot([since * scale, total], [y, y], color=color, lw=1, ls="--", alpha=0.6)
            ax.scatter([since * scale], [y], s=60, facecolors="white", edgecolors=color, zorder=3)
            ax.annotate(
                "since checkpoint",
                (since * scale, y),
                xytext=(0, -14),
                textcoords="offset points",
                ha="center",
                fontsize=7.5,
                color="#64748b",
            )
        ax.scatter(
            [total], [y], s=110 if base else 60, marker="*" if base else "o", color=color, zorder=3
        )
        ax.annotate(
            run.name + (" (re-training)" if base else ""),
            (total, y),
            xytext=(7, 4),
            textcoords="offset points",
            fontsize=8.5,
        )
    ax.set_xlabel("training FLOPs" if use_flops else "training tokens")
    ax.set_ylabel("final loss, mean over domains")
    ax.xaxis.set_major_formatter(_kilo if not use_flops else (lambda v, _p: f"{v:.3g}"))
    ax.margins(x=0.25, y=0.25)
    ax.set_title("Final loss vs compute", loc="left")
    fig.tight_layout()
    return fig
