"""The CPT law (`rewarm.laws.cpt`) behind `rewarm fit --law cpt`, and `rewarm predict`
and `rewarm plan` given a CPT fit. Not a verb of its own: `fit`, `predict` and
`plan` call these when the law is `cpt`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from rewarm import atomic
from rewarm.errors import UserError


def fit(args: argparse.Namespace) -> int:
    from rewarm.laws.cpt_fit import fit_cpt, save_cpt_fit
    from rewarm.laws.cpt_runs import read_cpt_run

    lam: float | str = "auto" if args.lam in (None, "auto") else _lam(args.lam)
    runs = []
    for raw in args.curves:
        p = Path(raw)
        if not p.is_dir():
            raise UserError(f"{raw}: --law cpt reads rewarm run directories (eval records)")
        runs.append(read_cpt_run(p, stage=args.stage))
    result = fit_cpt(runs, lam=lam)
    print(f"law: cpt   runs: {', '.join(result.runs)}   fit time: {result.seconds:.1f} s")
    sel = result.options["lam_selection"]
    if len(sel) > 1:
        print(
            f"lam = {result.options['lam']:g}, chosen by mean held-out PredE over "
            "leave-one-run-out fits: " + ", ".join(f"{k}: {v:.4f}" for k, v in sel.items())
        )
    print(
        f"transfer at update {result.options['transfer']}; replay ratios in the runs: "
        f"{', '.join(f'{r:g}' for r in result.options['replay_fitted'])}"
    )
    if len(result.options["replay_fitted"]) < 2:
        print("  (one replay ratio only: a1 = a2 = 0, the law cannot predict another ratio)")
    names = list(next(iter(result.params.values())))
    print(f"{'domain':<12}" + "".join(f" {n:>10}" for n in names))
    for d, p in result.params.items():
        print(f"{d:<12}" + "".join(f" {p[n]:>10.4g}" for n in names))
    print(
        f"{'run':<24} {'domain':<12} {'points':>6} {'PredE':>8} {'CPT PredE':>10} {'final err':>10}"
    )
    for run, per in result.metrics.items():
        for d in result.params:
            if d in per:
                c = per.get(f"cpt:{d}", {}).get("pred_e", float("nan"))
                f = per[f"final:{d}"]["rel_error"]
                m = per[d]
                print(
                    f"{run:<24} {d:<12} {m['points']:>6} {m['pred_e']:>8.4f} {c:>10.4f} {f:>+10.4f}"
                )
    if not result.folds:
        print("one run: no leave-one-run-out folds, so predictions have no interval")
    if args.out:
        save_cpt_fit(result, args.out)
        print(f"wrote {args.out}")
    if args.plot:
        _plot_runs(args.plot, result, runs)
        print(f"wrote {args.plot}")
    return 0


def _lam(text: str) -> float:
    try:
        lam = float(text)
    except ValueError:
        raise UserError(f"--lam must be a number in (0, 1) for --law cpt, got {text!r}") from None
    if not 0.0 < lam < 1.0:
        raise UserError(f"--lam must be in (0, 1), got {text}")
    return lam


def _plot_runs(path: str, fit: Any, runs: list[Any], title: str = "CPT law") -> None:
    from rewarm.laws.cpt_plots import plot_domains

    by_domain: dict[str, list] = {d: [] for d in fit.params}
    for r in runs:
        steps = np.arange(r.warmup + 1, r.eta.size)
        pred = fit.predict(r.eta, r.transfer, r.replay, steps, r.warmup)
        for d, (c, lo, hi) in pred.items():
            obs = r.points.get(d)
            by_domain[d].append(
                (
                    r.name,
                    steps,
                    c,
                    lo,
                    hi,
                    None if obs is None else obs[0],
                    None if obs is None else obs[1],
                )
            )
    plot_domains(path, by_domain, title, transfer=int(fit.options["transfer"]))


def predict(args: argparse.Namespace, raw: dict[str, Any]) -> int:
    from rewarm.laws.cpt_fit import cpt_fit_from_dict
    from rewarm.laws.cpt_plan import stage_eta
    from rewarm.laws.cpt_runs import read_cpt_run
    from rewarm.laws.curves import parse_spec

    fit = cpt_fit_from_dict(raw, args.fit)
    if args.run:
        run = read_cpt_run(args.run, stage=args.stage)
        eta, transfer, replay, name = run.eta, run.transfer, run.replay, run.name
        warmup = run.warmup
    else:
        if not args.schedule or args.total is None or args.total < 1:
            raise UserError("a CPT fit predicts --run RUN, or --schedule SPEC --total N (updates)")
        spec = parse_spec(args.schedule, "--schedule")
        if isinstance(spec, str):
            raise UserError("--schedule: a CPT stage needs a schedule table {kind = ...}")
        peak = args.peak if args.peak is not None else float(fit.options["peak"])
        replay = 0.0 if args.replay is None else args.replay
        if not 0.0 <= replay < 1.0:
            raise UserError(f"--replay must be in [0, 1), got {replay}")
        eta = stage_eta(fit, spec, args.total, peak)
        transfer, name = int(fit.options["transfer"]), args.schedule
        warmup = int(fit.options["warmup"])
    _warn_replay(fit, replay)
    steps = np.arange(warmup + 1, eta.size)
    pred = fit.predict(eta, transfer, replay, steps, warmup)
    level = fit.options.get("level", 0.9)
    print(
        f"law: cpt   updates: {eta.size - 1} (transfer at {transfer})   replay: {replay:g}   "
        f"interval: {level:.0%} (leave-one-run-out)"
    )
    marks = sorted({transfer, *(int(x) for x in np.linspace(transfer, eta.size - 1, 5))})
    for d, (c, lo, hi) in pred.items():
        print(f"  {d}")
        for s in marks:
            i = s - int(steps[0])
            if 0 <= i < steps.size:
                print(
                    f"    update {s:>8}   lr {eta[s]:.4g}   loss {c[i]:.4f}  [{lo[i]:.4f}, {hi[i]:.4f}]"
                )
    if args.run:
        for d, (st, y) in run.points.items():
            if d in pred:
                c = pred[d][0][st - int(steps[0])]
                print(
                    f"  {d}: PredE {np.mean(np.abs(c - y) / y):.4f} over {y.size} logged points, "
                    f"final {c[-1]:.4f} vs {y[-1]:.4f} logged"
                )
    if args.out and args.out.lower().endswith(".png"):
        from rewarm.laws.cpt_plots import plot_domains

        obs = run.points if args.run else {}
        by_domain = {
            d: [(name, steps, c, lo, hi, *obs.get(d, (None, None)))]
            for d, (c, lo, hi) in pred.items()
        }
        plot_domains(args.out, by_domain, f"CPT law prediction ({level:.0%} interval)", transfer)
        print(f"wrote {args.out}")
    elif args.out:
        keep = np.zeros(steps.size, dtype=bool)
        keep[:: args.every] = True
        keep[-1] = True
        doms = list(pred)
        head = "step,lr," + ",".join(f"{d},{d}_lo,{d}_hi" for d in doms)
        rows = [
            f"{int(s)},{eta[s]:.8g},"
            + ",".join(f"{pred[d][j][i]:.6f}" for d in doms for j in range(3))
            for i, s in enumerate(steps)
            if keep[i]
        ]
        atomic.write_text(Path(args.out), head + "\n" + "\n".join(rows) + "\n")
        print(f"wrote {args.out}")
    return 0


def _warn_replay(fit: Any, replay: float) -> None:
    fitted = fit.options.get("replay_fitted", [])
    if len(fitted) < 2 and replay not in fitted:
        print(
            f"note: the runs fitted had replay {', '.join(f'{r:g}' for r in fitted)} only; "
            "the law ignores what another ratio changes"
        )
    elif fitted and not min(fitted) <= replay <= max(fitted):
        print(
            f"note: replay {replay:g} is outside the fitted range "
            f"[{min(fitted):g}, {max(fitted):g}]: an extrapolation"
        )


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


def plan(args: argparse.Namespace, raw: dict[str, Any]) -> int:
    from rewarm.laws import cpt_plan
    from rewarm.laws.cpt_fit import cpt_fit_from_dict

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
        _warn_replay(fit, r)
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
