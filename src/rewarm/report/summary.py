"""Every metric of every run in one place: what the tables, figures and HTML show."""

from __future__ import annotations

from dataclasses import dataclass, field

from rewarm.continual import metrics as m
from rewarm.continual import task_metrics
from rewarm.continual.compare import Comparison, RunView, compare, detect_baseline
from rewarm.continual.timeline import Timeline, timeline_of
from rewarm.runlog import RunLog

WINDOWS = (10, 100)


@dataclass(frozen=True, kw_only=True)
class RunSummary:
    """The continual-evaluation metrics of one run (see rewarm.continual.metrics)."""

    log: RunLog
    timeline: Timeline
    matrix: m.LossMatrix
    bpb_matrix: m.LossMatrix
    average_seen: list[float]
    forgetting: list[dict[str, float]]
    bwt: float | None
    bwt_terms: dict[str, float]
    fwt: dict[int, dict[str, float]]
    gaps: list[m.StabilityGap]
    worst: m.WorstCase
    wf: dict[int, dict[str, float]]
    compute: m.Compute
    eps: float
    tasks: task_metrics.TaskSummary | None = None
    """Task metrics (`task` records, lm-evaluation-harness), None when there are none."""

    @property
    def name(self) -> str:
        return self.log.name

    def view(self) -> RunView:
        return RunView(
            name=self.name,
            path=self.log.path,
            timeline=self.timeline,
            compute=self.compute,
            config=self.log.config,
            step_tokens={t.step: t.tokens for t in self.log.trains},
            branch_tokens=None if self.log.branch is None else self.log.branch.tokens,
        )


def _eval_tokens_per_domain(log: RunLog) -> int | None:
    section = log.config.get("eval", {})
    value = section.get("tokens_per_domain") if isinstance(section, dict) else None
    return int(value) if isinstance(value, int | float) else None


def summarize(log: RunLog, eps: float = 0.01) -> RunSummary:
    """Compute every metric of one run from its records."""
    tl = timeline_of(log)
    r = m.loss_matrix(tl)
    bwt, terms = m.backward_transfer(tl, r)
    start = log.start
    return RunSummary(
        log=log,
        timeline=tl,
        matrix=r,
        bpb_matrix=m.loss_matrix(tl, "bits_per_byte"),
        average_seen=m.average_seen_loss(tl, r),
        forgetting=m.forgetting(tl, r),
        bwt=bwt,
        bwt_terms=terms,
        fwt=m.forward_transfer(tl),
        gaps=m.stability_gaps(tl, eps),
        worst=m.worst_case(tl),
        wf={w: m.windowed_forgetting(tl, w) for w in WINDOWS},
        compute=m.compute(
            tl,
            flops_per_token=None if start is None else start.flops_per_token,
            non_embedding_params=None if start is None else start.non_embedding_params,
            eval_tokens_per_domain=_eval_tokens_per_domain(log),
        ),
        eps=eps,
        tasks=task_metrics.summarize(log.tasks, tl.stages),
    )


@dataclass(frozen=True, kw_only=True)
class Study:
    """Several runs, the baseline among them (if any) and each run's comparison."""

    runs: list[RunSummary]
    baseline: int | None
    comparisons: list[Comparison]
    task_comparisons: dict[str, dict[str, float]] = field(default_factory=dict)
    """Run name -> task column -> g(run final) - g(baseline final) (> 0: run better)."""


def study(logs: list[RunLog], baseline: str | None = None, eps: float = 0.01) -> Study:
    """Summaries of all runs plus their comparison with the re-training baseline."""
    runs = [summarize(log, eps) for log in logs]
    views = [r.view() for r in runs]
    b = detect_baseline(views, baseline)
    comps = (
        [] if b is None else [compare(v, views[b], views) for i, v in enumerate(views) if i != b]
    )
    task_comps: dict[str, dict[str, float]] = {}
    base_tasks = None if b is None else runs[b].tasks
    for i, r in enumerate(runs):
        if base_tasks is not None and r.tasks is not None and i != b:
            task_comps[r.name] = task_metrics.against(r.tasks.grid, base_tasks.grid)
    return Study(runs=runs, baseline=b, comparisons=comps, task_comparisons=task_comps)
