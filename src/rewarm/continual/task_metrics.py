"""Continual-evaluation metrics of task results (the `task` records of a run).

The loss metrics of `rewarm.continual.metrics` carried over to task metrics
(docs/metrics.md, "Task metrics"). A column is one (task, metric) pair; most task
metrics are better when higher (accuracy), so every formula works on the
"goodness" g = s * value with s = +1 when higher is better (the record's
`higher_is_better`, default true) and s = -1 otherwise, and keeps the sign
conventions of the literature's accuracy formulas:

- A[k][c]: the value at the end of stage k (the nearest evaluation at or before
  e_k inside stage k, as for loss);
- forgetting F[k][c] = max over reference points of g - g(A[k][c]) (> 0: forgotten);
- BWT = mean over old columns of g(A[K][c]) - g(A[own(c)][c]) (< 0: forgetting);
- stability gap = g(start) - min over (s_k, e_k] of g (> 0: a transient drop), with
  recovery once g is back within eps of g(start); eps is the harness's standard
  error of the start value (`EPS` where it reports none);
- against re-training: delta = g(run's final) - g(baseline's final) (> 0: better).

Which stages a column is "old" in follows its `domain` (the declared domain whose
knowledge the task measures, set for built-in tasks): old once a stage that trains
that domain has ended and the current stage does not train it, as for held-out
loss. A column without a domain measures knowledge from before the run (a
standard benchmark on a continued model): it is old in every stage, and the run's
first evaluation (at the start of stage 0) is one of its reference points. Pure
functions of the records; no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rewarm.continual.timeline import Stage
from rewarm.runlog import TaskRecord

EPS = 0.01
"""Recovery tolerance (in the metric's units) where the harness gives no stderr."""


@dataclass(frozen=True, kw_only=True)
class Column:
    task: str
    metric: str
    domain: str | None
    higher_is_better: bool

    @property
    def label(self) -> str:
        return f"{self.task} {self.metric}"

    @property
    def sign(self) -> float:
        return 1.0 if self.higher_is_better else -1.0


@dataclass(frozen=True, kw_only=True)
class TaskGrid:
    """Task evaluation points of one run; NaN where a column was not evaluated."""

    tokens: np.ndarray  # (n,) int64, increasing
    steps: np.ndarray  # (n,) int64
    columns: tuple[Column, ...]
    value: np.ndarray  # (n, C)
    stderr: np.ndarray  # (n, C), NaN where none was reported
    stages: tuple[Stage, ...]

    def at_or_before(self, c: int, tokens: int, after: int | None) -> int | None:
        """Row of the latest evaluation of column c at <= tokens (and > after)."""
        ok = (self.tokens <= tokens) & ~np.isnan(self.value[:, c])
        if after is not None:
            ok &= self.tokens > after
        idx = np.flatnonzero(ok)
        return int(idx[-1]) if idx.size else None

    def end_row(self, k: int, c: int) -> int | None:
        s = self.stages[k]
        return self.at_or_before(c, s.end, s.start if s.end > s.start else None)

    def start_row(self, k: int, c: int) -> int | None:
        after = self.stages[k - 1].start if k > 0 else None
        return self.at_or_before(c, self.stages[k].start, after)

    def goodness(self, row: int | None, c: int) -> float:
        return math.nan if row is None else self.columns[c].sign * float(self.value[row, c])

    def old(self, k: int, c: int) -> bool:
        """Is column c about knowledge stage k may forget (see the module doc)?"""
        d = self.columns[c].domain
        if d is None:
            return True
        return d not in self.stages[k].domains and any(d in s.domains for s in self.stages[:k])

    def own(self, k: int, c: int) -> int | None:
        """Last stage before k that trained column c's domain (None: before the run)."""
        d = self.columns[c].domain
        found = [s.index for s in self.stages[:k] if d is not None and d in s.domains]
        return found[-1] if found else None


def build_grid(records: Sequence[TaskRecord], stages: Sequence[Stage]) -> TaskGrid | None:
    """The grid of a run's `task` records (later records win at the same tokens), on
    the run's stages (`Timeline.stages`); None without task records."""
    if not records or not stages:
        return None
    keys: dict[tuple[str, str], Column] = {}
    for r in records:
        keys.setdefault(
            (r.task, r.metric),
            Column(
                task=r.task,
                metric=r.metric,
                domain=r.domain,
                higher_is_better=r.higher_is_better is not False,
            ),
        )
    positions = sorted({r.tokens for r in records})
    row = {t: j for j, t in enumerate(positions)}
    col = {k: i for i, k in enumerate(keys)}
    value = np.full((len(positions), len(keys)), np.nan)
    stderr = np.full_like(value, np.nan)
    steps = np.zeros(len(positions), dtype=np.int64)
    for r in records:
        j, i = row[r.tokens], col[(r.task, r.metric)]
        value[j, i] = r.value
        stderr[j, i] = np.nan if r.stderr is None else r.stderr
        steps[j] = r.step
    return TaskGrid(
        tokens=np.asarray(positions, dtype=np.int64),
        steps=steps,
        columns=tuple(keys.values()),
        value=value,
        stderr=stderr,
        stages=tuple(stages),
    )


def matrix(g: TaskGrid) -> np.ndarray:
    """A[k][c], shape (K, C): the value at the end of each stage (NaN if none)."""
    out = np.full((len(g.stages), len(g.columns)), np.nan)
    for k in range(len(g.stages)):
        for c in range(len(g.columns)):
            r = g.end_row(k, c)
            if r is not None:
                out[k, c] = g.value[r, c]
    return out


def forgetting(g: TaskGrid) -> list[dict[str, float]]:
    """F[k][c] = max over references of g - g(A[k][c]) for every stage k, per column
    label. References: the ends of stages l < k from the domain's first own stage on
    (every l < k and the run's first evaluation for a column without a domain)."""
    a = matrix(g)
    out: list[dict[str, float]] = []
    for k in range(len(g.stages)):
        row: dict[str, float] = {}
        for c, col in enumerate(g.columns):
            first = next((s.index for s in g.stages if col.domain in s.domains), None)
            earlier = (
                range(k) if col.domain is None else range(first if first is not None else k, k)
            )
            refs = [col.sign * a[j, c] for j in earlier]
            if col.domain is None:
                refs.append(g.goodness(g.start_row(0, c), c))
            refs = [x for x in refs if not math.isnan(x)]
            if refs and not math.isnan(a[k, c]):
                row[col.label] = max(refs) - col.sign * a[k, c]
        out.append(row)
    return out


def backward_transfer(g: TaskGrid) -> tuple[float | None, dict[str, float]]:
    """BWT over the columns old in the last stage K: mean of g(A[K][c]) - g(A[own][c]),
    own = the last earlier stage training c's domain (the run's first evaluation for a
    column without a domain). Negative means forgetting; (None, {}) if no old column."""
    a = matrix(g)
    last = len(g.stages) - 1
    terms: dict[str, float] = {}
    for c, col in enumerate(g.columns):
        if not g.old(last, c):
            continue
        own = g.own(last, c)
        before = col.sign * a[own, c] if own is not None else g.goodness(g.start_row(0, c), c)
        after = col.sign * a[last, c]
        if not (math.isnan(before) or math.isnan(after)):
            terms[col.label] = float(after - before)
    if not terms:
        return None, {}
    return float(np.mean(list(terms.values()))), terms


@dataclass(frozen=True, kw_only=True)
class TaskGap:
    """The transient drop of an old column during stage `stage`."""

    stage: int
    label: str
    start_value: float
    low_value: float
    """The worst value of the stage (lowest when higher is better)."""
    gap: float
    """g(start) - min g over the stage's evaluations; > 0: a transient drop."""
    low_tokens: int
    eps: float
    recovered: bool
    recover_tokens: int | None
    """Tokens from the stage start to the first evaluation after the low point with
    g >= g(start) - eps (0 when gap <= eps)."""


def stability_gaps(g: TaskGrid) -> list[TaskGap]:
    """Stability gap of every old column in every stage (De Lange et al. 2023, on the
    task metric; stage 0 only for columns without a domain)."""
    out: list[TaskGap] = []
    for k, s in enumerate(g.stages):
        inside = np.flatnonzero((g.tokens > s.start) & (g.tokens <= s.end))
        for c, col in enumerate(g.columns):
            base = g.start_row(k, c)
            pts = inside[~np.isnan(g.value[inside, c])]
            if not g.old(k, c) or base is None or pts.size == 0:
                continue
            good = col.sign * g.value[pts, c]
            start = g.goodness(base, c)
            low = int(np.argmin(good))  # first low point on ties
            gap = float(start - good[low])
            err = float(g.stderr[base, c])
            eps = err if math.isfinite(err) and err > 0 else EPS
            rec_tok: int | None = 0
            if gap > eps:
                back = np.flatnonzero(good[low + 1 :] >= start - eps)
                rec_tok = int(g.tokens[pts[low + 1 + back[0]]] - s.start) if back.size else None
            out.append(
                TaskGap(
                    stage=k,
                    label=col.label,
                    start_value=float(g.value[base, c]),
                    low_value=float(g.value[pts[low], c]),
                    gap=gap,
                    low_tokens=int(g.tokens[pts[low]]),
                    eps=eps,
                    recovered=rec_tok is not None,
                    recover_tokens=rec_tok,
                )
            )
    return out


def final_values(g: TaskGrid) -> dict[str, tuple[float, float | None]]:
    """(value, stderr) of each column at the end of the last stage."""
    out: dict[str, tuple[float, float | None]] = {}
    last = len(g.stages) - 1
    for c, col in enumerate(g.columns):
        r = g.end_row(last, c)
        if r is not None:
            err = float(g.stderr[r, c])
            out[col.label] = (float(g.value[r, c]), err if math.isfinite(err) else None)
    return out


def against(run: TaskGrid, baseline: TaskGrid) -> dict[str, float]:
    """g(run's final) - g(baseline's final) per column both have (> 0: run better)."""
    mine, theirs = final_values(run), final_values(baseline)
    sign = {col.label: col.sign for col in run.columns}
    return {k: sign[k] * (v[0] - theirs[k][0]) for k, v in mine.items() if k in theirs}


@dataclass(frozen=True, kw_only=True)
class TaskSummary:
    grid: TaskGrid
    matrix: np.ndarray
    forgetting: list[dict[str, float]]
    bwt: float | None
    bwt_terms: dict[str, float]
    gaps: list[TaskGap]
    final: dict[str, tuple[float, float | None]]


def summarize(records: Sequence[TaskRecord], stages: Sequence[Stage]) -> TaskSummary | None:
    """Every task metric of one run; None without task records."""
    g = build_grid(records, stages)
    if g is None:
        return None
    bwt, terms = backward_transfer(g)
    return TaskSummary(
        grid=g,
        matrix=matrix(g),
        forgetting=forgetting(g),
        bwt=bwt,
        bwt_terms=terms,
        gaps=stability_gaps(g),
        final=final_values(g),
    )
