"""`rewarm predict FIT.json --schedule SPEC --total N`: the predicted loss curve.

With a CPT fit (`rewarm fit --law cpt`): every domain's curve, with an interval, for a
new CPT stage (`--schedule`, `--total`, `--peak`, `--replay`) or a logged run (`--run`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rewarm import atomic
from rewarm.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("fit", metavar="FIT.json", help="written by `rewarm fit --out`")
    p.add_argument(
        "--schedule",
        metavar="SPEC",
        help='inline TOML/JSON table, e.g. \'{kind = "wsd", decay = 4000, shape = "linear"}\', '
        "or a shared-curve name such as cosine_72000",
    )
    p.add_argument("--total", type=int, help="length of the schedule in steps")
    p.add_argument("--peak", type=float, help="peak LR (default: the fitted curves' peak)")
    p.add_argument("--warmup", type=int, help="warmup steps, if SPEC has no `warmup` key")
    p.add_argument("--every", type=int, default=1, help="CSV: write every N-th step (1)")
    p.add_argument("--out", metavar="CSV|PNG", help="write the curve as CSV or plot it as PNG")
    p.add_argument("--replay", type=float, help="CPT fit: replay ratio of the CPT stage (0)")
    p.add_argument("--run", metavar="RUN", help="CPT fit: predict this run's schedule and replay")
    p.add_argument("--stage", help="CPT fit with --run: the CPT stage (default: the second)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from rewarm.laws.curves import parse_spec
    from rewarm.laws.fit import load_fit
    from rewarm.laws.schedule_input import resolve_lr
    from rewarm.laws.select import predict_band

    if args.every < 1:
        raise UserError("--every must be >= 1")
    if args.out and Path(args.out).suffix.lower() not in (".csv", ".png"):
        raise UserError(f"--out {args.out}: must end in .csv or .png")
    from rewarm.laws.cpt_fit import load_raw

    raw = load_raw(args.fit)
    if raw.get("law") == "cpt":
        return _predict_cpt(args, raw)
    if not args.schedule:
        raise UserError("--schedule is required")
    result = load_fit(args.fit)
    spec = parse_spec(args.schedule, "--schedule")
    peak = args.peak if args.peak is not None else result.options.get("peak")
    lr, warmup = resolve_lr(spec, args.total, peak, args.warmup, "--schedule")
    steps = np.arange(warmup + 1, lr.size)
    loss, lo, hi = predict_band(result, lr, warmup, steps)
    print(f"law: {result.law}   steps: {lr.size - 1}   warmup: {warmup}   peak LR: {lr.max():.4g}")
    level = result.options.get("level", 0.9)
    if result.options.get("folds"):
        print(f"interval: {level:.0%} from the fit's leave-one-curve-out folds")
    else:
        print("no interval: the fit has no leave-one-curve-out folds (one curve, or an old fit)")
    marks = sorted({int(x) for x in np.linspace(0, steps.size - 1, 6)})
    for i in marks:
        print(
            f"  step {int(steps[i]):>8}   lr {lr[steps[i]]:.4g}   predicted loss {loss[i]:.4f}"
            f"  [{lo[i]:.4f}, {hi[i]:.4f}]"
        )
    print(f"final predicted loss: {loss[-1]:.4f}  [{lo[-1]:.4f}, {hi[-1]:.4f}]")
    if args.out and args.out.lower().endswith(".png"):
        from rewarm.laws.plots import plot_curves

        plot_curves(
            args.out,
            [(args.schedule, steps, lr, loss)],
            f"{result.law} prediction ({level:.0%} interval)",
            bands=[(lo, hi)],
        )
        print(f"wrote {args.out}")
    elif args.out:
        out = Path(args.out)
        keep = np.zeros(steps.size, dtype=bool)
        keep[:: args.every] = True
        keep[-1] = True
        rows = [
            f"{int(s)},{lr[s]:.8g},{y:.6f},{a:.6f},{b:.6f}\n"
            for s, y, a, b in zip(steps[keep], loss[keep], lo[keep], hi[keep], strict=True)
        ]
        atomic.write_text(out, "step,lr,loss,loss_lo,loss_hi\n" + "".join(rows))
        print(f"wrote {args.out}")
    return 0


def _predict_cpt(args: argparse.Namespace, raw: dict[str, Any]) -> int:
    """A CPT fit: every domain's curve for --run RUN or a new CPT stage."""
    import numpy as np

    from rewarm.laws.cpt_fit import cpt_fit_from_dict, replay_note
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
    _print_note(replay_note(fit, replay))
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


def _print_note(note: str | None) -> None:
    if note:
        print(note)
