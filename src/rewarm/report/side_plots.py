"""The per-run figure of side evaluations: each domain's held-out loss of the model being
trained beside the other weights evaluated with it (weight averages, and the trained
model kept when a stage's end put an average or merge in its place; docs/mitigations.md).
"""

from __future__ import annotations

import itertools

from matplotlib.figure import Figure

from rewarm import plotting
from rewarm.report.drawing import _kilo, _shade_stages
from rewarm.report.summary import RunSummary

STYLES = ("--", ":", "-.")
"""Line styles of the side weights, in order of their labels (the trained model: solid)."""


def weights_figure(run: RunSummary, colors: dict[str, str]) -> Figure | None:
    """Held-out loss per domain over tokens: the trained model as a solid line, each
    other set of weights (`weights` label of its `eval` records) dashed, dotted, ...;
    None when the run evaluated no other weights."""
    side = run.log.side_evals
    if not side:
        return None
    labels = sorted({r.weights for r in side if r.weights is not None})
    fig, ax = plotting.subplots(figsize=(10, 4))
    _shade_stages(ax, run)
    for domain in sorted({r.domain for r in side}):
        trained = [(r.tokens, r.loss) for r in run.log.evals if r.domain == domain]
        if trained:
            x, y = zip(*trained, strict=True)
            ax.plot(x, y, color=colors.get(domain), lw=1.6, label=f"{domain}: trained model")
        for label, ls in zip(labels, itertools.cycle(STYLES)):
            pts = [(r.tokens, r.loss) for r in side if r.domain == domain and r.weights == label]
            if pts:
                x, y = zip(*pts, strict=True)
                ax.plot(
                    x, y, color=colors.get(domain), lw=1.4, ls=ls,
                    label=f"{domain}: {label}",
                )  # fmt: skip
    ax.set_xlabel("training tokens")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.xaxis.set_major_formatter(_kilo)
    ax.set_title(f"{run.name}: trained model and other weights", loc="left", pad=14)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
