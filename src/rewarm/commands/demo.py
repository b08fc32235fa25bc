"""`rewarm demo [--quick] [--old SRC ... --new SRC ...] [--seeds N] [--out DIR] ...`.

Pre-trains a small model on an old corpus (stage 1), continues on a new one (stage
2) with five strategies, and compares them with re-training from scratch and with a
unigram model: prints a table and what the seeds support, writes the HTML report.
By default the corpora are the built-in `python-docs` -> `python-code` shift. See
`rewarm.demo` and docs/demo.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rewarm.demo.run import DemoOutcome
    from rewarm.demo.runner import ArmPlan
    from rewarm.demo.settings import DemoSettings


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rewarm.demo.arms import ARMS
    from rewarm.demo.mitigation_arms import ARMS as OPTIONAL

    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, same arms: a smoke test (under 2 minutes; its losses may stay near "
        "the unigram level)",
    )
    p.add_argument(
        "--old",
        nargs="+",
        metavar="SRC",
        help="stage-1 corpus: any domain source (globs, .jsonl, .parquet, a datasets "
        "directory, a built-in corpus name); default python-docs",
    )
    p.add_argument(
        "--new", nargs="+", metavar="SRC", help="stage-2 corpus (as --old); default python-code"
    )
    p.add_argument(
        "--names",
        metavar="OLD,NEW",
        help="names of the two corpora in configs and tables (default: docs,code for the "
        "built-ins, old,new for your own)",
    )
    p.add_argument("--field", help="text field of .jsonl/.parquet/datasets sources (default text)")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="settings TOML: sizes (any DemoSize field) and [old]/[new] corpora",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set stage1_tokens=196608 (repeatable)",
    )
    p.add_argument(
        "--out",
        default="rewarm-demo",
        metavar="DIR",
        help="where data, runs, report and demo_results.json go (default: ./rewarm-demo)",
    )
    p.add_argument(
        "--arms",
        nargs="+",
        metavar="ARM",
        default=None,
        help=f"arms to run, space- or comma-separated (default: all of {', '.join(ARMS)}; "
        f"optional: {', '.join(OPTIONAL)}, see docs/mitigations.md)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the first run (default 0)")
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="run every arm N times with seeds SEED..SEED+N-1; prints mean ± sd (default 1)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--tasks",
        action="store_true",
        help="also evaluate the built-in tasks (needs the tasks extra; docs/tasks.md)",
    )


def _say(line: str) -> None:
    print(line, flush=True)  # flushed: the trainer's progress bar shares the terminal


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def _source_text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else " ".join(source)


def run(args: argparse.Namespace) -> int:
    from rewarm.demo import arms as arms_mod
    from rewarm.demo import mitigation_arms
    from rewarm.demo.run import plan_all, run_demo
    from rewarm.demo.runner import check_arms
    from rewarm.demo.settings import load_settings
    from rewarm.errors import UserError

    if args.tasks:
        from rewarm import extras

        extras.require("lm_eval", "--tasks")
    if args.seeds < 1:
        raise UserError(f"--seeds {args.seeds}: must be >= 1")
    settings = load_settings(
        quick=args.quick,
        path=args.config,
        sets=args.set,
        old=args.old,
        new=args.new,
        names=args.names,
        field=args.field,
    )
    chosen = check_arms(
        list(arms_mod.ARMS)
        if args.arms is None
        else [a.strip() for item in args.arms for a in item.split(",") if a.strip()]
    )
    seed_list = list(range(args.seed, args.seed + args.seeds))
    out = Path(args.out)
    plans = plan_all(out, settings, chosen, seed_list, tasks=args.tasks)
    total = sum(p.tokens for p in plans)
    _intro(settings, plans, seed_list, out)
    old, new = settings.old.name, settings.new.name

    def on_arm(i: int, plan: ArmPlan, done: int, elapsed: float) -> None:
        how = f"from {plan.branch_of}'s stage-1 checkpoint, " if plan.branch_of else ""
        seed = f", seed {plan.seed}" if len(seed_list) > 1 else ""
        text = {**arms_mod.DESCRIPTIONS, **mitigation_arms.DESCRIPTIONS}[plan.arm]
        text = text.format(old=old, new=new)
        _say(
            f"[arm {i + 1}/{len(plans)}] {plan.arm}{seed}: {text}\n"
            f"    {how}trains {plan.tokens:,} tokens; demo: {done:,}/{total:,} tokens "
            f"done, {_clock(elapsed)} elapsed"
        )

    tick = time.perf_counter()
    outcome = run_demo(
        out,
        settings=settings,
        arms=chosen,
        seed_list=seed_list,
        progress=not args.no_progress,
        on_arm=on_arm,
        tasks=args.tasks,
    )
    sys.stderr.flush()
    spread = f", mean±sd over {len(seed_list)} seeds" if len(seed_list) > 1 else ""
    _say(
        f"\nResults (held-out bits per byte after both stages, lower is better{spread}; "
        f"{total:,} tokens trained, {_clock(time.perf_counter() - tick)}):"
    )
    _say(outcome.table)
    if outcome.task_table:
        _say(
            "\nTasks (accuracy on held-out items, chance 0.25, higher is better; "
            f"forg. = forgetting of the {old} tasks, > 0: forgotten):"
        )
        _say(outcome.task_table)
    _say("")
    for line in _notes(plans, settings, outcome):
        _say(line)
    _say("")
    for line in outcome.what_holds:
        _say(line)
    if settings.quick:
        _say(
            "\n--quick is a smoke test of the whole pipeline: its models are tiny and "
            "barely trained, so they may stay near the unigram level; read nothing into "
            "its numbers."
        )
    _say("")
    for s, report in outcome.report_dirs.items():
        seed = f" (seed {s})" if len(seed_list) > 1 else ""
        _say(f"report{seed}: {report / 'report.html'}")
    _say(f"results: {outcome.results_path}")
    return 0


def _intro(settings: DemoSettings, plans: list[ArmPlan], seed_list: list[int], out: Path) -> None:
    size = settings.size
    quick = " --quick (smoke test)" if settings.quick else ""
    seeds = (
        f"seeds {seed_list[0]}-{seed_list[-1]}" if len(seed_list) > 1 else f"seed {seed_list[0]}"
    )
    _say(f"rewarm demo{quick}: {size.preset}, BPE {size.vocab_size}, {seeds}, out {out}")
    _say(
        f"  stage 1: {settings.old.name} ({_source_text(settings.old.source)}), "
        f"{size.stage1_tokens:,} tokens; stage 2: {settings.new.name} "
        f"({_source_text(settings.new.source)}), {size.stage2_tokens:,} tokens"
    )
    first = [p for p in plans if p.seed == seed_list[0]]
    branches = [p for p in first if p.branch_of]
    if branches:
        _say(
            f"  stage 1 is trained once, in {branches[0].branch_of}; "
            f"{', '.join(p.arm for p in branches)} branch from its stage-1 checkpoint"
        )
    if any(p.arm == "infinite+replay" for p in first):
        _say(
            "  infinite+replay trains its own stage 1 (the infinite schedule ends stage 1 in "
            "its constant phase, not decayed); its compute is counted in full"
        )


def _notes(plans: list[ArmPlan], settings: DemoSettings, outcome: DemoOutcome) -> list[str]:
    from rewarm.demo.arms import REPLAY_FRACTION
    from rewarm.evaluation.unigram import ALPHA

    size, old, new = settings.size, settings.old.name, settings.new.name
    uni = ", ".join(
        f"{name} {ref.nats:.3f} nats/token = {ref.bits_per_byte:.3f} bpb"
        for name, ref in outcome.unigram.items()
    )
    notes = [
        f"unigram: token frequencies of each corpus's training split (add-{ALPHA:g} "
        f"smoothing), scored on the evaluator's held-out sample: {uni}",
        f"{old}/unigram, {new}/unigram: an arm's final bits per byte / the unigram's "
        "(< 1: it learned more than token frequencies)",
        f"{old} forgetting: final {old} bpb minus its value at the end of stage 1 (> 0: forgotten)",
        f"deepest gap: largest rise of {old} bpb during stage 2 above its value at the "
        f"stage start (stability gap; evaluated every {size.eval_every:,} tokens)",
        "compute: tokens trained after stage 1 / retrain tokens; incl. stage 1: "
        "(stage 1 + stage 2) / retrain",
        f"replay: {REPLAY_FRACTION:.0%} of every stage-2 batch are {old} windows stage 1 "
        "trained on",
    ]
    if any(p.arm == "infinite+replay" for p in plans):
        notes.append(
            "infinite+replay: its stage 1 is not shared with the cosine arms; the demo "
            f"trained {size.stage1_tokens:,} extra tokens for it"
        )
    return notes
