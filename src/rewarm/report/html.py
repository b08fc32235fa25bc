"""One self-contained `report.html`: tables and figures inline, no network, no scripts."""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime

from rewarm import __version__
from rewarm.report import tables as tb
from rewarm.report import task_tables
from rewarm.report.figures import SavedFigure
from rewarm.report.summary import Study

CSS = """
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { background:var(--ink); color:#fff; padding:28px 40px 22px; }
header h1 { margin:0 0 4px; font-size:24px; letter-spacing:-0.01em; }
header p { margin:0; color:#cbd5e1; font-size:13px; }
main { max-width:1180px; margin:0 auto; padding:24px 40px 60px; }
section { background:#fff; border:1px solid var(--line); border-radius:10px;
  padding:18px 24px 22px; margin:22px 0; box-shadow:0 1px 2px rgba(15,23,42,.04); }
h2 { font-size:19px; margin:4px 0 12px; }
h3 { font-size:15px; margin:18px 0 8px; color:#1e293b; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; font-size:13px; font-variant-numeric:tabular-nums; }
th, td { padding:5px 12px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
thead th { white-space:normal; vertical-align:bottom; min-width:64px; }
th:first-child, td:first-child { text-align:left; }
thead th { background:#f1f5f9; font-weight:600; color:#334155; }
tbody tr:hover { background:#f8fafc; }
ul.notes { margin:8px 0 0; padding-left:18px; color:var(--muted); font-size:12.5px; }
figure { margin:16px 0; }
figure img { max-width:100%; height:auto; display:block; border:1px solid var(--line);
  border-radius:6px; background:#fff; }
figcaption { color:var(--muted); font-size:12.5px; margin-top:6px; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(420px, 1fr)); gap:8px 24px; }
.key { color:var(--muted); font-size:13px; }
.headline { font-size:15.5px; margin:4px 0 14px; padding:10px 14px; background:#eff6ff;
  border-left:4px solid var(--accent); border-radius:4px; }
"""


# Where report.html shows figures (ids in rewarm.report.figures.FIGURES): the summary's
# grid, and the figures a run's section places among its tables. Any other registered
# figure follows at the end of its section, so a new one needs no edit here.
SUMMARY_FIGURES = ("compute", "lr")
RUN_FIGURES_FIRST = ("loss", "gap")
RUN_FIGURES_AFTER_MATRIX = ("matrix",)
RUN_FIGURES_WITH_TASKS = ("tasks",)


def _figure(fig: SavedFigure) -> str:
    data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
    cap = html.escape(fig.caption)
    return (
        f"<figure><img src='data:image/png;base64,{data}' alt='{cap}'>"
        f"<figcaption>{cap}</figcaption></figure>"
    )


def headlines(st: Study) -> list[str]:
    """One plain sentence per continual run against re-training."""
    out = []
    for c in st.comparisons:
        if c.mean_loss_diff is None:
            continue
        better = "lower" if c.mean_loss_diff < 0 else "higher"
        cost = "" if c.token_ratio is None else f" using {c.token_ratio:.2f}x its training tokens"
        out.append(
            f"{c.run}: mean final loss {abs(c.mean_loss_diff):.4f} nats {better} than "
            f"re-training ({c.baseline}){cost} since the shared checkpoint."
        )
    return out


def _figures(
    by_id: dict[tuple[str, str | None], SavedFigure], ids: tuple[str, ...], run: str | None
) -> list[str]:
    return [_figure(by_id[(i, run)]) for i in ids if (i, run) in by_id]


def render(st: Study, figures: list[SavedFigure]) -> str:
    """The whole page as a string; `figures` as returned by `figures.all_figures`."""
    by_id = {(f.id, f.run): f for f in figures}
    placed = {
        *SUMMARY_FIGURES,
        *RUN_FIGURES_FIRST,
        *RUN_FIGURES_AFTER_MATRIX,
        *RUN_FIGURES_WITH_TASKS,
    }
    others = tuple(dict.fromkeys(f.id for f in figures if f.id not in placed))
    names = ", ".join(r.name for r in st.runs)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>rewarm report: {html.escape(names)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>Continual pre-training report</h1><p>{html.escape(names)} · "
        f"generated {stamp} by rewarm {__version__}</p></header><main>",
        "<section><h2>Summary</h2>",
        *[f"<p class='headline'>{html.escape(line)}</p>" for line in headlines(st)],
        tb.to_html(tb.overview(st)),
    ]
    comp = tb.comparison_table(st)
    task_comp = task_tables.comparison_table(st)
    if comp is not None:
        parts.append(tb.to_html(comp))
        if task_comp is not None:
            parts.append(tb.to_html(task_comp))
    elif len(st.runs) > 1:
        parts.append(
            "<p class='key'>No re-training baseline among these runs (name one with --baseline).</p>"
        )
    parts.append("<div class='grid'>")
    parts += _figures(by_id, SUMMARY_FIGURES + others, None)
    parts.append("</div></section>")
    for r in st.runs:
        parts.append(f"<section><h2>{html.escape(r.name)}</h2>")
        parts += _figures(by_id, RUN_FIGURES_FIRST, r.name)
        parts.append(tb.to_html(tb.matrix_table(r)))
        parts += _figures(by_id, RUN_FIGURES_AFTER_MATRIX, r.name)
        parts.append(tb.to_html(tb.domain_table(r)))
        if r.gaps:
            parts.append(tb.to_html(tb.gap_table(r)))
        parts += _figures(by_id, RUN_FIGURES_WITH_TASKS, r.name)
        parts += [tb.to_html(t) for t in task_tables.run_tables(r)]
        parts.append(tb.to_html(tb.compute_table(r)))
        rep = tb.repetition_table(r)
        if rep is not None:
            parts.append(tb.to_html(rep))
        parts += _figures(by_id, others, r.name)
        parts.append("</section>")
    parts.append(
        "<p class='key'>Formulas and choices: docs/metrics.md in the rewarm repository.</p>"
        "</main></body></html>"
    )
    return "\n".join(parts)
