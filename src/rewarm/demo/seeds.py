"""Several seeds of the same arms: mean and standard deviation of every table cell.

`rewarm demo --seeds N` runs every arm with run.seed = s, s+1, ..., s+N-1 (another
initialisation and another data order each). A cell of the table is then the mean
over seeds ± the sample standard deviation (ddof = 1) of that cell's per-seed
values; cells set by the config alone (compute ratios) show the mean only. Pure:
numbers in, numbers and strings out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from rewarm.demo.table import COLUMNS, ArmResult, fmt


@dataclass(frozen=True, kw_only=True)
class Spread:
    mean: float | None
    sd: float | None
    """Sample standard deviation (ddof = 1); None with fewer than two values."""
    n: int


def spread(values: Sequence[float | None]) -> Spread:
    """Mean and standard deviation of the values that are numbers (None/NaN dropped)."""
    xs = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not xs:
        return Spread(mean=None, sd=None, n=0)
    sd = statistics.stdev(xs) if len(xs) >= 2 else None
    return Spread(mean=statistics.fmean(xs), sd=sd, n=len(xs))


def by_arm(results: Sequence[ArmResult]) -> dict[str, list[ArmResult]]:
    """Results grouped by arm, arms in first-seen order, each list in seed order."""
    out: dict[str, list[ArmResult]] = {}
    for r in sorted(results, key=lambda r: r.seed):
        out.setdefault(r.arm, []).append(r)
    return {arm: out[arm] for arm in dict.fromkeys(r.arm for r in results)}


def cell(sp: Spread, digits: int, signed: bool = False, exact: bool = False) -> str:
    """`mean±sd` (no spaces, so a printed row splits on whitespace), or the mean alone."""
    text = fmt(sp.mean, digits, signed)
    if sp.sd is None or exact or text == "-":
        return text
    return f"{text}±{sp.sd:.{digits}f}"


def aggregate_cells(results: Sequence[ArmResult]) -> list[list[str]]:
    """One row of cells per arm: every column as mean±sd over the seeds."""
    rows = []
    for arm, rs in by_arm(results).items():
        cells = [
            cell(spread([getattr(r, c.field) for r in rs]), c.digits, c.signed, c.exact)
            for c in COLUMNS
        ]
        rows.append([arm, *cells])
    return rows
