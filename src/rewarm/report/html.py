"""One self-contained `report.html`: tables and figures inline, no network, no scripts."""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from pathlib import Path

from rewarm import __version__
from rewarm.report import tables as tb
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


def _figure(caption: str, png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    cap = html.escape(caption)
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


def render(st: Study, figures: list[tuple[str, Path, Path]]) -> str:
    """The whole page as a string; `figures` as returned by `plots.all_figures`."""
    by_caption = {caption: png for caption, png, _svg in figures}
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
    if comp is not None:
        parts.append(tb.to_html(comp))
    elif len(st.runs) > 1:
        parts.append(
            "<p class='key'>No re-training baseline among these runs (name one with --baseline).</p>"
        )
    parts.append("<div class='grid'>")
    for caption in ("Final loss vs compute", "Learning-rate schedule of each run"):
        if caption in by_caption:
            parts.append(_figure(caption, by_caption[caption]))
    parts.append("</div></section>")
    for r in st.runs:
        parts.append(f"<section><h2>{html.escape(r.name)}</h2>")
        caption = f"{r.name}: held-out loss per domain"
        if caption in by_caption:
            parts.append(_figure(caption, by_caption[caption]))
        gap = f"{r.name}: stability gap at stage boundaries"
        if gap in by_caption:
            parts.append(_figure(gap, by_caption[gap]))
        parts.append(tb.to_html(tb.matrix_table(r)))
        mat = f"{r.name}: stage-by-domain loss matrix"
        if mat in by_caption:
            parts.append(_figure(mat, by_caption[mat]))
        parts.append(tb.to_html(tb.domain_table(r)))
        if r.gaps:
            parts.append(tb.to_html(tb.gap_table(r)))
        parts.append(tb.to_html(tb.compute_table(r)))
        parts.append("</section>")
    parts.append(
        "<p class='key'>Formulas and choices: docs/metrics.md in the rewarm repository.</p>"
        "</main></body></html>"
    )
    return "\n".join(parts)
