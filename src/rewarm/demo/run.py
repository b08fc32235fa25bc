"""The whole demo: train the arms, compute the table, write the report and results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rewarm.demo import arms as arms_mod
from rewarm.demo import runner, table
from rewarm.demo.arms import DemoSize
from rewarm.demo.figure import arms_figure

RESULTS = "demo_results.json"
REPORT = "report"
FIGURE = "demo-arms.png"


@dataclass(frozen=True, kw_only=True)
class DemoOutcome:
    results: list[table.ArmResult]
    table: str
    report: str
    """The report's own summary text (run overview and comparison)."""
    report_dir: Path
    figure: Path
    """Every arm's docs and code loss on one figure (in the report directory)."""
    results_path: Path
    seconds: dict[str, float]
    plans: list[runner.ArmPlan]
    task_table: str = ""
    """With `tasks`: accuracy per built-in task and the docs tasks' forgetting."""


def run_demo(
    out_dir: Path,
    *,
    size: DemoSize,
    arms: Sequence[str] = arms_mod.ARMS,
    seed: int = 0,
    progress: bool = True,
    on_arm: Callable[[int, runner.ArmPlan, int, float], None] | None = None,
    tasks: bool = False,
) -> DemoOutcome:
    """Train (or resume) the chosen arms under `out_dir`, then tabulate and report.
    With `tasks`, the arms evaluate the built-in tasks too (`rewarm.demo.tasks`)."""
    from rewarm.report.build import build_report
    from rewarm.runlog import read_run

    plans = runner.plan_arms(arms, out_dir, seed, size, tasks=tasks)
    seconds = runner.run_arms(plans, progress=progress, on_arm=on_arm)
    dirs = {p.arm: p.cfg.run_dir for p in plans}
    results = table.arm_results(dirs)
    text = table.format_table(results)
    task_text = ""
    if tasks:
        from rewarm.demo.tasks import format_task_table, task_results

        task_text = format_task_table(task_results(dirs))
    meta = {
        "seed": seed,
        "size": asdict(size),
        "runs": {arm: str(path) for arm, path in dirs.items()},
        "branch_of": {p.arm: p.branch_of for p in plans if p.branch_of},
        "demo_tokens": {p.arm: p.tokens for p in plans},
        "seconds": seconds,
        "table": text,
        **({"task_table": task_text} if tasks else {}),
    }
    results_path = out_dir / RESULTS
    table.write_results(results_path, results, meta)
    report_dir = out_dir / REPORT
    logs = [read_run(path) for path in dirs.values()]
    baseline = table.BASELINE if table.BASELINE in dirs else None
    summary = build_report(logs, report_dir, baseline=baseline)
    figure = arms_figure(dirs, report_dir / FIGURE, size.stage1_tokens)
    return DemoOutcome(
        results=results,
        table=text,
        report=summary,
        report_dir=report_dir,
        figure=figure,
        results_path=results_path,
        seconds=seconds,
        plans=plans,
        task_table=task_text,
    )
