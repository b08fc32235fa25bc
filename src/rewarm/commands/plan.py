"""`rewarm plan FIT.json --total N`: rank candidate schedules by predicted final loss.

With a CPT fit: rank CPT stages (re-warm peak, shape, replay ratio) by the weighted sum
of the domains' final losses and draw the trade-off frontier (`laws.cpt_plan`)."""

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
    p.add_argument(
        "--weights", metavar="D=W,...", help="CPT fit: weight of each domain's final loss (1 each)"
    )
    p.add_argument("--peaks", metavar="X,...", help="CPT fit: re-warm peaks, x the PT peak")
    p.add_argument("--replays", metavar="R,...", help="CPT fit: replay ratios to try")
    p.add_argument(
        "--shapes", metavar="S,...", help="CPT fit: cosine, linear, wsd, constant, continue"
    )
    p.add_argument("--top", type=int, default=10, help="CPT fit: rows to print (10)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from rewarm.laws.cpt_fit import load_raw
    from rewarm.laws.curves import parse_spec
    from rewarm.laws.fit import load_fit
    from rewarm.laws.plan import Candidate, default_candidates, optimize_schedule, rank
    from rewarm.laws.schedule_input import resolve_lr
    from rewarm.laws.select import predict_band

    raw = load_raw(args.fit)
    if raw.get("law") == "cpt":
        return _plan_cpt(args, raw)
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
    band = {}
    for c in ranked:
        _, lo, hi = predict_band(result, c.lr, c.warmup, np.array([c.lr.size - 1]))
        band[c.label] = (float(lo[0]), float(hi[0]))
    level = result.options.get("level", 0.9)
    print(f"law: {result.law}   total: {args.total} steps   warmup: {warmup}   peak LR: {peak:.4g}")
    print(
        f"{'rank':>4}  {'final loss':>10}  {f'{level:.0%} interval':>18}  {'vs best':>8}  schedule"
    )
    for i, c in enumerate(ranked, 1):
        low, high = band[c.label]
        print(
            f"{i:>4}  {c.final_loss:>10.4f}  [{low:.4f}, {high:.4f}]  "
            f"{c.final_loss - best:>+8.4f}  {c.label}"
        )
    if not result.options.get("folds"):
        print("(no interval: the fit has no leave-one-curve-out folds)")
    if args.out:
        out = Path(args.out)
        doc = {
            "law": result.law,
            "total": args.total,
            "ranking": [
                {
                    "label": c.label,
                    "spec": c.spec,
                    "final_loss": c.final_loss,
                    "interval": list(band[c.label]),
                }
                for c in ranked
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

        series, bands = [], []
        for c in ranked[:6]:
            steps = np.arange(c.warmup + 1, c.lr.size)
            pred, lo, hi = predict_band(result, c.lr, c.warmup, steps)
            series.append((f"{c.label} ({c.final_loss:.4f})", steps, c.lr, pred))
            bands.append((lo, hi))
        plot_curves(
            args.plot,
            series,
            f"{result.law}: best schedules for {args.total} steps ({level:.0%} intervals)",
            bands=bands,
        )
        print(f"wrote {args.plot}")
    return 0


def _plan_cpt(args: argparse.Namespace, raw: dict[str, Any]) -> int:
    """A CPT fit: CPT stages ranked by the weighted sum of the domains' final losses."""
    from rewarm.laws import cpt_plan
    from rewarm.laws.cpt_fit import cpt_fit_from_dict, replay_note

    fit = cpt_fit_from_dict(raw, args.fit)
    weights = _weights(args.weights, fit.domains)
    fitted = fit.options.get("replay_fitted", [0.0])
    replays = (
        _floats(args.replays, "--replays")
        if args.replays
        else (list(cpt_plan.REPLAYS) if len(fitted) >= 2 else list(fitted))
    )
    peaks = _floats(args.peaks, "--peaks") if args.peaks else list(cpt_plan.PEAKS)
    shapes = args.shapes.split(",") if args.shapes else list(cpt_plan.SHAPES)
    bad = [s for s in shapes if s not in cpt_plan.SHAPES]
    if bad:
        raise UserError(f"--shapes: unknown {bad[0]!r} (known: {', '.join(cpt_plan.SHAPES)})")
    if any(not 0 <= r < 1 for r in replays) or any(p <= 0 for p in peaks):
        raise UserError("--replays must be in [0, 1) and --peaks > 0")
    warmup = args.warmup if args.warmup is not None else max(1, round(0.05 * args.total))
    if not 0 <= warmup < args.total:
        raise UserError(f"--warmup must be in [0, --total), got {warmup}")
    scen = cpt_plan.candidates(fit, args.total, peaks, shapes, replays, warmup, args.final_ratio)
    ranked = cpt_plan.evaluate(fit, scen, weights)
    for r in sorted(set(replays)):
        note = replay_note(fit, r)
        if note:
            print(note)
    doms = list(fit.params)
    print(
        f"law: cpt   CPT stage: {args.total} updates, re-warm over {warmup}   weights: "
        + ", ".join(f"{d}={w:g}" for d, w in weights.items())
    )
    print(
        f"{'rank':>4}  {'score':>8}  "
        + "  ".join(f"{d + ' [90%]':>26}" for d in doms)
        + "  candidate"
    )
    for i, s in enumerate(ranked[: args.top], 1):
        cells = "  ".join(
            f"{s.finals[d][0]:>8.4f} [{s.finals[d][1]:.4f}, {s.finals[d][2]:.4f}]" for d in doms
        )
        print(f"{i:>4}  {s.score:>8.4f}  {cells}  {s.label}")
    if args.out:
        doc = {
            "law": "cpt",
            "total": args.total,
            "warmup": warmup,
            "weights": weights,
            "ranking": [
                {
                    "label": s.label,
                    "spec": s.spec,
                    "peak": s.peak,
                    "replay": s.replay,
                    "score": s.score,
                    "finals": s.finals,
                }
                for s in ranked
            ],
        }
        atomic.write_json(Path(args.out), doc, indent=2)
        print(f"wrote {args.out}")
    if args.plot:
        from rewarm.laws.cpt_plots import plot_frontier

        if len(doms) < 2:
            raise UserError("--plot: the frontier needs two fitted domains")
        x, y = sorted(doms, key=lambda d: -weights.get(d, 0.0))[:2]
        plot_frontier(args.plot, ranked, x, y, ranked[0])
        print(f"wrote {args.plot}")
    return 0


def _weights(text: str | None, domains: list[str]) -> dict[str, float]:
    if not text:
        return {d: 1.0 for d in domains}
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in domains:
            raise UserError(f"--weights: {name!r} is not a fitted domain ({', '.join(domains)})")
        try:
            out[name] = float(value)
        except ValueError:
            raise UserError(f"--weights: {part!r} is not DOMAIN=NUMBER") from None
        if out[name] < 0:
            raise UserError(f"--weights: {name} must be >= 0")
    return out


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{what}: a comma-separated list of numbers, got {text!r}") from None
