"""Which default MPL fit predicts unseen schedules and horizons best, decided on curves
that are NOT the shared test set (`../shared/data/loss-curves/`).

Data: three 100M-model training-loss curves of Tissue et al. 2024 ("Scaling Law with
Learning Rate Annealing", arXiv 2408.11029): cosine, WSD and a 3-stage multi-step
schedule over 33,907 steps (`benchmarks/data/tissue-100M/`, README there). Every
row's LR is rebuilt from the schedule's definition and checked (to 1e-12); the first
SKIP steps (a fall from 10.4 to ~3.8 that neither law describes; the runs have no
warmup) are treated as warmup: their LR adds area, their losses are not fitted.

Protocols (what the default fit is for: predicting what it has not seen):

1. leave one curve out: fit on two curves, predict the third whole;
2. 3x horizon: fit on every curve cut at 1/3 of its steps, predict the rest of every
   curve (the shared test set's 72,000-step curves ask this of 24,000-step fits).

Candidates: each fit setting (`laws.select.Setting`) fitted as it is, and selection
rules over a menu of settings, which choose with `laws.select`'s inner validation on
the fit curves only (as `rewarm fit` does): "best" (lowest inner score), "1-SE" (the
first setting in menu order whose score is within one standard error of the best's),
and "average" (the mean prediction of the settings within one standard error).
"menu" is the default's menu before this study: the staged fit with four robustness
settings (`STAGED`). Rules "... inner horizon 3x" validate with the inner horizon
fold fitted on the first third of every curve (a 3x extrapolation, as protocol 2)
instead of 2/3.

Fits see the mean of every FIT_BIN consecutive rows (at their mean step; never across
an LR jump), which keeps a fit at a few seconds and the noise per point near 1%.
Scores: the raw rows are per-step losses with ~2% noise, so predictions are scored
against the actual loss averaged over bins of BIN consecutive rows (the prediction
is averaged over the same rows): PredE = mean |pred - actual| / actual over the bins,
per held-out curve, then the curve mean. The noise floor printed is the PredE a
perfect prediction would get from the bins' own noise (std / sqrt(BIN) per bin).

    python benchmarks/laws_validation.py [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rewarm import atomic
from rewarm.laws import select
from rewarm.laws.curves import Curve
from rewarm.laws.select import Setting

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "tissue-100M"
TOTAL = 33907
"""The schedules' length: the last logged step, where cosine and WSD reach 1e-4."""
PEAK, FLOOR = 1e-3, 1e-4
SKIP = 1000
BIN = 20
FIT_BIN = 5
HORIZON_CUT = TOTAL // 3


def schedule(name: str, s: np.ndarray) -> np.ndarray:
    """LR at steps `s` (float): cosine from PEAK to FLOOR over TOTAL steps; WSD with an
    exponential decay to FLOOR over the last 20%; 3-stage ("811"): PEAK, PEAK / sqrt(10)
    from 80%, FLOOR from 90%. Checked against every logged row (`read`)."""
    s = np.asarray(s, dtype=np.float64)
    if name.startswith("cosine"):
        return FLOOR + 0.5 * (PEAK - FLOOR) * (1.0 + np.cos(np.pi * s / TOTAL))
    if name.startswith("wsd"):
        return np.where(
            s < 0.8 * TOTAL, PEAK, PEAK * (FLOOR / PEAK) ** ((s - 0.8 * TOTAL) / (0.2 * TOTAL))
        )
    if name.startswith("3stage"):
        return np.where(s < 0.8 * TOTAL, PEAK, np.where(s < 0.9 * TOTAL, PEAK / 10**0.5, FLOOR))
    raise ValueError(name)


NAMES = ("cosine_34000", "wsd_27000_34000", "3stage_34000")


def read(name: str) -> Curve:
    rows = np.loadtxt(DATA / f"{name}.csv", delimiter=",", skiprows=1)
    steps, lr_logged, loss = rows[:, 0].astype(np.int64), rows[:, 1], rows[:, 2]
    err = float(np.max(np.abs(schedule(name, steps) / lr_logged - 1.0)))
    if err > 1e-12:
        raise SystemExit(f"{name}: rebuilt LR differs from the logged one by {err:.1e}")
    lr = schedule(name, np.arange(int(steps[-1]) + 1))
    keep = steps > SKIP
    return Curve(name, steps[keep], loss[keep], lr, SKIP)


def averaged(c: Curve, size: int = FIT_BIN) -> Curve:
    """What the fits see: the mean of each run of `size` consecutive rows, at the
    run's mean step; runs never cross a jump of the LR (3-stage)."""
    lr = c.lr[c.steps]
    jump = np.concatenate([[False], np.abs(lr[1:] / lr[:-1] - 1.0) > 0.05])
    segment = np.cumsum(jump)
    steps, loss = [], []
    for k in np.unique(segment):
        idx = np.nonzero(segment == k)[0]
        for a in range(0, idx.size, size):
            part = idx[a : a + size]
            steps.append(int(round(float(c.steps[part].mean()))))
            loss.append(float(c.loss[part].mean()))
    return Curve(c.name, np.asarray(steps, dtype=np.int64), np.asarray(loss), c.lr, c.warmup)


def tail(c: Curve, start: int) -> Curve:
    keep = c.steps >= start
    return Curve(c.name, c.steps[keep], c.loss[keep], c.lr, c.warmup)


def binned_pred_e(actual: np.ndarray, pred: np.ndarray) -> float:
    n = actual.size // BIN * BIN
    a = actual[-n:].reshape(-1, BIN).mean(1)  # bins end at the last row
    p = pred[-n:].reshape(-1, BIN).mean(1)
    return float(np.mean(np.abs(p - a) / a))


def noise_floor(actual: np.ndarray) -> float:
    n = actual.size // BIN * BIN
    b = actual[-n:].reshape(-1, BIN)
    return float(np.mean(b.std(1, ddof=1) / np.sqrt(BIN) / b.mean(1)) * np.sqrt(2 / np.pi))


STAGED = (
    Setting("staged", "staged"),
    Setting("staged, Huber 1e-2", "staged", delta=1e-2),
    Setting("staged, 50 Adam steps", "staged", adam_steps=50),
    Setting("staged, weight decay 0.01", "staged", weight_decay=0.01),
)
"""The menu of the default fit before this study (`laws.select.MPL_SETTINGS` then)."""
SETTINGS = (*STAGED, Setting("lbfgs", "lbfgs"), Setting("paper", "paper"))


@dataclass
class Outer:
    """One held-out task: fit curves, held-out curves (or tails)."""

    name: str
    protocol: str
    fit: list[Curve]
    held: list[Curve]
    inner: dict[str, list[float]] = field(default_factory=dict)
    """Per setting: the inner folds' PredE (leave-one-curve-out folds, then horizon)."""
    inner3: dict[str, list[float]] = field(default_factory=dict)
    """The same with the inner horizon fold fitted on 1/3 of each curve (3x)."""
    preds: dict[str, list[np.ndarray]] = field(default_factory=dict)
    """Per setting: the prediction of each held-out curve by the fit on `fit`."""


def tasks(curves: list[Curve]) -> list[Outer]:
    out = []
    for k, c in enumerate(curves):
        rest = [d for i, d in enumerate(curves) if i != k]
        out.append(Outer(f"leave out {c.name}", "new schedule", [averaged(d) for d in rest], [c]))
    heads = [averaged(c.truncated(HORIZON_CUT)) for c in curves]
    out.append(
        Outer(
            f"fit steps < {HORIZON_CUT}, predict the rest",
            "3x horizon",
            heads,
            [tail(c, HORIZON_CUT) for c in curves],
        )
    )
    return out


def horizon_fold(curves: list[Curve], s: Setting, share: float) -> float:
    """`laws.select`'s horizon fold with the fits on the first `share` of each curve."""
    cuts = [int(c.warmup + share * (c.steps[-1] - c.warmup)) for c in curves]
    heads = [c.truncated(cut) for c, cut in zip(curves, cuts, strict=True)]
    res = select._fit(heads, "mpl", s, None)
    law = res.law_object()
    errs = []
    for c, cut in zip(curves, cuts, strict=True):
        held = tail(c, cut)
        pred = law.predict(held.lr, held.warmup, res.params, held.steps)
        errs.append(float(np.mean(np.abs(pred - held.loss) / held.loss)))
    return float(np.mean(errs))


def run_task(t: Outer) -> None:
    for s in SETTINGS:
        t0 = time.perf_counter()
        t.inner[s.name] = [f.pred_e for f in select.folds(t.fit, "mpl", s, None)]
        t.inner3[s.name] = [horizon_fold(t.fit, s, 1 / 3)]
        res = select._fit(t.fit, "mpl", s, None)
        law = res.law_object()
        t.preds[s.name] = [law.predict(c.lr, c.warmup, res.params, c.steps) for c in t.held]
        err = np.mean(
            [binned_pred_e(c.loss, p) for c, p in zip(t.held, t.preds[s.name], strict=True)]
        )
        print(
            f"  {t.name:<40} {s.name:<28} inner {score(t.inner[s.name]):.5f}  "
            f"held-out {err:.5f}  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


def score(inner: list[float]) -> float:
    *loo, hor = inner
    return 0.5 * float(np.mean(loo)) + 0.5 * hor if loo else hor


def std_error(inner: list[float]) -> float:
    """Standard error of the score: the folds' weights (0.5 / K for each
    leave-one-curve-out fold, 0.5 for the horizon fold) on their spread."""
    *loo, _ = inner
    w = np.array([0.5 / len(loo)] * len(loo) + [0.5]) if loo else np.array([1.0])
    x = np.asarray(inner)
    if x.size < 2:
        return 0.0
    return float(np.sqrt(np.sum(w**2)) * np.std(x, ddof=1))


def inner_folds(t: Outer, m: str, rule: str) -> list[float]:
    """The inner folds' PredE the rule sees; "3x" rules use the 1/3 horizon fold."""
    if rule.endswith("3x"):
        return t.inner[m][:-1] + t.inner3[m]
    return t.inner[m]


def choose(t: Outer, menu: tuple[str, ...], rule: str) -> tuple[list[np.ndarray], str]:
    """(predictions of the held-out curves, what was chosen) under `rule` over `menu`."""
    scores = {m: score(inner_folds(t, m, rule)) for m in menu}
    best = min(menu, key=lambda m: scores[m])  # ties: earlier in the menu
    if rule.startswith("best"):
        return t.preds[best], best
    se = std_error(inner_folds(t, best, rule))
    near = [m for m in menu if scores[m] <= scores[best] + se]
    if rule == "1-SE":
        return t.preds[near[0]], near[0]
    if rule == "average":
        preds = [np.mean([t.preds[m][i] for m in near], 0) for i in range(len(t.held))]
        return preds, " + ".join(near)
    raise ValueError(rule)


MENU = tuple(s.name for s in STAGED)
CANDIDATES: list[tuple[str, tuple[str, ...], str]] = [
    ("fixed staged", ("staged",), "best"),
    ("fixed paper", ("paper",), "best"),
    ("fixed lbfgs", ("lbfgs",), "best"),
    ("menu, best (the default)", MENU, "best"),
    ("menu + lbfgs, best", (*MENU, "lbfgs"), "best"),
    ("menu + paper, best", (*MENU, "paper"), "best"),
    ("menu, 1-SE", MENU, "1-SE"),
    ("menu + lbfgs, 1-SE", (*MENU, "lbfgs"), "1-SE"),
    ("menu + paper, 1-SE", (*MENU, "paper"), "1-SE"),
    ("menu, average within 1 SE", MENU, "average"),
    ("menu + lbfgs, average within 1 SE", (*MENU, "lbfgs"), "average"),
    ("menu + paper, average within 1 SE", (*MENU, "paper"), "average"),
    ("menu, best, inner horizon 3x", MENU, "best 3x"),
    ("menu + lbfgs, best, inner horizon 3x", (*MENU, "lbfgs"), "best 3x"),
]


BOOT = 1000
REF = 3
"""The reference row of the bootstrap: the default (the menu before this study, kept)."""


def bin_errors(c: Curve, pred: np.ndarray) -> np.ndarray:
    n = c.loss.size // BIN * BIN
    a = c.loss[-n:].reshape(-1, BIN).mean(1)
    return np.abs(pred[-n:].reshape(-1, BIN).mean(1) - a) / a


def bootstrap(ts: list[Outer]) -> list[tuple[float, float]]:
    """Per candidate, the 90% interval of (its mean score - the reference's) when the
    bins of every held-out curve are resampled, the same bins for all candidates."""
    errs = []  # candidate -> task -> curve -> per-bin errors
    for _, menu, rule in CANDIDATES:
        errs.append(
            [
                [bin_errors(c, p) for c, p in zip(t.held, choose(t, menu, rule)[0], strict=True)]
                for t in ts
            ]
        )
    rng = np.random.default_rng(0)
    diffs = np.zeros((len(CANDIDATES), BOOT))
    for b in range(BOOT):
        idx = [[rng.integers(0, e.size, e.size) for e in task] for task in errs[0]]
        for k, cand in enumerate(errs):
            per_task = [
                np.mean([e[i].mean() for e, i in zip(task, ii, strict=True)])
                for task, ii in zip(cand, idx, strict=True)
            ]
            diffs[k, b] = 0.5 * np.mean(per_task[:-1]) + 0.5 * per_task[-1]
    diffs -= diffs[REF]
    return [(float(np.quantile(d, 0.05)), float(np.quantile(d, 0.95))) for d in diffs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "laws_validation.json")
    args = ap.parse_args()
    curves = [read(n) for n in NAMES]
    print("noise floor of binned PredE per curve:")
    for c in curves:
        print(f"  {c.name}: {noise_floor(c.loss):.5f} ({c.loss.size} rows after step {SKIP})")
    ts = tasks(curves)
    for t in ts:
        run_task(t)
    rows = []
    for label, menu, rule in CANDIDATES:
        per_task, chosen = [], []
        for t in ts:
            preds, what = choose(t, menu, rule)
            per_task.append(
                float(
                    np.mean([binned_pred_e(c.loss, p) for c, p in zip(t.held, preds, strict=True)])
                )
            )
            chosen.append(what)
        loo = float(np.mean(per_task[:-1]))
        rows.append(
            {
                "candidate": label,
                "menu": list(menu),
                "rule": rule,
                "new_schedule": loo,
                "horizon_3x": per_task[-1],
                "mean": 0.5 * loo + 0.5 * per_task[-1],
                "per_task": dict(zip([t.name for t in ts], per_task, strict=True)),
                "chosen": dict(zip([t.name for t in ts], chosen, strict=True)),
            }
        )
    print()
    print(
        "| candidate | new schedule (mean of 3) | 3x horizon | mean | per task "
        "(leave out cosine, wsd, 3stage; horizon) | chosen per task |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        pt = ", ".join(f"{v:.5f}" for v in r["per_task"].values())
        ch = "; ".join(r["chosen"].values())
        print(
            f"| {r['candidate']} | {r['new_schedule']:.5f} | {r['horizon_3x']:.5f} "
            f"| {r['mean']:.5f} | {pt} | {ch} |"
        )
    print()
    print(
        f"paired bootstrap over bins ({BOOT} resamples): mean score minus that of "
        f"{rows[REF]['candidate']!r}, 90% interval"
    )
    for r, (lo, hi) in zip(rows, bootstrap(ts), strict=True):
        print(
            f"  {r['candidate']:<40} {r['mean'] - rows[REF]['mean']:+.5f}  [{lo:+.5f}, {hi:+.5f}]"
        )
        r["vs_reference_90"] = [lo, hi]
    print()
    print("inner validation scores (score, standard error) per task and setting:")
    for t in ts:
        cells = ", ".join(f"{m} {score(v):.5f} ± {std_error(v):.5f}" for m, v in t.inner.items())
        print(f"  {t.name}: {cells}")
    doc = {
        "command": "python benchmarks/laws_validation.py",
        "data": str(DATA.relative_to(HERE.parent)),
        "skip": SKIP,
        "bin": BIN,
        "fit_bin": FIT_BIN,
        "horizon_cut": HORIZON_CUT,
        "noise_floor": {c.name: noise_floor(c.loss) for c in curves},
        "inner": {t.name: t.inner for t in ts},
        "inner_horizon_3x": {t.name: t.inner3 for t in ts},
        "results": rows,
        "machine": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic.write_json(args.out, json.loads(json.dumps(doc)), indent=2)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
