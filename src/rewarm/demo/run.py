"""The whole demo: train the arms for every seed, compute the table, the unigram
reference and what holds, write the reports and `demo_results.json`.

Layout under `out`: `data/` (shards and tokenizer, shared by every seed and arm),
then per seed the arms' run directories and `report/` (with one seed directly under
`out`, with several under `out/seed-S`), and `demo_results.json` with every number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rewarm.demo import arms as arms_mod
from rewarm.demo import claims, runner, seeds, table
from rewarm.demo.arms import Layout
from rewarm.demo.figure import arms_figure
from rewarm.demo.settings import DemoSettings

RESULTS = "demo_results.json"
REPORT = "report"
FIGURE = "demo-arms.png"
DATA = "data"


@dataclass(frozen=True, kw_only=True)
class DemoOutcome:
    results: list[table.ArmResult]
    """Every arm of every seed."""
    unigram: dict[str, table.Reference]
    table: str
    """The printed table (one seed: its numbers; several: mean±sd per cell)."""
    findings: list[claims.Finding]
    what_holds: list[str]
    """The printed "what holds" block (`claims.format_findings`)."""
    report_dirs: dict[int, Path]
    """Seed -> its report directory (report.html, summary.md, the arms figure)."""
    results_path: Path
    seconds: dict[int, dict[str, float]]
    plans: list[runner.ArmPlan]
    task_table: str = ""
    """With `tasks`: accuracy per built-in task and the docs tasks' forgetting."""


def layout(out_dir: Path, seed: int, n_seeds: int) -> Layout:
    """Where one seed's runs go (see the module docstring)."""
    runs = out_dir if n_seeds == 1 else out_dir / f"seed-{seed}"
    return Layout(runs=str(runs), data=str(out_dir / DATA))


def unigram_references(
    data_dir: Path, names: Sequence[str], size: arms_mod.DemoSize
) -> dict[str, table.Reference]:
    """The unigram model of each corpus's training split, on the evaluator's sample."""
    from rewarm.data.shards import open_domain
    from rewarm.evaluation import unigram
    from rewarm.evaluation.evaluator import eval_windows

    out = {}
    for name in names:
        d = open_domain(data_dir / name)
        logp = unigram.log_probs(d.train, int(d.manifest["vocab_size"]))
        windows = eval_windows(d.heldout, size.eval_tokens, size.seq_len, f"domain {name!r}")
        found = unigram.score(logp, windows, d.bytes_per_token_heldout)
        out[name] = table.Reference(nats=found.nats, bits_per_byte=found.bits_per_byte)
    return out


def plan_all(
    out_dir: Path,
    settings: DemoSettings,
    arms: Sequence[str],
    seed_list: Sequence[int],
    *,
    tasks: bool = False,
) -> list[runner.ArmPlan]:
    """Every seed's arm plans, seed by seed (all configs checked before any training)."""
    where = {s: layout(out_dir, s, len(seed_list)) for s in seed_list}
    return [
        plan
        for s in seed_list
        for plan in runner.plan_arms(arms, settings, where[s], s, tasks=tasks)
    ]


def run_demo(
    out_dir: Path,
    *,
    settings: DemoSettings,
    arms: Sequence[str] = arms_mod.ARMS,
    seed_list: Sequence[int] = (0,),
    progress: bool = True,
    on_arm: Callable[[int, runner.ArmPlan, int, float], None] | None = None,
    tasks: bool = False,
) -> DemoOutcome:
    """Train (or resume) the chosen arms for every seed, then tabulate and report.
    With `tasks`, the arms evaluate the built-in tasks too (`rewarm.demo.tasks`)."""
    plans = plan_all(out_dir, settings, arms, seed_list, tasks=tasks)
    seconds: dict[int, dict[str, float]] = {}
    done = 0
    for s in seed_list:
        mine = [p for p in plans if p.seed == s]

        def tell(
            i: int, plan: runner.ArmPlan, tokens: int, elapsed: float, first: int = done
        ) -> None:
            if on_arm is not None:
                on_arm(first + i, plan, sum(p.tokens for p in plans[:first]) + tokens, elapsed)

        seconds[s] = runner.run_arms(mine, progress=progress, on_arm=tell)
        done += len(mine)
    old, new = settings.old.name, settings.new.name
    unigram = unigram_references(out_dir / DATA, (old, new), settings.size)
    results: list[table.ArmResult] = []
    report_dirs: dict[int, Path] = {}
    for s in seed_list:
        dirs = {p.arm: p.cfg.run_dir for p in plans if p.seed == s}
        results += table.arm_results(dirs, old=old, new=new, seed=s, unigram=unigram)
        report_dirs[s] = _report(dirs, Path(layout(out_dir, s, len(seed_list)).runs), settings)
    if len(seed_list) == 1:
        rows = [table.row_cells(r) for r in results]
    else:
        rows = seeds.aggregate_cells(results)
    text = table.format_table([table.unigram_cells(unigram, old, new), *rows], old, new)
    task_text = ""
    if tasks:
        from rewarm.demo.tasks import format_task_table, task_results

        task_rows = []
        for s in seed_list:
            dirs = {p.arm: p.cfg.run_dir for p in plans if p.seed == s}
            label = f" (seed {s})" if len(seed_list) > 1 else ""
            task_rows += task_results(dirs, old, new, label=label)
        task_text = format_task_table(task_rows, old, new)
    findings = claims.evaluate(claims.demo_claims(old, new), results)
    what_holds = claims.format_findings(findings, len(seed_list))
    meta = {
        "settings": {
            "size": asdict(settings.size),
            "old": asdict(settings.old),
            "new": asdict(settings.new),
            "quick": settings.quick,
        },
        "seeds": list(seed_list),
        "runs": {str(p.cfg.run_dir): {"arm": p.arm, "seed": p.seed} for p in plans},
        "branch_of": {p.arm: p.branch_of for p in plans if p.branch_of and p.seed == seed_list[0]},
        "demo_tokens": {p.arm: p.tokens for p in plans if p.seed == seed_list[0]},
        "seconds": {str(s): v for s, v in seconds.items()},
        "unigram": {name: asdict(ref) for name, ref in unigram.items()},
        "table": text,
        "what_holds": what_holds,
        "findings": [
            {"claim": f.claim.text, "verdict": f.verdict, "n": f.n, "diff": f.diff, "se": f.se}
            for f in findings
        ],
        **({"task_table": task_text} if tasks else {}),
    }
    results_path = out_dir / RESULTS
    table.write_results(results_path, results, meta)
    return DemoOutcome(
        results=results,
        unigram=unigram,
        table=text,
        findings=findings,
        what_holds=what_holds,
        report_dirs=report_dirs,
        results_path=results_path,
        seconds=seconds,
        plans=plans,
        task_table=task_text,
    )


def _report(dirs: dict[str, Path], root: Path, settings: DemoSettings) -> Path:
    """`rewarm report` of one seed's arms (retrain the baseline) and the arms figure."""
    from rewarm.report.build import build_report
    from rewarm.runlog import read_run

    report_dir = root / REPORT
    logs = [read_run(path) for path in dirs.values()]
    baseline = table.BASELINE if table.BASELINE in dirs else None
    build_report(logs, report_dir, baseline=baseline)
    domains = (settings.old.name, settings.new.name)
    arms_figure(dirs, report_dir / FIGURE, settings.size.stage1_tokens, domains)
    return report_dir
