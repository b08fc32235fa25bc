"""The demo's results: one row per arm, computed from the runs' `metrics.jsonl`.

Every number comes from the metric functions of `rewarm.evaluation` (SCIENCE.md
section 4) applied to the logged evaluations; nothing is taken from the trainer:

- final loss per domain: R[K][i] = L_i(e_K), `metrics.loss_matrix`, in nats per
  token and in bits per byte (the evaluator's conversion), so tokenizers compare;
- old-corpus forgetting: F[K][old] = R[K][old] - min_{l<K} R[l][old],
  `metrics.forgetting` (undefined for the one-stage baseline), in bits per byte;
- deepest stability gap: the largest max_{t in stage} L_old(t) - L_old(s_k) over the
  stages after the first, `metrics.stability_gaps` (De Lange et al. 2023), in bits
  per byte;
- against the unigram reference (`rewarm.evaluation.unigram`, same held-out sample):
  final bits per byte / the unigram's, per domain (< 1: below the unigram level);
- compute: tokens since the stage-1 checkpoint / re-training tokens, and the same
  with stage 1 included, `compare.compare` (a branch's shared stage 1 counted once).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewarm import atomic
from rewarm.continual.compare import compare
from rewarm.report.summary import RunSummary, summarize
from rewarm.runlog import read_run

BASELINE = "retrain"
UNIGRAM = "unigram"


@dataclass(frozen=True, kw_only=True)
class Reference:
    """The unigram model of one corpus on the evaluator's held-out sample."""

    nats: float
    bits_per_byte: float


@dataclass(frozen=True, kw_only=True)
class ArmResult:
    arm: str
    seed: int
    old_loss: float
    """Final held-out loss (nats per token) on the old corpus."""
    new_loss: float
    old_bpb: float
    """Final held-out bits per byte on the old corpus."""
    new_bpb: float
    mean_bpb: float
    """Mean of the two."""
    old_forgetting: float | None
    """Bits per byte; None for the one-stage baseline (no later stage to forget in)."""
    max_gap: float | None
    """Deepest stability gap of the old corpus after stage 1, bits per byte."""
    old_vs_unigram: float | None
    """old_bpb / the unigram's (< 1: below the unigram level)."""
    new_vs_unigram: float | None
    compute: float | None
    """Tokens trained since the stage-1 checkpoint / re-training tokens."""
    compute_total: float | None
    """(Stage-1 tokens + tokens since) / re-training tokens."""
    tokens: int


def _final(run: RunSummary, domain: str, bpb: bool) -> float:
    mat = run.bpb_matrix if bpb else run.matrix
    return float(mat.values[-1, mat.domains.index(domain)])


def _ratio(x: float, ref: Reference | None) -> float | None:
    if ref is None or not ref.bits_per_byte or math.isnan(x):
        return None
    return x / ref.bits_per_byte


def arm_results(
    run_dirs: dict[str, Path],
    *,
    old: str,
    new: str,
    seed: int = 0,
    unigram: dict[str, Reference] | None = None,
    eps: float = 0.01,
) -> list[ArmResult]:
    """One `ArmResult` per arm (in the order given), read from each run's log."""
    runs = {arm: summarize(read_run(path), eps) for arm, path in run_dirs.items()}
    views = {arm: run.view() for arm, run in runs.items()}
    base = views.get(BASELINE)
    unigram = unigram or {}
    out = []
    for arm, run in runs.items():
        old_loss, old_bpb = _final(run, old, False), _final(run, old, True)
        new_bpb = _final(run, new, True)
        to_bpb = old_bpb / old_loss if old_loss else math.nan  # 1 / (ln 2 x bytes per token)
        forget = run.forgetting[-1].get(old)
        gaps = [g.gap for g in run.gaps if g.domain == old]
        comp = comp_total = None
        if base is not None and arm == BASELINE:
            comp = comp_total = 1.0
        elif base is not None:
            c = compare(views[arm], base, list(views.values()))
            comp, comp_total = c.token_ratio, c.total_ratio
        out.append(
            ArmResult(
                arm=arm,
                seed=seed,
                old_loss=old_loss,
                new_loss=_final(run, new, False),
                old_bpb=old_bpb,
                new_bpb=new_bpb,
                mean_bpb=(old_bpb + new_bpb) / 2,
                old_forgetting=None if forget is None else forget * to_bpb,
                max_gap=max(gaps) * to_bpb if gaps else None,
                old_vs_unigram=_ratio(old_bpb, unigram.get(old)),
                new_vs_unigram=_ratio(new_bpb, unigram.get(new)),
                compute=comp,
                compute_total=comp_total,
                tokens=run.compute.tokens,
            )
        )
    return out


@dataclass(frozen=True)
class Column:
    header: str
    """`{old}` and `{new}` stand for the corpora's names."""
    field: str
    digits: int
    signed: bool = False
    exact: bool = False
    """The same for every seed (set by the config): no spread is shown."""


COLUMNS = (
    Column("{old} bpb", "old_bpb", 3),
    Column("{new} bpb", "new_bpb", 3),
    Column("mean bpb", "mean_bpb", 3),
    Column("{old} forgetting", "old_forgetting", 3, signed=True),
    Column("deepest gap", "max_gap", 3, signed=True),
    Column("{old}/unigram", "old_vs_unigram", 2),
    Column("{new}/unigram", "new_vs_unigram", 2),
    Column("compute", "compute", 2, exact=True),
    Column("incl. stage 1", "compute_total", 2, exact=True),
)


def fmt(x: float | None, digits: int, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def row_cells(r: ArmResult) -> list[str]:
    """The printed cells of one row of a one-seed table (the tests parse them back)."""
    return [r.arm, *(fmt(getattr(r, c.field), c.digits, c.signed) for c in COLUMNS)]


def unigram_cells(unigram: dict[str, Reference], old: str, new: str) -> list[str]:
    """The `unigram` reference row: its bits per byte, ratio 1 by definition."""
    o, n = unigram[old].bits_per_byte, unigram[new].bits_per_byte
    values = {"old_bpb": o, "new_bpb": n, "mean_bpb": (o + n) / 2}
    values |= {"old_vs_unigram": 1.0, "new_vs_unigram": 1.0}
    return [UNIGRAM, *(fmt(values.get(c.field), c.digits) for c in COLUMNS)]


def headers(old: str, new: str) -> list[str]:
    return ["arm", *(c.header.format(old=old, new=new) for c in COLUMNS)]


def format_table(rows: list[list[str]], old: str, new: str) -> str:
    """Plain text: a header, a rule, the rows; the arm left-aligned, numbers right."""
    grid = [headers(old, new), *rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    return "\n".join([line(grid[0]), line(["-" * w for w in widths]), *map(line, grid[1:])])


def write_results(path: Path, results: list[ArmResult], meta: dict[str, Any]) -> None:
    """`demo_results.json`: the table's numbers at full precision, plus the settings."""
    data = {**meta, "arms": [asdict(r) for r in results]}
    atomic.write_json(path, data, indent=2)
