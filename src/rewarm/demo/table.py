"""The demo's results: one row per arm, computed from the runs' `metrics.jsonl`.

Every number comes from the metric functions of `rewarm.evaluation` (SCIENCE.md
section 4) applied to the logged evaluations; nothing is taken from the trainer:

- final loss per domain: R[K][i] = L_i(e_K), `metrics.loss_matrix`;
- average: mean over the seen domains of the last row, `metrics.average_seen_loss`;
- docs forgetting: F[K][docs] = R[K][docs] - min_{l<K} R[l][docs],
  `metrics.forgetting` (undefined for the one-stage baseline);
- deepest stability gap: the largest max_{t in stage} L_docs(t) - L_docs(s_k) over
  the stages after the first, `metrics.stability_gaps` (De Lange et al. 2023);
- compute: tokens since the stage-1 checkpoint / re-training tokens, and the same
  with stage 1 included, `compare.compare` (Ibrahim et al. 2024's comparison).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewarm import atomic
from rewarm.continual import metrics as m
from rewarm.continual.compare import RunView, compare
from rewarm.continual.timeline import timeline_of
from rewarm.runlog import RunLog, read_run

OLD, NEW = "docs", "code"
BASELINE = "retrain"


@dataclass(frozen=True, kw_only=True)
class ArmResult:
    arm: str
    docs_loss: float
    code_loss: float
    average: float
    docs_forgetting: float | None
    """None for the one-stage baseline (no later stage to forget in)."""
    max_gap: float | None
    compute: float | None
    """Tokens trained since the stage-1 checkpoint / re-training tokens."""
    compute_total: float | None
    """(Stage-1 tokens + tokens since) / re-training tokens."""
    tokens: int


def _view(log: RunLog) -> RunView:
    tl = timeline_of(log)
    start = log.start
    comp = m.compute(
        tl,
        flops_per_token=None if start is None else start.flops_per_token,
        non_embedding_params=None if start is None else start.non_embedding_params,
    )
    return RunView(
        name=log.name,
        path=log.path,
        timeline=tl,
        compute=comp,
        config=log.config,
        step_tokens={t.step: t.tokens for t in log.trains},
    )


def arm_results(run_dirs: dict[str, Path], eps: float = 0.01) -> list[ArmResult]:
    """One `ArmResult` per arm (in the order given), read from each run's log."""
    logs = {arm: read_run(path) for arm, path in run_dirs.items()}
    views = {arm: _view(log) for arm, log in logs.items()}
    base = views.get(BASELINE)
    out = []
    for arm, view in views.items():
        tl = view.timeline
        r = m.loss_matrix(tl)
        final = dict(zip(r.domains, r.values[-1].tolist(), strict=True))
        forget = m.forgetting(tl, r)[-1].get(OLD)
        gaps = [g.gap for g in m.stability_gaps(tl, eps) if g.domain == OLD]
        comp = comp_total = None
        if base is not None and arm == BASELINE:
            comp = comp_total = 1.0
        elif base is not None:
            c = compare(view, base, list(views.values()))
            comp, comp_total = c.token_ratio, c.total_ratio
        out.append(
            ArmResult(
                arm=arm,
                docs_loss=final[OLD],
                code_loss=final[NEW],
                average=m.average_seen_loss(tl, r)[-1],
                docs_forgetting=forget,
                max_gap=max(gaps) if gaps else None,
                compute=comp,
                compute_total=comp_total,
                tokens=view.compute.tokens,
            )
        )
    return out


COLUMNS = (
    ("arm", 16),
    ("docs loss", 9),
    ("code loss", 9),
    ("average", 8),
    ("docs forgetting", 15),
    ("deepest gap", 11),
    ("compute", 8),
    ("incl. stage 1", 13),
)


def _fmt(x: float | None, signed: bool = False, digits: int = 3) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def row_cells(r: ArmResult) -> list[str]:
    """The printed cells of one row (the test parses them back)."""
    return [
        r.arm,
        _fmt(r.docs_loss),
        _fmt(r.code_loss),
        _fmt(r.average),
        _fmt(r.docs_forgetting, signed=True),
        _fmt(r.max_gap, signed=True),
        _fmt(r.compute, digits=2),
        _fmt(r.compute_total, digits=2),
    ]


def format_table(results: list[ArmResult]) -> str:
    """Plain-text table: losses in nats per token on held-out data, lower is better."""
    widths = [w for _, w in COLUMNS]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    rows = [line([name for name, _ in COLUMNS])]
    rows.append(line(["-" * w for w in widths]))
    rows.extend(line(row_cells(r)) for r in results)
    return "\n".join(rows)


def write_results(path: Path, results: list[ArmResult], meta: dict[str, Any]) -> None:
    """`demo_results.json`: the table's numbers at full precision, plus the settings."""
    data = {**meta, "arms": [asdict(r) for r in results]}
    atomic.write_json(path, data, indent=2)
