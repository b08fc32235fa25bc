"""`rewarm demo [--quick] [--out DIR] [--arms ARM ...] [--seed N]`.

Pre-trains `llama-small` on `python-docs` (stage 1), continues on `python-code`
(stage 2) with five strategies, and compares them with re-training from scratch:
prints a table and writes the HTML report. See `rewarm.demo` and docs/demo.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rewarm.demo.arms import DemoSize
    from rewarm.demo.runner import ArmPlan


def add_arguments(p: argparse.ArgumentParser) -> None:
    from rewarm.demo.arms import ARMS

    p.add_argument("--quick", action="store_true", help="small sizes, same arms (about 2 minutes)")
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
        help=f"arms to run, space- or comma-separated (default: all of {', '.join(ARMS)})",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
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


def run(args: argparse.Namespace) -> int:
    from rewarm.demo import arms as arms_mod
    from rewarm.demo.run import run_demo
    from rewarm.demo.runner import plan_arms

    if args.tasks:
        from rewarm import extras

        extras.require("lm_eval", "--tasks")
    size = arms_mod.QUICK if args.quick else arms_mod.DEFAULT
    chosen = (
        list(arms_mod.ARMS)
        if args.arms is None
        else [a.strip() for item in args.arms for a in item.split(",") if a.strip()]
    )
    out = Path(args.out)
    plans = plan_arms(chosen, out, args.seed, size, tasks=args.tasks)
    total = sum(p.tokens for p in plans)
    _say(
        f"rewarm demo{' --quick' if args.quick else ''}: {size.preset}, BPE {size.vocab_size}, "
        f"seed {args.seed}, out {out}"
    )
    _say(
        f"  stage 1: python-docs, {size.stage1_tokens:,} tokens; "
        f"stage 2: python-code, {size.stage2_tokens:,} tokens"
    )
    branches = [p for p in plans if p.branch_of]
    if branches:
        _say(
            f"  stage 1 is trained once, in {branches[0].branch_of}; "
            f"{', '.join(p.arm for p in branches)} continue from its stage-1 checkpoint"
        )
    if any(p.arm == "infinite+replay" for p in plans):
        _say(
            "  infinite+replay trains its own stage 1 (the infinite schedule ends stage 1 in "
            "its constant phase, not decayed); its compute is counted in full"
        )

    def on_arm(i: int, plan: ArmPlan, done: int, elapsed: float) -> None:
        how = f"from {plan.branch_of}'s stage-1 checkpoint, " if plan.branch_of else ""
        _say(
            f"[arm {i + 1}/{len(plans)}] {plan.arm}: {arms_mod.DESCRIPTIONS[plan.arm]}\n"
            f"    {how}trains {plan.tokens:,} tokens; demo: {done:,}/{total:,} tokens "
            f"done, {_clock(elapsed)} elapsed"
        )

    tick = time.perf_counter()
    outcome = run_demo(
        out,
        size=size,
        arms=chosen,
        seed=args.seed,
        progress=not args.no_progress,
        on_arm=on_arm,
        tasks=args.tasks,
    )
    sys.stderr.flush()
    _say(
        f"\nResults (held-out loss in nats per token after both stages, lower is better; "
        f"{total:,} tokens trained, {_clock(time.perf_counter() - tick)}):"
    )
    _say(outcome.table)
    if outcome.task_table:
        _say(
            "\nTasks (accuracy on held-out items, chance 0.25, higher is better; "
            "forg. = forgetting of the docs tasks, > 0: forgotten):"
        )
        _say(outcome.task_table)
    _say("")
    for line in _notes(plans, size):
        _say(line)
    _say(f"\nreport: {outcome.report_dir / 'report.html'}")
    _say(f"figure: {outcome.figure}")
    _say(f"results: {outcome.results_path}")
    return 0


def _notes(plans: list[ArmPlan], size: DemoSize) -> list[str]:
    from rewarm.demo.arms import REPLAY_FRACTION

    notes = [
        "docs forgetting: final docs loss minus its value at the end of stage 1 (> 0: forgotten)",
        "deepest gap: largest rise of docs loss during stage 2 above its value at the "
        f"stage start (stability gap; evaluated every {size.eval_every:,} tokens)",
        "compute: tokens trained after stage 1 / retrain tokens; incl. stage 1: "
        "(stage 1 + stage 2) / retrain",
        f"replay: {REPLAY_FRACTION:.0%} of every stage-2 batch are docs windows stage 1 trained on",
    ]
    if any(p.arm == "infinite+replay" for p in plans):
        notes.append(
            "infinite+replay: its stage 1 is not shared with the cosine arms; the demo "
            f"trained {size.stage1_tokens:,} extra tokens for it"
        )
    return notes
