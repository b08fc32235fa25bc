"""`rewarm plan FIT.json --total N`: rank candidate schedules by predicted final loss."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rewarm import atomic
from rewarm.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("fit", metavar="FIT.json", help="written by `rewarm fit --out`")
    p.add_argument("--total", type=int, required=True, help="budget in steps")
    p.add_argument(
        "--candidates",
        nargs="*",
        default=["default"],
        metavar="SPEC",
        help="schedules to compare (inline TOML/JSON tables); 'default' adds cosine, "
        "WSD with 10-30%% cooldowns in four shapes and infinite with 10-30%% anneals",
    )
    p.add_argument("--peak", type=float, help="peak LR (default: the fitted curves' peak)")
    p.add_argument("--warmup", type=int, help="warmup steps (default: the fitted curves')")
    p.add_argument("--final-ratio", type=float, default=0.1, help="default candidates' f (0.1)")
    p.add_argument(
        "--optimize",
        action="store_true",
        help="also optimise a non-increasing schedule against the law (Luo et al. 2025)",
    )
    p.add_argument("--min-ratio", type=float, default=0.01, help="--optimize: lowest LR / peak")
    p.add_argument("--out", metavar="JSON", help="write the ranking (and optimised LR) as JSON")
    p.add_argument("--plot", metavar="PNG", help="plot the best candidates' predicted curves")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from rewarm.laws.curves import parse_spec
    from rewarm.laws.fit import load_fit
    from rewarm.laws.plan import Candidate, default_candidates, optimize_schedule, rank
    from rewarm.laws.schedule_input import resolve_lr

    result = load_fit(args.fit)
    law = result.law_object()
    peak = args.peak if args.peak is not None else result.options.get("peak")
    warmup = args.warmup if args.warmup is not None else int(result.options.get("warmup", 0))
    if args.total < 2 or not 0 <= warmup < args.total:
        raise UserError(f"--total must be >= 2 and exceed the warmup ({warmup})")
    if peak is None or not peak > 0:
        raise UserError("--peak must be given (> 0); the fit file records none")
    if not 0 < args.final_ratio <= 1 or not 0 < args.min_ratio <= 1:
        raise UserError("--final-ratio and --min-ratio must be in (0, 1]")
    pairs: list[tuple[str, dict[str, Any] | str]] = []
    for i, text in enumerate(args.candidates):
        if text == "default":
            pairs += default_candidates(args.total, warmup, args.final_ratio)
        else:
            spec = parse_spec(text, f"--candidates[{i}]")
            pairs.append((text if isinstance(spec, str) else json.dumps(spec), spec))
    if not pairs and not args.optimize:
        raise UserError("no candidates: give --candidates SPEC... or --optimize")
    cands = []
    for label, spec in pairs:
        lr, w = resolve_lr(spec, args.total, peak, warmup, f"candidate {label!r}")
        cands.append(Candidate(label, spec, lr, w))
    if args.optimize:
        lr = optimize_schedule(law, result.params, args.total, warmup, peak, args.min_ratio)
        cands.append(Candidate("optimized (non-increasing)", "optimized", lr, warmup))
    ranked = rank(law, result.params, cands)
    best = ranked[0].final_loss
    print(f"law: {result.law}   total: {args.total} steps   warmup: {warmup}   peak LR: {peak:.4g}")
    print(f"{'rank':>4}  {'final loss':>10}  {'vs best':>8}  schedule")
    for i, c in enumerate(ranked, 1):
        print(f"{i:>4}  {c.final_loss:>10.4f}  {c.final_loss - best:>+8.4f}  {c.label}")
    if args.out:
        out = Path(args.out)
        doc = {
            "law": result.law,
            "total": args.total,
            "ranking": [
                {"label": c.label, "spec": c.spec, "final_loss": c.final_loss} for c in ranked
            ],
        }
        opt = [c for c in ranked if c.spec == "optimized"]
        if opt:
            knots = np.linspace(0, args.total, 101).astype(int)
            doc["optimized_lr"] = {"steps": knots.tolist(), "lr": opt[0].lr[knots].tolist()}
        atomic.write_json(out, doc, indent=2)
        print(f"wrote {args.out}")
    if args.plot:
        from rewarm.laws.plots import plot_curves

        series = []
        for c in ranked[:6]:
            steps = np.arange(c.warmup + 1, c.lr.size)
            series.append(
                (
                    f"{c.label} ({c.final_loss:.4f})",
                    steps,
                    c.lr,
                    law.predict(c.lr, c.warmup, result.params, steps),
                )
            )
        plot_curves(args.plot, series, f"{result.law}: best schedules for {args.total} steps")
        print(f"wrote {args.plot}")
    return 0
