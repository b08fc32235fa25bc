"""The report's task tables (lm-evaluation-harness results; `rewarm.continual.task_metrics`).

Shown only for runs with `task` records. Values are in the metric's own units (an
accuracy is a fraction); "± x" is the harness's standard error.
"""

from __future__ import annotations

import math

from rewarm.continual.task_metrics import TaskSummary
from rewarm.report.summary import RunSummary, Study
from rewarm.report.tables import MISSING, Table, num, signed


def _pm(value: float, err: float | None) -> str:
    if math.isnan(value):
        return MISSING
    return f"{value:.4f}" if err is None or math.isnan(err) else f"{value:.4f} ± {err:.4f}"


def matrix_table(name: str, t: TaskSummary) -> Table:
    """The value of every task metric at the run's start and at each stage end."""
    g = t.grid
    start = [g.start_row(0, c) for c in range(len(g.columns))]
    rows = [["start", *[_pm(*_cell(t, r, c)) for c, r in enumerate(start)]]]
    for k, stage in enumerate(g.stages):
        cells = [_pm(*_cell(t, g.end_row(k, c), c)) for c in range(len(g.columns))]
        rows.append([f"{k + 1}. {stage.name}", *cells])
    return Table(
        title=f"{name}: tasks at the end of each stage",
        columns=["stage", *[c.label for c in g.columns]],
        rows=rows,
        notes=[
            "A[k][c]: the task metric at the end of stage k (the nearest evaluation at or "
            "before the boundary inside the stage); ± the harness's standard error.",
        ],
    )


def _cell(t: TaskSummary, row: int | None, c: int) -> tuple[float, float | None]:
    if row is None:
        return math.nan, None
    return float(t.grid.value[row, c]), float(t.grid.stderr[row, c])


def task_table(name: str, t: TaskSummary) -> Table:
    """Per task metric: what it measures, final value, forgetting, BWT term, worst gap."""
    last = t.forgetting[-1] if t.forgetting else {}
    rows = []
    for col in t.grid.columns:
        gaps = [x.gap for x in t.gaps if x.label == col.label]
        value, err = t.final.get(col.label, (math.nan, None))
        rows.append(
            [
                col.label,
                col.domain or "before the run",
                "higher" if col.higher_is_better else "lower",
                _pm(value, err),
                signed(last.get(col.label)),
                signed(t.bwt_terms.get(col.label)),
                signed(max(gaps)) if gaps else MISSING,
            ]
        )
    return Table(
        title=f"{name}: task forgetting (BWT {signed(t.bwt)})",
        columns=[
            "task metric",
            "knowledge of",
            "better",
            "final",
            "forgetting",
            "BWT term",
            "max stability gap",
        ],
        rows=rows,
        notes=[
            "Signs as for accuracy, whatever the metric's direction: forgetting > 0 and "
            "BWT < 0 mean the old knowledge got worse; a stability gap > 0 is a transient "
            "drop during a stage (docs/metrics.md, task metrics).",
        ],
    )


def gap_table(name: str, t: TaskSummary, stages: list[str]) -> Table:
    rows = [
        [
            f"{x.stage + 1}. {stages[x.stage]}",
            x.label,
            num(x.start_value),
            num(x.low_value),
            signed(x.gap),
            str(x.low_tokens),
            str(x.recover_tokens) if x.recovered else "not recovered",
        ]
        for x in t.gaps
    ]
    return Table(
        title=f"{name}: task stability gap",
        columns=[
            "stage",
            "task metric",
            "at stage start",
            "worst",
            "gap",
            "worst at tokens",
            "tokens to recover",
        ],
        rows=rows,
        notes=[
            "Recovered: back within one standard error (of the stage-start value) of the "
            "stage-start value."
        ],
    )


def run_tables(r: RunSummary) -> list[Table]:
    """The task tables of one run ([] without task records)."""
    t = r.tasks
    if t is None:
        return []
    out = [matrix_table(r.name, t), task_table(r.name, t)]
    if t.gaps:
        out.append(gap_table(r.name, t, [s.name for s in t.grid.stages]))
    return out


def comparison_table(st: Study) -> Table | None:
    """Final task metrics of each run against the re-training baseline."""
    if st.baseline is None or not st.task_comparisons:
        return None
    labels = list(dict.fromkeys(k for d in st.task_comparisons.values() for k in d))
    rows = [
        [run, *[signed(deltas.get(k)) for k in labels]]
        for run, deltas in st.task_comparisons.items()
    ]
    return Table(
        title=f"Tasks against re-training ({st.runs[st.baseline].name})",
        columns=["run", *[f"Δ {k}" for k in labels]],
        rows=rows,
        notes=[
            "Δ = final value of the run - final value of re-training, sign flipped for "
            "metrics where lower is better (> 0: the continual run is better)."
        ],
    )
