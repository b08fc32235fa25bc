"""Fitting the CPT law (`laws.cpt`) to rewarm runs, one parameter set per domain, with
leave-one-run-out folds for prediction intervals (`laws.intervals`).

Objective, as in the paper: the mean Huber loss (delta = 1e-3) of the log residuals
`log pred - log actual` over every evaluation point, pre-training (PT) and CPT points
together. Runs that share their PT part (the demo's arms branch from one stage-1
checkpoint, so their logs repeat its evaluations) contribute those PT points once.

Procedure per domain, deterministic: a grid of starts over the nonlinear parameters
(alpha, E, beta; E scaled by the largest CPT forward area in the data), at each the
linear ones (L0, A, C1, C2, B) by non-negative least squares on the loss (B may
have either sign: two columns), the `starts` best refined by L-BFGS-B on the objective (gradients by
the law's closed-form Jacobian, scale parameters in log space, within bounds). The
replay parameters need runs with different replay ratios: with one ratio a1 = a2 = 0
(the law cannot say what replay does), with two only a2 (the shift's factor) is
fitted, with three or more both.

Runs read with `pretrain_only` (`cpt_runs.read_cpt_run`) add their pre-training points
only: they count for no replay ratio, are never left out, and the first of them is the
pre-training that `predict --schedule` and `plan` append a CPT stage to.

Folds: with K >= 2 runs, each run is left out once and the law refitted on the rest;
the left-out run's held-out points (its CPT points, and its PT points when no other
run shares its PT part) give that fold's relative errors, for intervals, and its
held-out PredE, by which the momentum factor lam is chosen (`LAMS`; the paper fixes
0.999 for runs of tens of thousands of steps).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

from rewarm import atomic
from rewarm.errors import UserError
from rewarm.laws import base, cpt, intervals
from rewarm.laws.cpt_runs import CPTRun
from rewarm.laws.fit import HUBER_DELTA, best_of_starts
from rewarm.laws.goodness import fit_metrics
from rewarm.laws.threads import single_thread

LINEAR = ("L0", "A", "C1", "C2", "B")
DEFAULT_REPLAY_FORM = "power"
"""The shift's replay factor `rewarm fit --law cpt` uses (`cpt.REPLAY_FORMS`)."""


@dataclass
class DomainData:
    """One domain's points over all runs."""

    areas: cpt.Areas
    loss: np.ndarray
    run: np.ndarray
    """Index of the run each point comes from."""
    cpt_point: np.ndarray
    """True for points after the transfer."""


def domain_data(runs: list[CPTRun], domain: str, lam: float) -> DomainData:
    """Every run's points of `domain`, PT points of a shared PT part counted once."""
    parts, ys, idx, is_cpt = [], [], [], []
    seen_pt: set[bytes] = set()
    for i, r in enumerate(runs):
        if domain not in r.points:
            continue
        steps, loss = r.points[domain]
        keep = steps > r.transfer
        if r.pt_key not in seen_pt:
            keep = np.ones_like(keep)
            seen_pt.add(r.pt_key)
        parts.append(r.areas(steps[keep], lam))
        ys.append(loss[keep])
        idx.append(np.full(int(keep.sum()), i))
        is_cpt.append(steps[keep] > r.transfer)
    if not parts:
        raise UserError(f"no run has evaluations of domain {domain!r}")
    return DomainData(
        cpt.Areas.concat(parts), np.concatenate(ys), np.concatenate(idx), np.concatenate(is_cpt)
    )


def _huber_grad(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    a = np.abs(r)
    value = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return value, np.where(a <= delta, r, delta * np.sign(r))


FLOOR = math.log(1e-3)
"""Log of the smallest prediction/loss ratio the objective tells apart."""


class _Objective:
    """Mean Huber(log pred - log y) / delta^2 and its gradient in the packed vector z
    (scale parameters as log values), from the law's closed-form Jacobian."""

    def __init__(
        self, data: DomainData, fixed: dict[str, float], delta: float, form: str = "exp"
    ) -> None:
        self.a = data.areas
        self.form = form
        self.log_y = np.log(data.loss)
        self.free = [p for p in cpt.PARAMS if p.name not in fixed]
        self.fixed = dict(fixed)
        self.delta = delta

    def unpack(self, z: np.ndarray) -> dict[str, float]:
        out = {p.name: float(math.exp(z[i]) if p.log else z[i]) for i, p in enumerate(self.free)}
        return {**out, **self.fixed}

    def pack(self, params: dict[str, float]) -> np.ndarray:
        return base.pack(self.free, params)

    def bounds(self) -> list[tuple[float, float]]:
        return base.bounds(self.free)

    def value_and_grad(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        p = self.unpack(z)
        pred, jac = cpt.evaluate(p, self.a, jacobian=True, form=self.form)
        if not np.all(np.isfinite(pred)):
            return 1e30, np.zeros_like(z)
        # A prediction below 1/1000 of the loss counts as that (flat): a finite, large
        # objective there lets L-BFGS-B's line search back off from a first step into
        # negative losses (a 1e30 wall made it stop at its start point).
        floor = self.log_y + FLOOR
        log_pred = np.log(np.maximum(pred, np.exp(floor)))
        value, dr = _huber_grad(log_pred - self.log_y, self.delta)
        dr = np.where(log_pred > floor, dr, 0.0)
        scale = 1.0 / (self.delta**2 * pred.size)
        weight = dr / pred * scale  # d objective / d pred
        grad = np.array(
            [float(weight @ jac[q.name]) * (p[q.name] if q.log else 1.0) for q in self.free]
        )
        return float(value.sum() * scale), np.nan_to_num(grad)


def _linear_start(
    data: DomainData, nonlinear: dict[str, float], form: str = "exp"
) -> dict[str, float] | None:
    """(L0, A, C1, C2, B) by least squares on the loss for fixed (alpha, E, beta, a1,
    a2): non-negative except B, which enters as two non-negative columns (B+ - B-)."""
    a, r = data.areas, data.areas.replay
    q = nonlinear
    shift = 1.0 - (1.0 + q["E"] * a.s1_cpt) ** -q["beta"]
    f2, _ = cpt.shift_factor(1.0 - r, q["a2"], form)
    b_col = shift * f2
    cols = np.stack(
        [
            np.ones_like(data.loss),
            (a.s1_pt + a.s1_cpt) ** -q["alpha"],
            -a.s2_pt,
            -a.s2_cpt * np.exp(q["a1"] * r),
            b_col,
            -b_col,
        ],
        1,
    )
    if not np.all(np.isfinite(cols)):
        return None
    scale = np.maximum(np.abs(cols).max(0), 1e-300)
    coef, _ = nnls(cols / scale, data.loss)
    coef = coef / scale
    values = [*coef[:4], coef[4] - coef[5]]
    bounds = {p.name: (p.lo, p.hi) for p in cpt.PARAMS}
    out = dict(nonlinear)
    for name, v in zip(LINEAR, values, strict=True):
        p_lo, p_hi = bounds[name]
        out[name] = float(min(max(v, p_lo * 10 if p_lo > 0 else p_lo), p_hi))
    return out


def replay_fixed(ratios: int) -> dict[str, float]:
    """Replay parameters held at 0 for runs with `ratios` distinct replay ratios: each
    extra ratio pins one, the shift's a2 first (replay's main effect, forgetting)."""
    return {"a1": 0.0, "a2": 0.0} if ratios < 2 else {"a1": 0.0} if ratios == 2 else {}


def fit_domain(
    data: DomainData,
    ratios: int,
    delta: float = HUBER_DELTA,
    starts: int = 2,
    form: str = "exp",
) -> tuple[dict[str, float], float]:
    """One domain's parameters and objective (see the module docstring); `ratios`:
    the number of distinct replay ratios among the runs (`replay_fixed`); `form`: the
    shift's replay factor (`cpt.REPLAY_FORMS`)."""
    fixed = replay_fixed(ratios)
    obj = _Objective(data, fixed, delta, form)
    smax = float(data.areas.s1_cpt.max()) or 1.0
    grid = [
        {"alpha": al, "E": e / smax, "beta": be, "a1": 0.0, "a2": 0.0}
        for al in (0.2, 0.5, 1.0)
        for e in (0.3, 3.0, 30.0, 300.0)
        for be in (0.5, 1.5)
    ]
    best = best_of_starts(
        obj.value_and_grad,
        obj.bounds(),
        [None if (p0 := _linear_start(data, g, form)) is None else obj.pack(p0) for g in grid],
        starts,
        options={"maxiter": 300, "ftol": 1e-11, "gtol": 1e-8},
        what="CPT-law objective",
    )
    params = obj.unpack(best[1])
    return {n: params[n] for n in cpt.NAMES}, best[0]


@dataclass
class Fold:
    left_out: str
    params: dict[str, dict[str, float]]
    errors: dict[str, list[float]]
    """Per domain: quantile summary of the left-out run's relative errors."""


@dataclass
class CPTFit:
    params: dict[str, dict[str, float]]
    """domain -> the law's ten parameters."""
    runs: list[str]
    metrics: dict[str, dict[str, dict[str, float]]]
    """run -> domain -> fit metrics over its points (CPT points under "cpt:DOMAIN")."""
    folds: list[Fold] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def domains(self) -> list[str]:
        return list(self.params)

    @property
    def form(self) -> str:
        """The shift's replay factor (`cpt.REPLAY_FORMS`); fits from before it was a
        choice used `exp`."""
        return str(self.options.get("replay_form", "exp"))

    def domain_form(self, domain: str) -> str:
        """`domain`'s factor (`cpt.DOMAIN_FORMS`)."""
        return domain_form(self.form, domain, self.options.get("trained", []))

    def to_dict(self) -> dict[str, Any]:
        return {
            "law": "cpt",
            "params": self.params,
            "runs": self.runs,
            "metrics": self.metrics,
            "folds": [f.__dict__ for f in self.folds],
            "options": self.options,
            "seconds": self.seconds,
        }

    def predict(
        self,
        eta: np.ndarray,
        transfer: int,
        replay: float,
        steps: np.ndarray,
        warmup: int | None = None,
    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """domain -> (central, lo, hi) at `steps` (updates done) of the schedule `eta`;
        `warmup`: where its momentum starts (default: the fitted runs' warmup)."""
        w = self.options["warmup"] if warmup is None else warmup
        a = cpt.cpt_areas(eta, transfer, replay, self.options["lam"], w)
        a = a.take(np.asarray(steps, dtype=np.int64))
        out = {}
        for d, p in self.params.items():
            form = self.domain_form(d)
            centre = cpt.predict(p, a, form)
            preds = [cpt.predict(f.params[d], a, form) for f in self.folds if d in f.params]
            errs = [
                np.asarray(f.errors.get(d, []), dtype=np.float64)
                for f in self.folds
                if d in f.params
            ]
            lo, hi = intervals.band(centre, preds, errs, self.options.get("level", intervals.LEVEL))
            out[d] = (centre, lo, hi)
        return out


def domain_form(form: str, domain: str, trained: list[str] | set[str]) -> str:
    """The factor of one domain (`cpt.DOMAIN_FORMS`) for the fit's `form`: `power` is a
    power of the domain's own share, r for a domain the CPT stage does not train and
    1 - r for one it trains (`trained`)."""
    return "power-new" if form == "power" and domain in trained else form


def trained_domains(runs: list[CPTRun]) -> list[str]:
    """Domains some run's CPT stage trains (its mix)."""
    return sorted({d for r in runs if not r.pretrain_only for d in r.trained})


def _fit_all(
    runs: list[CPTRun], forms: dict[str, str], lam: float, delta: float
) -> dict[str, dict[str, float]]:
    """Every domain of `forms` (domain -> its factor, `domain_form`) fitted to `runs`."""
    ratios = len({r.replay for r in runs if not r.pretrain_only})
    return {
        d: fit_domain(domain_data(runs, d, lam), ratios, delta, form=f)[0] for d, f in forms.items()
    }


LAMS = (0.999, 0.995, 0.99, 0.95, 0.9)
"""Momentum factors `fit_cpt(lam="auto")` chooses from: the paper's 0.999 first (it
wins ties). Tissue et al.'s runs span tens of thousands of steps; over a few hundred
the momentum of a drop barely decays at 0.999, so shorter runs may need less."""


def _folds(
    runs: list[CPTRun], forms: dict[str, str], lam: float, delta: float
) -> tuple[list[Fold], float]:
    """Leave-one-run-out fits and their mean held-out PredE (over runs and domains); runs
    read `pretrain_only` stay in every fit."""
    out, pred_e = [], []
    for k, left in enumerate(runs):
        if left.pretrain_only:
            continue
        rest = [r for i, r in enumerate(runs) if i != k]
        shared = any(r.pt_key == left.pt_key for r in rest)
        fp = _fit_all(rest, forms, lam, delta)
        errors = {}
        for d, form in forms.items():
            steps, loss = left.points[d]
            keep = steps > left.transfer if shared else np.ones(steps.size, dtype=bool)
            pred = cpt.predict(fp[d], left.areas(steps[keep], lam), form)
            errors[d] = intervals.summarise(loss[keep] / pred - 1.0).tolist()
            pred_e.append(float(np.mean(np.abs(pred - loss[keep]) / loss[keep])))
        out.append(Fold(left.name, fp, errors))
    return out, float(np.mean(pred_e))


def fit_cpt(
    runs: list[CPTRun],
    lam: float | str = "auto",
    delta: float = HUBER_DELTA,
    folds: bool = True,
    replay_form: str = DEFAULT_REPLAY_FORM,
) -> CPTFit:
    """Fit every domain evaluated in all runs, with leave-one-run-out folds when K >= 2.

    `lam="auto"`: the momentum factor in `LAMS` with the lowest mean held-out PredE
    over the folds (0.999 with one run); a number fixes it. Runs read `pretrain_only`
    add their pre-training points (see the module docstring). `replay_form`: the
    shift's replay factor (`cpt.REPLAY_FORMS`)."""
    if replay_form not in cpt.REPLAY_FORMS:
        raise UserError(
            f"unknown replay form {replay_form!r} (one of {', '.join(cpt.REPLAY_FORMS)})"
        )
    if not runs:
        raise UserError("no runs to fit")
    full = [r for r in runs if not r.pretrain_only]
    if not full:
        raise UserError(
            "every run is pre-training only (" + ", ".join(r.name for r in runs) + "): the "
            "CPT law needs at least one run with a CPT stage"
        )
    t0 = time.perf_counter()
    with single_thread():
        domains = sorted(set.intersection(*(set(r.points) for r in full)))
        if not domains:
            raise UserError("the runs share no evaluated domain")
        # Each domain's factor, once for the fit and all its folds: a fold that leaves
        # out the only run training a domain still treats it as trained.
        trained = trained_domains(runs)
        forms = {d: domain_form(replay_form, d, trained) for d in domains}
        candidates = LAMS if lam == "auto" else (float(lam),)
        scores: dict[str, float] = {}
        fold_list: list[Fold] = []
        chosen = candidates[0]
        if folds and len(full) >= 2:
            best = float("inf")
            for cand in candidates:
                fs, scores[f"{cand:g}"] = _folds(runs, forms, cand, delta)
                if scores[f"{cand:g}"] < best:
                    best, chosen, fold_list = scores[f"{cand:g}"], cand, fs
        params = _fit_all(runs, forms, chosen, delta)
    first = next((r for r in runs if r.pretrain_only), full[0])
    result = CPTFit(
        params=params,
        runs=[r.name for r in runs],
        metrics={},
        folds=fold_list,
        options={
            "lam": chosen,
            "lam_selection": scores,
            "huber_delta": delta,
            "replay_form": replay_form,
            "trained": trained,
            "level": intervals.LEVEL,
            "transfer": first.transfer,
            "warmup": first.warmup,
            "pt_eta": first.eta[: first.transfer + 1].tolist(),
            "pt_run": first.name,
            "peak": float(first.eta.max()),
            "replay_fitted": sorted({r.replay for r in full}),
            "pretrain_only": [r.name for r in runs if r.pretrain_only],
        },
        seconds=time.perf_counter() - t0,
    )
    result.metrics = {r.name: score_run(result, r) for r in runs}
    return result


def score_run(fit: CPTFit, run: CPTRun) -> dict[str, dict[str, float]]:
    """Metrics of the law on one run's points, per domain, over all its points and over
    its CPT points only ("cpt:DOMAIN"); the final point's error under "final:DOMAIN"."""
    out: dict[str, dict[str, float]] = {}
    lam = fit.options["lam"]
    for d, p in fit.params.items():
        if d not in run.points:
            continue
        steps, loss = run.points[d]
        pred = cpt.predict(p, run.areas(steps, lam), fit.domain_form(d))
        out[d] = fit_metrics(loss, pred)
        after = steps > run.transfer
        if after.any():
            out[f"cpt:{d}"] = fit_metrics(loss[after], pred[after])
        out[f"final:{d}"] = {
            "actual": float(loss[-1]),
            "predicted": float(pred[-1]),
            "rel_error": float(pred[-1] / loss[-1] - 1.0),
        }
    return out


def replay_note(fit: CPTFit, replay: float) -> str | None:
    """What a prediction at replay ratio `replay` cannot know, or None: the fit saw one
    ratio only, or `replay` lies outside the fitted ratios."""
    fitted = fit.options.get("replay_fitted", [])
    if len(fitted) < 2 and replay not in fitted:
        return (
            f"note: the runs fitted had replay {', '.join(f'{r:g}' for r in fitted)} only; "
            "the law ignores what another ratio changes"
        )
    if fitted and not min(fitted) <= replay <= max(fitted):
        return (
            f"note: replay {replay:g} is outside the fitted range "
            f"[{min(fitted):g}, {max(fitted):g}]: an extrapolation"
        )
    return None


def save_cpt_fit(fit: CPTFit, path: str | Path) -> None:
    atomic.write_json(path, fit.to_dict(), indent=2)


def cpt_fit_from_dict(raw: dict[str, Any], where: str) -> CPTFit:
    try:
        params = {d: {n: float(p[n]) for n in cpt.NAMES} for d, p in dict(raw["params"]).items()}
        folds = [
            Fold(
                str(f["left_out"]),
                {d: {n: float(p[n]) for n in cpt.NAMES} for d, p in f["params"].items()},
                {d: [float(x) for x in e] for d, e in f["errors"].items()},
            )
            for f in raw.get("folds", [])
        ]
        options = dict(raw["options"])
        for key in ("lam", "transfer", "warmup", "pt_eta"):
            options[key]  # noqa: B018 (required)
        if options.get("replay_form", "exp") not in cpt.REPLAY_FORMS:
            raise ValueError(f"unknown replay_form {options['replay_form']!r}")
        return CPTFit(
            params=params,
            runs=list(raw.get("runs", [])),
            metrics=raw.get("metrics", {}),
            folds=folds,
            options=options,
            seconds=float(raw.get("seconds", 0.0)),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(
            f"{where}: not a CPT fit written by `rewarm fit --law cpt` ({err})"
        ) from None


def load_raw(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror}") from None
    except ValueError as err:
        raise UserError(f"{path}: not a fit written by `rewarm fit` ({err})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: not a fit written by `rewarm fit`")
    return raw
