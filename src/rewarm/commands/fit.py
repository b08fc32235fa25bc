"""`rewarm fit CURVES... --law {tissue,mpl}`: fit a loss-curve law, print and save it."""

from __future__ import annotations

import argparse

from rewarm.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "curves",
        nargs="+",
        metavar="CURVES",
        help="step,lr,loss CSV files, metrics.jsonl files or run directories",
    )
    p.add_argument("--law", choices=("mpl", "tissue"), default="mpl", help="default: mpl")
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
    p.add_argument("--stage", help="metrics.jsonl: fit only this stage's losses")
    p.add_argument("--smooth", type=int, default=1, metavar="N", help="average N logged losses")
    p.add_argument("--truncate", type=int, metavar="STEP", help="ignore points at or after STEP")
    p.add_argument(
        "--lam",
        default="0.999",
        help="tissue: momentum factor lambda, a number or 'fit' (default 0.999)",
    )
    p.add_argument("--starts", type=int, default=2, help="starts refined by L-BFGS-B (2)")
    p.add_argument(
        "--method",
        choices=("staged", "paper", "lbfgs"),
        help="mpl: 'staged' (default, the paper's two-stage fit), 'paper' (the same, "
        "as literally as its released code: warmup inside LD, AdamW decay) or 'lbfgs' "
        "(grid of starts + L-BFGS-B to convergence, as for tissue)",
    )


def run(args: argparse.Namespace) -> int:
    from rewarm.laws.curves import parse_spec
    from rewarm.laws.fit import fit, make_law, save_fit
    from rewarm.laws.inputs import load_curves

    if args.lam == "fit":
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
    law = make_law(args.law, lam=lam)
    if args.method in ("staged", "paper") and args.law != "mpl":
        raise UserError(f"--method {args.method} applies to --law mpl only")
    if args.method == "paper":
        law = make_law("mpl", warmup_ld=True)
    result = fit(curves, law, starts=args.starts, method=args.method)
    result.options["peak"] = max(float(c.lr.max()) for c in curves)
    result.options["warmup"] = curves[0].warmup
    print(
        f"law: {result.law}   curves: {', '.join(result.curves)}   fit time: {result.seconds:.1f} s"
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
