"""Build a whole report directory: summary.md, figures (PNG + SVG), report.html."""

from __future__ import annotations

from pathlib import Path

from rewarm.report import tables as tb
from rewarm.report.html import render
from rewarm.report.output import write_atomic
from rewarm.report.plots import all_figures
from rewarm.report.summary import study
from rewarm.runlog import RunLog


def markdown(
    st_tables: list[tb.Table], names: list[str], figures: list[tuple[str, Path, Path]]
) -> str:
    head = f"# Continual pre-training report: {', '.join(names)}\n\n"
    head += "Formulas and choices: docs/metrics.md. The same tables and figures: report.html.\n\n"
    body = "\n".join(tb.to_markdown(t) for t in st_tables)
    figs = "\n## Figures\n\n" + "".join(
        f"![{caption}]({png.name}) ([SVG]({svg.name}))\n\n" for caption, png, svg in figures
    )
    return head + body + figs


def build_report(
    logs: list[RunLog], out_dir: str | Path, *, baseline: str | None = None, eps: float = 0.01
) -> str:
    """Write the report of `logs` into `out_dir`; returns the terminal summary text."""
    out_dir = Path(out_dir)
    st = study(logs, baseline, eps)
    tables = tb.all_tables(st)
    figures = all_figures(st, out_dir)
    write_atomic(out_dir / "summary.md", markdown(tables, [r.name for r in st.runs], figures))
    write_atomic(out_dir / "report.html", render(st, figures))
    text = [tb.to_text(tables[0])]
    comp = tb.comparison_table(st)
    if comp is not None:
        text.append(tb.to_text(comp))
    return "\n\n".join(text)
