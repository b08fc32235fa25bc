"""The CPT law (Wang, Tissue et al. 2025) on rewarm's own runs: fit three demo arms,
predict two arms it never saw.

Fit on the demo's `naive`, `rewarm` and `rewarm+replay` arms (one shared stage 1,
three stage-2 schedules, replay 0 and 5%); predict `infinite+replay` (its own stage 1
and schedule) and an arm like `rewarm+replay` with another replay fraction (25% by
default), which this script trains if it is missing by branching from the demo's
stage-1 checkpoint exactly as the demo branches its arms. Per arm and domain it
prints PredE over the stage-2 evaluations and over all of them, the final loss's
relative error and the share of evaluations inside the 90% interval; targets:
PredE <= 2% and final losses within 2%. Writes benchmarks/results/cpt.json and,
with --figures DIR, cpt-fit.png, cpt-heldout.png and cpt-frontier.png.

    python benchmarks/cpt.py --demo rewarm-demo            # after `rewarm demo`
    python benchmarks/cpt.py --demo /tmp/cpt --train micro  # train small arms here

`--train micro` runs the demo's arms at a small size of this script's own (llama-tiny,
64 + 48 steps of 512 tokens, an evaluation every 2 steps): about half an hour on this
workplace's busy 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rewarm import atomic, runconfig
from rewarm.demo import arms as arms_mod
from rewarm.demo import runner
from rewarm.demo.arms import DemoSize
from rewarm.laws import intervals
from rewarm.laws.cpt_fit import fit_cpt, score_run
from rewarm.laws.cpt_runs import read_cpt_run

HERE = Path(__file__).resolve().parent
FIT_ARMS = ("naive", "rewarm", "rewarm+replay")
HELD_OUT = ("infinite+replay",)
TARGET = 0.02
MICRO = DemoSize(
    preset="llama-tiny",
    stage1_tokens=32768,
    stage2_tokens=24576,
    seq_len=64,
    batch_tokens=512,
    lr=3e-3,
    warmup_tokens=4096,
    rewarm_tokens=2048,
    eval_every=1024,
    eval_tokens=1024,
    vocab_size=1024,
    sample_bytes=300_000,
    docs_max_bytes=400_000,
    code_max_bytes=300_000,
    heldout_min_tokens=2048,
)


def extra_arm(fraction: float) -> str:
    return f"rewarm+replay{round(100 * fraction)}"


def arm_dirs(demo: Path) -> dict[str, Path]:
    """Arm -> run directory: from demo_results.json, else DIR/ARM or DIR/runs/ARM."""
    results = demo / "demo_results.json"
    if results.is_file():
        runs = json.loads(results.read_text())["runs"]
        return {a: Path(p) for a, p in runs.items()}
    found = {}
    for base in (demo, demo / "runs"):
        for d in base.glob("*/metrics.jsonl"):
            found.setdefault(d.parent.name, d.parent)
    return found


def demo_size(demo: Path) -> tuple[DemoSize, int]:
    meta = json.loads((demo / "demo_results.json").read_text())
    return DemoSize(**meta["size"]), int(meta.get("seed", 0))


def train_extra(
    demo: Path, dirs: dict[str, Path], fraction: float, size: DemoSize, seed: int
) -> Path:
    """The rewarm+replay arm with another replay fraction, branched from the host's
    stage-1 checkpoint (the first branching arm, as the demo does)."""
    from rewarm.train import trainer

    name = extra_arm(fraction)
    raw = arms_mod.arm_config("rewarm+replay", str(dirs["rewarm+replay"].parent), seed, size)
    raw["run"]["name"] = name
    raw["stages"][1]["replay"]["fraction"] = fraction
    cfg = runconfig.from_dict(raw, source=f"benchmark arm {name}")
    host = next(a for a in arms_mod.BRANCHING if a in dirs)
    if not (cfg.run_dir / "checkpoints").is_dir():
        runner.seed_branch(dirs[host], cfg.run_dir)
    print(f"training {name} from {host}'s stage-1 checkpoint ...", flush=True)
    trainer.train(cfg, progress=False)
    return cfg.run_dir


def train_demo(demo: Path, seed: int) -> None:
    plans = runner.plan_arms([*FIT_ARMS, *HELD_OUT], demo, seed, MICRO)
    runner.run_arms(
        plans,
        progress=False,
        on_arm=lambda i, p, d, s: print(f"arm {p.arm} ({s:.0f} s)", flush=True),
    )
    meta = {
        "seed": seed,
        "size": MICRO.__dict__,
        "runs": {p.arm: str(p.cfg.run_dir) for p in plans},
    }
    atomic.write_json(demo / "demo_results.json", meta, indent=2)


def evaluate(fit: Any, run: Any) -> dict[str, Any]:
    scores = score_run(fit, run)
    out: dict[str, Any] = {"replay": run.replay}
    for d in fit.params:
        if d not in run.points:
            continue
        steps, loss = run.points[d]
        _, lo, hi = fit.predict(run.eta, run.transfer, run.replay, steps, run.warmup)[d]
        after = steps > run.transfer
        out[d] = {
            "pred_e_cpt": scores[f"cpt:{d}"]["pred_e"],
            "worst_e_cpt": scores[f"cpt:{d}"]["worst_e"],
            "pred_e_all": scores[d]["pred_e"],
            "final": scores[f"final:{d}"],
            "coverage_cpt": intervals.coverage(loss[after], lo[after], hi[after]),
        }
    return out


def figures(out: Path, fit: Any, runs: dict[str, Any], held: list[str]) -> None:
    from rewarm.commands.cpt_law import _plot_runs
    from rewarm.laws import cpt_plan
    from rewarm.laws.cpt_plots import plot_frontier

    fitted = [runs[a] for a in FIT_ARMS]
    _plot_runs(str(out / "cpt-fit.png"), fit, fitted, "CPT law fitted to three demo arms")
    title = "CPT law: arms it was not fitted on (90% intervals)"
    _plot_runs(str(out / "cpt-heldout.png"), fit, [runs[a] for a in held], title)
    total = runs["rewarm"].eta.size - 1 - fit.options["transfer"]
    scen = cpt_plan.candidates(
        fit,
        total,
        list(cpt_plan.PEAKS),
        list(cpt_plan.SHAPES),
        list(cpt_plan.REPLAYS),
        max(1, round(0.05 * total)),
        0.1,
    )
    ranked = cpt_plan.evaluate(fit, scen, {d: 1.0 for d in fit.params})
    old = "docs" if "docs" in fit.params else fit.domains[0]
    new = next(d for d in fit.domains if d != old)
    plot_frontier(out / "cpt-frontier.png", ranked, old, new, ranked[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", type=Path, default=Path("rewarm-demo"))
    ap.add_argument("--train", choices=("micro",), help="train the demo's arms at this size first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extra-replay", type=float, default=0.25)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "cpt.json")
    ap.add_argument("--figures", type=Path, help="write the PNG figures here")
    args = ap.parse_args()
    if args.train:
        train_demo(args.demo, args.seed)
    dirs = arm_dirs(args.demo)
    missing = [a for a in (*FIT_ARMS, *HELD_OUT) if a not in dirs]
    if missing:
        print(
            f"{args.demo}: no run of arm(s) {', '.join(missing)} (run `rewarm demo` or --train)",
            file=sys.stderr,
        )
        return 2
    extra = extra_arm(args.extra_replay)
    if extra not in dirs:
        size, seed = demo_size(args.demo)
        dirs[extra] = train_extra(args.demo, dirs, args.extra_replay, size, seed)
    held = [*HELD_OUT, extra]
    runs = {a: read_cpt_run(dirs[a]) for a in (*FIT_ARMS, *held)}
    t0 = time.perf_counter()
    fit = fit_cpt([runs[a] for a in FIT_ARMS])
    seconds = time.perf_counter() - t0
    rows = {a: evaluate(fit, runs[a]) for a in (*FIT_ARMS, *held)}
    doms = list(fit.params)
    print(f"fit on {', '.join(FIT_ARMS)} in {seconds:.1f} s; predicting {', '.join(held)}")
    print(
        "| arm | role | replay | "
        + " | ".join(
            f"{d} PredE (stage 2 / all) | {d} final error | {d} 90% coverage" for d in doms
        )
        + " |"
    )
    print("| --- " * (3 + 3 * len(doms)) + "|")
    ok = True
    for a, row in rows.items():
        cells = []
        for d in doms:
            r = row[d]
            cells += [
                f"{r['pred_e_cpt']:.4f} / {r['pred_e_all']:.4f}",
                f"{r['final']['rel_error']:+.4f}",
                f"{r['coverage_cpt']:.0%}",
            ]
            if a in held:
                ok &= r["pred_e_cpt"] <= TARGET and abs(r["final"]["rel_error"]) <= TARGET
        role = "fit" if a in FIT_ARMS else "held out"
        print(f"| {a} | {role} | {row['replay']:g} | " + " | ".join(cells) + " |")
    print(
        f"\ntargets (held-out arms: PredE <= {TARGET:.0%}, final within {TARGET:.0%}): "
        + ("met" if ok else "NOT met")
    )
    doc = {
        "command": "python benchmarks/cpt.py --demo " + str(args.demo),
        "fit_arms": list(FIT_ARMS),
        "held_out": held,
        "fit_seconds": seconds,
        "params": fit.params,
        "options": {k: v for k, v in fit.options.items() if k != "pt_eta"},
        "results": rows,
        "targets_met": ok,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic.write_json(args.out, doc, indent=2)
    print(f"wrote {args.out}")
    if args.figures:
        figures(args.figures, fit, runs, held)
        print(f"wrote figures to {args.figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
