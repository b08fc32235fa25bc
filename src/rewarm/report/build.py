"""Build a whole report directory: summary.md, figures (PNG + SVG), report.html."""

from __future__ import annotations

from pathlib import Path

from rewarm import atomic
from rewarm.report import tables as tb
from rewarm.report import task_tables
from rewarm.report.figures import SavedFigure, all_figures
from rewarm.report.html import render
from rewarm.report.summary import Study, study
from rewarm.runlog import RunLog


def all_tables(st: Study) -> list[tb.Table]:
    """Every table of the report, in order: the study's, then each run's."""
    out = [tb.overview(st)]
    comp = tb.comparison_table(st)
    if comp is not None:
        out.append(comp)
    task_comp = task_tables.comparison_table(st)
    if task_comp is not None:
        out.append(task_comp)
    for r in st.runs:
        out += [tb.matrix_table(r), tb.domain_table(r)]
        if r.gaps:
            out.append(tb.gap_table(r))
        out += task_tables.run_tables(r)
        out.append(tb.compute_table(r))
        rep = tb.repetition_table(r)
        if rep is not None:
            out.append(rep)
    return out


def markdown(st_tables: list[tb.Table], names: list[str], figures: list[SavedFigure]) -> str:
    head = f"# Continual pre-training report: {', '.join(names)}\n\n"
    head += "Formulas and choices: docs/metrics.md. The same tables and figures: report.html.\n\n"
    body = "\n".join(tb.to_markdown(t) for t in st_tables)
    figs = "\n## Figures\n\n" + "".join(
        f"![{f.caption}]({f.png.name}) ([SVG]({f.svg.name}))\n\n" for f in figures
    )
    return head + body + figs


def build_report(
    logs: list[RunLog], out_dir: str | Path, *, baseline: str | None = None, eps: float = 0.01
) -> str:
    """Write the report of `logs` into `out_dir`; returns the terminal summary text."""
    out_dir = Path(out_dir)
    st = study(logs, baseline, eps)
    tables = all_tables(st)
    figures = all_figures(st, out_dir)
    atomic.write_text(out_dir / "summary.md", markdown(tables, [r.name for r in st.runs], figures))
    atomic.write_text(out_dir / "report.html", render(st, figures))
    text = [tb.to_text(tables[0])]
    comp = tb.comparison_table(st)
    if comp is not None:
        text.append(tb.to_text(comp))
    return "\n\n".join(text)
