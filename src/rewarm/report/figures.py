"""The report's figures by id: one registration per figure kind.

`FIGURES` maps an id to what the figure shows (caption), whether it is drawn once
for the study or once per run, and the function that draws it. `all_figures`
draws and saves all of them; `summary.md` lists them in registry order and
`report.html` places them by id (`rewarm.report.html`), so a new figure is one
entry here. Consecutive per-run kinds are drawn run by run: the order is `lr`,
then each run's `loss`, `gap`, `matrix`, `tasks` (runs with task records), `weights`
(runs that evaluated other weights), then `compute`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from rewarm import plotting
from rewarm.report import drawing
from rewarm.report.side_plots import weights_figure
from rewarm.report.summary import RunSummary, Study
from rewarm.report.task_plots import task_figure


@dataclass(frozen=True, kw_only=True)
class StudyFigure:
    """A figure drawn once from the whole study."""

    caption: str
    draw: Callable[[Study], Figure]


@dataclass(frozen=True, kw_only=True)
class RunFigure:
    """A figure drawn for each run (`None` from `draw`: nothing to show for that run)."""

    caption: str
    """With `{run}` standing for the run's name."""
    draw: Callable[[RunSummary, dict[str, str]], Figure | None]
    """(run, colour of each domain) -> figure."""


FIGURES: dict[str, StudyFigure | RunFigure] = {
    "lr": StudyFigure(caption="Learning-rate schedule of each run", draw=drawing.lr_figure),
    "loss": RunFigure(caption="{run}: held-out loss per domain", draw=drawing.loss_figure),
    "gap": RunFigure(caption="{run}: stability gap at stage boundaries", draw=drawing.gap_figure),
    "matrix": RunFigure(
        caption="{run}: stage-by-domain loss matrix",
        draw=lambda run, _colors: drawing.matrix_figure(run),
    ),
    "tasks": RunFigure(
        caption="{run}: task metrics over training (lm-evaluation-harness)", draw=task_figure
    ),
    "weights": RunFigure(
        caption="{run}: held-out loss of the trained model and of other weights (averages)",
        draw=weights_figure,
    ),
    "compute": StudyFigure(caption="Final loss vs compute", draw=drawing.compute_figure),
}


@dataclass(frozen=True, kw_only=True)
class SavedFigure:
    """One figure written to disk."""

    id: str
    """Its key in `FIGURES`."""
    run: str | None
    """The run it shows (per-run figures), else None."""
    caption: str
    png: Path
    svg: Path


def all_figures(st: Study, out_dir: Path) -> list[SavedFigure]:
    """Draw and save every figure (STEM.png and STEM.svg) in display order."""
    colors = drawing.domain_colors(st.runs)
    out: list[SavedFigure] = []
    by_scope = itertools.groupby(FIGURES.items(), key=lambda item: isinstance(item[1], RunFigure))
    with plotting.style(plotting.REPORT_STYLE):
        for per_run, group in by_scope:
            kinds = list(group)
            for run in st.runs if per_run else [None]:
                for fid, kind in kinds:
                    saved = _draw(fid, kind, st, run, colors, out_dir)
                    if saved is not None:
                        out.append(saved)
    return out


def _draw(
    fid: str,
    kind: StudyFigure | RunFigure,
    st: Study,
    run: RunSummary | None,
    colors: dict[str, str],
    out_dir: Path,
) -> SavedFigure | None:
    fig: Figure | None
    if isinstance(kind, StudyFigure):
        fig, stem, caption = kind.draw(st), fid, kind.caption
    else:
        assert run is not None
        fig = kind.draw(run, colors)
        stem, caption = f"{fid}-{drawing.slug(run.name)}", kind.caption.format(run=run.name)
    if fig is None:
        return None
    png, svg = drawing.save(fig, out_dir, stem)
    name = run.name if run is not None else None
    return SavedFigure(id=fid, run=name, caption=caption, png=png, svg=svg)
