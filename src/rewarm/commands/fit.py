"""`rewarm fit CURVES... --law {tissue,mpl,cpt}`: fit a loss-curve law, print and save it.

`--law cpt` fits the continual pre-training law to run directories (`laws.cpt_fit`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rewarm.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "curves",
        nargs="+",
        metavar="CURVES",
        help="step,lr,loss CSV files, metrics.jsonl files or run directories (--law cpt: "
        "run directories of runs that share a first stage, e.g. the demo's arms)",
    )
    p.add_argument(
        "--law",
        choices=("mpl", "tissue", "cpt"),
        default="mpl",
        help="default: mpl; cpt: per-domain held-out loss across a transfer point "
        "(Wang, Tissue et al. 2025)",
    )
    p.add_argument(
        "--pretrain-only",
        action="append",
        default=[],
        metavar="RUN",
        help="--law cpt: also fit this run directory's pre-training evaluations (up to its "
        "transfer point, or all of a one-stage run) and nothing after; later predictions "
        "with --schedule continue its pre-training (repeatable)",
    )
    p.add_argument(
        "--replay-form",
        choices=("exp", "power"),
        help="--law cpt: how replay ratio r scales the shift term: 'power' (default), a "
        "power k = exp(a2) of each domain's share of the CPT batches: 1 - r^k for a domain "
        "the CPT stage does not train, (1 - r)^k for one it trains; or 'exp', the paper's "
        "(1 - exp(-a2 (1 - r))) / (1 - exp(-a2)) (docs/laws.md)",
    )
    p.add_argument("--out", metavar="FIT.json", help="write the parameters and metrics here")
    p.add_argument("--plot", metavar="PNG", help="plot fitted vs actual curves")
    p.add_argument(
        "--schedule",
        metavar="SPEC",
        help="rebuild the per-step LR of the CSVs from this schedule (inline TOML/JSON "
        "table or a shared-curve name); default: built-in table for the shared curves, "
        "else interpolate the lr column",
    )
    p.add_argument("--total", type=int, help="length in steps of --schedule")
    p.add_argument("--peak", type=float, help="peak LR of --schedule (default: the CSV's max)")
    p.add_argument(
        "--stage",
        help="metrics.jsonl: fit only this stage's losses; --law cpt: the CPT stage "
        "(default: the second)",
    )
    p.add_argument("--smooth", type=int, default=1, metavar="N", help="average N logged losses")
    p.add_argument("--truncate", type=int, metavar="STEP", help="ignore points at or after STEP")
    p.add_argument(
        "--lam",
        help="tissue: momentum factor lambda, a number or 'fit' (default 0.999); cpt: a "
        "number, or 'auto' (default: chosen by leave-one-run-out error)",
    )
    p.add_argument("--starts", type=int, default=2, help="starts refined by L-BFGS-B (2)")
    p.add_argument(
        "--method",
        choices=("auto", "staged", "paper", "lbfgs"),
        help="mpl: 'auto' (default: the setting whose held-out error, leaving out each "
        "curve and the last third of all, is lowest: the two-stage fit as published, with "
        "Huber 1e-2, 50 Adam steps or weight decay 0.01), "
        "'staged' (the paper's two-stage fit), 'paper' (the same, "
        "as literally as its released code: warmup inside LD, AdamW decay) or 'lbfgs' "
        "(grid of starts + L-BFGS-B to convergence, as for tissue)",
    )


def run(args: argparse.Namespace) -> int:
    if args.law == "cpt":
        return _fit_cpt(args)
    if args.pretrain_only:
        raise UserError(f"--pretrain-only {args.pretrain_only[0]}: applies to --law cpt only")
    if args.replay_form:
        raise UserError(f"--replay-form {args.replay_form}: applies to --law cpt only")
    from rewarm.laws.curves import parse_spec
    from rewarm.laws.fit import save_fit
    from rewarm.laws.inputs import load_curves
    from rewarm.laws.select import MPL_SETTINGS, Setting, select_and_fit

    if args.lam is None:
        lam: float | None = 0.999
    elif args.lam == "fit":
        lam = None
    else:
        try:
            lam = float(args.lam)
        except ValueError:
            raise UserError(f"--lam must be a number or 'fit', got {args.lam!r}") from None
        if not 0.0 < lam < 1.0:
            raise UserError(f"--lam must be in (0, 1), got {args.lam}")
    if args.smooth < 1 or args.starts < 1:
        raise UserError("--smooth and --starts must be >= 1")
    spec = parse_spec(args.schedule, "--schedule") if args.schedule else None
    curves = load_curves(
        args.curves, spec, args.total, args.peak, args.stage, args.smooth, args.truncate
    )
    if args.method in ("auto", "staged", "paper") and args.law != "mpl":
        raise UserError(f"--method {args.method} applies to --law mpl only")
    if args.law == "mpl" and args.method in (None, "auto"):
        settings = MPL_SETTINGS
    else:
        settings = (Setting(args.method or "lbfgs", args.method or "lbfgs", starts=args.starts),)
    result = select_and_fit(curves, args.law, settings, lam=lam)
    law = result.law_object()
    result.options["peak"] = max(float(c.lr.max()) for c in curves)
    result.options["warmup"] = curves[0].warmup
    print(
        f"law: {result.law}   curves: {', '.join(result.curves)}   fit time: {result.seconds:.1f} s"
    )
    scores = result.options["selection"]["held_out_pred_e"]
    if len(scores) > 1:
        print("setting (held-out PredE: mean of leave-one-curve-out and horizon folds):")
        for name, v in scores.items():
            mark = "   <- chosen" if name == result.options["setting"] else ""
            print(f"  {name:<22} {v:.5f}{mark}")
    folds = result.options["folds"]
    print(
        f"intervals: {result.options['level']:.0%}, jackknife+ over {len(folds)} held-out "
        "fit(s): " + ", ".join(f["left_out"] for f in folds)
    )
    print("parameters:")
    for k, v in result.params.items():
        print(f"  {k:<6} = {v:.6g}")
    print(
        f"{'curve':<28} {'points':>6} {'R^2':>8} {'MAE':>9} {'RMSE':>9} {'PredE':>9} {'WorstE':>9}"
    )
    for name, m in result.metrics.items():
        print(
            f"{name:<28} {m['points']:>6} {m['r2']:>8.5f} {m['mae']:>9.5f} {m['rmse']:>9.5f}"
            f" {m['pred_e']:>9.5f} {m['worst_e']:>9.5f}"
        )
    if args.out:
        save_fit(result, args.out)
        print(f"wrote {args.out}")
    if args.plot:
        import numpy as np

        from rewarm.laws.plots import plot_fit

        series = []
        for c in curves:
            grid = np.arange(c.warmup + 1, int(c.steps[-1]) + 1)
            pred = law.predict(c.lr, c.warmup, result.params, grid)
            series.append((c.name, c.steps, c.loss, grid, pred))
        plot_fit(
            args.plot, series, f"{result.law} fit (PredE {result.metrics['all']['pred_e']:.5f})"
        )
        print(f"wrote {args.plot}")
    return 0


def _fit_cpt(args: argparse.Namespace) -> int:
    """`--law cpt`: the CPT law fitted to run directories sharing a first stage."""
    from rewarm.laws.cpt_fit import DEFAULT_REPLAY_FORM, fit_cpt, save_cpt_fit
    from rewarm.laws.cpt_plots import plot_runs
    from rewarm.laws.cpt_runs import read_cpt_run

    lam: float | str = "auto" if args.lam in (None, "auto") else _cpt_lam(args.lam)
    runs = []
    fitted = {Path(raw).resolve() for raw in args.curves}
    for raw in args.pretrain_only:
        if Path(raw).resolve() in fitted:
            raise UserError(
                f"{raw}: given both as a run to fit and as --pretrain-only; name it once "
                "(--pretrain-only keeps its CPT evaluations out of the fit)"
            )
    for raw, pt_only in [(c, False) for c in args.curves] + [(c, True) for c in args.pretrain_only]:
        if not Path(raw).is_dir():
            raise UserError(f"{raw}: --law cpt reads rewarm run directories (eval records)")
        runs.append(read_cpt_run(Path(raw), stage=args.stage, pretrain_only=pt_only))
    result = fit_cpt(runs, lam=lam, replay_form=args.replay_form or DEFAULT_REPLAY_FORM)
    print(f"law: cpt   runs: {', '.join(result.runs)}   fit time: {result.seconds:.1f} s")
    sel = result.options["lam_selection"]
    if len(sel) > 1:
        print(
            f"lam = {result.options['lam']:g}, chosen by mean held-out PredE over "
            "leave-one-run-out fits: " + ", ".join(f"{k}: {v:.4f}" for k, v in sel.items())
        )
    print(
        f"transfer at update {result.options['transfer']}; replay ratios in the runs: "
        f"{', '.join(f'{r:g}' for r in result.options['replay_fitted'])} "
        f"(replay factor: {result.form})"
    )
    if result.options["pretrain_only"]:
        print(
            "pre-training only: " + ", ".join(result.options["pretrain_only"]) + "; predict "
            f"--schedule continues {result.options['pt_run']}'s pre-training"
        )
    if len(result.options["replay_fitted"]) < 2:
        print("  (one replay ratio only: a1 = a2 = 0, the law cannot predict another ratio)")
    names = list(next(iter(result.params.values())))
    print(f"{'domain':<12}" + "".join(f" {n:>10}" for n in names))
    for d, values in result.params.items():
        print(f"{d:<12}" + "".join(f" {values[n]:>10.4g}" for n in names))
    print(
        f"{'run':<24} {'domain':<12} {'points':>6} {'PredE':>8} {'CPT PredE':>10} {'final err':>10}"
    )
    for run, per in result.metrics.items():
        for d in result.params:
            if d in per:
                c = per.get(f"cpt:{d}", {}).get("pred_e")
                cell = "-" if c is None else f"{c:.4f}"  # no CPT points (pre-training only)
                f = per[f"final:{d}"]["rel_error"]
                m = per[d]
                print(
                    f"{run:<24} {d:<12} {m['points']:>6} {m['pred_e']:>8.4f} {cell:>10} {f:>+10.4f}"
                )
    if not result.folds:
        print("one run: no leave-one-run-out folds, so predictions have no interval")
    if args.out:
        save_cpt_fit(result, args.out)
        print(f"wrote {args.out}")
    if args.plot:
        plot_runs(args.plot, result, runs)
        print(f"wrote {args.plot}")
    return 0


def _cpt_lam(text: str) -> float:
    try:
        lam = float(text)
    except ValueError:
        raise UserError(f"--lam must be a number in (0, 1) for --law cpt, got {text!r}") from None
    if not 0.0 < lam < 1.0:
        raise UserError(f"--lam must be in (0, 1), got {text}")
    return lam
