"""The summary tables, built once and rendered as Markdown, plain text or HTML."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np

from rewarm.report.summary import RunSummary, Study

MISSING = "n/a"


@dataclass(frozen=True, kw_only=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    return f"{x:.{digits}f}"


def signed(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    return f"{x:+.{digits}f}"


def sci(x: float | None) -> str:
    return MISSING if x is None else f"{x:.3e}"


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else None


def final_mean(run: RunSummary, bpb: bool = False) -> float | None:
    """Mean over all evaluated domains of the loss at the end of the last stage."""
    mat = run.bpb_matrix if bpb else run.matrix
    return _mean(list(mat.values[-1])) if mat.values.size else None


def overview(st: Study) -> Table:
    rows = []
    for i, r in enumerate(st.runs):
        last_forget = r.forgetting[-1] if r.forgetting else {}
        gaps = [g.gap for g in r.gaps]
        wc = r.worst.wc_loss
        wc_final = float(wc[-1]) if wc.size else None
        rows.append(
            [
                r.name + (" (baseline)" if st.baseline == i else ""),
                str(len(r.timeline.trained_stages)),
                str(r.compute.tokens),
                sci(r.compute.flops),
                num(final_mean(r)),
                num(final_mean(r, bpb=True)),
                signed(r.bwt),
                num(_mean(list(last_forget.values()))),
                num(max(gaps) if gaps else None),
                num(wc_final),
                num(max(r.wf[10].values()) if r.wf[10] else None),
                num(max(r.wf[100].values()) if r.wf[100] else None),
            ]
        )
    return Table(
        title="Runs",
        columns=[
            "run",
            "stages",
            "tokens",
            "train FLOPs",
            "final loss (mean)",
            "final bpb (mean)",
            "BWT",
            "forgetting (mean)",
            "max stability gap",
            "WC-loss (final)",
            "max WF^10",
            "max WF^100",
        ],
        rows=rows,
        notes=[
            "Losses in nats per token on held-out data; bpb = bits per byte. Lower is better.",
            "BWT < 0 and forgetting > 0 mean old domains got worse (docs/metrics.md).",
            "WC-loss: De Lange et al. 2023's definition, the mean over every domain trained "
            "so far of its current loss (current stage) or worst case since its stage "
            "ended (old domains); docs/metrics.md also gives the stage-weighted variant.",
        ],
    )


def matrix_table(r: RunSummary) -> Table:
    mat = r.matrix
    rows = []
    tl = r.timeline
    for k, stage in enumerate(tl.stages):
        cells = [num(v) for v in mat.values[k]]
        rows.append([f"{tl.number(k)}. {stage.name}", *cells, num(r.average_seen[k])])
    notes = [
        "R[k][i]: loss of domain i at the end of stage k (SCIENCE.md section 4).",
    ]
    if tl.has_initial:
        notes.append(
            "0. start: the model the run started from (model.init), evaluated before the "
            "first update; forgetting, BWT, stability gap and WC-loss compare against it."
        )
    for k, d, tok in mat.substituted:
        notes.append(
            f"No evaluation at the end of stage {tl.number(k)}; {d} is read at tokens {tok} "
            "instead."
        )
    missing = int(np.isnan(mat.values).sum())
    if missing:
        notes.append(f"{missing} cell(s) have no evaluation inside their stage ({MISSING}).")
    return Table(
        title=f"{r.name}: loss at the end of each stage",
        columns=["stage", *mat.domains, "avg over seen"],
        rows=rows,
        notes=notes,
    )


def domain_table(r: RunSummary) -> Table:
    tl = r.timeline
    final = r.forgetting[-1] if r.forgetting else {}
    fwt = {d: v for row in r.fwt.values() for d, v in row.items()}
    rows = []
    for i, d in enumerate(tl.domains):
        first = tl.first_stage(d)
        rows.append(
            [
                d,
                "never" if first is None else str(tl.number(first)),
                num(float(r.matrix.values[-1, i])),
                num(float(r.bpb_matrix.values[-1, i])),
                num(final.get(d)),
                signed(r.bwt_terms.get(d)),
                signed(fwt.get(d)),
                num(r.worst.final_worst.get(d)),
                num(r.wf[10].get(d)),
                num(r.wf[100].get(d)),
            ]
        )
    return Table(
        title=f"{r.name}: per domain",
        columns=[
            "domain",
            "first trained in stage",
            "final loss",
            "final bpb",
            "forgetting",
            "BWT term",
            "forward transfer",
            "worst-case loss",
            "WF^10",
            "WF^100",
        ],
        rows=rows,
        notes=[
            "Forward transfer: first evaluation's loss minus the loss at the start of the "
            "domain's first stage (> 0: earlier stages helped).",
        ],
    )


def gap_table(r: RunSummary) -> Table:
    rows = []
    for g in r.gaps:
        stage = r.timeline.stages[g.stage]
        rows.append(
            [
                f"{r.timeline.number(g.stage)}. {stage.name}",
                g.domain,
                num(g.start_loss),
                num(g.peak_loss),
                signed(g.gap),
                str(g.peak_tokens),
                str(g.recover_evals) if g.recovered else "not recovered",
                str(g.recover_tokens) if g.recovered else "not recovered",
            ]
        )
    return Table(
        title=f"{r.name}: stability gap of old domains",
        columns=[
            "stage",
            "domain",
            "loss at stage start",
            "peak loss",
            "gap",
            "peak at tokens",
            "evals to recover",
            "tokens to recover",
        ],
        rows=rows,
        notes=[
            f"Recovered: loss back within eps = {r.eps:g} nats of its value at the stage start "
            "(counted in evaluations after the peak, and in tokens from the stage start)."
        ],
    )


def compute_table(r: RunSummary) -> Table:
    c, tl = r.compute, r.timeline
    rows = []
    for k, stage in enumerate(tl.stages):
        tokens = c.tokens_by_stage[k]
        flops = None if c.flops_per_token is None else tokens * c.flops_per_token
        rows.append([f"{tl.number(k)}. {stage.name}", str(tokens), sci(flops)])
    rows.append(["total", str(c.tokens), sci(c.flops)])
    notes = [
        f"FLOPs per token: {sci(c.flops_per_token)} ({c.flops_source}); evaluation: "
        f"{c.eval_tokens} tokens, {sci(c.eval_flops)} FLOPs."
    ]
    branch = r.log.branch
    if branch is not None:
        notes.append(
            f"Branched from {branch.checkpoint} at {branch.tokens} tokens: the rows up to "
            "there are the parent's (its log, carried over), trained once and shared."
        )
    return Table(
        title=f"{r.name}: compute",
        columns=["stage", "tokens", "train FLOPs"],
        rows=rows,
        notes=notes,
    )


def repetition_table(r: RunSummary) -> Table | None:
    """Epochs of each domain's training tokens per stage (None for logs without them)."""
    stages = r.timeline.stages
    if not any(s.epochs_by_domain for s in stages):
        return None
    domains = list(dict.fromkeys(d for s in stages for d in s.epochs_by_domain))
    rows = [
        [f"{k + 1}. {s.name}", *[num(s.epochs_by_domain.get(d), 2) for d in domains]]
        for k, s in enumerate(stages)
    ]
    totals = [sum(s.epochs_by_domain.get(d, 0.0) for s in stages) for d in domains]
    rows.append(["run", *[num(t, 2) for t in totals]])
    return Table(
        title=f"{r.name}: repetition (epochs of each domain's training tokens)",
        columns=["stage", *domains],
        rows=rows,
        notes=[
            "Windows drawn from a domain in the stage (replay included) over its training "
            "windows: 1.00 = every training token was a target once. Repeating a small "
            "set many times hurts (Hernandez et al. 2022); domains.NAME.max_epochs caps it.",
        ],
    )


def comparison_table(st: Study) -> Table | None:
    if st.baseline is None or not st.comparisons:
        return None
    domains = list(dict.fromkeys(d for c in st.comparisons for d in c.loss_diff))
    rows = []
    for c in st.comparisons:
        rows.append(
            [
                c.run,
                str(c.tokens_since_checkpoint),
                MISSING if c.shared_tokens is None else str(c.shared_tokens),
                str(c.baseline_tokens),
                num(c.token_ratio, 3),
                num(c.flops_ratio, 3),
                num(c.total_ratio, 3),
                signed(c.mean_loss_diff),
                *[signed(c.loss_diff.get(d)) for d in domains],
            ]
        )
    return Table(
        title=f"Against re-training ({st.runs[st.baseline].name})",
        columns=[
            "run",
            "tokens since checkpoint",
            "shared stage-1 tokens",
            "re-training tokens",
            "token ratio",
            "FLOPs ratio",
            "ratio incl. stage 1",
            "mean Δloss",
            *[f"Δloss {d}" for d in domains],
        ],
        rows=rows,
        notes=[
            "Δloss = final loss of the continual run - final loss of re-training "
            "(< 0: continual is better). Ratios: continual compute since the shared "
            "checkpoint / re-training compute; the shared stage 1 is counted once.",
        ],
    )


def to_markdown(t: Table) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = [f"## {t.title}", ""]
    lines.append("| " + " | ".join(esc(c) for c in t.columns) + " |")
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(t.columns))) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in t.rows]
    if t.notes:
        lines.append("")
        lines += [f"- {n}" for n in t.notes]
    return "\n".join(lines) + "\n"


def to_text(t: Table) -> str:
    """Aligned plain text for the terminal."""
    grid = [t.columns, *t.rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(t.columns))]
    fmt = [
        (lambda s, w=w: s.ljust(w)) if i == 0 else (lambda s, w=w: s.rjust(w))
        for i, w in enumerate(widths)
    ]
    lines = [t.title, "  ".join(f(c) for f, c in zip(fmt, t.columns, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(f(c) for f, c in zip(fmt, row, strict=True)) for row in t.rows]
    return "\n".join(lines)


def to_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in t.notes)
    return (
        f"<h3>{html.escape(t.title)}</h3><div class='scroll'><table><thead><tr>{head}</tr>"
        f"</thead><tbody>{body}</tbody></table></div>"
        + (f"<ul class='notes'>{notes}</ul>" if notes else "")
    )
